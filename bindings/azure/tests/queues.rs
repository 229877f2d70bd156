//! `bindings.azure.storagequeues` against Azurite through the real `bindery` binary: output over
//! HTTP and gRPC, input delivered to a real HTTP app, with failures, slow deliveries and a random
//! 10 % failure rate. Build the binary first (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bindery_binding_azure::rest::DEV_KEY;
use bindery_test_support::{Answer, TestApp, wait_until};
use chrono::DateTime;
use common::{
    component, grpc, grpc_request, queue_client, queue_md, require_azurite, start, unique,
};
use http::Method;
use serde_json::json;

const TYPE: &str = "bindings.azure.storagequeues";
const ROUTE: &str = "/queue";

fn file(queue: &str, extra: &[(&str, &str)]) -> String {
    component("queue", TYPE, &queue_md(queue, extra))
}

/// Wait until the queue holds no message at all (visible or not).
async fn wait_empty(queue: &str, deadline: Duration) {
    let q = queue_client(queue);
    wait_until(deadline, "an empty queue", || {
        let q = q.clone();
        async move { (q.approximate_count().await.unwrap() == 0).then_some(()) }
    })
    .await;
}

/// Output `create` over HTTP and gRPC: data unquoted, TTLs and the initial visibility delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_enqueues_over_http_and_grpc() {
    require_azurite();
    let queue = unique("out");
    let b = start(
        "queue-out",
        &file(&queue, &[("direction", "output"), ("ttl", "5m")]),
        None,
    )
    .await;
    let q = queue_client(&queue);

    let resp = b
        .invoke(
            "queue",
            json!({"operation": "create", "data": "hello <queue> & friends"}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let resp = b
        .invoke(
            "queue",
            json!({"operation": "create", "data": {"order": 1}, "metadata": {"ttlInSeconds": "60"}}),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let mut c = grpc(b.grpc_port).await;
    let resp = c
        .invoke_binding(grpc_request(
            "queue",
            "create",
            b"from grpc",
            &[("ttl", "2m")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.data.is_empty());

    let peeked = q.peek_messages(32).await.unwrap();
    let texts: Vec<&str> = peeked.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["hello <queue> & friends", r#"{"order":1}"#, "from grpc"]
    );
    let lifetime = |i: usize| {
        let ins = DateTime::parse_from_rfc2822(&peeked[i].insertion_time).unwrap();
        let exp = DateTime::parse_from_rfc2822(&peeked[i].expiration_time).unwrap();
        (exp - ins).num_seconds()
    };
    assert_eq!(lifetime(0), 300, "the component's ttl");
    assert_eq!(lifetime(1), 60, "the request's ttlInSeconds");
    assert_eq!(lifetime(2), 120, "the request's ttl");

    // A delayed message is in the queue but not visible yet.
    q.clear().await.unwrap();
    let resp = b
        .invoke(
            "queue",
            json!({"operation": "create", "data": "later", "metadata": {"initialVisibilityDelay": "1m"}}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    assert!(q.peek_messages(32).await.unwrap().is_empty());
    assert_eq!(q.approximate_count().await.unwrap(), 1);

    // Errors: a delay beyond the TTL, a bad TTL, binary data without encodeBase64, an unknown
    // operation.
    let resp = b
        .invoke(
            "queue",
            json!({"operation": "create", "data": "never", "metadata": {"initialVisibilityDelay": "1h"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("must be shorter than the message's time to live")
    );
    let resp = b
        .invoke(
            "queue",
            json!({"operation": "create", "data": "x", "metadata": {"ttlInSeconds": "0"}}),
        )
        .await;
    assert_eq!(resp.status(), 500);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("ttlInSeconds value must be higher than zero")
    );
    let status = c
        .invoke_binding(grpc_request("queue", "create", &[0xff, 0xfe], &[]))
        .await
        .unwrap_err();
    assert!(status.message().contains("encodeBase64"), "{status:?}");
    let resp = b.invoke("queue", json!({"operation": "get"})).await;
    assert_eq!(resp.status(), 500);
    q.delete_queue().await.unwrap();
}

/// `encodeBase64` on the output and `decodeBase64` on the input carry binary data end to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_round_trip_of_binary_data() {
    require_azurite();
    let queue = unique("b64");
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let b = start(
        "queue-b64",
        &file(
            &queue,
            &[
                ("encodeBase64", "true"),
                ("decodeBase64", "true"),
                ("route", ROUTE),
            ],
        ),
        Some(app.port),
    )
    .await;
    let raw = [0u8, 1, 2, 0xff, 0xfe, b'x'];
    let mut c = grpc(b.grpc_port).await;
    c.invoke_binding(grpc_request("queue", "create", &raw, &[]))
        .await
        .unwrap();
    let got = app
        .wait_for(Method::POST, ROUTE, 1, Duration::from_secs(20))
        .await;
    assert_eq!(&got[0].body[..], raw);
    wait_empty(&queue, Duration::from_secs(10)).await;
    queue_client(&queue).delete_queue().await.unwrap();
}

/// An app that accepts: each message exactly once, with every metadata key; the queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_messages_arrive_exactly_once() {
    require_azurite();
    let queue = unique("once");
    let q = queue_client(&queue);
    q.create_queue().await.unwrap();
    let app = TestApp::start().await;
    app.subscribe(ROUTE);
    let _b = start(
        "queue-once",
        &file(&queue, &[("route", ROUTE)]),
        Some(app.port),
    )
    .await;
    let bodies: Vec<String> = (0..40).map(|i| format!("msg-{i}")).collect();
    for body in &bodies {
        q.put_message(body, Duration::from_secs(600), Duration::ZERO)
            .await
            .unwrap();
    }
    let got = app
        .wait_for(Method::POST, ROUTE, bodies.len(), Duration::from_secs(60))
        .await;
    wait_empty(&queue, Duration::from_secs(20)).await;
    // Give a redelivery a chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_now = app.received_at(&Method::POST, ROUTE);
    assert_eq!(got_now.len(), bodies.len(), "a message was delivered twice");
    let seen: HashSet<Vec<u8>> = got.iter().map(|r| r.body.to_vec()).collect();
    for body in &bodies {
        assert!(seen.contains(body.as_bytes()), "{body} missing");
    }
    let r = &got[0];
    for key in [
        "messageid",
        "popreceipt",
        "insertiontime",
        "expirationtime",
        "nextvisibletime",
        "dequeuecount",
    ] {
        assert!(r.header(key).is_some(), "no {key} header: {:?}", r.headers);
    }
    assert_eq!(r.header("dequeuecount").as_deref(), Some("1"));
    assert!(DateTime::parse_from_rfc3339(&r.header("insertiontime").unwrap()).is_ok());
    assert!(DateTime::parse_from_rfc3339(&r.header("nextvisibletime").unwrap()).is_ok());
    q.delete_queue().await.unwrap();
}

/// A message the app fails comes back soon (the backoff, not the 30 s visibility timeout), with
/// `dequeueCount` 2, and is deleted once accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_comes_back_after_the_backoff() {
    require_azurite();
    let queue = unique("retry");
    let q = queue_client(&queue);
    q.create_queue().await.unwrap();
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(500), Answer::status(200)],
    );
    let _b = start(
        "queue-retry",
        &file(&queue, &[("route", ROUTE)]),
        Some(app.port),
    )
    .await;
    let sent = Instant::now();
    q.put_message("fail once", Duration::from_secs(600), Duration::ZERO)
        .await
        .unwrap();
    let got = app
        .wait_for(Method::POST, ROUTE, 2, Duration::from_secs(25))
        .await;
    let elapsed = sent.elapsed();
    assert_eq!(&got[0].body[..], b"fail once");
    assert_eq!(&got[1].body[..], b"fail once");
    assert_eq!(got[0].status, 500);
    assert_eq!(got[1].status, 200);
    assert_eq!(got[1].header("dequeuecount").as_deref(), Some("2"));
    assert!(
        elapsed < Duration::from_secs(15),
        "redelivered after {elapsed:?}: the visibility timeout was waited out"
    );
    wait_empty(&queue, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.received_at(&Method::POST, ROUTE).len(), 2);
    q.delete_queue().await.unwrap();
}

/// A delivery slower than the visibility timeout: the binding keeps the message hidden, so it
/// is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_delivery_is_not_duplicated() {
    require_azurite();
    let queue = unique("slow");
    let q = queue_client(&queue);
    q.create_queue().await.unwrap();
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_secs(5))],
    );
    let _b = start(
        "queue-slow",
        &file(&queue, &[("route", ROUTE), ("visibilityTimeout", "2s")]),
        Some(app.port),
    )
    .await;
    q.put_message("slow", Duration::from_secs(600), Duration::ZERO)
        .await
        .unwrap();
    app.wait_for(Method::POST, ROUTE, 1, Duration::from_secs(20))
        .await;
    wait_empty(&queue, Duration::from_secs(20)).await;
    assert_eq!(
        app.received_at(&Method::POST, ROUTE).len(),
        1,
        "delivered twice"
    );
    q.delete_queue().await.unwrap();
}

/// 500 messages while the app fails a random 10 % of deliveries: every one is accepted exactly
/// once and the queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_messages_with_random_failures_all_arrive() {
    require_azurite();
    let queue = unique("load");
    let q = queue_client(&queue);
    q.create_queue().await.unwrap();
    let app = TestApp::start().await;
    app.fail_randomly(ROUTE, 0.1);
    let _b = start(
        "queue-load",
        &file(
            &queue,
            &[
                ("route", ROUTE),
                ("backOffInitialInterval", "1s"),
                ("backOffMaxInterval", "2s"),
            ],
        ),
        Some(app.port),
    )
    .await;
    let bodies: Vec<String> = (0..500).map(|i| format!("m-{i}")).collect();
    let puts = bodies.iter().map(|b| {
        let q = q.clone();
        let b = b.clone();
        async move {
            q.put_message(&b, Duration::from_secs(600), Duration::ZERO)
                .await
                .unwrap()
        }
    });
    futures::future::join_all(puts).await;
    wait_until(Duration::from_secs(180), "every message accepted", || {
        let accepted: HashSet<Vec<u8>> = app.accepted(ROUTE).iter().map(|b| b.to_vec()).collect();
        let done = bodies.iter().all(|b| accepted.contains(b.as_bytes()));
        async move { done.then_some(()) }
    })
    .await;
    wait_empty(&queue, Duration::from_secs(30)).await;
    let accepted = app.accepted(ROUTE);
    let failed = app
        .received_at(&Method::POST, ROUTE)
        .iter()
        .filter(|r| r.status == 500)
        .count();
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for a in &accepted {
        *counts.entry(a.to_vec()).or_default() += 1;
    }
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "storagequeues 500: {} accepted, {failed} deliveries failed by the app and redelivered, {} duplicates",
        accepted.len(),
        duplicates.len()
    );
    assert!(failed > 10, "the app failed only {failed} deliveries");
    assert!(
        duplicates.is_empty(),
        "accepted more than once: {duplicates:?}"
    );
    assert_eq!(accepted.len(), 500);
    q.delete_queue().await.unwrap();
}

/// A queue service that is down: the output fails with `unavailable` naming host:port, and the
/// key shows in no answer and no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_is_named() {
    let port = bindery_test_support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let b = start(
        "queue-down",
        &file(
            "down",
            &[("queueEndpoint", &endpoint), ("direction", "output")],
        ),
        None,
    )
    .await;
    let resp = b
        .invoke("queue", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(resp.status(), 500);
    let text = resp.text().await.unwrap();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    let logs = b.logs();
    assert!(logs.contains(&format!("127.0.0.1:{port}")), "{logs}");
    assert!(!logs.contains(DEV_KEY) && !text.contains(DEV_KEY));
    let health = b.client().get(b.url("/v1.0/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 500);
}

/// The backlog the input side reports to the stall watchdog: visible messages only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_counts_visible_messages() {
    use bindery_core::Metadata;
    use bindery_test_support::conformance::build_input;
    require_azurite();
    let queue = unique("depth");
    let q = queue_client(&queue);
    q.create_queue().await.unwrap();
    let md = Metadata::from_pairs(queue_md(&queue, &[]));
    let factory = bindery_binding_azure::StorageQueuesFactory;
    let input = build_input(&factory, "queue-depth", md).await;
    assert_eq!(input.backlog().await, Some(0), "an empty queue");
    for i in 0..9 {
        q.put_message(&format!("m-{i}"), Duration::from_secs(600), Duration::ZERO)
            .await
            .unwrap();
    }
    assert_eq!(input.backlog().await, Some(9));
    // Only hidden messages (a message waiting out its visibility delay): nothing to read now.
    let hidden = unique("hidden");
    let h = queue_client(&hidden);
    h.create_queue().await.unwrap();
    h.put_message("later", Duration::from_secs(600), Duration::from_secs(300))
        .await
        .unwrap();
    let md = Metadata::from_pairs(queue_md(&hidden, &[]));
    let input_hidden = build_input(&factory, "queue-hidden", md).await;
    assert_eq!(input_hidden.backlog().await, Some(0));
    q.delete_queue().await.unwrap();
    h.delete_queue().await.unwrap();
}
