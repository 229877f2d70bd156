//! The input side: a core NATS subscription (optionally in a queue group) or a durable
//! JetStream pull consumer, each message handed to the sink and its outcome mapped in one place
//! ([`deliver_core`], [`deliver_jetstream`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::Client;
use async_nats::connection::State;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{self, AckPolicy, PullConsumer};
use async_nats::jetstream::context::Context;
use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, EventSink, InputBinding, InputEvent, Outcome,
    async_trait,
};
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{DeliverPolicy, JetStreamConfig, NatsConfig, default_durable};
use crate::connect::connect;

/// Event metadata key: the subject the message was published to.
pub const SUBJECT: &str = "subject";
/// Event metadata key: the reply subject of a core NATS request.
pub const REPLY: &str = "reply";
/// Event metadata key: the JetStream stream the message came from.
pub const STREAM: &str = "stream";
/// Event metadata key: the message's stream sequence.
pub const SEQUENCE: &str = "sequence";
/// Event metadata key: how many times JetStream has delivered the message (1 the first time).
pub const NUM_DELIVERED: &str = "numDelivered";
/// Event metadata key: when JetStream stored the message, RFC 3339 in UTC.
pub const TIMESTAMP: &str = "timestamp";

/// Pull requests expire after this long and are renewed.
const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// Idle heartbeat asked of the server while a pull request waits.
const PULL_HEARTBEAT: Duration = Duration::from_secs(3);
/// Waits between attempts to (re)create the consumer.
const SETUP_BACKOFF_START: Duration = Duration::from_millis(100);
const SETUP_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A running input side.
pub(crate) struct NatsInput {
    pub(crate) name: String,
    pub(crate) app_id: String,
    pub(crate) config: Arc<NatsConfig>,
    pub(crate) health: BindingHealth,
    pub(crate) closed: CancellationToken,
    /// Set once the subscription or consumer is in place: reconnections report connected.
    pub(crate) ready: Arc<AtomicBool>,
    /// The JetStream consumer of the current session, asked for its backlog.
    pub(crate) consumer: std::sync::Mutex<Option<PullConsumer>>,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Acknowledged (accepted, dropped or dead-lettered).
    Acked,
    /// Handed back for redelivery (JetStream nak).
    HandedBack,
    /// Core NATS: not accepted before shutdown; the server cannot redeliver it.
    Abandoned,
    /// The runtime is draining: stop reading.
    Closed,
}

#[async_trait]
impl InputBinding for NatsInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        let Some(subject) = self.config.subject.clone() else {
            return Err(BindingError::config(
                "subject",
                "nats binding: subject is required to read (what to subscribe to)",
            ));
        };
        // The output side of the same component may have reported connected already; this side
        // is not ready until its subscription or consumer is in place.
        self.ready.store(false, Ordering::Release);
        self.health
            .disconnected("nats binding: input side is not subscribed yet");
        let Some(client) = self.connect_until(&shutdown).await? else {
            return Ok(());
        };
        let result = match &self.config.jetstream {
            None => self.run_core(&client, &subject, &sink, &shutdown).await,
            Some(js) => {
                self.run_jetstream(&client, &subject, js, &sink, &shutdown)
                    .await
            }
        };
        // Send outstanding acks before the connection goes with the client.
        let _ = tokio::time::timeout(self.config.request_timeout, client.flush()).await;
        result
    }

    /// JetStream: the messages the durable consumer has not delivered yet. Core NATS keeps no
    /// backlog.
    async fn backlog(&self) -> Option<u64> {
        let consumer = self
            .consumer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        match consumer.get_info().await {
            Ok(info) => Some(info.num_pending),
            Err(e) => {
                debug!(binding = %self.name, error = %e, "cannot read the consumer's pending count");
                None
            }
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        Ok(())
    }
}

impl NatsInput {
    /// Connect, retrying with backoff while NATS is unreachable. `None` when shutdown came first.
    async fn connect_until(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<Client>, BindingError> {
        let mut backoff = Backoff::new(SETUP_BACKOFF_START, self.config.reconnect_wait);
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                r = connect(&self.config, &self.name, &self.health, Arc::clone(&self.ready)) => r,
            };
            match attempt {
                Ok(c) => return Ok(Some(c)),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    let wait = backoff.next_delay();
                    warn!(binding = %self.name, error = %e, retry_in = ?wait, "cannot connect to NATS yet");
                    if !sleep_or_stop(wait, shutdown).await {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Core NATS: at most once. A message the app fails is retried here, with backoff, until
    /// the app accepts it or bindery stops; the server cannot send it again.
    async fn run_core(
        &self,
        client: &Client,
        subject: &str,
        sink: &EventSink,
        shutdown: &CancellationToken,
    ) -> Result<(), BindingError> {
        let cfg = &self.config;
        let mut sub = match &cfg.queue_group {
            Some(group) => {
                client
                    .queue_subscribe(subject.to_owned(), group.clone())
                    .await
            }
            None => client.subscribe(subject.to_owned()).await,
        }
        .map_err(|e| {
            BindingError::unavailable(format!(
                "nats binding: subscribing to {subject} failed: {e}"
            ))
        })?;
        // The subscription is in place at the server once a flush returns; only then is the
        // binding ready (a message published before that is not for this subscription).
        let mut flushes = 0;
        while !matches!(
            tokio::time::timeout(cfg.request_timeout, client.flush()).await,
            Ok(Ok(()))
        ) {
            flushes += 1;
            if flushes == 3 || shutdown.is_cancelled() {
                warn!(binding = %self.name, subject = %subject, "NATS did not confirm the subscription; reading anyway");
                break;
            }
        }
        self.ready.store(true, Ordering::Release);
        self.health.connected();
        info!(binding = %self.name, subject = %subject, queue_group = ?cfg.queue_group, "subscribed to core NATS");

        let stop = shutdown.child_token();
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        let mut in_process: JoinSet<Done> = JoinSet::new();
        let mut result = Ok(());
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = in_process.join_next(), if !in_process.is_empty() => {
                    if done.ok() == Some(Done::Closed) {
                        debug!(binding = %self.name, "runtime is draining; no more reading");
                        break;
                    }
                }
                msg = sub.next(), if in_process.len() < cfg.max_in_process => {
                    let Some(msg) = msg else {
                        result = Err(BindingError::unavailable(format!(
                            "nats binding: the subscription to {subject} ended"
                        )));
                        break;
                    };
                    in_process.spawn(deliver_core(
                        core_event(&msg),
                        sink.clone(),
                        Arc::clone(&permits),
                        Arc::clone(cfg),
                        stop.clone(),
                        self.name.clone(),
                    ));
                }
            }
        }
        // No more messages for this replica: the queue group's other members take them.
        let _ = sub.unsubscribe().await;
        stop.cancel();
        let mut abandoned = 0usize;
        while let Some(done) = in_process.join_next().await {
            if matches!(done, Ok(Done::Abandoned | Done::Closed)) {
                abandoned += 1;
            }
        }
        if abandoned > 0 {
            warn!(binding = %self.name, messages = abandoned, "core NATS cannot redeliver: messages the app had not accepted when bindery stopped are lost (use jetStream: true for at-least-once)");
        }
        result
    }

    /// JetStream: a durable pull consumer shared by every replica; at least once.
    async fn run_jetstream(
        &self,
        client: &Client,
        subject: &str,
        jscfg: &JetStreamConfig,
        sink: &EventSink,
        shutdown: &CancellationToken,
    ) -> Result<(), BindingError> {
        let cfg = &self.config;
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(cfg.request_timeout);
        let durable = jscfg
            .durable
            .clone()
            .unwrap_or_else(|| default_durable(&self.app_id, &self.name));
        let mut backoff = Backoff::new(SETUP_BACKOFF_START, SETUP_BACKOFF_MAX);
        let mut in_flight: JoinSet<Done> = JoinSet::new();
        let batch = cfg.concurrency.max(1);
        'session: loop {
            if shutdown.is_cancelled() {
                break;
            }
            let consumer = match setup_consumer(&js, subject, &durable, jscfg).await {
                Ok(c) => c,
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    let wait = backoff.next_delay();
                    warn!(binding = %self.name, error = %e, retry_in = ?wait, "JetStream consumer is not available");
                    if !sleep_or_stop(wait, shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let messages = consumer
                .stream()
                .max_messages_per_batch(batch)
                .expires(PULL_EXPIRES)
                .heartbeat(PULL_HEARTBEAT)
                .messages()
                .await;
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    let wait = backoff.next_delay();
                    warn!(binding = %self.name, error = %e, retry_in = ?wait, "pulling from JetStream failed");
                    if !sleep_or_stop(wait, shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            backoff.reset();
            *self.consumer.lock().unwrap_or_else(|p| p.into_inner()) = Some(consumer);
            self.ready.store(true, Ordering::Release);
            self.health.connected();
            info!(binding = %self.name, subject = %subject, durable = %durable, "pulling from JetStream");
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {
                        hand_back(&mut messages).await;
                        break 'session;
                    }
                    Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                        if done.ok() == Some(Done::Closed) {
                            debug!(binding = %self.name, "runtime is draining; no more reading");
                            hand_back(&mut messages).await;
                            break 'session;
                        }
                    }
                    next = messages.next(), if in_flight.len() < cfg.concurrency => match next {
                        Some(Ok(msg)) => {
                            in_flight.spawn(deliver_jetstream(
                                msg,
                                sink.clone(),
                                Arc::clone(cfg),
                                self.name.clone(),
                            ));
                        }
                        Some(Err(e)) => {
                            if client.connection_state() != State::Connected {
                                self.health.disconnected(format!(
                                    "nats binding: disconnected from NATS at {}",
                                    cfg.servers_display()
                                ));
                            }
                            let wait = backoff.next_delay();
                            warn!(binding = %self.name, error = %e, retry_in = ?wait, "pulling from JetStream failed; pulling again");
                            if !sleep_or_stop(wait, shutdown).await {
                                break 'session;
                            }
                            continue 'session;
                        }
                        None => continue 'session,
                    }
                }
            }
        }
        // Deliveries in progress finish and are acknowledged or handed back.
        while in_flight.join_next().await.is_some() {}
        Ok(())
    }
}

/// Sleep `wait`; `false` when `stop` fired first.
async fn sleep_or_stop(wait: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// Find the stream and create (or update) the durable pull consumer.
async fn setup_consumer(
    js: &Context,
    subject: &str,
    durable: &str,
    jscfg: &JetStreamConfig,
) -> Result<PullConsumer, BindingError> {
    let stream_name = match &jscfg.stream {
        Some(s) => s.clone(),
        None => js.stream_by_subject(subject).await.map_err(|e| {
            BindingError::unavailable(format!(
                "nats binding: no JetStream stream captures subject {subject} ({e}); create one or set streamName"
            ))
        })?,
    };
    let stream = js.get_stream(&stream_name).await.map_err(|e| {
        BindingError::unavailable(format!(
            "nats binding: JetStream stream {stream_name} is not available: {e}"
        ))
    })?;
    let config = consumer::pull::Config {
        durable_name: Some(durable.to_owned()),
        filter_subject: subject.to_owned(),
        deliver_policy: match jscfg.deliver_policy {
            DeliverPolicy::All => consumer::DeliverPolicy::All,
            DeliverPolicy::New => consumer::DeliverPolicy::New,
            DeliverPolicy::Last => consumer::DeliverPolicy::Last,
            DeliverPolicy::LastPerSubject => consumer::DeliverPolicy::LastPerSubject,
            DeliverPolicy::Sequence(n) => {
                consumer::DeliverPolicy::ByStartSequence { start_sequence: n }
            }
        },
        ack_policy: AckPolicy::Explicit,
        ack_wait: jscfg.ack_wait,
        max_deliver: jscfg.max_deliver,
        max_ack_pending: jscfg.max_ack_pending,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|e| {
        BindingError::unavailable(format!(
            "nats binding: cannot create durable consumer {durable} on stream {stream_name}: {e}"
        ))
    })
}

/// Hand back what was pulled but not started, so another replica gets it now rather than after
/// `ackWait`.
async fn hand_back(messages: &mut consumer::pull::Stream) {
    while let Some(Some(Ok(msg))) = messages.next().now_or_never() {
        let _ = msg.ack_with(AckKind::Nak(None)).await;
    }
}

/// Deliver one core NATS message, retrying in process until the app takes it or `stop` fires.
async fn deliver_core(
    event: InputEvent,
    sink: EventSink,
    permits: Arc<Semaphore>,
    cfg: Arc<NatsConfig>,
    stop: CancellationToken,
    name: String,
) -> Done {
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    loop {
        let outcome = {
            // A message waiting for its retry holds no permit, so it never stops the others.
            let Ok(_permit) = permits.acquire().await else {
                return Done::Abandoned;
            };
            sink.deliver(event.clone()).await
        };
        match outcome {
            o if o.should_ack() => return Done::Acked,
            Outcome::Closed => return Done::Closed,
            Outcome::Failed {
                reason,
                retry_after,
            } => {
                let wait = backoff.delay_for(retry_after);
                debug!(binding = %name, reason = %reason, retry_in = ?wait, "message not accepted; retrying it in process (core NATS cannot redeliver)");
                if !sleep_or_stop(wait, &stop).await {
                    return Done::Abandoned;
                }
            }
            // should_ack covers the remaining outcomes.
            _ => return Done::Acked,
        }
    }
}

/// Deliver one JetStream message and acknowledge, or hand it back with a delay.
async fn deliver_jetstream(
    msg: async_nats::jetstream::Message,
    sink: EventSink,
    cfg: Arc<NatsConfig>,
    name: String,
) -> Done {
    let (event, delivered) = jetstream_event(&msg);
    let ack_wait = cfg
        .jetstream
        .as_ref()
        .map_or(crate::config::DEFAULT_ACK_WAIT, |j| j.ack_wait);
    let max_deliver = cfg.jetstream.as_ref().map_or(-1, |j| j.max_deliver);
    let outcome = {
        let deliver = sink.deliver(event);
        tokio::pin!(deliver);
        // Tell the server the message is being worked on before ackWait runs out.
        let period = (ack_wait / 2).max(Duration::from_millis(50));
        let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                o = &mut deliver => break o,
                _ = progress.tick() => {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        debug!(binding = %name, error = %e, "sending in-progress failed");
                    }
                }
            }
        }
    };
    match outcome {
        o if o.should_ack() => {
            if let Err(e) = msg.ack().await {
                warn!(binding = %name, error = %e, "acknowledging failed; JetStream will redeliver the message");
            }
            Done::Acked
        }
        Outcome::Closed => {
            let _ = msg.ack_with(AckKind::Nak(None)).await;
            Done::Closed
        }
        Outcome::Failed {
            reason,
            retry_after,
        } => {
            let delay = nak_delay(delivered, retry_after, &cfg);
            if max_deliver > 0 && delivered >= max_deliver {
                warn!(binding = %name, delivered, max_deliver, reason = %reason, "message reached maxDeliver; JetStream will not deliver it again");
            } else {
                debug!(binding = %name, delivered, reason = %reason, retry_in = ?delay, "message not accepted; JetStream redelivers it later");
            }
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                warn!(binding = %name, error = %e, "nak failed; JetStream redelivers the message after ackWait");
            }
            Done::HandedBack
        }
        _ => Done::Acked,
    }
}

/// The redelivery delay after the `delivered`-th failed delivery: the app's `retry_after`, else
/// the backoff step for that attempt.
pub(crate) fn nak_delay(
    delivered: i64,
    retry_after: Option<Duration>,
    cfg: &NatsConfig,
) -> Duration {
    let mut backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
    for _ in 1..delivered.clamp(1, 32) {
        backoff.next_delay();
    }
    backoff.delay_for(retry_after)
}

/// The event for a core NATS message.
pub(crate) fn core_event(msg: &async_nats::Message) -> InputEvent {
    let mut event = InputEvent::new(msg.payload.clone());
    add_headers(&mut event, msg.headers.as_ref());
    event
        .metadata
        .insert(SUBJECT.to_owned(), msg.subject.to_string());
    if let Some(reply) = &msg.reply {
        event.metadata.insert(REPLY.to_owned(), reply.to_string());
    }
    event
}

/// The event for a JetStream message, and how often it has been delivered.
fn jetstream_event(msg: &async_nats::jetstream::Message) -> (InputEvent, i64) {
    let mut event = InputEvent::new(msg.message.payload.clone());
    add_headers(&mut event, msg.message.headers.as_ref());
    let md = &mut event.metadata;
    md.insert(SUBJECT.to_owned(), msg.message.subject.to_string());
    let mut delivered = 1;
    if let Ok(info) = msg.info() {
        delivered = info.delivered;
        md.insert(STREAM.to_owned(), info.stream.to_owned());
        md.insert(SEQUENCE.to_owned(), info.stream_sequence.to_string());
        md.insert(NUM_DELIVERED.to_owned(), info.delivered.to_string());
        md.insert(
            TIMESTAMP.to_owned(),
            rfc3339_nanos(info.published.unix_timestamp_nanos()),
        );
    }
    (event, delivered)
}

/// Every header as event metadata (several values joined with `, `); `Content-Type` also
/// becomes the event's content type.
fn add_headers(event: &mut InputEvent, headers: Option<&async_nats::HeaderMap>) {
    let Some(headers) = headers else {
        return;
    };
    let mut md: HashMap<String, String> = HashMap::new();
    for (name, values) in headers.iter() {
        let joined = values
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case("content-type") {
            event.content_type = Some(joined.clone());
        }
        md.insert(name.to_owned(), joined);
    }
    event.metadata.extend(md);
}

/// Unix nanoseconds as RFC 3339 in UTC with nanoseconds, e.g. `2024-05-01T12:00:00.000000001Z`.
pub(crate) fn rfc3339_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = i64::try_from(secs.div_euclid(86_400)).unwrap_or(0);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = bindery_core::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
