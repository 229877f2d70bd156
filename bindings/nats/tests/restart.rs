//! NATS restarted under a running bindery reading a JetStream durable consumer: the binding
//! reports itself not ready while NATS is down, recovers by itself, and nothing is lost.
//!
//! NATS runs with `-js -sd /var/lib/nats-server`, so the stream and the consumer survive the
//! restart. (Core NATS keeps nothing across a restart: what is published while it is down or
//! in flight is gone, so this test is for JetStream.) It is the only test in this file, so no
//! other test of this crate runs while NATS is down (cargo runs test files one at a time), and
//! a guard starts NATS again should the test fail midway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use bindery_test_support::{Bindery, wait_until};
use common::*;
use serde_json::json;

/// Publish `bodies`, retrying each until JetStream has it (it may still be recovering).
async fn publish_retrying(stream: &TestStream, bodies: impl IntoIterator<Item = String>) {
    for body in bodies {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let sent = match stream
                .js
                .publish(stream.subject.clone(), body.clone().into())
                .await
            {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if sent {
                break;
            }
            assert!(
                Instant::now() < end,
                "JetStream did not take {body} within 60s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn recovers_after_a_nats_restart_without_losing_messages() {
    install_crypto();
    require_nats();
    let _guard = NatsGuard;
    let stream = TestStream::create().await;
    let app = App::start("orders").await;
    app.delay(Duration::from_millis(2));
    let durable = unique("d");
    let b = Bindery::builder("nats-restart")
        .file(
            "nats.yaml",
            &component(
                "orders",
                &[
                    ("subject", &stream.subject),
                    ("jetStream", "true"),
                    ("streamName", &stream.name),
                    ("durableName", &durable),
                    ("concurrency", "2"),
                    ("ackWait", "5s"),
                    ("reconnectWait", "250ms"),
                ],
            ),
        )
        .app_port(app.port)
        .start()
        .await;
    wait_until(Duration::from_secs(30), "the binding to read", || async {
        (b.logs().contains("pulling from JetStream") && healthz(&b).await == 204).then_some(())
    })
    .await;

    const BEFORE: usize = 2000;
    const AFTER: usize = 1000;
    stream
        .publish_all((0..BEFORE).map(|i| format!("a-{i}")))
        .await;
    eventually(Duration::from_secs(60), "a part of the messages", || {
        app.accepted_count() >= 300
    })
    .await;

    stop_nats();
    let at_stop = app.accepted_count();
    wait_until(
        Duration::from_secs(15),
        "healthz to report not ready",
        || async { (healthz(&b).await == 500).then_some(()) },
    )
    .await;
    // The output side fails fast and says why.
    let r = b
        .invoke("orders", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not connected to NATS"),
        "{body}"
    );

    start_nats();
    wait_until(
        Duration::from_secs(60),
        "healthz to report ready again",
        || async { (healthz(&b).await == 204).then_some(()) },
    )
    .await;
    publish_retrying(&stream, (0..AFTER).map(|i| format!("b-{i}"))).await;
    eventually(Duration::from_secs(120), "every message", || {
        distinct_and_duplicates(&app.accepted()).0 >= BEFORE + AFTER
    })
    .await;
    let accepted = app.accepted();
    let (distinct, dups) = distinct_and_duplicates(&accepted);
    println!(
        "jetstream broker restart: {at_stop} accepted when NATS stopped; {distinct} distinct in the end, {dups} duplicates"
    );
    assert_eq!(distinct, BEFORE + AFTER);
    let logs = b.logs();
    assert!(logs.contains("disconnected from NATS"), "{logs}");
}
