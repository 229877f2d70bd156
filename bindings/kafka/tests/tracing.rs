//! Trace context through Kafka: the app's trace goes out with the message (as a Kafka header)
//! and comes back to the app through the input binding, and both of bindery's spans reach a
//! real OTLP receiver. Needs the broker (scripts/backends.sh) and the `bindery` binary
//! (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_test_support::TestApp;
use bindery_test_support::otlp::{OtlpReceiver, assert_trace_round_trip};

use common::{
    BROKER, bindery, component, create_topic, input_component, require_broker, unique, wait_health,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_goes_through_kafka_and_back_to_the_app() {
    require_broker();
    let topic = unique("trace");
    create_topic(&topic).await;
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("grpc", "1");
    let app = TestApp::start().await;
    app.subscribe("/kafka-traced-in");
    let b = bindery("kafka-trace")
        .app_port(app.port)
        .args(["--config", &config.path().display().to_string()])
        .file(
            "in.yaml",
            &input_component("kafka-traced-in", &topic, &unique("g"), &[]),
        )
        .file(
            "out.yaml",
            &component(
                "kafka-traced-out",
                &[
                    ("brokers", BROKER),
                    ("authType", "none"),
                    ("publishTopic", &topic),
                ],
            ),
        )
        .start()
        .await;
    wait_health(&b, 204, Duration::from_secs(60), "bindery ready").await;
    assert_trace_round_trip(
        &b,
        &app,
        &receiver,
        "kafka-traced-out",
        "kafka-traced-in",
        "/kafka-traced-in",
    )
    .await;
}
