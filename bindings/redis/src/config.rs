//! Component metadata of `bindings.redis`, checked without I/O.

use std::path::PathBuf;
use std::time::Duration;

use bindery_core::{BindingError, Metadata, MetadataReader, parse_duration};

/// The port appended to a `redisHost` entry that has none (and no `redisPort` is set).
pub(crate) const DEFAULT_PORT: u16 = 6379;
/// `redisMaxRetries` default.
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 3;
/// `redisMinRetryInterval` default.
pub(crate) const DEFAULT_MIN_RETRY_INTERVAL: Duration = Duration::from_millis(8);
/// `redisMaxRetryInterval` default.
pub(crate) const DEFAULT_MAX_RETRY_INTERVAL: Duration = Duration::from_millis(512);
/// `dialTimeout` default.
pub(crate) const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// `readTimeout` default.
pub(crate) const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// How bindery reaches Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One server (`redisType: node`).
    Node,
    /// Redis Cluster (`redisType: cluster`): `redisHost` lists seed nodes.
    Cluster,
    /// Redis Sentinel (`failover: true`): `redisHost` lists sentinels, which name the master.
    Sentinel {
        /// `sentinelMasterName`.
        master: String,
    },
}

/// A PEM value from the metadata: the PEM text itself, or a path to a file holding it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PemSource {
    /// The value is PEM text.
    Inline(String),
    /// The value names a file.
    File(PathBuf),
}

impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Key material is never printed.
            PemSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl PemSource {
    /// A value holding a PEM block is PEM (Dapr's only form); anything else is a file path.
    pub(crate) fn from_value(value: &str) -> Self {
        if value.contains("-----BEGIN ") {
            PemSource::Inline(value.to_owned())
        } else {
            PemSource::File(PathBuf::from(value.trim()))
        }
    }

    /// The PEM bytes, reading the file when the value is a path.
    pub(crate) async fn load(&self, field: &str) -> Result<Vec<u8>, BindingError> {
        match self {
            PemSource::Inline(pem) => Ok(pem.as_bytes().to_vec()),
            PemSource::File(path) => tokio::fs::read(path).await.map_err(|e| {
                BindingError::config(
                    field,
                    format!("{field} is neither PEM text nor a readable file: {e}"),
                )
            }),
        }
    }
}

/// TLS settings (`enableTLS: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsConfig {
    /// `insecureSkipTLSVerify`: accept any server certificate.
    pub(crate) insecure: bool,
    /// `clientCert` and `clientKey`, for mutual TLS.
    pub(crate) client: Option<(PemSource, PemSource)>,
}

/// A Dapr redis duration: Go syntax or an integer of milliseconds; a negative value disables
/// the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisDuration {
    /// A negative value (`-1`): the feature is off.
    Disabled,
    /// A length of time (`0` included).
    Value(Duration),
}

/// Pool settings go-redis reads. bindery talks to Redis over one multiplexed connection (per
/// node), which pipelines every command, so these are checked and otherwise have no effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    pub(crate) pool_size: Option<i64>,
    pub(crate) pool_timeout: Option<RedisDuration>,
    pub(crate) max_conn_age: Option<RedisDuration>,
    pub(crate) min_idle_conns: Option<i64>,
    pub(crate) idle_check_frequency: Option<RedisDuration>,
    pub(crate) idle_timeout: Option<RedisDuration>,
}

impl PoolSettings {
    /// The names of the pool settings present in the metadata.
    pub(crate) fn present(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.pool_size.is_some() {
            v.push("poolSize");
        }
        if self.pool_timeout.is_some() {
            v.push("poolTimeout");
        }
        if self.max_conn_age.is_some() {
            v.push("maxConnAge");
        }
        if self.min_idle_conns.is_some() {
            v.push("minIdleConns");
        }
        if self.idle_check_frequency.is_some() {
            v.push("idleCheckFrequency");
        }
        if self.idle_timeout.is_some() {
            v.push("idleTimeout");
        }
        v
    }
}

/// The checked configuration of one `bindings.redis` component.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisConfig {
    /// `host:port` entries: the server (node), seed nodes (cluster) or sentinels (failover).
    pub(crate) hosts: Vec<(String, u16)>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) sentinel_username: Option<String>,
    pub(crate) sentinel_password: Option<String>,
    pub(crate) db: i64,
    pub(crate) mode: Mode,
    pub(crate) tls: Option<TlsConfig>,
    /// How many times a command is retried after a failure that a retry can fix.
    pub(crate) max_retries: u32,
    /// The first wait between retries; zero means no wait.
    pub(crate) min_retry_interval: Duration,
    /// The longest wait between retries; zero means no wait.
    pub(crate) max_retry_interval: Duration,
    /// How long a connection attempt may take; `None` means no limit.
    pub(crate) dial_timeout: Option<Duration>,
    /// How long a command may wait for its answer; `None` means no limit.
    pub(crate) response_timeout: Option<Duration>,
    pub(crate) pool: PoolSettings,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials are never printed.
        f.debug_struct("RedisConfig")
            .field("hosts", &self.hosts)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<redacted>"),
            )
            .field("db", &self.db)
            .field("mode", &self.mode)
            .field("tls", &self.tls)
            .field("max_retries", &self.max_retries)
            .field("min_retry_interval", &self.min_retry_interval)
            .field("max_retry_interval", &self.max_retry_interval)
            .field("dial_timeout", &self.dial_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("pool", &self.pool)
            .finish()
    }
}

impl RedisConfig {
    /// `redisHost` as resolved, for messages: `host:port[,host:port...]`.
    pub(crate) fn host_display(&self) -> String {
        self.hosts
            .iter()
            .map(|(h, p)| join_host_port(h, *p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let host = r.required("redisHost", "redis binding error: missing host address");
        let port = r.opt_int::<u16>("redisPort");
        let hosts = if host.is_empty() {
            Vec::new()
        } else {
            match resolve_hosts(&host, port) {
                Ok(h) => h,
                Err(e) => {
                    r.error("redisHost", e);
                    Vec::new()
                }
            }
        };
        let username = r.string("redisUsername");
        let password = r.string("redisPassword");
        let sentinel_username = r.string("sentinelUsername");
        let sentinel_password = r.string("sentinelPassword");
        let db = r.int::<i64>("redisDB", 0);
        if db < 0 {
            r.error(
                "redisDB",
                format!("invalid value for redisDB: {db} is negative"),
            );
        }
        let failover = r.bool("failover", false);
        let master = r.string("sentinelMasterName");
        let redis_type = r.string_or("redisType", "node").to_ascii_lowercase();
        let mode = match (redis_type.as_str(), failover) {
            ("node", false) => Mode::Node,
            ("node", true) => match master {
                Some(master) => Mode::Sentinel { master },
                None => {
                    r.error(
                        "sentinelMasterName",
                        "redis binding error: sentinelMasterName is required when failover is enabled",
                    );
                    Mode::Node
                }
            },
            ("cluster", false) => Mode::Cluster,
            ("cluster", true) => {
                r.error(
                    "failover",
                    "failover (Redis Sentinel) together with redisType cluster is not supported; use one or the other",
                );
                Mode::Cluster
            }
            (other, _) => {
                r.error(
                    "redisType",
                    format!("invalid value for redisType: {other:?}; use node or cluster"),
                );
                Mode::Node
            }
        };
        if mode == Mode::Node && hosts.len() > 1 {
            r.error(
                "redisHost",
                "redisHost lists several addresses; set redisType: cluster for Redis Cluster or failover: true for Redis Sentinel",
            );
        }

        let enable_tls = r.bool("enableTLS", false);
        let insecure = r.bool("insecureSkipTLSVerify", false);
        let client_cert = r.string("clientCert").map(|v| PemSource::from_value(&v));
        let client_key = r.string("clientKey").map(|v| PemSource::from_value(&v));
        let client = match (client_cert, client_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                r.error(
                    "clientKey",
                    "clientCert is set but clientKey is not; set both or neither",
                );
                None
            }
            (None, Some(_)) => {
                r.error(
                    "clientCert",
                    "clientKey is set but clientCert is not; set both or neither",
                );
                None
            }
        };
        let tls = if enable_tls {
            Some(TlsConfig { insecure, client })
        } else {
            if insecure {
                r.error(
                    "insecureSkipTLSVerify",
                    "insecureSkipTLSVerify is set but enableTLS is not; TLS settings need enableTLS: true",
                );
            }
            if client.is_some() {
                r.error(
                    "clientCert",
                    "clientCert and clientKey are set but enableTLS is not; TLS settings need enableTLS: true",
                );
            }
            None
        };

        // go-redis: -1 disables retries, 0 means the default.
        let max_retries = match r
            .opt_int::<i64>("redisMaxRetries")
            .or_else(|| r.opt_int::<i64>("maxRetries"))
        {
            None | Some(0) => DEFAULT_MAX_RETRIES,
            Some(n) if n < 0 => 0,
            Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
        };
        let min_retry_interval = match redis_duration(&r, "redisMinRetryInterval") {
            None => DEFAULT_MIN_RETRY_INTERVAL,
            Some(RedisDuration::Disabled) => Duration::ZERO,
            Some(RedisDuration::Value(d)) => d,
        };
        let max_retry_interval = match redis_duration(&r, "redisMaxRetryInterval") {
            Some(RedisDuration::Disabled) => Duration::ZERO,
            Some(RedisDuration::Value(d)) => d,
            // v0.11's maxRetryBackoff: an integer of nanoseconds, or a Go duration.
            None => match r.string("maxRetryBackoff") {
                None => DEFAULT_MAX_RETRY_INTERVAL,
                Some(v) => match parse_duration(&v, Duration::from_nanos(1)) {
                    Ok(d) => d,
                    Err(e) => {
                        r.error(
                            "maxRetryBackoff",
                            format!("invalid value for maxRetryBackoff: {e}"),
                        );
                        DEFAULT_MAX_RETRY_INTERVAL
                    }
                },
            },
        };
        // go-redis: 0 means the default; a negative dial timeout is taken as "no limit".
        let dial_timeout = match redis_duration(&r, "dialTimeout") {
            None => Some(DEFAULT_DIAL_TIMEOUT),
            Some(RedisDuration::Value(d)) if d.is_zero() => Some(DEFAULT_DIAL_TIMEOUT),
            Some(RedisDuration::Value(d)) => Some(d),
            Some(RedisDuration::Disabled) => None,
        };
        let read_timeout = match redis_duration(&r, "readTimeout") {
            None => Some(DEFAULT_READ_TIMEOUT),
            Some(RedisDuration::Value(d)) if d.is_zero() => Some(DEFAULT_READ_TIMEOUT),
            Some(RedisDuration::Value(d)) => Some(d),
            Some(RedisDuration::Disabled) => None,
        };
        // go-redis: writeTimeout defaults to readTimeout.
        let write_timeout = match redis_duration(&r, "writeTimeout") {
            None => read_timeout,
            Some(RedisDuration::Value(d)) if d.is_zero() => read_timeout,
            Some(RedisDuration::Value(d)) => Some(d),
            Some(RedisDuration::Disabled) => None,
        };
        // One deadline covers sending the command and reading its answer.
        let response_timeout = match (read_timeout, write_timeout) {
            (Some(r), Some(w)) => Some(r + w),
            (Some(r), None) => Some(r),
            (None, _) => None,
        };

        let pool = PoolSettings {
            pool_size: non_negative(&r, "poolSize"),
            pool_timeout: redis_duration(&r, "poolTimeout"),
            max_conn_age: redis_duration(&r, "maxConnAge"),
            min_idle_conns: non_negative(&r, "minIdleConns"),
            idle_check_frequency: redis_duration(&r, "idleCheckFrequency"),
            idle_timeout: redis_duration(&r, "idleTimeout"),
        };

        for (field, what) in [
            ("useEntraID", "Microsoft Entra ID authentication"),
            ("useAzureAD", "Microsoft Entra ID authentication"),
            ("useOIDC", "OIDC private_key_jwt authentication"),
        ] {
            if r.bool(field, false) {
                r.error(
                    field,
                    format!("{what} ({field}) is not supported by bindery; use redisUsername and redisPassword"),
                );
            }
        }

        r.finish()?;
        Ok(RedisConfig {
            hosts,
            username,
            password,
            sentinel_username,
            sentinel_password,
            db,
            mode,
            tls,
            max_retries,
            min_retry_interval,
            max_retry_interval,
            dial_timeout,
            response_timeout,
            pool,
        })
    }
}

fn non_negative(r: &MetadataReader<'_>, name: &str) -> Option<i64> {
    let v = r.opt_int::<i64>(name)?;
    if v < 0 {
        r.error(name, format!("invalid value for {name}: {v} is negative"));
        return None;
    }
    Some(v)
}

/// Read a Dapr redis duration: a Go duration, or an integer of milliseconds; negative values
/// (`-1`, `-1s`) disable the setting.
fn redis_duration(r: &MetadataReader<'_>, name: &str) -> Option<RedisDuration> {
    let v = r.string(name)?;
    match parse_redis_duration(&v) {
        Ok(d) => Some(d),
        Err(e) => {
            r.error(name, format!("invalid value for {name}: {e}"));
            None
        }
    }
}

/// Parse one Dapr redis duration value.
pub(crate) fn parse_redis_duration(value: &str) -> Result<RedisDuration, String> {
    let v = value.trim();
    if let Ok(n) = v.parse::<i64>() {
        return Ok(if n < 0 {
            RedisDuration::Disabled
        } else {
            RedisDuration::Value(Duration::from_millis(n.unsigned_abs()))
        });
    }
    if let Some(rest) = v.strip_prefix('-') {
        return parse_duration(rest, Duration::from_millis(1)).map(|_| RedisDuration::Disabled);
    }
    parse_duration(v, Duration::from_millis(1)).map(RedisDuration::Value)
}

/// `host` and `port` as one address, bracketing IPv6 literals.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Split `redisHost` (comma-separated) into `(host, port)` pairs, applying `redisPort` to the
/// entries that carry no port, as Dapr does.
pub(crate) fn resolve_hosts(value: &str, port: Option<u16>) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!("redisHost {value:?} holds an empty address"));
        }
        let (host, own_port) = split_host_port(entry)?;
        let port = match (own_port, port) {
            (Some(own), Some(p)) if own != p => {
                return Err(format!(
                    "redis host {entry:?} already contains port {own}, but redisPort is set to {p}; either remove the port from redisHost or remove the redisPort setting"
                ));
            }
            (Some(own), _) => own,
            (None, Some(p)) => p,
            (None, None) => DEFAULT_PORT,
        };
        if host.is_empty() {
            return Err(format!("redis host {entry:?} has no host name"));
        }
        out.push((host, port));
    }
    Ok(out)
}

/// `host:port`, `[v6]:port`, `[v6]`, bare `v6` or bare `host`.
fn split_host_port(entry: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = |p: &str| format!("redis host {entry:?} has an invalid port {p:?}");
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("redis host {entry:?} has an unclosed '['"))?;
        return match after {
            "" => Ok((host.to_owned(), None)),
            _ => {
                let p = after.strip_prefix(':').ok_or_else(|| bad_port(after))?;
                Ok((host.to_owned(), Some(p.parse().map_err(|_| bad_port(p))?)))
            }
        };
    }
    match entry.matches(':').count() {
        0 => Ok((entry.to_owned(), None)),
        1 => {
            let (h, p) = entry.split_once(':').unwrap_or((entry, ""));
            Ok((h.to_owned(), Some(p.parse().map_err(|_| bad_port(p))?)))
        }
        // An IPv6 literal without brackets carries no port.
        _ => Ok((entry.to_owned(), None)),
    }
}
