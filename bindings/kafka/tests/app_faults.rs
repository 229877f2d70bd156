//! Faults on the app's side of a Kafka input, with a real app process: the app is killed
//! mid-stream and comes back. Kafka commits offsets, not single messages, so a message the app
//! never accepted must hold back the commit of its partition. The test reports messages sent,
//! delivered, duplicated and lost; lost must be 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use bindery_test_support::{AppProcess, Faults};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_killed_mid_stream_and_restarted_loses_nothing() {
    const N: usize = 3_000;
    require_broker();
    let topic = unique("appcrash");
    let group = unique("g");
    create_topic(&topic).await;
    let bodies = publish(&topic, "c", N).await;

    let mut app = AppProcess::start(Faults::default());
    let _b = bindery("kafka-app-crash")
        .app_port(app.port)
        .file(
            "kafka.yaml",
            &input_component("faulty", &topic, &group, &[]),
        )
        .start()
        .await;
    let (at_kill, during) = app
        .crash_after(N / 3, Duration::from_secs(90), Duration::from_secs(2))
        .await;
    let (delivered, duplicates, lost) = app.settle(&bodies, Duration::from_secs(180)).await;
    println!(
        "kafka app crash: sent {N}, app killed after {at_kill} and restarted 2 s later; delivered {delivered}, duplicated {duplicates}, lost {lost}"
    );
    assert_eq!(during, at_kill, "a dead app accepted messages");
    assert_eq!(lost, 0);
    assert_eq!(delivered, N);
}
