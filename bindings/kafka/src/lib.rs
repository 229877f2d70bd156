//! `bindings.kafka`: publish to and consume from Apache Kafka (or any broker speaking its
//! protocol), on librdkafka through `rdkafka`.
//!
//! Component metadata (Dapr's names; every field Dapr's newest `bindings.kafka` reads):
//!
//! | name | default | |
//! |---|---|---|
//! | `brokers` | required | comma-separated `host:port` list |
//! | `topics` | | comma-separated topics the input side reads; empty: the input side logs a warning and reads nothing |
//! | `publishTopic` | | the topic `create` publishes to |
//! | `consumerGroup` (alias `consumerID`) | | the consumer group; required to read `topics` |
//! | `clientID` | `bindery` | the Kafka client id (Dapr's default is Sarama's `sarama`) |
//! | `version` | | accepted and checked for form, otherwise unused: librdkafka negotiates the protocol version with each broker |
//! | `initialOffset` | `newest` | where a group without a committed offset starts: `newest` or `oldest` |
//! | `authType` | required (or `authRequired`) | `none`, `password` (SASL), `mtls`, `certificate`; `oidc`, `oidc_private_key_jwt` and `awsiam` are refused as not supported yet |
//! | `authRequired` | | deprecated: `false` → `none`; `true` → `password` when `saslPassword` is set, else `mtls` |
//! | `saslUsername`, `saslPassword` | | for `password` |
//! | `saslMechanism` | `PLAIN` | `PLAIN`, `SHA-256` (SCRAM-SHA-256), `SHA-512` (SCRAM-SHA-512) |
//! | `caCert` | | PEM of the CA that signs the brokers' certificates |
//! | `clientCert`, `clientKey` | | PEM client certificate and key for `mtls` |
//! | `skipVerify` | `false` | do not verify the brokers' certificates |
//! | `disableTls` | `false` | no TLS; as in Dapr, `authType: none` never uses TLS |
//! | `maxMessageBytes` | librdkafka's 1000000 | the largest message `create` sends |
//! | `consumeRetryEnabled` | `false` | accepted; see "Delivery guarantees" |
//! | `consumeRetryInterval` | `100ms` | backoff after a failed fetch; a plain integer counts milliseconds |
//! | `backOffPolicy` | `constant` | `constant` or `exponential`: the pace of redelivery to the app |
//! | `backOffDuration` | `5s` | the constant delay |
//! | `backOffInitialInterval`, `backOffMaxInterval` | `500ms`, `60s` | the exponential delays (doubling) |
//! | `backOffMaxRetries` | `-1` | after this many failures of one message, log an error (retries go on) |
//! | `heartbeatInterval`, `sessionTimeout` | `3s`, `10s` | consumer group liveness |
//! | `compression` | `none` | `none`, `gzip`, `snappy`, `lz4`, `zstd` |
//! | `producerRequiredAcks` | `all` | `all`, `local` (leader), `none` |
//! | `producerRetryMax` | `5` | producer retries of a failed send |
//! | `dialTimeout`, `readTimeout`, `writeTimeout` | `30s` | connect, consumer request and producer request timeouts; `create` fails after `writeTimeout` |
//! | `escapeHeaders` | `false` | URL-escape (Go's `QueryEscape`) the key and header values in event metadata |
//! | `excludeHeaderMetaRegex` | | request metadata keys matching it are not sent as headers |
//!
//! Also accepted: `consumerFetchMin` (`fetch.min.bytes`), `consumerFetchDefault`
//! (`max.partition.fetch.bytes`), `channelBufferSize` (no effect),
//! `clientConnectionTopicMetadataRefreshInterval` (`8m`), `clientConnectionKeepAliveInterval`
//! (keep-alive is always on), `backOffMultiplier`, `backOffRandomizationFactor`,
//! `backOffMaxElapsedTime` (checked; the delay doubles with ±20 % jitter). The OIDC, AWS and
//! schema registry fields are known (and their secrets redacted), but setting
//! `schemaRegistryURL` or an OIDC/AWS `authType` is refused as not supported yet.
//!
//! Output operation `create`: publishes the request data to `publishTopic`, or to the request
//! metadata `topic` when set. `partitionKey` (or `__key`) is the message key,
//! `partitionNumber` forces the partition, and every request metadata entry (these included)
//! becomes a Kafka header unless its key matches `excludeHeaderMetaRegex`. The call returns
//! (HTTP 204) only once the broker acknowledged the message.
//!
//! Input: a consumer group member on `topics`. Each message is delivered with its value as
//! data and the metadata `__key`, `__topic`, `__partition`, `__offset`, `__timestamp` (Unix
//! ms) plus every header.
//!
//! # Delivery guarantees
//!
//! At least once, in offset order per partition. An offset is committed only once the app
//! accepted every message of its partition up to it. A message the app does not accept is
//! redelivered with the `backOff*` pacing (or the app's `Retry-After`) until it is accepted,
//! for as long as this member owns its partition; meanwhile the partition waits and the other
//! partitions go on. This holds whatever `consumeRetryEnabled` says: with `false`, daprd logs
//! the failure and moves on, and its next commit silently skips the message
//! (dapr/components-contrib#1006); bindery never moves past a message the app has not
//! accepted. A poison message therefore holds its partition until the app accepts or drops it
//! (`{"status":"DROP"}`) or a dead-letter target takes it.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_kafka::register(&mut registry);
//! let factory = registry.get("bindings.kafka").unwrap();
//! let md = bindery_core::Metadata::from_pairs([
//!     ("brokers", "localhost:9092"),
//!     ("topics", "orders"),
//!     ("consumerGroup", "app"),
//!     ("authType", "none"),
//! ]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("saslPassword"));
//! ```

mod config;
mod context;
mod input;
mod output;

use std::sync::Arc;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InputBinding, Metadata,
    MetadataField, OutputBinding, Registry, async_trait,
};

use crate::config::KafkaConfig;

pub use input::{KEY, OFFSET, PARTITION, TIMESTAMP, TOPIC};
pub use output::{PARTITION_KEY, PARTITION_NUMBER, REQUEST_TOPIC};

static METADATA: &[MetadataField] = &[
    MetadataField::required(
        "brokers",
        "comma-separated list of Kafka brokers (host:port)",
    ),
    MetadataField::optional("topics", "comma-separated topics the input side reads"),
    MetadataField::optional("publishTopic", "the topic create publishes to"),
    MetadataField::optional("consumerGroup", "the consumer group of the input side")
        .aliases(&["consumerID"]),
    MetadataField::optional("clientID", "the Kafka client id").default("bindery"),
    MetadataField::optional(
        "version",
        "Kafka version (accepted; librdkafka negotiates the protocol version)",
    ),
    MetadataField::optional(
        "initialOffset",
        "where a group without committed offsets starts: newest or oldest",
    )
    .default("newest"),
    MetadataField::optional(
        "authType",
        "none, password, mtls or certificate (required unless authRequired is set)",
    ),
    MetadataField::optional(
        "authRequired",
        "deprecated: false means authType none; true means password (or mtls without saslPassword)",
    ),
    MetadataField::optional("saslUsername", "SASL user name for authType password"),
    MetadataField::optional("saslPassword", "SASL password for authType password").sensitive(),
    MetadataField::optional("saslMechanism", "PLAIN, SHA-256 or SHA-512").default("PLAIN"),
    MetadataField::optional(
        "caCert",
        "PEM of the CA that signs the brokers' certificates",
    )
    .sensitive(),
    MetadataField::optional("clientCert", "PEM client certificate for mtls").sensitive(),
    MetadataField::optional("clientKey", "PEM client private key for mtls").sensitive(),
    MetadataField::optional("skipVerify", "do not verify the brokers' certificates")
        .default("false"),
    MetadataField::optional("disableTls", "connect without TLS").default("false"),
    MetadataField::optional("maxMessageBytes", "the largest message create sends"),
    MetadataField::optional(
        "consumeRetryEnabled",
        "accepted; bindery always redelivers a message the app did not accept",
    )
    .default("false"),
    MetadataField::optional(
        "consumeRetryInterval",
        "backoff after a failed fetch (plain integer = milliseconds)",
    )
    .default("100ms"),
    MetadataField::optional(
        "backOffPolicy",
        "redelivery pacing: constant or exponential",
    )
    .default("constant"),
    MetadataField::optional("backOffDuration", "constant redelivery delay").default("5s"),
    MetadataField::optional(
        "backOffMaxRetries",
        "failures of one message after which an error is logged (retries go on); -1: never",
    )
    .default("-1"),
    MetadataField::optional(
        "backOffInitialInterval",
        "first exponential redelivery delay",
    )
    .default("500ms"),
    MetadataField::optional("backOffMaxInterval", "longest exponential redelivery delay")
        .default("60s"),
    MetadataField::optional("backOffMultiplier", "accepted; the delay doubles").default("1.5"),
    MetadataField::optional(
        "backOffRandomizationFactor",
        "accepted; the delay varies by ±20 %",
    )
    .default("0.5"),
    MetadataField::optional(
        "backOffMaxElapsedTime",
        "accepted; redelivery goes on until the app accepts",
    )
    .default("15m"),
    MetadataField::optional("heartbeatInterval", "consumer group heartbeat interval").default("3s"),
    MetadataField::optional("sessionTimeout", "consumer group session timeout").default("10s"),
    MetadataField::optional("compression", "none, gzip, snappy, lz4 or zstd").default("none"),
    MetadataField::optional("producerRequiredAcks", "all, local or none").default("all"),
    MetadataField::optional("producerRetryMax", "producer retries of a failed send").default("5"),
    MetadataField::optional("dialTimeout", "connection setup timeout").default("30s"),
    MetadataField::optional("readTimeout", "consumer request timeout").default("30s"),
    MetadataField::optional(
        "writeTimeout",
        "producer request timeout; create fails after it",
    )
    .default("30s"),
    MetadataField::optional(
        "escapeHeaders",
        "URL-escape the key and header values in event metadata",
    )
    .default("false"),
    MetadataField::optional(
        "excludeHeaderMetaRegex",
        "request metadata keys matching this regex are not sent as headers",
    ),
    MetadataField::optional("consumerFetchMin", "fetch.min.bytes of the consumer"),
    MetadataField::optional(
        "consumerFetchDefault",
        "max.partition.fetch.bytes of the consumer",
    ),
    MetadataField::optional("channelBufferSize", "accepted; no effect"),
    MetadataField::optional(
        "clientConnectionTopicMetadataRefreshInterval",
        "how often topic metadata is refreshed",
    )
    .default("8m"),
    MetadataField::optional(
        "clientConnectionKeepAliveInterval",
        "accepted; TCP keep-alive is always on",
    ),
    MetadataField::optional("oidcTokenEndpoint", "OIDC (not supported yet)"),
    MetadataField::optional("oidcClientID", "OIDC (not supported yet)"),
    MetadataField::optional("oidcClientSecret", "OIDC (not supported yet)").sensitive(),
    MetadataField::optional("oidcScopes", "OIDC (not supported yet)"),
    MetadataField::optional("oidcExtensions", "OIDC (not supported yet)"),
    MetadataField::optional("oidcClientAssertionCert", "OIDC (not supported yet)"),
    MetadataField::optional("oidcClientAssertionKey", "OIDC (not supported yet)").sensitive(),
    MetadataField::optional("oidcResource", "OIDC (not supported yet)"),
    MetadataField::optional("oidcAudience", "OIDC (not supported yet)"),
    MetadataField::optional("awsRegion", "AWS IAM (not supported yet)"),
    MetadataField::optional("awsAccessKey", "AWS IAM (not supported yet)").sensitive(),
    MetadataField::optional("awsSecretKey", "AWS IAM (not supported yet)").sensitive(),
    MetadataField::optional("awsSessionToken", "AWS IAM (not supported yet)").sensitive(),
    MetadataField::optional("awsIamRoleArn", "AWS IAM (not supported yet)"),
    MetadataField::optional("awsStsSessionName", "AWS IAM (not supported yet)"),
    MetadataField::optional("schemaRegistryURL", "schema registry (not supported yet)"),
    MetadataField::optional(
        "schemaRegistryAPIKey",
        "schema registry (not supported yet)",
    )
    .sensitive(),
    MetadataField::optional(
        "schemaRegistryAPISecret",
        "schema registry (not supported yet)",
    )
    .sensitive(),
    MetadataField::optional(
        "schemaCachingEnabled",
        "schema registry (not supported yet)",
    ),
    MetadataField::optional(
        "schemaLatestVersionCacheTTL",
        "schema registry (not supported yet)",
    ),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.kafka",
    aliases: &[],
    direction: Direction::Both,
    operations: output::OPERATIONS,
    metadata: METADATA,
    summary: "Publishes to and consumes from Kafka topics, committing only what the app accepted",
};

/// Add `bindings.kafka` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(KafkaFactory);
}

/// Builds `bindings.kafka` input and output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct KafkaFactory;

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
        .unwrap_or("brokers")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

#[async_trait]
impl BindingFactory for KafkaFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        KafkaConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = KafkaConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let output = output::KafkaOutput::connect(&ctx.name, &config, &ctx.health).await?;
        Ok(Box::new(output))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        let config = KafkaConfig::parse(&ctx.metadata).map_err(join_errors)?;
        if config.consume_retry_enabled {
            tracing::debug!(binding = %ctx.name, "consumeRetryEnabled is set; bindery redelivers unaccepted messages either way");
        }
        let input = input::KafkaInput::new(&ctx.name, Arc::new(config), ctx.health.clone())?;
        Ok(Box::new(input))
    }
}
