use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::BindingError;

/// One call to an output binding: `{operation, data, metadata}` as the app sent it.
///
/// Over HTTP `data` is the compact JSON text of the request's `data` field (a JSON string keeps
/// its quotes); over gRPC it is the bytes the app sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeRequest {
    /// The operation, e.g. `create`. The runtime has checked it is one of
    /// [`OutputBinding::operations`].
    pub operation: String,
    /// The payload.
    pub data: Bytes,
    /// Request metadata.
    pub metadata: HashMap<String, String>,
}

/// What an output binding answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeResponse {
    /// The response payload, returned to the app as is.
    pub data: Bytes,
    /// Response metadata, returned over HTTP as `metadata.<key>` headers.
    pub metadata: HashMap<String, String>,
    /// The content type of `data`, when the backend said.
    pub content_type: Option<String>,
}

impl InvokeResponse {
    /// A response with `data` and no metadata.
    pub fn data(data: impl Into<Bytes>) -> Self {
        InvokeResponse {
            data: data.into(),
            ..Default::default()
        }
    }

    /// Add one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// An output binding: the runtime's way to call one external system.
///
/// ```
/// use bindery_core::{async_trait, BindingError, InvokeRequest, InvokeResponse, OutputBinding};
///
/// struct Echo;
///
/// #[async_trait]
/// impl OutputBinding for Echo {
///     fn operations(&self) -> &[&'static str] {
///         &["create"]
///     }
///     async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
///         Ok(Some(InvokeResponse::data(req.data)))
///     }
/// }
/// ```
#[async_trait]
pub trait OutputBinding: Send + Sync + 'static {
    /// The operations this binding supports, in the order Dapr lists them.
    fn operations(&self) -> &[&'static str];

    /// Perform one call. `Ok(None)` means "done, nothing to return" (HTTP 204);
    /// `Ok(Some(_))` returns data and metadata (HTTP 200, even with empty data).
    async fn invoke(&self, request: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError>;

    /// Release connections. Calls after `close` fail with [`crate::ErrorKind::Closed`].
    async fn close(&self) -> Result<(), BindingError> {
        Ok(())
    }
}

/// One event read from a source, on its way to the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputEvent {
    /// The raw payload, delivered unmodified.
    pub data: Bytes,
    /// Event metadata, delivered as HTTP headers or gRPC `metadata`.
    pub metadata: HashMap<String, String>,
    /// The payload's content type, when the source carries one.
    pub content_type: Option<String>,
}

impl InputEvent {
    /// An event with `data` and no metadata.
    pub fn new(data: impl Into<Bytes>) -> Self {
        InputEvent {
            data: data.into(),
            ..Default::default()
        }
    }

    /// Add one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// What became of an event. Exactly one place in the runtime decides it; the binding maps it to
/// its source's acknowledgement and never acknowledges on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The app accepted the event: acknowledge, commit or delete it at the source.
    Accepted,
    /// The app explicitly dropped it (`{"status":"DROP"}`): acknowledge it, it is not wanted.
    Dropped,
    /// The retries were exhausted and a dead-letter target took the event: acknowledge it.
    DeadLettered,
    /// Not accepted: leave the event for redelivery (nack, no commit, no delete), after
    /// `retry_after` when the app or the policy asked for a pause.
    Failed {
        /// Why, for logs.
        reason: String,
        /// How long to wait before the source offers it again, when known.
        retry_after: Option<Duration>,
    },
    /// The runtime is draining and takes no new events: leave this one for redelivery and stop
    /// reading.
    Closed,
}

impl Outcome {
    /// Whether the binding must acknowledge the event to its source.
    ///
    /// ```
    /// use bindery_core::Outcome;
    /// assert!(Outcome::Accepted.should_ack());
    /// assert!(Outcome::DeadLettered.should_ack());
    /// assert!(!Outcome::Closed.should_ack());
    /// assert!(!Outcome::Failed { reason: "500".into(), retry_after: None }.should_ack());
    /// ```
    pub fn should_ack(&self) -> bool {
        matches!(
            self,
            Outcome::Accepted | Outcome::Dropped | Outcome::DeadLettered
        )
    }

    /// A failure with `reason` and no hint when to retry.
    pub fn failed(reason: impl Into<String>) -> Self {
        Outcome::Failed {
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// The runtime side of an input binding: takes an event, returns its outcome.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Deliver `event` (with the runtime's policies) and report what became of it.
    async fn handle(&self, event: InputEvent) -> Outcome;
}

/// Where an input binding hands its events. Cloning is cheap; awaiting [`EventSink::deliver`] is
/// the backpressure: a binding that awaits each outcome never reads faster than the app accepts.
#[derive(Clone)]
pub struct EventSink {
    handler: Arc<dyn EventHandler>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

impl EventSink {
    /// A sink that hands events to `handler`.
    pub fn new(handler: Arc<dyn EventHandler>) -> Self {
        EventSink { handler }
    }

    /// Deliver one event and wait for its outcome.
    pub async fn deliver(&self, event: InputEvent) -> Outcome {
        self.handler.handle(event).await
    }
}

/// An input binding: reads from its source and hands each event to the sink.
#[async_trait]
pub trait InputBinding: Send + Sync + 'static {
    /// Read until `shutdown` is cancelled. Reconnect by itself when the source is lost, reporting
    /// it through [`crate::BindingHealth`]. Return `Ok(())` once stopped; an `Err` means the
    /// binding cannot go on at all.
    ///
    /// On cancellation: stop fetching, finish or hand back what is in flight, then return.
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError>;

    /// How many events wait at the source for this binding (queue depth, consumer lag), when
    /// the source can tell. The runtime's stall watchdog restarts a read loop that receives
    /// nothing while this is above zero. `None`: unknown (the default).
    async fn backlog(&self) -> Option<u64> {
        None
    }

    /// Release connections once reading has stopped.
    async fn close(&self) -> Result<(), BindingError> {
        Ok(())
    }
}
