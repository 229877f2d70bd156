//! bindery's span exporter: finished spans go to an OpenTelemetry collector over OTLP, as
//! protobuf over gRPC (`TraceService/Export`) or over HTTP (`POST /v1/traces`).
//!
//! The request path only puts a span on a bounded queue ([`SpanExporter::export`] never
//! waits): when the queue is full the span is dropped and counted. One background task takes
//! spans off the queue in batches, sends a batch when it is full or every interval, and on
//! [`OtlpExporter::shutdown`] sends what is left.
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! use std::sync::Arc;
//! use bindery_otlp::{OtlpConfig, OtlpExporter, Protocol};
//! use bindery_runtime::trace::{SpanExporter, Tracer};
//!
//! let exporter = OtlpExporter::start(&OtlpConfig::new("127.0.0.1:4317", Protocol::Grpc, false, "orders"))?;
//! let tracer = Tracer::new(1.0, Some(Arc::clone(&exporter) as Arc<dyn SpanExporter>));
//! // ... serve ...
//! exporter.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```

mod proto;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bindery_runtime::trace::{AttrValue, SpanData, SpanExporter, SpanKind, SpanStatus};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::proto::any_value::Value;

/// The gRPC method spans are sent to.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How spans reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (usually port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (usually port 4318).
    Http,
}

/// Where and how to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// `host:port`, or a URL; for HTTP a URL with a path is used as it is, otherwise
    /// `/v1/traces` is added.
    pub endpoint: String,
    /// gRPC or HTTP.
    pub protocol: Protocol,
    /// TLS (an `https://` endpoint implies it).
    pub secure: bool,
    /// The resource's `service.name`: the app id, as Dapr reports it.
    pub service_name: String,
    /// Spans waiting to be sent at most; more are dropped and counted.
    pub queue_size: usize,
    /// Spans per export request at most.
    pub batch_size: usize,
    /// How long a span may wait for its batch to fill.
    pub interval: Duration,
    /// How long one export request may take.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// A configuration with the default queue (2048 spans), batches of up to 512 spans, sent
    /// at least every second, each request within 10 s.
    pub fn new(endpoint: &str, protocol: Protocol, secure: bool, service_name: &str) -> Self {
        OtlpConfig {
            endpoint: endpoint.trim().to_owned(),
            protocol,
            secure,
            service_name: service_name.to_owned(),
            queue_size: 2048,
            batch_size: 512,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }

    /// The configuration of a Dapr `spec.tracing.otel`, or `None` when it names no endpoint.
    /// `protocol` is `grpc` (the default) or `http`.
    ///
    /// ```
    /// use bindery_otlp::{OtlpConfig, Protocol};
    /// let otel = bindery_runtime::Otel {
    ///     endpoint_address: Some("localhost:4318".into()),
    ///     protocol: Some("http".into()),
    ///     is_secure: Some(false),
    /// };
    /// let c = OtlpConfig::from_dapr(&otel, "orders").unwrap().unwrap();
    /// assert_eq!(c.protocol, Protocol::Http);
    /// assert_eq!(c.url(), "http://localhost:4318/v1/traces");
    /// ```
    pub fn from_dapr(
        otel: &bindery_runtime::Otel,
        service_name: &str,
    ) -> Result<Option<Self>, String> {
        let Some(endpoint) = otel
            .endpoint_address
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(None);
        };
        let protocol = match otel.protocol.as_deref().map(str::trim) {
            None | Some("") => Protocol::Grpc,
            Some(p) if p.eq_ignore_ascii_case("grpc") => Protocol::Grpc,
            Some(p) if p.eq_ignore_ascii_case("http") => Protocol::Http,
            Some(p) => {
                return Err(format!(
                    "spec.tracing.otel.protocol must be grpc or http, not {p:?}"
                ));
            }
        };
        Ok(Some(OtlpConfig::new(
            endpoint,
            protocol,
            otel.is_secure.unwrap_or(false),
            service_name,
        )))
    }

    /// The URL requests go to: for gRPC the server's root, for HTTP the traces path.
    pub fn url(&self) -> String {
        let (scheme, rest) = match self.endpoint.split_once("://") {
            Some((s, rest)) => (s.to_ascii_lowercase(), rest),
            None => (String::new(), self.endpoint.as_str()),
        };
        let secure = self.secure || scheme == "https";
        let scheme = if secure { "https" } else { "http" };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        match self.protocol {
            Protocol::Grpc => format!("{scheme}://{authority}"),
            Protocol::Http if path.is_empty() || path == "/" => {
                format!("{scheme}://{authority}/v1/traces")
            }
            Protocol::Http => format!("{scheme}://{authority}{path}"),
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// Sends spans to an OTLP collector from a bounded queue; see the crate documentation.
pub struct OtlpExporter {
    tx: mpsc::Sender<SpanData>,
    stats: Arc<Stats>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Start the export task (on the current tokio runtime). Nothing is dialled until the
    /// first batch; an endpoint that cannot be a URL is an error.
    pub fn start(config: &OtlpConfig) -> Result<Arc<Self>, String> {
        let transport = Transport::new(config)?;
        let (tx, rx) = mpsc::channel(config.queue_size.max(1));
        let stats = Arc::new(Stats::default());
        let stop = CancellationToken::new();
        let worker = Worker {
            rx,
            transport,
            batch_size: config.batch_size.max(1),
            interval: config.interval,
            resource: resource(&config.service_name),
            stats: Arc::clone(&stats),
            failing: false,
        };
        let task = tokio::spawn(worker.run(stop.clone()));
        Ok(Arc::new(OtlpExporter {
            tx,
            stats,
            stop,
            task: Mutex::new(Some(task)),
        }))
    }

    /// Send what is queued and stop, within `within`. Spans exported after this are dropped.
    /// Returns whether everything queued was handed to the collector in time.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut task) = task else {
            return true;
        };
        match tokio::time::timeout(within, &mut task).await {
            Ok(_) => true,
            Err(_) => {
                task.abort();
                false
            }
        }
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.stats.exported.load(Ordering::Relaxed)
    }

    /// Spans lost because an export request failed.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&self, span: SpanData) {
        if self.stop.is_cancelled() || self.tx.try_send(span).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

struct Worker {
    rx: mpsc::Receiver<SpanData>,
    transport: Transport,
    batch_size: usize,
    interval: Duration,
    resource: proto::Resource,
    stats: Arc<Stats>,
    failing: bool,
}

impl Worker {
    async fn run(mut self, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let room = self.batch_size - batch.len();
            tokio::select! {
                n = self.rx.recv_many(&mut batch, room) => {
                    if n == 0 {
                        break;
                    }
                    if batch.len() >= self.batch_size {
                        self.send(&mut batch).await;
                    }
                }
                _ = tick.tick() => {
                    if !batch.is_empty() {
                        self.send(&mut batch).await;
                    }
                }
                () = stop.cancelled() => break,
            }
        }
        // Shutdown: what is queued goes out too.
        self.rx.close();
        while let Ok(span) = self.rx.try_recv() {
            batch.push(span);
            if batch.len() >= self.batch_size {
                self.send(&mut batch).await;
            }
        }
        if !batch.is_empty() {
            self.send(&mut batch).await;
        }
    }

    async fn send(&mut self, batch: &mut Vec<SpanData>) {
        let n = batch.len() as u64;
        let request = proto::ExportTraceServiceRequest {
            resource_spans: vec![proto::ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![proto::ScopeSpans {
                    scope: Some(proto::InstrumentationScope {
                        name: "bindery".into(),
                        version: bindery_runtime::VERSION.into(),
                    }),
                    spans: batch.drain(..).map(span).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        match self.transport.send(request).await {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                self.stats
                    .exported
                    .fetch_add(n - rejected, Ordering::Relaxed);
                self.stats.failed.fetch_add(rejected, Ordering::Relaxed);
                if self.failing {
                    tracing::info!(spans = n, "span export works again");
                    self.failing = false;
                }
            }
            Err(error) => {
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                // Once per outage at warn, then quietly.
                if self.failing {
                    tracing::debug!(spans = n, error = %error, "span export failed");
                } else {
                    tracing::warn!(spans = n, error = %error, "span export failed; these spans are lost");
                    self.failing = true;
                }
            }
        }
    }
}

enum Transport {
    Grpc {
        channel: tonic::transport::Channel,
        timeout: Duration,
    },
    Http {
        client: reqwest::Client,
        url: String,
        timeout: Duration,
    },
}

impl Transport {
    fn new(config: &OtlpConfig) -> Result<Self, String> {
        let url = config.url();
        match config.protocol {
            Protocol::Grpc => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .map_err(|e| format!("invalid OTLP endpoint {url:?}: {e}"))?
                    .connect_timeout(config.timeout)
                    .tcp_nodelay(true);
                if url.starts_with("https://") {
                    endpoint = endpoint
                        .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                        .map_err(|e| format!("TLS to the OTLP endpoint {url:?}: {e}"))?;
                }
                Ok(Transport::Grpc {
                    channel: endpoint.connect_lazy(),
                    timeout: config.timeout,
                })
            }
            Protocol::Http => {
                reqwest::Url::parse(&url)
                    .map_err(|e| format!("invalid OTLP endpoint {url:?}: {e}"))?;
                // reqwest is built without a TLS provider of its own and would panic without
                // one; ring is the one bindery uses everywhere (a no-op when already set).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .connect_timeout(config.timeout)
                    .build()
                    .map_err(|e| format!("OTLP HTTP client: {e}"))?;
                Ok(Transport::Http {
                    client,
                    url,
                    timeout: config.timeout,
                })
            }
        }
    }

    /// Send one request; `Ok` carries the number of spans the collector said it rejected.
    async fn send(&mut self, request: proto::ExportTraceServiceRequest) -> Result<u64, String> {
        match self {
            Transport::Grpc { channel, timeout } => {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                let call = async {
                    grpc.ready()
                        .await
                        .map_err(|e| format!("OTLP collector not reachable: {e}"))?;
                    let codec = tonic_prost::ProstCodec::<
                        proto::ExportTraceServiceRequest,
                        proto::ExportTraceServiceResponse,
                    >::default();
                    grpc.unary(
                        tonic::Request::new(request),
                        http::uri::PathAndQuery::from_static(EXPORT_PATH),
                        codec,
                    )
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| format!("OTLP collector answered {:?}: {}", s.code(), s.message()))
                };
                let response = tokio::time::timeout(*timeout, call)
                    .await
                    .map_err(|_| format!("OTLP export took longer than {timeout:?}"))??;
                Ok(rejected(&response))
            }
            Transport::Http {
                client,
                url,
                timeout,
            } => {
                let response = client
                    .post(url.as_str())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .timeout(*timeout)
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("OTLP collector not reachable at {url}: {e}"))?;
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(format!("OTLP collector at {url} answered {status}"));
                }
                Ok(proto::ExportTraceServiceResponse::decode(body)
                    .map(|r| rejected(&r))
                    .unwrap_or(0))
            }
        }
    }
}

fn rejected(response: &proto::ExportTraceServiceResponse) -> u64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

fn resource(service_name: &str) -> proto::Resource {
    proto::Resource {
        attributes: vec![
            kv("service.name", AttrValue::Str(service_name.to_owned())),
            kv("telemetry.sdk.name", AttrValue::Str("bindery".into())),
            kv("telemetry.sdk.language", AttrValue::Str("rust".into())),
            kv(
                "telemetry.sdk.version",
                AttrValue::Str(bindery_runtime::VERSION.into()),
            ),
        ],
        dropped_attributes_count: 0,
    }
}

fn kv(key: &str, value: AttrValue) -> proto::KeyValue {
    let value = match value {
        AttrValue::Str(s) => Value::Str(s),
        AttrValue::Int(n) => Value::Int(n),
        AttrValue::Bool(b) => Value::Bool(b),
    };
    proto::KeyValue {
        key: key.to_owned(),
        value: Some(proto::AnyValue { value: Some(value) }),
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One span as OTLP has it.
fn span(s: SpanData) -> proto::Span {
    let (code, message) = match s.status {
        SpanStatus::Unset => (0, String::new()),
        SpanStatus::Ok => (1, String::new()),
        SpanStatus::Error(m) => (2, m),
    };
    proto::Span {
        trace_id: s.context.trace_id.to_be_bytes().to_vec(),
        span_id: s.context.span_id.to_be_bytes().to_vec(),
        trace_state: s.trace_state,
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        flags: u32::from(s.context.flags),
        name: s.name,
        kind: match s.kind {
            SpanKind::Client => proto::SPAN_KIND_CLIENT,
            SpanKind::Consumer => proto::SPAN_KIND_CONSUMER,
        },
        start_time_unix_nano: unix_nanos(s.start),
        end_time_unix_nano: unix_nanos(s.end),
        attributes: s.attributes.into_iter().map(|(k, v)| kv(k, v)).collect(),
        status: Some(proto::Status { message, code }),
    }
}

#[cfg(test)]
mod tests;
