//! `backOffMaxRetries`: once spent, the message is left unacknowledged in the session, and the
//! broker sends it again when the consumer comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bindery_binding_mqtt::MqttFactory;
use bindery_core::{
    BindingFactory, BindingHealth, CancellationToken, ComponentContext, EventHandler, EventSink,
    InputEvent, Metadata, Outcome, async_trait,
};

struct AlwaysFail(Arc<AtomicUsize>);

#[async_trait]
impl EventHandler for AlwaysFail {
    async fn handle(&self, _event: InputEvent) -> Outcome {
        self.0.fetch_add(1, Ordering::SeqCst);
        Outcome::failed("app says no")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_retries_leave_the_message_for_the_next_session() {
    common::require_mosquitto().await;
    let topic = common::unique("tretry");
    let consumer = common::unique("cretry");
    let ctx = ComponentContext {
        name: "retry".into(),
        app_id: "retry-test".into(),
        metadata: Metadata::from_pairs([
            ("url", common::URL),
            ("topic", topic.as_str()),
            ("consumerID", consumer.as_str()),
            ("backOffMaxRetries", "2"),
            ("backOffInitialInterval", "10ms"),
        ]),
        health: BindingHealth::default(),
    };
    let attempts = Arc::new(AtomicUsize::new(0));
    let read = |stop: CancellationToken| {
        let ctx = ctx.clone();
        let attempts = Arc::clone(&attempts);
        tokio::spawn(async move {
            let input = MqttFactory.build_input(&ctx).await.unwrap();
            let sink = EventSink::new(Arc::new(AlwaysFail(attempts)));
            input.read(sink, stop).await
        })
    };
    let stop = CancellationToken::new();
    let reader = read(stop.clone());
    bindery_test_support::wait_until(Duration::from_secs(10), "the subscription", || {
        let connected = ctx.health.snapshot().connected;
        async move { connected.then_some(()) }
    })
    .await;
    let mut publisher = common::Publisher::new().await;
    publisher.publish_all(&topic, &["m".to_owned()]).await;
    bindery_test_support::wait_until(Duration::from_secs(10), "3 attempts", || {
        let n = attempts.load(Ordering::SeqCst);
        async move { (n >= 3).then_some(()) }
    })
    .await;
    // The first attempt and two retries, then no more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    stop.cancel();
    reader.await.unwrap().unwrap();

    // A new session of the same consumer gets the message again.
    let stop = CancellationToken::new();
    let reader = read(stop.clone());
    bindery_test_support::wait_until(Duration::from_secs(10), "the redelivery", || {
        let n = attempts.load(Ordering::SeqCst);
        async move { (n >= 4).then_some(()) }
    })
    .await;
    stop.cancel();
    reader.await.unwrap().unwrap();
    common::forget_sessions(&[format!("{consumer}-consumer")]).await;
}
