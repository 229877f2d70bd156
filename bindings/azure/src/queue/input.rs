//! The input side: receive messages with a visibility timeout, deliver each, delete it only
//! once the app accepted it, and otherwise make it visible again after a backoff.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, EventSink, InputBinding, InputEvent, Outcome,
    async_trait,
};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::api::{QueueClient, QueueMessage};
use super::config::QueueConfig;

/// How many messages are delivered at once (and so held invisible at once).
pub(crate) const MAX_IN_FLIGHT: usize = 16;
/// The longest pause between attempts to reach a service that failed.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Event metadata keys.
pub(crate) const MESSAGE_ID: &str = "messageID";
pub(crate) const POP_RECEIPT: &str = "popReceipt";
pub(crate) const INSERTION_TIME: &str = "insertionTime";
pub(crate) const EXPIRATION_TIME: &str = "expirationTime";
pub(crate) const NEXT_VISIBLE_TIME: &str = "nextVisibleTime";
pub(crate) const DEQUEUE_COUNT: &str = "dequeueCount";
/// Set when `decodeBase64` is on but the message is not base64 (it is delivered as it is).
pub(crate) const DECODE_ERROR: &str = "decodeBase64Error";

/// A running `bindings.azure.storagequeues` input.
pub(crate) struct QueueInput {
    pub(crate) name: String,
    pub(crate) config: Arc<QueueConfig>,
    pub(crate) client: QueueClient,
    pub(crate) health: BindingHealth,
    pub(crate) closed: CancellationToken,
}

/// RFC 1123 (as the service writes times) → RFC 3339 in UTC; unparseable text is kept.
pub(crate) fn rfc3339(t: &str) -> String {
    DateTime::parse_from_rfc2822(t.trim())
        .map(|d| {
            d.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| t.to_owned())
}

/// The event for one message.
pub(crate) fn to_event(m: &QueueMessage, decode_base64: bool) -> InputEvent {
    let mut event = InputEvent::new(m.text.clone().into_bytes())
        .with_metadata(MESSAGE_ID, &m.id)
        .with_metadata(POP_RECEIPT, &m.pop_receipt)
        .with_metadata(INSERTION_TIME, rfc3339(&m.insertion_time))
        .with_metadata(EXPIRATION_TIME, rfc3339(&m.expiration_time))
        .with_metadata(NEXT_VISIBLE_TIME, rfc3339(&m.next_visible_time))
        .with_metadata(DEQUEUE_COUNT, m.dequeue_count.to_string());
    if decode_base64 {
        let engine = base64::engine::general_purpose::STANDARD;
        let text = m.text.trim();
        let decoded = engine.decode(text).or_else(|e| {
            match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) => engine.decode(inner),
                None => Err(e),
            }
        });
        match decoded {
            Ok(bytes) => event.data = bytes.into(),
            Err(e) => {
                // Never drop a message: deliver the text as it is and say why.
                warn!(message_id = %m.id, error = %e, "decodeBase64 is set but the message is not base64; delivering it undecoded");
                event
                    .metadata
                    .insert(DECODE_ERROR.into(), format!("not valid base64: {e}"));
            }
        }
    }
    event
}

/// How long a message the app failed stays hidden: the app's or the policy's `retry_after`
/// when given, else `backOffInitialInterval` doubled for each earlier delivery; both capped at
/// `backOffMaxInterval`.
pub(crate) fn retry_delay(
    config: &QueueConfig,
    dequeue_count: u64,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(d) = retry_after {
        return d.min(config.backoff_max);
    }
    let exp = u32::try_from(dequeue_count.saturating_sub(1).min(30)).unwrap_or(30);
    config
        .backoff_initial
        .checked_mul(1u32 << exp.min(20))
        .unwrap_or(config.backoff_max)
        .min(config.backoff_max)
}

#[async_trait]
impl InputBinding for QueueInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        // `stop` fires on shutdown, on `close`, or when the runtime answers `Closed`.
        let stop = shutdown.child_token();
        {
            let stop = stop.clone();
            let closed = self.closed.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = closed.cancelled() => stop.cancel(),
                    _ = stop.cancelled() => {}
                }
            });
        }
        let _stop_guard = stop.clone().drop_guard();
        let wait = self.config.polling_interval.min(Duration::from_secs(1));
        let mut reconnect = Backoff::new(wait, RECONNECT_MAX);

        // The queue is created when missing, as Dapr's Init does; retried until it works.
        loop {
            match self.client.create_queue().await {
                Ok(()) => break,
                Err(e) if e.is_retryable() => {
                    self.health.disconnected(e.to_string());
                    let delay = reconnect.next_delay();
                    warn!(binding = %self.name, error = %e, retry_in = ?delay, "cannot reach the queue; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    return Err(e);
                }
            }
        }
        reconnect.reset();
        self.health.connected();
        info!(binding = %self.name, queue = %self.config.queue, "receiving from Azure Storage queue");

        let mut in_flight: JoinSet<bool> = JoinSet::new();
        loop {
            // Reap finished deliveries; `true` means the runtime is draining.
            while let Some(done) = in_flight.try_join_next() {
                if matches!(done, Ok(true)) {
                    debug!(binding = %self.name, "runtime is draining; the queue input stops");
                    stop.cancel();
                }
            }
            if stop.is_cancelled() {
                break;
            }
            let room = MAX_IN_FLIGHT - in_flight.len();
            if room == 0 {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    Some(done) = in_flight.join_next() => {
                        if matches!(done, Ok(true)) {
                            stop.cancel();
                        }
                    }
                }
                continue;
            }
            let count = u32::try_from(room).unwrap_or(1);
            let received = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.client.get_messages(count, self.config.visibility_timeout) => r,
            };
            match received {
                Ok(messages) if messages.is_empty() => {
                    self.health.connected();
                    reconnect.reset();
                    // Nothing to read: wait for the polling interval (or a delivery to end).
                    let sleep = tokio::time::sleep(self.config.polling_interval);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = &mut sleep => break,
                            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                                if matches!(done, Ok(true)) {
                                    stop.cancel();
                                }
                            }
                        }
                    }
                }
                Ok(messages) => {
                    self.health.connected();
                    reconnect.reset();
                    for m in messages {
                        let task = Delivery {
                            client: self.client.clone(),
                            config: Arc::clone(&self.config),
                            sink: sink.clone(),
                            name: self.name.clone(),
                        };
                        in_flight.spawn(task.run(m));
                    }
                }
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    let delay = reconnect.next_delay();
                    warn!(binding = %self.name, error = %e, retry_in = ?delay, "receiving from the queue failed; retrying");
                    if e.kind() == bindery_core::ErrorKind::NotFound {
                        // The queue was deleted under us: create it again.
                        let _ = self.client.create_queue().await;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        // Stop fetching, then let the deliveries under way finish (each settles its message).
        while in_flight.join_next().await.is_some() {}
        Ok(())
    }

    /// Visible messages waiting. The service's approximate count also holds messages hidden
    /// while they wait out a backoff, so a queue with nothing visible reports 0.
    async fn backlog(&self) -> Option<u64> {
        if self.closed.is_cancelled() {
            return None;
        }
        let visible = self.client.peek_messages(1).await;
        let count = match visible {
            Ok(v) if v.is_empty() => return Some(0),
            Ok(_) => self.client.approximate_count().await,
            Err(e) => Err(e),
        };
        count
            .map_err(|e| debug!(binding = %self.name, error = %e, "cannot read the queue depth"))
            .ok()
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        Ok(())
    }
}

/// One message's delivery.
struct Delivery {
    client: QueueClient,
    config: Arc<QueueConfig>,
    sink: EventSink,
    name: String,
}

impl Delivery {
    /// Deliver, keeping the message hidden while the app works on it; then delete it, or make
    /// it visible again after the retry delay. Returns `true` when the runtime is draining.
    async fn run(self, m: QueueMessage) -> bool {
        let event = to_event(&m, self.config.decode_base64);
        let mut pop = m.pop_receipt.clone();
        let visibility = self.config.visibility_timeout;
        // Renew well before the message would reappear.
        let renew_every = (visibility / 2).max(Duration::from_millis(500));
        let deliver = self.sink.deliver(event);
        tokio::pin!(deliver);
        let outcome = loop {
            tokio::select! {
                outcome = &mut deliver => break outcome,
                _ = tokio::time::sleep(renew_every) => {
                    match self.client.update_visibility(&m.id, &pop, visibility).await {
                        Ok((p, _)) if !p.is_empty() => pop = p,
                        Ok(_) => {}
                        Err(e) => warn!(binding = %self.name, message_id = %m.id, error = %e, "could not extend the message's visibility; it may be delivered twice"),
                    }
                }
            }
        };
        if outcome.should_ack() {
            if let Err(e) = self.client.delete_message(&m.id, &pop).await {
                warn!(binding = %self.name, message_id = %m.id, error = %e, "deleting the delivered message failed; it will be delivered again");
            }
            return false;
        }
        let (delay, closing) = match &outcome {
            Outcome::Failed {
                reason,
                retry_after,
            } => {
                let d = retry_delay(&self.config, m.dequeue_count, *retry_after);
                debug!(binding = %self.name, message_id = %m.id, reason = %reason, retry_in = ?d, "message not accepted; it will be offered again");
                (d, false)
            }
            // Closed: hand it back at once, for another replica or the next start.
            _ => (Duration::ZERO, true),
        };
        if let Err(e) = self.client.update_visibility(&m.id, &pop, delay).await {
            debug!(binding = %self.name, message_id = %m.id, error = %e, "could not shorten the message's invisibility; it reappears after the visibility timeout");
        }
        closing
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use bindery_core::Metadata;

    fn config(extra: &[(&str, &str)]) -> QueueConfig {
        let mut pairs = vec![
            ("accountName", "devstoreaccount1"),
            ("accountKey", crate::account::DEV_KEY),
            ("queueName", "orders"),
        ];
        pairs.extend_from_slice(extra);
        QueueConfig::parse(&Metadata::from_pairs(pairs)).unwrap()
    }

    fn message(text: &str) -> QueueMessage {
        QueueMessage {
            id: "id-1".into(),
            pop_receipt: "pop".into(),
            insertion_time: "Fri, 09 Oct 2009 21:04:30 GMT".into(),
            expiration_time: "Fri, 16 Oct 2009 21:04:30 GMT".into(),
            next_visible_time: "Fri, 09 Oct 2009 21:05:00 GMT".into(),
            dequeue_count: 3,
            text: text.into(),
        }
    }

    #[test]
    fn events_carry_every_metadata_key() {
        let e = to_event(&message("hello"), false);
        assert_eq!(&e.data[..], b"hello");
        assert_eq!(e.metadata[MESSAGE_ID], "id-1");
        assert_eq!(e.metadata[POP_RECEIPT], "pop");
        assert_eq!(e.metadata[INSERTION_TIME], "2009-10-09T21:04:30Z");
        assert_eq!(e.metadata[EXPIRATION_TIME], "2009-10-16T21:04:30Z");
        assert_eq!(e.metadata[NEXT_VISIBLE_TIME], "2009-10-09T21:05:00Z");
        assert_eq!(e.metadata[DEQUEUE_COUNT], "3");
        assert_eq!(e.metadata.len(), 6);
    }

    #[test]
    fn base64_is_decoded_when_asked() {
        assert_eq!(&to_event(&message("aGVsbG8="), true).data[..], b"hello");
        assert_eq!(&to_event(&message("\"aGVsbG8=\""), true).data[..], b"hello");
        assert_eq!(&to_event(&message("aGVsbG8="), false).data[..], b"aGVsbG8=");
        let e = to_event(&message("not base64!"), true);
        assert_eq!(&e.data[..], b"not base64!");
        assert!(e.metadata.contains_key(DECODE_ERROR));
    }

    #[test]
    fn retry_delays_grow_and_are_capped() {
        let c = config(&[]);
        assert_eq!(retry_delay(&c, 1, None), Duration::from_secs(1));
        assert_eq!(retry_delay(&c, 2, None), Duration::from_secs(2));
        assert_eq!(retry_delay(&c, 4, None), Duration::from_secs(8));
        assert_eq!(retry_delay(&c, 10, None), Duration::from_secs(30));
        assert_eq!(retry_delay(&c, 1000, None), Duration::from_secs(30));
        assert_eq!(
            retry_delay(&c, 1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_delay(&c, 1, Some(Duration::from_secs(300))),
            Duration::from_secs(30)
        );
        let c = config(&[
            ("backOffInitialInterval", "200ms"),
            ("backOffMaxInterval", "1s"),
        ]);
        assert_eq!(retry_delay(&c, 1, None), Duration::from_millis(200));
        assert_eq!(retry_delay(&c, 9, None), Duration::from_secs(1));
    }

    #[test]
    fn times_become_rfc3339() {
        assert_eq!(
            rfc3339("Sat, 28 Nov 2026 01:02:03 GMT"),
            "2026-11-28T01:02:03Z"
        );
        assert_eq!(rfc3339("garbage"), "garbage");
    }
}
