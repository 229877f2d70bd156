//! Component metadata → connection settings, with no I/O (so `validate` can run it alone).

use std::time::Duration;

use bindery_core::{BindingError, Metadata, parse_duration, parse_truthy};

use crate::dsn::{Address, Dsn};

/// go-sql-driver's default for `maxIdleConns` (database/sql keeps 2 idle connections).
pub(crate) const DEFAULT_MAX_IDLE: usize = 2;
/// database/sql has no limit on open connections; bindery needs one.
pub(crate) const DEFAULT_MAX_OPEN: usize = 100;
/// Limit for one connection attempt when the DSN sets no `timeout`.
pub(crate) const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// How to use TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tls {
    Off,
    /// Check the server's certificate against the built-in web roots (`tls=true`).
    Verified,
    /// Encrypt, accept any certificate (`tls=skip-verify`, `tls=preferred`).
    SkipVerify,
    /// Check the server's certificate against the PEM file of `pemPath` (`tls=custom`).
    Custom(String),
}

/// Everything the binding needs to connect and run.
#[derive(Debug, Clone)]
pub(crate) struct MySqlSettings {
    pub(crate) dsn: Dsn,
    pub(crate) tls: Tls,
    pub(crate) max_idle: usize,
    pub(crate) max_open: usize,
    pub(crate) conn_max_lifetime: Option<Duration>,
    pub(crate) conn_max_idle_time: Option<Duration>,
    pub(crate) dial_timeout: Duration,
    /// `readTimeout + writeTimeout` from the DSN: the limit for one call, when set.
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) client_found_rows: bool,
    pub(crate) compress: bool,
    pub(crate) cleartext_passwords: bool,
    pub(crate) columns_with_alias: bool,
    pub(crate) max_allowed_packet: Option<usize>,
    pub(crate) connection_attributes: Vec<(String, String)>,
    /// Statements run on every new connection: `SET NAMES … COLLATE …` and the DSN's system
    /// variables (`SET time_zone='+00:00'`).
    pub(crate) init: Vec<String>,
    /// The address, for messages (never holds credentials).
    pub(crate) display: String,
}

/// go-sql-driver parameters bindery accepts without effect (see the docs page for why).
const NO_EFFECT: &[&str] = &[
    "parseTime",
    "interpolateParams",
    "multiStatements",
    "allowNativePasswords",
    "allowOldPasswords",
    "allowAllFiles",
    "allowFallbackToPlaintext",
    "checkConnLiveness",
    "rejectReadOnly",
    "serverPubKey",
    "timeTruncate",
];

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl MySqlSettings {
    /// Parse and check every field, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let url = r.required("url", "missing MySql connection string");
        let pem_path = r.string("pemPath");
        let max_idle: i64 = r.int("maxIdleConns", 0);
        let max_open: i64 = r.int("maxOpenConns", 0);
        let conn_max_lifetime = r
            .opt_duration_any(&["connMaxLifetime"])
            .filter(|d| !d.is_zero());
        let conn_max_idle_time = r
            .opt_duration_any(&["connMaxIdleTime"])
            .filter(|d| !d.is_zero());

        let dsn = if url.is_empty() {
            None
        } else {
            match Dsn::parse(&url) {
                Ok(d) => Some(d),
                Err(e) => {
                    r.error(
                        "url",
                        format!("illegal Data Source Name (DSN) specified by url: {e}"),
                    );
                    None
                }
            }
        };
        let dsn = dsn.unwrap_or(Dsn {
            user: None,
            password: None,
            address: Address::Tcp("127.0.0.1".into(), 3306),
            database: None,
            params: Vec::new(),
        });

        let mut tls = Tls::Off;
        let mut tls_set = false;
        let mut dial_timeout = DEFAULT_DIAL_TIMEOUT;
        let mut read_timeout = None;
        let mut write_timeout = None;
        let mut s = MySqlSettings {
            dsn: dsn.clone(),
            tls: Tls::Off,
            max_idle: 0,
            max_open: 0,
            conn_max_lifetime,
            conn_max_idle_time,
            dial_timeout,
            call_timeout: None,
            client_found_rows: false,
            compress: false,
            cleartext_passwords: false,
            columns_with_alias: false,
            max_allowed_packet: None,
            connection_attributes: Vec::new(),
            init: Vec::new(),
            display: dsn.address.to_string(),
        };
        let bad = |key: &str, why: &str| {
            r.error(
                "url",
                format!("invalid DSN: invalid value for {key}: {why}"),
            );
        };
        let flag = |key: &str, v: &str| -> bool {
            match parse_truthy(v) {
                Some(b) => b,
                None => {
                    bad(key, "not a boolean");
                    false
                }
            }
        };
        let duration = |key: &str, v: &str| -> Option<Duration> {
            match parse_duration(v, Duration::from_secs(1)) {
                Ok(d) => Some(d),
                Err(e) => {
                    bad(key, &e);
                    None
                }
            }
        };
        let mut collation: Option<String> = None;
        let mut variables: Vec<String> = Vec::new();
        for (key, value) in &dsn.params {
            match key.as_str() {
                "tls" => {
                    tls_set = true;
                    tls = match value.as_str() {
                        "true" | "1" | "TRUE" | "True" => Tls::Verified,
                        "false" | "0" | "FALSE" | "False" | "" => Tls::Off,
                        "skip-verify" | "preferred" => Tls::SkipVerify,
                        "custom" => match &pem_path {
                            Some(p) => Tls::Custom(p.clone()),
                            None => {
                                r.error("pemPath", "tls=custom needs pemPath (the CA certificate)");
                                Tls::Off
                            }
                        },
                        _ => {
                            bad("tls", "use true, false, skip-verify, preferred or custom");
                            Tls::Off
                        }
                    }
                }
                "timeout" => {
                    if let Some(d) = duration(key, value).filter(|d| !d.is_zero()) {
                        dial_timeout = d;
                    }
                }
                "readTimeout" => read_timeout = duration(key, value).filter(|d| !d.is_zero()),
                "writeTimeout" => write_timeout = duration(key, value).filter(|d| !d.is_zero()),
                "charset" => {
                    let ok = value
                        .split(',')
                        .any(|c| matches!(c.trim(), "utf8mb4" | "utf8" | "utf8mb3"));
                    if !ok {
                        bad("charset", "bindery talks utf8mb4 (use utf8mb4 or utf8)");
                    }
                }
                "collation" => {
                    if value.starts_with("utf8mb4_") && is_identifier(value) {
                        collation = Some(value.clone());
                    } else {
                        bad(
                            "collation",
                            "bindery talks utf8mb4: use a utf8mb4_* collation",
                        );
                    }
                }
                "loc" => {
                    if value != "UTC" {
                        bad(
                            "loc",
                            "only UTC is supported: DATETIME values are written as UTC",
                        );
                    }
                }
                "clientFoundRows" => s.client_found_rows = flag(key, value),
                "compress" => s.compress = flag(key, value),
                "allowCleartextPasswords" => s.cleartext_passwords = flag(key, value),
                "columnsWithAlias" => s.columns_with_alias = flag(key, value),
                "maxAllowedPacket" => match value.parse::<usize>() {
                    // 0 asks the server; mysql_async does that when unset.
                    Ok(0) => {}
                    Ok(n) => s.max_allowed_packet = Some(n),
                    Err(_) => bad(key, "not a whole number of bytes"),
                },
                "connectionAttributes" => {
                    for pair in value.split(',').filter(|p| !p.is_empty()) {
                        match pair.split_once(':') {
                            Some((k, v)) => {
                                s.connection_attributes.push((k.to_owned(), v.to_owned()))
                            }
                            None => bad(key, "use key:value,key:value"),
                        }
                    }
                }
                k if NO_EFFECT.contains(&k) => {}
                // Anything else is a system variable, set on each new connection as
                // go-sql-driver does (the value is SQL, e.g. `time_zone=%27%2B00%3A00%27`).
                k => {
                    if is_identifier(k) {
                        variables.push(format!("SET {k}={value}"));
                    } else {
                        bad(
                            "a system variable",
                            "its name must be letters, digits and _",
                        );
                    }
                }
            }
        }
        // Dapr registers pemPath as the "custom" TLS config; bindery also uses it when the
        // DSN names no tls at all, rather than silently connecting in clear text.
        if !tls_set && let Some(p) = &pem_path {
            tls = Tls::Custom(p.clone());
        }
        if let Some(c) = collation {
            s.init.push(format!("SET NAMES utf8mb4 COLLATE {c}"));
        }
        s.init.extend(variables);
        s.tls = tls;
        s.dial_timeout = dial_timeout;
        s.call_timeout = match (read_timeout, write_timeout) {
            (None, None) => None,
            (r, w) => Some(r.unwrap_or_default() + w.unwrap_or_default()),
        };
        s.max_open = if max_open > 0 {
            usize::try_from(max_open).unwrap_or(usize::MAX)
        } else {
            DEFAULT_MAX_OPEN
        };
        s.max_idle = if max_idle > 0 {
            usize::try_from(max_idle).unwrap_or(usize::MAX)
        } else {
            DEFAULT_MAX_IDLE
        }
        .min(s.max_open);
        r.finish()?;
        Ok(s)
    }
}
