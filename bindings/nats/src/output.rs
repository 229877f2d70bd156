//! The output side: `create` publishes, on core NATS or to JetStream awaiting its ack.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::connection::State;
use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::{Client, HeaderMap, HeaderName, HeaderValue};
use bindery_core::{BindingError, InvokeRequest, InvokeResponse, OutputBinding, async_trait};
use tracing::debug;

use crate::config::check_subject;

/// Request metadata key overriding the subject to publish to.
pub(crate) const SUBJECT: &str = "subject";
/// Request metadata key holding a message id for JetStream de-duplication.
pub const MSG_ID: &str = "msgID";
/// The NATS header JetStream de-duplicates on.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Response metadata key: the stream that stored the message (JetStream).
pub(crate) const STREAM: &str = "stream";
/// Response metadata key: the message's stream sequence (JetStream).
pub(crate) const SEQUENCE: &str = "sequence";
/// Response metadata key: `true` when JetStream recognised the message id as a duplicate.
pub const DUPLICATE: &str = "duplicate";

pub(crate) const OPERATIONS: &[&str] = &["create"];

/// A running output side.
pub(crate) struct NatsOutput {
    pub(crate) name: String,
    pub(crate) servers: String,
    pub(crate) client: Client,
    /// Set when `jetStream: true`.
    pub(crate) jetstream: Option<Context>,
    pub(crate) default_subject: Option<String>,
    pub(crate) request_timeout: std::time::Duration,
    pub(crate) closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for NatsOutput {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if req.operation != "create" {
            return Err(BindingError::unsupported(format!(
                "invalid operation type: {}",
                req.operation
            )));
        }
        let subject = match req.metadata.get(SUBJECT).map(|s| s.trim()) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => self.default_subject.clone().ok_or_else(|| {
                BindingError::invalid_request(
                    "nats binding: no subject to publish to: set publishSubject in the component or subject in the request metadata",
                )
            })?,
        };
        check_subject(&subject, false).map_err(|e| {
            BindingError::invalid_request(format!("nats binding: invalid subject: {e}"))
        })?;
        let (headers, msg_id) = headers_from(&req.metadata)?;
        if self.client.connection_state() != State::Connected {
            return Err(BindingError::unavailable(format!(
                "nats binding: not connected to NATS at {}; reconnecting",
                self.servers
            )));
        }
        match &self.jetstream {
            None => self.publish_core(subject, headers, msg_id, req.data).await,
            Some(js) => {
                self.publish_jetstream(js, subject, headers, msg_id, req.data)
                    .await
            }
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        // Send what is buffered; the connection closes when the client is dropped.
        let _ = tokio::time::timeout(self.request_timeout, self.client.flush()).await;
        Ok(())
    }
}

impl NatsOutput {
    async fn publish_core(
        &self,
        subject: String,
        mut headers: HeaderMap,
        msg_id: Option<HeaderValue>,
        data: bytes::Bytes,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        if let Some(id) = msg_id {
            headers.insert(NATS_MSG_ID, id);
        }
        let sent = if headers.is_empty() {
            self.client.publish(subject.clone(), data).await
        } else {
            self.client
                .publish_with_headers(subject.clone(), headers, data)
                .await
        };
        sent.map_err(|e| {
            BindingError::unavailable(format!("nats binding: publishing to {subject} failed: {e}"))
        })?;
        // A core publish has no acknowledgement; a flush proves the server has it.
        match tokio::time::timeout(self.request_timeout, self.client.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(BindingError::unavailable(format!(
                    "nats binding: publishing to {subject} failed: {e}"
                )));
            }
            Err(_) => {
                return Err(BindingError::timeout(format!(
                    "nats binding: NATS at {} did not confirm the publish to {subject} within {:?}",
                    self.servers, self.request_timeout
                )));
            }
        }
        debug!(binding = %self.name, subject = %subject, "published to core NATS");
        Ok(None)
    }

    async fn publish_jetstream(
        &self,
        js: &Context,
        subject: String,
        headers: HeaderMap,
        msg_id: Option<HeaderValue>,
        data: bytes::Bytes,
    ) -> Result<Option<InvokeResponse>, BindingError> {
        let mut msg = PublishMessage::build().payload(data);
        if !headers.is_empty() {
            msg = msg.headers(headers);
        }
        if let Some(id) = msg_id {
            msg = msg.message_id(id.as_str());
        }
        let map = |e: async_nats::jetstream::context::PublishError| match e.kind() {
            PublishErrorKind::StreamNotFound => BindingError::rejected(format!(
                "nats binding: no JetStream stream captures subject {subject}"
            )),
            PublishErrorKind::TimedOut => BindingError::timeout(format!(
                "nats binding: JetStream did not acknowledge the publish to {subject} within {:?}",
                self.request_timeout
            )),
            PublishErrorKind::BrokenPipe => BindingError::unavailable(format!(
                "nats binding: publishing to {subject} failed: {e}"
            )),
            _ => BindingError::rejected(format!(
                "nats binding: JetStream refused the publish to {subject}: {e}"
            )),
        };
        let ack = js
            .send_publish(subject.clone(), msg)
            .await
            .map_err(map)?
            .await
            .map_err(map)?;
        debug!(binding = %self.name, subject = %subject, stream = %ack.stream, sequence = ack.sequence, "published to JetStream");
        Ok(Some(
            InvokeResponse::default()
                .with_metadata(STREAM, ack.stream)
                .with_metadata(SEQUENCE, ack.sequence.to_string())
                .with_metadata(DUPLICATE, ack.duplicate.to_string()),
        ))
    }
}

/// NATS headers from request metadata: every key but `subject` and the message id, which comes
/// from `msgID` or `Nats-Msg-Id` (any case).
pub(crate) fn headers_from(
    md: &HashMap<String, String>,
) -> Result<(HeaderMap, Option<HeaderValue>), BindingError> {
    let mut headers = HeaderMap::new();
    let mut msg_id = None;
    // Sorted, so that keys differing only in case resolve the same way every time.
    let mut keys: Vec<&String> = md.keys().collect();
    keys.sort();
    for key in keys {
        let value = &md[key];
        if key == SUBJECT {
            continue;
        }
        let parsed = HeaderValue::from_str(value).map_err(|_| {
            BindingError::invalid_request(format!(
                "nats binding: invalid value for request metadata {key:?}: it contains CR or LF"
            ))
        })?;
        if key.eq_ignore_ascii_case(MSG_ID) || key.eq_ignore_ascii_case(NATS_MSG_ID) {
            if !value.is_empty() {
                msg_id = Some(parsed);
            }
            continue;
        }
        let name = HeaderName::from_str(key).map_err(|_| {
            BindingError::invalid_request(format!(
                "nats binding: request metadata key {key:?} is not a valid NATS header name"
            ))
        })?;
        headers.insert(name, parsed);
    }
    Ok((headers, msg_id))
}
