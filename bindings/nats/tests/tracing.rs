//! Trace context through NATS JetStream: the app's trace goes out with the message (as a NATS
//! header) and comes back to the app through the input binding, and both of bindery's spans
//! reach a real OTLP receiver. Needs NATS with JetStream (scripts/backends.sh) and the
//! `bindery` binary (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_test_support::otlp::{OtlpReceiver, assert_trace_round_trip};
use bindery_test_support::{Bindery, TestApp};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_goes_through_nats_and_back_to_the_app() {
    require_nats();
    install_crypto();
    let stream = TestStream::create().await;
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("grpc", "1");
    let app = TestApp::start().await;
    app.subscribe("/nats-traced");
    let b = Bindery::builder("nats-trace")
        .app_port(app.port)
        .args(["--config", &config.path().display().to_string()])
        .file(
            "nats.yaml",
            &component(
                "nats-traced",
                &[
                    ("subject", stream.subject.as_str()),
                    ("jetStream", "true"),
                    ("streamName", stream.name.as_str()),
                    ("durableName", &unique("d")),
                ],
            ),
        )
        .start()
        .await;
    wait_healthy(&b).await;
    assert_trace_round_trip(
        &b,
        &app,
        &receiver,
        "nats-traced",
        "nats-traced",
        "/nats-traced",
    )
    .await;
}

async fn wait_healthy(b: &Bindery) {
    bindery_test_support::wait_until(Duration::from_secs(30), "bindery healthy", || async {
        (healthz(b).await == 204).then_some(())
    })
    .await;
}
