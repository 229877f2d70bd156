//! `bindings.aws.sns` and `bindings.aws.dynamodb` against moto, through the real `bindery`
//! binary over HTTP and gRPC: a publish fans out to an SQS queue subscribed to the topic, and a
//! put item reads back with GetItem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use common::{SECRET_KEY, component, grpc, http, start};
use serde_json::{Value, json};

/// Publish over HTTP and gRPC; the messages arrive in an SQS queue subscribed to the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_publish_fans_out_to_a_subscribed_queue() {
    common::require_moto().await;
    let sdk = common::sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(common::unique("bindery-topic"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name(common::unique("bindery-fanout"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    let b = start(
        "sns",
        &[(
            "sns.yaml",
            component("sns", "bindings.aws.sns", &[("topicArn", topic.as_str())]),
        )],
        None,
    )
    .await;
    let r = http(
        &b,
        "sns",
        "create",
        json!({"message": "hello from http", "subject": "greeting"}),
        &[],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = grpc(
        &b,
        "sns",
        "create",
        br#"{"message":{"structured":true}}"#,
        &[],
    )
    .await
    .unwrap();
    assert!(r.data.is_empty());

    let mut envelopes: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while envelopes.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} fanned-out messages arrived",
            envelopes.len()
        );
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        envelopes.extend(
            out.messages()
                .iter()
                .map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap()),
        );
    }
    let http_msg = envelopes
        .iter()
        .find(|e| e["Message"] == "hello from http")
        .expect("the HTTP publish arrived");
    assert_eq!(http_msg["Subject"], "greeting");
    assert_eq!(http_msg["TopicArn"], topic.as_str());
    let grpc_msg = envelopes
        .iter()
        .find(|e| e["Message"] == r#"{"structured":true}"#)
        .expect("the gRPC publish arrived, its JSON message as text");
    assert!(grpc_msg.get("Subject").is_none_or(Value::is_null));

    // Dapr's payload shape is required.
    let r = http(&b, "sns", "create", json!("not an object"), &[]).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("must be a JSON object"), "{}", r.text());
    // The topic goes away: SNS's own error, without credentials.
    sns.delete_topic().topic_arn(&topic).send().await.unwrap();
    let r = http(&b, "sns", "create", json!({"message": "x"}), &[]).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("NotFound"), "{}", r.text());
    assert!(!r.text().contains(SECRET_KEY));
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
}

/// Items put over HTTP and gRPC read back with GetItem, every JSON type mapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_items_read_back() {
    common::require_moto().await;
    let db = aws_sdk_dynamodb::Client::new(&common::sdk().await);
    let table = common::unique("bindery-items");
    db.create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let b = start(
        "dynamodb",
        &[(
            "dynamodb.yaml",
            component(
                "items",
                "bindings.aws.dynamodb",
                &[("table", table.as_str())],
            ),
        )],
        None,
    )
    .await;
    let r = http(
        &b,
        "items",
        "create",
        json!({"id": "h1", "n": 42, "f": 2.5, "ok": true, "none": null, "tags": ["a", 1], "nested": {"k": "v"}}),
        &[],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = grpc(
        &b,
        "items",
        "create",
        br#"{"id":"g1","big":12345678901234567890}"#,
        &[],
    )
    .await
    .unwrap();
    assert!(r.data.is_empty());

    let get = |id: &'static str| {
        let db = db.clone();
        let table = table.clone();
        async move {
            db.get_item()
                .table_name(&table)
                .key("id", AttributeValue::S(id.into()))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item()
                .cloned()
                .unwrap()
        }
    };
    let item = get("h1").await;
    assert_eq!(item["n"], AttributeValue::N("42".into()));
    assert_eq!(item["f"], AttributeValue::N("2.5".into()));
    assert_eq!(item["ok"], AttributeValue::Bool(true));
    assert_eq!(item["none"], AttributeValue::Null(true));
    assert_eq!(
        item["tags"],
        AttributeValue::L(vec![
            AttributeValue::S("a".into()),
            AttributeValue::N("1".into())
        ])
    );
    assert_eq!(
        item["nested"],
        AttributeValue::M([("k".to_owned(), AttributeValue::S("v".into()))].into())
    );
    let item = get("g1").await;
    assert_eq!(
        item["big"],
        AttributeValue::N("12345678901234567890".into())
    );

    // An item without its key: DynamoDB's own validation error.
    let r = http(&b, "items", "create", json!({"other": 1}), &[]).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("ValidationException"), "{}", r.text());
    assert!(!r.text().contains(SECRET_KEY));
    let r = http(&b, "items", "create", json!([1, 2]), &[]).await;
    assert!(r.text().contains("must be a JSON object"), "{}", r.text());
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
    let _ = db.delete_table().table_name(&table).send().await;
}
