//! Component metadata of `bindings.kafka`, checked without I/O, and its mapping to librdkafka
//! properties.

use std::time::Duration;

use bindery_core::{BindingError, Metadata, MetadataReader};
use rdkafka::ClientConfig;
use regex::Regex;

/// Default `clientID`. Dapr's is Sarama's default, `sarama`; naming the real client helps
/// operators reading broker logs and quotas.
pub(crate) const DEFAULT_CLIENT_ID: &str = "bindery";

/// Default `heartbeatInterval`.
pub(crate) const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Default `sessionTimeout`.
pub(crate) const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `consumeRetryInterval`.
pub(crate) const DEFAULT_CONSUME_RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// Default `dialTimeout`, `readTimeout` and `writeTimeout` (Sarama's).
pub(crate) const DEFAULT_NET_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `backOffDuration` (dapr/kit's constant policy).
pub(crate) const DEFAULT_BACKOFF_DURATION: Duration = Duration::from_secs(5);
/// Default `backOffInitialInterval` (dapr/kit's exponential policy).
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Default `backOffMaxInterval` (dapr/kit's exponential policy).
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Default `clientConnectionTopicMetadataRefreshInterval` (Dapr's: below Kafka's 9 min idle
/// connection limit).
pub(crate) const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(8 * 60);
/// How often stored offsets are committed (Sarama's `Consumer.Offsets.AutoCommit.Interval`).
pub(crate) const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Where a new consumer group starts reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitialOffset {
    /// Only messages published after the group first joined (`newest`, the default).
    Newest,
    /// From the oldest message the broker keeps (`oldest`).
    Oldest,
}

/// The SASL mechanism for `authType: password`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslMechanism {
    /// SASL/PLAIN (Dapr's default).
    Plain,
    /// SCRAM-SHA-256 (`SHA-256`).
    ScramSha256,
    /// SCRAM-SHA-512 (`SHA-512`).
    ScramSha512,
}

impl SaslMechanism {
    fn librdkafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// How bindery authenticates to the brokers (`authType`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// `none`: no authentication and, as in Dapr, no TLS.
    None,
    /// `password`: SASL with a user name and password.
    Password {
        username: String,
        password: String,
        mechanism: SaslMechanism,
    },
    /// `mtls`: TLS with a client certificate (both PEM). Dapr allows neither to be set, which is
    /// then plain TLS.
    Mtls {
        client_cert: Option<String>,
        client_key: Option<String>,
    },
    /// `certificate`: TLS that trusts `caCert`.
    Certificate,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials or key material.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Password {
                username,
                mechanism,
                ..
            } => f
                .debug_struct("Password")
                .field("username", username)
                .field("mechanism", mechanism)
                .finish_non_exhaustive(),
            Auth::Mtls { client_cert, .. } => f
                .debug_struct("Mtls")
                .field("client_cert", &client_cert.is_some())
                .finish_non_exhaustive(),
            Auth::Certificate => f.write_str("Certificate"),
        }
    }
}

/// Redelivery pacing for events the app did not accept (`backOff*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RedeliveryPolicy {
    /// The first delay.
    pub(crate) initial: Duration,
    /// The longest delay.
    pub(crate) max: Duration,
    /// After this many failed attempts of one event, log an error (the event is still retried:
    /// bindery never moves past an event the app has not accepted). `None`: never.
    pub(crate) warn_after: Option<u64>,
}

/// `producerRequiredAcks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequiredAcks {
    /// Every in-sync replica (`all`, `-1`, `WaitForAll`): the default.
    All,
    /// The partition leader only (`local`, `leader`, `1`, `WaitForLocal`).
    Leader,
    /// No acknowledgement (`none`, `0`, `NoResponse`).
    None,
}

impl RequiredAcks {
    fn librdkafka_value(self) -> &'static str {
        match self {
            RequiredAcks::All => "all",
            RequiredAcks::Leader => "1",
            RequiredAcks::None => "0",
        }
    }
}

/// The checked configuration of one `bindings.kafka` component.
#[derive(Clone)]
pub(crate) struct KafkaConfig {
    pub(crate) brokers: Vec<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) publish_topic: Option<String>,
    pub(crate) consumer_group: Option<String>,
    pub(crate) client_id: String,
    pub(crate) initial_offset: InitialOffset,
    pub(crate) auth: Auth,
    pub(crate) ca_cert: Option<String>,
    pub(crate) skip_verify: bool,
    /// Whether connections use TLS (Dapr: on unless `disableTls` or `authType: none`).
    pub(crate) tls: bool,
    pub(crate) max_message_bytes: Option<u32>,
    pub(crate) consume_retry_enabled: bool,
    pub(crate) consume_retry_interval: Duration,
    pub(crate) redelivery: RedeliveryPolicy,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) compression: &'static str,
    pub(crate) required_acks: RequiredAcks,
    pub(crate) producer_retry_max: u32,
    pub(crate) dial_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) escape_headers: bool,
    pub(crate) exclude_header_meta: Option<Regex>,
    pub(crate) fetch_min_bytes: Option<u32>,
    pub(crate) fetch_partition_bytes: Option<u32>,
    pub(crate) metadata_refresh: Duration,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `auth` redacts itself; PEM material is only shown as present or not.
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .field("publish_topic", &self.publish_topic)
            .field("consumer_group", &self.consumer_group)
            .field("client_id", &self.client_id)
            .field("initial_offset", &self.initial_offset)
            .field("auth", &self.auth)
            .field("ca_cert", &self.ca_cert.is_some())
            .field("skip_verify", &self.skip_verify)
            .field("tls", &self.tls)
            .field("redelivery", &self.redelivery)
            .finish_non_exhaustive()
    }
}

/// `authType` values Dapr knows that bindery does not implement.
const UNSUPPORTED_AUTH: &[&str] = &["oidc", "oidc_private_key_jwt", "awsiam"];

/// Split a comma-separated list, trimming blanks away.
fn csv(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `value` holds at least one PEM block (Dapr's `isValidPEM`, minus the decoding).
fn looks_like_pem(value: &str) -> bool {
    value.contains("-----BEGIN ") && value.contains("-----END ")
}

/// A duration where a plain integer counts milliseconds (Dapr's rule for
/// `consumeRetryInterval`).
fn millis_duration(r: &MetadataReader<'_>, name: &str, default: Duration) -> Duration {
    r.duration_with_unit(name, Duration::from_millis(1), default)
}

/// Whether `v` looks like a Kafka version Sarama parses: 2 to 4 dot-separated numbers.
fn is_kafka_version(v: &str) -> bool {
    let parts: Vec<&str> = v.trim().split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl KafkaConfig {
    /// Parse and check `md`, reporting every problem. No I/O.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let brokers = csv(&r.required("brokers", "kafka error: missing 'brokers' attribute"));
        if brokers.is_empty() && r.string("brokers").is_some() {
            r.error("brokers", "kafka error: 'brokers' lists no broker");
        }
        let topics = r.string("topics").map(|t| csv(&t)).unwrap_or_default();
        let publish_topic = r.string("publishTopic").map(|t| t.trim().to_owned());
        let consumer_group = r
            .string_any(&["consumerGroup", "consumerID"])
            .map(|g| g.trim().to_owned());
        let client_id = r
            .string_any(&["clientID"])
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned());
        if let Some(v) = r.string("version")
            && !is_kafka_version(&v)
        {
            r.error("version", "kafka error: invalid kafka version");
        }
        let initial_offset = match r.string("initialOffset") {
            None => InitialOffset::Newest,
            Some(v) if v.trim().eq_ignore_ascii_case("newest") => InitialOffset::Newest,
            Some(v) if v.trim().eq_ignore_ascii_case("oldest") => InitialOffset::Oldest,
            Some(v) => {
                r.error(
                    "initialOffset",
                    format!("kafka error: invalid initialOffset: {v} (use newest or oldest)"),
                );
                InitialOffset::Newest
            }
        };

        let ca_cert = r.string("caCert");
        if let Some(ca) = &ca_cert
            && !looks_like_pem(ca)
        {
            r.error("caCert", "kafka error: invalid ca certificate");
        }
        let skip_verify = r.bool("skipVerify", false);
        let disable_tls = r.bool("disableTls", false);
        let auth = Self::parse_auth(&r, ca_cert.is_some(), disable_tls);
        let tls = !disable_tls && auth != Auth::None;

        let max_message_bytes = match r.opt_int::<i64>("maxMessageBytes") {
            None => None,
            Some(n) if n <= 0 => None,
            Some(n) if (1000..=1_000_000_000).contains(&n) => u32::try_from(n).ok(),
            Some(n) => {
                r.error(
                    "maxMessageBytes",
                    format!(
                        "invalid value for maxMessageBytes: {n} is outside 1000..=1000000000 bytes"
                    ),
                );
                None
            }
        };

        let consume_retry_enabled = r.bool("consumeRetryEnabled", false);
        let consume_retry_interval =
            millis_duration(&r, "consumeRetryInterval", DEFAULT_CONSUME_RETRY_INTERVAL);
        let redelivery = Self::parse_backoff(&r);

        let heartbeat_interval = r.duration("heartbeatInterval", DEFAULT_HEARTBEAT_INTERVAL);
        let session_timeout = r.duration("sessionTimeout", DEFAULT_SESSION_TIMEOUT);
        if heartbeat_interval.is_zero() {
            r.error("heartbeatInterval", "heartbeatInterval must be above zero");
        }
        if session_timeout < Duration::from_millis(1) {
            r.error("sessionTimeout", "sessionTimeout must be above zero");
        }
        if !heartbeat_interval.is_zero() && heartbeat_interval >= session_timeout {
            r.error(
                "heartbeatInterval",
                format!(
                    "heartbeatInterval ({heartbeat_interval:?}) must be shorter than sessionTimeout ({session_timeout:?})"
                ),
            );
        }

        let compression = match r.string("compression") {
            None => "none",
            Some(c) => match c.trim().to_ascii_lowercase().as_str() {
                "none" => "none",
                "gzip" => "gzip",
                "snappy" => "snappy",
                "lz4" => "lz4",
                "zstd" => "zstd",
                _ => {
                    r.error(
                        "compression",
                        format!(
                            "invalid value for compression: {c:?} (use none, gzip, snappy, lz4 or zstd)"
                        ),
                    );
                    "none"
                }
            },
        };
        let required_acks = match r.string("producerRequiredAcks") {
            None => RequiredAcks::All,
            Some(a) => match a.trim().to_ascii_lowercase().as_str() {
                "all" | "-1" | "waitforall" => RequiredAcks::All,
                "local" | "leader" | "1" | "waitforlocal" => RequiredAcks::Leader,
                "none" | "0" | "noresponse" => RequiredAcks::None,
                _ => {
                    r.error(
                        "producerRequiredAcks",
                        format!(
                            "invalid value for producerRequiredAcks: {a:?} (use all, local or none)"
                        ),
                    );
                    RequiredAcks::All
                }
            },
        };
        let producer_retry_max = r.int::<u32>("producerRetryMax", 5);

        let dial_timeout = r.duration("dialTimeout", DEFAULT_NET_TIMEOUT);
        let read_timeout = r.duration("readTimeout", DEFAULT_NET_TIMEOUT);
        let write_timeout = r.duration("writeTimeout", DEFAULT_NET_TIMEOUT);
        for (name, d) in [
            ("dialTimeout", dial_timeout),
            ("readTimeout", read_timeout),
            ("writeTimeout", write_timeout),
        ] {
            if d.is_zero() {
                r.error(name, format!("{name} must be above zero"));
            }
        }

        let escape_headers = r.bool("escapeHeaders", false);
        let exclude_header_meta = r.string("excludeHeaderMetaRegex").and_then(|re| {
            Regex::new(&re)
                .map_err(|e| {
                    r.error(
                        "excludeHeaderMetaRegex",
                        format!("invalid value for excludeHeaderMetaRegex: {e}"),
                    )
                })
                .ok()
        });

        let fetch_min_bytes = r.opt_int::<u32>("consumerFetchMin").filter(|n| *n > 0);
        let fetch_partition_bytes = r.opt_int::<u32>("consumerFetchDefault").filter(|n| *n > 0);
        let _ = r.opt_int::<i64>("channelBufferSize");
        let metadata_refresh = r
            .opt_duration_any(&["clientConnectionTopicMetadataRefreshInterval"])
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_METADATA_REFRESH);
        let _ = r.opt_duration_any(&["clientConnectionKeepAliveInterval"]);

        if r.string("schemaRegistryURL").is_some() {
            r.error(
                "schemaRegistryURL",
                "schema registry (Avro/JSON schema validation) is not supported by bindery yet",
            );
        }

        r.finish()?;
        Ok(KafkaConfig {
            brokers,
            topics,
            publish_topic,
            consumer_group,
            client_id,
            initial_offset,
            auth,
            ca_cert,
            skip_verify,
            tls,
            max_message_bytes,
            consume_retry_enabled,
            consume_retry_interval,
            redelivery,
            heartbeat_interval,
            session_timeout,
            compression,
            required_acks,
            producer_retry_max,
            dial_timeout,
            read_timeout,
            write_timeout,
            escape_headers,
            exclude_header_meta,
            fetch_min_bytes,
            fetch_partition_bytes,
            metadata_refresh,
        })
    }

    /// `authType`, or the deprecated `authRequired` mapped as Dapr does.
    fn parse_auth(r: &MetadataReader<'_>, has_ca: bool, disable_tls: bool) -> Auth {
        let auth_type = match r.string("authType") {
            Some(t) => t.trim().to_ascii_lowercase(),
            None => match r.string("authRequired") {
                None => {
                    r.error(
                        "authType",
                        "kafka error: 'authType' attribute was missing or empty (use none, password, mtls or certificate)",
                    );
                    return Auth::None;
                }
                Some(v) => match bindery_core::parse_truthy(&v) {
                    Some(false) => "none".to_owned(),
                    Some(true) if r.string("saslPassword").is_some() => "password".to_owned(),
                    Some(true) => "mtls".to_owned(),
                    None => {
                        r.error(
                            "authRequired",
                            "kafka error: invalid value for 'authRequired' attribute",
                        );
                        return Auth::None;
                    }
                },
            },
        };
        match auth_type.as_str() {
            "none" => Auth::None,
            "password" => {
                let username = r.required(
                    "saslUsername",
                    "kafka error: missing SASL Username for authType 'password'",
                );
                let password = r.required(
                    "saslPassword",
                    "kafka error: missing SASL Password for authType 'password'",
                );
                let mechanism = match r.string("saslMechanism") {
                    None => SaslMechanism::Plain,
                    Some(m) => match m.trim().to_ascii_uppercase().as_str() {
                        "PLAIN" | "PLAINTEXT" => SaslMechanism::Plain,
                        "SHA-256" | "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                        "SHA-512" | "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                        _ => {
                            r.error(
                                "saslMechanism",
                                format!(
                                    "invalid value for saslMechanism: {m:?} (use PLAIN, SHA-256 or SHA-512)"
                                ),
                            );
                            SaslMechanism::Plain
                        }
                    },
                };
                Auth::Password {
                    username,
                    password,
                    mechanism,
                }
            }
            "mtls" => {
                if disable_tls {
                    r.error(
                        "disableTls",
                        "kafka: cannot configure mTLS authentication when disableTls is 'true'",
                    );
                }
                let client_cert = r.string("clientCert");
                let client_key = r.string("clientKey");
                if client_cert.as_deref().is_some_and(|c| !looks_like_pem(c)) {
                    r.error("clientCert", "kafka error: invalid client certificate");
                }
                if client_key.as_deref().is_some_and(|k| !looks_like_pem(k)) {
                    r.error("clientKey", "kafka error: invalid client key");
                }
                if client_cert.is_some() != client_key.is_some() {
                    r.error(
                        if client_cert.is_some() {
                            "clientKey"
                        } else {
                            "clientCert"
                        },
                        "kafka error: clientKey or clientCert is missing",
                    );
                }
                Auth::Mtls {
                    client_cert,
                    client_key,
                }
            }
            "certificate" => {
                if !has_ca {
                    r.error(
                        "caCert",
                        "missing CA certificate property 'caCert' for authType 'certificate'",
                    );
                }
                Auth::Certificate
            }
            other if UNSUPPORTED_AUTH.contains(&other) => {
                r.error(
                    "authType",
                    format!(
                        "authType '{other}' is not supported by bindery yet (supported: none, password, mtls, certificate)"
                    ),
                );
                Auth::None
            }
            _ => {
                r.error(
                    "authType",
                    "kafka error: invalid value for 'authType' attribute (use none, password, mtls or certificate)",
                );
                Auth::None
            }
        }
    }

    /// dapr/kit's retry settings (`backOff*`), read as bindery's redelivery pacing.
    fn parse_backoff(r: &MetadataReader<'_>) -> RedeliveryPolicy {
        let policy = r
            .string("backOffPolicy")
            .map(|p| p.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "constant".to_owned());
        let duration = r.duration("backOffDuration", DEFAULT_BACKOFF_DURATION);
        let initial = r.duration("backOffInitialInterval", DEFAULT_BACKOFF_INITIAL);
        let max = r.duration("backOffMaxInterval", DEFAULT_BACKOFF_MAX);
        let max_retries = r.int::<i64>("backOffMaxRetries", -1);
        // Accepted for compatibility; the delay doubles (see the crate docs).
        if let Some(m) = r.string("backOffMultiplier")
            && m.trim().parse::<f64>().map_or(true, |m| m < 1.0)
        {
            r.error(
                "backOffMultiplier",
                format!("invalid value for backOffMultiplier: {m:?} is not a number >= 1"),
            );
        }
        if let Some(f) = r.string("backOffRandomizationFactor")
            && f.trim()
                .parse::<f64>()
                .map_or(true, |f| !(0.0..=1.0).contains(&f))
        {
            r.error(
                "backOffRandomizationFactor",
                format!("invalid value for backOffRandomizationFactor: {f:?} is not in 0..=1"),
            );
        }
        let _ = r.opt_duration_any(&["backOffMaxElapsedTime"]);
        let warn_after = u64::try_from(max_retries).ok();
        match policy.as_str() {
            "constant" => RedeliveryPolicy {
                initial: duration,
                max: duration,
                warn_after,
            },
            "exponential" => {
                if max < initial {
                    r.error(
                        "backOffMaxInterval",
                        format!(
                            "backOffMaxInterval ({max:?}) is shorter than backOffInitialInterval ({initial:?})"
                        ),
                    );
                }
                RedeliveryPolicy {
                    initial,
                    max: max.max(initial),
                    warn_after,
                }
            }
            other => {
                r.error(
                    "backOffPolicy",
                    format!(
                        "invalid value for backOffPolicy: {other:?} (use constant or exponential)"
                    ),
                );
                RedeliveryPolicy {
                    initial: duration,
                    max: duration,
                    warn_after,
                }
            }
        }
    }

    /// The librdkafka properties both the producer and the consumer use.
    pub(crate) fn common_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", &self.client_id)
            .set(
                "socket.connection.setup.timeout.ms",
                millis_in(self.dial_timeout, 1000, i32::MAX as u64),
            )
            .set("socket.keepalive.enable", "true")
            .set(
                "topic.metadata.refresh.interval.ms",
                millis_in(self.metadata_refresh, 1000, 3_600_000),
            )
            // Health comes from librdkafka's view of its broker connections.
            .set("statistics.interval.ms", "1000")
            // Reconnect quickly after a broker restart, then back off.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "5000");
        let sasl = matches!(self.auth, Auth::Password { .. });
        let protocol = match (sasl, self.tls) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Auth::Password {
            username,
            password,
            mechanism,
        } = &self.auth
        {
            c.set("sasl.mechanisms", mechanism.librdkafka_name())
                .set("sasl.username", username)
                .set("sasl.password", password);
        }
        if self.tls {
            if let Some(ca) = &self.ca_cert {
                c.set("ssl.ca.pem", ca);
            }
            if self.skip_verify {
                c.set("enable.ssl.certificate.verification", "false")
                    .set("ssl.endpoint.identification.algorithm", "none");
            }
            if let Auth::Mtls {
                client_cert: Some(cert),
                client_key: Some(key),
            } = &self.auth
            {
                c.set("ssl.certificate.pem", cert).set("ssl.key.pem", key);
            }
        }
        c
    }

    /// The producer's librdkafka properties.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut c = self.common_client_config();
        c.set("acks", self.required_acks.librdkafka_value())
            .set("retries", self.producer_retry_max.to_string())
            .set("compression.codec", self.compression)
            .set(
                "socket.timeout.ms",
                millis_in(self.write_timeout, 10, 300_000),
            )
            // Keep a connection to every broker even while idle, so that health reflects whether
            // the next `create` can be served rather than whether one was sent lately.
            .set("enable.sparse.connections", "false")
            // `create` answers within writeTimeout: delivered, or an error.
            .set(
                "message.timeout.ms",
                millis_in(self.write_timeout, 1, i32::MAX as u64),
            );
        if let Some(max) = self.max_message_bytes {
            c.set("message.max.bytes", max.to_string());
        }
        c
    }

    /// The consumer's librdkafka properties for consumer group `group`.
    pub(crate) fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.common_client_config();
        c.set("group.id", group)
            .set(
                "auto.offset.reset",
                match self.initial_offset {
                    InitialOffset::Newest => "latest",
                    InitialOffset::Oldest => "earliest",
                },
            )
            // Offsets are stored by bindery only once the app accepted every event up to them;
            // librdkafka commits what is stored on a timer, on revoke and on close.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set(
                "auto.commit.interval.ms",
                COMMIT_INTERVAL.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                millis_in(self.heartbeat_interval, 1, 3_600_000),
            )
            .set(
                "session.timeout.ms",
                millis_in(self.session_timeout, 1, 3_600_000),
            )
            .set(
                "socket.timeout.ms",
                millis_in(self.read_timeout, 10, 300_000),
            )
            .set(
                "fetch.error.backoff.ms",
                millis_in(self.consume_retry_interval, 0, 300_000),
            )
            // As Sarama does: reading a topic that does not exist yet creates it (when the
            // broker allows it) instead of waiting for the next metadata refresh.
            .set("allow.auto.create.topics", "true")
            // What librdkafka prefetches per partition, which is all the input side keeps in
            // memory: each partition has its own queue, and its fetching stops while the queue
            // holds this many messages or this many KiB, until the worker takes them.
            .set("queued.min.messages", "1000")
            .set("queued.max.messages.kbytes", "8192")
            // Redelivery can hold a partition for long; the poll loop keeps running meanwhile,
            // so this only guards against a stuck process.
            .set("max.poll.interval.ms", "300000");
        if let Some(n) = self.fetch_min_bytes {
            c.set("fetch.min.bytes", n.to_string());
        }
        if let Some(n) = self.fetch_partition_bytes {
            c.set("max.partition.fetch.bytes", n.to_string());
        }
        c
    }
}

/// `d` in whole milliseconds, clamped to librdkafka's accepted range for a property.
fn millis_in(d: Duration, min: u64, max: u64) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ms.clamp(min, max).to_string()
}

#[cfg(test)]
mod tests;
