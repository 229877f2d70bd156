//! The Queue service operations the binding uses (and tests reuse).

use std::time::Duration;

use bindery_core::BindingError;
use reqwest::{Method, StatusCode, Url};

use crate::rest::{Call, SharedKey, StorageClient};
use crate::xml::{child_text, escape, parse};

/// One message as Get Messages, Peek Messages or Put Message return it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueMessage {
    /// `MessageId`.
    pub id: String,
    /// `PopReceipt` (empty for peeked messages).
    pub pop_receipt: String,
    /// `InsertionTime`, as the service wrote it (RFC 1123).
    pub insertion_time: String,
    /// `ExpirationTime` (RFC 1123).
    pub expiration_time: String,
    /// `TimeNextVisible` (RFC 1123; empty for peeked messages).
    pub next_visible_time: String,
    /// `DequeueCount`.
    pub dequeue_count: u64,
    /// `MessageText`, unescaped.
    pub text: String,
}

/// A client for one queue.
#[derive(Debug, Clone)]
pub struct QueueClient {
    client: StorageClient,
    url: Url,
}

/// Whole seconds, rounded up.
fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl QueueClient {
    /// A client for the queue at `url` (`…/<account>/<queue>` or `https://<account>.queue…/<queue>`).
    pub fn new(key: SharedKey, url: Url, retries: u32) -> Result<Self, BindingError> {
        Ok(QueueClient {
            client: StorageClient::new(key, retries, "Azure Storage Queues")?,
            url,
        })
    }

    /// The same client with another retry count.
    pub fn with_retries(&self, retries: u32) -> Self {
        QueueClient {
            client: self.client.with_retries(retries),
            url: self.url.clone(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn messages_url(&self) -> Url {
        let mut u = self.url.clone();
        let path = format!("{}/messages", u.path().trim_end_matches('/'));
        u.set_path(&path);
        u
    }

    fn message_url(&self, id: &str, pop_receipt: &str) -> Url {
        let mut u = self.url.clone();
        let path = format!(
            "{}/messages/{}",
            u.path().trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(id, crate::account::PATH_SEGMENT)
        );
        u.set_path(&path);
        u.query_pairs_mut().append_pair("popreceipt", pop_receipt);
        u
    }

    /// Create the queue; an existing queue is fine.
    pub async fn create_queue(&self) -> Result<(), BindingError> {
        let sent = self
            .client
            .send(&Call::new(Method::PUT, self.url.clone()))
            .await?;
        let status = sent.response.status();
        if status.is_success() || status == StatusCode::CONFLICT {
            return Ok(());
        }
        Err(self
            .client
            .status_error("error creating the queue", sent.response)
            .await)
    }

    /// Delete the queue and its messages.
    pub async fn delete_queue(&self) -> Result<(), BindingError> {
        let sent = self
            .client
            .send(&Call::new(Method::DELETE, self.url.clone()))
            .await?;
        if sent.response.status().is_success() || sent.response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self
            .client
            .status_error("error deleting the queue", sent.response)
            .await)
    }

    /// Enqueue `text`, expiring after `ttl`, invisible for `delay` first.
    pub async fn put_message(
        &self,
        text: &str,
        ttl: Duration,
        delay: Duration,
    ) -> Result<QueueMessage, BindingError> {
        let mut url = self.messages_url();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("messagettl", &secs(ttl).max(1).to_string());
            if !delay.is_zero() {
                q.append_pair("visibilitytimeout", &secs(delay).to_string());
            }
        }
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            escape(text)
        );
        // A retry after a lost answer would enqueue the message twice.
        let call = Call::new(Method::POST, url)
            .header("Content-Type", "application/xml")?
            .body(body)
            .not_idempotent();
        let sent = self.client.send(&call).await?;
        if !sent.response.status().is_success() {
            return Err(self
                .client
                .status_error("error enqueuing the message", sent.response)
                .await);
        }
        let text_body = sent
            .response
            .text()
            .await
            .map_err(|e| self.client.transport_error(&self.url, &e))?;
        Ok(parse_messages(&text_body)
            .ok()
            .and_then(|m| m.into_iter().next())
            .unwrap_or_default())
    }

    /// Dequeue up to `count` (1–32) messages, invisible to others for `visibility`.
    pub async fn get_messages(
        &self,
        count: u32,
        visibility: Duration,
    ) -> Result<Vec<QueueMessage>, BindingError> {
        let mut url = self.messages_url();
        url.query_pairs_mut()
            .append_pair("numofmessages", &count.clamp(1, 32).to_string())
            .append_pair("visibilitytimeout", &secs(visibility).max(1).to_string());
        // Retrying a dequeue is harmless: messages it may have taken reappear after `visibility`.
        let sent = self.client.send(&Call::new(Method::GET, url)).await?;
        if !sent.response.status().is_success() {
            return Err(self
                .client
                .status_error("error receiving messages", sent.response)
                .await);
        }
        let text = sent
            .response
            .text()
            .await
            .map_err(|e| self.client.transport_error(&self.url, &e))?;
        parse_messages(&text)
            .map_err(|e| BindingError::internal(format!("error receiving messages: {e}")))
    }

    /// Look at up to `count` messages without dequeuing them.
    pub async fn peek_messages(&self, count: u32) -> Result<Vec<QueueMessage>, BindingError> {
        let mut url = self.messages_url();
        url.query_pairs_mut()
            .append_pair("peekonly", "true")
            .append_pair("numofmessages", &count.clamp(1, 32).to_string());
        let sent = self.client.send(&Call::new(Method::GET, url)).await?;
        if !sent.response.status().is_success() {
            return Err(self
                .client
                .status_error("error peeking messages", sent.response)
                .await);
        }
        let text = sent
            .response
            .text()
            .await
            .map_err(|e| self.client.transport_error(&self.url, &e))?;
        parse_messages(&text)
            .map_err(|e| BindingError::internal(format!("error peeking messages: {e}")))
    }

    /// The approximate number of messages in the queue.
    pub async fn approximate_count(&self) -> Result<u64, BindingError> {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("comp", "metadata");
        let sent = self.client.send(&Call::new(Method::GET, url)).await?;
        if !sent.response.status().is_success() {
            return Err(self
                .client
                .status_error("error reading the queue", sent.response)
                .await);
        }
        Ok(sent
            .response
            .headers()
            .get("x-ms-approximate-messages-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Delete a dequeued message. A message already gone counts as deleted after a retried
    /// attempt.
    pub async fn delete_message(&self, id: &str, pop_receipt: &str) -> Result<(), BindingError> {
        let call = Call::new(Method::DELETE, self.message_url(id, pop_receipt));
        let sent = self.client.send(&call).await?;
        let status = sent.response.status();
        if status.is_success() || (status == StatusCode::NOT_FOUND && sent.maybe_applied_before) {
            return Ok(());
        }
        Err(self
            .client
            .status_error("error deleting the message", sent.response)
            .await)
    }

    /// Make a dequeued message visible again after `visibility` (zero: at once); returns the
    /// new pop receipt and next-visible time.
    pub async fn update_visibility(
        &self,
        id: &str,
        pop_receipt: &str,
        visibility: Duration,
    ) -> Result<(String, String), BindingError> {
        let mut url = self.message_url(id, pop_receipt);
        url.query_pairs_mut()
            .append_pair("visibilitytimeout", &secs(visibility).to_string());
        let sent = self.client.send(&Call::new(Method::PUT, url)).await?;
        if !sent.response.status().is_success() {
            return Err(self
                .client
                .status_error("error updating the message's visibility", sent.response)
                .await);
        }
        let h = sent.response.headers();
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        Ok((get("x-ms-popreceipt"), get("x-ms-time-next-visible")))
    }

    /// Delete every message.
    pub async fn clear(&self) -> Result<(), BindingError> {
        let sent = self
            .client
            .send(&Call::new(Method::DELETE, self.messages_url()))
            .await?;
        if sent.response.status().is_success() {
            return Ok(());
        }
        Err(self
            .client
            .status_error("error clearing the queue", sent.response)
            .await)
    }
}

/// `QueueMessagesList` → messages.
pub(crate) fn parse_messages(xml: &str) -> Result<Vec<QueueMessage>, String> {
    if xml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc = parse(xml)?;
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("QueueMessage"))
        .map(|m| {
            let t = |n: &str| child_text(m, n).unwrap_or("").to_owned();
            QueueMessage {
                id: t("MessageId"),
                pop_receipt: t("PopReceipt"),
                insertion_time: t("InsertionTime"),
                expiration_time: t("ExpirationTime"),
                next_visible_time: t("TimeNextVisible"),
                dequeue_count: t("DequeueCount").trim().parse().unwrap_or(0),
                text: t("MessageText"),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_parse() {
        let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList><QueueMessage><MessageId>id-1</MessageId><InsertionTime>Fri, 09 Oct 2009 21:04:30 GMT</InsertionTime><ExpirationTime>Fri, 16 Oct 2009 21:04:30 GMT</ExpirationTime><PopReceipt>AgAAAA==</PopReceipt><TimeNextVisible>Fri, 09 Oct 2009 23:29:20 GMT</TimeNextVisible><DequeueCount>2</DequeueCount><MessageText>a &lt;b&gt; &amp; c</MessageText></QueueMessage></QueueMessagesList>";
        let m = parse_messages(xml).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].id, "id-1");
        assert_eq!(m[0].pop_receipt, "AgAAAA==");
        assert_eq!(m[0].dequeue_count, 2);
        assert_eq!(m[0].text, "a <b> & c");
        assert_eq!(m[0].next_visible_time, "Fri, 09 Oct 2009 23:29:20 GMT");
        assert!(parse_messages("<QueueMessagesList />").unwrap().is_empty());
        assert!(parse_messages("").unwrap().is_empty());
        assert_eq!(secs(Duration::from_millis(1500)), 2);
        assert_eq!(secs(Duration::from_secs(3)), 3);
    }
}
