//! The running binding: builds one message per call and sends it over a pooled transport.

use std::sync::Mutex;
use std::time::Duration;

use bindery_core::util::unquote_json_string;
use bindery_core::{
    BindingError, BindingHealth, InvokeRequest, InvokeResponse, OutputBinding, async_trait,
};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::debug;

use crate::OPERATIONS;
use crate::config::{
    EMAIL_BCC, EMAIL_CC, EMAIL_FROM, EMAIL_TO, MailFields, Security, SmtpConfig, parse_mailbox,
    parse_mailboxes,
};

/// How long one SMTP command may take before the call fails with a timeout.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The `X-Priority` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XPriority(pub(crate) u8);

impl Header for XPriority {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Priority")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XPriority(s.trim().parse()?))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.to_string())
    }
}

/// A running `bindings.smtp` component.
pub(crate) struct Mailer {
    name: String,
    config: SmtpConfig,
    /// `None` once closed.
    transport: Mutex<Option<AsyncSmtpTransport<Tokio1Executor>>>,
    health: BindingHealth,
}

impl Mailer {
    pub(crate) fn new(
        name: &str,
        config: SmtpConfig,
        health: BindingHealth,
    ) -> Result<Self, BindingError> {
        let transport = transport(&config)?;
        // Nothing is dialled until the first call, as in Dapr; the configuration is valid.
        health.connected();
        Ok(Mailer {
            name: name.to_owned(),
            config,
            transport: Mutex::new(Some(transport)),
            health,
        })
    }

    async fn send(&self, req: InvokeRequest) -> Result<(), BindingError> {
        let fields = self.config.merge(&req.metadata)?;
        let message = build_message(&fields, &req.data)?;
        let transport = self
            .transport
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(BindingError::closed)?;
        match transport.send(message).await {
            Ok(response) => {
                self.health.connected();
                debug!(binding = %self.name, code = %response.code(), "smtp binding: sent email successfully");
                Ok(())
            }
            Err(e) => {
                let err = map_send_error(&self.config.address(), &e);
                if err.is_retryable() {
                    self.health.disconnected(err.to_string());
                }
                Err(err)
            }
        }
    }
}

#[async_trait]
impl OutputBinding for Mailer {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        match req.operation.as_str() {
            "create" => self.send(req).await.map(|()| None),
            other => Err(BindingError::unsupported(format!(
                "unsupported operation {other}"
            ))),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        // Dropping the transport closes its pooled connections.
        self.transport
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Ok(())
    }
}

/// The pooled transport for `config`.
pub(crate) fn transport(
    config: &SmtpConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, BindingError> {
    let tls_parameters = || {
        TlsParameters::builder(config.host.clone())
            .dangerous_accept_invalid_certs(config.skip_tls_verify)
            .dangerous_accept_invalid_hostnames(config.skip_tls_verify)
            .build_rustls()
            .map_err(|e| {
                BindingError::config(
                    "skipTLSVerify",
                    format!("smtp binding error: cannot set up TLS: {e}"),
                )
            })
    };
    let tls = match config.security() {
        Security::Implicit => Tls::Wrapper(tls_parameters()?),
        Security::RequiredStartTls => Tls::Required(tls_parameters()?),
        Security::OpportunisticStartTls => Tls::Opportunistic(tls_parameters()?),
        Security::Plain => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
        .port(config.port)
        .timeout(Some(COMMAND_TIMEOUT))
        .tls(tls);
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        builder = builder
            .credentials(Credentials::new(user.clone(), password.clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// The message for one call: checked fields, `text/html` body, `X-Priority`.
pub(crate) fn build_message(fields: &MailFields, data: &[u8]) -> Result<Message, BindingError> {
    let missing = |field: &str| {
        BindingError::invalid_request(format!(
            "smtp binding error: {field} property not supplied in configuration- or request-metadata"
        ))
    };
    let from = fields.from.as_deref().ok_or_else(|| missing(EMAIL_FROM))?;
    let to = fields.to.as_deref().ok_or_else(|| missing(EMAIL_TO))?;
    let subject = fields
        .subject
        .as_deref()
        .ok_or_else(|| missing("subject"))?;
    let mut builder = Message::builder().from(parse_mailbox(EMAIL_FROM, from)?);
    for m in parse_mailboxes(EMAIL_TO, to)? {
        builder = builder.to(m);
    }
    if let Some(cc) = &fields.cc {
        for m in parse_mailboxes(EMAIL_CC, cc)? {
            builder = builder.cc(m);
        }
    }
    if let Some(bcc) = &fields.bcc {
        // Recipients of the envelope only: lettre drops the Bcc header from what is sent.
        for m in parse_mailboxes(EMAIL_BCC, bcc)? {
            builder = builder.bcc(m);
        }
    }
    let body = unquote_json_string(data).into_owned();
    let body = match String::from_utf8(body) {
        Ok(text) => lettre::message::Body::new(text),
        Err(e) => lettre::message::Body::new(e.into_bytes()),
    };
    builder
        .subject(subject)
        .header(XPriority(fields.priority))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_HTML)
        .body(body)
        .map_err(|e| {
            BindingError::invalid_request(format!("smtp binding error: invalid email: {e}"))
        })
}

/// Whether a rustls error (a certificate or handshake failure) is somewhere in `e`'s causes:
/// lettre reports a failed implicit-TLS handshake as a connection error.
fn caused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Map a send failure to the error kind the runtime acts on, naming the server; the server's
/// own code and text are kept.
pub(crate) fn map_send_error(address: &str, e: &lettre::transport::smtp::Error) -> BindingError {
    let detail = e.to_string();
    let prefix = "smtp binding error: sending email failed";
    if e.is_permanent() || e.is_response() {
        BindingError::rejected(format!(
            "{prefix}: the SMTP server at {address} refused it: {detail}"
        ))
    } else if e.is_transient() {
        // 4xx: "try again later" (greylisting, a full queue); nothing was accepted.
        BindingError::unavailable(format!(
            "{prefix}: the SMTP server at {address} asked to retry later: {detail}"
        ))
    } else if e.is_timeout() {
        BindingError::timeout(format!(
            "{prefix}: the SMTP server at {address} did not answer in time: {detail}"
        ))
    } else if e.is_tls() || caused_by_tls(e) {
        BindingError::rejected(format!(
            "{prefix}: TLS with the SMTP server at {address} failed: {detail}"
        ))
    } else if e.is_client() {
        BindingError::rejected(format!(
            "{prefix}: talking to the SMTP server at {address}: {detail}"
        ))
    } else {
        BindingError::unavailable(format!(
            "{prefix}: the SMTP server at {address} is unavailable: {detail}"
        ))
    }
}
