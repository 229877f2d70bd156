//! Input events from a `bindings.cron` component to a real HTTP app.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Answer, DEADLINE, HoldingApp, TestApp, bindery, cron, dapr_error, free_port, get_status,
    is_traceparent, logs, wait_log, wait_until,
};
use reqwest::Method;

/// `2020-09-26 17:57:14.123456789 +0000 UTC`, Go's `time.Time.String()` in UTC.
fn is_go_utc_time(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() >= "2020-09-26 17:57:14 +0000 UTC".len()
        && t.ends_with(" +0000 UTC")
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_probed_then_posted_with_dapr_headers() {
    let app = TestApp::start().await;
    app.subscribe("/ticks");
    let b = bindery("deliver")
        .file("ticks.yaml", &cron("ticks", &[]))
        .app_port(app.port)
        .start()
        .await;

    let posts = app.wait_for(Method::POST, "/ticks", 2, DEADLINE).await;
    let all = app.received();
    let first_options = all.iter().position(|r| r.method == Method::OPTIONS);
    let first_post = all.iter().position(|r| r.method == Method::POST);
    assert!(
        first_options.is_some() && first_options < first_post,
        "the probe comes before the first delivery: {all:?}"
    );
    let probes = app.received_at(&Method::OPTIONS, "/ticks");
    assert_eq!(probes.len(), 1, "probed once");
    assert_eq!(
        probes[0].header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(probes[0].body.is_empty());

    for p in &posts {
        assert_eq!(
            p.header("content-type").as_deref(),
            Some("application/json")
        );
        assert!(p.body.is_empty(), "cron events carry no data");
        let read_time = p.header("readtimeutc").expect("readtimeutc header");
        assert!(is_go_utc_time(&read_time), "readtimeutc {read_time:?}");
        let zone = p.header("timezone").expect("timezone header");
        assert!(!zone.is_empty());
        let tp = p.header("traceparent").expect("traceparent header");
        assert!(is_traceparent(&tp), "traceparent {tp:?}");
        assert!(p.header("dapr-api-token").is_none());
    }
    assert_ne!(
        posts[0].header("traceparent"),
        posts[1].header("traceparent"),
        "each event has its own trace"
    );
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_metadata_and_direction_input_shape_probe_and_delivery() {
    let app = TestApp::start().await;
    app.subscribe("/custom/path");
    // Only POST: were it probed, the default 404 would unsubscribe it.
    app.answer(Method::POST, "/direct", vec![Answer::status(200)]);
    let b = bindery("deliver")
        .file("routed.yaml", &cron("routed", &[("route", "/custom/path")]))
        .file("direct.yaml", &cron("direct", &[("direction", "input")]))
        .app_port(app.port)
        .start()
        .await;

    app.wait_for(Method::POST, "/custom/path", 1, DEADLINE)
        .await;
    app.wait_for(Method::POST, "/direct", 2, DEADLINE).await;
    assert_eq!(app.received_at(&Method::OPTIONS, "/custom/path").len(), 1);
    assert!(app.received_at(&Method::OPTIONS, "/direct").is_empty());
    let stray: Vec<_> = app
        .received()
        .into_iter()
        .filter(|r| r.path == "/routed")
        .collect();
    assert!(
        stray.is_empty(),
        "nothing goes to /<name> when route is set"
    );
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_probe_answer_but_404_subscribes() {
    let app = TestApp::start().await;
    for (path, status) in [("/p200", 200), ("/p405", 405), ("/p500", 500)] {
        app.answer(Method::OPTIONS, path, vec![Answer::status(status)]);
    }
    // /p404: OPTIONS is unknown to the app (404), POST would be accepted.
    for path in ["/p200", "/p404", "/p405", "/p500"] {
        app.answer(Method::POST, path, vec![Answer::status(200)]);
    }
    let mut builder = bindery("probe");
    for name in ["p200", "p404", "p405", "p500"] {
        builder = builder.file(&format!("{name}.yaml"), &cron(name, &[]));
    }
    let b = builder.app_port(app.port).start().await;

    wait_log(&b, "app has not subscribed to binding p404").await;
    // Two ticks each for the others: p404 had its ticks too, and none was delivered.
    for path in ["/p200", "/p405", "/p500"] {
        app.wait_for(Method::POST, path, 2, DEADLINE).await;
    }
    assert_eq!(app.received_at(&Method::OPTIONS, "/p404").len(), 1);
    assert!(app.received_at(&Method::POST, "/p404").is_empty());
    let md: serde_json::Value = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subscription = |name: &str| {
        md["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"]["subscription"].clone())
    };
    assert_eq!(subscription("p404").unwrap(), "not-subscribed");
    assert_eq!(subscription("p500").unwrap(), "subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_listening_late_gets_events_and_health_follows() {
    let port = free_port();
    let b = bindery("late")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(port)
        .start()
        .await;
    // The API serves before the app is up; health says why it is not ready.
    wait_log(&b, "waiting for the app to listen").await;
    assert_eq!(get_status(&b, "/v1.0/healthz/outbound").await, 204);
    let resp = b.client().get(b.url("/v1.0/healthz")).send().await.unwrap();
    let msg = dapr_error(resp, 500, "ERR_HEALTH_NOT_READY").await;
    assert!(msg.contains("app is not ready"), "{msg}");

    let app = TestApp::start_on(port).await;
    app.subscribe("/tick");
    app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;
    assert_eq!(app.received_at(&Method::OPTIONS, "/tick").len(), 1);
    wait_until(DEADLINE, "healthz 204", || {
        let b = &b;
        async move { (get_status(b, "/v1.0/healthz").await == 204).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_api_token_is_sent_on_probe_and_delivery() {
    let app = TestApp::start().await;
    app.subscribe("/tick");
    let _b = bindery("tokened")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .env("APP_API_TOKEN", "x")
        .start()
        .await;
    app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;
    let seen = app.received();
    assert!(seen.len() >= 2);
    for r in seen {
        assert_eq!(
            r.header("dapr-api-token").as_deref(),
            Some("x"),
            "{} {}",
            r.method,
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_app_is_logged_and_the_schedule_goes_on() {
    let app = TestApp::start().await;
    app.answer(Method::OPTIONS, "/tick", vec![Answer::status(200)]);
    app.answer(
        Method::POST,
        "/tick",
        vec![Answer::status(500).body("boom")],
    );
    let b = bindery("failing")
        .file("tick.yaml", &cron("tick", &[]))
        .app_port(app.port)
        .start()
        .await;
    app.wait_for(Method::POST, "/tick", 3, DEADLINE).await;
    wait_log(&b, "delivery to the app failed").await;
    let log = logs(&b);
    assert!(log.contains("status code: 500"), "{log}");
    assert!(log.contains("boom"), "{log}");
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_max_concurrency_1_never_overlaps_app_calls() {
    let app = HoldingApp::start(Duration::from_secs(1)).await;
    let _b = bindery("serial")
        .file("one.yaml", &cron("one", &[]))
        .file("two.yaml", &cron("two", &[]))
        .app_port(app.port)
        .args(["--app-max-concurrency", "1"])
        .start()
        .await;
    wait_until(
        DEADLINE,
        "four answered deliveries from both bindings",
        || {
            let answered = app.answered();
            let both = answered.iter().any(|p| p == "/one") && answered.iter().any(|p| p == "/two");
            async move { (answered.len() >= 4 && both).then_some(()) }
        },
    )
    .await;
    assert_eq!(app.max_in_flight(), 1, "arrived: {:?}", app.arrived());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_app_port_nothing_is_delivered() {
    let b = bindery("no-app")
        .file("tick.yaml", &cron("tick", &[]))
        .start()
        .await;
    wait_log(&b, "no --app-port").await;
    let log = logs(&b);
    let line = log.lines().find(|l| l.contains("no --app-port")).unwrap();
    assert!(line.contains("tick"), "{line}");
    // No app to wait for: healthy, and the binding never subscribed.
    assert_eq!(get_status(&b, "/v1.0/healthz").await, 204);
    let md: serde_json::Value = b
        .client()
        .get(b.url("/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["components"][0]["status"]["subscription"], "unknown");
}
