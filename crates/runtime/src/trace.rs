//! Tracing: W3C trace context, Dapr's sampling rule, and the spans bindery records.
//!
//! Every output call and every delivery to the app is one span. Its parent is the
//! `traceparent` that came with the call or the event (when valid), else it starts a new trace.
//! The `traceparent` bindery passes on (to the binding for an output call, to the app for an
//! event) names bindery's span as the parent, so the trace continues through bindery;
//! `tracestate` and `baggage` pass through unchanged.
//!
//! Sampling follows Dapr's `spec.tracing.samplingRate`: `0` records nothing, `1` everything, a
//! fraction that share of new traces (decided on the trace id, so every hop of a trace decides
//! alike); a parent's sampled flag is followed. The flag bindery passes on is its decision.
//! Spans are recorded only when they are sampled and an exporter is set; the ids are made and
//! passed on either way.
//!
//! ```
//! use bindery_runtime::trace::{SpanKind, TraceContext, Tracer};
//!
//! let tracer = Tracer::new(1.0, None);
//! let parent = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
//! let span = tracer.start(parent, "bindings/orders", SpanKind::Client);
//! let passed_on = span.context().traceparent();
//! assert!(passed_on.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
//! assert!(!passed_on.contains("b7ad6b7169203331"));
//! assert!(passed_on.ends_with("-01"));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

/// The metadata key of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The metadata key of the vendor trace state, passed through unchanged.
pub const TRACESTATE: &str = "tracestate";
/// The metadata key of W3C baggage, passed through unchanged.
pub const BAGGAGE: &str = "baggage";

/// Dapr's sampling rate when the configuration names none: one trace in 10,000.
pub const DEFAULT_SAMPLING_RATE: f64 = 0.0001;

/// A position in a trace: the trace, the span, and whether the trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The 16-byte trace id (never zero).
    pub trace_id: u128,
    /// The 8-byte span id (never zero).
    pub span_id: u64,
    /// The trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// Parse a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`). Later versions are read by
    /// their first four fields, as the specification asks; version `ff`, all-zero ids and
    /// anything malformed are `None`.
    ///
    /// ```
    /// use bindery_runtime::trace::TraceContext;
    /// let c = TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
    /// assert!(c.sampled());
    /// assert_eq!(c.span_id, 0xb7ad6b7169203331);
    /// assert!(TraceContext::parse("00-00000000000000000000000000000000-b7ad6b7169203331-01").is_none());
    /// assert!(TraceContext::parse("garbage").is_none());
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let b = value.as_bytes();
        if b.len() < 55 || !b.is_ascii() {
            return None;
        }
        let (version, rest) = value.split_at(2);
        let version = hex_u8(version)?;
        if version == 0xff || (version == 0 && b.len() != 55) {
            return None;
        }
        // A later version may append fields after a dash.
        if b.len() > 55 && b[55] != b'-' {
            return None;
        }
        let rest = &rest[..53];
        let mut parts = rest.split('-');
        let (Some(""), Some(trace), Some(span), Some(flags), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id = hex_u128(trace)?;
        let span_id = hex_u64(span)?;
        let flags = hex_u8(flags)?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The context in gRPC's binary `grpc-trace-bin` format (OpenCensus): version 0, then field
    /// 0 the trace id, field 1 the span id, field 2 the options byte.
    pub fn from_grpc_trace_bin(bytes: &[u8]) -> Option<Self> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != 0 {
            return None;
        }
        let (mut trace_id, mut span_id, mut flags) = (0u128, 0u64, 0u8);
        while let Some((&field, tail)) = rest.split_first() {
            match field {
                0 => {
                    let id: [u8; 16] = tail.get(..16)?.try_into().ok()?;
                    trace_id = u128::from_be_bytes(id);
                    rest = &tail[16..];
                }
                1 => {
                    let id: [u8; 8] = tail.get(..8)?.try_into().ok()?;
                    span_id = u64::from_be_bytes(id);
                    rest = &tail[8..];
                }
                2 => {
                    flags = *tail.first()?;
                    rest = &tail[1..];
                }
                _ => break,
            }
        }
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Whether the trace is sampled.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The `traceparent` header value, version `00`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

fn hex_u8(s: &str) -> Option<u8> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_u64(s: &str) -> Option<u64> {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex_u128(s: &str) -> Option<u128> {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

/// Take the trace context out of `metadata`: every `traceparent` key, whatever its case, is
/// removed, and the first valid one is returned.
pub fn take_traceparent(metadata: &mut HashMap<String, String>) -> Option<TraceContext> {
    if let Some(v) = metadata.remove(TRACEPARENT) {
        let parsed = TraceContext::parse(&v);
        if !metadata.keys().any(|k| k.eq_ignore_ascii_case(TRACEPARENT)) {
            return parsed;
        }
        let others = take_case_variants(metadata);
        return parsed.or(others);
    }
    take_case_variants(metadata)
}

fn take_case_variants(metadata: &mut HashMap<String, String>) -> Option<TraceContext> {
    let keys: Vec<String> = metadata
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(TRACEPARENT))
        .cloned()
        .collect();
    let mut found = None;
    for k in keys {
        if let Some(v) = metadata.remove(&k) {
            found = found.or_else(|| TraceContext::parse(&v));
        }
    }
    found
}

/// What a span stands for, as OpenTelemetry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// A call bindery makes (an output call to a backend).
    Client,
    /// A message bindery consumed and hands to the app (an input event).
    Consumer,
}

/// A span attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
    /// Yes or no.
    Bool(bool),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_owned())
    }
}

impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}

impl From<i64> for AttrValue {
    fn from(n: i64) -> Self {
        AttrValue::Int(n)
    }
}

impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}

/// How a span ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// Nothing to say.
    Unset,
    /// It succeeded.
    Ok,
    /// It failed, and why.
    Error(String),
}

/// A finished span, as handed to a [`SpanExporter`].
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    /// The span's own context.
    pub context: TraceContext,
    /// The parent span, when it continues a trace.
    pub parent_span_id: Option<u64>,
    /// The `tracestate` that came with the parent.
    pub trace_state: String,
    /// The span name, e.g. `bindings/orders`.
    pub name: String,
    /// What it stands for.
    pub kind: SpanKind,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes.
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// How it ended.
    pub status: SpanStatus,
}

/// Where finished spans go. `export` is called on the request path: it must never block (an
/// exporter queues the span, or drops and counts it).
pub trait SpanExporter: Send + Sync + 'static {
    /// Take one finished span.
    fn export(&self, span: SpanData);

    /// Spans dropped because the exporter could not keep up.
    fn dropped(&self) -> u64 {
        0
    }
}

/// Dapr's sampler: a ratio on the trace id for new traces, the parent's decision otherwise,
/// nothing at all at rate 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    rate: f64,
}

impl Sampler {
    /// A sampler for `rate` (clamped to 0..=1; NaN is 0).
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        Sampler { rate }
    }

    /// The rate of a configuration's `samplingRate` text: a number, or Dapr's default when it
    /// is absent or not a number.
    ///
    /// ```
    /// use bindery_runtime::trace::Sampler;
    /// assert_eq!(Sampler::parse_rate(Some("1")), Ok(1.0));
    /// assert_eq!(Sampler::parse_rate(Some("0")), Ok(0.0));
    /// assert_eq!(Sampler::parse_rate(None), Ok(0.0001));
    /// assert!(Sampler::parse_rate(Some("often")).is_err());
    /// ```
    pub fn parse_rate(text: Option<&str>) -> Result<f64, String> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(DEFAULT_SAMPLING_RATE),
            Some(t) => t
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite())
                .ok_or_else(|| format!("samplingRate {t:?} is not a number")),
        }
    }

    /// The rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether a span of `trace_id` under `parent` is sampled.
    pub fn sample(&self, parent: Option<&TraceContext>, trace_id: u128) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        if let Some(p) = parent {
            return p.sampled();
        }
        if self.rate >= 1.0 {
            return true;
        }
        // OpenTelemetry's TraceIdRatioBased: the low 8 bytes of the trace id, shifted to 63
        // bits, against the rate's share of 2^63.
        let bound = (self.rate * (1u64 << 63) as f64) as u64;
        ((trace_id as u64) >> 1) < bound
    }
}

/// Makes spans: decides sampling, and hands sampled spans to the exporter.
pub struct Tracer {
    sampler: Sampler,
    exporter: Option<Arc<dyn SpanExporter>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("sampler", &self.sampler)
            .field("exporter", &self.exporter.is_some())
            .finish()
    }
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer::new(DEFAULT_SAMPLING_RATE, None)
    }
}

/// The tracer of a runtime that was given none: Dapr's default rate, no exporter.
pub(crate) static DEFAULT_TRACER: LazyLock<Tracer> = LazyLock::new(Tracer::default);

impl Tracer {
    /// A tracer sampling at `rate`, sending sampled spans to `exporter`.
    pub fn new(rate: f64, exporter: Option<Arc<dyn SpanExporter>>) -> Self {
        Tracer {
            sampler: Sampler::new(rate),
            exporter,
        }
    }

    /// The sampler.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Spans the exporter dropped because it could not keep up.
    pub fn dropped(&self) -> u64 {
        self.exporter.as_ref().map_or(0, |e| e.dropped())
    }

    /// Start a span named `name` under `parent` (or a new trace).
    pub fn start(&self, parent: Option<TraceContext>, name: &str, kind: SpanKind) -> Span {
        self.start_with(parent, kind, || name.to_owned())
    }

    /// [`Tracer::start`], making the name only when the span is recorded.
    pub fn start_with(
        &self,
        parent: Option<TraceContext>,
        kind: SpanKind,
        name: impl FnOnce() -> String,
    ) -> Span {
        let trace_id = match &parent {
            Some(p) => p.trace_id,
            None => nonzero_u128(),
        };
        let sampled = self.sampler.sample(parent.as_ref(), trace_id);
        let flags = match &parent {
            Some(p) => (p.flags & !1) | u8::from(sampled),
            None => u8::from(sampled),
        };
        let context = TraceContext {
            trace_id,
            span_id: nonzero_u64(),
            flags,
        };
        let recording = sampled && self.exporter.is_some();
        Span {
            context,
            recording: recording.then(|| Recording {
                parent_span_id: parent.map(|p| p.span_id),
                name: name(),
                kind,
                start: SystemTime::now(),
                attributes: Vec::new(),
            }),
        }
    }

    /// Finish `span` with `status` and export it when it is recorded.
    pub fn end(&self, span: Span, status: SpanStatus, trace_state: Option<&str>) {
        let (Some(rec), Some(exporter)) = (span.recording, &self.exporter) else {
            return;
        };
        exporter.export(SpanData {
            context: span.context,
            parent_span_id: rec.parent_span_id,
            trace_state: trace_state.unwrap_or_default().to_owned(),
            name: rec.name,
            kind: rec.kind,
            start: rec.start,
            end: SystemTime::now(),
            attributes: rec.attributes,
            status,
        });
    }
}

fn nonzero_u128() -> u128 {
    loop {
        let v = rand::random::<u128>();
        if v != 0 {
            return v;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let v = rand::random::<u64>();
        if v != 0 {
            return v;
        }
    }
}

/// A span in progress. Its context always exists (it is passed on); what is recorded about it
/// exists only when it is sampled and exported.
#[derive(Debug)]
pub struct Span {
    context: TraceContext,
    recording: Option<Recording>,
}

#[derive(Debug)]
struct Recording {
    parent_span_id: Option<u64>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<(&'static str, AttrValue)>,
}

impl Span {
    /// The span's context, to pass on.
    pub fn context(&self) -> TraceContext {
        self.context
    }

    /// Whether attributes are kept; callers skip building them otherwise.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Set an attribute (ignored unless recording).
    pub fn set(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        if let Some(rec) = &mut self.recording {
            rec.attributes.push((key, value.into()));
        }
    }
}

/// The first value of `key` in `metadata`, whatever its case.
pub fn get_ignore_case<'a>(metadata: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    metadata
        .get(key)
        .or_else(|| {
            metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<SpanData>>);

    impl SpanExporter for Collect {
        fn export(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
    }

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn traceparent_round_trips_and_rejects_junk() {
        let c = TraceContext::parse(PARENT).unwrap();
        assert_eq!(c.traceparent(), PARENT);
        assert_eq!(c.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0é",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad:?}");
        }
        // A later version may carry more fields.
        let later =
            TraceContext::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-what")
                .unwrap();
        assert!(!later.sampled());
    }

    #[test]
    fn grpc_trace_bin_decodes() {
        let mut b = vec![0u8, 0];
        b.extend_from_slice(&0x0af7651916cd43dd8448eb211c80319cu128.to_be_bytes());
        b.push(1);
        b.extend_from_slice(&0xb7ad6b7169203331u64.to_be_bytes());
        b.extend_from_slice(&[2, 1]);
        assert_eq!(
            TraceContext::from_grpc_trace_bin(&b),
            TraceContext::parse(PARENT)
        );
        assert!(TraceContext::from_grpc_trace_bin(&b[..10]).is_none());
        assert!(TraceContext::from_grpc_trace_bin(&[]).is_none());
    }

    #[test]
    fn take_removes_every_case_variant() {
        let mut md = HashMap::from([
            ("TraceParent".to_owned(), "junk".to_owned()),
            ("traceparent".to_owned(), PARENT.to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(take_traceparent(&mut md), TraceContext::parse(PARENT));
        assert_eq!(md.len(), 1);
        let mut md = HashMap::from([("Traceparent".to_owned(), PARENT.to_owned())]);
        assert_eq!(take_traceparent(&mut md), TraceContext::parse(PARENT));
        assert!(md.is_empty());
        assert_eq!(take_traceparent(&mut md), None);
    }

    #[test]
    fn sampling_follows_rate_and_parent() {
        let parent_on = TraceContext::parse(PARENT).unwrap();
        let parent_off = TraceContext {
            flags: 0,
            ..parent_on
        };
        let all = Sampler::new(1.0);
        let none = Sampler::new(0.0);
        let half = Sampler::new(0.5);
        assert!(all.sample(None, 7));
        assert!(!all.sample(Some(&parent_off), 7));
        assert!(!none.sample(Some(&parent_on), 7));
        assert!(!none.sample(None, 7));
        assert!(half.sample(Some(&parent_on), u128::MAX));
        // The decision depends on the trace id only: low ids in, high ids out.
        assert!(half.sample(None, 1));
        assert!(!half.sample(None, u128::from(u64::MAX)));
        let share = (0..10_000u128)
            .filter(|i| {
                half.sample(
                    None,
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
                )
            })
            .count();
        assert!((4_000..6_000).contains(&share), "{share}");
        assert_eq!(Sampler::new(f64::NAN).rate(), 0.0);
        assert_eq!(Sampler::new(7.0).rate(), 1.0);
    }

    #[test]
    fn spans_continue_the_parent_and_export_when_sampled() {
        let collect = Arc::new(Collect::default());
        let tracer = Tracer::new(1.0, Some(collect.clone() as Arc<dyn SpanExporter>));
        let parent = TraceContext::parse(PARENT).unwrap();
        let mut span = tracer.start(Some(parent), "bindings/b", SpanKind::Client);
        span.set("dapr.binding.name", "b");
        let ctx = span.context();
        assert_eq!(ctx.trace_id, parent.trace_id);
        assert_ne!(ctx.span_id, parent.span_id);
        assert!(ctx.sampled());
        tracer.end(span, SpanStatus::Ok, Some("congo=t61"));
        let spans = collect.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].parent_span_id, Some(parent.span_id));
        assert_eq!(spans[0].trace_state, "congo=t61");
        assert_eq!(spans[0].attributes, vec![("dapr.binding.name", "b".into())]);

        // Not sampled: the context is passed on with the flag off, nothing is exported.
        let off = TraceContext { flags: 0, ..parent };
        let span = tracer.start(Some(off), "bindings/b", SpanKind::Client);
        assert!(!span.is_recording());
        assert!(span.context().traceparent().ends_with("-00"));
        tracer.end(span, SpanStatus::Ok, None);
        assert_eq!(collect.0.lock().unwrap().len(), 1);

        // Rate 0: not even a sampled parent is recorded.
        let zero = Tracer::new(0.0, Some(collect.clone() as Arc<dyn SpanExporter>));
        let span = zero.start(Some(parent), "bindings/b", SpanKind::Consumer);
        assert!(!span.context().sampled());
        zero.end(span, SpanStatus::Ok, None);
        assert_eq!(collect.0.lock().unwrap().len(), 1);

        // A new trace.
        let root = tracer.start(None, "bindings/b", SpanKind::Consumer);
        assert!(root.context().sampled());
        assert_ne!(root.context().trace_id, parent.trace_id);
        tracer.end(root, SpanStatus::Error("x".into()), None);
        assert_eq!(collect.0.lock().unwrap()[1].parent_span_id, None);
    }
}
