//! `DAPR_API_TOKEN`: every API route but the health endpoints needs `dapr-api-token`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{bindery, get_status, localstorage};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_guards_every_route_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = bindery("guarded")
        .file("store.yaml", &localstorage("store", dir.path()))
        .env("DAPR_API_TOKEN", "secret")
        .start()
        .await;
    let c = b.client().clone();
    let create = json!({"operation": "create", "data": "x", "metadata": {"fileName": "f"}});

    for token in [
        None,
        Some(""),
        Some("wrong"),
        Some("SECRET"),
        Some("secret2"),
    ] {
        let with = |r: reqwest::RequestBuilder| match token {
            Some(t) => r.header("dapr-api-token", t),
            None => r,
        };
        let calls = [
            with(c.post(b.url("/v1.0/bindings/store")).json(&create)),
            with(c.put(b.url("/v1.0/bindings/store")).json(&create)),
            with(c.get(b.url("/v1.0/metadata"))),
            with(c.put(b.url("/v1.0/metadata/k")).body("v")),
            with(c.post(b.url("/v1.0/shutdown"))),
        ];
        for req in calls {
            let req = req.build().unwrap();
            let what = format!("{} {} with {token:?}", req.method(), req.url().path());
            let resp = c.execute(req).await.unwrap();
            assert_eq!(resp.status(), 401, "{what}");
        }
    }
    assert!(
        !dir.path().join("f").exists(),
        "a refused call wrote a file"
    );

    // Health needs no token.
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
    assert_eq!(get_status(&b, "/v1.0/healthz/outbound").await, 204);

    // With the token everything works.
    let resp = c
        .post(b.url("/v1.0/bindings/store"))
        .header("dapr-api-token", "secret")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), "x");
    let resp = c
        .get(b.url("/v1.0/metadata"))
        .header("dapr-api-token", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let md: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(md["id"], "guarded");
    let resp = c
        .post(b.url("/v1.0/shutdown"))
        .header("dapr-api-token", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let status = b.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
}
