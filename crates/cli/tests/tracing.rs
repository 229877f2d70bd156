//! Tracing end to end: the real binary with a `--config` naming a real OTLP receiver. Output
//! calls and deliveries to the app are spans, children of the caller's `traceparent` or new
//! traces; the HTTP server behind an output binding and the app get bindery's span as parent;
//! sampling rate 0 exports nothing and still passes the trace on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_test_support::otlp::{BAGGAGE, OtlpReceiver, TRACESTATE, Traceparent};
use common::{Answer, Bindery, DEADLINE, TestApp, bindery, component, cron, wait_until};
use reqwest::Method;
use serde_json::json;

/// `POST /v1.0/bindings/web` (operation `post` to the app's `/target`) with `traceparent`,
/// `tracestate` and `baggage` when `trace` is set.
async fn call_web(b: &Bindery, trace: Option<&Traceparent>, operation: &str) -> u16 {
    let mut req = b
        .client()
        .post(b.url("/v1.0/bindings/web"))
        .json(&json!({"operation": operation, "data": "x", "metadata": {"path": "/target"}}));
    if let Some(t) = trace {
        req = req
            .header("traceparent", t.header())
            .header("tracestate", TRACESTATE)
            .header("baggage", BAGGAGE);
    }
    req.send().await.expect("bindery answers").status().as_u16()
}

fn traceparent_of(r: &common::Received) -> Traceparent {
    r.header("traceparent")
        .and_then(|t| Traceparent::parse(&t))
        .unwrap_or_else(|| panic!("no valid traceparent in {:?}", r.headers))
}

async fn start(app: &TestApp, config: &tempfile::NamedTempFile) -> Bindery {
    bindery("traced")
        .app_port(app.port)
        .args(["--config", &config.path().display().to_string()])
        .file(
            "web.yaml",
            &component(
                "web",
                "bindings.http",
                &[("url", &format!("http://127.0.0.1:{}", app.port))],
            ),
        )
        .file("tick.yaml", &cron("tick", &[]))
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_calls_and_deliveries_are_exported_spans() {
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("grpc", "1");
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/target",
        vec![Answer::status(200).body("ok")],
    );
    app.subscribe("/tick");
    let b = start(&app, &config).await;

    // A traced call: the HTTP server sees bindery's span as parent, the rest unchanged.
    let started = Traceparent::new_sampled();
    assert_eq!(call_web(&b, Some(&started), "post").await, 200);
    // An untraced call starts a trace.
    assert_eq!(call_web(&b, None, "post").await, 200);
    // A failing call is a span too.
    assert_eq!(call_web(&b, Some(&started), "nope").await, 500);

    let at_server = app.wait_for(Method::POST, "/target", 2, DEADLINE).await;
    let traced = traceparent_of(&at_server[0]);
    assert_eq!(traced.trace_id, started.trace_id);
    assert_ne!(traced.span_id, started.span_id);
    assert_eq!(traced.flags, "01");
    assert_eq!(
        at_server[0].header("tracestate").as_deref(),
        Some(TRACESTATE)
    );
    assert_eq!(at_server[0].header("baggage").as_deref(), Some(BAGGAGE));
    let fresh = traceparent_of(&at_server[1]);
    assert_ne!(fresh.trace_id, started.trace_id);
    assert_eq!(fresh.flags, "01", "rate 1 samples new traces");
    assert!(at_server[1].header("tracestate").is_none());

    let spans = receiver
        .wait_for("the three output spans", 3, DEADLINE, |s| {
            s.name == "bindings/web"
        })
        .await;
    let span = spans
        .iter()
        .find(|s| s.span_id == traced.span_id)
        .expect("the traced call's span has the id the server saw as parent");
    assert_eq!(span.trace_id, started.trace_id);
    assert_eq!(span.parent_span_id, started.span_id);
    assert_eq!(span.kind, 3, "client");
    assert_eq!(span.service_name, "traced");
    assert_eq!(span.attr("dapr.binding.type"), Some("bindings.http"));
    assert_eq!(span.attr("dapr.binding.operation"), Some("post"));
    assert_eq!(span.attr("dapr.api"), Some("http"));
    assert_eq!(span.attr("dapr.binding.outcome"), Some("success"));
    assert_eq!(span.status_code, 1);
    let root = spans
        .iter()
        .find(|s| s.span_id == fresh.span_id)
        .expect("the untraced call's span");
    assert_eq!(root.trace_id, fresh.trace_id);
    assert_eq!(root.parent_span_id, "", "a new trace");
    let failed = spans
        .iter()
        .find(|s| s.attr("dapr.binding.operation") == Some("nope"))
        .expect("the failed call's span");
    assert_eq!(failed.trace_id, started.trace_id);
    assert_eq!(failed.status_code, 2);
    assert_eq!(failed.attr("dapr.binding.outcome"), Some("error"));
    assert!(
        failed
            .status_message
            .contains("does not support operation nope")
    );

    // Cron events carry no trace: each delivery is a new trace, the app's parent its span.
    let ticks = app.wait_for(Method::POST, "/tick", 1, DEADLINE).await;
    let tick = traceparent_of(&ticks[0]);
    let delivered = receiver
        .wait_for("the first delivery's span", 1, DEADLINE, |s| {
            s.span_id == tick.span_id
        })
        .await;
    let d = &delivered[0];
    assert_eq!(d.name, "bindings/tick");
    assert_eq!(d.kind, 5, "consumer");
    assert_eq!(d.trace_id, tick.trace_id);
    assert_eq!(d.parent_span_id, "");
    assert_eq!(d.attr("dapr.binding.type"), Some("bindings.cron"));
    assert_eq!(d.attr("dapr.binding.direction"), Some("input"));
    assert_eq!(d.attr("dapr.app.protocol"), Some("http"));
    assert_eq!(d.attr("dapr.binding.outcome"), Some("accepted"));
    assert_eq!(d.attr("dapr.binding.attempts"), Some("1"));
    assert_eq!(d.status_code, 1);
    assert!(d.start_end.0 <= d.start_end.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_rate_zero_exports_nothing_and_still_passes_the_trace_on() {
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("grpc", "0");
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/target",
        vec![Answer::status(200).body("ok")],
    );
    app.subscribe("/tick");
    let mut b = start(&app, &config).await;

    let started = Traceparent::new_sampled();
    assert_eq!(call_web(&b, Some(&started), "post").await, 200);
    let at_server = app.wait_for(Method::POST, "/target", 1, DEADLINE).await;
    let passed = traceparent_of(&at_server[0]);
    assert_eq!(passed.trace_id, started.trace_id, "propagation goes on");
    assert_ne!(passed.span_id, started.span_id);
    assert_eq!(
        passed.flags, "00",
        "the flag is bindery's decision: not sampled"
    );
    assert_eq!(at_server[0].header("baggage").as_deref(), Some(BAGGAGE));
    let ticks = app.wait_for(Method::POST, "/tick", 2, DEADLINE).await;
    assert_eq!(traceparent_of(&ticks[1]).flags, "00");

    // A clean stop sends whatever is queued: had anything been recorded, it would arrive now.
    b.signal("TERM");
    let status = b.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}: {}", b.logs());
    assert_eq!(receiver.requests(), 0, "no export request at rate 0");
    assert!(receiver.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_queued_at_shutdown_are_flushed() {
    let receiver = OtlpReceiver::start().await;
    let config = receiver.config_file("http", "1");
    let app = TestApp::start().await;
    app.answer(
        Method::POST,
        "/target",
        vec![Answer::status(200).body("ok")],
    );
    let mut b = start(&app, &config).await;
    for _ in 0..5 {
        assert_eq!(call_web(&b, None, "post").await, 200);
    }
    // Stop at once: the batch interval has not necessarily passed, shutdown sends them.
    b.signal("TERM");
    let status = b.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}: {}", b.logs());
    let spans: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "bindings/web")
        .collect();
    assert_eq!(spans.len(), 5, "{spans:?}");
    assert!(spans.iter().all(|s| s.transport == "http"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_sampling_rate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  tracing:\n    samplingRate: \"often\"\n",
    )
    .unwrap();
    let mut b = bindery("bad-rate")
        .args(["--config", &config.display().to_string()])
        .no_wait()
        .start()
        .await;
    let status = b.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(1));
    wait_until(DEADLINE, "the reason in the log", || {
        let logs = b.logs();
        async move {
            logs.contains("samplingRate \"often\" is not a number")
                .then_some(())
        }
    })
    .await;
}
