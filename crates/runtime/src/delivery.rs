//! Input delivery: an event from its binding to the app, and its outcome back to the binding.
//!
//! `binding read loop` → [`Delivery::handle`] (concurrency limit, app channel, fan-out) →
//! [`Outcome`] back to the binding, which acknowledges or leaves the event for redelivery.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use bindery_core::{
    EventHandler, EventSink, InputBinding, InputEvent, InvokeRequest, Outcome, async_trait,
};

use crate::app::{AppChannel, AppReply, FanOut};
use crate::resiliency::{Attempt, Backoff, Code, Direction, Failure, Policy, Retry};
use crate::runtime::{Binding, Runtime, TapEvent};
use crate::trace::{self, Span, SpanKind, SpanStatus};

const READ_RESTART_START: Duration = Duration::from_millis(250);
const READ_RESTART_MAX: Duration = Duration::from_secs(30);

/// Start `input`'s read loop; it is restarted with backoff whenever it fails, until the binding
/// is stopped.
pub(crate) fn spawn_read_loop(
    rt: &Arc<Runtime>,
    binding: &Arc<Binding>,
    input: Arc<dyn InputBinding>,
    app: Arc<dyn AppChannel>,
    reading: CancellationToken,
) {
    let delivery = Arc::new(Delivery {
        rt: Arc::clone(rt),
        binding: Arc::clone(binding),
        app,
    });
    let sink = EventSink::new(delivery);
    let b = Arc::clone(binding);
    binding.tasks.spawn(async move {
        let mut wait = READ_RESTART_START;
        loop {
            let result = input.read(sink.clone(), reading.child_token()).await;
            if reading.is_cancelled() {
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
                _ = reading.cancelled() => break,
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

/// Why an attempt to deliver to the app did not succeed, for the inbound policy.
struct Refused {
    reason: String,
    code: Option<Code>,
    retry_after: Option<Duration>,
}

impl Attempt for Refused {
    fn code(&self) -> Option<Code> {
        self.code
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What the app did with the event, once it took a decision.
enum Taken {
    Accepted(Option<FanOut>),
    Dropped,
}

/// The inbound retry used when a dead-letter target is set and no resiliency policy retries:
/// three more attempts with exponential backoff before the event goes to the dead letter.
fn dead_letter_default() -> Policy {
    Policy {
        retry: Some(Retry {
            name: "bindery-dead-letter-default".into(),
            backoff: Backoff::Exponential {
                max_interval: Duration::from_secs(10),
            },
            max_retries: Some(3),
            matching: Default::default(),
        }),
        ..Policy::default()
    }
}

#[async_trait]
impl EventHandler for Delivery {
    async fn handle(&self, mut event: InputEvent) -> Outcome {
        // Only copy the event when someone taps this binding.
        let copy = (self.binding.tap.receiver_count() > 0).then(|| event.clone());
        let def = &self.binding.def;
        let metrics = self.rt.metrics.binding(&def.name);
        metrics.event_started();
        let started = std::time::Instant::now();
        // One span per event, continuing the trace the message carried; the app gets its id.
        let tracer = self.rt.tracer();
        let parent = trace::take_traceparent(&mut event.metadata);
        let span = tracer.start_with(parent, SpanKind::Consumer, || {
            format!("bindings/{}", def.name)
        });
        event
            .metadata
            .insert(trace::TRACEPARENT.to_owned(), span.context().traceparent());
        let trace_state = span
            .is_recording()
            .then(|| trace::get_ignore_case(&event.metadata, trace::TRACESTATE))
            .flatten()
            .map(str::to_owned);
        let attempts = std::sync::atomic::AtomicU64::new(0);
        let outcome = self.decide(event, &attempts).await;
        let tried = attempts.load(std::sync::atomic::Ordering::Relaxed);
        let retries = tried.saturating_sub(1);
        metrics.event_finished(outcome_name(&outcome), started.elapsed(), retries);
        if span.is_recording() {
            self.end_span(span, &outcome, tried, trace_state.as_deref());
        }
        if let Some(event) = copy {
            let _ = self.binding.tap.send(Arc::new(TapEvent {
                binding: self.binding.def.name.clone(),
                metadata: event.metadata,
                data: event.data,
                outcome: outcome_name(&outcome).to_owned(),
            }));
        }
        outcome
    }
}

impl Delivery {
    fn end_span(
        &self,
        mut span: Span,
        outcome: &Outcome,
        attempts: u64,
        trace_state: Option<&str>,
    ) {
        let def = &self.binding.def;
        span.set("dapr.binding.name", def.name.as_str());
        span.set("dapr.binding.type", def.type_name.as_str());
        span.set("dapr.binding.direction", "input");
        span.set("dapr.app.protocol", self.rt.options.app_protocol.as_str());
        span.set("dapr.binding.outcome", outcome_name(outcome));
        span.set(
            "dapr.binding.attempts",
            i64::try_from(attempts).unwrap_or(i64::MAX),
        );
        span.set("messaging.system", "bindings");
        span.set("messaging.destination.name", def.name.as_str());
        let status = match outcome {
            Outcome::Accepted | Outcome::Dropped | Outcome::DeadLettered => SpanStatus::Ok,
            Outcome::Failed { reason, .. } => SpanStatus::Error(reason.clone()),
            Outcome::Closed => SpanStatus::Unset,
        };
        self.rt.tracer().end(span, status, trace_state);
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Accepted => "accepted",
        Outcome::Dropped => "dropped",
        Outcome::DeadLettered => "dead-lettered",
        Outcome::Failed { .. } => "failed",
        Outcome::Closed => "closed",
    }
}

impl Delivery {
    /// The one place that decides what became of an event.
    async fn decide(&self, event: InputEvent, attempts: &std::sync::atomic::AtomicU64) -> Outcome {
        if self.rt.closing.is_cancelled() || self.binding.stop.is_cancelled() {
            return Outcome::Closed;
        }
        let _in_flight = self.binding.tasks.token();
        self.binding.health.event_received();
        let name = &self.binding.def.name;
        let dead_letter = self
            .binding
            .def
            .metadata
            .get(DEAD_LETTER_KEY)
            .filter(|d| !d.is_empty());
        let policy = match (self.rt.policy(name, Direction::Inbound), dead_letter) {
            (Some(p), _) if p.retry.is_some() => Some(p),
            (p, Some(_)) => Some(Arc::new(Policy {
                timeout: p.as_ref().and_then(|p| p.timeout),
                breaker: p.as_ref().and_then(|p| p.breaker.clone()),
                ..dead_letter_default()
            })),
            (p, None) => p,
        };
        let attempt = || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.attempt(&event)
        };
        let result = match &policy {
            None => attempt()
                .await
                .map_err(|error| Failure::Failed { error, attempts: 1 }),
            Some(p) => p.run(&self.binding.stop, attempt).await,
        };
        match result {
            Ok(Taken::Accepted(None)) => Outcome::Accepted,
            Ok(Taken::Accepted(Some(fan_out))) => match self
                .fan_out(fan_out, event.metadata.get(trace::TRACEPARENT))
                .await
            {
                Ok(()) => Outcome::Accepted,
                Err(reason) => {
                    tracing::warn!(binding = %name, error = %reason, "app accepted the event but the output calls it asked for failed");
                    Outcome::failed(reason)
                }
            },
            Ok(Taken::Dropped) => {
                // The app's own choice, per event: not worth more than a debug line.
                tracing::debug!(binding = %name, "app dropped the event");
                Outcome::Dropped
            }
            Err(Failure::Cancelled) => Outcome::Closed,
            Err(failure) => {
                let attempts = failure.attempts();
                let retry_after = match &failure {
                    Failure::Failed { error, .. } => error.retry_after,
                    _ => None,
                };
                let reason = failure.to_string();
                tracing::warn!(binding = %name, attempts, reason = %reason, "delivery to the app failed");
                match dead_letter {
                    Some(target) => self.dead_letter(target, event, &reason, attempts).await,
                    None => Outcome::Failed {
                        reason,
                        retry_after,
                    },
                }
            }
        }
    }
}

/// Component metadata naming the output binding that takes events whose retries ran out.
pub(crate) const DEAD_LETTER_KEY: &str = "deadLetterBinding";

impl Delivery {
    /// One call to the app, under the concurrency limit.
    async fn attempt(&self, event: &InputEvent) -> Result<Taken, Refused> {
        let _permit = match &self.rt.app_limit {
            Some(limit) => match limit.acquire().await {
                Ok(p) => Some(p),
                Err(_) => {
                    return Err(Refused {
                        reason: "bindery is shutting down".into(),
                        code: None,
                        retry_after: None,
                    });
                }
            },
            None => None,
        };
        let def = &self.binding.def;
        match self.app.deliver(&def.name, &def.route, event).await {
            AppReply::Accepted { fan_out } => Ok(Taken::Accepted(fan_out)),
            AppReply::Drop => Ok(Taken::Dropped),
            AppReply::Retry { reason, after } => Err(Refused {
                reason,
                code: None,
                retry_after: after,
            }),
            AppReply::Failed { reason, code } => Err(Refused {
                reason,
                code,
                retry_after: None,
            }),
        }
    }

    /// Hand an event whose retries ran out to the dead-letter binding. Only if it took it is the
    /// event acknowledged at its source.
    async fn dead_letter(
        &self,
        target: &str,
        event: InputEvent,
        reason: &str,
        attempts: u64,
    ) -> Outcome {
        let name = &self.binding.def.name;
        let mut metadata = event.metadata;
        metadata.insert("deadLetter.binding".into(), name.clone());
        metadata.insert("deadLetter.reason".into(), reason.to_owned());
        metadata.insert("deadLetter.attempts".into(), attempts.to_string());
        let request = InvokeRequest {
            operation: "create".into(),
            data: event.data,
            metadata,
        };
        match self.rt.invoke_output(target, request).await {
            Ok(_) => {
                tracing::warn!(binding = %name, dead_letter = %target, attempts, reason = %reason, "event dead-lettered");
                Outcome::DeadLettered
            }
            Err(e) => {
                tracing::error!(binding = %name, dead_letter = %target, error = %e, "the dead-letter binding did not take the event; leaving it at its source");
                Outcome::failed(format!("{reason}; dead letter failed: {}", e.message))
            }
        }
    }

    /// Call the output bindings the app named, with operation `create`.
    /// Each call continues the event's trace (`traceparent`).
    async fn fan_out(&self, fan_out: FanOut, traceparent: Option<&String>) -> Result<(), String> {
        let request = |data| InvokeRequest {
            operation: "create".into(),
            data,
            metadata: traceparent
                .map(|t| [(trace::TRACEPARENT.to_owned(), t.clone())].into())
                .unwrap_or_default(),
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
