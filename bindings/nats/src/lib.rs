//! `bindings.nats`: publish to and read from NATS, on core NATS or JetStream.
//!
//! Dapr has no NATS binding; this one follows the style of Dapr's NATS JetStream pub/sub
//! component (`natsURL`, `streamName`, `durableName`, `queueGroupName`, `deliverPolicy`,
//! `ackWait`, `maxDeliver`, `maxAckPending`). See `docs/bindings/nats.md` for the full page.
//!
//! Component metadata:
//!
//! | name | default | |
//! |---|---|---|
//! | `natsURL` | required | comma-separated servers, e.g. `nats://127.0.0.1:4222`; `tls://` for TLS |
//! | `subject` | | what the input side subscribes to (wildcards allowed); also where `create` publishes when `publishSubject` is unset and it has no wildcard |
//! | `publishSubject` | `subject` | where `create` publishes unless request metadata `subject` says otherwise |
//! | `queueGroupName` | | core NATS queue group: replicas share the messages |
//! | `jetStream` | `false` | use JetStream: durable pull consumer (input), publish awaiting the stream's ack (output) |
//! | `streamName` | by subject | the JetStream stream; looked up by `subject` when unset |
//! | `durableName` | `<app id>-<component>` | the durable consumer every replica shares |
//! | `deliverPolicy` | `all` | `all`, `new`, `last`, `lastPerSubject`, `sequence` (with `startSequence`) |
//! | `startSequence` | | first stream sequence to deliver |
//! | `ackWait` | `30s` | how long JetStream waits for an ack before redelivering |
//! | `maxDeliver` | `-1` | deliveries per message before JetStream gives up; `-1` unlimited |
//! | `maxAckPending` | `1000` | unacknowledged messages in flight per consumer; `-1` unlimited |
//! | `concurrency` | `1` | deliveries to the app at once (`1` keeps order) |
//! | `backOffInitialInterval`, `backOffMaxInterval` | `500ms`, `60s` | redelivery backoff after the app fails a message |
//! | `user` + `password`, `token`, `nkeySeed` (+ `jwt`), `credsFile` | | authentication (one method) |
//! | `enableTLS`, `tlsFirst`, `tlsCACert`, `tlsClientCert`, `tlsClientKey` | | TLS (PEM files) |
//! | `name` | `bindery <component>` | connection name |
//! | `connectTimeout`, `requestTimeout`, `pingInterval`, `reconnectWait` | `5s`, `10s`, `60s`, `2s` | connection timing |
//!
//! Output: `create` publishes `data` to the subject. Request metadata `subject` overrides it,
//! `msgID` (or `Nats-Msg-Id`) sets the de-duplication id, and every other entry becomes a NATS
//! header. With JetStream the call returns once the stream stored the message, with response
//! metadata `stream`, `sequence` and `duplicate`.
//!
//! Input: each message is delivered with metadata `subject`, `reply` (core, when set), every
//! header, and for JetStream `stream`, `sequence`, `numDelivered` and `timestamp`.
//!
//! Delivery guarantees:
//!
//! * JetStream: at least once. A message is acknowledged only after the app accepted it; a
//!   failure is handed back (`nak`) with a backoff delay, so other messages keep flowing; a long
//!   delivery sends `in progress` so the server waits; a crashed bindery's messages come back
//!   after `ackWait`. Replicas with the same `durableName` share the work.
//! * Core NATS: at most once, as NATS itself. The server cannot redeliver, so bindery retries
//!   a failed message in process with backoff until the app accepts it or bindery stops; what
//!   is not accepted by then, or what was published while bindery was down, is lost.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_nats::register(&mut registry);
//! let factory = registry.get("bindings.nats").unwrap();
//! let md = bindery_core::Metadata::from_pairs([
//!     ("natsURL", "nats://127.0.0.1:4222"),
//!     ("subject", "orders.*"),
//!     ("publishSubject", "orders.new"),
//! ]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("password"));
//! ```

mod config;
mod connect;
mod input;
mod output;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, CancellationToken, ComponentContext, Direction,
    InputBinding, Metadata, MetadataField, OutputBinding, Registry, async_trait,
};

pub use crate::input::{NUM_DELIVERED, REPLY, SEQUENCE, STREAM, SUBJECT, TIMESTAMP};
pub use crate::output::{DUPLICATE, MSG_ID, NATS_MSG_ID};

use crate::config::NatsConfig;

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "natsURL",
        "comma-separated NATS server URLs (nats://host:4222, tls://host:4222)",
    ),
    MetadataField::optional(
        "subject",
        "subject the input side subscribes to (wildcards allowed); default publish subject",
    ),
    MetadataField::optional(
        "publishSubject",
        "subject create publishes to (default: subject); request metadata subject overrides",
    ),
    MetadataField::optional(
        "queueGroupName",
        "core NATS queue group shared by the replicas",
    ),
    MetadataField::optional("jetStream", "use JetStream (at-least-once)").default("false"),
    MetadataField::optional(
        "streamName",
        "JetStream stream (default: the stream capturing subject)",
    ),
    MetadataField::optional(
        "durableName",
        "durable JetStream consumer shared by the replicas (default: <app id>-<component>)",
    ),
    MetadataField::optional(
        "deliverPolicy",
        "all, new, last, lastPerSubject or sequence",
    )
    .default("all"),
    MetadataField::optional(
        "startSequence",
        "first stream sequence (deliverPolicy sequence)",
    ),
    MetadataField::optional(
        "ackWait",
        "JetStream redelivery timeout for unacknowledged messages",
    )
    .default("30s"),
    MetadataField::optional(
        "maxDeliver",
        "JetStream deliveries per message; -1 unlimited",
    )
    .default("-1"),
    MetadataField::optional(
        "maxAckPending",
        "unacknowledged messages in flight; -1 unlimited",
    )
    .default("1000"),
    MetadataField::optional("concurrency", "deliveries to the app at once").default("1"),
    MetadataField::optional(
        "backOffInitialInterval",
        "first redelivery delay after the app fails a message",
    )
    .default("500ms"),
    MetadataField::optional("backOffMaxInterval", "longest redelivery delay").default("60s"),
    MetadataField::optional("user", "user name (with password)"),
    MetadataField::optional("password", "password (with user)").sensitive(),
    MetadataField::optional("token", "authentication token").sensitive(),
    MetadataField::optional("nkeySeed", "NKey seed (alone, or with jwt)")
        .aliases(&["seedKey"])
        .sensitive(),
    MetadataField::optional("jwt", "user JWT (with nkeySeed)").sensitive(),
    MetadataField::optional("credsFile", "path to a .creds file (JWT and seed)"),
    MetadataField::optional("enableTLS", "require TLS").default("false"),
    MetadataField::optional("tlsFirst", "start TLS before the NATS handshake").default("false"),
    MetadataField::optional("tlsCACert", "PEM file of root certificates to trust"),
    MetadataField::optional(
        "tlsClientCert",
        "PEM file of the client certificate (mutual TLS)",
    )
    .aliases(&["tls_client_cert"]),
    MetadataField::optional("tlsClientKey", "PEM file of the client key (mutual TLS)")
        .aliases(&["tls_client_key"]),
    MetadataField::optional("name", "connection name shown by the server"),
    MetadataField::optional("connectTimeout", "limit for one connection attempt").default("5s"),
    MetadataField::optional(
        "requestTimeout",
        "limit for JetStream requests, publish acks and flushes",
    )
    .default("10s"),
    MetadataField::optional("pingInterval", "keep-alive ping period").default("60s"),
    MetadataField::optional("reconnectWait", "longest wait between reconnect attempts")
        .default("2s"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.nats",
    aliases: &[],
    direction: Direction::Both,
    operations: output::OPERATIONS,
    metadata: METADATA,
    summary: "Publishes to and subscribes to NATS subjects, on core NATS or JetStream",
};

/// Add `bindings.nats` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(NatsFactory);
}

/// Builds `bindings.nats` input and output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatsFactory;

#[async_trait]
impl BindingFactory for NatsFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        NatsConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = NatsConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let client = connect::connect(
            &config,
            &ctx.name,
            &ctx.health,
            Arc::new(AtomicBool::new(true)),
        )
        .await?;
        ctx.health.connected();
        let jetstream = config.jetstream.as_ref().map(|_| {
            let mut js = async_nats::jetstream::new(client.clone());
            js.set_timeout(config.request_timeout);
            js
        });
        Ok(Box::new(output::NatsOutput {
            name: ctx.name.clone(),
            servers: config.servers_display(),
            client,
            jetstream,
            default_subject: config.publish_subject.clone(),
            request_timeout: config.request_timeout,
            closed: AtomicBool::new(false),
        }))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        // Connecting happens in `read`, so a NATS that is down is retried in the background.
        let config = NatsConfig::parse(&ctx.metadata).map_err(join_errors)?;
        Ok(Box::new(input::NatsInput {
            name: ctx.name.clone(),
            app_id: ctx.app_id.clone(),
            config: Arc::new(config),
            health: ctx.health.clone(),
            closed: CancellationToken::new(),
            ready: Arc::new(AtomicBool::new(false)),
            consumer: std::sync::Mutex::new(None),
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
        .unwrap_or("natsURL")
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
