//! Component metadata of `bindings.mqtt3`, checked without I/O.

use std::time::Duration;

use bindery_core::{BindingError, Metadata, MetadataReader};

/// Default for `backOffInitialInterval` (dapr/kit's exponential default).
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// Default for `backOffMaxInterval` (dapr/kit's exponential default).
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where and how to connect, parsed from `url`. Holds the password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Broker {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.endpoint())
    }
}

impl Broker {
    /// `tcp://host:port` or `ssl://host:port`, without credentials, for logs.
    pub(crate) fn endpoint(&self) -> String {
        let scheme = if self.tls { "ssl" } else { "tcp" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The checked configuration of one `bindings.mqtt3` component.
#[derive(Clone)]
pub(crate) struct MqttConfig {
    pub(crate) broker: Broker,
    pub(crate) topic: String,
    pub(crate) consumer_id: String,
    pub(crate) retain: bool,
    pub(crate) clean_session: bool,
    pub(crate) ca_cert: Option<String>,
    pub(crate) client_cert: Option<String>,
    pub(crate) client_key: Option<String>,
    /// `None`: retry until accepted (bindery's default); `Some(n)`: at most `n` retries.
    pub(crate) max_retries: Option<u64>,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    /// Whether the deprecated `qos` was set (it is ignored).
    pub(crate) qos_set: bool,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("broker", &self.broker)
            .field("topic", &self.topic)
            .field("consumer_id", &self.consumer_id)
            .field("retain", &self.retain)
            .field("clean_session", &self.clean_session)
            .field("ca_cert", &self.ca_cert.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("client_key", &self.client_key.is_some())
            .field("max_retries", &self.max_retries)
            .field("backoff_initial", &self.backoff_initial)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

impl MqttConfig {
    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let url = r.required("url", "missing url");
        let broker = if url.is_empty() {
            None
        } else {
            match parse_url(url.trim()) {
                Ok(b) => Some(b),
                Err(e) => {
                    r.error("url", e);
                    None
                }
            }
        };
        let topic = r.required("topic", "missing topic");
        let consumer_id = r.required("consumerID", "missing consumerID");
        // Client ids get a `-producer` / `-consumer` suffix; MQTT 3.1.1 strings hold 65535 bytes.
        if consumer_id.len() > 60_000 {
            r.error("consumerID", "consumerID is too long");
        }
        let retain = r.bool("retain", false);
        let clean_session = r.bool("cleanSession", false);
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
        let max_retries = match r.string("backOffMaxRetries") {
            None => None,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n < 0 => None,
                Ok(n) => Some(n.unsigned_abs()),
                Err(_) => {
                    r.error(
                        "backOffMaxRetries",
                        format!("invalid value for backOffMaxRetries: {v:?} is not an integer"),
                    );
                    None
                }
            },
        };
        let backoff_initial = r.duration("backOffInitialInterval", DEFAULT_BACKOFF_INITIAL);
        let backoff_max = r.duration("backOffMaxInterval", DEFAULT_BACKOFF_MAX);
        if backoff_initial.is_zero() {
            r.error(
                "backOffInitialInterval",
                "backOffInitialInterval must be above zero",
            );
        }
        let qos_set = r.string("qos").is_some();
        r.finish()?;
        let Some(broker) = broker else {
            // finish() reported the missing url already; this keeps the types honest.
            return Err(vec![BindingError::config("url", "missing url")]);
        };
        Ok(MqttConfig {
            broker,
            topic,
            consumer_id,
            retain,
            clean_session,
            ca_cert,
            client_cert,
            client_key,
            max_retries,
            backoff_initial,
            backoff_max: backoff_max.max(backoff_initial),
            qos_set,
        })
    }

    /// The producer's client id.
    pub(crate) fn producer_id(&self) -> String {
        format!("{}-producer", self.consumer_id)
    }

    /// The consumer's client id.
    pub(crate) fn consumer_id(&self) -> String {
        format!("{}-consumer", self.consumer_id)
    }
}

/// A PEM value; records `message` when the value holds no PEM block.
fn pem_field(r: &MetadataReader<'_>, name: &str, message: &str) -> Option<String> {
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

/// Parse `scheme://[user[:password]@]host[:port][/…]`. Schemes as Dapr: `tcp`, `mqtt` (plain),
/// `ssl`, `mqtts`, `tcps`, `tls` (TLS). Errors never repeat the URL, which may carry a password.
pub(crate) fn parse_url(s: &str) -> Result<Broker, String> {
    const HINT: &str = "expected tcp://[user:password@]host:1883 or ssl://host:8883";
    let Some(sep) = s.find("://") else {
        return Err(format!("invalid url: no scheme ({HINT})"));
    };
    let scheme = s[..sep].to_ascii_lowercase();
    let tls = match scheme.as_str() {
        "tcp" | "mqtt" => false,
        "ssl" | "mqtts" | "tcps" | "tls" => true,
        other => {
            return Err(format!(
                "invalid url: scheme {other:?} is not supported ({HINT})"
            ));
        }
    };
    let rest = &s[sep + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
        let close = inner
            .find(']')
            .ok_or_else(|| format!("invalid url: unclosed '[' in the host ({HINT})"))?;
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("invalid url: bad host ({HINT})")),
        };
        (&inner[..close], port)
    } else {
        match host_port.rfind(':') {
            Some(i) => (&host_port[..i], Some(&host_port[i + 1..])),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("invalid url: no host ({HINT})"));
    }
    let port = match port {
        None | Some("") => {
            if tls {
                8883
            } else {
                1883
            }
        }
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid url: port {p:?} is not a port number ({HINT})"))?,
    };
    let decode = |part: &str, what: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| format!("invalid url: the {what} is not valid UTF-8 once decoded"))
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (Some(decode(u, "user")?), Some(decode(p, "password")?)),
            None => (Some(decode(ui, "user")?), None),
        },
    };
    Ok(Broker {
        tls,
        host: decode(host, "host")?,
        port,
        username: username.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
    })
}
