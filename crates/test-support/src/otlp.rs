//! A real OTLP trace receiver for tests: OTLP/gRPC and OTLP/HTTP (protobuf) on loopback,
//! decoding with the official `opentelemetry-proto` crate, so what bindery sends is read by
//! code bindery did not write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

/// One span as the receiver decoded it; ids in lower-case hex as in a `traceparent`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service_name: String,
    /// The instrumentation scope's name.
    pub scope: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// The span name.
    pub name: String,
    /// OTLP `SpanKind` (3 client, 5 consumer).
    pub kind: i32,
    /// OTLP `flags` (the W3C trace flags in the low byte).
    pub flags: u32,
    /// Attributes, each value as text.
    pub attributes: HashMap<String, String>,
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    /// The status message.
    pub status_message: String,
    /// Start and end, Unix nanoseconds.
    pub start_end: (u64, u64),
    /// Which transport carried it: `grpc` or `http`.
    pub transport: &'static str,
}

impl ReceivedSpan {
    /// An attribute's text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Shared {
    spans: Vec<ReceivedSpan>,
    requests: usize,
}

/// An OTLP receiver on `127.0.0.1`: gRPC on [`OtlpReceiver::grpc_port`], HTTP
/// (`POST /v1/traces`, `application/x-protobuf`) on [`OtlpReceiver::http_port`].
#[derive(Clone)]
pub struct OtlpReceiver {
    /// OTLP/gRPC.
    pub grpc_port: u16,
    /// OTLP/HTTP.
    pub http_port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("grpc_port", &self.grpc_port)
            .field("http_port", &self.http_port)
            .finish()
    }
}

struct Grpc(Arc<Mutex<Shared>>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        record(&self.0, request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn http_export(State(shared): State<Arc<Mutex<Shared>>>, body: Bytes) -> StatusCode {
    match ExportTraceServiceRequest::decode(body) {
        Ok(req) => {
            record(&shared, req, "http");
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn record(shared: &Mutex<Shared>, req: ExportTraceServiceRequest, transport: &'static str) {
    let mut s = shared.lock().unwrap();
    s.requests += 1;
    for rs in req.resource_spans {
        let service_name = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.map(|s| s.name).unwrap_or_default();
            for span in ss.spans {
                let status = span.status.unwrap_or_default();
                s.spans.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    scope: scope.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    flags: span.flags,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                    status_code: status.code,
                    status_message: status.message,
                    start_end: (span.start_time_unix_nano, span.end_time_unix_nano),
                    transport,
                });
            }
        }
    }
}

impl OtlpReceiver {
    /// Start both listeners on free ports.
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind OTLP gRPC receiver");
        let grpc_port = grpc.local_addr().expect("addr").port();
        let service = TraceServiceServer::new(Grpc(Arc::clone(&shared)));
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc))
                .await;
        });
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind OTLP HTTP receiver");
        let http_port = http.local_addr().expect("addr").port();
        let router = Router::new()
            .route("/v1/traces", post(http_export))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(http, router).await;
        });
        OtlpReceiver {
            grpc_port,
            http_port,
            shared,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().unwrap().spans.clone()
    }

    /// How many export requests arrived.
    pub fn requests(&self) -> usize {
        self.shared.lock().unwrap().requests
    }

    /// Wait until spans matching `pred` number at least `n`, and return them.
    pub async fn wait_for(
        &self,
        what: &str,
        n: usize,
        deadline: Duration,
        pred: impl Fn(&ReceivedSpan) -> bool,
    ) -> Vec<ReceivedSpan> {
        crate::wait_until(deadline, what, || {
            let got: Vec<ReceivedSpan> = self.spans().into_iter().filter(|s| pred(s)).collect();
            async move { (got.len() >= n).then_some(got) }
        })
        .await
    }

    /// A Dapr `Configuration` document exporting to this receiver over `protocol` (`grpc` or
    /// `http`) with `sampling_rate`.
    pub fn configuration(&self, protocol: &str, sampling_rate: &str) -> String {
        let port = if protocol == "http" {
            self.http_port
        } else {
            self.grpc_port
        };
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: tracing\nspec:\n  tracing:\n    samplingRate: \"{sampling_rate}\"\n    otel:\n      endpointAddress: \"127.0.0.1:{port}\"\n      isSecure: false\n      protocol: {protocol}\n"
        )
    }

    /// [`OtlpReceiver::configuration`] written to a file, for `--config`. Keep it alive while
    /// bindery runs.
    pub fn config_file(&self, protocol: &str, sampling_rate: &str) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .expect("temp config file");
        std::fs::write(file.path(), self.configuration(protocol, sampling_rate))
            .expect("write config file");
        file
    }
}

/// A trace context a test app starts: a fresh trace id and span id, sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 2 hex digits.
    pub flags: String,
}

impl Traceparent {
    /// A new sampled trace.
    pub fn new_sampled() -> Self {
        let id = uuid::Uuid::new_v4().as_u128();
        let span = (uuid::Uuid::new_v4().as_u128() as u64) | 1;
        Traceparent {
            trace_id: format!("{id:032x}"),
            span_id: format!("{span:016x}"),
            flags: "01".into(),
        }
    }

    /// Parse a `traceparent` header value (version 00 only).
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.split('-').collect();
        let ok = parts.len() == 4
            && parts[0] == "00"
            && parts[1].len() == 32
            && parts[2].len() == 16
            && parts[3].len() == 2
            && parts[1..].iter().all(|p| {
                p.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            });
        ok.then(|| Traceparent {
            trace_id: parts[1].into(),
            span_id: parts[2].into(),
            flags: parts[3].into(),
        })
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// The `tracestate` and `baggage` a traced test call sends; both must arrive unchanged.
pub const TRACESTATE: &str = "bindery-test=t61rcWkgMzE";
/// See [`TRACESTATE`].
pub const BAGGAGE: &str = "tenant=acme,flow=trace-test";

/// The trace through a broker and back, checked end to end: the test app calls output binding
/// `output` over the HTTP API with a sampled `traceparent` (plus `tracestate` and `baggage`);
/// the message comes back through input binding `input` to the app at `route`. The app must
/// see the same trace with bindery's input span as parent, the `tracestate` and `baggage` it
/// sent, and `receiver` must hold both spans chained: the output span a child of the app's
/// span, the input span a child of the output span.
pub async fn assert_trace_round_trip(
    b: &crate::Bindery,
    app: &crate::TestApp,
    receiver: &OtlpReceiver,
    output: &str,
    input: &str,
    route: &str,
) {
    let started = Traceparent::new_sampled();
    let marker = format!("trace-{}", uuid::Uuid::new_v4().simple());
    let resp = b
        .client()
        .post(b.url(&format!("/v1.0/bindings/{output}")))
        .header("traceparent", started.header())
        .header("tracestate", TRACESTATE)
        .header("baggage", BAGGAGE)
        .json(&serde_json::json!({"operation": "create", "data": marker}))
        .send()
        .await
        .expect("bindery answers");
    let status = resp.status();
    assert!(
        status.is_success(),
        "output call answered {status}: {}",
        resp.text().await.unwrap_or_default()
    );
    let want_body = format!("\"{marker}\"");
    let delivered = crate::wait_until(
        Duration::from_secs(90),
        &format!("the traced message at the app's {route}"),
        || {
            let got = app
                .received_at(&http::Method::POST, route)
                .into_iter()
                .find(|r| r.body.as_ref() == want_body.as_bytes());
            async move { got }
        },
    )
    .await;
    let at_app = delivered
        .header("traceparent")
        .and_then(|t| Traceparent::parse(&t))
        .unwrap_or_else(|| panic!("the app got no valid traceparent: {:?}", delivered.headers));
    assert_eq!(
        at_app.trace_id, started.trace_id,
        "the app's trace continues"
    );
    assert_ne!(
        at_app.span_id, started.span_id,
        "bindery's span is the parent"
    );
    assert_eq!(at_app.flags, "01", "sampled");
    assert_eq!(delivered.header("tracestate").as_deref(), Some(TRACESTATE));
    assert_eq!(delivered.header("baggage").as_deref(), Some(BAGGAGE));

    let spans = receiver
        .wait_for(
            &format!("the output and input spans of trace {}", started.trace_id),
            2,
            Duration::from_secs(30),
            |s| s.trace_id == started.trace_id,
        )
        .await;
    let out = spans
        .iter()
        .find(|s| s.kind == 3)
        .unwrap_or_else(|| panic!("no output (client) span: {spans:?}"));
    let inp = spans
        .iter()
        .find(|s| s.kind == 5)
        .unwrap_or_else(|| panic!("no input (consumer) span: {spans:?}"));
    assert_eq!(out.name, format!("bindings/{output}"));
    assert_eq!(
        out.parent_span_id, started.span_id,
        "output span: child of the app's"
    );
    assert_eq!(out.attr("dapr.binding.name"), Some(output));
    assert_eq!(out.attr("dapr.binding.operation"), Some("create"));
    assert_eq!(out.attr("dapr.binding.direction"), Some("output"));
    assert_eq!(out.attr("dapr.api"), Some("http"));
    assert_eq!(out.attr("dapr.binding.outcome"), Some("success"));
    assert_eq!(out.status_code, 1);
    assert_eq!(inp.name, format!("bindings/{input}"));
    assert_eq!(
        inp.parent_span_id, out.span_id,
        "input span: child of the output span"
    );
    assert_eq!(
        inp.span_id, at_app.span_id,
        "the app's parent is the input span"
    );
    assert_eq!(inp.attr("dapr.binding.name"), Some(input));
    assert_eq!(inp.attr("dapr.binding.direction"), Some("input"));
    assert_eq!(inp.attr("dapr.binding.outcome"), Some("accepted"));
    assert_eq!(inp.status_code, 1);
    assert_eq!(inp.service_name, out.service_name);
}
