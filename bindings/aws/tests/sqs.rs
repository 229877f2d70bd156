//! `bindings.aws.sqs` against moto: conformance (create, read), the output over HTTP and gRPC,
//! and the input's delivery guarantees through the real `bindery` binary and a real app.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use bindery_binding_aws::SqsFactory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};
use bindery_test_support::{Answer, TestApp, wait_until};
use common::{SECRET_KEY, component, grpc, http, start};
use http::Method;
use serde_json::json;

const ROUTE: &str = "/sqs";

struct Queue {
    client: aws_sdk_sqs::Client,
    name: String,
    url: String,
}

impl Queue {
    /// A fresh queue whose messages come back `visibility` seconds after a receive.
    async fn new(visibility: u32) -> Self {
        common::require_moto().await;
        let client = aws_sdk_sqs::Client::new(&common::sdk().await);
        let name = common::unique("bindery");
        let out = client
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .send()
            .await
            .unwrap();
        Queue {
            client,
            name,
            url: out.queue_url().unwrap().to_owned(),
        }
    }

    async fn send_all(&self, bodies: &[String]) {
        for chunk in bodies.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(b)
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// Visible plus in-flight messages.
    async fn depth(&self) -> u64 {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().unwrap();
        let n = |k: QueueAttributeName| -> u64 {
            attrs.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        n(QueueAttributeName::ApproximateNumberOfMessages)
            + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }

    async fn receive_one(&self) -> Option<aws_sdk_sqs::types::Message> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        out.messages.unwrap_or_default().into_iter().next()
    }

    async fn delete(self) {
        let _ = self.client.delete_queue().queue_url(&self.url).send().await;
    }
}

fn sqs_component(name: &str, queue: &str, extra: &[(&str, &str)]) -> String {
    let mut md = vec![
        ("queueName", queue),
        ("waitTimeSeconds", "1"),
        ("backOffInitialInterval", "1s"),
        ("backOffMaxInterval", "2s"),
    ];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, v));
    }
    component(name, "bindings.aws.sqs", &md)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_create_and_read() {
    let q = Queue::new(30).await;
    let mut md: Vec<(&str, String)> = common::auth();
    md.push(("queueName", q.name.clone()));
    md.push(("waitTimeSeconds", "1".into()));
    let mut c = Conformance::new("sqs-conformance", Metadata::from_pairs(md));
    c.operations = vec!["create"];
    c.read = true;
    c.read_timeout = Duration::from_secs(30);
    let events = conformance::run(&SqsFactory, c).await;
    assert_eq!(&events[0].data[..], DEFAULT_OUTPUT_DATA.as_bytes());
    assert!(events[0].metadata.contains_key("messageID"));
    wait_until(Duration::from_secs(10), "the queue to drain", || async {
        (q.depth().await == 0).then_some(())
    })
    .await;
    q.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_over_http_and_grpc() {
    let q = Queue::new(30).await;
    let b = start(
        "sqs-out",
        &[("sqs.yaml", sqs_component("sqs", &q.name, &[]))],
        None,
    )
    .await;
    // HTTP re-encodes data as JSON: SQS gets the JSON text, quotes included (as daprd sends).
    let r = http(&b, "sqs", "create", json!("hello"), &[]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let m = q.receive_one().await.expect("a message");
    assert_eq!(m.body(), Some("\"hello\""));
    // gRPC data is verbatim.
    let r = grpc(&b, "sqs", "create", b"raw text", &[]).await.unwrap();
    assert!(r.data.is_empty());
    let m = q.receive_one().await.expect("a message");
    assert_eq!(m.body(), Some("raw text"));
    // A body SQS cannot carry is refused with a clear message.
    let e = grpc(&b, "sqs", "create", b"\xff\xfe", &[])
        .await
        .unwrap_err();
    assert!(e.message().contains("UTF-8"), "{}", e.message());
    let r = http(&b, "sqs", "get", json!(null), &[]).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("supported operations:create"),
        "{}",
        r.text()
    );
    // The queue goes away: SQS's own error reaches the caller, without the credentials.
    q.client
        .delete_queue()
        .queue_url(&q.url)
        .send()
        .await
        .unwrap();
    let r = http(&b, "sqs", "create", json!("x"), &[]).await;
    assert_eq!(r.status, 500);
    let text = r.text();
    assert!(
        text.contains("NonExistentQueue") || text.contains("QueueDoesNotExist"),
        "{text}"
    );
    assert!(!text.contains(SECRET_KEY), "{text}");
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
}

/// Every message reaches an app that accepts exactly once, with its metadata, and the queue
/// is empty afterwards (each was deleted after the app accepted it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_messages_arrive_exactly_once() {
    let q = Queue::new(2).await;
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let _b = start(
        "sqs-once",
        &[(
            "sqs.yaml",
            sqs_component("sqs", &q.name, &[("route", ROUTE)]),
        )],
        Some(app.port),
    )
    .await;
    let bodies: Vec<String> = (0..30).map(|i| format!("once-{i}")).collect();
    q.send_all(&bodies).await;
    app.wait_for(Method::POST, ROUTE, bodies.len(), Duration::from_secs(60))
        .await;
    // Longer than the queue's 2 s visibility timeout: anything not deleted would be back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let got = app.received_at(&Method::POST, ROUTE);
    assert_eq!(got.len(), bodies.len(), "duplicates or losses");
    let distinct: HashSet<Vec<u8>> = got.iter().map(|r| r.body.to_vec()).collect();
    let expected: HashSet<Vec<u8>> = bodies.iter().map(|b| b.as_bytes().to_vec()).collect();
    assert_eq!(distinct, expected);
    let first = &got[0];
    assert!(first.header("messageID").is_some());
    assert!(
        first
            .header("sentTimestamp")
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert_eq!(
        first.header("approximateReceiveCount").as_deref(),
        Some("1")
    );
    assert_eq!(q.depth().await, 0);
    q.delete().await;
}

/// A message the app fails comes back after the backoff (ChangeMessageVisibility), not after
/// the queue's 30 s visibility timeout, and is deleted once accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_message_is_redelivered_after_the_backoff() {
    let q = Queue::new(30).await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(500), Answer::status(200)],
    );
    let _b = start(
        "sqs-retry",
        &[(
            "sqs.yaml",
            sqs_component("sqs", &q.name, &[("route", ROUTE)]),
        )],
        Some(app.port),
    )
    .await;
    q.send_all(&["retry-me".to_owned()]).await;
    let started = Instant::now();
    let got = app
        .wait_for(Method::POST, ROUTE, 2, Duration::from_secs(20))
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert_eq!(got[0].status, 500);
    assert_eq!(got[1].status, 200);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].header("messageID"), got[1].header("messageID"));
    assert_eq!(
        got[1].header("approximateReceiveCount").as_deref(),
        Some("2")
    );
    wait_until(Duration::from_secs(10), "the queue to drain", || async {
        (q.depth().await == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.received_at(&Method::POST, ROUTE).len(), 2);
    q.delete().await;
}

/// 500 messages while the app fails a random 10 % of deliveries: every one is accepted and the
/// queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_messages_with_random_failures_all_arrive() {
    let q = Queue::new(30).await;
    let app = TestApp::start().await;
    app.fail_randomly(ROUTE, 0.1);
    let _b = start(
        "sqs-500",
        &[(
            "sqs.yaml",
            sqs_component("sqs", &q.name, &[("route", ROUTE)]),
        )],
        Some(app.port),
    )
    .await;
    let bodies: Vec<String> = (0..500).map(|i| format!("m-{i}")).collect();
    q.send_all(&bodies).await;
    let expected: HashSet<Vec<u8>> = bodies.iter().map(|b| b.as_bytes().to_vec()).collect();
    wait_until(Duration::from_secs(180), "every message accepted", || {
        let got: HashSet<Vec<u8>> = app.accepted(ROUTE).iter().map(|b| b.to_vec()).collect();
        let done = expected.is_subset(&got);
        async move { done.then_some(()) }
    })
    .await;
    let failed = app
        .received_at(&Method::POST, ROUTE)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    let accepted = app.accepted(ROUTE).len();
    println!(
        "sqs 500: {failed} deliveries failed by the app and redelivered, {} duplicates",
        accepted - expected.len()
    );
    assert!(failed > 10, "the app failed only {failed} deliveries");
    wait_until(Duration::from_secs(20), "the queue to drain", || async {
        (q.depth().await == 0).then_some(())
    })
    .await;
    q.delete().await;
}

/// A queue that does not exist yet: the input reports not ready and starts reading once it is
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_waits_for_a_missing_queue() {
    common::require_moto().await;
    let client = aws_sdk_sqs::Client::new(&common::sdk().await);
    let name = common::unique("bindery-late");
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let b = start(
        "sqs-late",
        &[(
            "sqs.yaml",
            sqs_component("sqs", &name, &[("route", ROUTE), ("direction", "input")]),
        )],
        Some(app.port),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = b.client().get(b.url("/v1.0/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let url = client
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    client
        .send_message()
        .queue_url(&url)
        .message_body("late")
        .send()
        .await
        .unwrap();
    let got = app
        .wait_for(Method::POST, ROUTE, 1, Duration::from_secs(60))
        .await;
    assert_eq!(&got[0].body[..], b"late");
    common::wait_healthy(&b).await;
    let _ = client.delete_queue().queue_url(&url).send().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_is_the_number_of_visible_messages() {
    common::crypto();
    let q = Queue::new(30).await;
    let mut pairs = common::auth();
    pairs.push(("queueName", q.name.clone()));
    let md = Metadata::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    let input = conformance::build_input(&SqsFactory, "sqs-backlog", md).await;
    assert_eq!(input.backlog().await, Some(0), "an empty queue");
    let bodies: Vec<String> = (0..23).map(|i| format!("b-{i}")).collect();
    q.send_all(&bodies).await;
    assert_eq!(input.backlog().await, Some(23));
    // A received message is in flight, no longer waiting.
    assert!(q.receive_one().await.is_some());
    assert_eq!(input.backlog().await, Some(22));
    q.delete().await;
}
