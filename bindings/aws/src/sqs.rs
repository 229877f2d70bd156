//! `bindings.aws.sqs`: send to and receive from one SQS queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use bindery_core::util::Backoff;
use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, CancellationToken, ComponentContext,
    Direction, EventSink, InputBinding, InputEvent, InvokeRequest, InvokeResponse, Metadata,
    MetadataField, Outcome, OutputBinding, async_trait,
};

use crate::common::{AwsSettings, parse_or_join, probe_error, sdk_error};

/// Event metadata: the SQS message id.
pub const MESSAGE_ID: &str = "messageID";
/// Event metadata: when the message was sent, milliseconds since the Unix epoch.
pub const SENT_TIMESTAMP: &str = "sentTimestamp";
/// Event metadata: how many times SQS handed the message out (1 on first delivery).
pub const RECEIVE_COUNT: &str = "approximateReceiveCount";

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.aws.sqs",
    aliases: &[],
    direction: Direction::Both,
    operations: &["create"],
    metadata: fields![
        MetadataField::required(
            "queueName",
            "the queue; its URL is looked up with GetQueueUrl"
        ),
        MetadataField::optional(
            "waitTimeSeconds",
            "bindery: long-poll wait of each ReceiveMessage, 0 to 20 seconds",
        )
        .default("20"),
        MetadataField::optional(
            "maxNumberOfMessages",
            "bindery: messages per ReceiveMessage, 1 to 10",
        )
        .default("10"),
        MetadataField::optional(
            "backOffInitialInterval",
            "bindery: how long a message the app failed stays hidden before redelivery",
        )
        .default("1s"),
        MetadataField::optional(
            "backOffMaxInterval",
            "bindery: the longest such pause (doubles with each receive)",
        )
        .default("60s"),
    ],
    summary: "Sends to and receives from an SQS queue",
};

/// The parsed component metadata.
#[derive(Debug, Clone)]
pub(crate) struct SqsConfig {
    pub(crate) aws: AwsSettings,
    pub(crate) queue_name: String,
    pub(crate) wait_time_seconds: i32,
    pub(crate) max_messages: i32,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl SqsConfig {
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let aws = AwsSettings::parse(&r, false);
        let queue_name = r.required("queueName", "sqs binding error: missing queueName");
        let wait_time_seconds: i32 = r.int("waitTimeSeconds", 20);
        if !(0..=20).contains(&wait_time_seconds) {
            r.error(
                "waitTimeSeconds",
                "waitTimeSeconds must be between 0 and 20",
            );
        }
        let max_messages: i32 = r.int("maxNumberOfMessages", 10);
        if !(1..=10).contains(&max_messages) {
            r.error(
                "maxNumberOfMessages",
                "maxNumberOfMessages must be between 1 and 10",
            );
        }
        let config = SqsConfig {
            aws,
            queue_name,
            wait_time_seconds,
            max_messages,
            backoff_initial: r.duration("backOffInitialInterval", Duration::from_secs(1)),
            backoff_max: r.duration("backOffMaxInterval", Duration::from_secs(60)),
        };
        r.finish().map(|()| config)
    }

    fn fifo(&self) -> bool {
        self.queue_name.ends_with(".fifo")
    }

    /// How long a failed message stays hidden: the app's `Retry-After` when it gave one, else
    /// `backOffInitialInterval` doubled for each earlier receive, at most `backOffMaxInterval`.
    /// SQS counts in whole seconds (at most 12 hours).
    pub(crate) fn redelivery_delay(
        &self,
        receive_count: u32,
        retry_after: Option<Duration>,
    ) -> i32 {
        let delay = match retry_after {
            Some(d) => d.min(self.backoff_max),
            None => {
                let doublings = receive_count.saturating_sub(1).min(30);
                self.backoff_initial
                    .saturating_mul(1u32 << doublings)
                    .min(self.backoff_max)
            }
        };
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        secs.min(43_200) as i32
    }
}

/// The factory for `bindings.aws.sqs`.
#[derive(Debug, Default)]
pub struct SqsFactory;

#[async_trait]
impl BindingFactory for SqsFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        SqsConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse_or_join(&ctx.metadata, SqsConfig::parse)?;
        let queue = Queue::new(config).await;
        queue.url().await?;
        ctx.health.connected();
        Ok(Box::new(SqsOutput {
            queue,
            closed: AtomicBool::new(false),
        }))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        // The queue URL is looked up in `read`, so a queue or endpoint that is not there yet is
        // retried in the background.
        let config = parse_or_join(&ctx.metadata, SqsConfig::parse)?;
        Ok(Box::new(SqsInput {
            queue: Arc::new(Queue::new(config).await),
            health: ctx.health.clone(),
        }))
    }
}

/// One queue: the client and its URL, looked up once and cached until SQS says the queue is
/// gone.
pub(crate) struct Queue {
    config: SqsConfig,
    client: Client,
    url: std::sync::Mutex<Option<String>>,
}

impl Queue {
    async fn new(config: SqsConfig) -> Self {
        let sdk = config.aws.sdk_config().await;
        Queue {
            client: Client::new(&sdk),
            config,
            url: std::sync::Mutex::new(None),
        }
    }

    async fn url(&self) -> Result<String, BindingError> {
        if let Some(u) = self.url.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(u);
        }
        let out = self
            .client
            .get_queue_url()
            .queue_name(&self.config.queue_name)
            .send()
            .await
            .map_err(|e| {
                probe_error(
                    &format!("sqs binding error: queue {}", self.config.queue_name),
                    e,
                )
            })?;
        let url = out.queue_url().unwrap_or_default().to_owned();
        *self.url.lock().unwrap_or_else(|p| p.into_inner()) = Some(url.clone());
        Ok(url)
    }

    /// Forget the URL when SQS says the queue does not exist (deleted and maybe re-created).
    fn forget_if_gone(&self, code: Option<&str>) {
        if code.is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist")) {
            *self.url.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// The output side.
pub(crate) struct SqsOutput {
    queue: Queue,
    closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for SqsOutput {
    fn operations(&self) -> &[&'static str] {
        SPEC.operations
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if req.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "sqs binding error: unsupported operation {}",
                req.operation
            )));
        }
        let body = std::str::from_utf8(&req.data).map_err(|_| {
            BindingError::invalid_request("sqs binding error: the message body must be UTF-8 text")
        })?;
        let url = self.queue.url().await?;
        self.queue
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                self.queue
                    .forget_if_gone(crate::common::error_code(&e).as_deref());
                sdk_error("sqs binding error: send failed", e)
            })?;
        Ok(None)
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// The input side: a long-poll loop.
pub(crate) struct SqsInput {
    queue: Arc<Queue>,
    health: BindingHealth,
}

/// What became of one message, for the receive loop.
enum Handled {
    Done,
    /// Not accepted: for a FIFO queue the rest of the batch must wait behind it.
    Failed,
    /// The runtime is draining.
    Closed,
}

impl SqsInput {
    fn event(msg: &Message) -> InputEvent {
        let mut event = InputEvent::new(msg.body().unwrap_or_default().to_owned());
        if let Some(id) = msg.message_id() {
            event.metadata.insert(MESSAGE_ID.into(), id.to_owned());
        }
        if let Some(attrs) = msg.attributes() {
            if let Some(ts) = attrs.get(&MessageSystemAttributeName::SentTimestamp) {
                event.metadata.insert(SENT_TIMESTAMP.into(), ts.clone());
            }
            if let Some(n) = attrs.get(&MessageSystemAttributeName::ApproximateReceiveCount) {
                event.metadata.insert(RECEIVE_COUNT.into(), n.clone());
            }
        }
        if let Some(attrs) = msg.message_attributes() {
            for (name, value) in attrs {
                if let Some(s) = value.string_value() {
                    event.metadata.insert(name.clone(), s.to_owned());
                }
            }
        }
        event
    }

    /// Deliver one message and settle it with SQS: delete once the outcome says so; otherwise
    /// hide it for the backoff delay, so that SQS offers it again after that delay rather than
    /// after the queue's whole visibility timeout.
    async fn handle(&self, url: &str, msg: &Message, sink: &EventSink) -> Handled {
        self.health.event_received();
        let Some(receipt) = msg.receipt_handle() else {
            return Handled::Done;
        };
        let receive_count: u32 = msg
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let outcome = sink.deliver(Self::event(msg)).await;
        if outcome.should_ack() {
            self.delete(url, receipt).await;
            return Handled::Done;
        }
        match outcome {
            Outcome::Closed => {
                self.set_visibility(url, receipt, 0).await;
                Handled::Closed
            }
            Outcome::Failed {
                reason,
                retry_after,
            } => {
                let delay = self
                    .queue
                    .config
                    .redelivery_delay(receive_count, retry_after);
                tracing::debug!(queue = %self.queue.config.queue_name, reason = %reason, delay_secs = delay, "sqs message not accepted; redelivered after the delay");
                self.set_visibility(url, receipt, delay).await;
                Handled::Failed
            }
            _ => Handled::Done,
        }
    }

    async fn delete(&self, url: &str, receipt: &str) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 1..=5 {
            match self
                .queue
                .client
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await
            {
                Ok(_) => return,
                Err(e) => {
                    let e = sdk_error("sqs binding error: delete failed", e);
                    if attempt == 5 || !e.is_retryable() {
                        // At least once: SQS offers the message again after its visibility
                        // timeout, and the app sees it twice.
                        tracing::warn!(queue = %self.queue.config.queue_name, error = %e, "could not delete an accepted sqs message; it will be redelivered");
                        return;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    async fn set_visibility(&self, url: &str, receipt: &str, seconds: i32) {
        if let Err(e) = self
            .queue
            .client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
        {
            // The message still comes back, after the queue's visibility timeout.
            let e = sdk_error("sqs binding error: change visibility failed", e);
            tracing::warn!(queue = %self.queue.config.queue_name, error = %e, "could not shorten an sqs message's visibility");
        }
    }

    /// Offer the rest of a batch again at once (FIFO order after a failure, or draining).
    async fn release(&self, url: &str, rest: &[Message]) {
        for m in rest {
            if let Some(r) = m.receipt_handle() {
                self.set_visibility(url, r, 0).await;
            }
        }
    }

    async fn pause(&self, backoff: &mut Backoff, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(backoff.next_delay()) => true,
        }
    }
}

#[async_trait]
impl InputBinding for SqsInput {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        let config = &self.queue.config;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        while !shutdown.is_cancelled() {
            let url = tokio::select! {
                _ = shutdown.cancelled() => break,
                url = self.queue.url() => url,
            };
            let url = match url {
                Ok(u) => u,
                Err(e) => {
                    self.health.disconnected(e.to_string());
                    tracing::warn!(queue = %config.queue_name, error = %e, "sqs queue not reachable; retrying");
                    if !self.pause(&mut backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let receive = self
                .queue
                .client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(config.max_messages)
                .wait_time_seconds(config.wait_time_seconds)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            // Cancelling a long poll on shutdown is safe: anything it had received stays
            // hidden for the visibility timeout and is then offered again.
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = receive => r,
            };
            let messages = match received {
                Ok(out) => {
                    self.health.connected();
                    backoff.reset();
                    out.messages.unwrap_or_default()
                }
                Err(e) => {
                    self.queue
                        .forget_if_gone(crate::common::error_code(&e).as_deref());
                    let e = sdk_error("sqs binding error: receive failed", e);
                    self.health.disconnected(e.to_string());
                    tracing::warn!(queue = %config.queue_name, error = %e, "sqs receive failed; retrying");
                    if !self.pause(&mut backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let closed = if config.fifo() {
                // In order, one at a time; after a failure the rest waits behind it.
                let mut closed = false;
                for (i, m) in messages.iter().enumerate() {
                    match self.handle(&url, m, &sink).await {
                        Handled::Done => {}
                        Handled::Failed => {
                            self.release(&url, &messages[i + 1..]).await;
                            break;
                        }
                        Handled::Closed => {
                            self.release(&url, &messages[i + 1..]).await;
                            closed = true;
                            break;
                        }
                    }
                }
                closed
            } else {
                let results =
                    futures::future::join_all(messages.iter().map(|m| self.handle(&url, m, &sink)))
                        .await;
                results.iter().any(|h| matches!(h, Handled::Closed))
            };
            if closed {
                break;
            }
        }
        Ok(())
    }

    /// The queue's `ApproximateNumberOfMessages`: visible messages waiting for a receive.
    async fn backlog(&self) -> Option<u64> {
        let url = self.queue.url().await.ok()?;
        let out = self
            .queue
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| {
                let e = sdk_error("sqs binding error: get queue attributes failed", e);
                tracing::debug!(queue = %self.queue.config.queue_name, error = %e, "cannot read the queue depth");
            })
            .ok()?;
        out.attributes()?
            .get(&QueueAttributeName::ApproximateNumberOfMessages)?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_fields() {
        let c = SqsConfig::parse(&Metadata::from_pairs([("queueName", "q")])).unwrap();
        assert_eq!(c.queue_name, "q");
        assert_eq!(c.wait_time_seconds, 20);
        assert_eq!(c.max_messages, 10);
        assert_eq!(c.backoff_initial, Duration::from_secs(1));
        assert_eq!(c.backoff_max, Duration::from_secs(60));
        assert!(!c.fifo());
        let c = SqsConfig::parse(&Metadata::from_pairs([
            ("queueName", "q.fifo"),
            ("waitTimeSeconds", "1"),
            ("maxNumberOfMessages", "3"),
            ("backOffInitialInterval", "2s"),
            ("backOffMaxInterval", "10s"),
            ("region", "us-east-1"),
            ("endpoint", "http://127.0.0.1:15000"),
        ]))
        .unwrap();
        assert!(c.fifo());
        assert_eq!((c.wait_time_seconds, c.max_messages), (1, 3));
        assert_eq!(c.aws.endpoint.as_deref(), Some("http://127.0.0.1:15000"));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let errs = SqsConfig::parse(&Metadata::from_pairs([
            ("waitTimeSeconds", "21"),
            ("maxNumberOfMessages", "0"),
        ]))
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap()).collect();
        assert_eq!(
            fields,
            ["queueName", "waitTimeSeconds", "maxNumberOfMessages"]
        );
        assert_eq!(errs[0].message(), "sqs binding error: missing queueName");
    }

    #[test]
    fn redelivery_delay_doubles_per_receive_and_rounds_up() {
        let c = SqsConfig::parse(&Metadata::from_pairs([
            ("queueName", "q"),
            ("backOffInitialInterval", "1s"),
            ("backOffMaxInterval", "10s"),
        ]))
        .unwrap();
        assert_eq!(c.redelivery_delay(1, None), 1);
        assert_eq!(c.redelivery_delay(2, None), 2);
        assert_eq!(c.redelivery_delay(3, None), 4);
        assert_eq!(c.redelivery_delay(10, None), 10);
        assert_eq!(c.redelivery_delay(1, Some(Duration::from_millis(1500))), 2);
        assert_eq!(c.redelivery_delay(1, Some(Duration::from_secs(99))), 10);
        let zero = SqsConfig::parse(&Metadata::from_pairs([
            ("queueName", "q"),
            ("backOffInitialInterval", "0s"),
        ]))
        .unwrap();
        assert_eq!(zero.redelivery_delay(5, None), 0);
    }

    #[test]
    fn events_carry_id_timestamp_and_attributes() {
        let msg = Message::builder()
            .message_id("m-1")
            .body("hello")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .message_attributes(
                "color",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("blue")
                    .build()
                    .unwrap(),
            )
            .build();
        let e = SqsInput::event(&msg);
        assert_eq!(&e.data[..], b"hello");
        assert_eq!(e.metadata[MESSAGE_ID], "m-1");
        assert_eq!(e.metadata[SENT_TIMESTAMP], "1700000000000");
        assert_eq!(e.metadata[RECEIVE_COUNT], "2");
        assert_eq!(e.metadata["color"], "blue");
    }
}
