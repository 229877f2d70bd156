//! librdkafka callbacks: logs into `tracing`, and broker connection state into
//! [`BindingHealth`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};

use bindery_core::BindingHealth;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Deserialize;
use tracing::{debug, error, info, trace, warn};

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Reports a client's broker connections to the component's health.
///
/// librdkafka reconnects by itself; bindery only tells the truth about it. A client counts as
/// connected while at least one real (not logical) broker connection is `UP`, as its statistics
/// say every second, and as disconnected when none is or when librdkafka reports that all
/// brokers are down.
#[derive(Debug)]
pub(crate) struct HealthReporter {
    binding: String,
    role: &'static str,
    health: BindingHealth,
    state: AtomicU8,
}

/// The part of librdkafka's statistics JSON bindery reads.
#[derive(Debug, Deserialize)]
struct Stats {
    #[serde(default)]
    brokers: HashMap<String, BrokerStats>,
}

#[derive(Debug, Deserialize)]
struct BrokerStats {
    #[serde(default)]
    state: String,
    #[serde(default)]
    source: String,
}

impl HealthReporter {
    /// A reporter for the `role` (`producer`, `consumer`) of component `binding`.
    pub(crate) fn new(binding: &str, role: &'static str, health: BindingHealth) -> Self {
        HealthReporter {
            binding: binding.to_owned(),
            role,
            health,
            state: AtomicU8::new(UNKNOWN),
        }
    }

    /// The component name, for logs.
    pub(crate) fn binding(&self) -> &str {
        &self.binding
    }

    fn set_up(&self) {
        if self.state.swap(UP, Ordering::AcqRel) != UP {
            info!(binding = %self.binding, role = self.role, "connected to the Kafka brokers");
        }
        self.health.connected();
    }

    fn set_down(&self, why: &str) {
        if self.state.swap(DOWN, Ordering::AcqRel) != DOWN {
            warn!(binding = %self.binding, role = self.role, error = %why, "lost the connection to every Kafka broker; librdkafka keeps reconnecting");
        }
        self.health
            .disconnected(format!("kafka {}: {why}", self.role));
    }

    /// Read librdkafka's statistics JSON.
    pub(crate) fn on_stats(&self, json: &[u8]) {
        let stats: Stats = match serde_json::from_slice(json) {
            Ok(s) => s,
            Err(e) => {
                debug!(binding = %self.binding, error = %e, "unreadable librdkafka statistics");
                return;
            }
        };
        let mut real = stats
            .brokers
            .values()
            .filter(|b| b.source != "logical")
            .peekable();
        if real.peek().is_none() {
            return;
        }
        if real.any(|b| b.state == "UP") {
            self.set_up();
        } else {
            let states: Vec<String> = stats
                .brokers
                .iter()
                .filter(|(_, b)| b.source != "logical")
                .map(|(name, b)| format!("{name} {}", b.state))
                .collect();
            self.set_down(&format!(
                "no broker connection is up ({})",
                states.join(", ")
            ));
        }
    }

    /// A global error from librdkafka.
    pub(crate) fn on_error(&self, error: &KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => self.set_down(reason),
            // Connection losses show in the statistics and in the health; reconnects are
            // librdkafka's job.
            // The read loop reports and handles missing topics.
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                debug!(binding = %self.binding, role = self.role, error = %reason, "kafka topic not available");
            }
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                debug!(binding = %self.binding, role = self.role, error = %reason, "kafka transport failure");
            }
            _ => {
                warn!(binding = %self.binding, role = self.role, error = %error, reason = %reason, "kafka client error");
            }
        }
    }

    /// A librdkafka log line.
    pub(crate) fn on_log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let b = &self.binding;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(binding = %b, role = self.role, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => {
                warn!(binding = %b, role = self.role, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                debug!(binding = %b, role = self.role, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => {
                trace!(binding = %b, role = self.role, facility = fac, "librdkafka: {message}")
            }
        }
    }
}

/// The producer's callbacks.
#[derive(Debug)]
pub(crate) struct ProducerContext {
    pub(crate) reporter: HealthReporter,
}

impl ClientContext for ProducerContext {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter() -> (HealthReporter, BindingHealth) {
        let h = BindingHealth::default();
        (HealthReporter::new("k", "consumer", h.clone()), h)
    }

    #[test]
    fn an_up_broker_means_connected() {
        let (r, h) = reporter();
        r.on_stats(
            br#"{"brokers":{"127.0.0.1:19092/1":{"state":"UP","source":"learned"},
                "GroupCoordinator":{"state":"UP","source":"logical"}}}"#,
        );
        assert!(h.snapshot().connected);
    }

    #[test]
    fn only_logical_brokers_up_means_disconnected() {
        let (r, h) = reporter();
        r.on_stats(br#"{"brokers":{"a:1/bootstrap":{"state":"UP","source":"configured"}}}"#);
        assert!(h.snapshot().connected);
        r.on_stats(
            br#"{"brokers":{"a:1/bootstrap":{"state":"CONNECT","source":"configured"},
                "GroupCoordinator":{"state":"UP","source":"logical"}}}"#,
        );
        let snap = h.snapshot();
        assert!(!snap.connected);
        assert!(snap.last_error.unwrap().contains("a:1/bootstrap CONNECT"));
    }

    #[test]
    fn all_brokers_down_disconnects_and_recovery_counts() {
        let (r, h) = reporter();
        r.on_stats(br#"{"brokers":{"a:1/1":{"state":"UP","source":"learned"}}}"#);
        r.on_error(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert!(!h.snapshot().connected);
        r.on_stats(br#"{"brokers":{"a:1/1":{"state":"UP","source":"learned"}}}"#);
        let snap = h.snapshot();
        assert!(snap.connected);
        assert_eq!(snap.reconnects, 1);
    }

    #[test]
    fn statistics_without_brokers_change_nothing() {
        let (r, h) = reporter();
        r.on_stats(br#"{"brokers":{}}"#);
        r.on_stats(b"not json");
        let snap = h.snapshot();
        assert!(!snap.connected);
        assert!(snap.last_error.is_none());
    }
}
