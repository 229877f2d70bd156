//! Component metadata of `bindings.nats`, checked without I/O.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_nats::ServerAddr;
use bindery_core::{BindingError, Metadata, MetadataReader};

/// `connectTimeout` default.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `requestTimeout` default.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `pingInterval` default.
pub(crate) const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(60);
/// `reconnectWait` default.
pub(crate) const DEFAULT_RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// `backOffInitialInterval` default.
pub(crate) const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// `backOffMaxInterval` default.
pub(crate) const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// `ackWait` default (the NATS server's own default).
pub(crate) const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// `maxAckPending` default (the NATS server's own default).
pub(crate) const DEFAULT_MAX_ACK_PENDING: i64 = 1000;

/// How bindery authenticates to NATS (at most one).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No credentials (or credentials inside `natsURL`).
    None,
    /// `user` and `password`.
    UserPassword { user: String, password: String },
    /// `token`.
    Token(String),
    /// `nkeySeed` alone: NKey authentication.
    Nkey(String),
    /// `jwt` with `nkeySeed`: decentralised JWT authentication.
    Jwt { jwt: String, seed: String },
    /// `credsFile`: a `.creds` file holding a JWT and its seed.
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user}, <redacted>)"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Nkey(_) => f.write_str("Nkey(<redacted>)"),
            Auth::Jwt { .. } => f.write_str("Jwt(<redacted>)"),
            Auth::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
        }
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsConfig {
    /// `enableTLS`: refuse to talk without TLS.
    pub(crate) required: bool,
    /// `tlsFirst`: start TLS before the NATS handshake (servers with `handshake_first`).
    pub(crate) first: bool,
    /// `tlsCACert`: a PEM file of roots to trust, besides the system's.
    pub(crate) ca_cert: Option<PathBuf>,
    /// `tlsClientCert` and `tlsClientKey`: PEM files for mutual TLS.
    pub(crate) client: Option<(PathBuf, PathBuf)>,
}

/// Where a JetStream consumer starts in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliverPolicy {
    /// Every message the stream holds.
    All,
    /// Only messages stored after the consumer was created.
    New,
    /// The last message of the stream, then new ones.
    Last,
    /// The last message of each subject, then new ones.
    LastPerSubject,
    /// From a stream sequence on.
    Sequence(u64),
}

/// JetStream settings (`jetStream: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JetStreamConfig {
    /// `streamName`; when absent, the stream that captures `subject` is looked up.
    pub(crate) stream: Option<String>,
    /// `durableName`; when absent, `<app id>-<component name>`.
    pub(crate) durable: Option<String>,
    pub(crate) deliver_policy: DeliverPolicy,
    pub(crate) ack_wait: Duration,
    /// `-1`: unlimited.
    pub(crate) max_deliver: i64,
    /// `-1`: unlimited.
    pub(crate) max_ack_pending: i64,
}

/// The checked configuration of one `bindings.nats` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NatsConfig {
    /// `natsURL`, one entry per server.
    pub(crate) servers: Vec<String>,
    /// `name`: the connection name the server shows.
    pub(crate) name: Option<String>,
    pub(crate) auth: Auth,
    pub(crate) tls: TlsConfig,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) reconnect_wait: Duration,
    /// `subject`: what the input side subscribes to (wildcards allowed).
    pub(crate) subject: Option<String>,
    /// `publishSubject`, else `subject` when it has no wildcard.
    pub(crate) publish_subject: Option<String>,
    /// `queueGroupName` (core NATS).
    pub(crate) queue_group: Option<String>,
    /// `concurrency`: deliveries to the app at once.
    pub(crate) concurrency: usize,
    /// Core NATS: the most messages held in process (delivering or waiting for a retry).
    pub(crate) max_in_process: usize,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) jetstream: Option<JetStreamConfig>,
}

impl NatsConfig {
    /// `natsURL` for messages: the servers without any credentials in them.
    pub(crate) fn servers_display(&self) -> String {
        self.servers
            .iter()
            .map(|s| redact_url(s))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let url = r.required("natsURL", "nats binding: natsURL is required");
        let mut servers = Vec::new();
        // Credentials in the URLs are taken out of them: the client would not send them, and it
        // logs server addresses whole.
        let mut url_auth: Option<Auth> = None;
        for entry in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (plain, creds) = split_credentials(entry);
            if let Some(creds) = creds {
                match &url_auth {
                    None => url_auth = Some(creds),
                    Some(first) if *first != creds => r.error(
                        "natsURL",
                        "the servers in natsURL carry different credentials; set user and password (or token) instead",
                    ),
                    Some(_) => {}
                }
            }
            match ServerAddr::from_str(&plain) {
                Ok(_) => servers.push(plain),
                Err(e) => r.error(
                    "natsURL",
                    format!(
                        "invalid value for natsURL: {:?} is not a NATS server address: {e}",
                        redact_url(entry)
                    ),
                ),
            }
        }
        if !url.is_empty() && url.split(',').all(|s| s.trim().is_empty()) {
            r.error("natsURL", "nats binding: natsURL is required");
        }
        let name = r.string("name");
        // Credentials set as metadata win over those in the URLs.
        let auth = match (parse_auth(&r), url_auth) {
            (Auth::None, Some(from_url)) => from_url,
            (auth, _) => auth,
        };
        let tls = parse_tls(&r);

        let connect_timeout = positive(&r, "connectTimeout", DEFAULT_CONNECT_TIMEOUT);
        let request_timeout = positive(&r, "requestTimeout", DEFAULT_REQUEST_TIMEOUT);
        let ping_interval = positive(&r, "pingInterval", DEFAULT_PING_INTERVAL);
        let reconnect_wait = positive(&r, "reconnectWait", DEFAULT_RECONNECT_WAIT);

        let subject = r.string("subject").map(|s| s.trim().to_owned());
        if let Some(s) = &subject
            && let Err(e) = check_subject(s, true)
        {
            r.error("subject", format!("invalid value for subject: {e}"));
        }
        let explicit_publish = r.string("publishSubject").map(|s| s.trim().to_owned());
        if let Some(s) = &explicit_publish
            && let Err(e) = check_subject(s, false)
        {
            r.error(
                "publishSubject",
                format!("invalid value for publishSubject: {e}"),
            );
        }
        if subject.is_none() && explicit_publish.is_none() {
            r.error(
                "subject",
                "nats binding: set subject (what the input side reads; also where the output side publishes) or publishSubject",
            );
        }
        if direction_has_input(md) && subject.is_none() {
            r.error(
                "subject",
                "nats binding: direction includes input, so subject (what to subscribe to) is required",
            );
        }
        let publish_subject = explicit_publish
            .or_else(|| subject.clone().filter(|s| check_subject(s, false).is_ok()));
        let queue_group = r.string("queueGroupName").map(|s| s.trim().to_owned());
        if let Some(q) = &queue_group
            && (q.contains(char::is_whitespace) || q.is_empty())
        {
            r.error(
                "queueGroupName",
                "invalid value for queueGroupName: it must not contain whitespace",
            );
        }

        let concurrency = match r.opt_int::<i64>("concurrency") {
            None => 1,
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(n) => {
                r.error(
                    "concurrency",
                    format!("invalid value for concurrency: {n}; use 1 or more"),
                );
                1
            }
        };
        let backoff_initial = positive(&r, "backOffInitialInterval", DEFAULT_BACKOFF_INITIAL);
        let backoff_max = positive(&r, "backOffMaxInterval", DEFAULT_BACKOFF_MAX);
        if backoff_max < backoff_initial {
            r.error(
                "backOffMaxInterval",
                "backOffMaxInterval is shorter than backOffInitialInterval",
            );
        }

        let max_ack_pending = match r.opt_int::<i64>("maxAckPending") {
            None => DEFAULT_MAX_ACK_PENDING,
            Some(-1) => -1,
            Some(n) if n >= 1 => n,
            Some(n) => {
                r.error(
                    "maxAckPending",
                    format!(
                        "invalid value for maxAckPending: {n}; use -1 (unlimited) or 1 or more"
                    ),
                );
                DEFAULT_MAX_ACK_PENDING
            }
        };
        let max_in_process = if max_ack_pending < 0 {
            usize::MAX
        } else {
            usize::try_from(max_ack_pending).unwrap_or(usize::MAX)
        }
        .max(concurrency);

        let jetstream = if r.bool("jetStream", false) {
            if queue_group.is_some() {
                r.error(
                    "queueGroupName",
                    "queueGroupName is for core NATS; with jetStream the replicas share the durable consumer (durableName)",
                );
            }
            Some(parse_jetstream(&r, max_ack_pending))
        } else {
            for field in [
                "streamName",
                "durableName",
                "deliverPolicy",
                "startSequence",
                "ackWait",
                "maxDeliver",
            ] {
                if r.string(field).is_some() {
                    r.error(
                        field,
                        format!("{field} is a JetStream setting; it needs jetStream: true"),
                    );
                }
            }
            None
        };

        r.finish()?;
        Ok(NatsConfig {
            servers,
            name,
            auth,
            tls,
            connect_timeout,
            request_timeout,
            ping_interval,
            reconnect_wait,
            subject,
            publish_subject,
            queue_group,
            concurrency,
            max_in_process,
            backoff_initial,
            backoff_max,
            jetstream,
        })
    }
}

fn parse_jetstream(r: &MetadataReader<'_>, max_ack_pending: i64) -> JetStreamConfig {
    let stream = r.string("streamName").map(|s| s.trim().to_owned());
    if let Some(s) = &stream
        && let Err(e) = check_name(s)
    {
        r.error("streamName", format!("invalid value for streamName: {e}"));
    }
    let durable = r.string("durableName").map(|s| s.trim().to_owned());
    if let Some(d) = &durable
        && let Err(e) = check_name(d)
    {
        r.error("durableName", format!("invalid value for durableName: {e}"));
    }
    let start_sequence = r.opt_int::<u64>("startSequence");
    let deliver_policy = match r
        .string("deliverPolicy")
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None if start_sequence.is_some() => DeliverPolicy::Sequence(start_sequence.unwrap_or(1)),
        None | Some("all") => DeliverPolicy::All,
        Some("new") => DeliverPolicy::New,
        Some("last") => DeliverPolicy::Last,
        Some("lastpersubject") => DeliverPolicy::LastPerSubject,
        Some("sequence" | "bystartsequence") => match start_sequence {
            Some(n) if n >= 1 => DeliverPolicy::Sequence(n),
            _ => {
                r.error(
                    "startSequence",
                    "deliverPolicy sequence needs startSequence (1 or more)",
                );
                DeliverPolicy::All
            }
        },
        Some(other) => {
            r.error(
                "deliverPolicy",
                format!(
                    "invalid value for deliverPolicy: {other:?}; use all, new, last, lastPerSubject or sequence"
                ),
            );
            DeliverPolicy::All
        }
    };
    if start_sequence.is_some() && !matches!(deliver_policy, DeliverPolicy::Sequence(_)) {
        r.error(
            "startSequence",
            "startSequence needs deliverPolicy sequence (or no deliverPolicy)",
        );
    }
    let ack_wait = positive(r, "ackWait", DEFAULT_ACK_WAIT);
    let max_deliver = match r.opt_int::<i64>("maxDeliver") {
        None | Some(-1) | Some(0) => -1,
        Some(n) if n >= 1 => n,
        Some(n) => {
            r.error(
                "maxDeliver",
                format!("invalid value for maxDeliver: {n}; use -1 (unlimited) or 1 or more"),
            );
            -1
        }
    };
    JetStreamConfig {
        stream,
        durable,
        deliver_policy,
        ack_wait,
        max_deliver,
        max_ack_pending,
    }
}

fn parse_auth(r: &MetadataReader<'_>) -> Auth {
    let user = r.string("user");
    let password = r.string("password");
    let token = r.string("token");
    let seed = r.string_any(&["nkeySeed", "seedKey"]);
    let jwt = r.string("jwt");
    let creds = r.string("credsFile").map(|p| PathBuf::from(p.trim()));
    let mut methods = Vec::new();
    let mut auth = Auth::None;
    match (user, password) {
        (Some(user), Some(password)) => {
            methods.push("user/password");
            auth = Auth::UserPassword { user, password };
        }
        (Some(_), None) => r.error("password", "user is set but password is not; set both"),
        (None, Some(_)) => r.error("user", "password is set but user is not; set both"),
        (None, None) => {}
    }
    if let Some(t) = token {
        methods.push("token");
        auth = Auth::Token(t);
    }
    match (jwt, seed) {
        (Some(jwt), Some(seed)) => {
            methods.push("jwt/nkeySeed");
            auth = Auth::Jwt { jwt, seed };
        }
        (Some(_), None) => r.error(
            "nkeySeed",
            "jwt is set but nkeySeed is not; a JWT needs its seed",
        ),
        (None, Some(seed)) => {
            if !seed.trim_start().starts_with('S') {
                r.error(
                    "nkeySeed",
                    "invalid value for nkeySeed: an NKey seed starts with S (e.g. SUA…)",
                );
            }
            methods.push("nkeySeed");
            auth = Auth::Nkey(seed.trim().to_owned());
        }
        (None, None) => {}
    }
    if let Some(p) = creds {
        methods.push("credsFile");
        auth = Auth::CredsFile(p);
    }
    if methods.len() > 1 {
        r.error(
            "credsFile",
            format!(
                "several NATS authentication methods are set ({}); choose one",
                methods.join(", ")
            ),
        );
    }
    auth
}

fn parse_tls(r: &MetadataReader<'_>) -> TlsConfig {
    let cert = r
        .string_any(&["tlsClientCert", "tls_client_cert"])
        .map(|p| PathBuf::from(p.trim()));
    let key = r
        .string_any(&["tlsClientKey", "tls_client_key"])
        .map(|p| PathBuf::from(p.trim()));
    let client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            r.error(
                "tlsClientKey",
                "tlsClientCert is set but tlsClientKey is not; set both",
            );
            None
        }
        (None, Some(_)) => {
            r.error(
                "tlsClientCert",
                "tlsClientKey is set but tlsClientCert is not; set both",
            );
            None
        }
    };
    TlsConfig {
        required: r.bool("enableTLS", false),
        first: r.bool("tlsFirst", false),
        ca_cert: r.string("tlsCACert").map(|p| PathBuf::from(p.trim())),
        client,
    }
}

/// A duration that must be more than zero.
fn positive(r: &MetadataReader<'_>, name: &str, default: Duration) -> Duration {
    let d = r.duration(name, default);
    if d.is_zero() {
        r.error(
            name,
            format!("invalid value for {name}: it must be more than zero"),
        );
        return default;
    }
    d
}

/// Whether the reserved `direction` metadata names the input side.
fn direction_has_input(md: &Metadata) -> bool {
    md.get("direction")
        .is_some_and(|d| d.split(',').any(|s| s.trim().eq_ignore_ascii_case("input")))
}

/// Check a subject: dot-separated tokens, no whitespace; `*` and `>` only as whole tokens (and
/// `>` last) when `wildcards` are allowed.
pub(crate) fn check_subject(s: &str, wildcards: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("the subject is empty".into());
    }
    if s.contains(char::is_whitespace) {
        return Err(format!("{s:?} contains whitespace"));
    }
    let tokens: Vec<&str> = s.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return Err(format!("{s:?} has an empty token"));
        }
        let wild = *t == "*" || *t == ">";
        if wild && !wildcards {
            return Err(format!("{s:?} has a wildcard; a publish subject cannot"));
        }
        if *t == ">" && i + 1 != tokens.len() {
            return Err(format!("{s:?}: '>' must be the last token"));
        }
        if !wild && (t.contains('*') || t.contains('>')) {
            return Err(format!("{s:?}: wildcards must be whole tokens"));
        }
    }
    Ok(())
}

/// Check a stream or consumer name.
pub(crate) fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the name is empty".into());
    }
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(format!(
            "{s:?} contains a character names cannot hold (whitespace, '.', '*', '>', '/', '\\')"
        ));
    }
    Ok(())
}

/// The default durable name: `<app id>-<component name>`, with characters consumer names cannot
/// hold replaced by `_`.
pub(crate) fn default_durable(app_id: &str, component: &str) -> String {
    format!("{app_id}-{component}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `entry` without its `user:password@` (or `token@`) part, and the credentials it carried, as
/// the Go client reads them.
pub(crate) fn split_credentials(entry: &str) -> (String, Option<Auth>) {
    let plain = redact_url(entry);
    let rest = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let Some((info, _)) = rest.rsplit_once('@') else {
        return (plain, None);
    };
    let auth = match info.split_once(':') {
        Some((user, password)) => Auth::UserPassword {
            user: percent_decode(user),
            password: percent_decode(password),
        },
        None => Auth::Token(percent_decode(info)),
    };
    (plain, Some(auth))
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server address without the `user:password@` part.
pub(crate) fn redact_url(s: &str) -> String {
    let (scheme, rest) = match s.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, s),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => host,
        None => rest,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_owned(),
    }
}
