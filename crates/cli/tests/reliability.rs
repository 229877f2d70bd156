//! Resiliency policies, dead letters and hot reload, through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bindery_test_support::{Answer, TestApp, wait_until};
use common::{DEADLINE, bindery, component, cron, localstorage};
use http::Method;
use serde_json::json;

fn resiliency(body: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: policies\nspec:\n{body}"
    )
}

fn http_binding(name: &str, app: &TestApp, path: &str) -> String {
    component(
        name,
        "bindings.http",
        &[("url", &format!("http://127.0.0.1:{}{path}", app.port))],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_retries_until_the_backend_answers() {
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/flaky",
        vec![
            Answer::status(500),
            Answer::status(503),
            Answer::status(200).body("ok"),
        ],
    );
    let b = bindery("outbound-retry")
        .file("http.yaml", &http_binding("backend", &app, "/flaky"))
        .file(
            "resiliency.yaml",
            &resiliency(
                "  policies:\n    retries:\n      three:\n        policy: constant\n        duration: 10ms\n        maxRetries: 3\n  targets:\n    components:\n      backend:\n        outbound:\n          retry: three\n",
            ),
        )
        .start()
        .await;
    let r = b
        .invoke("backend", json!({"operation": "post", "data": {"n": 1}}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    assert_eq!(app.received_at(&Method::POST, "/flaky").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_matching_limits_what_is_retried() {
    let app = TestApp::start().await;
    app.answer(Method::POST, "/missing", vec![Answer::status(404)]);
    let b = bindery("outbound-matching")
        .file("http.yaml", &http_binding("backend", &app, "/missing"))
        .file(
            "resiliency.yaml",
            &resiliency(
                "  policies:\n    retries:\n      only5xx:\n        duration: 10ms\n        maxRetries: 5\n        matching:\n          httpStatusCodes: \"500-599\"\n  targets:\n    components:\n      backend:\n        outbound:\n          retry: only5xx\n",
            ),
        )
        .start()
        .await;
    let r = b.invoke("backend", json!({"operation": "post"})).await;
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["metadata.statuscode"], "404");
    assert_eq!(
        app.received_at(&Method::POST, "/missing").len(),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_timeout_and_circuit_breaker() {
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/slow",
        vec![Answer::status(200).delay(Duration::from_secs(5))],
    );
    app.answer(Method::POST, "/down", vec![Answer::status(500)]);
    let b = bindery("outbound-cb")
        .file("slow.yaml", &http_binding("slow", &app, "/slow"))
        .file("down.yaml", &http_binding("down", &app, "/down"))
        .file(
            "resiliency.yaml",
            &resiliency(
                "  policies:\n    timeouts:\n      quick: 100ms\n    circuitBreakers:\n      cb:\n        maxRequests: 1\n        timeout: 60s\n        trip: consecutiveFailures >= 2\n  targets:\n    components:\n      slow:\n        outbound:\n          timeout: quick\n      down:\n        outbound:\n          circuitBreaker: cb\n",
            ),
        )
        .start()
        .await;
    let started = Instant::now();
    let r = b.invoke("slow", json!({"operation": "post"})).await;
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout cut the call short"
    );

    for _ in 0..2 {
        assert_eq!(
            b.invoke("down", json!({"operation": "post"}))
                .await
                .status(),
            500
        );
    }
    let r = b.invoke("down", json!({"operation": "post"})).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker cb-down is open"),
        "{body}"
    );
    assert_eq!(
        app.received_at(&Method::POST, "/down").len(),
        2,
        "the open breaker kept the third call from the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_retries_deliver_a_failed_event_again() {
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, "/tick", vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        "/tick",
        vec![
            Answer::status(500),
            Answer::status(500),
            Answer::status(200),
        ],
    );
    let b = bindery("inbound-retry")
        .file("cron.yaml", &cron("tick", &[]))
        .file(
            "resiliency.yaml",
            &resiliency(
                "  policies:\n    retries:\n      quick:\n        duration: 10ms\n        maxRetries: 5\n  targets:\n    components:\n      tick:\n        inbound:\n          retry: quick\n",
            ),
        )
        .app_port(app.port)
        .start()
        .await;
    let posts = app.wait_for(Method::POST, "/tick", 3, DEADLINE).await;
    assert_eq!(posts[0].status, 500);
    assert_eq!(posts[1].status, 500);
    assert_eq!(posts[2].status, 200);
    assert!(
        !b.logs().contains("delivery to the app failed"),
        "the retries hid the two failures from the binding:\n{}",
        b.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_events_go_to_the_dead_letter_binding() {
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, "/tick", vec![Answer::status(200)]);
    app.answer(Method::POST, "/tick", vec![Answer::status(500)]);
    let dl = tempfile::tempdir().unwrap();
    let b = bindery("dead-letter")
        .file("cron.yaml", &cron("tick", &[("deadLetterBinding", "parking")]))
        .file("parking.yaml", &localstorage("parking", dl.path()))
        .file(
            "resiliency.yaml",
            &resiliency(
                "  policies:\n    retries:\n      twice:\n        duration: 10ms\n        maxRetries: 2\n  targets:\n    components:\n      tick:\n        inbound:\n          retry: twice\n",
            ),
        )
        .app_port(app.port)
        .start()
        .await;
    wait_until(
        DEADLINE,
        "a dead-lettered event in the parking folder",
        || {
            let n = std::fs::read_dir(dl.path()).map(|d| d.count()).unwrap_or(0);
            async move { (n > 0).then_some(()) }
        },
    )
    .await;
    // The file is written before the delivery loop logs the outcome.
    wait_until(DEADLINE, "the dead-letter log line", || {
        let logs = b.logs();
        async move { logs.contains("event dead-lettered").then_some(()) }
    })
    .await;
    let logs = b.logs();
    assert!(
        logs.contains("attempts=3"),
        "one attempt and two retries: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_target_must_be_an_output_binding() {
    let mut b = bindery("dead-letter-bad")
        .file(
            "cron.yaml",
            &cron("tick", &[("deadLetterBinding", "nowhere")]),
        )
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(DEADLINE).await;
    assert!(!status.success());
    assert!(b.logs().contains("deadLetterBinding"), "{}", b.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_changes_a_binding_without_failing_calls() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let b = bindery("hot-reload")
        .file("files.yaml", &localstorage("files", first.path()))
        .start()
        .await;
    let client = b.client().clone();
    let url = b.url("/v1.0/bindings/files");
    // Output calls run all through the edit; none may fail.
    let caller = tokio::spawn(async move {
        let mut n = 0u32;
        let mut failures = Vec::new();
        let end = Instant::now() + Duration::from_secs(4);
        while Instant::now() < end {
            let body = json!({"operation": "create", "data": n.to_string(), "metadata": {"fileName": format!("f{n}")}});
            let r = client.post(&url).json(&body).send().await.unwrap();
            if r.status() != 200 {
                failures.push((n, r.status(), r.text().await.unwrap_or_default()));
            }
            n += 1;
        }
        (n, failures)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(
        b.resources_dir().join("files.yaml"),
        localstorage("files", second.path()),
    )
    .unwrap();
    let (calls, failures) = caller.await.unwrap();
    assert!(
        failures.is_empty(),
        "calls failed during the reload: {failures:?}"
    );
    let in_first = std::fs::read_dir(first.path()).unwrap().count();
    let in_second = std::fs::read_dir(second.path()).unwrap().count();
    assert_eq!(
        in_first + in_second,
        calls as usize,
        "every call wrote one file"
    );
    assert!(
        in_first > 0 && in_second > 0,
        "the edit took effect mid-stream: {in_first} then {in_second}"
    );

    // An invalid edit is reported and the running version stays.
    std::fs::write(b.resources_dir().join("files.yaml"), "apiVersion: [").unwrap();
    wait_until(DEADLINE, "the invalid edit to be reported", || {
        let logs = b.logs();
        async move {
            logs.contains("keeping the running components")
                .then_some(())
        }
    })
    .await;
    let r = b
        .invoke(
            "files",
            json!({"operation": "create", "data": "x", "metadata": {"fileName": "after"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(second.path().join("after").exists());

    // Removing the file removes the binding.
    std::fs::remove_file(b.resources_dir().join("files.yaml")).unwrap();
    wait_until(DEADLINE, "the binding to be removed", || {
        let b = &b;
        async move {
            let r = b.invoke("files", json!({"operation": "list"})).await;
            (r.status() == 500).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_bindings_pause_while_the_app_is_unhealthy() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    app.answer(Method::GET, "/healthz", vec![Answer::status(200)]);
    let b = bindery("app-health")
        .file("cron.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .args([
            "--enable-app-health-check",
            "--app-health-probe-interval",
            "200ms",
            "--app-health-probe-timeout",
            "100ms",
            "--app-health-threshold",
            "2",
        ])
        .start()
        .await;
    app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;

    app.answer(Method::GET, "/healthz", vec![Answer::status(503)]);
    wait_until(DEADLINE, "input bindings to pause", || {
        let logs = b.logs();
        async move { logs.contains("pausing input bindings").then_some(()) }
    })
    .await;
    // Let a delivery already in flight land, then nothing more may arrive while unhealthy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_at = app.received_at(&Method::POST, "/tick").len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        app.received_at(&Method::POST, "/tick").len(),
        paused_at,
        "no event is delivered while the app is unhealthy"
    );
    let health = b.client().get(b.url("/v1.0/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 500, "health tells the app is not ready");

    app.answer(Method::GET, "/healthz", vec![Answer::status(200)]);
    app.wait_for(Method::POST, "/tick", paused_at + 1, DEADLINE)
        .await;
    let options_probes = app.received_at(&Method::OPTIONS, "/tick").len();
    assert!(
        options_probes >= 2,
        "resuming asks the app again: {options_probes} probes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_shutdown_keeps_output_bindings_serving() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    let dir = tempfile::tempdir().unwrap();
    let mut b = bindery("block-shutdown")
        .file("cron.yaml", &cron("tick", &[]))
        .file("files.yaml", &localstorage("files", dir.path()))
        .app_port(app.port)
        .args(["--dapr-block-shutdown-duration", "3s"])
        .start()
        .await;
    app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;
    let started = Instant::now();
    b.signal("TERM");
    wait_until(DEADLINE, "the blocked shutdown to begin", || {
        let logs = b.logs();
        async move { logs.contains("shutdown blocked").then_some(()) }
    })
    .await;
    let r = b
        .invoke(
            "files",
            json!({"operation": "create", "data": "late", "metadata": {"fileName": "late"}}),
        )
        .await;
    assert_eq!(
        r.status(),
        200,
        "output bindings serve during a blocked shutdown"
    );
    assert!(dir.path().join("late").exists());
    let status = b.wait_exit(DEADLINE).await;
    assert!(status.success());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "bindery waited for the block duration"
    );
}
