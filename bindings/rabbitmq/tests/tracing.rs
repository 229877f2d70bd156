//! Trace context through RabbitMQ: the app's trace goes out with the message (as an AMQP
//! header) and comes back to the app through the input binding, and both of bindery's spans
//! reach a real OTLP receiver (over OTLP/HTTP here). Needs RabbitMQ (scripts/backends.sh) and
//! the `bindery` binary (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_test_support::otlp::{OtlpReceiver, assert_trace_round_trip};
use bindery_test_support::{Bindery, TestApp, wait_until};

use common::{component, crypto, queue, require_rabbitmq};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_goes_through_rabbitmq_and_back_to_the_app() {
    require_rabbitmq().await;
    crypto();
    let q = queue();
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("http", "1");
    let app = TestApp::start().await;
    app.subscribe("/rmq-traced");
    let b = Bindery::builder("rmq-trace")
        .app_port(app.port)
        .args(["--config", &config.path().display().to_string()])
        .file("rabbitmq.yaml", &component("rmq-traced", &q, &[]))
        .start()
        .await;
    wait_until(Duration::from_secs(30), "bindery healthy", || async {
        let r = b.client().get(b.url("/v1.0/healthz")).send().await.ok()?;
        (r.status().as_u16() == 204).then_some(())
    })
    .await;
    assert_trace_round_trip(
        &b,
        &app,
        &receiver,
        "rmq-traced",
        "rmq-traced",
        "/rmq-traced",
    )
    .await;
    assert!(receiver.spans().iter().all(|s| s.transport == "http"));
}
