//! Signals and graceful shutdown of the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Answer, DEADLINE, HoldingApp, TestApp, bindery, cron, localstorage, logs, wait_until,
};
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_delivery_in_flight_finish_then_exits_0() {
    let app = HoldingApp::start(Duration::from_secs(2)).await;
    let mut b = bindery("draining")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .start()
        .await;
    wait_until(DEADLINE, "a delivery held by the app", || {
        let held = app.in_flight();
        async move { (held == 1).then_some(()) }
    })
    .await;
    b.signal("TERM");
    // Default grace period 5 s; the delivery needs 2 s at most.
    let status = b.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}; log:\n{}", logs(&b));
    // The app saw the whole request and answered it; bindery did not hang up on it.
    wait_until(DEADLINE, "the app to account for every delivery", || {
        let done = app.answered().len() + app.abandoned().len() >= app.arrived().len();
        async move { done.then_some(()) }
    })
    .await;
    assert!(
        app.abandoned().is_empty(),
        "abandoned: {:?}",
        app.abandoned()
    );
    assert_eq!(
        app.answered(),
        ["/tick"],
        "one delivery, answered; none after the signal"
    );
    let log = logs(&b);
    assert!(log.contains("signal received"), "{log}");
    assert!(
        !log.contains("did not finish within the grace period"),
        "{log}"
    );
    assert!(log.contains("bindery stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = bindery("interrupted")
        .file("store.yaml", &localstorage("store", dir.path()))
        .start()
        .await;
    b.signal("INT");
    let status = b.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}; log:\n{}", logs(&b));
    assert!(logs(&b).contains("signal received"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_shutdown_when_the_app_never_answers() {
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, "/tick", vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        "/tick",
        vec![Answer::status(200).delay(Duration::from_secs(3600))],
    );
    let mut b = bindery("impatient")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .args(["--dapr-graceful-shutdown-seconds", "1"])
        .start()
        .await;
    app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;
    b.signal("TERM");
    // 1 s of grace plus closing; generous so a loaded machine does not flake.
    let status = b.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}; log:\n{}", logs(&b));
    let log = logs(&b);
    assert!(
        log.contains("in-flight work did not finish within the grace period"),
        "{log}"
    );
}
