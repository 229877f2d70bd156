#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use bindery_core::{ErrorKind, Metadata};

use super::*;
use crate::config::{Mode, PemSource, RedisDuration, parse_redis_duration, resolve_hosts};

fn parse(pairs: &[(&str, &str)]) -> Result<RedisConfig, Vec<BindingError>> {
    RedisConfig::parse(&Metadata::from_pairs(pairs.iter().copied()))
}

fn messages(errs: &[BindingError]) -> Vec<String> {
    errs.iter().map(|e| e.message().to_owned()).collect()
}

#[test]
fn defaults() {
    let c = parse(&[("redisHost", "localhost:6379")]).unwrap();
    assert_eq!(c.hosts, vec![("localhost".to_owned(), 6379)]);
    assert_eq!(c.username, None);
    assert_eq!(c.password, None);
    assert_eq!(c.db, 0);
    assert_eq!(c.mode, Mode::Node);
    assert_eq!(c.tls, None);
    assert_eq!(c.max_retries, 3);
    assert_eq!(c.min_retry_interval, Duration::from_millis(8));
    assert_eq!(c.max_retry_interval, Duration::from_millis(512));
    assert_eq!(c.dial_timeout, Some(Duration::from_secs(5)));
    // readTimeout 3s + writeTimeout (= readTimeout) 3s.
    assert_eq!(c.response_timeout, Some(Duration::from_secs(6)));
    assert!(c.pool.present().is_empty());
}

#[test]
fn missing_host_is_dapr_s_error() {
    let errs = parse(&[]).unwrap_err();
    assert_eq!(
        messages(&errs),
        ["redis binding error: missing host address"]
    );
    assert_eq!(errs[0].field(), Some("redisHost"));
}

#[test]
fn every_field_is_read() {
    let c = parse(&[
        ("redisHost", "redis.example"),
        ("redisPort", "6380"),
        ("redisUsername", "alice"),
        ("redisPassword", "s3cret"),
        ("redisDB", "4"),
        ("redisType", "NODE"),
        ("enableTLS", "true"),
        ("insecureSkipTLSVerify", "yes"),
        (
            "clientCert",
            "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
        ),
        ("clientKey", "/etc/redis/client.key"),
        ("redisMaxRetries", "5"),
        ("redisMinRetryInterval", "10"),
        ("redisMaxRetryInterval", "2s"),
        ("dialTimeout", "1s"),
        ("readTimeout", "250ms"),
        ("writeTimeout", "750"),
        ("poolSize", "20"),
        ("poolTimeout", "4s"),
        ("maxConnAge", "30m"),
        ("minIdleConns", "2"),
        ("idleCheckFrequency", "-1"),
        ("idleTimeout", "10m"),
    ])
    .unwrap();
    assert_eq!(c.hosts, vec![("redis.example".to_owned(), 6380)]);
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("s3cret"));
    assert_eq!(c.db, 4);
    let tls = c.tls.clone().unwrap();
    assert!(tls.insecure);
    let (cert, key) = tls.client.unwrap();
    assert!(matches!(cert, PemSource::Inline(_)));
    assert_eq!(key, PemSource::File("/etc/redis/client.key".into()));
    assert_eq!(c.max_retries, 5);
    assert_eq!(c.min_retry_interval, Duration::from_millis(10));
    assert_eq!(c.max_retry_interval, Duration::from_secs(2));
    assert_eq!(c.dial_timeout, Some(Duration::from_secs(1)));
    assert_eq!(c.response_timeout, Some(Duration::from_millis(1000)));
    assert_eq!(c.pool.pool_size, Some(20));
    assert_eq!(
        c.pool.pool_timeout,
        Some(RedisDuration::Value(Duration::from_secs(4)))
    );
    assert_eq!(
        c.pool.max_conn_age,
        Some(RedisDuration::Value(Duration::from_secs(1800)))
    );
    assert_eq!(c.pool.min_idle_conns, Some(2));
    assert_eq!(c.pool.idle_check_frequency, Some(RedisDuration::Disabled));
    assert_eq!(
        c.pool.idle_timeout,
        Some(RedisDuration::Value(Duration::from_secs(600)))
    );
    assert_eq!(c.pool.present().len(), 6);
    // Credentials never show in Debug.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("s3cret"), "{dbg}");
    assert!(!dbg.contains("BEGIN CERTIFICATE"), "{dbg}");
}

#[test]
fn retry_settings_follow_go_redis() {
    let c = parse(&[("redisHost", "h"), ("redisMaxRetries", "-1")]).unwrap();
    assert_eq!(c.max_retries, 0);
    let c = parse(&[("redisHost", "h"), ("redisMaxRetries", "0")]).unwrap();
    assert_eq!(c.max_retries, 3);
    let c = parse(&[("redisHost", "h"), ("maxRetries", "7")]).unwrap();
    assert_eq!(c.max_retries, 7);
    let c = parse(&[
        ("redisHost", "h"),
        ("redisMinRetryInterval", "-1"),
        ("redisMaxRetryInterval", "-1"),
    ])
    .unwrap();
    assert_eq!(c.min_retry_interval, Duration::ZERO);
    assert_eq!(c.max_retry_interval, Duration::ZERO);
    // v0.11's maxRetryBackoff counts nanoseconds.
    let c = parse(&[("redisHost", "h"), ("maxRetryBackoff", "2000000000")]).unwrap();
    assert_eq!(c.max_retry_interval, Duration::from_secs(2));
}

#[test]
fn timeouts_zero_means_default_and_negative_means_none() {
    let c = parse(&[
        ("redisHost", "h"),
        ("dialTimeout", "0"),
        ("readTimeout", "0"),
    ])
    .unwrap();
    assert_eq!(c.dial_timeout, Some(Duration::from_secs(5)));
    assert_eq!(c.response_timeout, Some(Duration::from_secs(6)));
    let c = parse(&[("redisHost", "h"), ("readTimeout", "-1")]).unwrap();
    assert_eq!(c.response_timeout, None);
    let c = parse(&[("redisHost", "h"), ("writeTimeout", "-1")]).unwrap();
    assert_eq!(c.response_timeout, Some(Duration::from_secs(3)));
    let c = parse(&[("redisHost", "h"), ("dialTimeout", "-1s")]).unwrap();
    assert_eq!(c.dial_timeout, None);
}

#[test]
fn redis_durations() {
    assert_eq!(
        parse_redis_duration("15").unwrap(),
        RedisDuration::Value(Duration::from_millis(15))
    );
    assert_eq!(
        parse_redis_duration("1m30s").unwrap(),
        RedisDuration::Value(Duration::from_secs(90))
    );
    assert_eq!(parse_redis_duration("-1").unwrap(), RedisDuration::Disabled);
    assert_eq!(
        parse_redis_duration("-2s").unwrap(),
        RedisDuration::Disabled
    );
    assert!(parse_redis_duration("soon").is_err());
    assert!(parse_redis_duration("-soon").is_err());
}

#[test]
fn bad_values_are_all_reported() {
    let errs = parse(&[
        ("redisHost", "h:notaport"),
        ("redisDB", "x"),
        ("redisType", "sharded"),
        ("enableTLS", "maybe"),
        ("readTimeout", "soon"),
        ("poolSize", "-3"),
        ("redisPort", "70000"),
    ])
    .unwrap_err();
    let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap()).collect();
    for f in [
        "redisHost",
        "redisDB",
        "redisType",
        "enableTLS",
        "readTimeout",
        "poolSize",
        "redisPort",
    ] {
        assert!(fields.contains(&f), "{f} not reported in {fields:?}");
    }
}

#[test]
fn hosts_and_ports() {
    assert_eq!(
        resolve_hosts("a", None).unwrap(),
        vec![("a".to_owned(), 6379)]
    );
    assert_eq!(
        resolve_hosts("a, b:7001", Some(7001)).unwrap(),
        vec![("a".to_owned(), 7001), ("b".to_owned(), 7001)]
    );
    assert_eq!(
        resolve_hosts("[::1]:7000,::1", None).unwrap(),
        vec![("::1".to_owned(), 7000), ("::1".to_owned(), 6379)]
    );
    let e = resolve_hosts("a:6379", Some(6380)).unwrap_err();
    assert!(
        e.contains("already contains port 6379, but redisPort is set to 6380"),
        "{e}"
    );
    assert!(resolve_hosts("a,,b", None).is_err());
    assert!(resolve_hosts(":6379", None).is_err());
    assert!(resolve_hosts("[::1", None).is_err());
}

#[test]
fn modes() {
    let c = parse(&[("redisHost", "a:1,b:2"), ("redisType", "cluster")]).unwrap();
    assert_eq!(c.mode, Mode::Cluster);
    assert_eq!(c.host_display(), "a:1,b:2");
    let c = parse(&[
        ("redisHost", "s1:26379,s2:26379"),
        ("failover", "true"),
        ("sentinelMasterName", "mymaster"),
        ("sentinelUsername", "sen"),
        ("sentinelPassword", "tinel"),
    ])
    .unwrap();
    assert_eq!(
        c.mode,
        Mode::Sentinel {
            master: "mymaster".into()
        }
    );
    assert_eq!(c.sentinel_username.as_deref(), Some("sen"));
    assert_eq!(c.sentinel_password.as_deref(), Some("tinel"));

    let errs = parse(&[("redisHost", "s1"), ("failover", "true")]).unwrap_err();
    assert_eq!(
        messages(&errs),
        ["redis binding error: sentinelMasterName is required when failover is enabled"]
    );
    let errs = parse(&[
        ("redisHost", "s1"),
        ("failover", "true"),
        ("sentinelMasterName", "m"),
        ("redisType", "cluster"),
    ])
    .unwrap_err();
    assert!(messages(&errs)[0].contains("not supported"));
    let errs = parse(&[("redisHost", "a,b")]).unwrap_err();
    assert!(messages(&errs)[0].contains("several addresses"));
}

#[test]
fn tls_settings_need_enable_tls() {
    let errs = parse(&[("redisHost", "h"), ("insecureSkipTLSVerify", "true")]).unwrap_err();
    assert_eq!(errs[0].field(), Some("insecureSkipTLSVerify"));
    let errs = parse(&[("redisHost", "h"), ("clientCert", "c"), ("clientKey", "k")]).unwrap_err();
    assert_eq!(errs[0].field(), Some("clientCert"));
    let errs = parse(&[
        ("redisHost", "h"),
        ("enableTLS", "true"),
        ("clientCert", "c"),
    ])
    .unwrap_err();
    assert_eq!(errs[0].field(), Some("clientKey"));
    let c = parse(&[("redisHost", "h"), ("enableTLS", "true")]).unwrap();
    assert_eq!(
        c.tls,
        Some(crate::config::TlsConfig {
            insecure: false,
            client: None
        })
    );
    // A false flag without TLS is fine.
    assert!(parse(&[("redisHost", "h"), ("insecureSkipTLSVerify", "false")]).is_ok());
}

#[test]
fn unsupported_authentication_is_refused() {
    for f in ["useEntraID", "useAzureAD", "useOIDC"] {
        let errs = parse(&[("redisHost", "h"), (f, "true")]).unwrap_err();
        assert!(messages(&errs)[0].contains("not supported"), "{f}");
    }
    assert!(parse(&[("redisHost", "h"), ("useEntraID", "false")]).is_ok());
}

#[test]
fn spec_lists_every_field_and_credentials() {
    for f in [
        "redisHost",
        "redisPort",
        "redisUsername",
        "redisPassword",
        "redisDB",
        "redisType",
        "enableTLS",
        "insecureSkipTLSVerify",
        "clientCert",
        "clientKey",
        "failover",
        "sentinelMasterName",
        "sentinelUsername",
        "sentinelPassword",
        "redisMaxRetries",
        "maxRetries",
        "redisMinRetryInterval",
        "redisMaxRetryInterval",
        "maxRetryBackoff",
        "dialTimeout",
        "readTimeout",
        "writeTimeout",
        "poolSize",
        "poolTimeout",
        "maxConnAge",
        "minIdleConns",
        "idleCheckFrequency",
        "idleTimeout",
    ] {
        assert!(SPEC.field(f).is_some(), "{f} missing from the spec");
    }
    for f in ["redisPassword", "sentinelPassword", "clientKey"] {
        assert!(SPEC.is_sensitive(f), "{f} must be sensitive");
    }
    assert!(!SPEC.is_sensitive("redisHost"));
    assert_eq!(SPEC.operations, ["create", "delete", "get", "increment"]);
}

fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn ttl_forms() {
    assert_eq!(ttl_from(&md(&[])).unwrap(), None);
    assert_eq!(
        ttl_from(&md(&[("ttlInSeconds", "60")])).unwrap(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        ttl_from(&md(&[("ttl", "1m30s")])).unwrap(),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        ttl_from(&md(&[("TTL", "1500ms")])).unwrap(),
        Some(Duration::from_millis(1500))
    );
    // `ttl` wins over `ttlInSeconds`, as in Dapr.
    assert_eq!(
        ttl_from(&md(&[("ttl", "5"), ("ttlInSeconds", "9")])).unwrap(),
        Some(Duration::from_secs(5))
    );
    for (v, want) in [
        ("0", "ttl value must be higher than zero: actual is '0'"),
        ("-3", "ttl value must be higher than zero: actual is '-3'"),
        ("-3s", "ttl value must be higher than zero: actual is '-3s'"),
        ("abc", "ttl value must be a valid integer: actual is 'abc'"),
        ("0s", "ttl value must be at least 1ms: actual is '0s'"),
    ] {
        let e = ttl_from(&md(&[("ttl", v)])).unwrap_err();
        assert_eq!(e.message(), want);
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    }
}

#[test]
fn error_mapping() {
    let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let e = map_error("h:1", "SET", &refused);
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.message()
            .starts_with("redis binding: redis at h:1 is unavailable: ")
    );
    assert!(retryable(&refused, Retry::NotSent));

    let reset = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    assert!(retryable(&reset, Retry::Always));
    assert!(!retryable(&reset, Retry::NotSent));

    let timeout = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    assert_eq!(map_error("h:1", "GET", &timeout).kind(), ErrorKind::Timeout);

    let auth = RedisError::from((redis::ErrorKind::AuthenticationFailed, "WRONGPASS"));
    assert_eq!(map_error("h:1", "GET", &auth).kind(), ErrorKind::Rejected);
    assert!(!retryable(&auth, Retry::Always));
    assert_eq!(connect_error("h:1", &auth).kind(), ErrorKind::Rejected);
    assert_eq!(
        connect_error("h:1", &refused).kind(),
        ErrorKind::Unavailable
    );
    assert!(
        connect_error("h:1", &refused)
            .message()
            .starts_with("redis binding: error connecting to redis at h:1: ")
    );
}
