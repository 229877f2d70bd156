//! A component edited while events stream through it: the new instance takes over, no event is
//! lost and no output call fails. Runs against the machine's RabbitMQ (127.0.0.1:5672).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bindery_test_support::{TestApp, wait_until};
use common::{bindery, component};
use http::Method;
use serde_json::json;

fn rabbitmq(queue: &str, prefetch: &str) -> String {
    component(
        "orders",
        "bindings.rabbitmq",
        &[
            ("host", "amqp://guest:guest@127.0.0.1:5672"),
            ("queueName", queue),
            ("durable", "true"),
            ("prefetchCount", prefetch),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_component_under_load_loses_nothing() {
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        panic!("RabbitMQ is not reachable on 127.0.0.1:5672; start it with scripts/backends.sh");
    }
    const N: usize = 2_000;
    let queue = format!("reload-{}", std::process::id());
    let app = TestApp::start().await;
    app.subscribe("/orders");
    let b = bindery("reload-under-load")
        .file("orders.yaml", &rabbitmq(&queue, "10"))
        .app_port(app.port)
        .start()
        .await;
    wait_until(Duration::from_secs(30), "the binding to consume", || {
        let logs = b.logs();
        async move { logs.contains("consuming from RabbitMQ").then_some(()) }
    })
    .await;

    let client = b.client().clone();
    let url = b.url("/v1.0/bindings/orders");
    let publisher = tokio::spawn(async move {
        let mut failed = Vec::new();
        for i in 0..N {
            let r = client
                .post(&url)
                .json(&json!({"operation": "create", "data": format!("m{i}")}))
                .send()
                .await
                .unwrap();
            if !r.status().is_success() {
                failed.push((i, r.status(), r.text().await.unwrap_or_default()));
            }
        }
        failed
    });
    // Edit the component twice while messages flow.
    for (edit, prefetch) in ["20", "5"].into_iter().enumerate() {
        wait_until(Duration::from_secs(60), "more deliveries", || {
            let n = app.accepted("/orders").len();
            async move { (n >= (edit + 1) * N / 3).then_some(()) }
        })
        .await;
        std::fs::write(
            b.resources_dir().join("orders.yaml"),
            rabbitmq(&queue, prefetch),
        )
        .unwrap();
        wait_until(Duration::from_secs(30), "the edit to take effect", || {
            let logs = b.logs();
            let edits = logs.matches("component updated").count();
            async move { (edits > edit).then_some(()) }
        })
        .await;
    }
    let failed = publisher.await.unwrap();
    assert!(
        failed.is_empty(),
        "output calls failed during the edits: {failed:?}"
    );
    let accepted = wait_until(Duration::from_secs(120), "every message accepted", || {
        let got: HashSet<String> = app
            .accepted("/orders")
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        async move { (got.len() >= N).then_some(got) }
    })
    .await;
    let deliveries = app.received_at(&Method::POST, "/orders").len();
    println!(
        "reload under load: {N} sent, {} distinct accepted, {} duplicates, {} lost, {} component updates",
        accepted.len(),
        deliveries - accepted.len(),
        N - accepted.len(),
        b.logs().matches("component updated").count()
    );
    assert_eq!(accepted.len(), N);
}
