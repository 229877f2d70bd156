//! Black-box tests: the real `bindery` binary, the machine's RabbitMQ and a real HTTP app.
//! Build the binary first (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bindery_test_support::{Answer, TestApp};
use common::{
    Publisher, accepted, bodies, component, healthz, start_bindery, wait_accepted_at_least,
    wait_all_accepted,
};
use futures::StreamExt;
use http::Method;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::json;

const ROUTE: &str = "/rmq";

/// 10,000 messages while the app fails a random 10 % of deliveries: every one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_random_failures_all_arrive() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = TestApp::start().await;
    app.fail_randomly(ROUTE, 0.1);
    let b = start_bindery(
        "rmq-10k",
        &component("rmq", &queue, &[("prefetchCount", "50")]),
        app.port,
    )
    .await;
    let expected = bodies("m", 10_000);
    publisher.publish_all(expected.clone()).await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(240)).await;
    let failed = app
        .received_at(&Method::POST, ROUTE)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    println!(
        "rabbitmq 10k: {} distinct accepted, {} duplicates, {failed} deliveries failed by the app and redelivered",
        expected.len(),
        total - expected.len()
    );
    assert!(failed > 500, "the app failed only {failed} deliveries");
    // Nothing is left behind in the queue.
    common_wait_queue_empty(&publisher).await;
    assert_eq!(healthz(&b).await, 204);
    publisher.delete().await;
}

async fn common_wait_queue_empty(publisher: &Publisher) {
    bindery_test_support::wait_until(Duration::from_secs(10), "an empty queue", || async {
        (publisher.ready().await == 0).then_some(())
    })
    .await;
}

/// A message the app always fails is retried with backoff (no hot loop) and never stops the
/// others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_does_not_stop_the_others() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = common::PoisonApp::default();
    let port = app.start().await;
    let _b = start_bindery(
        "rmq-poison",
        &component(
            "rmq",
            &queue,
            &[
                ("prefetchCount", "4"),
                ("backOffInitialInterval", "100ms"),
                ("backOffMaxInterval", "400ms"),
            ],
        ),
        port,
    )
    .await;
    publisher.publish_all(["poison-1".to_owned()]).await;
    let expected = bodies("ok", 500);
    publisher.publish_all(expected.clone()).await;
    bindery_test_support::wait_until(Duration::from_secs(60), "every good message", || {
        let got: HashSet<Vec<u8>> = app.accepted.lock().unwrap().iter().cloned().collect();
        let done = expected.iter().all(|b| got.contains(b.as_bytes()));
        async move { done.then_some(()) }
    })
    .await;
    // Keep going a little to watch the poison message's retries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = app.poison_attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    println!(
        "rabbitmq poison: {} attempts, gaps {:?}",
        attempts.len(),
        gaps
    );
    assert!(attempts.len() >= 3, "the poison message was retried");
    // No hot loop: daprd requeues at once (thousands of attempts a second); with a 100 ms
    // backoff growing to 400 ms there are at most a few dozen in these seconds.
    assert!(
        attempts.len() < 60,
        "{} attempts: a hot loop",
        attempts.len()
    );
    assert!(
        gaps.iter()
            .skip(2)
            .all(|g| *g >= Duration::from_millis(150)),
        "the backoff grows: {gaps:?}"
    );
    // The poison message is still in the queue (held or ready), not lost.
    publisher.delete().await;
}

/// bindery killed with SIGKILL mid-stream and started again: RabbitMQ redelivers everything
/// that was not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(10))],
    );
    let file = component("rmq", &queue, &[("prefetchCount", "10")]);
    let first = start_bindery("rmq-kill", &file, app.port).await;
    let expected = bodies("k", 3000);
    publisher.publish_all(expected.clone()).await;
    wait_accepted_at_least(&[&app], ROUTE, 300, Duration::from_secs(60)).await;
    first.signal("KILL");
    let (before, _) = accepted(&[&app], ROUTE);
    assert!(
        before.len() < expected.len(),
        "everything was delivered before the kill"
    );
    drop(first);
    let _second = start_bindery("rmq-kill", &file, app.port).await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(120)).await;
    println!(
        "rabbitmq SIGKILL: {} had reached the app before the kill, {} duplicates overall",
        before.len(),
        total - expected.len()
    );
    publisher.delete().await;
}

/// Three replicas on one queue share the work; killing one mid-stream loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_queue_and_one_dies() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let file = component("rmq", &queue, &[("prefetchCount", "5")]);
    let mut apps = Vec::new();
    let mut replicas = Vec::new();
    for i in 0..3 {
        let app = TestApp::start().await;
        app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
        app.answer(
            Method::POST,
            ROUTE,
            vec![Answer::status(200).delay(Duration::from_millis(5))],
        );
        replicas.push(Some(
            start_bindery(&format!("rmq-replica-{i}"), &file, app.port).await,
        ));
        apps.push(app);
    }
    let app_refs: Vec<&TestApp> = apps.iter().collect();
    let expected = bodies("r", 3000);
    publisher.publish_all(expected.clone()).await;
    wait_accepted_at_least(&app_refs, ROUTE, 600, Duration::from_secs(60)).await;
    if let Some(b) = replicas[0].take() {
        b.signal("KILL");
    }
    let total = wait_all_accepted(&app_refs, ROUTE, &expected, Duration::from_secs(120)).await;
    let split: Vec<usize> = apps.iter().map(|a| a.accepted(ROUTE).len()).collect();
    println!(
        "rabbitmq replicas: split {split:?} (replica 0 killed mid-stream), {} duplicates",
        total - expected.len()
    );
    assert!(
        split.iter().all(|n| *n > 0),
        "every replica took work: {split:?}"
    );
    publisher.delete().await;
}

/// `create` through the Dapr HTTP API publishes a persistent message with the request metadata
/// as headers and properties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_through_the_api_publishes_with_properties() {
    let queue = common::queue();
    common::require_rabbitmq().await;
    common::crypto();
    let file = component("rmqout", &queue, &[("direction", "output")]);
    let b = bindery_test_support::Bindery::builder("rmq-out")
        .file("rabbitmq.yaml", &file)
        .start()
        .await;
    let resp = b
        .invoke(
            "rmqout",
            json!({
                "operation": "create",
                "data": {"order": 7},
                "metadata": {
                    "messageID": "m-7",
                    "correlationID": "c-7",
                    "contentType": "application/json",
                    "priority": "3",
                    "ttlInSeconds": "600",
                    "custom": "hello"
                }
            }),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let resp = b
        .invoke("rmqout", json!({"operation": "get", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);

    let conn = Connection::connect(common::URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "check".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a message")
        .unwrap()
        .unwrap();
    assert_eq!(d.data, br#"{"order":7}"#);
    let p = &d.properties;
    assert_eq!(*p.delivery_mode(), Some(2));
    assert_eq!(p.message_id().as_ref().unwrap().as_str(), "m-7");
    assert_eq!(p.correlation_id().as_ref().unwrap().as_str(), "c-7");
    assert_eq!(
        p.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(*p.priority(), Some(3));
    assert_eq!(p.expiration().as_ref().unwrap().as_str(), "600000");
    let headers = p.headers().as_ref().unwrap();
    assert!(matches!(
        headers.inner().get("custom"),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"hello"
    ));
    d.acker.ack(BasicAckOptions::default()).await.unwrap();
    let _ = ch
        .queue_delete(queue.as_str().into(), Default::default())
        .await;
}

/// Events carry the string headers and ids of the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_headers_as_metadata() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let file = component("rmq", &queue, &[]);
    let b = start_bindery("rmq-headers", &file, app.port).await;
    // Publish through bindery itself: the same component is input and output.
    let resp = b
        .invoke(
            "rmq",
            json!({"operation": "create", "data": "hi", "metadata": {"x-trace": "abc", "messageID": "id-1"}}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let got = app
        .wait_for(Method::POST, ROUTE, 1, Duration::from_secs(20))
        .await;
    assert_eq!(&got[0].body[..], br#""hi""#);
    assert_eq!(got[0].header("x-trace").as_deref(), Some("abc"));
    assert_eq!(got[0].header("messageid").as_deref(), Some("id-1"));
    publisher.delete().await;
}

/// An exclusive queue belongs to one connection: the component's input and output share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_queue_serves_both_sides() {
    common::require_rabbitmq().await;
    let queue = common::queue();
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let file = component(
        "rmq",
        &queue,
        &[("durable", "false"), ("exclusive", "true")],
    );
    let b = start_bindery("rmq-exclusive", &file, app.port).await;
    bindery_test_support::wait_until(Duration::from_secs(30), "healthz 204", || async {
        (healthz(&b).await == 204).then_some(())
    })
    .await;
    for i in 0..3 {
        let resp = b
            .invoke(
                "rmq",
                json!({"operation": "create", "data": format!("x{i}")}),
            )
            .await;
        assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    }
    app.wait_for(Method::POST, ROUTE, 3, Duration::from_secs(20))
        .await;
}

/// SIGTERM: bindery stops taking messages, finishes what is under way and hands the rest back;
/// a later instance gets everything that was not accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_back_what_is_not_accepted() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(20))],
    );
    let file = component("rmq", &queue, &[("prefetchCount", "10")]);
    let mut first = start_bindery("rmq-term", &file, app.port).await;
    let expected = bodies("t", 1000);
    publisher.publish_all(expected.clone()).await;
    wait_accepted_at_least(&[&app], ROUTE, 100, Duration::from_secs(60)).await;
    first.signal("TERM");
    let status = first.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "bindery exited with {status}");
    let (before, _) = accepted(&[&app], ROUTE);
    assert!(before.len() < expected.len());
    // What was not delivered is back in the queue, not lost.
    assert!(publisher.ready().await as usize >= expected.len() - before.len());
    let _second = start_bindery("rmq-term", &file, app.port).await;
    let total = wait_all_accepted(&[&app], ROUTE, &expected, Duration::from_secs(60)).await;
    println!(
        "rabbitmq SIGTERM: {} delivered before the stop, {} duplicates",
        before.len(),
        total - expected.len()
    );
    assert_eq!(
        total,
        expected.len(),
        "a graceful stop causes no duplicates"
    );
    publisher.delete().await;
}
