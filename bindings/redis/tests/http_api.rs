//! `bindings.redis` through the real `bindery` binary and its Dapr HTTP API, as an app uses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bindery_test_support::Bindery;
use common::*;
use serde_json::json;

fn component(name: &str, extra: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: \"{SHARED}\"\n"
    );
    for (k, v) in extra {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

#[tokio::test]
async fn operations_over_http() {
    install_crypto();
    require_shared_redis();
    let b = Bindery::builder("redis-http")
        .file("redis.yaml", &component("cache", &[]))
        .start()
        .await;
    let k = key();

    let r = b
        .invoke(
            "cache",
            json!({"operation": "create", "data": "hello", "metadata": {"key": k}}),
        )
        .await;
    assert_eq!(r.status(), 204);

    // The HTTP API re-encodes data as JSON text; redis stores it as received, quotes included.
    let r = b
        .invoke("cache", json!({"operation": "get", "metadata": {"key": k}}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\"hello\"");

    let r = b
        .invoke(
            "cache",
            json!({"operation": "create", "data": {"n": 1}, "metadata": {"key": k, "ttlInSeconds": "60"}}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = b
        .invoke(
            "cache",
            json!({"operation": "get", "metadata": {"key": k, "delete": "true"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), br#"{"n":1}"#);

    // A miss is 200 with an empty body, as in Dapr.
    let r = b
        .invoke("cache", json!({"operation": "get", "metadata": {"key": k}}))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());

    for _ in 0..2 {
        let r = b
            .invoke(
                "cache",
                json!({"operation": "increment", "metadata": {"key": k}}),
            )
            .await;
        assert_eq!(r.status(), 204);
    }
    let r = b
        .invoke("cache", json!({"operation": "get", "metadata": {"key": k}}))
        .await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"2");

    let r = b
        .invoke(
            "cache",
            json!({"operation": "delete", "metadata": {"key": k}}),
        )
        .await;
    assert_eq!(r.status(), 204);

    let r = b
        .invoke("cache", json!({"operation": "create", "data": "x"}))
        .await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("redis binding: missing key in request metadata"),
        "{body}"
    );

    let r = b
        .invoke(
            "cache",
            json!({"operation": "list", "metadata": {"key": k}}),
        )
        .await;
    assert_eq!(r.status(), 500);

    // The password never shows in /v1.0/metadata.
    let md: serde_json::Value = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(md.to_string().contains("cache"), "{md}");
}

#[tokio::test]
async fn invalid_metadata_stops_bindery_with_every_problem() {
    install_crypto();
    let mut b = Bindery::builder("redis-invalid")
        .file(
            "redis.yaml",
            &component(
                "broken",
                &[("redisType", "sharded"), ("redisMaxRetries", "many")],
            ),
        )
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(std::time::Duration::from_secs(30)).await;
    assert!(!status.success());
    let logs = b.logs();
    assert!(logs.contains("redisType"), "{logs}");
    assert!(logs.contains("redisMaxRetries"), "{logs}");
}
