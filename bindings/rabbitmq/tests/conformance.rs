//! Dapr's binding conformance steps (`tests/config/bindings/rabbitmq`) against the machine's
//! RabbitMQ: init, operations, read, create, verify read, close.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_binding_rabbitmq::RabbitFactory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    common::require_rabbitmq().await;
    let queue = common::queue();
    let metadata = Metadata::from_pairs([
        ("host", "amqp://localhost:5672"),
        ("queueName", queue.as_str()),
        ("durable", "true"),
        ("deleteWhenUnused", "false"),
        ("ttlInSeconds", "60"),
        ("maxPriority", "5"),
    ]);
    let mut c = Conformance::new("rabbitmq-conformance", metadata);
    c.operations = vec!["create"];
    c.read = true;
    c.read_timeout = Duration::from_secs(30);
    let factory = RabbitFactory::default();
    let events = conformance::run(&factory, c).await;
    assert_eq!(&events[0].data[..], DEFAULT_OUTPUT_DATA.as_bytes());
    assert_eq!(
        events[0].metadata.get("contentType").map(String::as_str),
        Some("text/plain")
    );
    common::delete_queue(&queue).await;
}
