//! Component metadata of `bindings.rabbitmq`, checked without I/O.

use std::time::Duration;

use bindery_core::{BindingError, Metadata};
use lapin::uri::{AMQPScheme, AMQPUri, SASLMechanism};

/// Default for `reconnectWaitInSeconds`.
pub(crate) const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(5);
/// Default for `contentType`.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "text/plain";
/// Default for `backOffInitialInterval` (dapr/kit's exponential default).
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Default for `backOffMaxInterval` (dapr/kit's exponential default).
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The unacknowledged-message window used when `prefetchCount` is 0.
pub(crate) const DEFAULT_WINDOW: u16 = 100;
/// AMQP short strings (queue names, property values, header names) hold at most 255 bytes.
pub(crate) const MAX_SHORT_STRING: usize = 255;

/// The checked configuration of one `bindings.rabbitmq` component.
#[derive(Clone)]
pub(crate) struct RabbitConfig {
    /// The parsed `host`; it may carry a password, so it is never printed.
    pub(crate) uri: AMQPUri,
    pub(crate) queue_name: String,
    pub(crate) durable: bool,
    pub(crate) delete_when_unused: bool,
    pub(crate) exclusive: bool,
    /// `prefetchCount` as written; 0 means "not set".
    pub(crate) prefetch_count: u16,
    pub(crate) max_priority: Option<u8>,
    /// The queue's `x-message-ttl`.
    pub(crate) queue_ttl: Option<Duration>,
    pub(crate) reconnect_wait: Duration,
    pub(crate) ca_cert: Option<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
    pub(crate) external_sasl: bool,
    pub(crate) content_type: String,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

impl std::fmt::Debug for RabbitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the URL (it may carry a password) nor key material.
        f.debug_struct("RabbitConfig")
            .field("endpoint", &self.endpoint())
            .field("queue_name", &self.queue_name)
            .field("durable", &self.durable)
            .field("delete_when_unused", &self.delete_when_unused)
            .field("exclusive", &self.exclusive)
            .field("prefetch_count", &self.prefetch_count)
            .field("max_priority", &self.max_priority)
            .field("queue_ttl", &self.queue_ttl)
            .field("reconnect_wait", &self.reconnect_wait)
            .field("ca_cert", &self.ca_cert.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("client_key", &self.client_key.is_some())
            .field("external_sasl", &self.external_sasl)
            .field("content_type", &self.content_type)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl RabbitConfig {
    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let host = r.required("host", "missing host address");
        let uri = if host.is_empty() {
            None
        } else {
            match parse_amqp_uri(host.trim()) {
                Ok(u) => Some(u),
                Err(e) => {
                    r.error("host", e);
                    None
                }
            }
        };
        let queue_name = r.required("queueName", "missing queue Name");
        if queue_name.len() > MAX_SHORT_STRING {
            r.error(
                "queueName",
                format!(
                    "queueName is {} bytes long; AMQP allows at most {MAX_SHORT_STRING}",
                    queue_name.len()
                ),
            );
        }
        let durable = r.bool("durable", false);
        let delete_when_unused = r.bool("deleteWhenUnused", false);
        let exclusive = r.bool("exclusive", false);
        let prefetch_count = match r.string("prefetchCount") {
            None => 0,
            Some(v) => match v.trim().parse::<i64>() {
                // Dapr takes an int; a negative count means "no limit" like 0 does.
                Ok(n) if n <= 0 => 0,
                Ok(n) => u16::try_from(n).unwrap_or_else(|_| {
                    r.error(
                        "prefetchCount",
                        format!("invalid value for prefetchCount: {n} is above 65535"),
                    );
                    0
                }),
                Err(_) => {
                    r.error(
                        "prefetchCount",
                        format!("invalid value for prefetchCount: {v:?} is not an integer"),
                    );
                    0
                }
            },
        };
        let max_priority = r.string("maxPriority").and_then(|v| {
            match v.trim().parse::<u64>() {
                // As Dapr: values above 255 are capped.
                Ok(n) => Some(u8::try_from(n).unwrap_or(u8::MAX)),
                Err(e) => {
                    r.error("maxPriority", format!("can't parse maxPriority field: {e}"));
                    None
                }
            }
        });
        let queue_ttl = parse_ttl(&r, "ttlInSeconds", "ttl");
        let reconnect_wait = r.duration("reconnectWaitInSeconds", DEFAULT_RECONNECT_WAIT);
        let ca_cert = pem_field(&r, "caCert", "invalid ca certificate");
        let client_cert = pem_field(&r, "clientCert", "invalid client certificate");
        let client_key = pem_field(&r, "clientKey", "invalid client certificate key");
        if client_cert.is_some() != client_key.is_some() {
            r.error(
                if client_cert.is_some() {
                    "clientKey"
                } else {
                    "clientCert"
                },
                "clientCert and clientKey must be set together",
            );
        }
        let external_sasl = match r.string_any(&["externalSasl", "saslExternal"]) {
            None => false,
            Some(v) => bindery_core::parse_truthy(&v).unwrap_or_else(|| {
                r.error(
                    "externalSasl",
                    format!("invalid value for externalSasl: {v:?} is not a boolean"),
                );
                false
            }),
        };
        if external_sasl && client_cert.is_none() {
            r.error(
                "externalSasl",
                "externalSasl needs a client certificate: set clientCert and clientKey",
            );
        }
        let content_type = r.string_or("contentType", DEFAULT_CONTENT_TYPE);
        if content_type.len() > MAX_SHORT_STRING {
            r.error(
                "contentType",
                format!("contentType is longer than {MAX_SHORT_STRING} bytes"),
            );
        }
        let backoff_initial = r.duration("backOffInitialInterval", DEFAULT_BACKOFF_INITIAL);
        let backoff_max = r.duration("backOffMaxInterval", DEFAULT_BACKOFF_MAX);
        if backoff_initial.is_zero() {
            r.error(
                "backOffInitialInterval",
                "backOffInitialInterval must be above zero",
            );
        }
        r.finish()?;
        let Some(mut uri) = uri else {
            // finish() reported the missing host already; this keeps the types honest.
            return Err(vec![BindingError::config("host", "missing host address")]);
        };
        if external_sasl {
            uri.query.auth_mechanism = Some(SASLMechanism::External);
        }
        Ok(RabbitConfig {
            uri,
            queue_name,
            durable,
            delete_when_unused,
            exclusive,
            prefetch_count,
            max_priority,
            queue_ttl,
            reconnect_wait,
            ca_cert,
            client_cert,
            client_key,
            external_sasl,
            content_type,
            backoff_initial,
            backoff_max: backoff_max.max(backoff_initial),
        })
    }

    /// `scheme://host:port/vhost` without credentials, for logs.
    pub(crate) fn endpoint(&self) -> String {
        format!(
            "{}://{}:{}/{}",
            self.uri.scheme,
            self.uri.authority.host,
            self.uri.authority.port,
            percent_encoding::utf8_percent_encode(
                &self.uri.vhost,
                percent_encoding::NON_ALPHANUMERIC
            )
        )
    }

    /// Whether the connection uses TLS.
    pub(crate) fn tls(&self) -> bool {
        self.uri.scheme == AMQPScheme::AMQPS
    }

    /// How many unacknowledged messages the consumer holds at once.
    pub(crate) fn window(&self) -> u16 {
        if self.prefetch_count == 0 {
            DEFAULT_WINDOW
        } else {
            self.prefetch_count
        }
    }
}

/// A TTL given either as whole seconds (`ttlInSeconds`) or as a duration (`ttl`, where a plain
/// integer also counts seconds). Zero or negative values are refused, as Dapr does.
fn parse_ttl(
    r: &bindery_core::MetadataReader<'_>,
    seconds_key: &str,
    duration_key: &str,
) -> Option<Duration> {
    if let Some(v) = r.string(seconds_key) {
        return match v.trim().parse::<i64>() {
            Ok(n) if n > 0 => Some(Duration::from_secs(n.unsigned_abs())),
            Ok(n) => {
                r.error(
                    seconds_key,
                    format!("{seconds_key} value must be higher than zero: actual is {n}"),
                );
                None
            }
            Err(_) => {
                r.error(
                    seconds_key,
                    format!("{seconds_key} value must be a valid integer: actual is '{v}'"),
                );
                None
            }
        };
    }
    let d = r.opt_duration_any(&[duration_key])?;
    if d.is_zero() {
        r.error(
            duration_key,
            format!("{duration_key} value must be higher than zero"),
        );
        return None;
    }
    Some(d)
}

/// A PEM value; records `message` when the value holds no PEM block.
fn pem_field(r: &bindery_core::MetadataReader<'_>, name: &str, message: &str) -> Option<String> {
    let v = r.string(name)?;
    if is_pem(&v) {
        Some(v)
    } else {
        r.error(name, message);
        None
    }
}

/// Whether `v` holds at least one complete PEM block.
pub(crate) fn is_pem(v: &str) -> bool {
    let Some(start) = v.find("-----BEGIN ") else {
        return false;
    };
    v[start..].contains("-----END ")
}

/// Parse an AMQP URL. Errors never repeat the URL, which may carry a password.
pub(crate) fn parse_amqp_uri(s: &str) -> Result<AMQPUri, String> {
    const HINT: &str = "expected amqp://[user:password@]host[:port][/vhost] or amqps://…";
    let mut uri: AMQPUri = s.parse().map_err(|e: String| {
        if e.contains(s) || s.contains('@') && e.contains('@') {
            format!("invalid host URL ({HINT})")
        } else {
            format!("invalid host URL: {e} ({HINT})")
        }
    })?;
    // amq-protocol-uri only keeps DNS names; an IP address host would become "localhost".
    match authority_host(s) {
        Some(host) if !host.is_empty() => uri.authority.host = host,
        _ => {}
    }
    Ok(uri)
}

/// The host part of `scheme://[userinfo@]host[:port][/path][?query]`, brackets removed.
pub(crate) fn authority_host(s: &str) -> Option<String> {
    let rest = &s[s.find("://")? + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let host = if let Some(inner) = host_port.strip_prefix('[') {
        &inner[..inner.find(']')?]
    } else {
        match host_port.rfind(':') {
            Some(i) => &host_port[..i],
            None => host_port,
        }
    };
    let decoded = percent_encoding::percent_decode_str(host)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some(decoded)
}
