//! The output side: `create` publishes one message and returns once the broker acknowledged it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bindery_core::{BindingError, BindingHealth, InvokeRequest, InvokeResponse, OutputBinding};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use regex::Regex;
use tracing::debug;

use crate::config::KafkaConfig;
use crate::context::{HealthReporter, ProducerContext};

/// Request metadata naming the message key (Dapr's `partitionKey`).
pub const PARTITION_KEY: &str = "partitionKey";
/// Request metadata naming the message key, Dapr's pub/sub spelling.
pub(crate) const KEY: &str = "__key";
/// Request metadata forcing the partition.
pub const PARTITION_NUMBER: &str = "partitionNumber";
/// Request metadata overriding `publishTopic` for one call.
pub const REQUEST_TOPIC: &str = "topic";

/// The operations of `bindings.kafka`.
pub(crate) const OPERATIONS: &[&str] = &["create"];

/// A running output side.
pub(crate) struct KafkaOutput {
    name: String,
    producer: FutureProducer<ProducerContext>,
    publish_topic: Option<String>,
    exclude_headers: Option<Regex>,
    write_timeout: Duration,
    closed: AtomicBool,
}

impl KafkaOutput {
    /// Create the producer and check that a broker answers within `dialTimeout`, so that an
    /// unreachable cluster is reported (and retried by the runtime) instead of failing calls
    /// later.
    pub(crate) async fn connect(
        name: &str,
        config: &KafkaConfig,
        health: &BindingHealth,
    ) -> Result<Self, BindingError> {
        let producer: FutureProducer<ProducerContext> = config
            .producer_config()
            .create_with_context(ProducerContext {
                reporter: HealthReporter::new(name, "producer", health.clone()),
            })
            .map_err(|e| client_config_error("producer", &e))?;
        let probe = producer.clone();
        let timeout = config.dial_timeout;
        let brokers = config.brokers.join(",");
        // Only the publish topic's metadata: a whole cluster's can be large.
        let topic = config.publish_topic.clone();
        tokio::task::spawn_blocking(move || {
            probe.client().fetch_metadata(topic.as_deref(), timeout)
        })
        .await
        .map_err(|e| BindingError::internal(format!("kafka metadata probe failed: {e}")))?
        .map_err(|e| {
            BindingError::unavailable(format!(
                "kafka error: no broker of {brokers} answered within {timeout:?}"
            ))
            .with_source(e)
        })?;
        health.connected();
        Ok(KafkaOutput {
            name: name.to_owned(),
            producer,
            publish_topic: config.publish_topic.clone(),
            exclude_headers: config.exclude_header_meta.clone(),
            write_timeout: config.write_timeout,
            closed: AtomicBool::new(false),
        })
    }
}

/// Turn a librdkafka configuration failure into a configuration error that names no secret.
pub(crate) fn client_config_error(role: &str, e: &KafkaError) -> BindingError {
    // librdkafka's message names the property and the reason (e.g. an unreadable PEM); it does
    // not echo property values.
    BindingError::config(
        "brokers",
        format!("kafka error: cannot create the {role}: {e}"),
    )
}

/// The headers of a message: every request metadata entry except those `exclude` matches,
/// in a stable order.
pub(crate) fn headers_for(
    metadata: &HashMap<String, String>,
    exclude: Option<&Regex>,
) -> Option<OwnedHeaders> {
    let mut entries: Vec<(&String, &String)> = metadata
        .iter()
        .filter(|(k, _)| !exclude.is_some_and(|re| re.is_match(k)))
        .collect();
    if entries.is_empty() {
        return None;
    }
    entries.sort();
    let mut headers = OwnedHeaders::new_with_capacity(entries.len());
    for (k, v) in entries {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    Some(headers)
}

/// The first non-blank value of `names` in `metadata` (exact key, then any case).
fn md_value<'a>(metadata: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    metadata
        .get(name)
        .or_else(|| {
            metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

fn produce_error(topic: &str, e: KafkaError) -> BindingError {
    let message = format!("kafka error: publishing to topic {topic:?} failed");
    let err = match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::RequestTimedOut) => {
            BindingError::timeout(message)
        }
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::InvalidPartitions
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::InvalidTopic
            | RDKafkaErrorCode::InvalidRecord,
        ) => BindingError::rejected(message),
        _ => BindingError::unavailable(message),
    };
    err.with_source(e)
}

#[bindery_core::async_trait]
impl OutputBinding for KafkaOutput {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        if !req.operation.eq_ignore_ascii_case("create") {
            return Err(BindingError::unsupported(format!(
                "binding {} does not support operation {}; supported: create",
                self.name, req.operation
            )));
        }
        let topic = md_value(&req.metadata, REQUEST_TOPIC)
            .map(str::trim)
            .or(self.publish_topic.as_deref())
            .ok_or_else(|| {
                BindingError::invalid_request(
                    "kafka error: no topic to publish to: set publishTopic on the component or 'topic' in the request metadata",
                )
            })?;
        let key = md_value(&req.metadata, PARTITION_KEY).or_else(|| md_value(&req.metadata, KEY));
        let partition = match md_value(&req.metadata, PARTITION_NUMBER) {
            None => None,
            Some(p) => Some(
                p.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|p| *p >= 0)
                    .ok_or_else(|| {
                        BindingError::invalid_request(format!(
                            "kafka error: invalid partitionNumber {p:?}: not a partition number"
                        ))
                    })?,
            ),
        };
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(req.data.as_ref());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(headers) = headers_for(&req.metadata, self.exclude_headers.as_ref()) {
            record = record.headers(headers);
        }
        // The future resolves with librdkafka's delivery report: the broker acknowledged the
        // message with the configured `acks`, or it failed for good (message.timeout.ms =
        // writeTimeout). The queue timeout only covers a full local queue.
        match self
            .producer
            .send(record, Timeout::After(self.write_timeout))
            .await
        {
            Ok(delivery) => {
                debug!(binding = %self.name, topic, partition = delivery.partition, offset = delivery.offset, "published");
                Ok(None)
            }
            Err((e, _)) => Err(produce_error(topic, e)),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Every `create` awaited its own delivery, so there is nothing of ours left to flush
        // but what a cancelled call may have queued.
        let producer = self.producer.clone();
        let timeout = self.write_timeout;
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BindingError::unavailable(
                "kafka error: messages still queued at close were not delivered",
            )
            .with_source(e)),
            Err(e) => Err(BindingError::internal(format!(
                "kafka producer flush failed: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn md(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn header_list(h: &OwnedHeaders) -> Vec<(String, String)> {
        h.iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn every_metadata_entry_becomes_a_header_in_key_order() {
        let m = md(&[("b", "2"), ("partitionKey", "k"), ("a", "1")]);
        let h = headers_for(&m, None).unwrap();
        assert_eq!(
            header_list(&h),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned()),
                ("partitionKey".to_owned(), "k".to_owned())
            ]
        );
    }

    #[test]
    fn excluded_metadata_is_not_a_header() {
        let m = md(&[("traceparent", "x"), ("keep", "1"), ("partitionKey", "k")]);
        let re = Regex::new("^(traceparent|partitionKey)$").unwrap();
        let h = headers_for(&m, Some(&re)).unwrap();
        assert_eq!(header_list(&h), [("keep".to_owned(), "1".to_owned())]);
        let only = md(&[("traceparent", "x")]);
        assert!(headers_for(&only, Some(&re)).is_none());
    }

    #[test]
    fn metadata_lookup_ignores_case_and_blanks() {
        let m = md(&[("PartitionKey", "k"), ("topic", "  ")]);
        assert_eq!(md_value(&m, PARTITION_KEY), Some("k"));
        assert_eq!(md_value(&m, REQUEST_TOPIC), None);
    }

    #[test]
    fn produce_errors_keep_their_kind() {
        let timeout = produce_error(
            "t",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        );
        assert_eq!(timeout.kind(), bindery_core::ErrorKind::Timeout);
        let too_big = produce_error(
            "t",
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        );
        assert_eq!(too_big.kind(), bindery_core::ErrorKind::Rejected);
        assert!(too_big.to_string().contains("topic \"t\""));
        let down = produce_error(
            "t",
            KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown),
        );
        assert!(down.is_retryable());
    }
}
