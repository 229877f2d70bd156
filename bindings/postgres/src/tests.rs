#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bindery_core::{BindingFactory, Metadata};
use serde_json::value::RawValue;
use tokio_postgres::config::Host;
use tokio_postgres::types::Type;

use crate::config::{DEFAULT_MAX_IDLE, DEFAULT_TIMEOUT, ExecMode, PgSettings, Roots, SslMode};
use crate::conninfo::ConnInfo;
use crate::types::{Decoder, interval_iso8601, numeric_text};
use crate::{PostgresFactory, params, wrap_as_text};

fn settings(pairs: &[(&str, &str)]) -> PgSettings {
    PgSettings::parse(&Metadata::from_pairs(pairs.iter().copied())).unwrap()
}

fn errors(pairs: &[(&str, &str)]) -> Vec<String> {
    PgSettings::parse(&Metadata::from_pairs(pairs.iter().copied()))
        .unwrap_err()
        .iter()
        .map(|e| format!("{}: {}", e.field().unwrap_or(""), e.message()))
        .collect()
}

#[test]
fn spec_lists_every_field_with_defaults_and_credentials() {
    let spec = PostgresFactory.spec();
    assert_eq!(spec.type_name, "bindings.postgresql");
    assert_eq!(spec.aliases, ["bindings.postgres"]);
    assert_eq!(spec.operations, ["exec", "query", "close"]);
    for name in [
        "connectionString",
        "url",
        "host",
        "hostaddr",
        "port",
        "database",
        "user",
        "password",
        "sslRootCert",
        "timeout",
        "timeoutInSeconds",
        "maxConns",
        "connectionMaxIdleTime",
        "queryExecMode",
        "useAzureAD",
        "useAWSIAM",
    ] {
        assert!(spec.field(name).is_some(), "{name} is not listed");
    }
    for secret in ["connectionString", "URL", "password", "awsSecretKey"] {
        assert!(spec.is_sensitive(secret), "{secret} must be sensitive");
    }
    assert!(!spec.is_sensitive("host"));
    assert_eq!(spec.field("timeout").unwrap().default, Some("20s"));
}

#[test]
fn key_value_connection_strings() {
    let c = ConnInfo::parse(
        "host=db.example.com  port = 5433 user='da pr' password='it\\'s \\\\ secret' database=app sslmode=verify-full",
    )
    .unwrap();
    assert_eq!(c.get("host"), Some("db.example.com"));
    assert_eq!(c.get("port"), Some("5433"));
    assert_eq!(c.get("user"), Some("da pr"));
    assert_eq!(c.get("password"), Some("it's \\ secret"));
    assert_eq!(c.get("dbname"), Some("app"));
    assert_eq!(c.get("sslmode"), Some("verify-full"));
    assert_eq!(ConnInfo::parse("").unwrap(), ConnInfo::default());
    assert!(ConnInfo::parse("host").is_err());
    assert!(ConnInfo::parse("=x").is_err());
    let e = ConnInfo::parse("host=x password='never-shown").unwrap_err();
    assert!(!e.contains("never-shown"), "{e}");
    let e = ConnInfo::parse("host=x never-shown").unwrap_err();
    assert!(!e.contains("never-shown"), "{e}");
}

#[test]
fn url_connection_strings() {
    let c = ConnInfo::parse(
        "postgres://us%40er:p%40ss:w@rd@h1:5433,h2,[::1]:5434/my%20db?sslmode=require&application_name=a+b",
    )
    .unwrap();
    assert_eq!(c.get("user"), Some("us@er"));
    assert_eq!(c.get("password"), Some("p@ss:w@rd"));
    assert_eq!(c.get("host"), Some("h1,h2,::1"));
    assert_eq!(c.get("port"), Some("5433,5432,5434"));
    assert_eq!(c.get("dbname"), Some("my db"));
    assert_eq!(c.get("sslmode"), Some("require"));
    assert_eq!(c.get("application_name"), Some("a b"));
    let c = ConnInfo::parse("postgresql:///test?host=/var/run/postgresql").unwrap();
    assert_eq!(c.get("host"), Some("/var/run/postgresql"));
    assert_eq!(c.get("dbname"), Some("test"));
    let c = ConnInfo::parse("postgres://localhost").unwrap();
    assert_eq!(c.get("host"), Some("localhost"));
    assert_eq!(c.get("port"), None);
}

#[test]
fn defaults() {
    let s = settings(&[("connectionString", "host=localhost user=u")]);
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    assert_eq!(s.timeout, Duration::from_secs(20));
    assert!(s.max_conns >= 4);
    assert_eq!(s.max_idle, DEFAULT_MAX_IDLE);
    assert_eq!(s.exec_mode, ExecMode::CacheStatement);
    assert_eq!(s.tls.mode, SslMode::Prefer);
    assert_eq!(s.tls.roots, None);
    assert_eq!(s.display, "localhost:5432");
    assert_eq!(s.pg.get_user(), Some("u"));
}

#[test]
fn every_field_is_read() {
    let s = settings(&[
        ("url", "host=ignored user=ignored"),
        ("host", "db1,db2"),
        ("port", "6000,6001"),
        ("database", "d"),
        ("user", "u"),
        ("password", "p"),
        ("sslRootCert", "/ca.pem"),
        ("timeoutInSeconds", "30"),
        ("maxConns", "7"),
        ("connectionMaxIdleTime", "5m"),
        ("queryExecMode", "simple_protocol"),
        ("useAzureAD", "false"),
    ]);
    assert_eq!(
        s.pg.get_hosts(),
        [Host::Tcp("db1".into()), Host::Tcp("db2".into())]
    );
    assert_eq!(s.pg.get_ports(), [6000, 6001]);
    assert_eq!(s.pg.get_dbname(), Some("d"));
    assert_eq!(s.pg.get_user(), Some("u"));
    assert_eq!(s.pg.get_password(), Some(&b"p"[..]));
    assert_eq!(s.tls.roots, Some(Roots::File("/ca.pem".into())));
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(s.max_conns, 7);
    assert_eq!(s.max_idle, Duration::from_secs(300));
    assert_eq!(s.exec_mode, ExecMode::SimpleProtocol);
    assert!(!s.exec_mode.caches_statements());
    assert_eq!(s.display, "db1:6000,db2:6001");
    // `timeout` takes a Go duration too.
    assert_eq!(
        settings(&[("host", "h"), ("user", "u"), ("timeout", "1m30s")]).timeout,
        Duration::from_secs(90)
    );
    // maxConns 0 or less means the default.
    assert!(settings(&[("host", "h"), ("user", "u"), ("maxConns", "-1")]).max_conns >= 4);
}

#[test]
fn connection_string_settings() {
    let s = settings(&[(
        "connectionString",
        "host=/run/pg,h2 hostaddr=10.0.0.1,10.0.0.2 user=u connect_timeout=10 keepalives=1 keepalives_idle=30 \
         target_session_attrs=read-write channel_binding=require load_balance_hosts=random \
         application_name=app options='-c geqo=off' search_path='a b' pool_max_conns=9 \
         pool_max_conn_idle_time=2m pool_max_conn_lifetime=10m pool_health_check_period=5s \
         default_query_exec_mode=exec statement_cache_capacity=10 sslmode=verify-ca sslrootcert=system",
    )]);
    assert_eq!(s.pg.get_connect_timeout(), Some(&Duration::from_secs(10)));
    assert_eq!(s.pg.get_hostaddrs().len(), 2);
    assert_eq!(s.pg.get_application_name(), Some("app"));
    assert_eq!(s.pg.get_options(), Some("-c geqo=off -c search_path=a\\ b"));
    assert_eq!(s.max_conns, 9);
    assert_eq!(s.max_idle, Duration::from_secs(120));
    assert_eq!(s.max_lifetime, Duration::from_secs(600));
    assert_eq!(s.health_check_period, Duration::from_secs(5));
    assert_eq!(s.exec_mode, ExecMode::Exec);
    assert_eq!(s.tls.mode, SslMode::VerifyCa);
    assert_eq!(s.tls.roots, Some(Roots::System));
    assert_eq!(s.tls.verification(), (true, false));
    assert_eq!(s.display, "/run/pg/.s.PGSQL.5432,h2:5432");
    // Metadata wins over the connection string's pool settings.
    let s = settings(&[
        (
            "connectionString",
            "host=h user=u pool_max_conns=9 pool_max_conn_idle_time=2m default_query_exec_mode=exec",
        ),
        ("maxConns", "3"),
        ("connectionMaxIdleTime", "1m"),
        ("queryExecMode", "cache_describe"),
    ]);
    assert_eq!(s.max_conns, 3);
    assert_eq!(s.max_idle, Duration::from_secs(60));
    assert_eq!(s.exec_mode, ExecMode::CacheDescribe);
}

#[test]
fn sslmodes() {
    let mode =
        |m: &str| settings(&[("connectionString", &format!("host=h user=u sslmode={m}"))]).tls;
    assert_eq!(mode("disable").mode, SslMode::Disable);
    assert_eq!(mode("allow").mode, SslMode::Prefer);
    assert_eq!(mode("prefer").verification(), (false, false));
    assert_eq!(mode("require").verification(), (false, false));
    assert_eq!(mode("verify-ca").verification(), (true, false));
    assert_eq!(mode("verify-full").verification(), (true, true));
    // As libpq: require with a root certificate checks the chain.
    let s = settings(&[
        ("connectionString", "host=h user=u sslmode=require"),
        ("sslRootCert", "/ca.pem"),
    ]);
    assert_eq!(s.tls.verification(), (true, false));
}

#[test]
fn every_problem_is_reported() {
    let errs = errors(&[
        (
            "connectionString",
            "host=h user=u sslmode=maybe port=x passfile=/p sslcert=/c",
        ),
        ("timeout", "0.5s"),
        ("maxConns", "many"),
        ("queryExecMode", "fast"),
        ("useAWSIAM", "true"),
        ("useAzureAD", "yes"),
    ]);
    let all = errs.join("\n");
    for needle in [
        "connectionString: invalid connection string: invalid value for sslmode",
        "connectionString: invalid connection string: invalid value for port",
        "passfile is not supported",
        "sslcert and sslkey go together",
        "timeout: invalid value for timeout",
        "maxConns: invalid value for maxConns",
        "queryExecMode: invalid queryExecMode metadata value: fast",
        "useAWSIAM: useAWSIAM is not supported",
        "useAzureAD: useAzureAD is not supported",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    let errs = errors(&[]);
    assert_eq!(
        errs,
        ["connectionString: missing connection string: set connectionString (alias url) or host"]
    );
    let errs = errors(&[("connectionString", "host=a,b,c port=1,2 user=u")]);
    assert!(errs[0].contains("2 ports for 3 hosts"), "{errs:?}");
    let errs = errors(&[("connectionString", "host=h user=u client_encoding=latin1")]);
    assert!(errs[0].contains("client_encoding"), "{errs:?}");
}

#[test]
fn params_are_parsed_as_a_json_array() {
    assert!(params::parse(None).unwrap().is_empty());
    assert!(params::parse(Some(&" ".to_owned())).unwrap().is_empty());
    assert_eq!(
        params::parse(Some(&"[1, \"a\", null]".to_owned()))
            .unwrap()
            .len(),
        3
    );
    for bad in ["{}", "1", "\"[]\"", "[1,", "nope"] {
        let e = params::parse(Some(&bad.to_owned())).unwrap_err();
        assert!(
            e.message().starts_with(
                "invalid metadata property params: failed to unserialize into an array: "
            ),
            "{e}"
        );
    }
}

fn text(json: &str, ty: &Type) -> Option<String> {
    let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
    params::to_text(&raw, ty).unwrap()
}

#[test]
fn params_become_text() {
    assert_eq!(text("null", &Type::INT4), None);
    assert_eq!(text("\"a'b\\\"c\"", &Type::TEXT).as_deref(), Some("a'b\"c"));
    assert_eq!(
        text("12345678901234567890.000000000001", &Type::NUMERIC).as_deref(),
        Some("12345678901234567890.000000000001")
    );
    assert_eq!(text("1e3", &Type::FLOAT8).as_deref(), Some("1e3"));
    assert_eq!(text("true", &Type::BOOL).as_deref(), Some("true"));
    assert_eq!(
        text("{\"a\": [1]}", &Type::JSONB).as_deref(),
        Some("{\"a\": [1]}")
    );
    assert_eq!(text("[1, 2]", &Type::JSONB).as_deref(), Some("[1, 2]"));
    assert_eq!(
        text("[1, null, 3]", &Type::INT4_ARRAY).as_deref(),
        Some("{1,NULL,3}")
    );
    assert_eq!(
        text("[[1, 2], [3, 4]]", &Type::INT4_ARRAY).as_deref(),
        Some("{{1,2},{3,4}}")
    );
    assert_eq!(text("[]", &Type::TEXT_ARRAY).as_deref(), Some("{}"));
    assert_eq!(
        text(
            r#"["a b", "q\"}", "back\\slash", {"k": 1}]"#,
            &Type::TEXT_ARRAY
        )
        .as_deref(),
        Some(r#"{"a b","q\"}","back\\slash","{\"k\": 1}"}"#)
    );
    let types = [Type::INT4, Type::TEXT];
    let raw: Vec<Box<RawValue>> = serde_json::from_str("[1]").unwrap();
    assert!(params::bind(&raw, &types).is_err());
    let raw: Vec<Box<RawValue>> = serde_json::from_str("[1, \"x\"]").unwrap();
    assert_eq!(params::bind(&raw, &types).unwrap().len(), 2);
}

fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [ndigits, weight as u16, sign, dscale] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    for d in digits {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn numeric_keeps_every_digit() {
    assert_eq!(numeric_text(&numeric(0, 0, 0, 0, &[])).unwrap(), "0");
    assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
    // 12.3400
    assert_eq!(
        numeric_text(&numeric(2, 0, 0, 4, &[12, 3400])).unwrap(),
        "12.3400"
    );
    // -0.0005
    assert_eq!(
        numeric_text(&numeric(1, -1, 0x4000, 4, &[5])).unwrap(),
        "-0.0005"
    );
    // 0.000000001 (weight -3)
    assert_eq!(
        numeric_text(&numeric(1, -3, 0, 9, &[1000])).unwrap(),
        "0.000000001"
    );
    // 10000000 (two groups, the second zero, trailing groups omitted)
    assert_eq!(
        numeric_text(&numeric(1, 1, 0, 0, &[1000])).unwrap(),
        "10000000"
    );
    assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
    assert_eq!(
        numeric_text(&numeric(0, 0, 0xD000, 0, &[])).unwrap(),
        "Infinity"
    );
    assert_eq!(
        numeric_text(&numeric(0, 0, 0xF000, 0, &[])).unwrap(),
        "-Infinity"
    );
    assert!(numeric_text(&[0, 1]).is_err());
    assert!(numeric_text(&numeric(2, 0, 0, 0, &[1])).is_err());
}

fn write(d: &Decoder, raw: Option<&[u8]>) -> String {
    let mut s = String::new();
    d.write(raw, &mut s).unwrap();
    s
}

#[test]
fn decoders_write_json() {
    assert_eq!(write(&Decoder::Int4, None), "null");
    assert_eq!(write(&Decoder::Bool, Some(&[1])), "true");
    assert_eq!(write(&Decoder::Int8, Some(&(-5i64).to_be_bytes())), "-5");
    assert_eq!(
        write(&Decoder::Float8, Some(&f64::NAN.to_be_bytes())),
        "\"NaN\""
    );
    assert_eq!(
        write(&Decoder::Float8, Some(&f64::INFINITY.to_be_bytes())),
        "\"Infinity\""
    );
    assert_eq!(write(&Decoder::Float4, Some(&0.1f32.to_be_bytes())), "0.1");
    assert_eq!(write(&Decoder::Float8, Some(&1.0f64.to_be_bytes())), "1.0");
    assert_eq!(write(&Decoder::Bytea, Some(b"\x00\xffA")), "\"AP9B\"");
    assert_eq!(
        write(&Decoder::Text, Some("tab\t\"é\"".as_bytes())),
        "\"tab\\t\\\"é\\\"\""
    );
    assert_eq!(
        write(&Decoder::Jsonb, Some(b"\x01{\"a\": 1}")),
        "{\"a\": 1}"
    );
    assert_eq!(write(&Decoder::Char, Some(&[0])), "\"\"");
    assert_eq!(write(&Decoder::Opaque, Some(b"(1,2)")), "\"(1,2)\"");
    assert_eq!(write(&Decoder::Opaque, Some(b"\xff\x00")), "\"/wA=\"");
    assert!(
        Decoder::Int4
            .write(Some(&[1, 2]), &mut String::new())
            .is_err()
    );
    assert!(
        Decoder::Jsonb
            .write(Some(b"\x02{}"), &mut String::new())
            .is_err()
    );
    assert_eq!(
        write(
            &Decoder::Uuid,
            Some(&[
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11
            ])
        ),
        "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\""
    );
    // 2000-01-01 00:00:00.5 and one day before the epoch.
    assert_eq!(
        write(&Decoder::Timestamp, Some(&500_000i64.to_be_bytes())),
        "\"2000-01-01T00:00:00.5Z\""
    );
    assert_eq!(
        write(&Decoder::Date, Some(&(-1i32).to_be_bytes())),
        "\"1999-12-31\""
    );
    assert_eq!(
        write(&Decoder::Date, Some(&i32::MAX.to_be_bytes())),
        "\"infinity\""
    );
    assert_eq!(
        write(&Decoder::Timestamp, Some(&i64::MIN.to_be_bytes())),
        "\"-infinity\""
    );
    let mut timetz = 3_600_000_000i64.to_be_bytes().to_vec();
    timetz.extend_from_slice(&(-19_800i32).to_be_bytes());
    assert_eq!(write(&Decoder::Timetz, Some(&timetz)), "\"01:00:00+05:30\"");
}

#[test]
fn arrays_decode_every_dimension() {
    // int4[] {{1,2},{3,NULL}}
    let mut raw = Vec::new();
    for v in [2i32, 1, 23, 2, 1, 2, 1] {
        raw.extend_from_slice(&v.to_be_bytes());
    }
    for v in [Some(1i32), Some(2), Some(3), None] {
        match v {
            Some(n) => {
                raw.extend_from_slice(&4i32.to_be_bytes());
                raw.extend_from_slice(&n.to_be_bytes());
            }
            None => raw.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let d = Decoder::Array(Box::new(Decoder::Int4));
    assert_eq!(write(&d, Some(&raw)), "[[1,2],[3,null]]");
    let mut empty = Vec::new();
    for v in [0i32, 0, 23] {
        empty.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(write(&d, Some(&empty)), "[]");
    assert!(
        d.write(Some(&raw[..raw.len() - 2]), &mut String::new())
            .is_err()
    );
}

#[test]
fn decoder_choice() {
    assert_eq!(
        Decoder::for_type(&Type::INT4_ARRAY),
        Some(Decoder::Array(Box::new(Decoder::Int4)))
    );
    assert_eq!(
        Decoder::for_type(&Type::TIMESTAMPTZ),
        Some(Decoder::Timestamp)
    );
    assert_eq!(Decoder::for_type(&Type::INET), None);
    assert_eq!(Decoder::for_type(&Type::INET_ARRAY), None);
    assert_eq!(Decoder::for_type(&Type::MONEY), None);
}

#[test]
fn intervals_follow_postgres_iso_8601_style() {
    assert_eq!(interval_iso8601(0, 0, 0), "PT0S");
    assert_eq!(
        interval_iso8601(14, 3, 14_706_789_000),
        "P1Y2M3DT4H5M6.789S"
    );
    assert_eq!(interval_iso8601(0, -1, -1_500_000), "P-1DT-1.5S");
    assert_eq!(interval_iso8601(-13, 0, 0), "P-1Y-1M");
    assert_eq!(interval_iso8601(0, 0, 60_000_000), "PT1M");
    assert_eq!(interval_iso8601(0, 0, 1), "PT0.000001S");
}

#[test]
fn unknown_columns_are_printed_as_text_in_a_cte() {
    let sql = wrap_as_text(
        "SELECT a, b FROM t -- comment\n;",
        &[Some(Decoder::Int4), None],
    );
    assert_eq!(
        sql,
        "WITH \"__bindery_rows\"(\"c1\",\"c2\") AS (\nSELECT a, b FROM t -- comment\n\n) SELECT \"c1\", CASE WHEN num_nulls(\"c2\") = 0 THEN format('%s', \"c2\") END FROM \"__bindery_rows\""
    );
}

#[test]
fn go_formats() {
    use std::time::{SystemTime, UNIX_EPOCH};
    assert_eq!(bindery_core::time::go_duration(Duration::ZERO), "0s");
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_nanos(850)),
        "850ns"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_nanos(294_000)),
        "294µs"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_nanos(294_100)),
        "294.1µs"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_micros(1_200)),
        "1.2ms"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_millis(1_500)),
        "1.5s"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_millis(123_250)),
        "2m3.25s"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_secs(3_600)),
        "1h0m0s"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_secs(60)),
        "1m0s"
    );
    let t = UNIX_EPOCH + Duration::new(1_714_566_645, 123_400_000);
    assert_eq!(
        bindery_core::time::rfc3339_nano(t),
        "2024-05-01T12:30:45.1234Z"
    );
    assert_eq!(
        bindery_core::time::rfc3339_nano(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00Z"
    );
    let now = bindery_core::time::rfc3339_nano(SystemTime::now());
    assert!(now.ends_with('Z') && now.len() >= 20, "{now}");
}
