//! The input side: consume the queue with manual acknowledgements, a bounded window of
//! unacknowledged messages handled concurrently, and backoff before handing a failed message
//! back.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, EventSink, InputBinding, InputEvent, Outcome,
    async_trait,
};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::RabbitConfig;
use crate::link::{Link, unavailable};

/// Event metadata key holding the AMQP message id.
pub const MESSAGE_ID_KEY: &str = "messageID";
/// Event metadata key holding the AMQP correlation id.
pub const CORRELATION_ID_KEY: &str = "correlationID";
/// Event metadata key holding the AMQP content type.
pub const CONTENT_TYPE_KEY: &str = "contentType";

/// How many failing messages the binding remembers to grow their backoff across redeliveries.
const FAILURE_MEMORY: usize = 10_000;

/// A running `bindings.rabbitmq` input.
pub(crate) struct RabbitInput {
    pub(crate) link: Arc<Link>,
    pub(crate) health: BindingHealth,
    pub(crate) closed: CancellationToken,
    pub(crate) failures: Arc<FailureMemory>,
}

/// Why one consuming session ended.
enum SessionEnd {
    /// Shutdown or the runtime is draining: stop reading.
    Stop,
}

#[async_trait]
impl InputBinding for RabbitInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        // `stop` fires on shutdown, on `close`, or when the runtime answers `Closed`.
        let stop = shutdown.child_token();
        let _unlink = {
            let stop = stop.clone();
            let closed = self.closed.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = closed.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        };
        let _stop_guard = stop.clone().drop_guard();
        let wait = self.link.config.reconnect_wait;
        let mut reconnect = Backoff::new(wait, wait);
        loop {
            match self.session(&sink, &stop).await {
                Ok(SessionEnd::Stop) => return Ok(()),
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    let delay = reconnect.next_delay();
                    warn!(binding = %self.link.name, error = %e, retry_in = ?delay, "RabbitMQ consumer lost its connection; reconnecting");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn backlog(&self) -> Option<u64> {
        if self.closed.is_cancelled() {
            return None;
        }
        match self.link.depth().await {
            Ok(n) => Some(n),
            Err(e) => {
                debug!(binding = %self.link.name, error = %e, "cannot read the queue depth");
                None
            }
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        Link::close(&self.link).await;
        Ok(())
    }
}

impl RabbitInput {
    /// Consume on one channel until `stop` fires (`Ok`) or the channel or connection breaks
    /// (`Err`).
    async fn session(
        &self,
        sink: &EventSink,
        stop: &CancellationToken,
    ) -> Result<SessionEnd, BindingError> {
        let config = &self.link.config;
        let ch = tokio::select! {
            _ = stop.cancelled() => return Ok(SessionEnd::Stop),
            ch = self.link.channel() => ch?,
        };
        ch.basic_qos(config.window(), BasicQosOptions { global: false })
            .await
            .map_err(unavailable)?;
        let tag = consumer_tag(&self.link.name);
        let queue = ShortString::try_new(config.queue_name.as_str())
            .map_err(|e| BindingError::config("queueName", e.to_string()))?;
        let mut consumer = ch
            .basic_consume(
                queue,
                tag.clone(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        self.health.connected();
        info!(binding = %self.link.name, queue = %config.queue_name, window = config.window(), "consuming from RabbitMQ");

        // Fired when this session ends, so messages waiting out a backoff stop waiting: the
        // broker hands them out again once their channel is gone.
        let session = CancellationToken::new();
        let _session_guard = session.clone().drop_guard();
        let mut in_flight: JoinSet<bool> = JoinSet::new();
        let mut draining = false;
        let broke: Option<BindingError> = loop {
            tokio::select! {
                biased;
                _ = stop.cancelled(), if !draining => {
                    draining = true;
                }
                Some(joined) = in_flight.join_next() => {
                    // `true`: the runtime is draining; take no more messages.
                    if matches!(joined, Ok(true)) && !draining {
                        debug!(binding = %self.link.name, "runtime is draining; RabbitMQ consumer stops");
                        stop.cancel();
                        draining = true;
                    }
                }
                next = consumer.next(), if !draining => match next {
                    Some(Ok(delivery)) => {
                        let task = Handler {
                            name: self.link.name.clone(),
                            sink: sink.clone(),
                            failures: Arc::clone(&self.failures),
                            config: Arc::clone(&self.link.config),
                            stop: stop.clone(),
                            session: session.clone(),
                        };
                        in_flight.spawn(task.handle(delivery));
                    }
                    Some(Err(e)) => break Some(unavailable(e)),
                    None => break Some(BindingError::unavailable("RabbitMQ cancelled the consumer")),
                },
            }
            if draining {
                break None;
            }
        };
        if let Some(e) = broke {
            // Deliveries to the app that are under way finish on their own; their
            // acknowledgement fails with the channel and the broker redelivers them.
            in_flight.detach_all();
            return Err(e);
        }
        // Stop fetching, then finish or hand back what is in flight.
        if let Err(e) = ch.basic_cancel(tag, BasicCancelOptions::default()).await {
            debug!(binding = %self.link.name, error = %e, "cancelling the consumer failed");
        }
        while in_flight.join_next().await.is_some() {}
        // Closing the channel hands every message still unacknowledged back to the queue.
        if ch.status().connected()
            && let Err(e) = ch.close(200, ShortString::from("bye")).await
        {
            debug!(binding = %self.link.name, error = %e, "closing the consumer channel failed");
        }
        Ok(SessionEnd::Stop)
    }
}

/// Everything one delivery's task needs.
struct Handler {
    name: String,
    sink: EventSink,
    failures: Arc<FailureMemory>,
    config: Arc<RabbitConfig>,
    stop: CancellationToken,
    session: CancellationToken,
}

impl Handler {
    /// Deliver, then ack, or wait out the backoff and nack with requeue. Returns `true` when
    /// the runtime is draining.
    async fn handle(self, delivery: Delivery) -> bool {
        let key = fingerprint(&delivery);
        let event = to_event(&delivery);
        let outcome = self.sink.deliver(event).await;
        if outcome.should_ack() {
            self.failures.forget(key);
            if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
                debug!(binding = %self.name, error = %e, "ack failed; the broker will redeliver the message");
            }
            return false;
        }
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        match outcome {
            Outcome::Failed {
                reason,
                retry_after,
            } => {
                let delay = self.failures.delay(key, retry_after, &self.config);
                debug!(binding = %self.name, reason = %reason, retry_in = ?delay, "message not accepted; handing it back after a pause");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.stop.cancelled() => {}
                    _ = self.session.cancelled() => return false,
                }
                if let Err(e) = delivery.acker.nack(requeue).await {
                    debug!(binding = %self.name, error = %e, "nack failed; the broker will redeliver the message");
                }
                false
            }
            // Closed (and anything else not to be acknowledged): hand it back and stop.
            _ => {
                if let Err(e) = delivery.acker.nack(requeue).await {
                    debug!(binding = %self.name, error = %e, "nack failed; the broker will redeliver the message");
                }
                true
            }
        }
    }
}

/// A unique consumer tag for one session.
fn consumer_tag(name: &str) -> ShortString {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut tag = format!("bindery-{}-{nanos}", std::process::id());
    let room = 255usize.saturating_sub(tag.len() + 1);
    let short_name: String = name.chars().take(room / 4).collect();
    tag = format!("{short_name}-{tag}");
    // At most 255 bytes by construction (4 bytes per char at most); fall back to no name.
    ShortString::try_new(tag).unwrap_or_else(|_| ShortString::from("bindery"))
}

/// The event for one delivery: the body, the string headers (keys URL-query-escaped, as Dapr
/// does), and `messageID`, `correlationID`, `contentType` when the message has them.
pub(crate) fn to_event(d: &Delivery) -> InputEvent {
    let mut event = InputEvent::new(d.data.clone());
    if let Some(headers) = d.properties.headers() {
        for (k, v) in headers {
            let value = match v {
                AMQPValue::LongString(s) => {
                    std::str::from_utf8(s.as_bytes()).ok().map(str::to_owned)
                }
                AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
                _ => None,
            };
            if let Some(value) = value {
                event.metadata.insert(query_escape(k.as_str()), value);
            }
        }
    }
    if let Some(id) = d.properties.message_id() {
        event
            .metadata
            .insert(MESSAGE_ID_KEY.into(), id.as_str().to_owned());
    }
    if let Some(id) = d.properties.correlation_id() {
        event
            .metadata
            .insert(CORRELATION_ID_KEY.into(), id.as_str().to_owned());
    }
    if let Some(ct) = d.properties.content_type() {
        event
            .metadata
            .insert(CONTENT_TYPE_KEY.into(), ct.as_str().to_owned());
        event.content_type = Some(ct.as_str().to_owned());
    }
    event
}

/// Go's `url.QueryEscape`: everything but `A-Z a-z 0-9 - _ . ~` is percent-encoded, and a space
/// becomes `+`.
pub(crate) fn query_escape(s: &str) -> String {
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, QUERY)
        .to_string()
        .replace("%20", "+")
}

/// A stable key for "the same message" across redeliveries.
fn fingerprint(d: &Delivery) -> u64 {
    let mut h = DefaultHasher::new();
    d.data.hash(&mut h);
    d.properties
        .message_id()
        .as_ref()
        .map(|s| s.as_str())
        .hash(&mut h);
    d.properties
        .correlation_id()
        .as_ref()
        .map(|s| s.as_str())
        .hash(&mut h);
    d.properties.timestamp().hash(&mut h);
    h.finish()
}

/// The backoff of each message that failed recently, so that a message redelivered after a
/// nack waits longer each time instead of cycling in a hot loop.
#[derive(Default)]
pub(crate) struct FailureMemory {
    entries: Mutex<HashMap<u64, (Backoff, Instant)>>,
}

impl FailureMemory {
    /// How long to hold a message that just failed before handing it back.
    pub(crate) fn delay(
        &self,
        key: u64,
        retry_after: Option<Duration>,
        config: &RabbitConfig,
    ) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= FAILURE_MEMORY && !entries.contains_key(&key) {
            let horizon = config.backoff_max * 2 + Duration::from_secs(60);
            entries.retain(|_, (_, seen)| seen.elapsed() < horizon);
            if entries.len() >= FAILURE_MEMORY {
                entries.clear();
            }
        }
        let (backoff, seen) = entries.entry(key).or_insert_with(|| {
            (
                Backoff::new(config.backoff_initial, config.backoff_max),
                Instant::now(),
            )
        });
        *seen = Instant::now();
        backoff.delay_for(retry_after)
    }

    /// The message was accepted: start from scratch next time.
    pub(crate) fn forget(&self, key: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&key);
    }

    /// How many messages are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
