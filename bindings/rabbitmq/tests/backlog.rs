//! The queue depth the input side reports to the runtime's stall watchdog, read from the real
//! broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bindery_core::Metadata;
use bindery_test_support::conformance::build_input;
use common::*;

#[tokio::test]
async fn backlog_is_the_number_of_ready_messages() {
    crypto();
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let md = Metadata::from_pairs([
        ("host", URL),
        ("queueName", q.as_str()),
        ("durable", "true"),
    ]);
    let factory = bindery_binding_rabbitmq::RabbitFactory::default();
    let input = build_input(&factory, "depth", md).await;

    assert_eq!(input.backlog().await, Some(0), "an empty queue");
    publisher.publish_all(bodies("depth", 37)).await;
    assert_eq!(input.backlog().await, Some(37));

    input.close().await.unwrap();
    assert_eq!(
        input.backlog().await,
        None,
        "a closed binding does not know"
    );
    publisher.delete().await;
}
