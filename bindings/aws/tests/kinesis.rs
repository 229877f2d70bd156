//! `bindings.aws.kinesis` against moto: records put through bindery (HTTP and gRPC) are read
//! back through bindery into a real app, in order per shard, a failed record is redelivered
//! without being skipped, and checkpoints in DynamoDB make a restart resume after the last
//! accepted record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kinesis::types::StreamStatus;
use bindery_test_support::{Answer, TestApp, wait_until};
use common::{SECRET_KEY, component, grpc, http, start};
use http::Method;
use serde_json::json;

const ROUTE: &str = "/records";

async fn stream(shards: i32) -> (aws_sdk_kinesis::Client, String) {
    common::require_moto().await;
    let client = aws_sdk_kinesis::Client::new(&common::sdk().await);
    let name = common::unique("bindery-stream");
    client
        .create_stream()
        .stream_name(&name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_until(Duration::from_secs(30), "an active stream", || {
        let client = client.clone();
        let name = name.clone();
        async move {
            let out = client
                .describe_stream_summary()
                .stream_name(&name)
                .send()
                .await
                .ok()?;
            (out.stream_description_summary()?.stream_status() == &StreamStatus::Active)
                .then_some(())
        }
    })
    .await;
    (client, name)
}

fn kinesis_component(name: &str, stream: &str, consumer: &str) -> String {
    component(
        name,
        "bindings.aws.kinesis",
        &[
            ("streamName", stream),
            ("consumerName", consumer),
            ("initialPosition", "trim_horizon"),
            ("pollInterval", "200ms"),
            ("backOffInitialInterval", "200ms"),
            ("backOffMaxInterval", "1s"),
            ("route", ROUTE),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_read_in_order_with_retry_and_resume() {
    let (_client, stream) = stream(2).await;
    let consumer = common::unique("bindery-ckpt");
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, ROUTE, vec![Answer::status(200)]);
    // The first delivery fails: the record comes again, and nothing after it overtakes it.
    app.answer(
        Method::POST,
        ROUTE,
        vec![Answer::status(500), Answer::status(200)],
    );
    let file = kinesis_component("kin", &stream, &consumer);
    let b = start("kinesis", &[("kinesis.yaml", file.clone())], Some(app.port)).await;
    common::wait_healthy(&b).await;

    // One partition key: one shard, so the order is the order of the puts.
    for i in 0..4 {
        let r = http(
            &b,
            "kin",
            "create",
            json!(format!("rec-{i}")),
            &[("partitionKey", "one-key")],
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let r = grpc(
        &b,
        "kin",
        "create",
        b"rec-4",
        &[("partitionKey", "one-key")],
    )
    .await
    .unwrap();
    assert!(r.data.is_empty());
    // Without a partition key: a random one.
    let r = grpc(&b, "kin", "create", b"no-key", &[]).await.unwrap();
    assert!(r.data.is_empty());

    wait_until(Duration::from_secs(60), "six accepted records", || {
        let n = app.accepted(ROUTE).len();
        async move { (n >= 6).then_some(()) }
    })
    .await;
    let got = app.received_at(&Method::POST, ROUTE);
    assert_eq!(got[0].status, 500);
    let ordered: Vec<String> = got
        .iter()
        .filter(|r| r.status == 200 && r.header("partitionKey").as_deref() == Some("one-key"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    // HTTP data arrives as JSON text (quoted); gRPC data verbatim.
    assert_eq!(
        ordered,
        ["\"rec-0\"", "\"rec-1\"", "\"rec-2\"", "\"rec-3\"", "rec-4"]
    );
    // The failed record is the next one its shard delivers: records of the other shard (the
    // one without a key may land there) can come in between.
    let key = got[0].header("partitionKey");
    let again = got[1..]
        .iter()
        .find(|r| r.header("partitionKey") == key)
        .expect("the failed record's shard delivered again");
    assert_eq!(
        got[0].body, again.body,
        "the failed record came first again"
    );
    let first = got.iter().find(|r| r.status == 200).unwrap();
    assert!(first.header("shardId").unwrap().starts_with("shardId-"));
    assert!(!first.header("sequenceNumber").unwrap().is_empty());
    assert!(first.header("arrivalTimestamp").unwrap().ends_with('Z'));
    let no_key = got
        .iter()
        .find(|r| &r.body[..] == b"no-key")
        .expect("the record without a key arrived");
    assert!(uuid::Uuid::parse_str(&no_key.header("partitionKey").unwrap()).is_ok());

    // The checkpoints are in the DynamoDB table named consumerName, KCL-style.
    let db = aws_sdk_dynamodb::Client::new(&common::sdk().await);
    let shard = first.header("shardId").unwrap();
    let last_seq = got
        .iter()
        .rfind(|r| r.status == 200 && r.header("shardId").as_deref() == Some(shard.as_str()))
        .and_then(|r| r.header("sequenceNumber"))
        .unwrap();
    wait_until(Duration::from_secs(10), "the checkpoint", || {
        let db = db.clone();
        let consumer = consumer.clone();
        let shard = shard.clone();
        let last_seq = last_seq.clone();
        async move {
            let item = db
                .get_item()
                .table_name(&consumer)
                .key("ShardID", AttributeValue::S(shard))
                .consistent_read(true)
                .send()
                .await
                .ok()?;
            let cp = item.item()?.get("Checkpoint")?.as_s().ok()?.clone();
            (cp == last_seq).then_some(())
        }
    })
    .await;
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
    drop(b);

    // A restart resumes after the checkpoints: only the new record is delivered.
    let before = app.received_at(&Method::POST, ROUTE).len();
    let b = start("kinesis", &[("kinesis.yaml", file)], Some(app.port)).await;
    common::wait_healthy(&b).await;
    let r = http(
        &b,
        "kin",
        "create",
        json!("after-restart"),
        &[("partitionKey", "one-key")],
    )
    .await;
    assert_eq!(r.status, 204);
    app.wait_for(Method::POST, ROUTE, before + 1, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<String> = app.received_at(&Method::POST, ROUTE)[before..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(after, ["\"after-restart\""]);
    let _ = db.delete_table().table_name(&consumer).send().await;
}

/// `mode: extended` is refused at start with a clear message naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_mode_is_refused() {
    common::require_moto().await;
    common::crypto();
    let mut b = bindery_test_support::Bindery::builder("kinesis-extended")
        .file(
            "kinesis.yaml",
            &component(
                "kin",
                "bindings.aws.kinesis",
                &[("streamName", "s"), ("mode", "extended")],
            ),
        )
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success());
    let logs = b.logs();
    assert!(logs.contains("not supported by bindery yet"), "{logs}");
    assert!(logs.contains("mode"), "{logs}");
    assert!(!logs.contains(SECRET_KEY), "the secret key was logged");
}
