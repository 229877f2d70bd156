//! `bindings.azure.storagequeues`: one Azure Storage queue, both directions.

pub(crate) mod api;
mod config;
mod input;
mod output;

use std::sync::Arc;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, CancellationToken, ComponentContext, Direction,
    InputBinding, Metadata, MetadataField, OutputBinding, async_trait,
};

use crate::join_errors;
use api::QueueClient;
pub(crate) use config::QueueConfig;
use input::QueueInput;
use output::QueueOutput;

/// Operations.
pub(crate) const OPERATIONS: &[&str] = &["create"];

pub(crate) static METADATA: &[MetadataField] = &[
    MetadataField::required("accountName", "the storage account")
        .aliases(&["storageAccount", "storageAccountName"]),
    MetadataField::required("accountKey", "the account key")
        .aliases(&["accessKey", "storageAccessKey", "storageAccountKey"])
        .sensitive(),
    MetadataField::required("queueName", "the queue").aliases(&["queue", "storageAccountQueue"]),
    MetadataField::optional(
        "queueEndpoint",
        "a custom endpoint, e.g. Azurite's http://127.0.0.1:10001 (URLs become <endpoint>/<account>/<queue>)",
    )
    .aliases(&["endpoint"]),
    MetadataField::optional("pollingInterval", "input: the pause after finding the queue empty (at least 100ms)")
        .default("10s"),
    MetadataField::optional("ttl", "output: how long a message lives unless the request says (seconds or a duration)")
        .aliases(&["ttlInSeconds"])
        .default("10m"),
    MetadataField::optional("decodeBase64", "input: base64-decode each message before delivering it").default("false"),
    MetadataField::optional("encodeBase64", "output: base64-encode the data before enqueuing it").default("false"),
    MetadataField::optional(
        "visibilityTimeout",
        "input: how long a received message stays hidden from other readers while it is delivered",
    )
    .default("30s"),
    MetadataField::optional(
        "initialVisibilityDelay",
        "output: how long a new message stays hidden before it can be read (also request metadata)",
    )
    .default("0"),
    MetadataField::optional(
        "backOffInitialInterval",
        "bindery: the first pause before a message the app failed is offered again",
    )
    .default("1s"),
    MetadataField::optional(
        "backOffMaxInterval",
        "bindery: the longest such pause (default: visibilityTimeout)",
    ),
    MetadataField::optional("azureEnvironment", "AZUREPUBLICCLOUD, AZURECHINACLOUD or AZUREUSGOVERNMENTCLOUD")
        .default("AZUREPUBLICCLOUD"),
    MetadataField::optional("azureTenantId", "Entra ID: not supported by bindery"),
    MetadataField::optional("azureClientId", "Entra ID: not supported by bindery"),
    MetadataField::optional("azureClientSecret", "Entra ID: not supported by bindery").sensitive(),
    MetadataField::optional("azureCertificate", "Entra ID: not supported by bindery").sensitive(),
    MetadataField::optional("azureCertificateFile", "Entra ID: not supported by bindery"),
    MetadataField::optional("azureCertificatePassword", "Entra ID: not supported by bindery").sensitive(),
];

pub(crate) static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.azure.storagequeues",
    aliases: &[],
    direction: Direction::Both,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Enqueues to and receives from an Azure Storage queue",
};

/// How often a request to the queue is retried.
const RETRIES: u32 = 3;

/// Builds `bindings.azure.storagequeues` bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageQueuesFactory;

impl StorageQueuesFactory {
    fn client(config: &QueueConfig) -> Result<QueueClient, BindingError> {
        QueueClient::new(config.key.clone(), config.queue_url.clone(), RETRIES)
    }
}

#[async_trait]
impl BindingFactory for StorageQueuesFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        QueueConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = QueueConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let client = Self::client(&config)?;
        // As Dapr's Init: the queue is created when missing. One attempt: a service that
        // cannot be reached is retried in the background by the runtime, which reports why.
        client.with_retries(0).create_queue().await?;
        ctx.health.connected();
        Ok(Box::new(QueueOutput::new(
            &ctx.name,
            config,
            client,
            ctx.health.clone(),
        )))
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        // Connecting happens in `read`, so a service that is down is retried in the background.
        let config = QueueConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let client = Self::client(&config)?;
        Ok(Box::new(QueueInput {
            name: ctx.name.clone(),
            config: Arc::new(config),
            client,
            health: ctx.health.clone(),
            closed: CancellationToken::new(),
        }))
    }
}
