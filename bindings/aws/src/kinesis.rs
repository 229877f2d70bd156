//! `bindings.aws.kinesis`: put records into and read records from one Kinesis stream.
//!
//! The input (mode `shared`) polls every shard with GetShardIterator/GetRecords. Each shard's
//! records are delivered one at a time in sequence order; a record the app fails is delivered
//! again after a backoff and never skipped; the shard's position (its checkpoint) moves only
//! past records whose outcome says to acknowledge them. With `consumerName`, checkpoints are
//! kept in the DynamoDB table of that name (key `ShardID`, attribute `Checkpoint`, the layout
//! of the Kinesis Client Library that daprd uses), so a restart resumes after the last
//! acknowledged record.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_smithy_types::date_time::Format;
use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, CancellationToken, ComponentContext,
    Direction, EventSink, InputBinding, InputEvent, InvokeRequest, InvokeResponse, Metadata,
    MetadataField, Outcome, OutputBinding, async_trait,
};
use tokio::task::JoinSet;

use crate::common::{AwsSettings, parse_or_join, probe_error, sdk_error};

/// Request metadata: the partition key of a new record (default: a random UUID).
pub const PARTITION_KEY: &str = "partitionKey";
/// Event metadata: the shard the record came from.
pub const SHARD_ID: &str = "shardId";
/// Event metadata: the record's sequence number.
pub const SEQUENCE_NUMBER: &str = "sequenceNumber";
/// Event metadata: when Kinesis received the record (RFC 3339).
pub const ARRIVAL_TIMESTAMP: &str = "arrivalTimestamp";

/// The checkpoint value for a shard read to its end (after a reshard), as the KCL writes it.
const SHARD_END: &str = "SHARD_END";
/// How often the shard list is refreshed to pick up shards made by resharding.
const SHARD_REFRESH: Duration = Duration::from_secs(30);

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.aws.kinesis",
    aliases: &[],
    direction: Direction::Both,
    operations: &["create"],
    metadata: fields![
        MetadataField::required("streamName", "the stream"),
        MetadataField::optional(
            "consumerName",
            "input: the DynamoDB table (created if missing) that keeps each shard's checkpoint",
        ),
        MetadataField::optional(
            "mode",
            "input: shared (polling) or extended (enhanced fan-out: not supported by bindery yet)",
        )
        .default("shared"),
        MetadataField::optional(
            "initialPosition",
            "bindery: where a shard without a checkpoint starts: latest or trim_horizon",
        )
        .default("latest"),
        MetadataField::optional(
            "pollInterval",
            "bindery: pause before polling a shard again after an empty read",
        )
        .default("1s"),
        MetadataField::optional(
            "backOffInitialInterval",
            "bindery: first pause before a record the app failed is delivered again",
        )
        .default("500ms"),
        MetadataField::optional("backOffMaxInterval", "bindery: longest such pause",)
            .default("60s"),
        MetadataField::optional(
            "partitionKey",
            "unused in component metadata: the partition key is request metadata of create",
        ),
    ],
    summary: "Puts records into and reads records from a Kinesis stream",
};

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitialPosition {
    Latest,
    TrimHorizon,
}

/// The parsed component metadata.
#[derive(Debug, Clone)]
pub(crate) struct KinesisConfig {
    pub(crate) aws: AwsSettings,
    pub(crate) stream_name: String,
    pub(crate) consumer_name: Option<String>,
    pub(crate) initial_position: InitialPosition,
    pub(crate) poll_interval: Duration,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl KinesisConfig {
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let aws = AwsSettings::parse(&r, false);
        let stream_name = r.required("streamName", "kinesis binding error: missing streamName");
        match r.string_or("mode", "shared").to_ascii_lowercase().as_str() {
            "shared" => {}
            "extended" => r.error(
                "mode",
                "aws.kinesis mode \"extended\" (enhanced fan-out) is not supported by bindery yet; use mode \"shared\"",
            ),
            other => r.error("mode", format!("aws.kinesis invalid \"mode\" field {other}")),
        }
        let initial_position = match r
            .string_or("initialPosition", "latest")
            .to_ascii_lowercase()
            .as_str()
        {
            "latest" => InitialPosition::Latest,
            "trim_horizon" | "trimhorizon" | "oldest" => InitialPosition::TrimHorizon,
            other => {
                r.error(
                    "initialPosition",
                    format!("initialPosition {other:?} must be latest or trim_horizon"),
                );
                InitialPosition::Latest
            }
        };
        let config = KinesisConfig {
            aws,
            stream_name,
            consumer_name: r.string("consumerName"),
            initial_position,
            poll_interval: r.duration("pollInterval", Duration::from_secs(1)),
            backoff_initial: r.duration("backOffInitialInterval", Duration::from_millis(500)),
            backoff_max: r.duration("backOffMaxInterval", Duration::from_secs(60)),
        };
        r.finish().map(|()| config)
    }
}

/// The factory for `bindings.aws.kinesis`.
#[derive(Debug, Default)]
pub struct KinesisFactory;

#[async_trait]
impl BindingFactory for KinesisFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        KinesisConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, KinesisConfig::parse)?;
        let client = Client::new(&config.aws.sdk_config().await);
        client
            .describe_stream_summary()
            .stream_name(&config.stream_name)
            .send()
            .await
            .map_err(|e| {
                probe_error(
                    &format!("kinesis binding error: stream {}", config.stream_name),
                    e,
                )
            })?;
        ctx.health.connected();
        Ok(Box::new(KinesisOutput {
            config,
            client,
            closed: AtomicBool::new(false),
        }))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, KinesisConfig::parse)?;
        let sdk = config.aws.sdk_config().await;
        let checkpoints = Checkpoints {
            table: config
                .consumer_name
                .clone()
                .map(|t| (aws_sdk_dynamodb::Client::new(&sdk), t)),
            memory: std::sync::Mutex::new(HashMap::new()),
        };
        Ok(Box::new(KinesisInput {
            shared: Arc::new(Shared {
                client: Client::new(&sdk),
                config,
                checkpoints,
                health: ctx.health.clone(),
            }),
        }))
    }
}

/// The output side.
pub(crate) struct KinesisOutput {
    config: KinesisConfig,
    client: Client,
    closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for KinesisOutput {
    fn operations(&self) -> &[&'static str] {
        SPEC.operations
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if req.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "kinesis binding error: unsupported operation {}",
                req.operation
            )));
        }
        let key = req
            .metadata
            .get(PARTITION_KEY)
            .filter(|k| !k.is_empty())
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        self.client
            .put_record()
            .stream_name(&self.config.stream_name)
            .partition_key(key)
            .data(Blob::new(req.data.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("kinesis binding error: put record failed", e))?;
        Ok(None)
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// Shard checkpoints: in a DynamoDB table when `consumerName` is set, else in memory (a
/// restart then starts again from `initialPosition`).
struct Checkpoints {
    table: Option<(aws_sdk_dynamodb::Client, String)>,
    memory: std::sync::Mutex<HashMap<String, String>>,
}

impl Checkpoints {
    /// Make sure the table exists (create it on demand, as the KCL does) and is active.
    async fn ensure(&self) -> Result<(), BindingError> {
        let Some((db, table)) = &self.table else {
            return Ok(());
        };
        let ctx = format!("kinesis binding error: checkpoint table {table}");
        match db.describe_table().table_name(table).send().await {
            Ok(out) => {
                if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    return Ok(());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                let create = db
                    .create_table()
                    .table_name(table)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("ShardID")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| BindingError::internal(format!("{ctx}: {e}")))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("ShardID")
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|e| BindingError::internal(format!("{ctx}: {e}")))?,
                    )
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await;
                if let Err(e) = create {
                    // Another replica may have created it meanwhile.
                    if !e
                        .as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception())
                    {
                        return Err(sdk_error(&ctx, e));
                    }
                }
            }
            Err(e) => return Err(sdk_error(&ctx, e)),
        }
        for _ in 0..300 {
            let out = db
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| sdk_error(&ctx, e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(BindingError::unavailable(format!(
            "{ctx}: not active after 60s"
        )))
    }

    async fn get(&self, shard: &str) -> Result<Option<String>, BindingError> {
        let Some((db, table)) = &self.table else {
            return Ok(self
                .memory
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(shard)
                .cloned());
        };
        let out = db
            .get_item()
            .table_name(table)
            .key("ShardID", AttributeValue::S(shard.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("kinesis binding error: reading a checkpoint", e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("Checkpoint"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn set(&self, shard: &str, checkpoint: &str) -> Result<(), BindingError> {
        let Some((db, table)) = &self.table else {
            self.memory
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(shard.to_owned(), checkpoint.to_owned());
            return Ok(());
        };
        db.update_item()
            .table_name(table)
            .key("ShardID", AttributeValue::S(shard.to_owned()))
            .update_expression("SET Checkpoint = :c")
            .expression_attribute_values(":c", AttributeValue::S(checkpoint.to_owned()))
            .send()
            .await
            .map_err(|e| sdk_error("kinesis binding error: writing a checkpoint", e))?;
        Ok(())
    }
}

struct Shared {
    client: Client,
    config: KinesisConfig,
    checkpoints: Checkpoints,
    health: BindingHealth,
}

/// The input side.
pub(crate) struct KinesisInput {
    shared: Arc<Shared>,
}

/// One shard as listed: its id and its parents (which must be read to their end first).
struct ShardInfo {
    id: String,
    parents: Vec<String>,
}

impl Shared {
    async fn list_shards(&self) -> Result<Vec<ShardInfo>, BindingError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = self.client.list_shards();
            call = match &token {
                Some(t) => call.next_token(t),
                None => call.stream_name(&self.config.stream_name),
            };
            let page = call
                .send()
                .await
                .map_err(|e| sdk_error("kinesis binding error: listing shards", e))?;
            out.extend(page.shards().iter().map(|s| {
                ShardInfo {
                    id: s.shard_id().to_owned(),
                    parents: s
                        .parent_shard_id()
                        .into_iter()
                        .chain(s.adjacent_parent_shard_id())
                        .map(str::to_owned)
                        .collect(),
                }
            }));
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(out),
            }
        }
    }

    async fn iterator(&self, shard: &str, after: Option<&str>) -> Result<String, BindingError> {
        let mut call = self
            .client
            .get_shard_iterator()
            .stream_name(&self.config.stream_name)
            .shard_id(shard);
        call = match after {
            Some(seq) => call
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            None => call.shard_iterator_type(match self.config.initial_position {
                InitialPosition::Latest => ShardIteratorType::Latest,
                InitialPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
            }),
        };
        let out = call
            .send()
            .await
            .map_err(|e| sdk_error("kinesis binding error: getting a shard iterator", e))?;
        out.shard_iterator().map(str::to_owned).ok_or_else(|| {
            BindingError::unavailable("kinesis binding error: no shard iterator returned")
        })
    }

    fn event(shard: &str, record: &Record) -> InputEvent {
        let mut e = InputEvent::new(record.data().as_ref().to_vec());
        e.metadata.insert(SHARD_ID.into(), shard.to_owned());
        e.metadata
            .insert(SEQUENCE_NUMBER.into(), record.sequence_number().to_owned());
        if let Some(k) = record.partition_key() {
            e.metadata.insert(PARTITION_KEY.into(), k.to_owned());
        }
        if let Some(t) = record
            .approximate_arrival_timestamp()
            .and_then(|t| t.fmt(Format::DateTime).ok())
        {
            e.metadata.insert(ARRIVAL_TIMESTAMP.into(), t);
        }
        e
    }

    async fn pause(stop: &CancellationToken, delay: Duration) -> bool {
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    /// Save the checkpoint, retrying while the store is unreachable: returns once written or
    /// when stopping (then the records after the stored checkpoint are simply read again).
    async fn save(&self, shard: &str, checkpoint: &str, stop: &CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        for _ in 0..20 {
            match self.checkpoints.set(shard, checkpoint).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(shard, error = %e, "kinesis checkpoint not written; retrying");
                    if !Self::pause(stop, backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }

    /// Read one shard until it ends (`true`) or reading stops (`false`).
    async fn read_shard(&self, shard: &str, sink: &EventSink, stop: &CancellationToken) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut acked = loop {
            match self.checkpoints.get(shard).await {
                Ok(c) => break c,
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    if !Self::pause(stop, backoff.next_delay()).await {
                        return false;
                    }
                }
            }
        };
        if acked.as_deref() == Some(SHARD_END) {
            return true;
        }
        let mut saved = acked.clone();
        let mut redelivery = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut iterator: Option<String> = None;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let it = match iterator.take() {
                Some(it) => it,
                None => match self.iterator(shard, acked.as_deref()).await {
                    Ok(it) => it,
                    Err(e) => {
                        self.health.disconnected(e.to_string());
                        tracing::warn!(shard, error = %e, "kinesis shard iterator failed; retrying");
                        if !Self::pause(stop, backoff.next_delay()).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            let got = tokio::select! {
                _ = stop.cancelled() => break,
                got = self.client.get_records().shard_iterator(&it).limit(1000).send() => got,
            };
            let out = match got {
                Ok(out) => out,
                Err(e) => {
                    // An expired or rejected iterator is replaced by a fresh one after the
                    // last acknowledged record; nothing is skipped.
                    let e = sdk_error("kinesis binding error: reading records", e);
                    self.health.disconnected(e.to_string());
                    tracing::warn!(shard, error = %e, "kinesis get records failed; retrying");
                    if !Self::pause(stop, backoff.next_delay()).await {
                        break;
                    }
                    continue;
                }
            };
            self.health.connected();
            backoff.reset();
            for record in out.records() {
                self.health.event_received();
                loop {
                    let outcome = sink.deliver(Self::event(shard, record)).await;
                    if outcome.should_ack() {
                        acked = Some(record.sequence_number().to_owned());
                        redelivery.reset();
                        break;
                    }
                    match outcome {
                        Outcome::Closed => {
                            self.finish(shard, &acked, &saved, stop).await;
                            stop.cancel();
                            return false;
                        }
                        Outcome::Failed { retry_after, .. } => {
                            if !Self::pause(stop, redelivery.delay_for(retry_after)).await {
                                self.finish(shard, &acked, &saved, stop).await;
                                return false;
                            }
                        }
                        _ => break,
                    }
                }
            }
            if acked != saved
                && let Some(a) = &acked
            {
                self.save(shard, a, stop).await;
                saved = acked.clone();
            }
            match out.next_shard_iterator() {
                Some(next) => iterator = Some(next.to_owned()),
                None => {
                    // The shard was closed by a reshard and is read to its end.
                    self.save(shard, SHARD_END, stop).await;
                    return true;
                }
            }
            if out.records().is_empty() && !Self::pause(stop, self.config.poll_interval).await {
                break;
            }
        }
        self.finish(shard, &acked, &saved, stop).await;
        false
    }

    async fn finish(
        &self,
        shard: &str,
        acked: &Option<String>,
        saved: &Option<String>,
        _stop: &CancellationToken,
    ) {
        if acked != saved
            && let Some(a) = acked
        {
            // Stopping: one attempt with a fresh token, so the write is not cut short.
            self.save(shard, a, &CancellationToken::new()).await;
        }
    }
}

#[async_trait]
impl InputBinding for KinesisInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        let shared = &self.shared;
        let stop = shutdown.child_token();
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        // Make sure the checkpoint table exists before any shard is read.
        loop {
            match shared.checkpoints.ensure().await {
                Ok(()) => break,
                Err(e) => {
                    shared.health.disconnected(e.to_string());
                    tracing::warn!(error = %e, "kinesis checkpoint table not ready; retrying");
                    if !Shared::pause(&stop, backoff.next_delay()).await {
                        return Ok(());
                    }
                }
            }
        }
        let mut tasks: JoinSet<(String, bool)> = JoinSet::new();
        let mut running: HashSet<String> = HashSet::new();
        let mut ended: HashSet<String> = HashSet::new();
        while !stop.is_cancelled() {
            match shared.list_shards().await {
                Ok(shards) => {
                    shared.health.connected();
                    backoff.reset();
                    let listed: HashSet<&str> = shards.iter().map(|s| s.id.as_str()).collect();
                    for s in &shards {
                        if running.contains(&s.id) || ended.contains(&s.id) {
                            continue;
                        }
                        // A child shard waits until its parents are read to their end.
                        let waiting = s
                            .parents
                            .iter()
                            .any(|p| listed.contains(p.as_str()) && !ended.contains(p));
                        if waiting {
                            continue;
                        }
                        running.insert(s.id.clone());
                        let shared = Arc::clone(shared);
                        let sink = sink.clone();
                        let stop = stop.clone();
                        let id = s.id.clone();
                        tasks.spawn(async move {
                            let done = shared.read_shard(&id, &sink, &stop).await;
                            (id, done)
                        });
                    }
                }
                Err(e) => {
                    shared.health.disconnected(e.to_string());
                    tracing::warn!(stream = %shared.config.stream_name, error = %e, "kinesis list shards failed; retrying");
                }
            }
            let wait = if shared.health.snapshot().connected {
                SHARD_REFRESH
            } else {
                backoff.next_delay()
            };
            let deadline = tokio::time::sleep(wait);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = &mut deadline => break,
                    Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                        if let Ok((id, finished)) = done {
                            running.remove(&id);
                            if finished {
                                ended.insert(id);
                                // Children of this shard can start now.
                                break;
                            }
                        }
                    }
                }
            }
        }
        stop.cancel();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fields() {
        let c = KinesisConfig::parse(&Metadata::from_pairs([("streamName", "s")])).unwrap();
        assert_eq!(c.stream_name, "s");
        assert_eq!(c.consumer_name, None);
        assert_eq!(c.initial_position, InitialPosition::Latest);
        assert_eq!(c.poll_interval, Duration::from_secs(1));
        assert_eq!(c.backoff_initial, Duration::from_millis(500));
        assert_eq!(c.backoff_max, Duration::from_secs(60));
        let c = KinesisConfig::parse(&Metadata::from_pairs([
            ("streamName", "s"),
            ("consumerName", "c"),
            ("mode", "SHARED"),
            ("initialPosition", "trim_horizon"),
            ("pollInterval", "100ms"),
        ]))
        .unwrap();
        assert_eq!(c.consumer_name.as_deref(), Some("c"));
        assert_eq!(c.initial_position, InitialPosition::TrimHorizon);
        assert_eq!(c.poll_interval, Duration::from_millis(100));
    }

    #[test]
    fn extended_mode_is_a_clear_config_error() {
        let e = KinesisConfig::parse(&Metadata::from_pairs([
            ("streamName", "s"),
            ("mode", "extended"),
        ]))
        .unwrap_err();
        assert_eq!(e[0].field(), Some("mode"));
        assert!(
            e[0].message().contains("not supported by bindery yet"),
            "{e:?}"
        );
        let e = KinesisConfig::parse(&Metadata::from_pairs([("mode", "weird")])).unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field().unwrap()).collect();
        assert_eq!(fields, ["streamName", "mode"]);
    }

    #[test]
    fn events_carry_shard_sequence_key_and_arrival() {
        let r = Record::builder()
            .sequence_number("4960")
            .partition_key("pk")
            .data(Blob::new(b"payload".to_vec()))
            .approximate_arrival_timestamp(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .build()
            .unwrap();
        let e = Shared::event("shardId-000000000000", &r);
        assert_eq!(&e.data[..], b"payload");
        assert_eq!(e.metadata[SHARD_ID], "shardId-000000000000");
        assert_eq!(e.metadata[SEQUENCE_NUMBER], "4960");
        assert_eq!(e.metadata[PARTITION_KEY], "pk");
        assert_eq!(e.metadata[ARRIVAL_TIMESTAMP], "2023-11-14T22:13:20Z");
    }
}
