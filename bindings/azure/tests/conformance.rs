//! Dapr's binding conformance steps (`tests/config/bindings/azure.blobstorage` and
//! `azure.storagequeues`) on the bindings' traits against Azurite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bindery_binding_azure::{BlobStorageFactory, StorageQueuesFactory};
use bindery_core::Metadata;
use bindery_test_support::conformance::{self, Conformance, DEFAULT_OUTPUT_DATA};

/// create, get, list (Dapr's set) and delete, after which get fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobstorage() {
    common::require_azurite();
    common::crypto();
    let container = common::unique("conf");
    let metadata = Metadata::from_pairs(common::blob_md(&container, &[]));
    let mut c = Conformance::new("blob-conformance", metadata);
    c.operations = vec!["create", "get", "list", "delete"];
    // As Dapr's tests.yml: the data doubles as the list request.
    c.output_data = bytes::Bytes::from_static(
        br#"{"maxResults": 10, "prefix": "", "include": {"metadata": true}}"#,
    );
    c.output_metadata
        .insert("blobName".into(), uuid::Uuid::new_v4().to_string());
    conformance::run(&BlobStorageFactory, c).await;
}

/// create and read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storagequeues() {
    common::require_azurite();
    common::crypto();
    let queue = common::unique("conf");
    let metadata = Metadata::from_pairs(common::queue_md(&queue, &[]));
    let mut c = Conformance::new("queue-conformance", metadata);
    c.operations = vec!["create"];
    c.read = true;
    c.read_timeout = Duration::from_secs(30);
    let events = conformance::run(&StorageQueuesFactory, c).await;
    assert_eq!(&events[0].data[..], DEFAULT_OUTPUT_DATA.as_bytes());
    assert_eq!(events[0].metadata["dequeueCount"], "1");
    common::queue_client(&queue).delete_queue().await.unwrap();
}
