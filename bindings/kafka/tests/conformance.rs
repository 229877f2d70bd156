//! Dapr's binding conformance steps (`create` and `read`) against the real broker, as
//! components-contrib runs them for kafka (`authRequired: "false"`, `initialOffset: oldest`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_binding_kafka::KafkaFactory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};

use common::{BROKER, require_broker, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_create_and_read() {
    require_broker();
    let topic = unique("conformance");
    let group = unique("conformance-group");
    let md = Metadata::from_pairs([
        ("brokers", BROKER),
        ("topics", topic.as_str()),
        ("publishTopic", topic.as_str()),
        ("consumerGroup", group.as_str()),
        ("authRequired", "false"),
        ("initialOffset", "oldest"),
        ("sessionTimeout", "6s"),
        ("heartbeatInterval", "1s"),
    ]);
    let mut c = Conformance::new("kafka-conformance", md);
    c.operations = vec!["create"];
    c.read = true;
    c.read_timeout = Duration::from_secs(60);
    let events = conformance::run(&KafkaFactory, c).await;
    let first = &events[0];
    assert_eq!(first.data.as_ref(), DEFAULT_OUTPUT_DATA.as_bytes());
    assert_eq!(first.metadata["__topic"], topic);
    assert_eq!(first.metadata["__offset"], "0");
}

/// Every `compression` codec round-trips through the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_messages_round_trip() {
    require_broker();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("compressed-{codec}"));
        let group = unique("g");
        let md = Metadata::from_pairs([
            ("brokers", BROKER),
            ("topics", topic.as_str()),
            ("publishTopic", topic.as_str()),
            ("consumerGroup", group.as_str()),
            ("authType", "none"),
            ("compression", codec),
            ("initialOffset", "oldest"),
            ("sessionTimeout", "6s"),
            ("heartbeatInterval", "1s"),
        ]);
        let mut c = Conformance::new("kafka-compressed", md);
        c.operations = vec!["create"];
        c.read = true;
        c.read_timeout = Duration::from_secs(30);
        let events = conformance::run(&KafkaFactory, c).await;
        assert_eq!(
            events[0].data.as_ref(),
            DEFAULT_OUTPUT_DATA.as_bytes(),
            "{codec}"
        );
    }
}
