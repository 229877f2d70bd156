//! Faults on the app's side of a RabbitMQ input, with a real app process: the app is killed
//! mid-stream and comes back, and the app hangs past the inbound timeout on some deliveries.
//! Each test reports messages sent, delivered, duplicated and lost; lost must be 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use bindery_test_support::{AppProcess, Bindery, Faults, wait_until};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_killed_mid_stream_and_restarted_loses_nothing() {
    const N: usize = 3_000;
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let bodies = bodies("crash", N);
    publisher.publish_all(bodies.clone()).await;

    let mut app = AppProcess::start(Faults::default());
    let _b = start_bindery("rabbit-app-crash", &component("faulty", &q, &[]), app.port).await;
    // Deliveries fail while the app is gone; nothing is acknowledged for them.
    let (at_kill, during) = app
        .crash_after(N / 3, Duration::from_secs(60), Duration::from_secs(2))
        .await;
    let (delivered, duplicates, lost) = app.settle(&bodies, Duration::from_secs(120)).await;
    println!(
        "rabbitmq app crash: sent {N}, app killed after {at_kill} and restarted 2 s later; delivered {delivered}, duplicated {duplicates}, lost {lost}"
    );
    assert_eq!(during, at_kill, "a dead app accepted messages");
    assert_eq!(lost, 0);
    assert_eq!(delivered, N);
    wait_until(Duration::from_secs(20), "an empty queue", || async {
        (publisher.ready().await == 0).then_some(())
    })
    .await;
    publisher.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_timing_out_gets_the_message_again_and_loses_nothing() {
    const N: usize = 1_000;
    let q = queue();
    let publisher = Publisher::new(&q).await;
    let bodies = bodies("slow", N);
    publisher.publish_all(bodies.clone()).await;

    // One delivery in 20 hangs for 1.5 s; bindery gives up on it after 300 ms.
    let app = AppProcess::start(Faults {
        hang_every: 20,
        hang_for: Duration::from_millis(1500),
    });
    let resiliency = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: app-timeout\nspec:\n  policies:\n    timeouts:\n      quick: 300ms\n  targets:\n    components:\n      faulty:\n        inbound:\n          timeout: quick\n";
    crypto();
    let b = Bindery::builder("rabbit-app-timeout")
        .file("rabbitmq.yaml", &component("faulty", &q, &[]))
        .file("resiliency.yaml", resiliency)
        .app_port(app.port)
        .start()
        .await;
    let (delivered, at_settle, lost) = app.settle(&bodies, Duration::from_secs(120)).await;
    // A hung delivery still finishes at the app after bindery gave up on it: that copy and the
    // redelivered one are both recorded, which is at-least-once doing its job.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duplicates: u32 = app.accepted().values().map(|n| n - 1).sum();
    let timeouts = b.logs().matches("timed out").count();
    println!(
        "rabbitmq app timeouts: sent {N}; delivered {delivered}, duplicated {duplicates} (at settle {at_settle}), lost {lost}; {timeouts} timeouts logged"
    );
    assert_eq!(lost, 0);
    assert_eq!(delivered, N);
    assert!(
        duplicates > 0,
        "no delivery hung past the timeout, so the test proved nothing"
    );
    wait_until(Duration::from_secs(20), "an empty queue", || async {
        (publisher.ready().await == 0).then_some(())
    })
    .await;
    publisher.delete().await;
}
