//! The connection to Redis: one server, a cluster, or a master found through Sentinel.
//!
//! Every mode answers [`Connection::query`]; reconnecting is the connection's business (the
//! connection manager and the cluster client re-dial by themselves; the Sentinel mode asks the
//! sentinels for the master again after a connection failure, so a failover is followed).

use std::time::Duration;

use bindery_core::BindingError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ClientTlsConfig, Cmd, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    RedisError, RedisResult, TlsCertificates, TlsMode, Value,
};
use tokio::sync::Mutex;

use crate::config::{Mode, RedisConfig, TlsConfig};

/// A live connection in one of the three modes.
pub(crate) enum Connection {
    /// One server, through a connection manager that re-dials after a failure.
    Node(ConnectionManager),
    /// Redis Cluster; the client follows slot moves and re-dials nodes.
    Cluster(redis::cluster_async::ClusterConnection),
    /// A master found through Sentinel.
    Sentinel(Box<SentinelConnection>),
}

impl Connection {
    /// Connect in the configured mode. Errors are mapped by [`crate::map_error`].
    pub(crate) async fn connect(cfg: &RedisConfig) -> Result<Self, RedisError> {
        let certs = load_certificates(cfg.tls.as_ref())
            .await
            .map_err(|e| RedisError::from((redis::ErrorKind::InvalidClientConfig, "TLS", e)))?;
        match &cfg.mode {
            Mode::Node => {
                let (host, port) = cfg.hosts.first().cloned().unwrap_or_default();
                let addr = tcp_addr(cfg.tls.as_ref(), host, port);
                let info = addr
                    .into_connection_info()?
                    .set_redis_settings(redis_settings(cfg));
                let client = match certs {
                    Some(certs) => Client::build_with_tls(info, certs)?,
                    None => Client::open(info)?,
                };
                let manager =
                    ConnectionManager::new_with_config(client, manager_config(cfg)).await?;
                Ok(Connection::Node(manager))
            }
            Mode::Cluster => {
                let nodes: Vec<ConnectionAddr> = cfg
                    .hosts
                    .iter()
                    .map(|(h, p)| tcp_addr(cfg.tls.as_ref(), h.clone(), *p))
                    .collect();
                let mut b = ClusterClientBuilder::new(nodes)
                    // bindery retries commands itself (redisMaxRetries); the cluster client
                    // keeps its own redirect handling.
                    .retries(cfg.max_retries)
                    .min_retry_wait(millis(cfg.min_retry_interval))
                    .max_retry_wait(millis(cfg.max_retry_interval));
                if let Some(u) = &cfg.username {
                    b = b.username(u);
                }
                if let Some(p) = &cfg.password {
                    b = b.password(p);
                }
                if let Some(tls) = &cfg.tls {
                    b = b.tls(if tls.insecure {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    });
                }
                if let Some(certs) = certs {
                    b = b.certs(certs);
                }
                if let Some(t) = cfg.dial_timeout {
                    b = b.connection_timeout(t);
                }
                if let Some(t) = cfg.response_timeout {
                    b = b.response_timeout(t);
                }
                let client = b.build()?;
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
            Mode::Sentinel { master } => {
                let sentinels = cfg
                    .hosts
                    .iter()
                    .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p));
                let mut b =
                    SentinelClientBuilder::new(sentinels, master, SentinelServerType::Master)?
                        .set_client_to_redis_db(cfg.db);
                if let Some(u) = &cfg.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &cfg.password {
                    b = b.set_client_to_redis_password(p);
                }
                if let Some(u) = &cfg.sentinel_username {
                    b = b.set_client_to_sentinel_username(u);
                }
                if let Some(p) = &cfg.sentinel_password {
                    b = b.set_client_to_sentinel_password(p);
                }
                if let Some(tls) = &cfg.tls {
                    let mode = if tls.insecure {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    };
                    b = b
                        .set_client_to_redis_tls_mode(mode)
                        .set_client_to_sentinel_tls_mode(mode);
                }
                if let Some(certs) = certs {
                    b = b
                        .set_client_to_redis_certificates(certs.clone())
                        .set_client_to_sentinel_certificates(certs);
                }
                let conn = SentinelConnection {
                    sentinel: Mutex::new(b.build()?),
                    manager_config: manager_config(cfg),
                    current: Mutex::new(None),
                };
                // Find the master now, so that a wrong master name or unreachable sentinels
                // show at start.
                conn.manager().await?;
                Ok(Connection::Sentinel(Box::new(conn)))
            }
        }
    }

    /// Run one command (or a `MULTI`/script) and return the raw answer.
    pub(crate) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::Node(m) => cmd.query_async(&mut m.clone()).await,
            Connection::Cluster(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Sentinel(s) => {
                let mut m = s.manager().await?;
                let result = cmd.query_async(&mut m).await;
                if let Err(e) = &result
                    && needs_new_master(e)
                {
                    // The master may have moved: ask the sentinels again next time.
                    s.forget().await;
                }
                result
            }
        }
    }
}

/// A master found through Sentinel, looked up again after a connection failure.
pub(crate) struct SentinelConnection {
    sentinel: Mutex<SentinelClient>,
    manager_config: ConnectionManagerConfig,
    current: Mutex<Option<ConnectionManager>>,
}

impl SentinelConnection {
    async fn manager(&self) -> RedisResult<ConnectionManager> {
        let mut current = self.current.lock().await;
        if let Some(m) = current.as_ref() {
            return Ok(m.clone());
        }
        let client = self.sentinel.lock().await.async_get_client().await?;
        let m = ConnectionManager::new_with_config(client, self.manager_config.clone()).await?;
        *current = Some(m.clone());
        Ok(m)
    }

    async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// Whether `e` means the connection (or the master behind it) is gone.
fn needs_new_master(e: &RedisError) -> bool {
    e.is_unrecoverable_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        )
}

fn tcp_addr(tls: Option<&TlsConfig>, host: String, port: u16) -> ConnectionAddr {
    match tls {
        Some(tls) => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: tls.insecure,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host, port),
    }
}

fn redis_settings(cfg: &RedisConfig) -> RedisConnectionInfo {
    let mut s = RedisConnectionInfo::default().set_db(cfg.db);
    if let Some(u) = &cfg.username {
        s = s.set_username(u);
    }
    if let Some(p) = &cfg.password {
        s = s.set_password(p);
    }
    s
}

/// The connection manager re-dials once per failed command; bindery's own retry loop
/// (`redisMaxRetries`, with the retry intervals) decides how often to try again.
fn manager_config(cfg: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(cfg.dial_timeout)
        .set_response_timeout(cfg.response_timeout)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The client certificate and key, read (PEM text or files) and checked.
async fn load_certificates(tls: Option<&TlsConfig>) -> Result<Option<TlsCertificates>, String> {
    let Some((cert, key)) = tls.and_then(|t| t.client.as_ref()) else {
        return Ok(None);
    };
    let client_cert = cert
        .load("clientCert")
        .await
        .map_err(|e| e.message().to_owned())?;
    let client_key = key
        .load("clientKey")
        .await
        .map_err(|e| e.message().to_owned())?;
    Ok(Some(TlsCertificates {
        client_tls: Some(ClientTlsConfig {
            client_cert,
            client_key,
        }),
        root_cert: None,
    }))
}

/// Whether the configured TLS needs a process-wide rustls crypto provider that is missing.
pub(crate) fn missing_crypto_provider(cfg: &RedisConfig) -> Option<BindingError> {
    if cfg.tls.is_some() && rustls::crypto::CryptoProvider::get_default().is_none() {
        return Some(BindingError::internal(
            "no TLS crypto provider is installed in this process",
        ));
    }
    None
}
