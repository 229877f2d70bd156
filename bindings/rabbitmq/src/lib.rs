//! `bindings.rabbitmq`: an input and output binding for one RabbitMQ (AMQP 0-9-1) queue.
//!
//! Component metadata:
//!
//! | name | default | |
//! |---|---|---|
//! | `host` | required | AMQP URL, `amqp://user:password@host:5672/vhost` or `amqps://…`; a credential: never logged |
//! | `queueName` | required | the queue; declared by each side at start (at most 255 bytes) |
//! | `durable` | `false` | the queue survives a broker restart |
//! | `deleteWhenUnused` | `false` | the queue is deleted once its last consumer leaves |
//! | `exclusive` | `false` | the queue belongs to this component's connection |
//! | `prefetchCount` | `0` | how many unacknowledged messages the consumer holds; `0`: bindery's window of 100 |
//! | `maxPriority` | | the queue's `x-max-priority` (values above 255 are capped) |
//! | `ttlInSeconds`, `ttl` | | the queue's `x-message-ttl`: whole seconds, or a Go duration for `ttl` |
//! | `reconnectWaitInSeconds` | `5` | the pause between reconnect attempts (seconds or a Go duration) |
//! | `caCert` | | PEM: trusted roots for `amqps://` (added to the system roots) |
//! | `clientCert`, `clientKey` | | PEM: client certificate and key for `amqps://`; set both or neither |
//! | `externalSasl` (alias `saslExternal`) | `false` | authenticate with SASL EXTERNAL (the client certificate) |
//! | `contentType` | `text/plain` | the content type of published messages |
//! | `backOffInitialInterval` | `500ms` | bindery: the first pause before a message the app failed is handed back |
//! | `backOffMaxInterval` | `60s` | bindery: the longest such pause |
//!
//! Operation `create` publishes the request data to the default exchange with the queue name as
//! routing key, persistent, with publisher confirms: the call returns once the broker took the
//! message. Every request metadata entry is sent as an AMQP header; `ttlInSeconds` / `ttl` set the
//! message expiration, `priority` its priority (0–255), and `contentType`, `messageID`,
//! `correlationID`, `type` the matching AMQP properties.
//!
//! The input consumes the queue with manual acknowledgements. Each event carries the message
//! headers that have string values (keys URL-query-escaped, as Dapr does) and, when the message
//! has them, `messageID`, `correlationID` and `contentType`.
//!
//! Delivery guarantees (at least once):
//!
//! * a message is acknowledged only after the app accepted it (or explicitly dropped it, or a
//!   dead-letter target took it);
//! * a message the app failed is held for a backoff (the app's `Retry-After` when it gave one,
//!   else growing from `backOffInitialInterval` to `backOffMaxInterval` across redeliveries) and
//!   then nacked with requeue: no hot loop, unlike daprd, which requeues at once;
//! * up to the window (`prefetchCount`) messages are delivered concurrently, so a message the
//!   app always fails occupies one slot and never stops the others (order is not kept);
//! * after a lost connection the consumer reconnects by itself every `reconnectWaitInSeconds`;
//!   the broker redelivers what was not acknowledged. Health is not ready meanwhile;
//! * on shutdown the consumer is cancelled, deliveries under way finish, and everything not
//!   acknowledged goes back to the queue.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_rabbitmq::register(&mut registry);
//! let factory = registry.get("bindings.rabbitmq").unwrap();
//! let md = bindery_core::Metadata::from_pairs([
//!     ("host", "amqp://guest:guest@localhost:5672"),
//!     ("queueName", "orders"),
//! ]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("host"));
//! ```

mod config;
mod input;
mod link;
mod output;

use std::sync::Arc;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, CancellationToken, ComponentContext, Direction,
    InputBinding, Metadata, MetadataField, OutputBinding, Registry, async_trait,
};

pub use input::{CONTENT_TYPE_KEY, CORRELATION_ID_KEY, MESSAGE_ID_KEY};

use crate::config::RabbitConfig;
use crate::input::{FailureMemory, RabbitInput};
use crate::link::Links;
use crate::output::RabbitOutput;

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "host",
        "AMQP URL, e.g. amqp://user:password@host:5672/vhost (amqps:// for TLS)",
    )
    .sensitive(),
    MetadataField::required("queueName", "the queue to publish to and consume from"),
    MetadataField::optional("durable", "the queue survives a broker restart").default("false"),
    MetadataField::optional(
        "deleteWhenUnused",
        "the queue is deleted when its last consumer leaves",
    )
    .default("false"),
    MetadataField::optional(
        "exclusive",
        "the queue belongs to this component's connection",
    )
    .default("false"),
    MetadataField::optional(
        "prefetchCount",
        "unacknowledged messages the consumer holds (0: bindery's window of 100)",
    )
    .default("0"),
    MetadataField::optional("maxPriority", "the queue's x-max-priority"),
    MetadataField::optional("ttlInSeconds", "the queue's x-message-ttl, in seconds")
        .aliases(&["ttl"]),
    MetadataField::optional(
        "reconnectWaitInSeconds",
        "pause between reconnect attempts (seconds or a duration)",
    )
    .default("5"),
    MetadataField::optional("caCert", "PEM: trusted root certificates for amqps://"),
    MetadataField::optional("clientCert", "PEM: client certificate for amqps://"),
    MetadataField::optional("clientKey", "PEM: client private key for amqps://").sensitive(),
    MetadataField::optional("externalSasl", "authenticate with SASL EXTERNAL")
        .aliases(&["saslExternal"])
        .default("false"),
    MetadataField::optional("contentType", "content type of published messages")
        .default("text/plain"),
    MetadataField::optional(
        "backOffInitialInterval",
        "first pause before a failed message is handed back",
    )
    .default("500ms"),
    MetadataField::optional(
        "backOffMaxInterval",
        "longest pause before a failed message is handed back",
    )
    .default("60s"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.rabbitmq",
    aliases: &[],
    direction: Direction::Both,
    operations: &["create"],
    metadata: METADATA,
    summary: "Publishes to and consumes from a RabbitMQ queue",
};

/// Add `bindings.rabbitmq` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(RabbitFactory::default());
}

/// Builds `bindings.rabbitmq` bindings. The input and output of one component share one
/// connection.
#[derive(Default)]
pub struct RabbitFactory {
    links: Links,
}

impl std::fmt::Debug for RabbitFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RabbitFactory")
    }
}

impl RabbitFactory {
    fn link(&self, ctx: &ComponentContext) -> Result<Arc<link::Link>, BindingError> {
        let config = RabbitConfig::parse(&ctx.metadata).map_err(join_errors)?;
        if !config.tls() && (config.ca_cert.is_some() || config.client_cert.is_some()) {
            tracing::warn!(binding = %ctx.name, "caCert/clientCert are set but host is not amqps://; the connection is not encrypted and they are unused");
        }
        Ok(self.links.get(&ctx.name, &ctx.metadata, Arc::new(config)))
    }
}

#[async_trait]
impl BindingFactory for RabbitFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        RabbitConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let link = self.link(ctx)?;
        let out = RabbitOutput::connect(link, ctx.health.clone()).await?;
        Ok(Box::new(out))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        // Connecting happens in `read`, so a broker that is down is retried in the background.
        let link = self.link(ctx)?;
        Ok(Box::new(RabbitInput {
            link,
            health: ctx.health.clone(),
            closed: CancellationToken::new(),
            failures: Arc::new(FailureMemory::default()),
        }))
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
