use std::time::Duration;

use bindery_core::{BindingFactory, Metadata, Registry};

use crate::config::{MqttConfig, parse_url};
use crate::{MqttFactory, SPEC};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::from_pairs(pairs.iter().copied())
}

fn parse(extra: &[(&str, &str)]) -> MqttConfig {
    let mut pairs = vec![
        ("url", "tcp://localhost:1883"),
        ("topic", "t"),
        ("consumerID", "c"),
    ];
    pairs.extend_from_slice(extra);
    MqttConfig::parse(&md(&pairs)).unwrap()
}

fn errors(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    MqttConfig::parse(&md(pairs))
        .map(|_| ())
        .expect_err("refused")
        .into_iter()
        .map(|e| (e.field().unwrap_or("").to_owned(), e.message().to_owned()))
        .collect()
}

#[test]
fn defaults() {
    let c = parse(&[]);
    assert_eq!(c.topic, "t");
    assert_eq!(c.producer_id(), "c-producer");
    assert_eq!(c.consumer_id(), "c-consumer");
    assert!(!c.retain);
    assert!(!c.clean_session);
    assert_eq!(c.max_retries, None, "bindery retries until accepted");
    assert_eq!(c.backoff_initial, Duration::from_millis(500));
    assert_eq!(c.backoff_max, Duration::from_secs(60));
    assert!(!c.qos_set);
    assert!(!c.broker.tls);
    assert_eq!(c.broker.endpoint(), "tcp://localhost:1883");
}

#[test]
fn every_field_is_read() {
    let c = parse(&[
        ("retain", "true"),
        ("cleanSession", "yes"),
        ("caCert", CERT),
        ("clientCert", CERT),
        ("clientKey", KEY),
        ("backOffMaxRetries", "5"),
        ("backOffInitialInterval", "10ms"),
        ("backOffMaxInterval", "2s"),
        ("qos", "0"),
    ]);
    assert!(c.retain && c.clean_session);
    assert!(c.ca_cert.is_some() && c.client_cert.is_some() && c.client_key.is_some());
    assert_eq!(c.max_retries, Some(5));
    assert_eq!(c.backoff_initial, Duration::from_millis(10));
    assert_eq!(c.backoff_max, Duration::from_secs(2));
    assert!(c.qos_set);
    assert_eq!(parse(&[("backOffMaxRetries", "-1")]).max_retries, None);
    assert_eq!(parse(&[("backOffMaxRetries", "0")]).max_retries, Some(0));
}

#[test]
fn required_fields_use_dapr_messages() {
    assert_eq!(
        errors(&[]),
        vec![
            ("url".to_owned(), "missing url".to_owned()),
            ("topic".to_owned(), "missing topic".to_owned()),
            ("consumerID".to_owned(), "missing consumerID".to_owned()),
        ]
    );
}

#[test]
fn bad_values_are_all_reported() {
    let errs = errors(&[
        ("url", "tcp://localhost:1883"),
        ("topic", "t"),
        ("consumerID", "c"),
        ("retain", "maybe"),
        ("caCert", "nope"),
        ("clientCert", "nope"),
        ("clientKey", "nope"),
        ("backOffMaxRetries", "lots"),
    ]);
    let fields: Vec<_> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "retain",
            "caCert",
            "clientCert",
            "clientKey",
            "backOffMaxRetries"
        ]
    );
    assert_eq!(errs[1].1, "invalid ca certificate");
    assert_eq!(errs[2].1, "invalid client certificate");
    assert_eq!(errs[3].1, "invalid client certificate key");
    let errs = errors(&[
        ("url", "tcp://h"),
        ("topic", "t"),
        ("consumerID", "c"),
        ("clientKey", KEY),
    ]);
    assert_eq!(errs[0].0, "clientCert");
}

#[test]
fn urls_follow_dapr_schemes() {
    for (url, tls, host, port) in [
        ("tcp://broker:1883", false, "broker", 1883),
        ("mqtt://broker", false, "broker", 1883),
        ("ssl://broker", true, "broker", 8883),
        ("mqtts://broker:9999", true, "broker", 9999),
        ("tcps://10.0.0.1", true, "10.0.0.1", 8883),
        ("tls://[::1]:8884", true, "::1", 8884),
        ("TCP://127.0.0.1:1883/", false, "127.0.0.1", 1883),
    ] {
        let b = parse_url(url).unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port), (tls, host, port), "{url}");
        assert_eq!(b.username, None);
    }
    let b = parse_url("tcp://us%40er:p%3Ass@broker:1883").unwrap();
    assert_eq!(b.username.as_deref(), Some("us@er"));
    assert_eq!(b.password.as_deref(), Some("p:ss"));
    let b = parse_url("tcp://user@broker").unwrap();
    assert_eq!(b.username.as_deref(), Some("user"));
    assert_eq!(b.password, None);
}

#[test]
fn url_errors_never_show_the_password() {
    for bad in [
        "http://user:s3cret@broker",
        "tcp://user:s3cret@broker:port",
        "user:s3cret@broker",
        "tcp://user:s3cret@",
        "tcp://user:s3cret@broker:0",
    ] {
        let e = parse_url(bad).expect_err(bad);
        assert!(!e.contains("s3cret"), "{e}");
    }
    let c = parse(&[("url", "tcp://user:s3cret@broker")]);
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn spec_lists_every_field_and_the_alias() {
    for name in [
        "url",
        "topic",
        "consumerID",
        "retain",
        "cleanSession",
        "caCert",
        "clientCert",
        "clientKey",
        "backOffMaxRetries",
        "backOffInitialInterval",
        "backOffMaxInterval",
        "qos",
    ] {
        assert!(SPEC.field(name).is_some(), "{name}");
    }
    assert!(SPEC.is_sensitive("url"));
    assert!(SPEC.is_sensitive("clientKey"));
    let mut r = Registry::new();
    crate::register(&mut r);
    assert!(r.get("bindings.mqtt").is_some());
    assert!(r.get("bindings.MQTT3").is_some());
    assert!(
        MqttFactory
            .validate(&md(&[
                ("url", "tcp://h"),
                ("topic", "$share/g/t"),
                ("consumerID", "x")
            ]))
            .is_ok()
    );
}

#[test]
fn tls_options_refuse_unusable_material() {
    // A PEM block that is not a certificate: refused when the client is built, not at the
    // first connection.
    let c = parse(&[("url", "ssl://h"), ("caCert", CERT)]);
    let e = crate::client::options(&c, "id".into(), true).unwrap_err();
    assert_eq!(e.field(), Some("caCert"));
    let c = parse(&[("url", "ssl://h")]);
    assert!(crate::client::options(&c, "id".into(), true).is_ok());
}
