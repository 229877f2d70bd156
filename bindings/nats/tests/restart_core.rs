//! NATS restarted under a running bindery reading core NATS: the subscription comes back by
//! itself and the binding reports not ready, then ready.
//!
//! Core NATS keeps nothing: messages published while the server is down (or before the
//! subscription is back) are gone by NATS's own design, so this test checks reconnecting and
//! the messages published once the subscription is back. JetStream's no-loss restart is in
//! restart.rs. Only test in this file, so no other test of this crate runs while NATS is down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use bindery_test_support::{Bindery, wait_until};
use common::*;

#[tokio::test]
async fn core_subscription_recovers_after_a_nats_restart() {
    install_crypto();
    require_nats();
    let _guard = NatsGuard;
    let subject = unique("bindery.core.");
    let app = App::start("events").await;
    let b = Bindery::builder("nats-core-restart")
        .file(
            "nats.yaml",
            &component(
                "events",
                &[("subject", &subject), ("reconnectWait", "250ms")],
            ),
        )
        .app_port(app.port)
        .start()
        .await;
    wait_until(Duration::from_secs(30), "the binding to read", || async {
        (b.logs().contains("subscribed to core NATS") && healthz(&b).await == 204).then_some(())
    })
    .await;
    let publisher = client().await;
    for i in 0..100 {
        publisher
            .publish(subject.clone(), format!("a-{i}").into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    eventually(Duration::from_secs(30), "the first 100", || {
        app.accepted_count() >= 100
    })
    .await;

    stop_nats();
    wait_until(
        Duration::from_secs(15),
        "healthz to report not ready",
        || async { (healthz(&b).await == 500).then_some(()) },
    )
    .await;
    start_nats();
    wait_until(
        Duration::from_secs(60),
        "healthz to report ready again",
        || async { (healthz(&b).await == 204).then_some(()) },
    )
    .await;

    // Probe until the resubscription is in place at the server, then publish.
    let publisher = client().await;
    let mut k = 0;
    wait_until(Duration::from_secs(30), "a probe to arrive", || {
        k += 1;
        let publisher = publisher.clone();
        let subject = subject.clone();
        let app = app.clone();
        async move {
            let _ = publisher
                .publish(subject, format!("probe-{k}").into())
                .await;
            let _ = publisher.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            app.accepted()
                .iter()
                .any(|b| b.starts_with("probe-"))
                .then_some(())
        }
    })
    .await;
    for i in 0..100 {
        publisher
            .publish(subject.clone(), format!("b-{i}").into())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the 100 published after the restart",
        || {
            app.accepted()
                .iter()
                .filter(|b| b.starts_with("b-"))
                .count()
                >= 100
        },
    )
    .await;
    let (_, dups) = distinct_and_duplicates(&app.accepted());
    println!(
        "core broker restart: 100 before and 100 after the restart accepted, {dups} duplicates"
    );
    assert_eq!(dups, 0);
    assert!(b.logs().contains("disconnected from NATS"));
}
