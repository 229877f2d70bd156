//! `bindings.azure.blobstorage` (output) and `bindings.azure.storagequeues` (input and output):
//! Azure Storage through its REST API, signed with the account key, over `reqwest` and rustls.
//!
//! # Why our own REST client
//!
//! * The official new Azure SDK for Rust cannot authenticate with an account key (Entra ID
//!   only), so it cannot reach Azurite, the emulator the tests (and many users' development
//!   setups) run against.
//! * `object_store` (0.14) covers blobs but not queues; its `azure` feature turns on reqwest's
//!   default rustls provider, which is aws-lc-rs, a second crypto stack next to the process's
//!   ring (avoiding that means `azure-base` plus writing its HTTP connector ourselves); and its
//!   generic object API has no room for what Dapr's blob binding exposes: `deleteSnapshots`,
//!   list `include` options and the raw blob items, container public access, a SAS signed with
//!   the account key.
//! * Shared Key signing is ~80 lines ([`rest`] and the `sign` module), identical for both
//!   services, and the few operations needed are plain HTTP.
//!
//! So both bindings share one signed client ([`rest::StorageClient`]) on the workspace's
//! `reqwest` (rustls with the ring provider installed by the binary, platform certificate
//! verification), HMAC-SHA256 from `ring`, and `roxmltree` to read the service's XML.
//!
//! # `bindings.azure.blobstorage`
//!
//! | name | default | |
//! |---|---|---|
//! | `accountName` (`storageAccount`, `storageAccountName`) | required¹ | the storage account |
//! | `accountKey` (`accessKey`, `storageAccessKey`, `storageAccountKey`) | required¹ | the account key; a credential |
//! | `connectionString` | | instead of the two above: `AccountName=…;AccountKey=…[;BlobEndpoint=…]`, or `UseDevelopmentStorage=true`; a credential |
//! | `containerName` (`container`, `storageAccountContainer`) | required | the container |
//! | `endpoint` | | custom endpoint, e.g. Azurite's `http://127.0.0.1:10000`: URLs become `<endpoint>/<account>/<container>` |
//! | `publicAccessLevel` | `none` | anonymous access of a container bindery creates: `none`, `blob`, `container` |
//! | `decodeBase64` | `false` | `create`: base64-decode the data before storing it |
//! | `retryCount` (`getBlobRetryCount`) | `3` | retries of a failed request, and resumes of a broken download |
//! | `disableEntityManagement` | `false` | do not create the container at start |
//! | `azureEnvironment` | `AZUREPUBLICCLOUD` | the cloud's DNS suffix (`AZURECHINACLOUD`, `AZUREUSGOVERNMENTCLOUD`) |
//!
//! ¹ unless `connectionString` holds it. Entra ID fields (`azureTenantId`, `azureClientId`, …)
//! are recognised and refused: bindery signs with the account key only.
//!
//! Operations: `create` (request metadata `blobName`, else a UUID; `ContentType`, `ContentMD5`,
//! `ContentEncoding`, `ContentLanguage`, `ContentDisposition`, `CacheControl` become blob
//! properties; `signTTL` adds a read-only `presignURL`; every other entry becomes blob metadata,
//! `x-ms-meta-<name>`, as Dapr does; answers `{"blobURL","blobName"[,"presignURL"]}` and
//! response metadata `blobName`), `get` (`blobName` required; `includeMetadata=true` returns the
//! blob metadata as response metadata; `filePath` streams the blob into a file instead), `delete`
//! (`deleteSnapshots`: `include` or `only`), `list` (data
//! `{"marker","prefix","maxResults","include":{…}}`; answers the blob items as Dapr's Go SDK
//! marshals them, with response metadata `marker`, `number`, `pagesTraversed`), `presign`
//! (`blobName`, `signTTL` → `{"presignURL"}`), and `bulkGet`, `bulkCreate`, `bulkDelete`.
//!
//! Data: `create` unquotes a JSON string (the HTTP API's `"data": "text"` stores `text`), then
//! base64-decodes it with `decodeBase64`. Blobs above 4 MiB are uploaded in 4 MiB blocks, four at
//! a time, committed with one block list. `get` reads the body chunk by chunk and resumes a
//! broken transfer with a `Range` request pinned to the blob's `ETag`; the whole blob is then
//! returned, because the runtime's response type holds the data in memory (`filePath` streams to
//! disk instead).
//!
//! # `bindings.azure.storagequeues`
//!
//! | name | default | |
//! |---|---|---|
//! | `accountName`, `accountKey`, aliases as above | required | the account and its key (a credential) |
//! | `queueName` (`queue`, `storageAccountQueue`) | required | the queue; created when missing |
//! | `queueEndpoint` (`endpoint`) | | custom endpoint, e.g. Azurite's `http://127.0.0.1:10001`: URLs become `<endpoint>/<account>/<queue>` |
//! | `pollingInterval` | `10s` | input: the pause after finding the queue empty (≥ 100ms) |
//! | `ttl` (`ttlInSeconds`) | `10m` | output: message time to live (seconds or a duration) |
//! | `decodeBase64` | `false` | input: base64-decode messages |
//! | `encodeBase64` | `false` | output: base64-encode data |
//! | `visibilityTimeout` | `30s` | input: how long a received message stays hidden |
//! | `initialVisibilityDelay` | `0` | output: how long a new message stays hidden (also request metadata) |
//! | `backOffInitialInterval` | `1s` | bindery: first pause before a failed message is offered again |
//! | `backOffMaxInterval` | `visibilityTimeout` | bindery: the longest such pause |
//!
//! Output `create` enqueues the data (a JSON string unquoted; base64-encoded with
//! `encodeBase64`) with request metadata `ttlInSeconds`/`ttl` and `initialVisibilityDelay`.
//!
//! Input guarantees (at least once): up to 16 messages are received at a time, each hidden for
//! `visibilityTimeout` and kept hidden while its delivery takes longer (the visibility is
//! extended at half the timeout), so a slow app does not get it twice. A message is deleted only
//! after the app accepted it (or a dead-letter target took it). A message the app failed is
//! made visible again after a backoff (the app's `Retry-After`, else `backOffInitialInterval`
//! doubled per earlier delivery, at most `backOffMaxInterval`) instead of after the full
//! visibility timeout; on shutdown the deliveries under way finish, and a message the runtime
//! hands back is made visible at once. Event metadata: `messageID`, `popReceipt`,
//! `insertionTime`, `expirationTime`, `nextVisibleTime` (RFC 3339), `dequeueCount`.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_azure::register(&mut registry);
//! let blob = registry.get("bindings.azure.blobstorage").unwrap();
//! let md = bindery_core::Metadata::from_pairs([
//!     ("accountName", "devstoreaccount1"),
//!     ("accountKey", bindery_binding_azure::rest::DEV_KEY),
//!     ("containerName", "files"),
//!     ("endpoint", "http://127.0.0.1:10000"),
//! ]);
//! assert!(blob.validate(&md).is_ok());
//! assert!(blob.spec().is_sensitive("accountKey"));
//! assert!(registry.get("bindings.azure.storagequeues").is_some());
//! ```

mod account;
mod blob;
mod queue;
pub mod rest;
mod sign;
mod xml;

use bindery_core::{BindingError, Registry};

pub use blob::BlobStorageFactory;
pub use queue::StorageQueuesFactory;

/// Add `bindings.azure.blobstorage` and `bindings.azure.storagequeues` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(BlobStorageFactory);
    registry.register(StorageQueuesFactory);
}

/// Fold configuration problems into one error for the build phase.
pub(crate) fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors
        .first()
        .and_then(|e| e.field())
        .unwrap_or("accountName")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}
