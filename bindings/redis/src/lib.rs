//! `bindings.redis`: an output binding that stores, reads, deletes and counts keys in Redis.
//!
//! Component metadata (Dapr's newest names; values in Dapr's formats):
//!
//! | name | default | |
//! |---|---|---|
//! | `redisHost` | required | `host:port`; several, comma-separated, for `redisType: cluster` (seed nodes) or `failover: true` (sentinels) |
//! | `redisPort` | | appended to `redisHost` entries without a port (else `6379`); a different port in `redisHost` is an error |
//! | `redisUsername`, `redisPassword` | | ACL user and password (`redisPassword` is a credential) |
//! | `redisDB` | `0` | database selected after connecting (not with `cluster`) |
//! | `redisType` | `node` | `node` or `cluster` |
//! | `enableTLS` | `false` | TLS to Redis (rustls, system roots) |
//! | `insecureSkipTLSVerify` | `false` | accept any server certificate (needs `enableTLS`) |
//! | `clientCert`, `clientKey` | | PEM text (or a file path) for mutual TLS; both or neither (need `enableTLS`) |
//! | `failover` | `false` | Redis Sentinel: `redisHost` lists the sentinels |
//! | `sentinelMasterName` | | the master's name; required with `failover` |
//! | `sentinelUsername`, `sentinelPassword` | | credentials for the sentinels |
//! | `redisMaxRetries` (`maxRetries`) | `3` | retries of a command that failed for a reason a retry can fix; `-1` none, `0` the default |
//! | `redisMinRetryInterval` | `8ms` | first wait between retries; an integer counts milliseconds; `-1` no wait |
//! | `redisMaxRetryInterval` (`maxRetryBackoff`) | `512ms` | longest wait between retries; `-1` no wait |
//! | `dialTimeout` | `5s` | limit for one connection attempt |
//! | `readTimeout` | `3s` | limit for an answer; `-1` none |
//! | `writeTimeout` | `readTimeout` | limit for sending a command; `-1` none |
//! | `poolSize`, `poolTimeout`, `maxConnAge`, `minIdleConns`, `idleCheckFrequency` (`1m`), `idleTimeout` (`5m`) | | go-redis pool settings: checked, otherwise without effect (see below) |
//!
//! Operations (each needs request metadata `key`, else `redis binding: missing key in request
//! metadata`):
//!
//! * `create`: `SET key data`, with `PX` when request metadata `ttl` or `ttlInSeconds` is set (a
//!   Go duration or whole seconds). Answers nothing (HTTP 204).
//! * `get`: `GET key`, or `GETDEL key` with request metadata `delete: "true"`. A hit answers the
//!   stored bytes; a miss answers an empty response (HTTP 200 with no body), as Dapr does.
//! * `delete`: `DEL key` (HTTP 204).
//! * `increment`: `INCR key`, and the TTL as for `create` (HTTP 204).
//!
//! Data is stored exactly as received: over HTTP that is the JSON text of `data` (a string keeps
//! its quotes), as with Dapr.
//!
//! Failures: a command that fails because Redis is unreachable, loading, or failing over is
//! retried `redisMaxRetries` times with a backoff between the retry intervals (`increment` only
//! when it surely did not run), then fails with an `unavailable` error that names the address.
//! The connection is re-established by itself once Redis is back; no restart is needed.
//!
//! Differences from Dapr, all deliberate:
//!
//! * `create` with a TTL is one atomic `SET … PX`, and `increment` with a TTL one script, where
//!   Dapr sends `SET`/`INCR` and `EXPIRE` separately; a TTL is checked before anything is written.
//! * A TTL of zero or less is refused, where Dapr's `EXPIRE 0` deleted the key at once;
//!   sub-second TTLs are kept to the millisecond.
//! * `delete` in request metadata accepts the usual booleans (`true`, `1`, `yes`…); anything
//!   else is refused instead of meaning "no".
//! * bindery holds one multiplexed connection per node that pipelines all calls, so the go-redis
//!   pool settings have nothing to tune; they are still checked for their types.
//! * Mistakes Dapr ignores are refused at load: several addresses without `cluster` or
//!   `failover`, TLS settings without `enableTLS`, `clientCert` without `clientKey`.
//! * Entra ID and OIDC authentication (`useEntraID`, `useOIDC`) are not supported and refused.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_redis::register(&mut registry);
//! let factory = registry.get("bindings.redis").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("redisHost", "localhost:6379")]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("redisPassword"));
//! ```

mod config;
mod conn;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, ComponentContext, Direction,
    InvokeRequest, InvokeResponse, Metadata, MetadataField, OutputBinding, Registry, async_trait,
    parse_duration, parse_truthy,
};
use bytes::Bytes;
use redis::{Cmd, RedisError, ServerErrorKind, Value};
use tracing::{debug, info};

use crate::config::RedisConfig;
use crate::conn::Connection;

/// Request metadata key naming the Redis key.
pub const KEY: &str = "key";
/// Request metadata key asking `get` to delete the key it reads (`GETDEL`).
pub const DELETE: &str = "delete";

const OPERATIONS: &[&str] = &["create", "delete", "get", "increment"];

/// `INCR` and `PEXPIRE` as one atomic step, in every mode (a script runs on the key's node).
const INCR_WITH_TTL: &str =
    "local v = redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], ARGV[1]); return v";

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "redisHost",
        "host:port of Redis; comma-separated seed nodes (cluster) or sentinels (failover)",
    ),
    MetadataField::optional(
        "redisPort",
        "port for redisHost entries that carry none (default 6379)",
    ),
    MetadataField::optional("redisUsername", "ACL user name"),
    MetadataField::optional("redisPassword", "password").sensitive(),
    MetadataField::optional("redisDB", "database selected after connecting").default("0"),
    MetadataField::optional("redisType", "node or cluster").default("node"),
    MetadataField::optional("enableTLS", "connect with TLS").default("false"),
    MetadataField::optional(
        "insecureSkipTLSVerify",
        "accept any server certificate (testing only)",
    )
    .default("false"),
    MetadataField::optional("clientCert", "client certificate for mutual TLS (PEM)"),
    MetadataField::optional("clientKey", "client private key for mutual TLS (PEM)").sensitive(),
    MetadataField::optional(
        "failover",
        "use Redis Sentinel; redisHost lists the sentinels",
    )
    .default("false"),
    MetadataField::optional(
        "sentinelMasterName",
        "the master's name at the sentinels (required with failover)",
    ),
    MetadataField::optional("sentinelUsername", "user name for the sentinels"),
    MetadataField::optional("sentinelPassword", "password for the sentinels").sensitive(),
    MetadataField::optional(
        "redisMaxRetries",
        "retries of a failed command; -1 none, 0 the default",
    )
    .default("3")
    .aliases(&["maxRetries"]),
    MetadataField::optional(
        "redisMinRetryInterval",
        "first wait between retries (integer = milliseconds; -1 no wait)",
    )
    .default("8ms"),
    MetadataField::optional(
        "redisMaxRetryInterval",
        "longest wait between retries (integer = milliseconds; -1 no wait)",
    )
    .default("512ms")
    .aliases(&["maxRetryBackoff"]),
    MetadataField::optional("dialTimeout", "limit for one connection attempt").default("5s"),
    MetadataField::optional("readTimeout", "limit for an answer; -1 none").default("3s"),
    MetadataField::optional(
        "writeTimeout",
        "limit for sending a command; -1 none (default readTimeout)",
    ),
    MetadataField::optional("poolSize", "go-redis pool size (checked, no effect)"),
    MetadataField::optional("poolTimeout", "go-redis pool wait (checked, no effect)"),
    MetadataField::optional(
        "maxConnAge",
        "go-redis connection age limit (checked, no effect)",
    ),
    MetadataField::optional(
        "minIdleConns",
        "go-redis idle connections (checked, no effect)",
    )
    .default("0"),
    MetadataField::optional(
        "idleCheckFrequency",
        "go-redis idle reaper period (checked, no effect)",
    )
    .default("1m"),
    MetadataField::optional(
        "idleTimeout",
        "go-redis idle connection timeout (checked, no effect)",
    )
    .default("5m"),
    MetadataField::optional("useEntraID", "Entra ID authentication (not supported)")
        .aliases(&["useAzureAD"]),
    MetadataField::optional("useOIDC", "OIDC authentication (not supported)"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.redis",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Sets, gets, deletes and increments keys in Redis",
};

/// Add `bindings.redis` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(RedisFactory);
}

/// Builds `bindings.redis` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisFactory;

#[async_trait]
impl BindingFactory for RedisFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        RedisConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = RedisConfig::parse(&ctx.metadata).map_err(join_errors)?;
        if let Some(e) = conn::missing_crypto_provider(&config) {
            return Err(e);
        }
        let unused = config.pool.present();
        if !unused.is_empty() {
            info!(binding = %ctx.name, settings = ?unused, "go-redis pool settings have no effect: bindery pipelines every call over one connection per node");
        }
        let host = config.host_display();
        let conn = Connection::connect(&config)
            .await
            .map_err(|e| connect_error(&host, &e))?;
        let binding = RedisBinding {
            name: ctx.name.clone(),
            host,
            config: Arc::new(config),
            conn,
            health: ctx.health.clone(),
            connected: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        // As Dapr's Init: a PING proves the server answers with these credentials.
        binding
            .run("PING", &redis::cmd("PING"), Retry::Always)
            .await
            .map_err(|e| connect_error_from(&binding.host, &e))?;
        debug!(binding = %ctx.name, host = %binding.host, "connected to redis");
        Ok(Box::new(binding))
    }
}

/// Fold configuration problems into one error for the build phase.
fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors
        .first()
        .and_then(|e| e.field())
        .unwrap_or("redisHost")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

/// Which failures of a command may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// The command can run twice without harm (`SET`, `GET`, `DEL`, `PING`).
    Always,
    /// Only when it surely did not run (`INCR`).
    NotSent,
}

/// A running `bindings.redis` component.
struct RedisBinding {
    name: String,
    /// `redisHost` as resolved, for messages (never holds credentials).
    host: String,
    config: Arc<RedisConfig>,
    conn: Connection,
    health: BindingHealth,
    connected: AtomicBool,
    closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for RedisBinding {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        let key = req
            .metadata
            .get(KEY)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                BindingError::invalid_request("redis binding: missing key in request metadata")
            })?;
        match req.operation.as_str() {
            "create" => {
                let ttl = ttl_from(&req.metadata)?;
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(req.data.as_ref());
                if let Some(ttl) = ttl {
                    cmd.arg("PX").arg(millis(ttl));
                }
                self.run("SET", &cmd, Retry::Always).await?;
                Ok(None)
            }
            "get" => {
                let delete = match req.metadata.get(DELETE).map(|v| v.trim()) {
                    None | Some("") => false,
                    Some(v) => parse_truthy(v).ok_or_else(|| {
                        BindingError::invalid_request(format!(
                            "redis binding: invalid value for request metadata delete: {v:?} is not a boolean"
                        ))
                    })?,
                };
                let (name, retry) = if delete {
                    // Running GETDEL twice could lose the value the first run returned.
                    ("GETDEL", Retry::NotSent)
                } else {
                    ("GET", Retry::Always)
                };
                let mut cmd = redis::cmd(name);
                cmd.arg(key);
                match self.run(name, &cmd, retry).await? {
                    Value::Nil => Ok(Some(InvokeResponse::default())),
                    Value::BulkString(b) => Ok(Some(InvokeResponse::data(Bytes::from(b)))),
                    Value::SimpleString(s) => Ok(Some(InvokeResponse::data(s.into_bytes()))),
                    other => Err(BindingError::internal(format!(
                        "redis binding: unexpected answer to {name}: {other:?}"
                    ))),
                }
            }
            "delete" => {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(key);
                self.run("DEL", &cmd, Retry::Always).await?;
                Ok(None)
            }
            "increment" => {
                let ttl = ttl_from(&req.metadata)?;
                let cmd = match ttl {
                    Some(ttl) => {
                        let mut c = redis::cmd("EVAL");
                        c.arg(INCR_WITH_TTL).arg(1).arg(key).arg(millis(ttl));
                        c
                    }
                    None => {
                        let mut c = redis::cmd("INCR");
                        c.arg(key);
                        c
                    }
                };
                self.run("INCR", &cmd, Retry::NotSent).await?;
                Ok(None)
            }
            other => Err(BindingError::unsupported(format!(
                "invalid operation type: {other}"
            ))),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        // The connection goes with the binding; later calls are refused.
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

impl RedisBinding {
    /// Run `cmd`, retrying what a retry can fix, and keep the health up to date.
    async fn run(&self, name: &str, cmd: &Cmd, retry: Retry) -> Result<Value, BindingError> {
        let cfg = &self.config;
        let no_wait = cfg.min_retry_interval.is_zero() || cfg.max_retry_interval.is_zero();
        let mut backoff = Backoff::new(cfg.min_retry_interval, cfg.max_retry_interval);
        let mut attempt = 0;
        loop {
            match self.conn.query(cmd).await {
                Ok(v) => {
                    if !self.connected.swap(true, Ordering::AcqRel) {
                        self.health.connected();
                    }
                    return Ok(v);
                }
                Err(e) => {
                    if attempt < cfg.max_retries && retryable(&e, retry) {
                        attempt += 1;
                        let wait = if no_wait {
                            Duration::ZERO
                        } else {
                            backoff.next_delay()
                        };
                        debug!(binding = %self.name, command = name, attempt, error = %e, retry_in = ?wait, "redis command failed; retrying");
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        continue;
                    }
                    let err = map_error(&self.host, name, &e);
                    if err.is_retryable() {
                        self.connected.store(false, Ordering::Release);
                        self.health.disconnected(err.to_string());
                        // Per failing call: the health handle logs the loss once, at warn.
                        debug!(binding = %self.name, command = name, error = %err, "redis is unavailable");
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// Whether a failed command may be sent again.
fn retryable(e: &RedisError, retry: Retry) -> bool {
    if e.is_connection_refusal() {
        // Nothing was sent.
        return true;
    }
    if let redis::ErrorKind::Server(kind) = e.kind() {
        // The server refused to run it (loading, failing over, read-only replica).
        return matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::ReadOnly
        );
    }
    if matches!(
        e.kind(),
        redis::ErrorKind::ClusterConnectionNotFound
            | redis::ErrorKind::MasterNameNotFoundBySentinel
    ) {
        return true;
    }
    retry == Retry::Always && (e.is_io_error() || e.is_timeout() || e.is_connection_dropped())
}

/// Whether `e` says Redis cannot be reached (as opposed to Redis refusing the command).
fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            redis::ErrorKind::ClusterConnectionNotFound
                | redis::ErrorKind::MasterNameNotFoundBySentinel
                | redis::ErrorKind::NoValidReplicasFoundBySentinel
                | redis::ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                )
        )
}

/// The binding error for a failed command.
fn map_error(host: &str, command: &str, e: &RedisError) -> BindingError {
    if e.is_timeout() {
        return BindingError::timeout(format!(
            "redis binding: redis at {host} did not answer {command} in time: {e}"
        ));
    }
    if is_unreachable(e) {
        return BindingError::unavailable(format!(
            "redis binding: redis at {host} is unavailable: {e}"
        ));
    }
    match e.kind() {
        redis::ErrorKind::AuthenticationFailed => BindingError::rejected(format!(
            "redis binding: authentication with redis at {host} failed: {e}"
        )),
        redis::ErrorKind::InvalidClientConfig => BindingError::config(
            "redisHost",
            format!("redis binding: invalid client configuration: {e}"),
        ),
        _ => BindingError::rejected(format!("redis binding: {command} failed: {e}")),
    }
}

/// The build error for a connection that could not be made: retryable when Redis is only
/// unreachable, so the runtime keeps trying in the background.
fn connect_error(host: &str, e: &RedisError) -> BindingError {
    let message = format!("redis binding: error connecting to redis at {host}: {e}");
    if e.is_timeout() {
        BindingError::timeout(message)
    } else if is_unreachable(e) {
        BindingError::unavailable(message)
    } else if e.kind() == redis::ErrorKind::InvalidClientConfig {
        BindingError::config("redisHost", message)
    } else {
        BindingError::rejected(message)
    }
}

/// The same for a failed start-up `PING`, keeping the kind [`map_error`] chose.
fn connect_error_from(host: &str, e: &BindingError) -> BindingError {
    let prefix = "redis binding: ";
    let detail = e.message().strip_prefix(prefix).unwrap_or(e.message());
    BindingError::new(
        e.kind(),
        format!("redis binding: error connecting to redis at {host}: {detail}"),
    )
}

/// The TTL in request metadata `ttl` or `ttlInSeconds` (any case): a Go duration, or whole
/// seconds. Zero or less is refused.
fn ttl_from(md: &HashMap<String, String>) -> Result<Option<Duration>, BindingError> {
    let value = ["ttl", "ttlInSeconds"].iter().find_map(|name| {
        md.iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    });
    let Some(v) = value else {
        return Ok(None);
    };
    if let Ok(n) = v.parse::<i64>() {
        if n <= 0 {
            return Err(BindingError::invalid_request(format!(
                "ttl value must be higher than zero: actual is '{n}'"
            )));
        }
        return Ok(Some(Duration::from_secs(n.unsigned_abs())));
    }
    if v.starts_with('-') {
        return Err(BindingError::invalid_request(format!(
            "ttl value must be higher than zero: actual is '{v}'"
        )));
    }
    match parse_duration(v, Duration::from_secs(1)) {
        Ok(d) if d.as_millis() == 0 => Err(BindingError::invalid_request(format!(
            "ttl value must be at least 1ms: actual is '{v}'"
        ))),
        Ok(d) => Ok(Some(d)),
        Err(_) => Err(BindingError::invalid_request(format!(
            "ttl value must be a valid integer: actual is '{v}'"
        ))),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
