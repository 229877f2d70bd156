//! `bindings.azure.blobstorage`: blobs in one container.

mod bulk;
mod config;
mod list;
mod ops;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, ComponentContext, Direction,
    InvokeRequest, InvokeResponse, Metadata, MetadataField, OutputBinding, async_trait,
};
use reqwest::{Method, StatusCode, Url};
use tracing::{debug, info};

pub(crate) use config::BlobConfig;
use config::PublicAccess;

use crate::join_errors;
use crate::rest::{Call, StorageClient};

/// Operations, in Dapr's order.
pub(crate) const OPERATIONS: &[&str] = &[
    "create",
    "get",
    "delete",
    "list",
    "bulkGet",
    "bulkCreate",
    "bulkDelete",
    "presign",
];

pub(crate) static METADATA: &[MetadataField] = &[
    MetadataField::optional(
        "accountName",
        "the storage account (required unless connectionString names it)",
    )
    .aliases(&["storageAccount", "storageAccountName"]),
    MetadataField::optional(
        "accountKey",
        "the account key (required unless connectionString has it)",
    )
    .aliases(&["accessKey", "storageAccessKey", "storageAccountKey"])
    .sensitive(),
    MetadataField::optional(
        "connectionString",
        "a storage connection string with AccountName and AccountKey, instead of the fields above",
    )
    .sensitive(),
    MetadataField::required("containerName", "the container")
        .aliases(&["container", "storageAccountContainer"]),
    MetadataField::optional(
        "endpoint",
        "a custom endpoint, e.g. Azurite's http://127.0.0.1:10000 (URLs become <endpoint>/<account>/<container>)",
    ),
    MetadataField::optional(
        "publicAccessLevel",
        "anonymous access of a container bindery creates: none, blob or container",
    )
    .default("none"),
    MetadataField::optional(
        "decodeBase64",
        "create: base64-decode the data before storing it",
    )
    .default("false"),
    MetadataField::optional("retryCount", "how often a failed request is retried")
        .aliases(&["getBlobRetryCount"])
        .default("3"),
    MetadataField::optional(
        "disableEntityManagement",
        "do not create the container when it is missing",
    )
    .default("false"),
    MetadataField::optional(
        "azureEnvironment",
        "AZUREPUBLICCLOUD, AZURECHINACLOUD or AZUREUSGOVERNMENTCLOUD",
    )
    .default("AZUREPUBLICCLOUD"),
    MetadataField::optional("azureTenantId", "Entra ID: not supported by bindery"),
    MetadataField::optional("azureClientId", "Entra ID: not supported by bindery"),
    MetadataField::optional("azureClientSecret", "Entra ID: not supported by bindery").sensitive(),
    MetadataField::optional("azureCertificate", "Entra ID: not supported by bindery").sensitive(),
    MetadataField::optional("azureCertificateFile", "Entra ID: not supported by bindery"),
    MetadataField::optional(
        "azureCertificatePassword",
        "Entra ID: not supported by bindery",
    )
    .sensitive(),
];

pub(crate) static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.azure.blobstorage",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Creates, reads, lists and deletes blobs in an Azure Storage container",
};

/// Builds `bindings.azure.blobstorage` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlobStorageFactory;

#[async_trait]
impl BindingFactory for BlobStorageFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        BlobConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = BlobConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let client =
            StorageClient::new(config.key.clone(), config.retry_count, "Azure Blob Storage")?;
        let blob = BlobStorage {
            name: ctx.name.clone(),
            config: Arc::new(config),
            client,
            closed: AtomicBool::new(false),
            health: ctx.health.clone(),
        };
        if blob.config.disable_entity_management {
            debug!(binding = %ctx.name, "disableEntityManagement: the container is not created");
        } else {
            blob.ensure_container().await?;
        }
        ctx.health.connected();
        Ok(Box::new(blob))
    }
}

/// A running `bindings.azure.blobstorage` component.
pub(crate) struct BlobStorage {
    pub(crate) name: String,
    pub(crate) config: Arc<BlobConfig>,
    pub(crate) client: StorageClient,
    pub(crate) closed: AtomicBool,
    pub(crate) health: BindingHealth,
}

impl BlobStorage {
    /// Create the container unless it exists.
    async fn ensure_container(&self) -> Result<(), BindingError> {
        let mut url = self.config.container_url.clone();
        url.set_query(Some("restype=container"));
        let mut call = Call::new(Method::PUT, url);
        match self.config.public_access {
            PublicAccess::None => {}
            PublicAccess::Blob => call = call.header("x-ms-blob-public-access", "blob")?,
            PublicAccess::Container => {
                call = call.header("x-ms-blob-public-access", "container")?
            }
        }
        // One attempt: a service that cannot be reached is retried in the background by the
        // runtime, which reports why.
        let sent = self.client.with_retries(0).send(&call).await?;
        let status = sent.response.status();
        if status.is_success() {
            info!(binding = %self.name, container = %self.config.container, "created the container");
            return Ok(());
        }
        if status == StatusCode::CONFLICT {
            return Ok(());
        }
        let context = format!(
            "failed to create Azure Storage container {}",
            self.config.container
        );
        Err(self.client.status_error(&context, sent.response).await)
    }

    /// The URL of blob `name`.
    pub(crate) fn blob_url(&self, name: &str) -> Result<Url, BindingError> {
        check_blob_name(name)?;
        let s = format!(
            "{}/{}",
            self.config.container_url.as_str().trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(name, crate::account::BLOB_PATH)
        );
        Url::parse(&s)
            .map_err(|e| BindingError::invalid_request(format!("invalid blobName {name:?}: {e}")))
    }

    /// Report the backend reachable or not after a call.
    pub(crate) fn observe<T>(&self, result: &Result<T, BindingError>) {
        match result {
            Ok(_) => self.health.connected(),
            Err(e) if e.is_retryable() => self.health.disconnected(e.to_string()),
            Err(_) => {}
        }
    }
}

/// Blob names: 1 to 1024 characters; no `.` or `..` path segments (URLs cannot carry them).
pub(crate) fn check_blob_name(name: &str) -> Result<(), BindingError> {
    if name.is_empty() || name.chars().count() > 1024 {
        return Err(BindingError::invalid_request(format!(
            "invalid blobName {name:?}: it must be 1 to 1024 characters long"
        )));
    }
    if name.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(BindingError::invalid_request(format!(
            "invalid blobName {name:?}: \".\" and \"..\" path segments are not allowed"
        )));
    }
    Ok(())
}

/// A request metadata value by name, any case, when set and not empty.
pub(crate) fn req_md<'a>(md: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    md.iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

#[async_trait]
impl OutputBinding for BlobStorage {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        let result = match req.operation.as_str() {
            "create" => self.create(req).await,
            "get" => self.get(req).await,
            "delete" => self.delete(req).await,
            "list" => self.list(req).await,
            "presign" => self.presign(&req),
            "bulkGet" => self.bulk_get(req).await,
            "bulkCreate" => self.bulk_create(req).await,
            "bulkDelete" => self.bulk_delete(req).await,
            other => Err(BindingError::unsupported(format!(
                "unsupported operation {other}"
            ))),
        };
        self.observe(&result);
        result
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
