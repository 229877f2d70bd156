//! The app channel: how the runtime reaches the app. The HTTP and gRPC implementations live in
//! the API crates; the runtime only sees this trait.

use std::time::Duration;

use async_trait::async_trait;
use bindery_core::InputEvent;
use bytes::Bytes;

/// Output calls the app asked for in its answer to an event (gRPC `BindingEventResponse.to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut {
    /// Output bindings to call with operation `create`.
    pub to: Vec<String>,
    /// The payload for each.
    pub data: Bytes,
    /// Call them all at once rather than one after another.
    pub parallel: bool,
}

/// The app's answer to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppReply {
    /// 2xx (HTTP) or OK (gRPC): the app took the event.
    Accepted {
        /// Output calls to make on the app's behalf.
        fan_out: Option<FanOut>,
    },
    /// The app explicitly does not want the event (`{"status":"DROP"}`).
    Drop,
    /// The app asked for the event again later (`{"status":"RETRY"}`, 429/503 with
    /// `Retry-After`).
    Retry {
        /// Why.
        reason: String,
        /// When, if the app said.
        after: Option<Duration>,
    },
    /// Anything else: a non-2xx status, a non-OK gRPC status, a timeout or a transport error.
    Failed {
        /// Why, naming the status and what the app said.
        reason: String,
        /// The HTTP status or gRPC code, for resiliency `matching` (`None`: transport error).
        code: Option<crate::resiliency::Code>,
    },
}

/// How the runtime reaches the app.
#[async_trait]
pub trait AppChannel: Send + Sync + 'static {
    /// Whether the app subscribes to `binding`, whose route is `route`. `Err` means the app
    /// could not be asked (transport error); the runtime retries until its probe deadline.
    async fn subscribed(&self, binding: &str, route: &str) -> Result<bool, String>;

    /// Deliver one event to the app and report its answer.
    async fn deliver(&self, binding: &str, route: &str, event: &InputEvent) -> AppReply;

    /// Ask the app whether it is healthy (`--enable-app-health-check`); HTTP apps at `path`.
    /// `Err` says why not.
    async fn healthy(&self, path: &str) -> Result<(), String> {
        let _ = path;
        Ok(())
    }
}
