//! The input side: a consumer group member that hands each message to the app and commits an
//! offset only once the app accepted every message before it.
//!
//! ```text
//! librdkafka consumer ── rebalances, errors ──▶ read loop (starts and stops workers)
//!   └─ one queue per assigned partition ──recv──▶ worker ──deliver──▶ sink
//!          ▲                                         │
//!          └──────── store offset N+1 ◀── accepted N ┘
//! ```
//!
//! * Each assigned partition gets its own librdkafka queue (split off the consumer's queue when
//!   the partition is assigned, before fetching starts) and one worker, which takes that
//!   partition's messages in offset order, one at a time, so "every message up to N was
//!   accepted" is simply "N was accepted". A message the app does not accept is redelivered
//!   with backoff and holds its partition; the other partitions go on.
//! * Offsets are stored (`enable.auto.offset.store=false`) only after acceptance; librdkafka
//!   commits what is stored every second, when partitions are revoked and when the consumer
//!   closes, and the read loop commits synchronously before it returns.
//! * Memory is bounded without pausing: a worker takes its next message only when the last one
//!   is settled, and librdkafka stops fetching a partition whose queue holds
//!   `queued.min.messages` messages (or `queued.max.messages.kbytes`), resuming the fetch as the
//!   worker takes them. Nothing fetched is thrown away, so a slow or stuck partition costs no
//!   refetching.
//! * On revocation the worker stops: an in-flight delivery is finished but not stored, and the
//!   next owner starts from the last commit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingHealth, CancellationToken, EventSink, InputBinding, InputEvent, Outcome,
};
use bytes::Bytes;
use futures::StreamExt;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::config::{InitialOffset, KafkaConfig, RedeliveryPolicy};
use crate::context::HealthReporter;

/// Event metadata: the message key (absent when the message has none).
pub const KEY: &str = "__key";
/// Event metadata: the topic.
pub const TOPIC: &str = "__topic";
/// Event metadata: the partition.
pub const PARTITION: &str = "__partition";
/// Event metadata: the offset.
pub const OFFSET: &str = "__offset";
/// Event metadata: the message timestamp in Unix milliseconds (absent when the broker has none).
pub const TIMESTAMP: &str = "__timestamp";

/// Warn when one message has failed this many times (it is still retried).
const WARN_AFTER_ATTEMPTS: u64 = 5;
/// While a subscribed topic does not exist, look for it this often (librdkafka itself only
/// looks again at the next metadata refresh, minutes away).
const MISSING_TOPIC_CHECK: std::time::Duration = std::time::Duration::from_secs(3);

type TopicPartition = (String, i32);
type KafkaConsumer = StreamConsumer<InputContext>;

type PartitionQueue = StreamPartitionQueue<InputContext>;

/// Per-partition state shared by the worker and the rebalance callback.
struct PartitionState {
    /// Cancelled when the partition is revoked: the worker stops and stores nothing more.
    revoked: CancellationToken,
}

/// A partition assigned to this member, with its own queue, for the read loop to start a
/// worker on.
struct Assigned {
    tp: TopicPartition,
    state: Arc<PartitionState>,
    queue: PartitionQueue,
}

/// The partitions this member currently works on.
#[derive(Default)]
struct PartitionTable {
    live: Mutex<HashMap<TopicPartition, Arc<PartitionState>>>,
}

impl PartitionTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Arc<PartitionState>>> {
        // A poisoned lock only means a panic elsewhere while updating plain data; keep going.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, tp: TopicPartition, state: Arc<PartitionState>) {
        if let Some(old) = self.lock().insert(tp, state) {
            old.revoked.cancel();
        }
    }

    fn revoke(&self, tp: &TopicPartition) {
        if let Some(state) = self.lock().remove(tp) {
            state.revoked.cancel();
        }
    }
}

/// The consumer's callbacks: logs, health, and rebalances.
pub(crate) struct InputContext {
    reporter: HealthReporter,
    partitions: Arc<PartitionTable>,
    /// The consumer itself, to split the queue of each partition it is assigned.
    consumer: OnceLock<Weak<KafkaConsumer>>,
    /// Partitions assigned, for the read loop.
    assigned: mpsc::UnboundedSender<Assigned>,
    /// The read loop's end of `assigned`, taken by the one `read` that uses this consumer.
    assignments: Mutex<Option<mpsc::UnboundedReceiver<Assigned>>>,
}

impl InputContext {
    /// Give each partition of `tpl` its own queue and tell the read loop. Runs before the
    /// assignment takes effect, so no message of these partitions reaches the consumer's queue.
    fn split(&self, tpl: &TopicPartitionList) {
        let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) else {
            return;
        };
        for e in tpl.elements() {
            let tp = (e.topic().to_owned(), e.partition());
            let Some(queue) = consumer.split_partition_queue(&tp.0, tp.1) else {
                // Its messages come through the consumer's queue, where the read loop refuses
                // them and restarts.
                error!(binding = %self.reporter.binding(), topic = %tp.0, partition = tp.1, "no queue for an assigned kafka partition");
                continue;
            };
            let state = Arc::new(PartitionState {
                revoked: CancellationToken::new(),
            });
            self.partitions.insert(tp.clone(), Arc::clone(&state));
            // The read loop holds the receiver as long as the consumer is in use.
            let _ = self.assigned.send(Assigned { tp, state, queue });
        }
    }
}

impl ClientContext for InputContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.reporter.on_log(level, fac, log_message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.reporter.on_stats(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.reporter.on_error(&error, reason);
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    let mut parts: Vec<String> = tpl
        .elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect();
    parts.sort();
    parts.join(",")
}

impl ConsumerContext for InputContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.split(tpl);
        }
        if let Rebalance::Revoke(tpl) = rebalance {
            // The workers of these partitions store nothing after this...
            for e in tpl.elements() {
                self.partitions
                    .revoke(&(e.topic().to_owned(), e.partition()));
            }
            // ...and what they stored is committed now, for the next owner to start from.
            // librdkafka also commits the stored offsets of removed partitions itself
            // (enable.auto.commit); committing the same offsets twice is harmless. Async: this
            // runs on the polling task.
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Async)
                && !matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
            {
                debug!(binding = %self.reporter.binding(), error = %e, "commit before revocation not sent");
            }
            info!(binding = %self.reporter.binding(), partitions = %describe(tpl), "kafka partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                info!(binding = %self.reporter.binding(), partitions = %describe(tpl), "kafka partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                warn!(binding = %self.reporter.binding(), error = %e, "kafka rebalance failed");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                debug!(binding = %self.reporter.binding(), offsets = ?offsets_of(offsets), "kafka offsets committed");
            }
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                warn!(binding = %self.reporter.binding(), error = %e, "committing kafka offsets failed; they are committed again with the next ones");
            }
        }
    }
}

fn offsets_of(tpl: &TopicPartitionList) -> Vec<String> {
    tpl.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}/{}@{o}", e.topic(), e.partition()),
            other => format!("{}/{}@{other:?}", e.topic(), e.partition()),
        })
        .collect()
}

/// Go's `url.QueryEscape` on raw bytes: what Dapr applies to keys and header values when
/// `escapeHeaders` is on.
pub(crate) fn query_escape(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The event for `msg`: its value as data, and Dapr's metadata (headers first, so that a
/// header cannot hide the real topic, partition, offset, key or timestamp).
pub(crate) fn event_for(msg: &impl Message, escape: bool) -> InputEvent {
    let text = |raw: &[u8]| {
        if escape {
            query_escape(raw)
        } else {
            String::from_utf8_lossy(raw).into_owned()
        }
    };
    let mut metadata = HashMap::new();
    if let Some(headers) = msg.headers() {
        for h in Headers::iter(headers) {
            metadata.insert(h.key.to_owned(), text(h.value.unwrap_or_default()));
        }
    }
    if let Some(key) = msg.key() {
        metadata.insert(KEY.to_owned(), text(key));
    }
    metadata.insert(TOPIC.to_owned(), msg.topic().to_owned());
    metadata.insert(PARTITION.to_owned(), msg.partition().to_string());
    metadata.insert(OFFSET.to_owned(), msg.offset().to_string());
    if let Some(ms) = msg.timestamp().to_millis() {
        metadata.insert(TIMESTAMP.to_owned(), ms.to_string());
    }
    InputEvent {
        data: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
        metadata,
        content_type: None,
    }
}

/// A running input side.
pub(crate) struct KafkaInput {
    name: String,
    config: Arc<KafkaConfig>,
    health: BindingHealth,
    /// The consumer made at build time (so configuration errors show then), used by the first
    /// `read`.
    first: Mutex<Option<Arc<KafkaConsumer>>>,
    /// The consumer of the running `read`, asked for its lag; never kept alive by this.
    current: Mutex<Weak<KafkaConsumer>>,
    closed: CancellationToken,
}

impl KafkaInput {
    /// Check the input configuration and create (not yet subscribe) the consumer.
    pub(crate) fn new(
        name: &str,
        config: Arc<KafkaConfig>,
        health: BindingHealth,
    ) -> Result<Self, BindingError> {
        let first = if config.topics.is_empty() {
            None
        } else {
            Some(create_consumer(name, &config, &health)?)
        };
        Ok(KafkaInput {
            name: name.to_owned(),
            config,
            health,
            first: Mutex::new(first),
            current: Mutex::new(Weak::new()),
            closed: CancellationToken::new(),
        })
    }
}

fn create_consumer(
    name: &str,
    config: &KafkaConfig,
    health: &BindingHealth,
) -> Result<Arc<KafkaConsumer>, BindingError> {
    let group = config.consumer_group.as_deref().ok_or_else(|| {
        BindingError::config(
            "consumerGroup",
            "kafka error: consumerGroup is required to read topics",
        )
    })?;
    let (assigned, assignments) = mpsc::unbounded_channel();
    let consumer: KafkaConsumer = config
        .consumer_config(group)
        .create_with_context(InputContext {
            reporter: HealthReporter::new(name, "consumer", health.clone()),
            partitions: Arc::new(PartitionTable::default()),
            consumer: OnceLock::new(),
            assigned,
            assignments: Mutex::new(Some(assignments)),
        })
        .map_err(|e| crate::output::client_config_error("consumer", &e))?;
    let consumer = Arc::new(consumer);
    // Set before subscribing, so every assignment finds it.
    let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
    Ok(consumer)
}

/// What a worker needs besides its messages.
struct Worker {
    binding: String,
    tp: TopicPartition,
    state: Arc<PartitionState>,
    consumer: Arc<KafkaConsumer>,
    sink: EventSink,
    policy: RedeliveryPolicy,
    escape: bool,
    /// Cancelled when the read loop stops: finish the delivery in flight, start no other.
    stop: CancellationToken,
    /// Cancelled by a worker when the runtime answered `Closed`.
    draining: CancellationToken,
}

/// How a worker finished with one message.
enum Settled {
    /// Accepted (or dropped / dead-lettered) and stored.
    Done,
    /// The worker must stop (revoked, stopped or draining); the message is left for
    /// redelivery.
    Stop,
}

impl Worker {
    async fn run(self, queue: PartitionQueue) {
        let mut backoff = Backoff::new(self.policy.initial, self.policy.max);
        loop {
            // The event is made from the message borrowed from librdkafka: one copy of the
            // payload, and nothing held across a delivery.
            let (event, offset) = tokio::select! {
                biased;
                _ = self.state.revoked.cancelled() => return,
                _ = self.stop.cancelled() => return,
                m = queue.recv() => match m {
                    Ok(m) => (event_for(&m, self.escape), m.offset()),
                    Err(e) => {
                        if e.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
                            warn!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, error = %e, "kafka partition error");
                        }
                        continue;
                    }
                },
            };
            match self.settle(event, offset, &mut backoff).await {
                Settled::Done => {}
                Settled::Stop => return,
            }
            backoff.reset();
        }
    }

    /// Deliver `msg` until the app accepts it, or until this worker must stop.
    async fn settle(&self, event: InputEvent, offset: i64, backoff: &mut Backoff) -> Settled {
        let mut attempts: u64 = 0;
        loop {
            // A delivery in flight is finished even when stop or revoke arrive meanwhile: the
            // runtime drains in-flight events, and a revoked partition's next owner starts from
            // the last commit, so finishing only means fewer duplicates.
            let outcome = self.sink.deliver(event.clone()).await;
            if outcome.should_ack() {
                self.store(offset);
                if attempts > 0 {
                    debug!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, offset, attempts, "kafka message accepted after retries");
                }
                return Settled::Done;
            }
            let (reason, retry_after) = match outcome {
                Outcome::Failed {
                    reason,
                    retry_after,
                } => (reason, retry_after),
                _ => {
                    debug!(binding = %self.binding, "runtime is draining; kafka message left for redelivery");
                    self.draining.cancel();
                    return Settled::Stop;
                }
            };
            attempts += 1;
            let delay = backoff.delay_for(retry_after);
            if self.policy.warn_after == Some(attempts) {
                error!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, offset, attempts, error = %reason,
                    "kafka message still not accepted after backOffMaxRetries attempts; bindery keeps retrying it and its partition waits");
            } else if attempts == WARN_AFTER_ATTEMPTS {
                warn!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, offset, attempts, error = %reason,
                    "kafka message keeps failing; its partition waits until the app accepts it");
            } else {
                debug!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, offset, attempts, retry_in = ?delay, error = %reason, "kafka message not accepted; redelivering");
            }
            tokio::select! {
                biased;
                _ = self.state.revoked.cancelled() => return Settled::Stop,
                _ = self.stop.cancelled() => return Settled::Stop,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Record that every message up to `offset` was accepted.
    fn store(&self, offset: i64) {
        if self.state.revoked.is_cancelled() {
            return;
        }
        // rd_kafka_offset_store stores offset + 1, the next message to read.
        if let Err(e) = self.consumer.store_offset(&self.tp.0, self.tp.1, offset) {
            // Refused when the partition was revoked meanwhile: its next owner redelivers.
            debug!(binding = %self.binding, topic = %self.tp.0, partition = self.tp.1, offset, error = %e, "kafka offset not stored");
        }
    }
}

/// The read loop's state for one `read` call.
struct ReadLoop<'a> {
    input: &'a KafkaInput,
    consumer: Arc<KafkaConsumer>,
    sink: EventSink,
    workers: JoinSet<()>,
    /// One gate per partition so that a new worker starts only after the previous owner of
    /// the same partition in this process has finished its in-flight delivery.
    gates: HashMap<TopicPartition, Arc<tokio::sync::Mutex<()>>>,
    stop: CancellationToken,
    draining: CancellationToken,
    /// Whether the consumer reported a subscribed topic as missing.
    topics_missing: bool,
}

impl ReadLoop<'_> {
    fn start_worker(&mut self, assigned: Assigned) {
        let Assigned { tp, state, queue } = assigned;
        let gate = Arc::clone(self.gates.entry(tp.clone()).or_default());
        let worker = Worker {
            binding: self.input.name.clone(),
            tp,
            state,
            consumer: Arc::clone(&self.consumer),
            sink: self.sink.clone(),
            policy: self.input.config.redelivery,
            escape: self.input.config.escape_headers,
            stop: self.stop.clone(),
            draining: self.draining.clone(),
        };
        self.workers.spawn(async move {
            let _gate = tokio::select! {
                g = gate.lock_owned() => g,
                _ = worker.state.revoked.cancelled() => return,
                _ = worker.stop.cancelled() => return,
            };
            worker.run(queue).await;
        });
    }

    /// Receive until stopped. Returns an error only when the consumer cannot go on.
    async fn run(
        &mut self,
        shutdown: &CancellationToken,
        assignments: &mut mpsc::UnboundedReceiver<Assigned>,
    ) -> Result<(), BindingError> {
        let consumer = Arc::clone(&self.consumer);
        // Messages come through each partition's own queue; this stream serves rebalances and
        // errors.
        let mut stream = consumer.stream();
        let mut check = tokio::time::interval(MISSING_TOPIC_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.input.closed.cancelled() => return Ok(()),
                _ = self.draining.cancelled() => return Ok(()),
                Some(assigned) = assignments.recv() => self.start_worker(assigned),
                next = stream.next() => match next {
                    Some(Ok(m)) => {
                        // A partition without a queue of its own: its order against what a
                        // worker already took cannot be known, so start again from the
                        // committed offsets.
                        return Err(BindingError::unavailable(format!(
                            "kafka message of {}/{} outside its partition queue; restarting the consumer",
                            m.topic(),
                            m.partition()
                        )));
                    }
                    Some(Err(e)) => self.consumer_error(&e)?,
                    None => return Err(BindingError::internal("kafka message stream ended")),
                },
                _ = check.tick(), if self.topics_missing => self.check_topics().await,
            }
            while self.workers.try_join_next().is_some() {}
        }
    }

    /// When every subscribed topic exists by now, subscribe again so that the group assigns
    /// their partitions without waiting for librdkafka's next metadata refresh.
    async fn check_topics(&mut self) {
        let consumer = Arc::clone(&self.consumer);
        let topics = self.input.config.topics.clone();
        let all_exist = tokio::task::spawn_blocking(move || {
            topics.iter().all(|t| {
                consumer
                    .fetch_metadata(Some(t), std::time::Duration::from_secs(2))
                    .is_ok_and(|md| {
                        md.topics().iter().any(|mt| {
                            mt.name() == t && mt.error().is_none() && !mt.partitions().is_empty()
                        })
                    })
            })
        })
        .await
        .unwrap_or(false);
        if !all_exist {
            return;
        }
        let topics: Vec<&str> = self
            .input
            .config
            .topics
            .iter()
            .map(String::as_str)
            .collect();
        match self.consumer.subscribe(&topics) {
            Ok(()) => {
                info!(binding = %self.input.name, topics = ?topics, "subscribed kafka topics exist now; joining for their partitions");
                self.topics_missing = false;
            }
            Err(e) => {
                warn!(binding = %self.input.name, error = %e, "could not subscribe to kafka topics again");
            }
        }
    }

    fn consumer_error(&mut self, e: &KafkaError) -> Result<(), BindingError> {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::PartitionEOF) => Ok(()),
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition,
            ) => {
                if !self.topics_missing {
                    warn!(binding = %self.input.name, error = %e, "a subscribed kafka topic does not exist (yet); waiting for it");
                }
                self.topics_missing = true;
                Ok(())
            }
            Some(RDKafkaErrorCode::Fatal) => Err(BindingError::unavailable(format!(
                "kafka consumer failed for good: {e}"
            ))),
            _ => {
                warn!(binding = %self.input.name, error = %e, "kafka consumer error");
                Ok(())
            }
        }
    }
}

/// Commit what the app accepted, leave the group and free the consumer.
async fn commit_and_close(name: &str, consumer: Arc<KafkaConsumer>) {
    let name = name.to_owned();
    let closed = tokio::task::spawn_blocking(move || {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => debug!(binding = %name, "kafka offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                warn!(binding = %name, error = %e, "committing kafka offsets at stop failed; uncommitted messages will be delivered again")
            }
        }
        consumer.unsubscribe();
        // Dropping the last handle leaves the group (so the others take over at once) and
        // waits for librdkafka to close; hence the blocking thread.
        drop(consumer);
    })
    .await;
    if let Err(e) = closed {
        warn!(error = %e, "closing the kafka consumer failed");
    }
}

/// How many messages wait on the partitions assigned to `consumer` (blocking).
fn consumer_lag(consumer: &KafkaConsumer, initial: InitialOffset) -> KafkaResult<u64> {
    const ASK: std::time::Duration = std::time::Duration::from_secs(2);
    let assigned = consumer.assignment()?;
    if assigned.count() == 0 {
        return Ok(0);
    }
    let committed = consumer.committed_offsets(assigned, ASK)?;
    let mut lag = 0u64;
    for p in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(p.topic(), p.partition(), ASK)?;
        let from = match p.offset() {
            Offset::Offset(o) => o,
            _ => match initial {
                InitialOffset::Oldest => low,
                InitialOffset::Newest => high,
            },
        };
        lag += u64::try_from(high - from.max(low)).unwrap_or(0);
    }
    Ok(lag)
}

#[bindery_core::async_trait]
impl InputBinding for KafkaInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        if self.config.topics.is_empty() {
            warn!(binding = %self.name, "kafka binding: no topic defined (metadata 'topics'); the input side reads nothing");
            self.health.connected();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.closed.cancelled() => {}
            }
            return Ok(());
        }
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        let consumer = match first {
            Some(c) => c,
            None => create_consumer(&self.name, &self.config, &self.health)?,
        };
        // Taken before subscribing: assignments (and the queues they hold, which keep the
        // consumer alive) must never wait inside the consumer's own context.
        let assignments = consumer
            .context()
            .assignments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut assignments) = assignments else {
            return Err(BindingError::internal("kafka consumer already in use"));
        };
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&topics) {
            let err = BindingError::config(
                "topics",
                format!("kafka error: cannot subscribe to {topics:?}: {e}"),
            );
            drop(assignments);
            commit_and_close(&self.name, consumer).await;
            return Err(err);
        }
        info!(binding = %self.name, topics = ?topics, group = ?self.config.consumer_group, "kafka consumer subscribed");
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&consumer);
        let mut lp = ReadLoop {
            input: self,
            consumer: Arc::clone(&consumer),
            sink,
            workers: JoinSet::new(),
            gates: HashMap::new(),
            stop: CancellationToken::new(),
            draining: CancellationToken::new(),
            topics_missing: false,
        };
        let result = lp.run(&shutdown, &mut assignments).await;
        // Stop fetching; let each worker finish its delivery in flight and store it.
        lp.stop.cancel();
        while lp.workers.join_next().await.is_some() {}
        drop(lp);
        // Partition queues not yet handed to a worker hold the consumer too.
        drop(assignments);
        commit_and_close(&self.name, consumer).await;
        result
    }

    /// Consumer lag over the partitions assigned to this consumer: each partition's high
    /// watermark minus the group's committed offset (or, before the group committed anything,
    /// the offset `initialOffset` starts from).
    async fn backlog(&self) -> Option<u64> {
        let consumer = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()?;
        let initial = self.config.initial_offset;
        let name = self.name.clone();
        // librdkafka's calls block; the consumer handle is dropped on that thread too.
        let lag = tokio::task::spawn_blocking(move || consumer_lag(&consumer, initial));
        match lag.await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                debug!(binding = %name, error = %e, "cannot read the consumer lag");
                None
            }
            Err(_) => None,
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(consumer) = first {
            let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    fn message(key: Option<&[u8]>, headers: Option<OwnedHeaders>) -> OwnedMessage {
        OwnedMessage::new(
            Some(b"payload".to_vec()),
            key.map(<[u8]>::to_vec),
            "orders".into(),
            Timestamp::CreateTime(1_700_000_000_123),
            2,
            42,
            headers,
        )
    }

    #[test]
    fn event_carries_dapr_metadata() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some("a b/c"),
        });
        let e = event_for(&message(Some(b"k 1"), Some(headers)), false);
        assert_eq!(e.data.as_ref(), b"payload");
        assert_eq!(e.metadata[KEY], "k 1");
        assert_eq!(e.metadata[TOPIC], "orders");
        assert_eq!(e.metadata[PARTITION], "2");
        assert_eq!(e.metadata[OFFSET], "42");
        assert_eq!(e.metadata[TIMESTAMP], "1700000000123");
        assert_eq!(e.metadata["trace"], "a b/c");
    }

    #[test]
    fn escaped_headers_follow_go_query_escape() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "h",
                value: Some("a b/c?d=é"),
            })
            .insert(Header::<&[u8]> {
                key: "null",
                value: None,
            });
        let e = event_for(&message(Some(b"k/1"), Some(headers)), true);
        assert_eq!(e.metadata["h"], "a+b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(e.metadata["null"], "");
        assert_eq!(e.metadata[KEY], "k%2F1");
        assert_eq!(query_escape(b"AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(query_escape(&[0xff, b'\n']), "%FF%0A");
    }

    #[test]
    fn headers_cannot_hide_the_real_position() {
        let headers = OwnedHeaders::new().insert(Header {
            key: OFFSET,
            value: Some("999"),
        });
        let e = event_for(&message(None, Some(headers)), false);
        assert_eq!(e.metadata[OFFSET], "42");
        assert!(!e.metadata.contains_key(KEY));
    }

    #[test]
    fn missing_timestamp_is_left_out() {
        let m = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, None);
        let e = event_for(&m, false);
        assert!(!e.metadata.contains_key(TIMESTAMP));
        assert!(e.data.is_empty());
    }
}
