#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use std::time::Duration;

use bindery_core::{BindingFactory, Metadata};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Value};
use serde_json::value::RawValue;

use crate::config::{DEFAULT_DIAL_TIMEOUT, MySqlSettings, Tls};
use crate::dsn::{Address, Dsn};
use crate::types::{Kind, write};
use crate::{MySqlFactory, params};

fn settings(pairs: &[(&str, &str)]) -> MySqlSettings {
    MySqlSettings::parse(&Metadata::from_pairs(pairs.iter().copied())).unwrap()
}

fn errors(pairs: &[(&str, &str)]) -> String {
    MySqlSettings::parse(&Metadata::from_pairs(pairs.iter().copied()))
        .unwrap_err()
        .iter()
        .map(|e| format!("{}: {}", e.field().unwrap_or(""), e.message()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn spec_lists_every_field() {
    let spec = MySqlFactory.spec();
    assert_eq!(spec.type_name, "bindings.mysql");
    assert_eq!(spec.operations, ["exec", "query", "close"]);
    for name in [
        "url",
        "pemPath",
        "maxIdleConns",
        "maxOpenConns",
        "connMaxLifetime",
        "connMaxIdleTime",
    ] {
        assert!(spec.field(name).is_some(), "{name} is not listed");
    }
    assert!(spec.field("url").unwrap().required);
    assert!(spec.is_sensitive("URL"));
    assert!(!spec.is_sensitive("pemPath"));
}

#[test]
fn go_dsns() {
    let d =
        Dsn::parse("us:er:p@ss:w@rd@tcp(db.example.com:3307)/my%20db?tls=true&loc=UTC").unwrap();
    assert_eq!(d.user.as_deref(), Some("us"));
    assert_eq!(d.password.as_deref(), Some("er:p@ss:w@rd"));
    assert_eq!(d.address, Address::Tcp("db.example.com".into(), 3307));
    assert_eq!(d.database.as_deref(), Some("my db"));
    assert_eq!(
        d.params,
        [("tls".into(), "true".into()), ("loc".into(), "UTC".into())]
    );
    let d = Dsn::parse("root@/test").unwrap();
    assert_eq!(d.address, Address::Tcp("127.0.0.1".into(), 3306));
    assert_eq!(d.password, None);
    let d = Dsn::parse("root:@tcp(localhost)/").unwrap();
    assert_eq!(d.address, Address::Tcp("localhost".into(), 3306));
    assert_eq!(d.password.as_deref(), Some(""));
    assert_eq!(d.database, None);
    let d = Dsn::parse("u@tcp([::1]:3310)/db").unwrap();
    assert_eq!(d.address, Address::Tcp("::1".into(), 3310));
    assert_eq!(d.address.to_string(), "[::1]:3310");
    let d = Dsn::parse("u@unix(/run/mysqld/mysqld.sock)/db?time_zone=%27%2B00%3A00%27").unwrap();
    assert_eq!(d.address, Address::Unix("/run/mysqld/mysqld.sock".into()));
    assert_eq!(d.params, [("time_zone".into(), "'+00:00'".into())]);
    let d = Dsn::parse("/db").unwrap();
    assert_eq!(d.user, None);
    assert_eq!(d.database.as_deref(), Some("db"));
    for bad in [
        "root@tcp(host:3306",
        "no-slash",
        "u@tcp(h:x)/d",
        "u@udp(h)/d",
        "u@/d?novalue",
    ] {
        let e = Dsn::parse(bad).unwrap_err();
        assert!(e.starts_with("invalid DSN"), "{bad}: {e}");
    }
    let e = Dsn::parse("root:never-shown@tcp(h:3306/d").unwrap_err();
    assert!(!e.contains("never-shown"), "{e}");
}

#[test]
fn url_dsns() {
    let d = Dsn::parse("mysql://us%40er:p%3Ass@db:3307/app?clientFoundRows=true").unwrap();
    assert_eq!(d.user.as_deref(), Some("us@er"));
    assert_eq!(d.password.as_deref(), Some("p:ss"));
    assert_eq!(d.address, Address::Tcp("db".into(), 3307));
    assert_eq!(d.database.as_deref(), Some("app"));
    assert_eq!(d.params, [("clientFoundRows".into(), "true".into())]);
    let d = Dsn::parse("mysql://localhost").unwrap();
    assert_eq!(d.address, Address::Tcp("localhost".into(), 3306));
    assert_eq!(d.user, None);
    let d = Dsn::parse("mariadb://u@[::1]/x").unwrap();
    assert_eq!(d.address, Address::Tcp("::1".into(), 3306));
}

#[test]
fn defaults() {
    let s = settings(&[("url", "root@tcp(h:3306)/d")]);
    assert_eq!(s.tls, Tls::Off);
    assert_eq!(s.max_idle, 2);
    assert_eq!(s.max_open, 100);
    assert_eq!(s.conn_max_lifetime, None);
    assert_eq!(s.conn_max_idle_time, None);
    assert_eq!(s.dial_timeout, DEFAULT_DIAL_TIMEOUT);
    assert_eq!(s.call_timeout, None);
    assert!(!s.client_found_rows);
    assert!(s.init.is_empty());
    assert_eq!(s.display, "h:3306");
}

#[test]
fn every_field_and_parameter() {
    let s = settings(&[
        (
            "url",
            "u:p@tcp(h:1)/d?tls=custom&timeout=3s&readTimeout=2s&writeTimeout=1s&clientFoundRows=true\
             &compress=1&allowCleartextPasswords=true&columnsWithAlias=true&maxAllowedPacket=1048576\
             &connectionAttributes=app:x,team:y&collation=utf8mb4_bin&charset=utf8mb4,utf8&loc=UTC\
             &parseTime=true&interpolateParams=true&multiStatements=true&sql_mode=%27ANSI%27",
        ),
        ("pemPath", "/ca.pem"),
        ("maxIdleConns", "5"),
        ("maxOpenConns", "3"),
        ("connMaxLifetime", "1h"),
        ("connMaxIdleTime", "90"),
    ]);
    assert_eq!(s.tls, Tls::Custom("/ca.pem".into()));
    assert_eq!(s.dial_timeout, Duration::from_secs(3));
    assert_eq!(s.call_timeout, Some(Duration::from_secs(3)));
    assert!(s.client_found_rows && s.compress && s.cleartext_passwords && s.columns_with_alias);
    assert_eq!(s.max_allowed_packet, Some(1_048_576));
    assert_eq!(
        s.connection_attributes,
        [("app".into(), "x".into()), ("team".into(), "y".into())]
    );
    assert_eq!(
        s.init,
        [
            "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
            "SET sql_mode='ANSI'"
        ]
    );
    // maxIdleConns is capped by maxOpenConns, as database/sql does.
    assert_eq!(s.max_idle, 3);
    assert_eq!(s.max_open, 3);
    assert_eq!(s.conn_max_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(s.conn_max_idle_time, Some(Duration::from_secs(90)));
    assert_eq!(s.display, "h:1");
    // TLS modes.
    let tls = |p: &str| settings(&[("url", &format!("u@tcp(h)/d?tls={p}"))]).tls;
    assert_eq!(tls("true"), Tls::Verified);
    assert_eq!(tls("false"), Tls::Off);
    assert_eq!(tls("skip-verify"), Tls::SkipVerify);
    assert_eq!(tls("preferred"), Tls::SkipVerify);
    // pemPath without a tls parameter turns TLS on; tls=false keeps it off.
    let s = settings(&[("url", "u@tcp(h)/d"), ("pemPath", "/ca.pem")]);
    assert_eq!(s.tls, Tls::Custom("/ca.pem".into()));
    let s = settings(&[("url", "u@tcp(h)/d?tls=false"), ("pemPath", "/ca.pem")]);
    assert_eq!(s.tls, Tls::Off);
}

#[test]
fn every_problem_is_reported() {
    let all = errors(&[
        (
            "url",
            "u@tcp(h)/d?tls=maybe&timeout=soon&charset=latin1&loc=Local&clientFoundRows=perhaps&bad-name=1&collation=latin1_swedish_ci",
        ),
        ("maxIdleConns", "x"),
        ("connMaxLifetime", "forever"),
    ]);
    for needle in [
        "url: invalid DSN: invalid value for tls",
        "url: invalid DSN: invalid value for timeout",
        "url: invalid DSN: invalid value for charset",
        "url: invalid DSN: invalid value for loc",
        "url: invalid DSN: invalid value for clientFoundRows",
        "url: invalid DSN: invalid value for a system variable",
        "url: invalid DSN: invalid value for collation",
        "maxIdleConns: invalid value for maxIdleConns",
        "connMaxLifetime: invalid value for connMaxLifetime",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors(&[]), "url: missing MySql connection string");
    assert!(
        errors(&[("url", "nonsense")])
            .starts_with("url: illegal Data Source Name (DSN) specified by url: invalid DSN")
    );
    assert!(
        errors(&[("url", "u@tcp(h)/d?tls=custom")]).contains("pemPath: tls=custom needs pemPath")
    );
}

fn value(json: &str) -> Value {
    let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
    params::to_value(&raw).unwrap()
}

#[test]
fn params_become_values() {
    assert_eq!(value("null"), Value::NULL);
    assert_eq!(value("true"), Value::Int(1));
    assert_eq!(value("false"), Value::Int(0));
    assert_eq!(value("-42"), Value::Int(-42));
    assert_eq!(value("18446744073709551615"), Value::UInt(u64::MAX));
    assert_eq!(value("2.5"), Value::Double(2.5));
    assert_eq!(value("0.1"), Value::Double(0.1));
    // A literal a double cannot hold exactly goes as text, digits intact.
    assert_eq!(
        value("12345678901234567890.0123456789"),
        Value::Bytes(b"12345678901234567890.0123456789".to_vec())
    );
    assert_eq!(value("1e3"), Value::Bytes(b"1e3".to_vec()));
    assert_eq!(
        value(r#""it's \"x\"""#),
        Value::Bytes(b"it's \"x\"".to_vec())
    );
    assert_eq!(
        value(r#"{"a": [1]}"#),
        Value::Bytes(br#"{"a": [1]}"#.to_vec())
    );
    assert_eq!(value("[1, 2]"), Value::Bytes(b"[1, 2]".to_vec()));
    assert!(params::parse(None).unwrap().is_empty());
    assert!(params::parse(Some(&"  ".to_owned())).unwrap().is_empty());
    assert_eq!(
        params::parse(Some(&"[1, null]".to_owned())).unwrap().len(),
        2
    );
    for bad in ["{}", "1", "[1,", "nope"] {
        let e = params::parse(Some(&bad.to_owned())).unwrap_err();
        assert!(
            e.message().starts_with(
                "invalid metadata property params: failed to unserialize into an array: "
            ),
            "{e}"
        );
    }
}

fn col(t: ColumnType) -> Column {
    Column::new(t).with_character_set(45)
}

fn json(kind: Kind, v: Value) -> String {
    let mut s = String::new();
    write(kind, &v, &mut s).unwrap();
    s
}

#[test]
fn column_kinds() {
    use ColumnType::*;
    assert_eq!(Kind::of(&col(MYSQL_TYPE_LONGLONG)), Kind::Int);
    assert_eq!(Kind::of(&col(MYSQL_TYPE_YEAR)), Kind::Int);
    assert_eq!(Kind::of(&col(MYSQL_TYPE_NEWDECIMAL)), Kind::Decimal);
    assert_eq!(Kind::of(&col(MYSQL_TYPE_FLOAT)), Kind::Float);
    assert_eq!(Kind::of(&col(MYSQL_TYPE_BIT)), Kind::Bit);
    assert_eq!(Kind::of(&col(MYSQL_TYPE_VAR_STRING)), Kind::Text);
    assert_eq!(
        Kind::of(&col(MYSQL_TYPE_BLOB)),
        Kind::Text,
        "TEXT is a BLOB with a text charset"
    );
    assert_eq!(
        Kind::of(&col(MYSQL_TYPE_BLOB).with_character_set(63)),
        Kind::Binary
    );
    assert_eq!(
        Kind::of(
            &col(MYSQL_TYPE_STRING)
                .with_character_set(63)
                .with_flags(ColumnFlags::ENUM_FLAG)
        ),
        Kind::Text
    );
    // MySQL's JSON columns carry the binary charset and are still JSON.
    assert_eq!(
        Kind::of(&col(MYSQL_TYPE_JSON).with_character_set(63)),
        Kind::Json
    );
    assert_eq!(Kind::of(&col(MYSQL_TYPE_DATETIME2)), Kind::DateTime);
    assert_eq!(
        Kind::of(&col(MYSQL_TYPE_TIME2).with_decimals(3)),
        Kind::Time(3)
    );
    assert_eq!(Kind::of(&col(MYSQL_TYPE_GEOMETRY)), Kind::Binary);
}

#[test]
fn values_become_json() {
    assert_eq!(json(Kind::Int, Value::Bytes(b"-5".to_vec())), "-5");
    assert_eq!(
        json(Kind::Int, Value::Bytes(b"18446744073709551615".to_vec())),
        "18446744073709551615"
    );
    assert_eq!(json(Kind::Int, Value::UInt(7)), "7");
    assert_eq!(json(Kind::Float, Value::Float(0.1)), "0.1");
    assert_eq!(json(Kind::Float, Value::Double(1.0)), "1.0");
    assert_eq!(json(Kind::Float, Value::Bytes(b"1e20".to_vec())), "1e+20");
    assert_eq!(json(Kind::Float, Value::Double(1e20)), "1e+20");
    assert_eq!(json(Kind::Float, Value::Double(f64::NAN)), "\"NaN\"");
    assert_eq!(
        json(Kind::Decimal, Value::Bytes(b"-0.50".to_vec())),
        "\"-0.50\""
    );
    assert_eq!(json(Kind::Bit, Value::Bytes(vec![0x02, 0xaa])), "682");
    assert_eq!(
        json(Kind::Text, Value::Bytes("é\n".as_bytes().to_vec())),
        "\"é\\n\""
    );
    assert_eq!(
        json(Kind::Binary, Value::Bytes(vec![0, 255, 65])),
        "\"AP9B\""
    );
    assert_eq!(
        json(Kind::Json, Value::Bytes(br#" {"a":1} "#.to_vec())),
        r#"{"a":1}"#
    );
    assert_eq!(
        json(Kind::Json, Value::Bytes(b"not json".to_vec())),
        "\"not json\""
    );
    assert_eq!(
        json(Kind::Date, Value::Date(2024, 2, 29, 0, 0, 0, 0)),
        "\"2024-02-29\""
    );
    assert_eq!(
        json(Kind::Date, Value::Bytes(b"0000-00-00".to_vec())),
        "\"0000-00-00\""
    );
    assert_eq!(
        json(Kind::DateTime, Value::Date(2024, 5, 1, 12, 30, 45, 123_400)),
        "\"2024-05-01T12:30:45.1234Z\""
    );
    assert_eq!(
        json(
            Kind::DateTime,
            Value::Bytes(b"2024-05-01 12:30:45.123400".to_vec())
        ),
        "\"2024-05-01T12:30:45.1234Z\""
    );
    assert_eq!(
        json(
            Kind::DateTime,
            Value::Bytes(b"2024-05-01 12:30:45".to_vec())
        ),
        "\"2024-05-01T12:30:45Z\""
    );
    assert_eq!(
        json(Kind::DateTime, Value::Date(0, 0, 0, 0, 0, 0, 0)),
        "\"0000-00-00 00:00:00\""
    );
    assert_eq!(
        json(Kind::Time(0), Value::Time(true, 34, 22, 59, 59, 0)),
        "\"-838:59:59\""
    );
    assert_eq!(
        json(Kind::Time(3), Value::Time(false, 0, 12, 0, 0, 500_000)),
        "\"12:00:00.500\""
    );
    assert_eq!(
        json(Kind::Time(0), Value::Bytes(b"01:02:03".to_vec())),
        "\"01:02:03\""
    );
    assert!(write(Kind::Int, &Value::Bytes(b"x".to_vec()), &mut String::new()).is_err());
    assert!(write(Kind::Bit, &Value::Bytes(vec![1; 9]), &mut String::new()).is_err());
}

#[test]
fn go_formats() {
    use std::time::UNIX_EPOCH;
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_nanos(294_000)),
        "294µs"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_micros(1_200)),
        "1.2ms"
    );
    assert_eq!(
        bindery_core::time::go_duration(Duration::from_secs(3_600)),
        "1h0m0s"
    );
    assert_eq!(
        bindery_core::time::rfc3339_nano(UNIX_EPOCH + Duration::new(1_714_566_645, 5)),
        "2024-05-01T12:30:45.000000005Z"
    );
}
