//! The output side: `create` enqueues one message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bindery_core::util::unquote_json_string;
use bindery_core::{
    BindingError, BindingHealth, InvokeRequest, InvokeResponse, OutputBinding, async_trait,
    parse_duration,
};

use super::OPERATIONS;
use super::api::QueueClient;
use super::config::{MAX_VISIBILITY, QueueConfig, request_ttl};
use crate::xml::first_illegal_char;

/// Request metadata: how long the new message stays hidden.
pub(crate) const INITIAL_VISIBILITY_DELAY: &str = "initialVisibilityDelay";

/// A running `bindings.azure.storagequeues` output.
pub(crate) struct QueueOutput {
    name: String,
    config: QueueConfig,
    client: QueueClient,
    health: BindingHealth,
    closed: AtomicBool,
}

impl QueueOutput {
    pub(crate) fn new(
        name: &str,
        config: QueueConfig,
        client: QueueClient,
        health: BindingHealth,
    ) -> Self {
        QueueOutput {
            name: name.to_owned(),
            config,
            client,
            health,
            closed: AtomicBool::new(false),
        }
    }

    async fn create(&self, req: InvokeRequest) -> Result<(), BindingError> {
        let text = message_text(&req.data, self.config.encode_base64)?;
        let ttl = request_ttl(&req.metadata, self.config.ttl)?;
        let delay = match req
            .metadata
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(INITIAL_VISIBILITY_DELAY) && !v.is_empty())
        {
            Some((_, v)) => parse_duration(v, Duration::from_secs(1)).map_err(|e| {
                BindingError::invalid_request(format!("invalid initialVisibilityDelay: {e}"))
            })?,
            None => self.config.initial_visibility_delay,
        };
        if delay > MAX_VISIBILITY {
            return Err(BindingError::invalid_request(
                "initialVisibilityDelay must be at most 7 days",
            ));
        }
        if !delay.is_zero() && delay >= ttl {
            return Err(BindingError::invalid_request(format!(
                "initialVisibilityDelay ({delay:?}) must be shorter than the message's time to live ({ttl:?})"
            )));
        }
        let m = self.client.put_message(&text, ttl, delay).await?;
        tracing::debug!(binding = %self.name, message_id = %m.id, "enqueued a message");
        Ok(())
    }
}

/// The text to enqueue: the data (a JSON string unquoted), base64-encoded with `encodeBase64`.
/// Without it the data must be text XML can carry.
pub(crate) fn message_text(data: &[u8], encode_base64: bool) -> Result<String, BindingError> {
    let data = unquote_json_string(data);
    if encode_base64 {
        return Ok(base64::engine::general_purpose::STANDARD.encode(&data));
    }
    let text = std::str::from_utf8(&data).map_err(|_| {
        BindingError::invalid_request(
            "the data is not UTF-8 text, which a queue message cannot carry: set encodeBase64 to send binary data",
        )
    })?;
    if let Some(c) = first_illegal_char(text) {
        return Err(BindingError::invalid_request(format!(
            "the data holds the character U+{:04X}, which a queue message cannot carry: set encodeBase64 to send it",
            u32::from(c)
        )));
    }
    Ok(text.to_owned())
}

#[async_trait]
impl OutputBinding for QueueOutput {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        let result = match req.operation.as_str() {
            "create" => self.create(req).await,
            other => Err(BindingError::unsupported(format!(
                "unsupported operation {other}"
            ))),
        };
        match &result {
            Ok(()) => self.health.connected(),
            Err(e) if e.is_retryable() => self.health.disconnected(e.to_string()),
            Err(_) => {}
        }
        result.map(|()| None)
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn message_texts() {
        assert_eq!(message_text(br#""hello""#, false).unwrap(), "hello");
        assert_eq!(message_text(br#"{"a":1}"#, false).unwrap(), r#"{"a":1}"#);
        assert_eq!(
            message_text(b"raw <xml> & text", false).unwrap(),
            "raw <xml> & text"
        );
        assert_eq!(message_text(br#""hello""#, true).unwrap(), "aGVsbG8=");
        assert_eq!(message_text(&[0xff, 0x00], true).unwrap(), "/wA=");
        let e = message_text(&[0xff, 0x00], false).unwrap_err();
        assert!(e.message().contains("encodeBase64"), "{e}");
        let e = message_text(b"bell\x07", false).unwrap_err();
        assert!(e.message().contains("U+0007"), "{e}");
    }
}
