//! Input delivery: an event from its binding to the app, and its outcome back to the binding.
//!
//! `binding read loop` → [`Delivery::handle`] (concurrency limit, app channel, fan-out) →
//! [`Outcome`] back to the binding, which acknowledges or leaves the event for redelivery.

use std::sync::Arc;
use std::time::Duration;

use bindery_core::{
    EventHandler, EventSink, InputBinding, InputEvent, InvokeRequest, Outcome, async_trait,
};

use crate::app::{AppChannel, AppReply, FanOut};
use crate::runtime::{Binding, Runtime};

const READ_RESTART_START: Duration = Duration::from_millis(250);
const READ_RESTART_MAX: Duration = Duration::from_secs(30);

/// Start `input`'s read loop; it is restarted with backoff whenever it fails, until the binding
/// is stopped.
pub(crate) fn spawn_read_loop(
    rt: &Arc<Runtime>,
    binding: &Arc<Binding>,
    input: Arc<dyn InputBinding>,
    app: Arc<dyn AppChannel>,
) {
    let delivery = Arc::new(Delivery {
        rt: Arc::clone(rt),
        binding: Arc::clone(binding),
        app,
    });
    let sink = EventSink::new(delivery);
    let b = Arc::clone(binding);
    rt.tasks.spawn(async move {
        let mut wait = READ_RESTART_START;
        loop {
            let result = input.read(sink.clone(), b.stop.child_token()).await;
            if b.stop.is_cancelled() {
                break;
            }
            match result {
                Ok(()) => {
                    tracing::warn!(binding = %b.def.name, "input binding stopped reading on its own; restarting it");
                }
                Err(e) => {
                    b.health.disconnected(e.to_string());
                    tracing::warn!(binding = %b.def.name, error = %e, retry_in = ?wait, "input binding failed; restarting it");
                }
            }
            tokio::select! {
                _ = b.stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(READ_RESTART_MAX);
        }
        tracing::debug!(binding = %b.def.name, "input binding stopped");
    });
}

/// The one place that decides what became of an event.
struct Delivery {
    rt: Arc<Runtime>,
    binding: Arc<Binding>,
    app: Arc<dyn AppChannel>,
}

#[async_trait]
impl EventHandler for Delivery {
    async fn handle(&self, event: InputEvent) -> Outcome {
        if self.rt.closing.is_cancelled() {
            return Outcome::Closed;
        }
        let _in_flight = self.rt.tasks.token();
        self.binding.health.event_received();
        let _permit = match &self.rt.app_limit {
            Some(limit) => match limit.acquire().await {
                Ok(p) => Some(p),
                Err(_) => return Outcome::Closed,
            },
            None => None,
        };
        let name = &self.binding.def.name;
        let reply = self
            .app
            .deliver(name, &self.binding.def.route, &event)
            .await;
        match reply {
            AppReply::Accepted { fan_out: None } => Outcome::Accepted,
            AppReply::Accepted {
                fan_out: Some(fan_out),
            } => match self.fan_out(fan_out).await {
                Ok(()) => Outcome::Accepted,
                Err(reason) => {
                    tracing::warn!(binding = %name, error = %reason, "app accepted the event but the output calls it asked for failed");
                    Outcome::failed(reason)
                }
            },
            AppReply::Drop => {
                tracing::info!(binding = %name, "app dropped the event");
                Outcome::Dropped
            }
            AppReply::Retry { reason, after } => {
                tracing::debug!(binding = %name, reason = %reason, "app asked for the event again later");
                Outcome::Failed {
                    reason,
                    retry_after: after,
                }
            }
            AppReply::Failed { reason } => {
                tracing::warn!(binding = %name, reason = %reason, "delivery to the app failed");
                Outcome::failed(reason)
            }
        }
    }
}

impl Delivery {
    /// Call the output bindings the app named, with operation `create`.
    async fn fan_out(&self, fan_out: FanOut) -> Result<(), String> {
        let request = |data| InvokeRequest {
            operation: "create".into(),
            data,
            metadata: Default::default(),
        };
        if fan_out.parallel {
            let calls = fan_out.to.iter().map(|to| {
                let req = request(fan_out.data.clone());
                async move { self.rt.invoke_output(to, req).await }
            });
            let errors: Vec<String> = futures::future::join_all(calls)
                .await
                .into_iter()
                .filter_map(|r| r.err().map(|e| e.message))
                .collect();
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        } else {
            for to in &fan_out.to {
                self.rt
                    .invoke_output(to, request(fan_out.data.clone()))
                    .await
                    .map_err(|e| e.message)?;
            }
            Ok(())
        }
    }
}
