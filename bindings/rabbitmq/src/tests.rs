use std::collections::HashMap;
use std::time::Duration;

use bindery_core::{BindingFactory, ErrorKind, Metadata};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::config::{RabbitConfig, authority_host, parse_amqp_uri};
use crate::input::{FailureMemory, query_escape, to_event};
use crate::link::queue_arguments;
use crate::output::publish_properties;
use crate::{RabbitFactory, SPEC};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

fn md(pairs: &[(&str, &str)]) -> Metadata {
    Metadata::from_pairs(pairs.iter().copied())
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("host", "amqp://guest:guest@localhost:5672"),
        ("queueName", "q"),
    ]
}

fn parse(extra: &[(&str, &str)]) -> RabbitConfig {
    let mut pairs = base();
    pairs.extend_from_slice(extra);
    RabbitConfig::parse(&md(&pairs)).unwrap()
}

fn errors(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    RabbitConfig::parse(&md(pairs))
        .map(|_| ())
        .expect_err("refused")
        .into_iter()
        .map(|e| (e.field().unwrap_or("").to_owned(), e.message().to_owned()))
        .collect()
}

#[test]
fn defaults_follow_dapr() {
    let c = parse(&[]);
    assert_eq!(c.queue_name, "q");
    assert!(!c.durable && !c.delete_when_unused && !c.exclusive);
    assert_eq!(c.prefetch_count, 0);
    assert_eq!(c.window(), 100, "0 means bindery's window");
    assert_eq!(c.max_priority, None);
    assert_eq!(c.queue_ttl, None);
    assert_eq!(c.reconnect_wait, Duration::from_secs(5));
    assert_eq!(c.content_type, "text/plain");
    assert!(!c.external_sasl);
    assert_eq!(c.backoff_initial, Duration::from_millis(500));
    assert_eq!(c.backoff_max, Duration::from_secs(60));
    assert!(!c.tls());
    assert_eq!(c.endpoint(), "amqp://localhost:5672/%2F");
}

#[test]
fn every_field_is_read() {
    let c = parse(&[
        ("durable", "true"),
        ("deleteWhenUnused", "yes"),
        ("exclusive", "1"),
        ("prefetchCount", "7"),
        ("maxPriority", "5"),
        ("ttlInSeconds", "60"),
        ("reconnectWaitInSeconds", "2"),
        ("caCert", CERT),
        ("clientCert", CERT),
        ("clientKey", KEY),
        ("externalSasl", "true"),
        ("contentType", "application/json"),
        ("backOffInitialInterval", "10ms"),
        ("backOffMaxInterval", "1s"),
    ]);
    assert!(c.durable && c.delete_when_unused && c.exclusive);
    assert_eq!(c.prefetch_count, 7);
    assert_eq!(c.window(), 7);
    assert_eq!(c.max_priority, Some(5));
    assert_eq!(c.queue_ttl, Some(Duration::from_secs(60)));
    assert_eq!(c.reconnect_wait, Duration::from_secs(2));
    assert!(c.ca_cert.is_some() && c.client_cert.is_some() && c.client_key.is_some());
    assert!(c.external_sasl);
    assert_eq!(
        c.uri.query.auth_mechanism,
        Some(lapin::uri::SASLMechanism::External)
    );
    assert_eq!(c.content_type, "application/json");
    assert_eq!(c.backoff_initial, Duration::from_millis(10));
    assert_eq!(c.backoff_max, Duration::from_secs(1));
}

#[test]
fn aliases_and_units() {
    let c = parse(&[
        ("ttl", "1m30s"),
        ("reconnectWaitInSeconds", "500ms"),
        ("saslExternal", "true"),
        ("clientCert", CERT),
        ("clientKey", KEY),
    ]);
    assert_eq!(c.queue_ttl, Some(Duration::from_secs(90)));
    assert_eq!(c.reconnect_wait, Duration::from_millis(500));
    assert!(c.external_sasl);
    // ttlInSeconds wins over ttl.
    let c = parse(&[("ttlInSeconds", "2"), ("ttl", "1h")]);
    assert_eq!(c.queue_ttl, Some(Duration::from_secs(2)));
    // maxPriority above 255 is capped, as Dapr does; a negative prefetch is "no limit".
    let c = parse(&[("maxPriority", "300"), ("prefetchCount", "-1")]);
    assert_eq!(c.max_priority, Some(255));
    assert_eq!(c.prefetch_count, 0);
}

#[test]
fn required_fields_use_dapr_messages() {
    let errs = errors(&[]);
    assert_eq!(
        errs,
        vec![
            ("host".to_owned(), "missing host address".to_owned()),
            ("queueName".to_owned(), "missing queue Name".to_owned()),
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errs = errors(&[
        ("host", "amqp://guest:guest@localhost"),
        ("queueName", "q"),
        ("durable", "maybe"),
        ("prefetchCount", "many"),
        ("maxPriority", "high"),
        ("ttlInSeconds", "0"),
        ("caCert", "not pem"),
        ("clientCert", "not pem"),
        ("clientKey", "nope"),
        ("reconnectWaitInSeconds", "soon"),
    ]);
    let fields: Vec<_> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "durable",
            "prefetchCount",
            "maxPriority",
            "ttlInSeconds",
            "reconnectWaitInSeconds",
            "caCert",
            "clientCert",
            "clientKey"
        ]
    );
    let messages: Vec<_> = errs.iter().map(|(_, m)| m.as_str()).collect();
    assert!(messages.contains(&"invalid ca certificate"));
    assert!(messages.contains(&"invalid client certificate"));
    assert!(messages.contains(&"invalid client certificate key"));
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("can't parse maxPriority field"))
    );
    assert!(messages.contains(&"ttlInSeconds value must be higher than zero: actual is 0"));
}

#[test]
fn contradictions_are_refused() {
    let mut pairs = base();
    pairs.push(("clientCert", CERT));
    let errs = errors(&pairs);
    assert_eq!(errs[0].0, "clientKey");
    let mut pairs = base();
    pairs.push(("externalSasl", "true"));
    let errs = errors(&pairs);
    assert_eq!(errs[0].0, "externalSasl");
    let long = "q".repeat(256);
    let errs = errors(&[("host", "amqp://localhost"), ("queueName", &long)]);
    assert_eq!(errs[0].0, "queueName");
}

#[test]
fn host_errors_never_show_the_password() {
    for bad in [
        "http://user:s3cret@localhost",
        "amqp://user:s3cret@localhost:notaport",
        "user:s3cret@localhost",
    ] {
        let errs = errors(&[("host", bad), ("queueName", "q")]);
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(errs[0].0, "host");
        assert!(!errs[0].1.contains("s3cret"), "{}", errs[0].1);
    }
    let c = parse(&[("host", "amqp://user:s3cret@localhost")]);
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn ip_hosts_are_kept() {
    let u = parse_amqp_uri("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
    assert_eq!(u.authority.host, "127.0.0.1");
    assert_eq!(u.authority.port, 5672);
    assert_eq!(u.vhost, "/");
    let u = parse_amqp_uri("amqps://[::1]/").unwrap();
    assert_eq!(u.authority.host, "::1");
    assert_eq!(u.authority.port, 5671);
    assert_eq!(
        authority_host("amqp://a:b@rabbit.local:1/x").as_deref(),
        Some("rabbit.local")
    );
    assert_eq!(authority_host("amqp://h?x=1").as_deref(), Some("h"));
}

#[test]
fn spec_lists_every_field() {
    for name in [
        "host",
        "queueName",
        "durable",
        "deleteWhenUnused",
        "exclusive",
        "prefetchCount",
        "maxPriority",
        "ttlInSeconds",
        "ttl",
        "reconnectWaitInSeconds",
        "caCert",
        "clientCert",
        "clientKey",
        "externalSasl",
        "saslExternal",
        "contentType",
        "backOffInitialInterval",
        "backOffMaxInterval",
    ] {
        assert!(SPEC.field(name).is_some(), "{name} is not in the spec");
    }
    assert!(SPEC.is_sensitive("host"));
    assert!(SPEC.is_sensitive("clientKey"));
    assert_eq!(SPEC.operations, ["create"]);
    assert!(RabbitFactory::default().validate(&md(&base())).is_ok());
}

#[test]
fn queue_arguments_carry_ttl_and_priority() {
    let c = parse(&[("ttlInSeconds", "60"), ("maxPriority", "5")]);
    let args = queue_arguments(&c);
    assert_eq!(
        args.inner().get("x-message-ttl"),
        Some(&AMQPValue::LongLongInt(60_000))
    );
    assert_eq!(
        args.inner().get("x-max-priority"),
        Some(&AMQPValue::LongInt(5))
    );
    assert!(queue_arguments(&parse(&[])).inner().is_empty());
}

fn req(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn publish_properties_follow_dapr() {
    let p = publish_properties(&req(&[]), "text/plain").unwrap();
    assert_eq!(*p.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some("text/plain")
    );
    assert_eq!(p.expiration(), &None);
    let p = publish_properties(
        &req(&[
            ("ttlInSeconds", "10"),
            ("priority", "300"),
            ("contentType", "application/json"),
            ("messageID", "m-1"),
            ("correlationID", "c-1"),
            ("type", "order"),
            ("custom", "value"),
        ]),
        "text/plain",
    )
    .unwrap();
    assert_eq!(p.expiration().as_ref().map(|s| s.as_str()), Some("10000"));
    assert_eq!(*p.priority(), Some(255), "clamped as Dapr does");
    assert_eq!(
        p.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(p.message_id().as_ref().map(|s| s.as_str()), Some("m-1"));
    assert_eq!(p.correlation_id().as_ref().map(|s| s.as_str()), Some("c-1"));
    assert_eq!(p.kind().as_ref().map(|s| s.as_str()), Some("order"));
    let headers = p.headers().as_ref().unwrap();
    assert_eq!(headers.inner().len(), 7, "every entry is a header");
    assert_eq!(
        headers.inner().get("custom"),
        Some(&AMQPValue::LongString(LongString::from("value")))
    );
    let p = publish_properties(&req(&[("ttl", "1500ms"), ("priority", "-3")]), "x").unwrap();
    assert_eq!(p.expiration().as_ref().map(|s| s.as_str()), Some("1500"));
    assert_eq!(*p.priority(), Some(0));
}

#[test]
fn bad_request_metadata_is_refused() {
    for (k, v) in [
        ("ttlInSeconds", "soon"),
        ("ttlInSeconds", "-1"),
        ("ttl", "forever"),
        ("priority", "high"),
    ] {
        let e = publish_properties(&req(&[(k, v)]), "text/plain").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{k}={v}");
    }
    let long = "x".repeat(256);
    let e = publish_properties(&req(&[("messageID", &long)]), "t").unwrap_err();
    assert!(e.message().contains("messageID"));
    let e = publish_properties(&req(&[(&long, "v")]), "t").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn events_carry_string_headers_and_ids() {
    let mut headers = FieldTable::default();
    headers.insert(
        "my key".into(),
        AMQPValue::LongString(LongString::from("v 1")),
    );
    headers.insert("short".into(), AMQPValue::ShortString("s".into()));
    headers.insert("n".into(), AMQPValue::LongInt(5));
    headers.insert(
        "bin".into(),
        AMQPValue::LongString(LongString::from(vec![0xff, 0xfe])),
    );
    let mut d = Delivery::mock(1, "".into(), "q".into(), false, b"body".to_vec());
    d.properties = BasicProperties::default()
        .with_headers(headers)
        .with_message_id(ShortString::from("m-1"))
        .with_correlation_id(ShortString::from("c-1"))
        .with_content_type(ShortString::from("application/json"));
    let e = to_event(&d);
    assert_eq!(&e.data[..], b"body");
    assert_eq!(e.metadata.get("my+key").map(String::as_str), Some("v 1"));
    assert_eq!(e.metadata.get("short").map(String::as_str), Some("s"));
    assert!(!e.metadata.contains_key("n"), "only string values");
    assert!(!e.metadata.contains_key("bin"), "only UTF-8 strings");
    assert_eq!(e.metadata.get("messageID").map(String::as_str), Some("m-1"));
    assert_eq!(
        e.metadata.get("correlationID").map(String::as_str),
        Some("c-1")
    );
    assert_eq!(
        e.metadata.get("contentType").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(e.content_type.as_deref(), Some("application/json"));
    let plain = to_event(&Delivery::mock(2, "".into(), "q".into(), false, vec![]));
    assert!(plain.metadata.is_empty());
}

#[test]
fn query_escape_matches_go() {
    assert_eq!(query_escape("a b&c=d/é~_.-"), "a+b%26c%3Dd%2F%C3%A9~_.-");
    assert_eq!(query_escape("plain"), "plain");
}

#[test]
fn failed_messages_back_off_longer_each_time() {
    let c = parse(&[
        ("backOffInitialInterval", "100ms"),
        ("backOffMaxInterval", "1s"),
    ]);
    let m = FailureMemory::default();
    let first = m.delay(1, None, &c);
    let second = m.delay(1, None, &c);
    let third = m.delay(1, None, &c);
    assert!(first <= Duration::from_millis(120), "{first:?}");
    assert!(second >= Duration::from_millis(160), "{second:?}");
    assert!(third >= Duration::from_millis(320), "{third:?}");
    // Another message starts from the beginning.
    assert!(m.delay(2, None, &c) <= Duration::from_millis(120));
    // The app's Retry-After wins, bounded by the maximum.
    assert_eq!(
        m.delay(3, Some(Duration::from_millis(250)), &c),
        Duration::from_millis(250)
    );
    assert_eq!(
        m.delay(3, Some(Duration::from_secs(9)), &c),
        Duration::from_secs(1)
    );
    m.forget(1);
    assert!(m.delay(1, None, &c) <= Duration::from_millis(120));
    assert_eq!(m.len(), 3);
}
