//! `/metrics` after known traffic reports exactly that traffic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bindery_test_support::{Answer, TestApp, wait_until};
use common::{DEADLINE, bindery, cron, localstorage};
use http::Method;
use serde_json::json;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic() {
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, "/tick", vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        "/tick",
        vec![Answer::status(500), Answer::status(200)],
    );
    let dir = tempfile::tempdir().unwrap();
    let b = bindery("metered")
        .file("files.yaml", &localstorage("files", dir.path()))
        .file("cron.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .start()
        .await;
    for i in 0..3 {
        let r = b
            .invoke("files", json!({"operation": "create", "data": "x", "metadata": {"fileName": format!("f{i}")}}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = b
        .invoke(
            "files",
            json!({"operation": "get", "metadata": {"fileName": "absent"}}),
        )
        .await;
    assert_eq!(r.status(), 500);
    app.wait_for(Method::POST, "/tick", 2, DEADLINE).await;

    let url = format!("http://127.0.0.1:{}/metrics", b.metrics_port);
    let text = wait_until(DEADLINE, "two input events counted", || {
        let url = url.clone();
        let client = b.client().clone();
        async move {
            let text = client.get(&url).send().await.ok()?.text().await.ok()?;
            let done = value(&text, r#"dapr_component_input_binding_count{app_id="metered",component="tick",success="true"}"#)? >= 1.0;
            done.then_some(text)
        }
    })
    .await;
    let get = |s: &str| value(&text, s).unwrap_or_else(|| panic!("{s} missing from:\n{text}"));
    assert_eq!(
        get(
            r#"dapr_component_output_binding_count{app_id="metered",component="files",operation="create",success="true"}"#
        ),
        3.0
    );
    assert_eq!(
        get(
            r#"dapr_component_output_binding_count{app_id="metered",component="files",operation="get",success="false"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"dapr_component_output_binding_latencies_count{app_id="metered",component="files",operation="create",success="true"}"#
        ),
        3.0
    );
    assert_eq!(
        get(
            r#"dapr_component_input_binding_count{app_id="metered",component="tick",success="false"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"bindery_input_events_total{app_id="metered",component="tick",outcome="failed"}"#),
        1.0
    );
    assert!(
        get(r#"bindery_input_events_total{app_id="metered",component="tick",outcome="accepted"}"#)
            >= 1.0
    );
    assert_eq!(
        get(r#"bindery_binding_connected{app_id="metered",component="files"}"#),
        1.0
    );
    assert!(get("process_resident_memory_bytes") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let b = bindery("unmetered")
        .args(["--enable-metrics=false"])
        .start()
        .await;
    let url = format!("http://127.0.0.1:{}/metrics", b.metrics_port);
    assert!(
        b.client().get(&url).send().await.is_err(),
        "nothing listens on the metrics port"
    );
}
