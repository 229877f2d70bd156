//! Component metadata → connection settings, with no I/O (so `validate` can run it alone).

use std::net::IpAddr;
use std::time::Duration;

use bindery_core::{BindingError, Metadata, parse_duration};
use tokio_postgres::config::{
    ChannelBinding, LoadBalanceHosts, SslMode as PgSslMode, SslNegotiation, TargetSessionAttrs,
};

use crate::conninfo::ConnInfo;

/// Dapr's default for `timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// pgxpool's default `pool_max_conn_idle_time`.
pub(crate) const DEFAULT_MAX_IDLE: Duration = Duration::from_secs(30 * 60);
/// pgxpool's default `pool_max_conn_lifetime`.
pub(crate) const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// pgxpool's default `pool_health_check_period`.
pub(crate) const DEFAULT_HEALTH_CHECK: Duration = Duration::from_secs(60);

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    /// `allow` and `prefer`: TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS, certificate not checked (checked like `verify-ca` when a root certificate is given,
    /// as libpq does).
    Require,
    /// TLS, certificate chain checked, host name not.
    VerifyCa,
    /// TLS, certificate chain and host name checked.
    VerifyFull,
}

/// Where the certificates that sign the server's come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The operating system's store (`sslrootcert=system`, or no `sslrootcert` with
    /// `verify-ca`/`verify-full`, as pgx does).
    System,
    /// A PEM file.
    File(String),
}

/// TLS settings taken from the connection string and `sslRootCert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    pub(crate) roots: Option<Roots>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
}

impl TlsSettings {
    /// Whether the server's certificate chain is checked, and its name.
    pub(crate) fn verification(&self) -> (bool, bool) {
        match self.mode {
            SslMode::Disable | SslMode::Prefer => (false, false),
            SslMode::Require => (self.roots.is_some(), false),
            SslMode::VerifyCa => (true, false),
            SslMode::VerifyFull => (true, true),
        }
    }
}

/// pgx's `queryExecMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecMode {
    CacheStatement,
    CacheDescribe,
    DescribeExec,
    Exec,
    SimpleProtocol,
}

impl ExecMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cache_statement" => ExecMode::CacheStatement,
            "cache_describe" => ExecMode::CacheDescribe,
            "describe_exec" => ExecMode::DescribeExec,
            "exec" => ExecMode::Exec,
            "simple_protocol" => ExecMode::SimpleProtocol,
            _ => return None,
        })
    }

    /// Whether prepared statements are kept per connection and reused.
    pub(crate) fn caches_statements(self) -> bool {
        matches!(self, ExecMode::CacheStatement | ExecMode::CacheDescribe)
    }
}

/// Everything the binding needs to connect and run.
#[derive(Debug, Clone)]
pub(crate) struct PgSettings {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) tls: TlsSettings,
    pub(crate) timeout: Duration,
    pub(crate) max_conns: usize,
    pub(crate) max_idle: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) health_check_period: Duration,
    pub(crate) exec_mode: ExecMode,
    /// `host:port,…/dbname`, for messages; never holds credentials.
    pub(crate) display: String,
}

/// Connection string keys that libpq knows and bindery cannot honour.
const UNSUPPORTED_KEYS: &[&str] = &[
    "passfile",
    "service",
    "servicefile",
    "krbsrvname",
    "krbspn",
    "gsslib",
    "gssdelegation",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "requirepeer",
    "replication",
];

/// Keys pgx reads itself and bindery accepts without effect.
const IGNORED_KEYS: &[&str] = &[
    "statement_cache_capacity",
    "description_cache_capacity",
    "min_read_buffer_size",
    "pool_min_conns",
    "pool_min_idle_conns",
    "pool_max_conn_lifetime_jitter",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "fallback_application_name",
];

fn the_default_max_conns() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .max(4)
}

impl PgSettings {
    /// Parse and check every field, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let conn_string = r
            .string_any(&["connectionString", "url"])
            .unwrap_or_default();
        let mut info = match ConnInfo::parse(&conn_string) {
            Ok(info) => info,
            Err(e) => {
                r.error("connectionString", e);
                ConnInfo::default()
            }
        };
        // The discrete fields override what the connection string says, as in Dapr.
        for (field, key) in [
            ("host", "host"),
            ("hostaddr", "hostaddr"),
            ("port", "port"),
            ("database", "dbname"),
            ("user", "user"),
            ("password", "password"),
            ("sslRootCert", "sslrootcert"),
        ] {
            if let Some(v) = r.string(field) {
                info.set(key, v);
            }
        }
        let missing = conn_string.trim().is_empty()
            && info.get("host").is_none()
            && info.get("hostaddr").is_none();
        if missing {
            r.error(
                "connectionString",
                "missing connection string: set connectionString (alias url) or host",
            );
        }

        let timeout = r
            .opt_duration_any(&["timeout", "timeoutInSeconds"])
            .unwrap_or(DEFAULT_TIMEOUT);
        if timeout < Duration::from_secs(1) {
            r.error(
                "timeout",
                format!("invalid value for timeout: {timeout:?} is less than the minimum of 1s"),
            );
        }
        let max_conns_md: i64 = r.int("maxConns", 0);
        let max_idle_md = r.opt_duration_any(&["connectionMaxIdleTime"]);
        let mut exec_mode = ExecMode::CacheStatement;
        let mut exec_mode_set = false;
        if let Some(m) = r.string("queryExecMode") {
            match ExecMode::parse(m.trim()) {
                Some(mode) => {
                    exec_mode = mode;
                    exec_mode_set = true;
                }
                None => r.error(
                    "queryExecMode",
                    format!(
                        "invalid queryExecMode metadata value: {m} (use cache_statement, cache_describe, describe_exec, exec or simple_protocol)"
                    ),
                ),
            }
        }
        for field in ["useAzureAD", "useAWSIAM"] {
            if r.bool(field, false) {
                r.error(
                    field,
                    format!(
                        "{field} is not supported by bindery: put the user and password in the connection string (or password with a secretKeyRef)"
                    ),
                );
            }
        }

        let mut pg = tokio_postgres::Config::new();
        let mut tls = TlsSettings {
            mode: SslMode::Prefer,
            roots: None,
            client_cert: None,
            client_key: None,
        };
        let mut hosts: Vec<String> = Vec::new();
        let mut hostaddrs: Vec<IpAddr> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        let mut options = String::new();
        let mut runtime_params: Vec<(String, String)> = Vec::new();
        let mut max_conns_cs: Option<usize> = None;
        let mut max_idle_cs: Option<Duration> = None;
        let mut max_lifetime = DEFAULT_MAX_LIFETIME;
        let mut health_check_period = DEFAULT_HEALTH_CHECK;
        let field = "connectionString";
        let bad = |key: &str, why: &str| {
            r.error(
                field,
                format!("invalid connection string: invalid value for {key}: {why}"),
            )
        };
        let seconds = |key: &str, v: &str| -> Option<Duration> {
            match v.trim().parse::<u64>() {
                Ok(n) => Some(Duration::from_secs(n)),
                Err(_) => {
                    bad(key, "not a whole number of seconds");
                    None
                }
            }
        };
        let go_duration = |key: &str, v: &str| -> Option<Duration> {
            match parse_duration(v, Duration::from_secs(1)) {
                Ok(d) => Some(d),
                Err(e) => {
                    bad(key, &e);
                    None
                }
            }
        };
        for (key, value) in info.iter() {
            match key {
                "host" => {
                    hosts = value
                        .split(',')
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                        .collect()
                }
                "hostaddr" => {
                    hostaddrs.clear();
                    for a in value.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                        match a.parse::<IpAddr>() {
                            Ok(ip) => hostaddrs.push(ip),
                            Err(_) => bad("hostaddr", "not an IP address"),
                        }
                    }
                }
                "port" => {
                    ports.clear();
                    for p in value.split(',').map(str::trim) {
                        match p.parse::<u16>() {
                            Ok(n) if n > 0 => ports.push(n),
                            _ => bad("port", "not a port number"),
                        }
                    }
                }
                "dbname" => {
                    pg.dbname(value);
                }
                "user" => {
                    pg.user(value);
                }
                "password" => {
                    pg.password(value);
                }
                "options" => options = value.to_owned(),
                "application_name" => {
                    pg.application_name(value);
                }
                "sslmode" => {
                    tls.mode = match value.trim() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        _ => {
                            bad(
                                "sslmode",
                                "use disable, allow, prefer, require, verify-ca or verify-full",
                            );
                            SslMode::Prefer
                        }
                    }
                }
                "sslrootcert" => {
                    tls.roots = Some(if value.trim() == "system" {
                        Roots::System
                    } else {
                        Roots::File(value.to_owned())
                    })
                }
                "sslcert" => tls.client_cert = Some(value.to_owned()),
                "sslkey" => tls.client_key = Some(value.to_owned()),
                "sslnegotiation" => match value.trim() {
                    "postgres" => {
                        pg.ssl_negotiation(SslNegotiation::Postgres);
                    }
                    "direct" => {
                        pg.ssl_negotiation(SslNegotiation::Direct);
                    }
                    _ => bad("sslnegotiation", "use postgres or direct"),
                },
                "connect_timeout" => {
                    if let Some(d) = seconds(key, value)
                        && !d.is_zero()
                    {
                        pg.connect_timeout(d.max(Duration::from_secs(2)));
                    }
                }
                "keepalives" => match value.trim() {
                    "0" => {
                        pg.keepalives(false);
                    }
                    "1" => {
                        pg.keepalives(true);
                    }
                    _ => bad("keepalives", "use 0 or 1"),
                },
                "keepalives_idle" => {
                    if let Some(d) = seconds(key, value) {
                        pg.keepalives_idle(d);
                    }
                }
                "keepalives_interval" => {
                    if let Some(d) = seconds(key, value) {
                        pg.keepalives_interval(d);
                    }
                }
                "keepalives_count" => match value.trim().parse::<u32>() {
                    Ok(n) => {
                        pg.keepalives_retries(n);
                    }
                    Err(_) => bad("keepalives_count", "not a whole number"),
                },
                "tcp_user_timeout" => match value.trim().parse::<u64>() {
                    // libpq counts milliseconds here.
                    Ok(ms) => {
                        pg.tcp_user_timeout(Duration::from_millis(ms));
                    }
                    Err(_) => bad("tcp_user_timeout", "not a whole number of milliseconds"),
                },
                "target_session_attrs" => match value.trim() {
                    "any" => {
                        pg.target_session_attrs(TargetSessionAttrs::Any);
                    }
                    "read-write" => {
                        pg.target_session_attrs(TargetSessionAttrs::ReadWrite);
                    }
                    "read-only" => {
                        pg.target_session_attrs(TargetSessionAttrs::ReadOnly);
                    }
                    _ => bad("target_session_attrs", "use any, read-write or read-only"),
                },
                "channel_binding" => match value.trim() {
                    "disable" => {
                        pg.channel_binding(ChannelBinding::Disable);
                    }
                    "prefer" => {
                        pg.channel_binding(ChannelBinding::Prefer);
                    }
                    "require" => {
                        pg.channel_binding(ChannelBinding::Require);
                    }
                    _ => bad("channel_binding", "use disable, prefer or require"),
                },
                "load_balance_hosts" => match value.trim() {
                    "disable" => {
                        pg.load_balance_hosts(LoadBalanceHosts::Disable);
                    }
                    "random" => {
                        pg.load_balance_hosts(LoadBalanceHosts::Random);
                    }
                    _ => bad("load_balance_hosts", "use disable or random"),
                },
                "client_encoding" => {
                    if !value.trim().eq_ignore_ascii_case("utf8")
                        && !value.trim().eq_ignore_ascii_case("utf-8")
                    {
                        bad("client_encoding", "bindery always talks UTF8");
                    }
                }
                "gssencmode" => {
                    if value.trim() != "disable" && value.trim() != "prefer" {
                        bad("gssencmode", "GSSAPI encryption is not supported");
                    }
                }
                "pool_max_conns" => match value.trim().parse::<usize>() {
                    Ok(n) if n > 0 => max_conns_cs = Some(n),
                    _ => bad("pool_max_conns", "not a positive whole number"),
                },
                "pool_max_conn_idle_time" => max_idle_cs = go_duration(key, value),
                "pool_max_conn_lifetime" => {
                    if let Some(d) = go_duration(key, value) {
                        max_lifetime = d;
                    }
                }
                "pool_health_check_period" => {
                    if let Some(d) = go_duration(key, value) {
                        health_check_period = d.max(Duration::from_secs(1));
                    }
                }
                "default_query_exec_mode" => match ExecMode::parse(value.trim()) {
                    Some(mode) if !exec_mode_set => exec_mode = mode,
                    Some(_) => {}
                    None => bad(
                        "default_query_exec_mode",
                        "use cache_statement, cache_describe, describe_exec, exec or simple_protocol",
                    ),
                },
                k if UNSUPPORTED_KEYS.contains(&k) => r.error(
                    field,
                    format!("invalid connection string: {k} is not supported by bindery"),
                ),
                k if IGNORED_KEYS.contains(&k) => {}
                // Anything else is a server setting (`search_path`, `timezone`…), sent at
                // connection start as pgx does.
                k => runtime_params.push((k.to_owned(), value.to_owned())),
            }
        }
        for (k, v) in &runtime_params {
            if !options.is_empty() {
                options.push(' ');
            }
            options.push_str("-c ");
            options.push_str(&escape_option(&format!("{k}={v}")));
        }
        if !options.is_empty() {
            pg.options(options);
        }
        if pg.get_user().is_none() && !missing {
            match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
                Ok(u) if !u.is_empty() => {
                    pg.user(u);
                }
                _ => r.error(
                    "user",
                    "no user: set user in the connection string or the user field",
                ),
            }
        }
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            r.error(
                field,
                "invalid connection string: sslcert and sslkey go together",
            );
        }

        if hosts.is_empty() && hostaddrs.is_empty() {
            hosts.push("localhost".to_owned());
        }
        if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
            r.error(
                field,
                format!(
                    "invalid connection string: {} hosts but {} hostaddrs",
                    hosts.len(),
                    hostaddrs.len()
                ),
            );
        }
        let count = hosts.len().max(hostaddrs.len());
        if ports.len() > 1 && ports.len() != count {
            r.error(
                field,
                format!(
                    "invalid connection string: {} ports for {count} hosts",
                    ports.len()
                ),
            );
        }
        // With hostaddr alone, the address is also the name TLS checks (as libpq does).
        if hosts.is_empty() {
            hosts = hostaddrs.iter().map(ToString::to_string).collect();
        }
        for h in &hosts {
            if h.starts_with('/') {
                pg.host_path(h);
            } else {
                pg.host(h);
            }
        }
        for a in &hostaddrs {
            pg.hostaddr(*a);
        }
        for p in &ports {
            pg.port(*p);
        }
        pg.ssl_mode(match tls.mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            _ => PgSslMode::Require,
        });

        let display = {
            let names: Vec<String> = if hosts.is_empty() {
                hostaddrs.iter().map(ToString::to_string).collect()
            } else {
                hosts.clone()
            };
            let list: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let port = ports
                        .get(i)
                        .or_else(|| ports.first())
                        .copied()
                        .unwrap_or(5432);
                    if h.starts_with('/') {
                        format!("{h}/.s.PGSQL.{port}")
                    } else if h.contains(':') {
                        format!("[{h}]:{port}")
                    } else {
                        format!("{h}:{port}")
                    }
                })
                .collect();
            list.join(",")
        };

        let max_conns = if max_conns_md > 0 {
            usize::try_from(max_conns_md).unwrap_or(usize::MAX)
        } else {
            max_conns_cs.unwrap_or_else(the_default_max_conns)
        };
        let max_idle = max_idle_md
            .filter(|d| !d.is_zero())
            .or(max_idle_cs)
            .unwrap_or(DEFAULT_MAX_IDLE);

        r.finish()?;
        Ok(PgSettings {
            pg,
            tls,
            timeout,
            max_conns,
            max_idle,
            max_lifetime,
            health_check_period,
            exec_mode,
            display,
        })
    }
}

/// Escape a value for the `options` startup parameter: spaces and backslashes need a backslash.
fn escape_option(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
