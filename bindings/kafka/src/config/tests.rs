use std::time::Duration;

use bindery_core::Metadata;

use super::*;

fn base() -> Vec<(&'static str, &'static str)> {
    vec![("brokers", "localhost:9092"), ("authType", "none")]
}

fn parse(extra: &[(&'static str, &'static str)]) -> Result<KafkaConfig, Vec<BindingError>> {
    let mut pairs = base();
    pairs.extend_from_slice(extra);
    KafkaConfig::parse(&Metadata::from_pairs(pairs))
}

fn parse_only(pairs: &[(&'static str, &'static str)]) -> Result<KafkaConfig, Vec<BindingError>> {
    KafkaConfig::parse(&Metadata::from_pairs(pairs.iter().copied()))
}

fn errors(extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    parse(extra)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.field().unwrap_or("").to_owned(), e.message().to_owned()))
        .collect()
}

fn prop(c: &ClientConfig, key: &str) -> Option<String> {
    c.get(key).map(str::to_owned)
}

const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

#[test]
fn defaults_follow_dapr() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.brokers, ["localhost:9092"]);
    assert!(c.topics.is_empty());
    assert_eq!(c.publish_topic, None);
    assert_eq!(c.consumer_group, None);
    assert_eq!(c.client_id, "bindery");
    assert_eq!(c.initial_offset, InitialOffset::Newest);
    assert_eq!(c.auth, Auth::None);
    assert!(!c.tls);
    assert!(!c.skip_verify);
    assert_eq!(c.max_message_bytes, None);
    assert!(!c.consume_retry_enabled);
    assert_eq!(c.consume_retry_interval, Duration::from_millis(100));
    assert_eq!(
        c.redelivery,
        RedeliveryPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(5),
            warn_after: None
        }
    );
    assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
    assert_eq!(c.session_timeout, Duration::from_secs(10));
    assert_eq!(c.compression, "none");
    assert_eq!(c.required_acks, RequiredAcks::All);
    assert_eq!(c.producer_retry_max, 5);
    assert_eq!(c.dial_timeout, Duration::from_secs(30));
    assert_eq!(c.read_timeout, Duration::from_secs(30));
    assert_eq!(c.write_timeout, Duration::from_secs(30));
    assert!(!c.escape_headers);
    assert!(c.exclude_header_meta.is_none());
    assert_eq!(c.metadata_refresh, Duration::from_secs(480));
}

#[test]
fn every_field_is_read() {
    let c = parse(&[
        ("brokers", " a:1 , b:2 ,"),
        ("topics", "t1, t2"),
        ("publishTopic", " out "),
        ("consumerGroup", "g"),
        ("clientID", "me"),
        ("version", "2.8.1"),
        ("initialOffset", "OLDEST"),
        ("caCert", PEM_CERT),
        ("skipVerify", "true"),
        ("maxMessageBytes", "2048"),
        ("consumeRetryEnabled", "true"),
        ("consumeRetryInterval", "250"),
        ("backOffPolicy", "exponential"),
        ("backOffInitialInterval", "10ms"),
        ("backOffMaxInterval", "2s"),
        ("backOffMaxRetries", "3"),
        ("heartbeatInterval", "1s"),
        ("sessionTimeout", "6s"),
        ("compression", "ZSTD"),
        ("producerRequiredAcks", "local"),
        ("producerRetryMax", "7"),
        ("dialTimeout", "5s"),
        ("readTimeout", "6s"),
        ("writeTimeout", "7s"),
        ("escapeHeaders", "yes"),
        ("excludeHeaderMetaRegex", "^trace"),
        ("consumerFetchMin", "10"),
        ("consumerFetchDefault", "2048"),
        ("clientConnectionTopicMetadataRefreshInterval", "1m"),
    ])
    .unwrap();
    assert_eq!(c.brokers, ["a:1", "b:2"]);
    assert_eq!(c.topics, ["t1", "t2"]);
    assert_eq!(c.publish_topic.as_deref(), Some("out"));
    assert_eq!(c.consumer_group.as_deref(), Some("g"));
    assert_eq!(c.client_id, "me");
    assert_eq!(c.initial_offset, InitialOffset::Oldest);
    assert_eq!(c.ca_cert.as_deref(), Some(PEM_CERT));
    assert!(c.skip_verify);
    assert_eq!(c.max_message_bytes, Some(2048));
    assert!(c.consume_retry_enabled);
    assert_eq!(c.consume_retry_interval, Duration::from_millis(250));
    assert_eq!(
        c.redelivery,
        RedeliveryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(2),
            warn_after: Some(3)
        }
    );
    assert_eq!(c.heartbeat_interval, Duration::from_secs(1));
    assert_eq!(c.session_timeout, Duration::from_secs(6));
    assert_eq!(c.compression, "zstd");
    assert_eq!(c.required_acks, RequiredAcks::Leader);
    assert_eq!(c.producer_retry_max, 7);
    assert_eq!(c.dial_timeout, Duration::from_secs(5));
    assert_eq!(c.read_timeout, Duration::from_secs(6));
    assert_eq!(c.write_timeout, Duration::from_secs(7));
    assert!(c.escape_headers);
    assert!(c.exclude_header_meta.unwrap().is_match("traceparent"));
    assert_eq!(c.fetch_min_bytes, Some(10));
    assert_eq!(c.fetch_partition_bytes, Some(2048));
    assert_eq!(c.metadata_refresh, Duration::from_secs(60));
}

#[test]
fn consume_retry_interval_accepts_go_durations() {
    let c = parse(&[("consumeRetryInterval", "2s")]).unwrap();
    assert_eq!(c.consume_retry_interval, Duration::from_secs(2));
}

#[test]
fn consumer_id_stands_in_for_consumer_group() {
    let c = parse(&[("consumerID", "app-1")]).unwrap();
    assert_eq!(c.consumer_group.as_deref(), Some("app-1"));
    let both = parse(&[("consumerID", "app-1"), ("consumerGroup", "g")]).unwrap();
    assert_eq!(both.consumer_group.as_deref(), Some("g"));
}

#[test]
fn brokers_are_required() {
    let errs = parse_only(&[("authType", "none")]).unwrap_err();
    assert_eq!(errs[0].field(), Some("brokers"));
    assert_eq!(
        errs[0].message(),
        "kafka error: missing 'brokers' attribute"
    );
    let errs = parse_only(&[("brokers", " , "), ("authType", "none")]).unwrap_err();
    assert_eq!(errs[0].message(), "kafka error: 'brokers' lists no broker");
}

#[test]
fn auth_type_is_required_unless_auth_required_is_set() {
    let errs = parse_only(&[("brokers", "a:1")]).unwrap_err();
    assert_eq!(errs[0].field(), Some("authType"));
    assert!(
        errs[0]
            .message()
            .starts_with("kafka error: 'authType' attribute was missing or empty")
    );
}

#[test]
fn deprecated_auth_required_maps_like_dapr() {
    let none = parse_only(&[("brokers", "a:1"), ("authRequired", "false")]).unwrap();
    assert_eq!(none.auth, Auth::None);
    let password = parse_only(&[
        ("brokers", "a:1"),
        ("authRequired", "true"),
        ("saslUsername", "u"),
        ("saslPassword", "p"),
    ])
    .unwrap();
    assert!(matches!(password.auth, Auth::Password { .. }));
    let mtls = parse_only(&[("brokers", "a:1"), ("authRequired", "true")]).unwrap();
    assert_eq!(
        mtls.auth,
        Auth::Mtls {
            client_cert: None,
            client_key: None
        }
    );
    assert!(mtls.tls);
    let bad = parse_only(&[("brokers", "a:1"), ("authRequired", "maybe")]).unwrap_err();
    assert_eq!(
        bad[0].message(),
        "kafka error: invalid value for 'authRequired' attribute"
    );
    // authType wins over authRequired.
    let explicit = parse_only(&[
        ("brokers", "a:1"),
        ("authRequired", "true"),
        ("authType", "none"),
    ])
    .unwrap();
    assert_eq!(explicit.auth, Auth::None);
}

#[test]
fn password_auth_needs_both_credentials_and_uses_tls() {
    let errs = errors(&[("authType", "password")]);
    assert_eq!(
        errs,
        [
            (
                "saslUsername".to_owned(),
                "kafka error: missing SASL Username for authType 'password'".to_owned()
            ),
            (
                "saslPassword".to_owned(),
                "kafka error: missing SASL Password for authType 'password'".to_owned()
            )
        ]
    );
    let c = parse(&[
        ("authType", "password"),
        ("saslUsername", "u"),
        ("saslPassword", "s3cret"),
        ("saslMechanism", "SHA-512"),
    ])
    .unwrap();
    assert!(c.tls);
    let cc = c.common_client_config();
    assert_eq!(prop(&cc, "security.protocol").unwrap(), "sasl_ssl");
    assert_eq!(prop(&cc, "sasl.mechanisms").unwrap(), "SCRAM-SHA-512");
    assert_eq!(prop(&cc, "sasl.username").unwrap(), "u");
    assert_eq!(prop(&cc, "sasl.password").unwrap(), "s3cret");
    assert!(!format!("{c:?}").contains("s3cret"));

    let plain = parse(&[
        ("authType", "password"),
        ("saslUsername", "u"),
        ("saslPassword", "p"),
        ("disableTls", "true"),
    ])
    .unwrap();
    let cc = plain.common_client_config();
    assert_eq!(prop(&cc, "security.protocol").unwrap(), "sasl_plaintext");
    assert_eq!(prop(&cc, "sasl.mechanisms").unwrap(), "PLAIN");
    let sha256 = parse(&[
        ("authType", "password"),
        ("saslUsername", "u"),
        ("saslPassword", "p"),
        ("saslMechanism", "SCRAM-SHA-256"),
    ])
    .unwrap();
    assert_eq!(
        prop(&sha256.common_client_config(), "sasl.mechanisms").unwrap(),
        "SCRAM-SHA-256"
    );
    let bad = errors(&[
        ("authType", "password"),
        ("saslUsername", "u"),
        ("saslPassword", "p"),
        ("saslMechanism", "GSSAPI"),
    ]);
    assert_eq!(bad[0].0, "saslMechanism");
}

#[test]
fn none_auth_never_uses_tls() {
    let c = parse(&[("caCert", PEM_CERT)]).unwrap();
    assert!(!c.tls);
    let cc = c.common_client_config();
    assert_eq!(prop(&cc, "security.protocol").unwrap(), "plaintext");
    assert_eq!(prop(&cc, "ssl.ca.pem"), None);
}

#[test]
fn mtls_sets_client_certificate() {
    let c = parse(&[
        ("authType", "mtls"),
        ("clientCert", PEM_CERT),
        ("clientKey", PEM_KEY),
        ("caCert", PEM_CERT),
        ("skipVerify", "true"),
    ])
    .unwrap();
    let cc = c.common_client_config();
    assert_eq!(prop(&cc, "security.protocol").unwrap(), "ssl");
    assert_eq!(prop(&cc, "ssl.certificate.pem").unwrap(), PEM_CERT);
    assert_eq!(prop(&cc, "ssl.key.pem").unwrap(), PEM_KEY);
    assert_eq!(prop(&cc, "ssl.ca.pem").unwrap(), PEM_CERT);
    assert_eq!(
        prop(&cc, "enable.ssl.certificate.verification").unwrap(),
        "false"
    );
    assert_eq!(
        prop(&cc, "ssl.endpoint.identification.algorithm").unwrap(),
        "none"
    );
    assert!(!format!("{c:?}").contains("MIIB"));
}

#[test]
fn mtls_checks_its_pems() {
    let errs = errors(&[("authType", "mtls"), ("clientCert", PEM_CERT)]);
    assert_eq!(
        errs,
        [(
            "clientKey".to_owned(),
            "kafka error: clientKey or clientCert is missing".to_owned()
        )]
    );
    let errs = errors(&[
        ("authType", "mtls"),
        ("clientCert", "not a pem"),
        ("clientKey", "nor this"),
    ]);
    assert_eq!(errs[0].1, "kafka error: invalid client certificate");
    assert_eq!(errs[1].1, "kafka error: invalid client key");
    let errs = errors(&[("authType", "mtls"), ("disableTls", "true")]);
    assert_eq!(errs[0].0, "disableTls");
}

#[test]
fn certificate_auth_needs_a_ca() {
    let errs = errors(&[("authType", "certificate")]);
    assert_eq!(
        errs,
        [(
            "caCert".to_owned(),
            "missing CA certificate property 'caCert' for authType 'certificate'".to_owned()
        )]
    );
    let c = parse(&[("authType", "certificate"), ("caCert", PEM_CERT)]).unwrap();
    assert_eq!(
        prop(&c.common_client_config(), "security.protocol").unwrap(),
        "ssl"
    );
    let errs = errors(&[("authType", "certificate"), ("caCert", "nope")]);
    assert_eq!(errs[0].1, "kafka error: invalid ca certificate");
}

#[test]
fn unsupported_auth_types_say_so() {
    for t in ["oidc", "OIDC_private_key_jwt", "awsiam"] {
        let mut pairs = vec![("brokers", "a:1")];
        pairs.push(("authType", t));
        let errs = KafkaConfig::parse(&Metadata::from_pairs(pairs)).unwrap_err();
        assert_eq!(errs[0].field(), Some("authType"));
        assert!(
            errs[0]
                .message()
                .contains("is not supported by bindery yet"),
            "{t}: {}",
            errs[0].message()
        );
    }
    let errs = errors(&[("authType", "kerberos")]);
    assert!(
        errs[0]
            .1
            .starts_with("kafka error: invalid value for 'authType' attribute")
    );
}

#[test]
fn schema_registry_is_refused() {
    let errs = errors(&[("schemaRegistryURL", "http://registry:8081")]);
    assert_eq!(errs[0].0, "schemaRegistryURL");
    assert!(errs[0].1.contains("not supported by bindery yet"));
}

#[test]
fn bad_values_are_all_reported() {
    let errs = errors(&[
        ("initialOffset", "middle"),
        ("version", "two"),
        ("maxMessageBytes", "10"),
        ("consumeRetryInterval", "soon"),
        ("backOffPolicy", "random"),
        ("heartbeatInterval", "20s"),
        ("compression", "brotli"),
        ("producerRequiredAcks", "some"),
        ("producerRetryMax", "-1"),
        ("writeTimeout", "0"),
        ("escapeHeaders", "perhaps"),
        ("excludeHeaderMetaRegex", "("),
    ]);
    let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "version",
            "initialOffset",
            "maxMessageBytes",
            "consumeRetryInterval",
            "backOffPolicy",
            "heartbeatInterval",
            "compression",
            "producerRequiredAcks",
            "producerRetryMax",
            "writeTimeout",
            "escapeHeaders",
            "excludeHeaderMetaRegex",
        ]
    );
    assert_eq!(errs[0].1, "kafka error: invalid kafka version");
    assert_eq!(
        errs[1].1,
        "kafka error: invalid initialOffset: middle (use newest or oldest)"
    );
}

#[test]
fn kafka_versions_are_checked_for_form() {
    for v in ["2.0.0", "0.10.2.0", "3.7", "1.0.0.0"] {
        assert!(is_kafka_version(v), "{v}");
    }
    for v in ["2", "v2.0.0", "2..0", "1.2.3.4.5", ""] {
        assert!(!is_kafka_version(v), "{v}");
    }
}

#[test]
fn non_positive_max_message_bytes_means_default() {
    assert_eq!(
        parse(&[("maxMessageBytes", "0")])
            .unwrap()
            .max_message_bytes,
        None
    );
    assert_eq!(
        parse(&[("maxMessageBytes", "-5")])
            .unwrap()
            .max_message_bytes,
        None
    );
}

#[test]
fn exponential_backoff_needs_max_above_initial() {
    let errs = errors(&[
        ("backOffPolicy", "exponential"),
        ("backOffInitialInterval", "5s"),
        ("backOffMaxInterval", "1s"),
    ]);
    assert_eq!(errs[0].0, "backOffMaxInterval");
}

#[test]
fn producer_properties() {
    let c = parse(&[
        ("compression", "lz4"),
        ("producerRequiredAcks", "none"),
        ("producerRetryMax", "2"),
        ("maxMessageBytes", "5000"),
        ("writeTimeout", "3s"),
        ("clientID", "cid"),
        ("dialTimeout", "200ms"),
    ])
    .unwrap();
    let p = c.producer_config();
    assert_eq!(prop(&p, "bootstrap.servers").unwrap(), "localhost:9092");
    assert_eq!(prop(&p, "client.id").unwrap(), "cid");
    assert_eq!(prop(&p, "compression.codec").unwrap(), "lz4");
    assert_eq!(prop(&p, "acks").unwrap(), "0");
    assert_eq!(prop(&p, "retries").unwrap(), "2");
    assert_eq!(prop(&p, "message.max.bytes").unwrap(), "5000");
    assert_eq!(prop(&p, "message.timeout.ms").unwrap(), "3000");
    assert_eq!(prop(&p, "socket.timeout.ms").unwrap(), "3000");
    // librdkafka's minimum is one second.
    assert_eq!(
        prop(&p, "socket.connection.setup.timeout.ms").unwrap(),
        "1000"
    );
    assert_eq!(prop(&p, "group.id"), None);
}

#[test]
fn consumer_properties() {
    let c = parse(&[
        ("initialOffset", "oldest"),
        ("heartbeatInterval", "1s"),
        ("sessionTimeout", "6s"),
        ("readTimeout", "9s"),
        ("consumeRetryInterval", "300"),
    ])
    .unwrap();
    let k = c.consumer_config("grp");
    assert_eq!(prop(&k, "group.id").unwrap(), "grp");
    assert_eq!(prop(&k, "auto.offset.reset").unwrap(), "earliest");
    assert_eq!(prop(&k, "enable.auto.offset.store").unwrap(), "false");
    assert_eq!(prop(&k, "enable.auto.commit").unwrap(), "true");
    assert_eq!(prop(&k, "auto.commit.interval.ms").unwrap(), "1000");
    assert_eq!(prop(&k, "heartbeat.interval.ms").unwrap(), "1000");
    assert_eq!(prop(&k, "session.timeout.ms").unwrap(), "6000");
    assert_eq!(prop(&k, "socket.timeout.ms").unwrap(), "9000");
    assert_eq!(prop(&k, "fetch.error.backoff.ms").unwrap(), "300");
    assert_eq!(prop(&k, "allow.auto.create.topics").unwrap(), "true");
    let newest = parse(&[]).unwrap().consumer_config("g");
    assert_eq!(prop(&newest, "auto.offset.reset").unwrap(), "latest");
}
