//! RabbitMQ restarted mid-stream (`rabbitmqctl stop`, then `rabbitmq-server -detached`, the
//! command scripts/backends.sh uses). The queue is durable and the messages persistent, so the
//! broker keeps them across the restart; the binding reconnects by itself and nothing is lost.
//! Its own test binary, so no other RabbitMQ test of this crate runs while the broker is down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use bindery_test_support::{Answer, TestApp};
use common::{
    Publisher, RestartGuard, accepted, bodies, component, healthz, start_bindery,
    wait_accepted_at_least, wait_all_accepted,
};
use http::Method;

const ROUTE: &str = "/rmq";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    let queue = common::queue();
    let publisher = Publisher::new(&queue).await;
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(200).delay(Duration::from_millis(10))],
    );
    let b = start_bindery(
        "rmq-restart",
        &component("rmq", &queue, &[("prefetchCount", "10")]),
        app.port,
    )
    .await;
    bindery_test_support::wait_until(Duration::from_secs(30), "healthz 204", || async {
        (healthz(&b).await == 204).then_some(())
    })
    .await;
    let expected = bodies("before", 3000);
    publisher.publish_all(expected.clone()).await;
    drop(publisher);
    wait_accepted_at_least(&[&app], ROUTE, 300, Duration::from_secs(60)).await;

    let guard = RestartGuard;
    let stop = tokio::task::spawn_blocking(move || {
        guard.stop_broker();
        guard
    });
    // While the broker is down bindery says it is not ready.
    bindery_test_support::wait_until(Duration::from_secs(60), "healthz 500", || async {
        (healthz(&b).await == 500).then_some(())
    })
    .await;
    let guard = stop.await.unwrap();
    let (during, _) = accepted(&[&app], ROUTE);
    let down_at = Instant::now();
    let guard = tokio::task::spawn_blocking(move || {
        guard.start_broker();
        guard
    })
    .await
    .unwrap();
    println!(
        "rabbitmq restart: {} of {} accepted before the broker went down; it was back after {:?}",
        during.len(),
        expected.len(),
        down_at.elapsed()
    );
    // ...and ready again once it reconnected by itself.
    bindery_test_support::wait_until(Duration::from_secs(60), "healthz 204 again", || async {
        (healthz(&b).await == 204).then_some(())
    })
    .await;
    // New messages flow too, and the output side publishes again.
    let publisher = Publisher::new(&queue).await;
    let after = bodies("after", 500);
    publisher.publish_all(after.clone()).await;
    let resp = b
        .invoke(
            "rmq",
            serde_json::json!({"operation": "create", "data": "via-output"}),
        )
        .await;
    assert_eq!(resp.status(), 204, "{:?}", resp.text().await);
    let mut all: Vec<String> = expected.iter().chain(&after).cloned().collect();
    all.push("\"via-output\"".to_owned());
    let total = wait_all_accepted(&[&app], ROUTE, &all, Duration::from_secs(120)).await;
    println!(
        "rabbitmq restart: all {} messages accepted, {} duplicates",
        all.len(),
        total - all.len()
    );
    let logs = b.logs();
    assert!(
        !logs.contains("guest:guest"),
        "the host URL (with its password) appeared in the log"
    );
    publisher.delete().await;
    drop(guard);
}
