//! `bindings.mysql`: an output binding that runs SQL on MySQL or MariaDB through a pool of
//! connections (mysql_async, rustls with the ring provider for TLS).
//!
//! Component metadata (Dapr's names):
//!
//! | name | default | |
//! |---|---|---|
//! | `url` | required | go-sql-driver DSN `user:pass@tcp(host:3306)/db?param=value` or a `mysql://user:pass@host:3306/db?param=value` URL; a credential |
//! | `pemPath` | | PEM file of the CA that signs the server's certificate (`tls=custom`) |
//! | `maxIdleConns` | `2` | idle connections kept open |
//! | `maxOpenConns` | `100` | connections open at most (database/sql has no limit; bindery needs one) |
//! | `connMaxLifetime` | none | connections are closed after this age |
//! | `connMaxIdleTime` | none | idle connections are closed after this |
//!
//! DSN parameters keep go-sql-driver's meaning: `tls` (`true`, `false`, `skip-verify`,
//! `preferred`, `custom`), `timeout` (connection attempt, default 10s), `readTimeout` +
//! `writeTimeout` (limit for a whole call), `charset` (utf8mb4/utf8 only), `collation`,
//! `loc` (`UTC` only), `clientFoundRows`, `columnsWithAlias`, `compress`,
//! `allowCleartextPasswords`, `maxAllowedPacket`, `connectionAttributes`; any other name is a
//! system variable set on each new connection (`time_zone=%27%2B00%3A00%27`).
//!
//! Operations:
//!
//! * `exec` — request metadata `sql` (required) and `params` (a JSON array for the `?`
//!   placeholders). Answers no data and response metadata `rows-affected`.
//! * `query` — the same request metadata; answers a JSON array of objects keyed by column
//!   name, NULL columns left out, and `null` (not `[]`) when there are no rows — Dapr's shape.
//! * `close` — closes the pool; later calls fail with `component is closed`.
//!
//! Every answer of `exec` and `query` carries response metadata `operation`, `sql`,
//! `start-time`, `end-time` (RFC 3339 with nanoseconds, UTC) and `duration` (Go syntax).
//!
//! A call with `params` runs as a prepared statement (cached per connection): the values are
//! bound by the server, never pasted into the SQL. A call without runs on the text protocol,
//! where several `;`-separated statements are allowed.
//!
//! Failures: a SQL error is `rejected` with MySQL's code, SQLSTATE and message
//! (`Error 1146 (42S02): Table 'test.nope' doesn't exist`); a server that is down or
//! restarting is `unavailable`, and the pool replaces dead connections by itself. Messages
//! name the server as `host:port` and never carry the DSN or password.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_mysql::register(&mut registry);
//! let factory = registry.get("bindings.mysql").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("url", "root:@tcp(localhost:3306)/test")]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("url"));
//! ```

mod config;
mod dsn;
mod error;
mod params;
mod types;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, ComponentContext, Direction,
    ErrorKind, InvokeRequest, InvokeResponse, Metadata, MetadataField, OutputBinding, Registry,
    async_trait,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Pool, PoolConstraints, PoolOpts, SslOpts, Value};
use tracing::debug;

use crate::config::{MySqlSettings, Tls};
use crate::dsn::Address;
use crate::types::Kind;

/// Request metadata key holding the SQL.
pub const SQL: &str = "sql";
/// Request metadata key holding the JSON array of parameters.
pub const PARAMS: &str = params::PARAMS;

const OPERATIONS: &[&str] = &["exec", "query", "close"];

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "url",
        "go-sql-driver DSN (user:pass@tcp(host:3306)/db?...) or mysql:// URL",
    )
    .sensitive(),
    MetadataField::optional(
        "pemPath",
        "PEM file of the CA certificate for TLS (tls=custom)",
    ),
    MetadataField::optional("maxIdleConns", "idle connections kept open").default("2"),
    MetadataField::optional("maxOpenConns", "connections open at most").default("100"),
    MetadataField::optional("connMaxLifetime", "connections are closed after this age"),
    MetadataField::optional("connMaxIdleTime", "idle connections are closed after this"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.mysql",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Runs SQL statements and queries on MySQL and MariaDB",
};

/// Add `bindings.mysql` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(MySqlFactory);
}

/// Builds `bindings.mysql` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlFactory;

#[async_trait]
impl BindingFactory for MySqlFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        MySqlSettings::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let s = MySqlSettings::parse(&ctx.metadata).map_err(join_errors)?;
        if s.tls != Tls::Off && rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(BindingError::internal(
                "no TLS crypto provider is installed in this process",
            ));
        }
        if let Tls::Custom(path) = &s.tls
            && let Err(e) = std::fs::metadata(path)
        {
            return Err(BindingError::config(
                "pemPath",
                format!("error reading PEM file from {path}: {e}"),
            ));
        }
        let pool = Pool::new(opts(&s));
        let binding = MySqlBinding {
            name: ctx.name.clone(),
            settings: s,
            pool,
            health: ctx.health.clone(),
            connected: AtomicBool::new(true),
            closed: AtomicBool::new(false),
        };
        // As Dapr's Init: prove the server answers with these credentials.
        if let Err(e) = binding.ping().await {
            binding.pool.clone().disconnect().await.ok();
            return Err(e);
        }
        debug!(binding = %ctx.name, at = %binding.settings.display, "connected to mysql");
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
        .unwrap_or("url")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

/// mysql_async options for the settings.
fn opts(s: &MySqlSettings) -> OptsBuilder {
    // database/sql semantics: up to `maxIdleConns` idle connections are kept (mysql_async's
    // `min` with an inactive TTL of 0 closes the rest when returned). With `connMaxIdleTime`,
    // every idle connection may close, after that time.
    let (min, ttl) = match s.conn_max_idle_time {
        Some(idle) => (0, idle.max(Duration::from_secs(1))),
        None => (s.max_idle, Duration::ZERO),
    };
    let mut pool = PoolOpts::default()
        .with_inactive_connection_ttl(ttl)
        // Session state carries over between calls, as with database/sql; resetting would
        // also drop the prepared statement cache.
        .with_reset_connection(false)
        .with_abs_conn_ttl(s.conn_max_lifetime);
    if let Some(c) = PoolConstraints::new(min, s.max_open.max(1)) {
        pool = pool.with_constraints(c);
    }
    if !ttl.is_zero() {
        pool = pool.with_ttl_check_interval(ttl.min(Duration::from_secs(30)));
    }
    let mut b = OptsBuilder::default()
        .user(s.dsn.user.clone())
        .pass(s.dsn.password.clone())
        .db_name(s.dsn.database.clone())
        .pool_opts(pool)
        .client_found_rows(s.client_found_rows)
        .enable_cleartext_plugin(s.cleartext_passwords)
        .max_allowed_packet(s.max_allowed_packet)
        .init(s.init.clone());
    b = match &s.dsn.address {
        Address::Tcp(host, port) => b
            .ip_or_hostname(host.clone())
            .tcp_port(*port)
            .prefer_socket(false),
        Address::Unix(path) => b.socket(Some(path.clone())),
    };
    if s.compress {
        b = b.compression(mysql_async::Compression::default());
    }
    if !s.connection_attributes.is_empty() {
        b = b.connect_attributes(s.connection_attributes.iter().cloned().collect());
    }
    let ssl = match &s.tls {
        Tls::Off => None,
        Tls::Verified => Some(SslOpts::default()),
        Tls::SkipVerify => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        Tls::Custom(path) => Some(
            SslOpts::default()
                .with_root_certs(vec![std::path::PathBuf::from(path).into()])
                .with_disable_built_in_roots(true),
        ),
    };
    b.ssl_opts(ssl)
}

/// A running `bindings.mysql` component.
struct MySqlBinding {
    name: String,
    settings: MySqlSettings,
    pool: Pool,
    health: BindingHealth,
    connected: AtomicBool,
    closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for MySqlBinding {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        // As Dapr: `close` succeeds even when the component is closed already.
        if req.operation == "close" {
            self.shutdown().await;
            return Ok(None);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        let sql = req
            .metadata
            .get(SQL)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| BindingError::invalid_request("required metadata not set: sql"))?;
        let params = params::parse(req.metadata.get(PARAMS))?;
        let start = SystemTime::now();
        let mut resp = InvokeResponse::default();
        match req.operation.as_str() {
            "exec" => {
                let n = self.track(self.call(sql, params, false).await)?;
                resp.metadata
                    .insert("rows-affected".into(), n.0.to_string());
            }
            "query" => {
                let (_, data) = self.track(self.call(sql, params, true).await)?;
                resp.data = data.into();
                resp.content_type = Some("application/json".into());
            }
            other => {
                return Err(BindingError::unsupported(format!(
                    "invalid operation type: {other}. Expected exec, query, or close"
                )));
            }
        }
        let end = SystemTime::now();
        let md = &mut resp.metadata;
        md.insert("operation".into(), req.operation.clone());
        md.insert("sql".into(), sql.clone());
        md.insert("start-time".into(), bindery_core::time::rfc3339_nano(start));
        md.insert("end-time".into(), bindery_core::time::rfc3339_nano(end));
        md.insert(
            "duration".into(),
            bindery_core::time::go_duration(end.duration_since(start).unwrap_or_default()),
        );
        Ok(Some(resp))
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.shutdown().await;
        Ok(())
    }
}

impl MySqlBinding {
    async fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.pool.clone().disconnect().await {
                debug!(binding = %self.name, error = %e, "closing the mysql pool");
            }
            debug!(binding = %self.name, "mysql pool closed");
        }
    }

    fn at(&self) -> &str {
        &self.settings.display
    }

    /// Report the connection state on changes: `unavailable` means the server is gone.
    fn track<T>(&self, r: Result<T, BindingError>) -> Result<T, BindingError> {
        match &r {
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                if self.connected.swap(false, Ordering::AcqRel) {
                    // The health handle logs the loss and the recovery at warn and info.
                    debug!(binding = %self.name, error = %e, "mysql is unavailable");
                }
                self.health.disconnected(e.message());
            }
            Err(_) => {}
            Ok(_) => {
                if !self.connected.swap(true, Ordering::AcqRel) {
                    debug!(binding = %self.name, at = %self.at(), "mysql is available again");
                    self.health.connected();
                }
            }
        }
        r
    }

    /// A connection from the pool within the DSN's `timeout`.
    async fn conn(&self) -> Result<Conn, BindingError> {
        match tokio::time::timeout(self.settings.dial_timeout, self.pool.get_conn()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(error::map_connect(&e, self.at())),
            Err(_) => Err(BindingError::unavailable(format!(
                "mysql at {} is unavailable: no connection within {:?}",
                self.at(),
                self.settings.dial_timeout
            ))),
        }
    }

    async fn ping(&self) -> Result<(), BindingError> {
        let mut conn = self.conn().await?;
        conn.ping().await.map_err(|e| error::map(&e, self.at()))
    }

    /// Run `sql`: `(rows affected, "")` for exec, `(0, JSON rows)` for query.
    async fn call(
        &self,
        sql: &str,
        params: Vec<Value>,
        query: bool,
    ) -> Result<(u64, String), BindingError> {
        let mut conn = self.conn().await?;
        let id = conn.id();
        let run = async {
            if query {
                self.run_query(&mut conn, sql, params).await.map(|d| (0, d))
            } else {
                self.run_exec(&mut conn, sql, params)
                    .await
                    .map(|n| (n, String::new()))
            }
        };
        let Some(limit) = self.settings.call_timeout else {
            return run.await;
        };
        match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => {
                // Stop the statement on the server; the connection is not reused.
                drop(conn);
                let pool = self.pool.clone();
                tokio::spawn(async move {
                    if let Ok(mut c) = pool.get_conn().await {
                        let _ = c.query_drop(format!("KILL {id}")).await;
                    }
                });
                Err(BindingError::timeout(format!(
                    "mysql operation timed out after {limit:?} (readTimeout + writeTimeout)"
                )))
            }
        }
    }

    async fn run_exec(
        &self,
        conn: &mut Conn,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<u64, BindingError> {
        let map = |e: mysql_async::Error| error::map(&e, self.at());
        if params.is_empty() {
            conn.query_drop(sql).await.map_err(map)?;
        } else {
            conn.exec_drop(sql, Params::Positional(params))
                .await
                .map_err(map)?;
        }
        Ok(conn.affected_rows())
    }

    async fn run_query(
        &self,
        conn: &mut Conn,
        sql: &str,
        params: Vec<Value>,
    ) -> Result<String, BindingError> {
        let map = |e: mysql_async::Error| error::map(&e, self.at());
        if params.is_empty() {
            let mut result = conn.query_iter(sql).await.map_err(map)?;
            let out = self.rows_to_json(&mut result).await;
            // The rest of the result sets (several statements) are read and dropped.
            result.drop_result().await.map_err(map)?;
            out
        } else {
            let mut result = conn
                .exec_iter(sql, Params::Positional(params))
                .await
                .map_err(map)?;
            let out = self.rows_to_json(&mut result).await;
            result.drop_result().await.map_err(map)?;
            out
        }
    }

    /// The first result set as Dapr's JSON: objects keyed by column name, NULLs left out,
    /// `null` when there is no row. Rows are written as they arrive.
    async fn rows_to_json<P: mysql_async::prelude::Protocol>(
        &self,
        result: &mut mysql_async::QueryResult<'_, '_, P>,
    ) -> Result<String, BindingError> {
        let map = |e: mysql_async::Error| error::map(&e, self.at());
        let columns = result.columns();
        let columns: &[mysql_async::Column] = columns.as_deref().unwrap_or(&[]);
        let kinds: Vec<Kind> = columns.iter().map(Kind::of).collect();
        let names: Vec<String> = columns
            .iter()
            .map(|c| {
                let mut name = String::new();
                if self.settings.columns_with_alias && !c.table_ref().is_empty() {
                    name.push_str(&c.table_str());
                    name.push('.');
                }
                name.push_str(&c.name_str());
                let mut key = String::new();
                types::write_string(&name, &mut key);
                key
            })
            .collect();
        let mut out = String::new();
        let mut rows = 0usize;
        while let Some(row) = result.next().await.map_err(map)? {
            out.push(if rows == 0 { '[' } else { ',' });
            rows += 1;
            out.push('{');
            let mut first = true;
            for (i, (kind, key)) in kinds.iter().zip(&names).enumerate() {
                let Some(v) = row.as_ref(i) else { continue };
                if *v == Value::NULL {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(key);
                out.push(':');
                types::write(*kind, v, &mut out).map_err(|e| {
                    BindingError::internal(format!(
                        "cannot read column {} ({:?}): {e}",
                        columns[i].name_str(),
                        columns[i].column_type()
                    ))
                })?;
            }
            out.push('}');
        }
        if rows == 0 {
            Ok("null".into())
        } else {
            out.push(']');
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests;
