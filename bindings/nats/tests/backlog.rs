//! The JetStream consumer's pending count, which the input side reports to the runtime's stall
//! watchdog, read from the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery_core::{
    CancellationToken, EventHandler, EventSink, InputEvent, Metadata, Outcome, async_trait,
};
use bindery_test_support::conformance::build_input;
use common::*;

/// An app that takes every event and never answers.
struct Stuck(AtomicUsize);

#[async_trait]
impl EventHandler for Stuck {
    async fn handle(&self, _event: InputEvent) -> Outcome {
        self.0.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

#[tokio::test]
async fn jetstream_backlog_is_what_the_consumer_has_not_delivered() {
    install_crypto();
    let stream = TestStream::create().await;
    stream.publish_all((0..60).map(|i| format!("b-{i}"))).await;
    let durable = unique("d");
    let md = Metadata::from_pairs([
        ("natsURL", NATS_URL),
        ("subject", stream.subject.as_str()),
        ("jetStream", "true"),
        ("durableName", durable.as_str()),
        ("concurrency", "4"),
    ]);
    let input = build_input(&bindery_binding_nats::NatsFactory, "js-backlog", md).await;
    let input: Arc<dyn bindery_core::InputBinding> = Arc::from(input);
    assert_eq!(input.backlog().await, None, "no consumer before reading");

    let app = Arc::new(Stuck(AtomicUsize::new(0)));
    let stop = CancellationToken::new();
    let reading = tokio::spawn({
        let (input, sink, stop) = (
            Arc::clone(&input),
            EventSink::new(app.clone()),
            stop.clone(),
        );
        async move { input.read(sink, stop).await }
    });
    eventually(Duration::from_secs(20), "four deliveries in flight", || {
        app.0.load(Ordering::SeqCst) == 4
    })
    .await;
    // Four messages are with the app and at most one more pull batch is on its way; the rest
    // waits at the server.
    let pending = input
        .backlog()
        .await
        .expect("a consumer reports its backlog");
    assert!(
        (52..=56).contains(&pending),
        "60 published, 4 with the app: {pending} pending"
    );

    stop.cancel();
    reading.abort();
}
