//! The output side: `create` publishes one persistent message to the queue and returns once the
//! broker confirmed it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bindery_core::{
    BindingError, BindingHealth, InvokeRequest, InvokeResponse, OutputBinding, async_trait,
};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use tracing::{debug, warn};

use crate::config::MAX_SHORT_STRING;
use crate::link::{Link, unavailable};

/// How long a publish may wait for the broker's confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// `DeliveryMode` of a persistent message.
const PERSISTENT: u8 = 2;

/// Request metadata keys with a meaning beyond "send as a header".
pub(crate) mod keys {
    /// Per-message TTL in whole seconds.
    pub(crate) const TTL_IN_SECONDS: &str = "ttlInSeconds";
    /// Per-message TTL as a duration (or whole seconds).
    pub(crate) const TTL: &str = "ttl";
    /// Message priority, 0 to 255.
    pub(crate) const PRIORITY: &str = "priority";
    /// The AMQP content type.
    pub(crate) const CONTENT_TYPE: &str = "contentType";
    /// The AMQP message id.
    pub(crate) const MESSAGE_ID: &str = "messageID";
    /// The AMQP correlation id.
    pub(crate) const CORRELATION_ID: &str = "correlationID";
    /// The AMQP message type.
    pub(crate) const TYPE: &str = "type";
}

/// A running `bindings.rabbitmq` output.
pub(crate) struct RabbitOutput {
    link: Arc<Link>,
    health: BindingHealth,
    /// The publishing channel, in confirm mode.
    channel: tokio::sync::Mutex<Option<Channel>>,
    closed: AtomicBool,
}

impl RabbitOutput {
    /// Connect and open the publishing channel (the queue is declared on it).
    pub(crate) async fn connect(
        link: Arc<Link>,
        health: BindingHealth,
    ) -> Result<Self, BindingError> {
        let out = RabbitOutput {
            link,
            health,
            channel: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
        };
        out.channel().await?;
        Ok(out)
    }

    /// The open publishing channel, reopened (and the connection with it) when it broke.
    async fn channel(&self) -> Result<Channel, BindingError> {
        let mut guard = self.channel.lock().await;
        if let Some(ch) = guard.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let had_one = guard.take().is_some();
        let opened = async {
            let ch = self.link.channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(unavailable)?;
            Ok::<_, BindingError>(ch)
        }
        .await;
        match opened {
            Ok(ch) => {
                if had_one {
                    self.health.connected();
                }
                *guard = Some(ch.clone());
                Ok(ch)
            }
            Err(e) => {
                self.health.disconnected(e.to_string());
                Err(e)
            }
        }
    }

    /// Forget `ch` if it is still the cached channel, so the next call reopens one.
    async fn drop_channel(&self, ch: &Channel) {
        let mut guard = self.channel.lock().await;
        if guard.as_ref().is_some_and(|c| c.id() == ch.id()) {
            *guard = None;
        }
    }
}

#[async_trait]
impl OutputBinding for RabbitOutput {
    fn operations(&self) -> &[&'static str] {
        &["create"]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if request.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "operation {:?} is not supported; supported: create",
                request.operation
            )));
        }
        let properties = publish_properties(&request.metadata, &self.link.config.content_type)?;
        let routing_key = ShortString::try_new(self.link.config.queue_name.as_str())
            .map_err(|e| BindingError::config("queueName", e.to_string()))?;
        let ch = self.channel().await.map_err(|e| {
            BindingError::new(
                e.kind(),
                format!(
                    "failed to publish message: channel/connection is not open: {}",
                    e.message()
                ),
            )
        })?;
        // `mandatory`: a message no queue takes (the queue was deleted) comes back as an error
        // instead of vanishing.
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let publish = async {
            let confirm = ch
                .basic_publish(
                    ShortString::from(""),
                    routing_key,
                    options,
                    &request.data,
                    properties,
                )
                .await?;
            confirm.await
        };
        let confirmation = match tokio::time::timeout(CONFIRM_TIMEOUT, publish).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.drop_channel(&ch).await;
                warn!(binding = %self.link.name, error = %e, "publishing to RabbitMQ failed");
                return Err(
                    BindingError::unavailable(format!("failed to publish message: {e}"))
                        .with_source(e),
                );
            }
            Err(_) => {
                self.drop_channel(&ch).await;
                return Err(BindingError::timeout(format!(
                    "failed to publish message: the broker did not confirm it within {CONFIRM_TIMEOUT:?}"
                )));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => {
                debug!(binding = %self.link.name, bytes = request.data.len(), "published");
                Ok(None)
            }
            Confirmation::Ack(Some(returned)) => Err(BindingError::rejected(format!(
                "failed to publish message: the broker returned it ({} {}): is queue {:?} gone?",
                returned.reply_code, returned.reply_text, self.link.config.queue_name
            ))),
            Confirmation::Nack(_) => Err(BindingError::rejected(
                "failed to publish message: the broker refused it (nack)",
            )),
            Confirmation::NotRequested => Err(BindingError::internal(
                "failed to publish message: publisher confirms are not enabled on the channel",
            )),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        let ch = self.channel.lock().await.take();
        if let Some(ch) = ch
            && ch.status().connected()
            && let Err(e) = ch.close(200, ShortString::from("bye")).await
        {
            debug!(binding = %self.link.name, error = %e, "closing the publishing channel failed");
        }
        Link::close(&self.link).await;
        Ok(())
    }
}

/// The AMQP properties of one `create`: persistent, every request metadata entry as a header,
/// and the properties the well-known keys set.
pub(crate) fn publish_properties(
    md: &HashMap<String, String>,
    default_content_type: &str,
) -> Result<BasicProperties, BindingError> {
    let mut headers = FieldTable::default();
    for (k, v) in md {
        let key = ShortString::try_new(k.as_str()).map_err(|_| {
            BindingError::invalid_request(format!(
                "metadata key is longer than {MAX_SHORT_STRING} bytes and cannot be an AMQP header"
            ))
        })?;
        headers.insert(key, AMQPValue::LongString(LongString::from(v.as_bytes())));
    }
    let short = |key: &str, value: &str| {
        ShortString::try_new(value).map_err(|_| {
            BindingError::invalid_request(format!("{key} is longer than {MAX_SHORT_STRING} bytes"))
        })
    };
    let content_type = get(md, keys::CONTENT_TYPE).unwrap_or(default_content_type);
    let mut props = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(short(keys::CONTENT_TYPE, content_type)?)
        .with_headers(headers);
    if let Some(ttl) = request_ttl(md)? {
        let ms = ttl.as_millis().to_string();
        props = props.with_expiration(short(keys::TTL, &ms)?);
    }
    if let Some(p) = get(md, keys::PRIORITY) {
        let n: i64 = p.trim().parse().map_err(|_| {
            BindingError::invalid_request(format!(
                "priority value must be a valid integer: actual is '{p}'"
            ))
        })?;
        // As Dapr: clamp into 0..=255.
        props = props.with_priority(n.clamp(0, 255) as u8);
    }
    if let Some(id) = get(md, keys::MESSAGE_ID) {
        props = props.with_message_id(short(keys::MESSAGE_ID, id)?);
    }
    if let Some(id) = get(md, keys::CORRELATION_ID) {
        props = props.with_correlation_id(short(keys::CORRELATION_ID, id)?);
    }
    if let Some(t) = get(md, keys::TYPE) {
        props = props.with_type(short(keys::TYPE, t)?);
    }
    Ok(props)
}

/// A request metadata value, exact key first, then any case; blank counts as absent.
fn get<'a>(md: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    md.get(key)
        .or_else(|| {
            md.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The per-message TTL: `ttlInSeconds` (whole seconds) or `ttl` (a duration or whole seconds).
fn request_ttl(md: &HashMap<String, String>) -> Result<Option<Duration>, BindingError> {
    if let Some(v) = get(md, keys::TTL_IN_SECONDS) {
        return match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n.unsigned_abs()))),
            Ok(n) => Err(BindingError::invalid_request(format!(
                "failed to get TTL: ttlInSeconds value must be higher than zero: actual is {n}"
            ))),
            Err(_) => Err(BindingError::invalid_request(format!(
                "failed to get TTL: ttlInSeconds value must be a valid integer: actual is '{v}'"
            ))),
        };
    }
    if let Some(v) = get(md, keys::TTL) {
        let d = bindery_core::parse_duration(v, Duration::from_secs(1))
            .map_err(|e| BindingError::invalid_request(format!("failed to get TTL: {e}")))?;
        if d.is_zero() {
            return Err(BindingError::invalid_request(
                "failed to get TTL: ttl value must be higher than zero",
            ));
        }
        return Ok(Some(d));
    }
    Ok(None)
}
