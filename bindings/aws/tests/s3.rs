//! `bindings.aws.s3` against moto: Dapr's conformance steps, then every operation through the
//! real `bindery` binary over HTTP and gRPC. Build the binary first (`cargo build -p bindery`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bindery_binding_aws::S3Factory;
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};
use common::{SECRET_KEY, component, grpc, http, start};
use serde_json::{Value, json};

async fn bucket() -> (aws_sdk_s3::Client, String) {
    common::require_moto().await;
    let sdk = common::sdk().await;
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let name = common::unique("bindery");
    client.create_bucket().bucket(&name).send().await.unwrap();
    (client, name)
}

fn s3_component(name: &str, bucket: &str, extra: &[(&str, &str)]) -> String {
    let mut md = vec![("bucket", bucket), ("forcePathStyle", "true")];
    md.extend_from_slice(extra);
    component(name, "bindings.aws.s3", &md)
}

#[tokio::test]
async fn conformance_create_get_list_delete() {
    let (_client, bucket) = bucket().await;
    let mut md: Vec<(&str, String)> = common::auth();
    md.push(("bucket", bucket.clone()));
    md.push(("forcePathStyle", "true".into()));
    let mut c = Conformance::new("s3-conformance", Metadata::from_pairs(md));
    c.operations = vec!["create", "get", "list", "delete"];
    // Dapr's tests.yml gives S3 the list payload as outputData: create stores it, get returns
    // it byte for byte, list reads it.
    c.output_data = bytes::Bytes::from_static(br#"{"maxResults": 10}"#);
    c.output_metadata
        .insert("key".into(), uuid::Uuid::new_v4().to_string());
    conformance::run(&S3Factory, c).await;

    // Dapr's default outputData too (a JSON array): create and get only, as list needs a
    // list payload.
    let mut md: Vec<(&str, String)> = common::auth();
    md.push(("bucket", bucket));
    md.push(("forcePathStyle", "true".into()));
    let mut c = Conformance::new("s3-conformance-default", Metadata::from_pairs(md));
    c.operations = vec!["create", "get"];
    c.output_data = bytes::Bytes::from_static(DEFAULT_OUTPUT_DATA.as_bytes());
    c.output_metadata
        .insert("key".into(), uuid::Uuid::new_v4().to_string());
    conformance::run(&S3Factory, c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_over_http() {
    let (client, bucket) = bucket().await;
    let b = start(
        "s3-http",
        &[("s3.yaml", s3_component("s3", &bucket, &[]))],
        None,
    )
    .await;

    // create: a JSON string is stored without its quotes; key, location, versionID.
    let r = http(
        &b,
        "s3",
        "create",
        json!("hello world"),
        &[
            ("key", "a/b c.txt"),
            ("Content-Type", "text/plain"),
            ("tags", "team=core,env=test"),
            ("storageClass", "STANDARD_IA"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.metadata["key"], "a/b c.txt");
    let v = r.json();
    assert_eq!(
        v["location"],
        format!("http://127.0.0.1:15000/{bucket}/a/b%20c.txt")
    );
    assert!(v.get("versionID").is_some(), "{v}");
    assert!(v.get("presignURL").is_none(), "{v}");
    let obj = client
        .get_object()
        .bucket(&bucket)
        .key("a/b c.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(obj.content_type(), Some("text/plain"));
    assert_eq!(obj.storage_class().map(|s| s.as_str()), Some("STANDARD_IA"));
    assert_eq!(
        &obj.body.collect().await.unwrap().into_bytes()[..],
        b"hello world"
    );
    let tags = client
        .get_object_tagging()
        .bucket(&bucket)
        .key("a/b c.txt")
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("env".into(), "test".into()),
            ("team".into(), "core".into())
        ]
    );

    // create without a key: a UUID; a JSON object is stored as its JSON text.
    let r = http(&b, "s3", "create", json!({"n": 1}), &[]).await;
    assert_eq!(r.status, 200);
    let generated = r.metadata["key"].clone();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let r = http(&b, "s3", "get", Value::Null, &[("key", &generated)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, br#"{"n":1}"#);

    // create with decodeBase64 and presignTTL; get with encodeBase64.
    let r = http(
        &b,
        "s3",
        "create",
        json!(B64.encode([0u8, 159, 146, 150])),
        &[
            ("key", "bin"),
            ("decodeBase64", "true"),
            ("presignTTL", "15m"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["presignURL"].as_str().unwrap().to_owned();
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    let fetched = reqwest::get(&url).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(&fetched.bytes().await.unwrap()[..], [0u8, 159, 146, 150]);
    let r = http(&b, "s3", "get", Value::Null, &[("key", "bin")]).await;
    assert_eq!(r.body, [0u8, 159, 146, 150]);
    let r = http(
        &b,
        "s3",
        "get",
        Value::Null,
        &[("key", "bin"), ("encodeBase64", "true")],
    )
    .await;
    assert_eq!(r.text(), B64.encode([0u8, 159, 146, 150]));

    // presign
    let r = http(
        &b,
        "s3",
        "presign",
        Value::Null,
        &[("key", "bin"), ("presignTTL", "60s")],
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert!(
        v["presignURL"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature")
    );
    let r = http(&b, "s3", "presign", Value::Null, &[("key", "bin")]).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("required metadata 'presignTTL' missing"),
        "{}",
        r.text()
    );

    // list: Dapr's PascalCase ListObjectsOutput.
    let r = http(
        &b,
        "s3",
        "list",
        json!({"prefix": "a/", "maxResults": 5}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["Name"], bucket.as_str());
    assert_eq!(v["Prefix"], "a/");
    assert_eq!(v["MaxKeys"], 5);
    assert_eq!(v["IsTruncated"], false);
    assert_eq!(v["Contents"].as_array().unwrap().len(), 1);
    let o = &v["Contents"][0];
    assert_eq!(o["Key"], "a/b c.txt");
    assert_eq!(o["Size"], 11);
    assert!(o["ETag"].as_str().unwrap().starts_with('"'));
    assert!(o["LastModified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(o["StorageClass"], "STANDARD_IA");
    let r = http(
        &b,
        "s3",
        "list",
        json!({"delimiter": "/", "maxResults": 1}),
        &[],
    )
    .await;
    let v = r.json();
    assert_eq!(v["MaxKeys"], 1);
    assert!(
        v["IsTruncated"].as_bool().unwrap() || v["CommonPrefixes"].is_array(),
        "{v}"
    );
    let r = http(&b, "s3", "list", Value::Null, &[]).await;
    assert_eq!(r.json()["MaxKeys"], 1000);

    // bulkCreate, bulkGet, bulkDelete
    let r = http(&b, "s3", "bulkCreate", json!({"items": [{"key": "bulk/1", "data": "one"}, {"key": "bulk/2", "data": "two", "contentType": "text/x-two"}], "concurrency": 2}), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v[0]["key"], "bulk/1");
    assert_eq!(
        v[1]["location"],
        format!("http://127.0.0.1:15000/{bucket}/bulk/2")
    );
    let r = http(
        &b,
        "s3",
        "bulkGet",
        json!({"items": [{"key": "bulk/1"}, {"key": "bulk/2"}, {"key": "bulk/missing"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v[0]["data"], B64.encode("one"));
    assert_eq!(v[1]["data"], B64.encode("two"));
    assert_eq!(v[2]["key"], "bulk/missing");
    assert_eq!(v[2]["error"], "object not found");
    let r = http(&b, "s3", "bulkDelete", json!({"prefix": "bulk/"}), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut keys: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["bulk/1", "bulk/2"]);
    let r = http(&b, "s3", "get", Value::Null, &[("key", "bulk/1")]).await;
    assert_eq!(r.status, 500);

    // filePath is refused, everywhere.
    let r = http(
        &b,
        "s3",
        "create",
        json!("x"),
        &[("filePath", "/etc/passwd")],
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("filePath is not supported"),
        "{}",
        r.text()
    );
    let r = http(
        &b,
        "s3",
        "bulkGet",
        json!({"items": [{"key": "bin", "filePath": "/tmp/x"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status, 500);

    // delete, then get: Dapr's errors.
    let r = http(&b, "s3", "delete", Value::Null, &[("key", "bin")]).await;
    assert_eq!(r.status, 204);
    let r = http(&b, "s3", "get", Value::Null, &[("key", "bin")]).await;
    assert_eq!(r.status, 500);
    let v = r.json();
    assert_eq!(v["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    assert_eq!(
        v["message"],
        "error invoking output binding s3: object not found"
    );
    let r = http(&b, "s3", "get", Value::Null, &[]).await;
    assert_eq!(
        r.json()["message"],
        "error invoking output binding s3: s3 binding error: required metadata 'key' missing"
    );
    let r = http(&b, "s3", "delete", Value::Null, &[]).await;
    assert!(r.text().contains("required metadata 'key' missing"));
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_over_grpc() {
    let (_client, bucket) = bucket().await;
    let b = start(
        "s3-grpc",
        &[("s3.yaml", s3_component("s3", &bucket, &[]))],
        None,
    )
    .await;
    // gRPC data is verbatim: quotes and binary bytes stay.
    let r = grpc(&b, "s3", "create", b"\"quoted\"\x00\xff", &[("key", "g1")])
        .await
        .unwrap();
    assert_eq!(r.metadata["key"], "g1");
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert_eq!(v["location"], format!("http://127.0.0.1:15000/{bucket}/g1"));
    let r = grpc(&b, "s3", "get", b"", &[("key", "g1")]).await.unwrap();
    assert_eq!(r.data, b"\"quoted\"\x00\xff");
    let r = grpc(&b, "s3", "list", br#"{"maxResults":10}"#, &[])
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert_eq!(v["Contents"][0]["Key"], "g1");
    let r = grpc(
        &b,
        "s3",
        "presign",
        b"",
        &[("key", "g1"), ("presignTTL", "1m")],
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert!(
        v["presignURL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:15000/")
    );
    let r = grpc(
        &b,
        "s3",
        "bulkCreate",
        br#"{"items":[{"key":"g2","data":"two"}]}"#,
        &[],
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert_eq!(v[0]["key"], "g2");
    let r = grpc(&b, "s3", "bulkGet", br#"{"items":[{"key":"g2"}]}"#, &[])
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert_eq!(v[0]["data"], B64.encode("two"));
    let r = grpc(&b, "s3", "bulkDelete", br#"{"keys":["g1","g2"]}"#, &[])
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.data).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let r = grpc(&b, "s3", "delete", b"", &[("key", "g1")])
        .await
        .unwrap();
    assert!(r.data.is_empty());
    let e = grpc(&b, "s3", "get", b"", &[("key", "g1")])
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal);
    assert_eq!(
        e.message(),
        "error invoking output binding s3: object not found"
    );
    assert!(!e.message().contains(SECRET_KEY));
}

/// A backend error reaches the caller with S3's own code, and credentials never appear in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_errors_carry_the_code_and_never_the_secret() {
    let (client, bucket) = bucket().await;
    let b = start(
        "s3-errors",
        &[("s3.yaml", s3_component("s3", &bucket, &[]))],
        None,
    )
    .await;
    common::wait_healthy(&b).await;
    // The bucket goes away under the binding: S3 answers NoSuchBucket.
    client.delete_bucket().bucket(&bucket).send().await.unwrap();
    let r = http(&b, "s3", "create", json!("x"), &[("key", "k")]).await;
    assert_eq!(r.status, 500);
    let text = r.text();
    assert!(text.contains("NoSuchBucket"), "{text}");
    assert!(!text.contains(SECRET_KEY), "{text}");
    let e = grpc(&b, "s3", "list", b"{}", &[]).await.unwrap_err();
    assert!(e.message().contains("NoSuchBucket"), "{}", e.message());
    assert!(!e.message().contains(SECRET_KEY));
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
}

/// An endpoint nobody listens on: bindery starts, reports the binding not ready, and says why
/// without the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_not_ready_and_retried() {
    common::require_moto().await;
    let port = bindery_test_support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let b = start(
        "s3-down",
        &[(
            "s3.yaml",
            s3_component("s3", "nobucket", &[("endpoint", endpoint.as_str())]),
        )],
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = b.client().get(b.url("/v1.0/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let text = r.text().await.unwrap();
    assert!(text.contains("s3"), "{text}");
    assert!(!text.contains(SECRET_KEY), "{text}");
    let r = http(&b, "s3", "get", Value::Null, &[("key", "k")]).await;
    assert_eq!(r.status, 500);
    assert!(!r.text().contains(SECRET_KEY));
    assert!(!b.logs().contains(SECRET_KEY), "the secret key was logged");
}
