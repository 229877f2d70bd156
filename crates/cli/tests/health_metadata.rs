//! Health, metadata and shutdown endpoints against the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{DEADLINE, TestApp, bindery, cron, dapr_error, get_status, json_of, localstorage};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ready_and_checks_the_app_id() {
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("healthy")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    assert_eq!(get_status(&b, "/v1.0/healthz/outbound").await, 204);
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
    assert_eq!(get_status(&b, "/v1.0/healthz?appid=healthy").await, 204);
    let resp = b
        .client()
        .get(b.url("/v1.0/healthz?appid=other"))
        .send()
        .await
        .unwrap();
    dapr_error(resp, 500, "ERR_HEALTH_APPID_NOT_MATCH").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_components_app_connection_and_extended_attributes() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("meta")
        .file("tick.yaml", &cron("tick", &[]))
        .file("store.yaml", &localstorage("store", dir.path()))
        .app_port(app.port)
        .args(["--app-max-concurrency", "3"])
        .start()
        .await;
    let version = env!("CARGO_PKG_VERSION");

    let (status, md) = json_of(
        b.client()
            .get(b.url("/v1.0/metadata"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(md["id"], "meta");
    assert_eq!(md["runtimeVersion"], version);
    assert_eq!(md["extended"]["daprRuntimeVersion"], version);
    let components = md["components"].as_array().unwrap();
    assert_eq!(components.len(), 2, "{md}");
    let find = |name: &str| {
        components
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {md}"))
    };
    let tick = find("tick");
    assert_eq!(tick["type"], "bindings.cron");
    assert_eq!(tick["version"], "v1");
    assert_eq!(tick["capabilities"], json!(["INPUT_BINDING"]));
    let store = find("store");
    assert_eq!(store["type"], "bindings.localstorage");
    assert_eq!(store["version"], "v1");
    assert_eq!(store["capabilities"], json!(["OUTPUT_BINDING"]));
    let conn = &md["appConnectionProperties"];
    assert_eq!(conn["port"], app.port);
    assert_eq!(conn["protocol"], "http");
    assert_eq!(conn["channelAddress"], "127.0.0.1");
    assert_eq!(conn["maxConcurrency"], 3);

    // PUT /v1.0/metadata/{key}: 204, then listed under extended
    let resp = b
        .client()
        .put(b.url("/v1.0/metadata/owner"))
        .body("team blue")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (_, md) = json_of(
        b.client()
            .get(b.url("/v1.0/metadata"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(md["extended"]["owner"], "team blue");
    assert_eq!(md["extended"]["daprRuntimeVersion"], version);

    // Once the app took an event, the cron binding reports itself subscribed.
    app.wait_for(reqwest::Method::POST, "/tick", 1, DEADLINE)
        .await;
    let (_, md) = json_of(
        b.client()
            .get(b.url("/v1.0/metadata"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let tick = md["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tick")
        .unwrap()
        .clone();
    assert_eq!(tick["status"]["subscription"], "subscribed", "{tick}");
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_endpoint_stops_the_process_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = bindery("stopper")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    let resp = b
        .client()
        .post(b.url("/v1.0/shutdown"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // The default grace period is 5 s; nothing is in flight, so well within it.
    let status = b.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}; log:\n{}", b.logs());
    assert!(common::logs(&b).contains("bindery stopped"));
}
