//! `bindings.mqtt3` (alias `bindings.mqtt`): an input and output binding for MQTT 3.1.1 topics.
//!
//! Component metadata:
//!
//! | name | default | |
//! |---|---|---|
//! | `url` | required | `tcp://` or `mqtt://` (plain, port 1883), `ssl://`, `mqtts://`, `tcps://`, `tls://` (TLS, port 8883); `user:password@` in the URL is used to log in. A credential: never logged |
//! | `topic` | required | the topic to subscribe to (wildcards and `$share/<group>/<filter>` allowed) and the default topic to publish to |
//! | `consumerID` | required | client id prefix: the producer connects as `<consumerID>-producer`, the consumer as `<consumerID>-consumer`; `{uuid}` makes it unique |
//! | `retain` | `false` | publish with the retain flag |
//! | `cleanSession` | `false` | start a fresh session on every connection (unacknowledged messages are then lost) |
//! | `caCert` | | PEM: the only trusted root for TLS (the system's roots otherwise) |
//! | `clientCert`, `clientKey` | | PEM: client certificate and key for TLS; set both or neither |
//! | `backOffMaxRetries` | unset: forever | how often a message the app failed is redelivered in-process; `-1` forever |
//! | `backOffInitialInterval` | `500ms` | bindery: first pause before redelivering a failed message |
//! | `backOffMaxInterval` | `60s` | bindery: longest such pause |
//! | `qos` | | deprecated and ignored: QoS is always 1 |
//!
//! Operation `create` publishes the request data with QoS 1 (and the `retain` flag) to the
//! request metadata `topic`, or the component's topic, and returns once the broker's PUBACK
//! came. The input subscribes with QoS 1; each event carries the metadata `topic`, the topic the
//! message was published to.
//!
//! Delivery guarantees (at least once):
//!
//! * a message is acknowledged (PUBACK) only once the app accepted it;
//! * a message the app failed is redelivered in-process with a growing backoff (the app's
//!   `Retry-After` when given) until accepted or shutdown — daprd stops after
//!   `backOffMaxRetries` (default 0) and leaves it unacknowledged; bindery does the same only
//!   when `backOffMaxRetries` is set;
//! * messages are delivered concurrently (up to 100 at a time, the rest wait in arrival order),
//!   so a message the app keeps failing does not stop the others;
//! * with `cleanSession: false` the session is persistent: after a crash, a lost connection or
//!   a restart the broker sends every unacknowledged message again to the same client id;
//! * the consumer reconnects by itself, health is not ready meanwhile.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_mqtt::register(&mut registry);
//! let factory = registry.get("bindings.mqtt").unwrap();
//! assert_eq!(factory.spec().type_name, "bindings.mqtt3");
//! let md = bindery_core::Metadata::from_pairs([
//!     ("url", "tcp://localhost:1883"),
//!     ("topic", "sensors/+/temperature"),
//!     ("consumerID", "app-1"),
//! ]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("url"));
//! ```

mod client;
mod config;
mod input;
mod output;

use std::sync::Arc;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, CancellationToken, ComponentContext, Direction,
    InputBinding, Metadata, MetadataField, OutputBinding, Registry, async_trait,
};
use tracing::warn;

pub use input::TOPIC_KEY;

use crate::config::MqttConfig;
use crate::input::MqttInput;
use crate::output::MqttOutput;

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "url",
        "broker URL: tcp://, mqtt://, ssl://, mqtts://; user:password@ logs in",
    )
    .sensitive(),
    MetadataField::required(
        "topic",
        "topic filter to subscribe to; default topic to publish to",
    ),
    MetadataField::required(
        "consumerID",
        "client id prefix (-producer / -consumer are appended)",
    ),
    MetadataField::optional("retain", "publish with the retain flag").default("false"),
    MetadataField::optional("cleanSession", "start a fresh session on every connection")
        .default("false"),
    MetadataField::optional("caCert", "PEM: the only trusted root certificate for TLS"),
    MetadataField::optional("clientCert", "PEM: client certificate for TLS"),
    MetadataField::optional("clientKey", "PEM: client private key for TLS").sensitive(),
    MetadataField::optional(
        "backOffMaxRetries",
        "redeliveries of a failed message (unset or -1: until accepted)",
    ),
    MetadataField::optional(
        "backOffInitialInterval",
        "first pause before redelivering a failed message",
    )
    .default("500ms"),
    MetadataField::optional(
        "backOffMaxInterval",
        "longest pause before redelivering a failed message",
    )
    .default("60s"),
    MetadataField::optional("qos", "deprecated and ignored: QoS is always 1"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.mqtt3",
    aliases: &["bindings.mqtt"],
    direction: Direction::Both,
    operations: &["create"],
    metadata: METADATA,
    summary: "Publishes to and subscribes to MQTT 3.1.1 topics with QoS 1",
};

/// Add `bindings.mqtt3` (and its alias `bindings.mqtt`) to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(MqttFactory);
}

/// Builds `bindings.mqtt3` bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct MqttFactory;

fn parse(ctx: &ComponentContext) -> Result<Arc<MqttConfig>, BindingError> {
    let config = MqttConfig::parse(&ctx.metadata).map_err(join_errors)?;
    if config.qos_set {
        warn!(binding = %ctx.name, "metadata property 'qos' has been deprecated and is ignored; qos is set to 1");
    }
    if !config.broker.tls && (config.ca_cert.is_some() || config.client_cert.is_some()) {
        warn!(binding = %ctx.name, "caCert/clientCert are set but url is not ssl:// or mqtts://; the connection is not encrypted and they are unused");
    }
    Ok(Arc::new(config))
}

#[async_trait]
impl BindingFactory for MqttFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        MqttConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = parse(ctx)?;
        let out = MqttOutput::connect(&ctx.name, config, ctx.health.clone()).await?;
        Ok(Box::new(out))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        // Connecting happens in `read`, so a broker that is down is retried in the background.
        let config = parse(ctx)?;
        // Fail here, not in `read`, when the TLS material is unusable.
        client::options(&config, config.consumer_id(), true)?;
        Ok(Box::new(MqttInput {
            name: ctx.name.clone(),
            config,
            health: ctx.health.clone(),
            closed: CancellationToken::new(),
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
        .unwrap_or("url")
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
