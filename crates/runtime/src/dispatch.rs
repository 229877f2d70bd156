//! Output dispatch: one call from either API to its binding. The HTTP and gRPC APIs share
//! everything after decoding.

use std::collections::HashMap;

use std::sync::Arc;

use bindery_core::{BindingError, ErrorKind, InvokeRequest, InvokeResponse};
use tokio_util::sync::CancellationToken;

use crate::resiliency::{Attempt, Code, Direction, Failure};

use crate::runtime::Runtime;
use crate::trace::{self, SpanKind, SpanStatus};

/// Why an output call failed, in Dapr's words, with any response metadata the binding returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputError {
    /// `error invoking output binding <name>: <reason>`.
    pub message: String,
    /// Response metadata returned together with the error (e.g. the http binding's
    /// `statusCode`).
    pub metadata: HashMap<String, String>,
    /// The binding's error kind, when the binding itself failed.
    pub kind: Option<ErrorKind>,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OutputError {}

impl OutputError {
    fn new(name: &str, reason: impl std::fmt::Display) -> Self {
        OutputError {
            message: format!("error invoking output binding {name}: {reason}"),
            metadata: HashMap::new(),
            kind: None,
        }
    }
}

/// Who asked for an output call, for its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCaller {
    /// The Dapr HTTP API.
    Http,
    /// The Dapr gRPC API.
    Grpc,
    /// bindery itself: a dead letter, or the output calls an app asked for in its answer.
    Runtime,
}

impl OutputCaller {
    fn as_str(self) -> &'static str {
        match self {
            OutputCaller::Http => "http",
            OutputCaller::Grpc => "grpc",
            OutputCaller::Runtime => "runtime",
        }
    }
}

impl Runtime {
    /// Call output binding `name`: check the operation, then invoke the binding.
    ///
    /// `Ok(None)` is "done, nothing to return" (HTTP 204).
    pub async fn invoke_output(
        &self,
        name: &str,
        request: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, OutputError> {
        self.invoke_output_from(OutputCaller::Runtime, name, request)
            .await
    }

    /// [`Runtime::invoke_output`] for `caller`, as one span: a child of the request's
    /// `traceparent` metadata when it holds a valid one, else a new trace. The binding gets
    /// the span's own `traceparent`; `tracestate` and `baggage` pass through unchanged.
    pub async fn invoke_output_from(
        &self,
        caller: OutputCaller,
        name: &str,
        mut request: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, OutputError> {
        let tracer = self.tracer();
        let parent = trace::take_traceparent(&mut request.metadata);
        let mut span = tracer.start_with(parent, SpanKind::Client, || format!("bindings/{name}"));
        request
            .metadata
            .insert(trace::TRACEPARENT.to_owned(), span.context().traceparent());
        let trace_state = span
            .is_recording()
            .then(|| trace::get_ignore_case(&request.metadata, trace::TRACESTATE))
            .flatten()
            .map(str::to_owned);
        if span.is_recording() {
            span.set("dapr.api", caller.as_str());
            span.set("dapr.binding.name", name);
            span.set("dapr.binding.direction", "output");
            span.set("dapr.binding.operation", request.operation.as_str());
            if let Some(b) = self.binding(name) {
                span.set("dapr.binding.type", b.def.type_name.as_str());
            }
            span.set("db.system", "bindings");
            span.set("db.name", name);
        }
        let result = self.dispatch_output(name, request).await;
        if span.is_recording() {
            let status = match &result {
                Ok(_) => {
                    span.set("dapr.binding.outcome", "success");
                    SpanStatus::Ok
                }
                Err(e) => {
                    span.set("dapr.binding.outcome", "error");
                    if let Some(kind) = e.kind {
                        span.set("error.type", kind.as_str());
                    }
                    SpanStatus::Error(e.message.clone())
                }
            };
            tracer.end(span, status, trace_state.as_deref());
        }
        result
    }

    async fn dispatch_output(
        &self,
        name: &str,
        request: InvokeRequest,
    ) -> Result<Option<InvokeResponse>, OutputError> {
        if request.operation.is_empty() {
            return Err(OutputError::new(
                name,
                "operation field is missing from request",
            ));
        }
        let binding = self
            .binding(name)
            .filter(|b| b.def.sides.output)
            .ok_or_else(|| {
                OutputError::new(name, format_args!("couldn't find output binding {name}"))
            })?;
        let Some(output) = binding.output() else {
            let why = binding
                .health
                .snapshot()
                .last_error
                .unwrap_or_else(|| "not connected yet".into());
            return Err(OutputError::new(
                name,
                format_args!("output binding {name} is not ready: {why}"),
            ));
        };
        let ops = output.operations();
        // The binding's own `&'static str` names the operation for the metrics below, so the
        // request's is not copied.
        let Some(&operation) = ops.iter().find(|op| **op == request.operation) else {
            return Err(OutputError::new(
                name,
                format_args!(
                    "binding {name} does not support operation {}. supported operations:{}",
                    request.operation,
                    ops.join(" ")
                ),
            ));
        };
        let started = std::time::Instant::now();
        let result = match self.policy(name, Direction::Outbound) {
            None => output
                .invoke(request)
                .await
                .map_err(|error| Failure::Failed { error, attempts: 1 }),
            Some(policy) => {
                let never = CancellationToken::new();
                policy
                    .run(&never, || {
                        let req = request.clone();
                        let out = Arc::clone(&output);
                        async move { out.invoke(req).await.map_err(Outbound) }
                    })
                    .await
                    .map_err(|f| match f {
                        Failure::Failed { error, attempts } => Failure::Failed {
                            error: error.0,
                            attempts,
                        },
                        Failure::TimedOut { after, attempts } => {
                            Failure::TimedOut { after, attempts }
                        }
                        Failure::BreakerOpen { message, attempts } => {
                            Failure::BreakerOpen { message, attempts }
                        }
                        Failure::Cancelled => Failure::Cancelled,
                    })
            }
        };
        self.metrics
            .binding(name)
            .output_call(operation, result.is_ok(), started.elapsed());
        result.map_err(|failure| match failure {
            Failure::Failed { mut error, .. } => {
                let metadata = error.take_metadata();
                tracing::debug!(binding = %name, error = %error, "output binding call failed");
                OutputError {
                    metadata,
                    kind: Some(error.kind()),
                    ..OutputError::new(name, &error)
                }
            }
            Failure::TimedOut { after, .. } => OutputError {
                kind: Some(ErrorKind::Timeout),
                ..OutputError::new(name, format_args!("timed out after {after:?}"))
            },
            other => OutputError::new(name, other),
        })
    }
}

/// A binding error seen by a retry policy.
struct Outbound(BindingError);

impl Attempt for Outbound {
    fn code(&self) -> Option<Code> {
        // The http binding reports the status it got; `matching.httpStatusCodes` applies to it.
        self.0
            .metadata()
            .get("statusCode")
            .and_then(|s| s.parse().ok())
            .map(Code::Http)
    }

    fn permanent(&self) -> bool {
        // Retrying a request the binding refused, or a thing that is not there, cannot help.
        matches!(
            self.0.kind(),
            ErrorKind::InvalidRequest
                | ErrorKind::InvalidConfig
                | ErrorKind::Unsupported
                | ErrorKind::NotFound
                | ErrorKind::Closed
        )
    }
}
