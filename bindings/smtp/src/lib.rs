//! `bindings.smtp`: an output binding that sends email through an SMTP server (on `lettre`).
//!
//! Component metadata:
//!
//! | name | default | |
//! |---|---|---|
//! | `host` | required | the SMTP server |
//! | `port` | required | its port |
//! | `user`, `password` | | credentials, both or neither; `password` is never logged |
//! | `skipTLSVerify` | `false` | accept any server certificate (testing only) |
//! | `emailFrom` | | the sender, `a@example.com` or `Name <a@example.com>` |
//! | `emailTo`, `emailCC`, `emailBCC` | | recipients, separated by `;` |
//! | `subject` | | the subject |
//! | `priority` | `3` | `X-Priority`, 1 (highest) to 5 (lowest) |
//! | `tlsMode` | `auto` | bindery: `auto`, `starttls`, `tls` or `none` (see below) |
//!
//! Operation `create` sends the request data as the `text/html` body (a JSON string is
//! unquoted first, so the HTTP API's `"data": "<b>hi</b>"` sends `<b>hi</b>`). Request metadata
//! `emailFrom`, `emailTo`, `emailCC`, `emailBCC`, `subject` and `priority` replace the component's
//! values **for that call only**; Dapr's overrides stick to the component for later calls, this
//! binding's do not. A call without a sender, a recipient or a subject fails with
//! `smtp binding error: <field> property not supplied in configuration- or request-metadata`.
//! `Bcc` recipients get the message, but no `Bcc` header is sent. The answer is empty (HTTP 204).
//!
//! TLS, with `tlsMode: auto` (the default, Dapr's behaviour):
//!
//! * port 465: implicit TLS (SMTPS) from the first byte;
//! * any other port: `STARTTLS` when the server offers it, plain text when it does not;
//! * but with `user`/`password` and a server that is not on a loopback address, `STARTTLS` is
//!   required, so credentials never cross the network in plain text (Go's SMTP client refuses
//!   that too).
//!
//! `tlsMode: starttls` always requires `STARTTLS`, `tls` uses implicit TLS on any port, `none`
//! never encrypts. Certificates are checked against the Mozilla roots (`webpki-roots`) unless
//! `skipTLSVerify` is set. With credentials, bindery authenticates with `PLAIN` or `LOGIN`,
//! whichever the server offers.
//!
//! Connections are pooled and reused between calls. The binding does not connect when it
//! starts (neither does Dapr's); a server that is down makes the call fail with an `unavailable`
//! error naming `host:port`, and the component reports itself disconnected until a send
//! succeeds.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_smtp::register(&mut registry);
//! let factory = registry.get("bindings.smtp").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("host", "mail.example.com"), ("port", "587")]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("password"));
//! ```

mod config;
mod mailer;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, Metadata,
    MetadataField, OutputBinding, Registry, async_trait,
};

pub use config::{Security, TlsMode};

use crate::config::SmtpConfig;
use crate::mailer::Mailer;

const OPERATIONS: &[&str] = &["create"];

static METADATA: &[MetadataField] = &[
    MetadataField::required("host", "the SMTP server's host name or address"),
    MetadataField::required("port", "the SMTP server's port"),
    MetadataField::optional("user", "user name for authentication; set with password"),
    MetadataField::optional("password", "password for authentication; set with user").sensitive(),
    MetadataField::optional(
        "skipTLSVerify",
        "accept any server certificate (testing only)",
    )
    .default("false"),
    MetadataField::optional("emailFrom", "the sender address"),
    MetadataField::optional("emailTo", "recipients, separated by ;"),
    MetadataField::optional("emailCC", "carbon-copy recipients, separated by ;"),
    MetadataField::optional("emailBCC", "blind-copy recipients, separated by ;"),
    MetadataField::optional("subject", "the subject"),
    MetadataField::optional("priority", "X-Priority, 1 (highest) to 5 (lowest)").default("3"),
    MetadataField::optional(
        "tlsMode",
        "bindery: auto (implicit TLS on 465, else STARTTLS when offered), starttls, tls or none",
    )
    .default("auto"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.smtp",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Sends email through an SMTP server",
};

/// Add `bindings.smtp` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(SmtpFactory);
}

/// Builds `bindings.smtp` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpFactory;

impl SmtpFactory {
    /// How the transport built from `metadata` secures its connection (no I/O). Useful to check
    /// a component's TLS behaviour without a server.
    ///
    /// ```
    /// use bindery_binding_smtp::{Security, SmtpFactory};
    /// use bindery_core::Metadata;
    /// let md = Metadata::from_pairs([("host", "smtp.example.com"), ("port", "465")]);
    /// assert_eq!(SmtpFactory::security(&md).unwrap(), Security::Implicit);
    /// ```
    pub fn security(metadata: &Metadata) -> Result<Security, Vec<BindingError>> {
        SmtpConfig::parse(metadata).map(|c| c.security())
    }
}

#[async_trait]
impl BindingFactory for SmtpFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        SmtpConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = SmtpConfig::parse(&ctx.metadata).map_err(join_errors)?;
        if config.skip_tls_verify {
            tracing::warn!(binding = %ctx.name, "skipTLSVerify is set: the SMTP server's certificate is not checked; do not use this in production");
        }
        if config.user.is_none() {
            tracing::debug!(binding = %ctx.name, "no user and password: sending without authentication");
        }
        let mailer = Mailer::new(&ctx.name, config, ctx.health.clone())?;
        Ok(Box::new(mailer))
    }
}

/// Fold configuration problems into one error for the build phase.
fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors
        .first()
        .and_then(|e| e.field())
        .unwrap_or("host")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

#[cfg(test)]
mod tests;
