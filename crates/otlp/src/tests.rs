#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bindery_runtime::trace::{
    AttrValue, SpanData, SpanExporter, SpanKind, SpanStatus, TraceContext, Tracer,
};
use bindery_test_support::otlp::OtlpReceiver;

use super::*;

const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn data(name: &str) -> SpanData {
    let now = SystemTime::now();
    SpanData {
        context: TraceContext {
            trace_id: 0x0af7651916cd43dd8448eb211c80319c,
            span_id: 0x1122334455667788,
            flags: 1,
        },
        parent_span_id: Some(0xb7ad6b7169203331),
        trace_state: "congo=t61".into(),
        name: name.into(),
        kind: SpanKind::Consumer,
        start: now,
        end: now + Duration::from_millis(3),
        attributes: vec![
            ("dapr.binding.name", AttrValue::Str("orders".into())),
            ("dapr.binding.attempts", AttrValue::Int(2)),
            ("ok", AttrValue::Bool(true)),
        ],
        status: SpanStatus::Error("app answered 500".into()),
    }
}

#[test]
fn urls_follow_protocol_and_security() {
    let c = |e: &str, p, s| OtlpConfig::new(e, p, s, "app").url();
    assert_eq!(
        c("localhost:4317", Protocol::Grpc, false),
        "http://localhost:4317"
    );
    assert_eq!(
        c("localhost:4317", Protocol::Grpc, true),
        "https://localhost:4317"
    );
    assert_eq!(
        c("https://collector:4317", Protocol::Grpc, false),
        "https://collector:4317"
    );
    assert_eq!(
        c("localhost:4318", Protocol::Http, false),
        "http://localhost:4318/v1/traces"
    );
    assert_eq!(
        c("http://localhost:4318/", Protocol::Http, true),
        "https://localhost:4318/v1/traces"
    );
    assert_eq!(
        c("localhost:4318/custom/traces", Protocol::Http, false),
        "http://localhost:4318/custom/traces"
    );
}

#[test]
fn dapr_protocol_names() {
    let otel = |p: Option<&str>, e: Option<&str>| bindery_runtime::Otel {
        endpoint_address: e.map(Into::into),
        protocol: p.map(Into::into),
        is_secure: None,
    };
    assert_eq!(OtlpConfig::from_dapr(&otel(None, None), "a"), Ok(None));
    assert_eq!(
        OtlpConfig::from_dapr(&otel(Some("grpc"), Some(" ")), "a"),
        Ok(None)
    );
    let grpc = OtlpConfig::from_dapr(&otel(None, Some("h:4317")), "a")
        .unwrap()
        .unwrap();
    assert_eq!(grpc.protocol, Protocol::Grpc);
    assert!(!grpc.secure);
    let http = OtlpConfig::from_dapr(&otel(Some("HTTP"), Some("h:4318")), "a")
        .unwrap()
        .unwrap();
    assert_eq!(http.protocol, Protocol::Http);
    assert!(OtlpConfig::from_dapr(&otel(Some("zipkin"), Some("h:1")), "a").is_err());
    assert!(
        OtlpExporter::start(&OtlpConfig::new("bad host:1", Protocol::Http, false, "a")).is_err()
    );
}

async fn round_trip(protocol: Protocol) {
    let receiver = OtlpReceiver::start().await;
    let port = match protocol {
        Protocol::Grpc => receiver.grpc_port,
        Protocol::Http => receiver.http_port,
    };
    let exporter = OtlpExporter::start(&OtlpConfig::new(
        &format!("127.0.0.1:{port}"),
        protocol,
        false,
        "orders-app",
    ))
    .unwrap();
    exporter.export(data("bindings/orders"));
    exporter.export(data("bindings/other"));
    assert!(
        exporter.shutdown(Duration::from_secs(10)).await,
        "flushed in time"
    );
    assert_eq!(exporter.exported(), 2);
    assert_eq!(exporter.dropped(), 0);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let s = &spans[0];
    assert_eq!(
        s.transport,
        if protocol == Protocol::Grpc {
            "grpc"
        } else {
            "http"
        }
    );
    assert_eq!(s.service_name, "orders-app");
    assert_eq!(s.scope, "bindery");
    assert_eq!(s.name, "bindings/orders");
    assert_eq!(s.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(s.span_id, "1122334455667788");
    assert_eq!(s.parent_span_id, "b7ad6b7169203331");
    assert_eq!(s.kind, 5);
    assert_eq!(s.flags & 0xff, 1);
    assert_eq!(s.attr("dapr.binding.name"), Some("orders"));
    assert_eq!(s.attr("dapr.binding.attempts"), Some("2"));
    assert_eq!(s.attr("ok"), Some("true"));
    assert_eq!(s.status_code, 2);
    assert_eq!(s.status_message, "app answered 500");
    assert_eq!(s.start_end.1 - s.start_end.0, 3_000_000);
    // After shutdown, spans are dropped and counted, never queued.
    exporter.export(data("late"));
    assert_eq!(exporter.dropped(), 1);
}

#[tokio::test]
async fn grpc_export_reaches_a_real_receiver() {
    round_trip(Protocol::Grpc).await;
}

#[tokio::test]
async fn http_export_reaches_a_real_receiver() {
    round_trip(Protocol::Http).await;
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    // A port nobody listens on: batches fail, the queue fills up.
    let port = bindery_test_support::free_port();
    let mut config = OtlpConfig::new(&format!("127.0.0.1:{port}"), Protocol::Grpc, false, "a");
    config.queue_size = 4;
    config.batch_size = 2;
    config.timeout = Duration::from_secs(2);
    let exporter = OtlpExporter::start(&config).unwrap();
    // On this single-threaded runtime the export task cannot run between these calls.
    for i in 0..10 {
        exporter.export(data(&format!("s{i}")));
    }
    assert_eq!(exporter.dropped(), 6);
    exporter.shutdown(Duration::from_secs(30)).await;
    assert_eq!(exporter.exported(), 0);
    assert_eq!(exporter.failed(), 4);
}

#[tokio::test]
async fn sampled_spans_of_a_tracer_arrive_with_their_parent() {
    let receiver = OtlpReceiver::start().await;
    let exporter = OtlpExporter::start(&OtlpConfig::new(
        &format!("127.0.0.1:{}", receiver.grpc_port),
        Protocol::Grpc,
        false,
        "app",
    ))
    .unwrap();
    let tracer = Tracer::new(1.0, Some(Arc::clone(&exporter) as Arc<dyn SpanExporter>));
    let span = tracer.start(TraceContext::parse(PARENT), "bindings/x", SpanKind::Client);
    let ctx = span.context();
    tracer.end(span, SpanStatus::Ok, None);
    exporter.shutdown(Duration::from_secs(10)).await;
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span_id, format!("{:016x}", ctx.span_id));
    assert_eq!(spans[0].parent_span_id, "b7ad6b7169203331");
    assert_eq!(spans[0].kind, 3);
    assert_eq!(spans[0].status_code, 1);
}
