//! `bindings.postgresql` (alias `bindings.postgres`): an output binding that runs SQL on
//! PostgreSQL through a pool of connections (tokio-postgres and deadpool-postgres).
//!
//! Component metadata (Dapr's newest names):
//!
//! | name | default | |
//! |---|---|---|
//! | `connectionString` (`url`) | | libpq `key=value` string or `postgres://` URL; a credential |
//! | `host`, `hostaddr`, `port`, `database`, `user`, `password`, `sslRootCert` | | override the same settings of the connection string; `password` is a credential |
//! | `timeout` (`timeoutInSeconds`) | `20s` | limit for each operation, connection included; at least `1s` |
//! | `maxConns` | `0` = max(4, CPUs) | pool size |
//! | `connectionMaxIdleTime` | `30m` | idle connections are closed after this |
//! | `queryExecMode` | `cache_statement` | `cache_statement`, `cache_describe` (prepared statements cached per connection), `describe_exec`, `exec`, `simple_protocol` (prepared for each call) |
//! | `useAzureAD`, `useAWSIAM` (and `awsRegion`, `awsAccessKey`, `awsSecretKey`, `awsSessionToken`) | `false` | not supported: `true` is refused at load |
//!
//! Either `connectionString` or `host` is required. TLS follows `sslmode` (libpq's default
//! `prefer`), on rustls with the ring provider.
//!
//! Operations:
//!
//! * `exec` — request metadata `sql` (required) and `params` (a JSON array for `$1`, `$2`…).
//!   Answers no data and response metadata `rows-affected`. Without `params` the SQL runs on
//!   the simple protocol, so several `;`-separated statements are allowed (as with pgx);
//!   `rows-affected` is then the last statement's count.
//! * `query` — the same request metadata; answers a JSON array of rows, each an array of
//!   column values (`[]` when there are none), mapped as below.
//! * `close` — closes the pool; later calls fail with `component is closed`.
//!
//! Every answer of `exec` and `query` carries response metadata `operation`, `sql`,
//! `start-time` and `end-time` (RFC 3339 with nanoseconds, UTC) and `duration` (Go syntax).
//!
//! Parameters are always bound by the server (sent in text format for the types PostgreSQL
//! infers), never pasted into the SQL. Column values become JSON as follows: integers →
//! numbers; `numeric` → a string with every digit; `real`/`double` → numbers (`NaN` and
//! infinities as strings); `bool`; text types → strings; `bytea` → base64; `json`/`jsonb` →
//! embedded JSON; `uuid` → string; `timestamp`/`timestamptz` → RFC 3339 in UTC; `date` →
//! `YYYY-MM-DD`; `time`/`timetz` → PostgreSQL's text; `interval` → ISO 8601; arrays → nested
//! arrays; `NULL` → `null`; any other type → its text form.
//!
//! Failures: a SQL error is `rejected` with PostgreSQL's message and SQLSTATE; an unreachable
//! or restarting server is `unavailable`, and the pool replaces dead connections by itself, so
//! calls succeed again once the server is back. A call over `timeout` is cancelled on the
//! server and fails with `timeout`. Messages name the server as `host:port` and never carry
//! the connection string or password.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_postgres::register(&mut registry);
//! let factory = registry.get("bindings.postgres").unwrap();
//! let md = bindery_core::Metadata::from_pairs([(
//!     "connectionString",
//!     "host=localhost user=postgres dbname=test",
//! )]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("url"));
//! ```

mod config;
mod conninfo;
mod error;
mod params;
mod pool;
mod tls;
mod types;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, ComponentContext, Direction,
    InvokeRequest, InvokeResponse, Metadata, MetadataField, OutputBinding, Registry, async_trait,
};
use deadpool::managed::{Object, PoolError, Timeouts};
use futures::TryStreamExt as _;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_postgres::Statement;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::debug;

use crate::config::PgSettings;
use crate::pool::{Conn, PgManager, Pool};
use crate::types::Decoder;

/// Request metadata key holding the SQL.
pub const SQL: &str = "sql";
/// Request metadata key holding the JSON array of parameters.
pub const PARAMS: &str = params::PARAMS;

const OPERATIONS: &[&str] = &["exec", "query", "close"];

static METADATA: &[MetadataField] = &[
    MetadataField::optional(
        "connectionString",
        "libpq key=value connection string or postgres:// URL (connectionString or host is required)",
    )
    .aliases(&["url"])
    .sensitive(),
    MetadataField::optional("host", "host name(s), overriding the connection string"),
    MetadataField::optional("hostaddr", "IP address(es), overriding the connection string"),
    MetadataField::optional("port", "port(s), overriding the connection string"),
    MetadataField::optional("database", "database name, overriding the connection string"),
    MetadataField::optional("user", "user name, overriding the connection string"),
    MetadataField::optional("password", "password, overriding the connection string").sensitive(),
    MetadataField::optional(
        "sslRootCert",
        "PEM file of the certificates that sign the server's (or `system`)",
    ),
    MetadataField::optional("timeout", "limit for each operation; at least 1s")
        .aliases(&["timeoutInSeconds"])
        .default("20s"),
    MetadataField::optional("maxConns", "pool size; 0 or less: max(4, CPUs)").default("0"),
    MetadataField::optional(
        "connectionMaxIdleTime",
        "idle connections are closed after this",
    )
    .default("30m"),
    MetadataField::optional(
        "queryExecMode",
        "cache_statement, cache_describe, describe_exec, exec or simple_protocol",
    )
    .default("cache_statement"),
    MetadataField::optional("useAzureAD", "Azure AD authentication (not supported)").default("false"),
    MetadataField::optional("useAWSIAM", "AWS IAM authentication (not supported)").default("false"),
    MetadataField::optional("awsRegion", "AWS IAM authentication (not supported)"),
    MetadataField::optional("awsAccessKey", "AWS IAM authentication (not supported)"),
    MetadataField::optional("awsSecretKey", "AWS IAM authentication (not supported)").sensitive(),
    MetadataField::optional("awsSessionToken", "AWS IAM authentication (not supported)")
        .sensitive(),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.postgresql",
    aliases: &["bindings.postgres"],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Runs SQL statements and queries on PostgreSQL",
};

/// Add `bindings.postgresql` (and its alias `bindings.postgres`) to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(PostgresFactory);
}

/// Builds `bindings.postgresql` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresFactory;

#[async_trait]
impl BindingFactory for PostgresFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        PgSettings::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let settings = PgSettings::parse(&ctx.metadata).map_err(join_errors)?;
        let tls = tls::connector(&settings.tls)?;
        let manager = PgManager {
            inner: deadpool_postgres::Manager::from_config(
                settings.pg.clone(),
                tls.clone(),
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(settings.max_conns)
            .runtime(deadpool::Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(settings.timeout),
                create: Some(settings.timeout),
                recycle: Some(settings.timeout),
            })
            .build()
            .map_err(|e| BindingError::internal(format!("postgres pool: {e}")))?;
        let reaper = Reaper::spawn(&pool, &settings);
        let binding = PostgresBinding {
            name: ctx.name.clone(),
            settings: Arc::new(settings),
            pool,
            tls,
            health: ctx.health.clone(),
            connected: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            _reaper: reaper,
        };
        // As Dapr's Init: prove the server answers with these credentials.
        binding.ping().await?;
        debug!(binding = %ctx.name, at = %binding.settings.display, "connected to postgres");
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
        .unwrap_or("connectionString")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

/// Closes idle and old connections now and then, as pgxpool's health check does.
struct Reaper(tokio::task::JoinHandle<()>);

impl Reaper {
    fn spawn(pool: &Pool, s: &PgSettings) -> Self {
        let pool = pool.clone();
        let (period, idle, lifetime) = (s.health_check_period, s.max_idle, s.max_lifetime);
        Reaper(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                pool.retain(|_, m| m.last_used() < idle && m.age() < lifetime);
            }
        }))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A raw column value, decoded by [`Decoder`].
struct RawColumn<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawColumn<'a> {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawColumn(raw))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A running `bindings.postgresql` component.
struct PostgresBinding {
    name: String,
    settings: Arc<PgSettings>,
    pool: Pool,
    /// For cancelling a query that ran over `timeout`.
    tls: MakeRustlsConnect,
    health: BindingHealth,
    connected: AtomicBool,
    closed: AtomicBool,
    _reaper: Reaper,
}

#[async_trait]
impl OutputBinding for PostgresBinding {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        // As Dapr: `close` succeeds even when the component is closed already.
        if req.operation == "close" {
            self.shutdown();
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
        let deadline = Instant::now() + self.settings.timeout;
        let mut resp = InvokeResponse::default();
        match req.operation.as_str() {
            "exec" => {
                let n = self.track(self.exec(sql, &params, deadline).await)?;
                resp.metadata.insert("rows-affected".into(), n.to_string());
            }
            "query" => {
                resp.data = self.track(self.query(sql, &params, deadline).await)?.into();
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
        self.shutdown();
        Ok(())
    }
}

impl PostgresBinding {
    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.pool.close();
            debug!(binding = %self.name, "postgres pool closed");
        }
    }

    /// Report the connection state on changes: `unavailable` means the server is gone.
    fn track<T>(&self, r: Result<T, BindingError>) -> Result<T, BindingError> {
        match &r {
            Err(e) if e.kind() == bindery_core::ErrorKind::Unavailable => {
                if self.connected.swap(false, Ordering::AcqRel) {
                    // The health handle logs the loss and the recovery at warn and info.
                    debug!(binding = %self.name, error = %e, "postgres is unavailable");
                }
                self.health.disconnected(e.message());
            }
            Err(_) => {}
            Ok(_) => {
                if !self.connected.swap(true, Ordering::AcqRel) {
                    debug!(binding = %self.name, at = %self.settings.display, "postgres is available again");
                    self.health.connected();
                }
            }
        }
        r
    }

    fn at(&self) -> &str {
        &self.settings.display
    }

    async fn ping(&self) -> Result<(), BindingError> {
        let deadline = Instant::now() + self.settings.timeout;
        let conn = self.conn(deadline).await?;
        match tokio::time::timeout_at(deadline, conn.simple_query("")).await {
            Ok(r) => r.map(|_| ()).map_err(|e| error::map(&e, self.at())),
            Err(_) => Err(BindingError::unavailable(format!(
                "postgres at {} is unavailable: no answer to a ping within {:?}",
                self.at(),
                self.settings.timeout
            ))),
        }
    }

    /// A connection from the pool before `deadline`.
    async fn conn(&self, deadline: Instant) -> Result<Conn, BindingError> {
        match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(PoolError::Backend(e))) => Err(error::map(&e, self.at())),
            Ok(Err(PoolError::Closed)) => Err(BindingError::closed()),
            Ok(Err(PoolError::Timeout(_))) | Err(_) => Err(BindingError::unavailable(format!(
                "postgres at {} is unavailable: no connection within {:?}",
                self.at(),
                self.settings.timeout
            ))),
            Ok(Err(e)) => Err(BindingError::unavailable(format!(
                "postgres at {} is unavailable: {e}",
                self.at()
            ))),
        }
    }

    /// A call ran over its deadline: cancel it on the server and drop the connection, which
    /// may still be busy.
    fn abandon(&self, conn: Conn) -> BindingError {
        let cancel = conn.cancel_token();
        let tls = self.tls.clone();
        drop(Object::take(conn));
        tokio::spawn(async move {
            let _ = cancel.cancel_query(tls).await;
        });
        BindingError::timeout(format!(
            "postgres operation timed out after {:?} (the statement was cancelled)",
            self.settings.timeout
        ))
    }

    async fn prepare(&self, conn: &Conn, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        if self.settings.exec_mode.caches_statements() {
            conn.prepare_cached(sql).await
        } else {
            conn.prepare(sql).await
        }
    }

    async fn exec(
        &self,
        sql: &str,
        params: &[Box<RawValue>],
        deadline: Instant,
    ) -> Result<u64, BindingError> {
        let conn = self.conn(deadline).await?;
        match tokio::time::timeout_at(deadline, self.run_exec(&conn, sql, params)).await {
            Ok(r) => r,
            Err(_) => Err(self.abandon(conn)),
        }
    }

    async fn run_exec(
        &self,
        conn: &Conn,
        sql: &str,
        params: &[Box<RawValue>],
    ) -> Result<u64, BindingError> {
        if params.is_empty() {
            // pgx runs an exec without arguments on the simple protocol: several statements
            // are allowed, and the last one's count is reported.
            let msgs = conn
                .simple_query(sql)
                .await
                .map_err(|e| error::map(&e, self.at()))?;
            let n = msgs
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
                    _ => None,
                })
                .next_back()
                .unwrap_or(0);
            return Ok(n);
        }
        let mut retried = false;
        loop {
            let stmt = self
                .prepare(conn, sql)
                .await
                .map_err(|e| error::map(&e, self.at()))?;
            let args = params::bind(params, stmt.params())?;
            match conn
                .execute_raw(
                    &stmt,
                    args.iter().map(|a| a as &dyn tokio_postgres::types::ToSql),
                )
                .await
            {
                Err(e) if !retried && error::stale_statement(&e) => {
                    conn.statement_cache.remove(sql, &[]);
                    retried = true;
                }
                r => return r.map_err(|e| error::map(&e, self.at())),
            }
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[Box<RawValue>],
        deadline: Instant,
    ) -> Result<String, BindingError> {
        let conn = self.conn(deadline).await?;
        match tokio::time::timeout_at(deadline, self.run_query(&conn, sql, params)).await {
            Ok(r) => r,
            Err(_) => Err(self.abandon(conn)),
        }
    }

    /// Prepare `sql`; when a column has a type bindery cannot decode, prepare it again wrapped
    /// so that PostgreSQL sends those columns as text.
    async fn prepare_query(
        &self,
        conn: &Conn,
        sql: &str,
    ) -> Result<(Statement, Vec<Decoder>, Option<String>), tokio_postgres::Error> {
        let stmt = self.prepare(conn, sql).await?;
        let decoders: Vec<Option<Decoder>> = stmt
            .columns()
            .iter()
            .map(|c| Decoder::for_type(c.type_()))
            .collect();
        if decoders.iter().all(Option::is_some) {
            return Ok((stmt, decoders.into_iter().flatten().collect(), None));
        }
        let wrapped = wrap_as_text(sql, &decoders);
        match self.prepare(conn, &wrapped).await {
            Ok(w) => {
                let decoders = decoders
                    .into_iter()
                    .map(|d| d.unwrap_or(Decoder::Text))
                    .collect();
                Ok((w, decoders, Some(wrapped)))
            }
            Err(e) if e.as_db_error().is_some() => {
                debug!(binding = %self.name, error = %e, "cannot ask for text columns; decoding what arrives");
                let decoders = decoders
                    .into_iter()
                    .map(|d| d.unwrap_or(Decoder::Opaque))
                    .collect();
                Ok((stmt, decoders, None))
            }
            Err(e) => Err(e),
        }
    }

    async fn run_query(
        &self,
        conn: &Conn,
        sql: &str,
        params: &[Box<RawValue>],
    ) -> Result<String, BindingError> {
        let map = |e: tokio_postgres::Error| error::map(&e, self.at());
        let mut retried = false;
        let (stmt, decoders, rows) = loop {
            let (stmt, decoders, wrapped) = self.prepare_query(conn, sql).await.map_err(map)?;
            let args = params::bind(params, stmt.params())?;
            match conn
                .query_raw(
                    &stmt,
                    args.iter().map(|a| a as &dyn tokio_postgres::types::ToSql),
                )
                .await
            {
                Err(e) if !retried && error::stale_statement(&e) => {
                    conn.statement_cache
                        .remove(wrapped.as_deref().unwrap_or(sql), &[]);
                    retried = true;
                }
                Err(e) => return Err(map(e)),
                Ok(rows) => break (stmt, decoders, rows),
            }
        };
        // Rows are turned into JSON as they stream in; none is held once written.
        let mut out = String::from("[");
        let mut rows = std::pin::pin!(rows);
        let mut first = true;
        while let Some(row) = rows.try_next().await.map_err(map)? {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('[');
            for (i, decoder) in decoders.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let raw: Option<RawColumn<'_>> = row.try_get(i).map_err(map)?;
                decoder.write(raw.map(|r| r.0), &mut out).map_err(|e| {
                    let col = &stmt.columns()[i];
                    BindingError::internal(format!(
                        "cannot read column {} ({}): {e}",
                        col.name(),
                        col.type_()
                    ))
                })?;
            }
            out.push(']');
        }
        out.push(']');
        Ok(out)
    }
}

/// `sql` as a CTE whose undecodable columns are turned into text: works for `SELECT`, `VALUES`,
/// `TABLE` and `INSERT/UPDATE/DELETE … RETURNING`.
fn wrap_as_text(sql: &str, decoders: &[Option<Decoder>]) -> String {
    let body = sql.trim_end().trim_end_matches(';');
    let cols: Vec<String> = (1..=decoders.len()).map(|i| format!("c{i}")).collect();
    let select: Vec<String> = decoders
        .iter()
        .zip(&cols)
        .map(|(d, c)| {
            if d.is_some() {
                format!("\"{c}\"")
            } else {
                // format() prints with the type's output function (a `::text` cast may
                // differ: `inet` adds the netmask); num_nulls keeps NULL apart from a row
                // whose fields are all NULL.
                format!("CASE WHEN num_nulls(\"{c}\") = 0 THEN format('%s', \"{c}\") END")
            }
        })
        .collect();
    format!(
        "WITH \"__bindery_rows\"({}) AS (\n{body}\n) SELECT {} FROM \"__bindery_rows\"",
        cols.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(","),
        select.join(", ")
    )
}

#[cfg(test)]
mod tests;
