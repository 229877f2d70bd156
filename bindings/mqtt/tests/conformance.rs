//! Dapr's binding conformance steps (`tests/config/bindings/mqtt3/mosquitto`) against the
//! machine's Mosquitto: init, operations, read, create, verify read, close.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_binding_mqtt::MqttFactory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    common::require_mosquitto().await;
    let topic = common::unique("conformance");
    let consumer = common::unique("testBindingConsumer");
    let metadata = Metadata::from_pairs([
        ("url", "tcp://localhost:1883"),
        ("topic", topic.as_str()),
        ("consumerID", consumer.as_str()),
        ("backOffMaxRetries", "5"),
    ]);
    let mut c = Conformance::new("mqtt-conformance", metadata);
    c.operations = vec!["create"];
    c.read = true;
    c.read_timeout = Duration::from_secs(30);
    let events = conformance::run(&MqttFactory, c).await;
    assert_eq!(&events[0].data[..], DEFAULT_OUTPUT_DATA.as_bytes());
    assert_eq!(
        events[0].metadata.get("topic").map(String::as_str),
        Some(topic.as_str())
    );
    common::forget_sessions(&[
        format!("{consumer}-consumer"),
        format!("{consumer}-producer"),
    ])
    .await;
}
