//! Component metadata of `bindings.smtp`, checked without I/O, and the per-call merge with
//! request metadata.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use bindery_core::{BindingError, Metadata};
use lettre::message::Mailbox;

/// Default `priority` (`X-Priority: 3`, normal).
pub(crate) const DEFAULT_PRIORITY: u8 = 3;
/// Highest priority.
pub(crate) const HIGHEST_PRIORITY: u8 = 1;
/// Lowest priority.
pub(crate) const LOWEST_PRIORITY: u8 = 5;
/// Address lists are separated by `;`, as in Dapr.
pub(crate) const SEPARATOR: char = ';';

/// How the connection to the server is secured (`tlsMode`, a bindery extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Dapr's behaviour: implicit TLS on port 465; elsewhere STARTTLS when the server offers it,
    /// plain text when it does not. With credentials, a server that is not on a loopback address
    /// must offer STARTTLS (credentials never travel in plain text to another host).
    Auto,
    /// STARTTLS is required: a server that does not offer it is an error.
    StartTls,
    /// Implicit TLS (SMTPS) on any port: TLS from the first byte.
    Tls,
    /// Plain text only; STARTTLS is never attempted.
    None,
}

impl TlsMode {
    fn parse(v: &str) -> Option<Self> {
        match v.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(TlsMode::Auto),
            "starttls" => Some(TlsMode::StartTls),
            "tls" | "implicit" | "smtps" => Some(TlsMode::Tls),
            "none" | "plain" => Some(TlsMode::None),
            _ => None,
        }
    }
}

/// What the transport does on the wire, decided from the configuration alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// STARTTLS, and fail when the server does not offer it.
    RequiredStartTls,
    /// STARTTLS when offered, else plain text.
    OpportunisticStartTls,
    /// Plain text.
    Plain,
}

/// The checked configuration of one `bindings.smtp` component.
#[derive(Clone)]
pub(crate) struct SmtpConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    /// A credential: never printed.
    pub(crate) password: Option<String>,
    pub(crate) skip_tls_verify: bool,
    pub(crate) tls_mode: TlsMode,
    /// Component-level defaults of the mail fields.
    pub(crate) mail: MailFields,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("skip_tls_verify", &self.skip_tls_verify)
            .field("tls_mode", &self.tls_mode)
            .field("mail", &self.mail)
            .finish()
    }
}

/// The mail fields that component metadata sets and request metadata overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MailFields {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) cc: Option<String>,
    pub(crate) bcc: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) priority: u8,
}

/// The request (and component) metadata keys of the mail fields.
pub(crate) const EMAIL_FROM: &str = "emailFrom";
pub(crate) const EMAIL_TO: &str = "emailTo";
pub(crate) const EMAIL_CC: &str = "emailCC";
pub(crate) const EMAIL_BCC: &str = "emailBCC";
pub(crate) const SUBJECT: &str = "subject";
pub(crate) const PRIORITY: &str = "priority";

impl SmtpConfig {
    /// Parse and check `md`, reporting every problem.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        const HOST_PORT: &str = "smtp binding error: host and port fields are required in metadata";
        let r = md.reader();
        let host = r.string("host");
        let port = match r.string("port") {
            None => None,
            Some(v) => match v.trim().parse::<u16>() {
                Ok(0) => None,
                Ok(p) => Some(p),
                Err(_) => {
                    r.error(
                        "port",
                        format!("smtp binding error: invalid port {v:?}: expected 1 to 65535"),
                    );
                    Some(0)
                }
            },
        };
        if host.is_none() || port.is_none() {
            r.error(if host.is_none() { "host" } else { "port" }, HOST_PORT);
        }
        let user = r.string("user");
        let password = r.string("password");
        if user.is_some() != password.is_some() {
            r.error(
                if user.is_some() { "password" } else { "user" },
                "smtp binding error: both user and password fields are required in metadata",
            );
        }
        let skip_tls_verify = r.bool("skipTLSVerify", false);
        let tls_mode = match r.string("tlsMode") {
            None => TlsMode::Auto,
            Some(v) => TlsMode::parse(&v).unwrap_or_else(|| {
                r.error(
                    "tlsMode",
                    format!(
                        "smtp binding error: invalid tlsMode {v:?}: use auto, starttls, tls or none"
                    ),
                );
                TlsMode::Auto
            }),
        };
        let priority = match r.string(PRIORITY) {
            None => DEFAULT_PRIORITY,
            Some(v) => parse_priority(&v).unwrap_or_else(|e| {
                r.error(PRIORITY, e);
                DEFAULT_PRIORITY
            }),
        };
        let mail = MailFields {
            from: r.string(EMAIL_FROM),
            to: r.string(EMAIL_TO),
            cc: r.string(EMAIL_CC),
            bcc: r.string(EMAIL_BCC),
            subject: r.string(SUBJECT),
            priority,
        };
        // Addresses set on the component are checked now, so a typo fails at load, not at the
        // first call.
        for (field, value) in [
            (EMAIL_FROM, &mail.from),
            (EMAIL_TO, &mail.to),
            (EMAIL_CC, &mail.cc),
            (EMAIL_BCC, &mail.bcc),
        ] {
            if let Some(v) = value {
                let parsed = if field == EMAIL_FROM {
                    parse_mailbox(field, v).map(|_| ())
                } else {
                    parse_mailboxes(field, v).map(|_| ())
                };
                if let Err(e) = parsed {
                    r.error(field, e.message());
                }
            }
        }
        r.finish()?;
        Ok(SmtpConfig {
            host: host.unwrap_or_default(),
            port: port.unwrap_or_default(),
            user,
            password,
            skip_tls_verify,
            tls_mode,
            mail,
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// What the transport does about TLS.
    pub(crate) fn security(&self) -> Security {
        match self.tls_mode {
            TlsMode::Tls => Security::Implicit,
            TlsMode::StartTls => Security::RequiredStartTls,
            TlsMode::None => Security::Plain,
            TlsMode::Auto if self.port == 465 => Security::Implicit,
            TlsMode::Auto if self.user.is_some() && !is_loopback(&self.host) => {
                Security::RequiredStartTls
            }
            TlsMode::Auto => Security::OpportunisticStartTls,
        }
    }

    /// The mail fields for one call: each request metadata entry that is set and not empty
    /// replaces the component's value for this call only.
    pub(crate) fn merge(
        &self,
        request: &HashMap<String, String>,
    ) -> Result<MailFields, BindingError> {
        let get = |key: &str| {
            request
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.trim().is_empty())
                .map(|(_, v)| v.clone())
        };
        let mut merged = self.mail.clone();
        if let Some(v) = get(EMAIL_FROM) {
            merged.from = Some(v);
        }
        if let Some(v) = get(EMAIL_TO) {
            merged.to = Some(v);
        }
        if let Some(v) = get(EMAIL_CC) {
            merged.cc = Some(v);
        }
        if let Some(v) = get(EMAIL_BCC) {
            merged.bcc = Some(v);
        }
        if let Some(v) = get(SUBJECT) {
            merged.subject = Some(v);
        }
        if let Some(v) = get(PRIORITY) {
            merged.priority = parse_priority(&v).map_err(BindingError::invalid_request)?;
        }
        Ok(merged)
    }
}

/// `host` is `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || IpAddr::from_str(h).is_ok_and(|ip| ip.is_loopback())
}

/// A priority from 1 (highest) to 5 (lowest).
pub(crate) fn parse_priority(v: &str) -> Result<u8, String> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| format!("smtp binding error: invalid priority {v:?}: not an integer"))?;
    if !(i64::from(HIGHEST_PRIORITY)..=i64::from(LOWEST_PRIORITY)).contains(&n) {
        return Err(format!(
            "smtp binding error: priority value must be between {HIGHEST_PRIORITY} (highest) and {LOWEST_PRIORITY} (lowest)"
        ));
    }
    // In 1..=5 by the check above.
    Ok(n as u8)
}

/// One address (`a@example.com` or `Name <a@example.com>`).
pub(crate) fn parse_mailbox(field: &str, value: &str) -> Result<Mailbox, BindingError> {
    let v = value.trim();
    Mailbox::from_str(v).map_err(|e| {
        BindingError::invalid_request(format!(
            "smtp binding error: invalid address {v:?} in {field}: {e}"
        ))
    })
}

/// A `;`-separated list of addresses; blanks between separators are skipped.
pub(crate) fn parse_mailboxes(field: &str, value: &str) -> Result<Vec<Mailbox>, BindingError> {
    let list: Vec<Mailbox> = value
        .split(SEPARATOR)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_mailbox(field, s))
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(BindingError::invalid_request(format!(
            "smtp binding error: {field} holds no address"
        )));
    }
    Ok(list)
}
