//! The consumer lag the input side reports to the runtime's stall watchdog, read from the real
//! broker: high watermark minus the committed offset, over the assigned partitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery_core::{
    CancellationToken, EventHandler, EventSink, InputBinding, InputEvent, Metadata, Outcome,
    async_trait,
};
use bindery_test_support::conformance::build_input;
use common::*;

/// Accepts every event but those whose body starts with `stuck`, which it never answers.
struct App(AtomicUsize);

#[async_trait]
impl EventHandler for App {
    async fn handle(&self, event: InputEvent) -> Outcome {
        if event.data.starts_with(b"stuck") {
            return std::future::pending().await;
        }
        self.0.fetch_add(1, Ordering::SeqCst);
        Outcome::Accepted
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_is_the_lag_behind_the_committed_offset() {
    require_broker();
    let topic = unique("lag");
    let group = unique("g");
    create_topic(&topic).await;
    // One partition: 30 the app takes, one it never answers, 9 behind it.
    for i in 0..30 {
        publish_to(&topic, 0, &format!("ok-{i}")).await;
    }
    publish_to(&topic, 0, "stuck").await;
    for i in 0..9 {
        publish_to(&topic, 0, &format!("after-{i}")).await;
    }
    let md = Metadata::from_pairs([
        ("brokers", BROKER),
        ("authType", "none"),
        ("topics", topic.as_str()),
        ("consumerGroup", group.as_str()),
        ("initialOffset", "oldest"),
        ("sessionTimeout", "6s"),
        ("heartbeatInterval", "1s"),
    ]);
    let input: Arc<dyn InputBinding> =
        Arc::from(build_input(&bindery_binding_kafka::KafkaFactory, "lag", md).await);
    assert_eq!(input.backlog().await, None, "no consumer before reading");

    let app = Arc::new(App(AtomicUsize::new(0)));
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let (input, sink, stop) = (
            Arc::clone(&input),
            EventSink::new(app.clone()),
            stop.clone(),
        );
        async move { input.read(sink, stop).await }
    });
    // The 30 accepted are committed (once a second); the stuck one and the 9 behind it wait.
    wait_until(Duration::from_secs(60), "a lag of 10", || {
        let input = Arc::clone(&input);
        async move { (input.backlog().await == Some(10)).then_some(()) }
    })
    .await;
    assert_eq!(app.0.load(Ordering::SeqCst), 30);
    stop.cancel();
    reading.abort();
}
