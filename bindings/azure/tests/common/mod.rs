//! Shared helpers for the Azure tests: Azurite (blob 127.0.0.1:10000, queue 127.0.0.1:10001,
//! account devstoreaccount1), unique names, component files, and direct REST access to check
//! what the bindings did.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::Duration;

use bindery_binding_azure::rest::{
    Call, DEV_ACCOUNT, DEV_KEY, QueueClient, SharedKey, StorageClient,
};
use bindery_test_support::Bindery;
use dapr::dapr::proto::runtime::v1::InvokeBindingRequest;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use reqwest::{Method, Url};

/// Azurite's blob endpoint.
pub const BLOB: &str = "127.0.0.1:10000";
/// Azurite's queue endpoint.
pub const QUEUE: &str = "127.0.0.1:10001";
/// Blob endpoint URL.
pub const BLOB_ENDPOINT: &str = "http://127.0.0.1:10000";
/// Queue endpoint URL.
pub const QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001";

/// Fail (never skip) when Azurite is not reachable.
pub fn require_azurite() {
    for addr in [BLOB, QUEUE] {
        let ok =
            std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))
                .is_ok();
        assert!(
            ok,
            "Azurite is not reachable at {addr}: start it with scripts/backends.sh"
        );
    }
}

/// The test harness's HTTP client and ours need a TLS crypto provider, as the binary installs one.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A fresh container or queue name.
pub fn unique(tag: &str) -> String {
    format!("t{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// A component file for `spec_type` named `name` with `md`.
pub fn component(name: &str, spec_type: &str, md: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {spec_type}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

/// Blob component metadata for `container` on Azurite, with `extra`.
pub fn blob_md<'a>(container: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut md = vec![
        ("accountName", DEV_ACCOUNT),
        ("accountKey", DEV_KEY),
        ("containerName", container),
        ("endpoint", BLOB_ENDPOINT),
    ];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, v));
    }
    md
}

/// Queue component metadata for `queue` on Azurite, with `extra`.
pub fn queue_md<'a>(queue: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut md = vec![
        ("accountName", DEV_ACCOUNT),
        ("accountKey", DEV_KEY),
        ("queueName", queue),
        ("queueEndpoint", QUEUE_ENDPOINT),
        ("pollingInterval", "200ms"),
    ];
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push((k, v));
    }
    md
}

/// Start bindery with one component file (and an app, when given).
pub async fn start(app_id: &str, file: &str, app_port: Option<u16>) -> Bindery {
    crypto();
    let mut b = Bindery::builder(app_id).file("azure.yaml", file);
    if let Some(p) = app_port {
        b = b.app_port(p);
    }
    b.start().await
}

/// A signed client for Azurite's blob service.
pub fn blob_client() -> StorageClient {
    crypto();
    StorageClient::new(
        SharedKey::new(DEV_ACCOUNT, DEV_KEY).unwrap(),
        0,
        "Azurite blob",
    )
    .unwrap()
}

/// The URL of blob `name` in `container` on Azurite.
pub fn blob_url(container: &str, name: &str) -> Url {
    Url::parse(&format!("{BLOB_ENDPOINT}/{DEV_ACCOUNT}/{container}/{name}")).unwrap()
}

/// GET a blob directly: status, headers, body.
pub async fn raw_get(url: Url) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let sent = blob_client()
        .send(&Call::new(Method::GET, url))
        .await
        .unwrap();
    let status = sent.response.status().as_u16();
    let headers = sent.response.headers().clone();
    let body = sent.response.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

/// A client for `queue` on Azurite.
pub fn queue_client(queue: &str) -> QueueClient {
    crypto();
    let url = Url::parse(&format!("{QUEUE_ENDPOINT}/{DEV_ACCOUNT}/{queue}")).unwrap();
    QueueClient::new(SharedKey::new(DEV_ACCOUNT, DEV_KEY).unwrap(), url, 2).unwrap()
}

/// Connect to bindery's gRPC API.
pub async fn grpc(port: u16) -> DaprClient<tonic::transport::Channel> {
    DaprClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "bindery does not serve the Dapr gRPC API on --dapr-grpc-port {port} \
                 (is bindery_grpc::serve started by the binary?): {e}"
            )
        })
}

/// An `InvokeBinding` request.
pub fn grpc_request(
    name: &str,
    operation: &str,
    data: &[u8],
    md: &[(&str, &str)],
) -> InvokeBindingRequest {
    InvokeBindingRequest {
        name: name.into(),
        data: data.to_vec(),
        metadata: md
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        operation: operation.into(),
    }
}

/// A header of an HTTP response, any case.
pub fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
