//! Trace context over the gRPC API: a `traceparent` (or OpenCensus `grpc-trace-bin`) on an
//! `InvokeBinding` call makes bindery's span a child of the caller's; the binding gets that
//! span as parent, and the span reaches a real OTLP receiver.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bindery_otlp::{OtlpConfig, OtlpExporter, Protocol};
use bindery_runtime::RuntimeOptions;
use bindery_runtime::trace::{SpanExporter, Tracer};
use bindery_test_support::otlp::{OtlpReceiver, Traceparent};
use common::Harness;
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::Request;
use tonic::metadata::MetadataValue;

fn create() -> pb::InvokeBindingRequest {
    pb::InvokeBindingRequest {
        name: "echo".into(),
        operation: "create".into(),
        data: b"x".to_vec(),
        metadata: HashMap::new(),
    }
}

#[tokio::test]
async fn invoke_binding_continues_the_callers_trace() {
    let receiver = OtlpReceiver::start().await;
    let h = Harness::start(RuntimeOptions::default()).await;
    let exporter = OtlpExporter::start(&OtlpConfig::new(
        &format!("127.0.0.1:{}", receiver.grpc_port),
        Protocol::Grpc,
        false,
        "grpc-app",
    ))
    .unwrap();
    h.runtime
        .set_tracer(Tracer::new(
            1.0,
            Some(Arc::clone(&exporter) as Arc<dyn SpanExporter>),
        ))
        .unwrap();
    let mut c = h.client().await;

    // Text traceparent, as OpenTelemetry-instrumented gRPC clients send it.
    let started = Traceparent::new_sampled();
    let mut req = Request::new(create());
    req.metadata_mut()
        .insert("traceparent", started.header().parse().unwrap());
    req.metadata_mut().insert("baggage", "k=v".parse().unwrap());
    let echoed = c.invoke_binding(req).await.unwrap().into_inner().metadata;
    let passed = Traceparent::parse(&echoed["traceparent"]).unwrap();
    assert_eq!(passed.trace_id, started.trace_id);
    assert_ne!(passed.span_id, started.span_id);
    assert_eq!(echoed["baggage"], "k=v");

    // Binary grpc-trace-bin, as OpenCensus clients send it.
    let binary = Traceparent::new_sampled();
    let mut bin = vec![0u8, 0];
    bin.extend_from_slice(
        &u128::from_str_radix(&binary.trace_id, 16)
            .unwrap()
            .to_be_bytes(),
    );
    bin.push(1);
    bin.extend_from_slice(
        &u64::from_str_radix(&binary.span_id, 16)
            .unwrap()
            .to_be_bytes(),
    );
    bin.extend_from_slice(&[2, 1]);
    let mut req = Request::new(create());
    req.metadata_mut()
        .insert_bin("grpc-trace-bin", MetadataValue::from_bytes(&bin));
    let echoed = c.invoke_binding(req).await.unwrap().into_inner().metadata;
    let from_bin = Traceparent::parse(&echoed["traceparent"]).unwrap();
    assert_eq!(from_bin.trace_id, binary.trace_id);

    assert!(exporter.shutdown(Duration::from_secs(10)).await);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let s = spans
        .iter()
        .find(|s| s.trace_id == started.trace_id)
        .unwrap();
    assert_eq!(s.span_id, passed.span_id);
    assert_eq!(s.parent_span_id, started.span_id);
    assert_eq!(s.name, "bindings/echo");
    assert_eq!(s.attr("dapr.api"), Some("grpc"));
    assert_eq!(s.attr("dapr.binding.type"), Some("bindings.test"));
    let b = spans
        .iter()
        .find(|s| s.trace_id == binary.trace_id)
        .unwrap();
    assert_eq!(b.parent_span_id, binary.span_id);
    h.stop().await;
}
