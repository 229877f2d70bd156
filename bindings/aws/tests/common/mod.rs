//! Shared helpers for the AWS tests: moto's address, SDK clients for test setup, component
//! files, and calls through bindery's HTTP and gRPC APIs.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bindery_test_support::Bindery;
use dapr::dapr::proto::runtime::v1 as pb;

/// moto's address.
pub const ADDR: &str = "127.0.0.1:15000";
/// moto's endpoint URL.
pub const ENDPOINT: &str = "http://127.0.0.1:15000";
/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// Any credentials do for moto; the secret is checked to never appear in errors.
pub const ACCESS_KEY: &str = "AKIDBINDERYTEST";
pub const SECRET_KEY: &str = "bindery-test-secret-do-not-print";

/// Fail (never skip) when moto is not reachable.
pub async fn require_moto() {
    let ok = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(ADDR))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        ok,
        "moto (AWS) is not reachable at {ADDR}: start it with scripts/backends.sh"
    );
}

/// A fresh lower-case name with `prefix`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The SDK config the tests use to set up and check resources in moto.
pub async fn sdk() -> aws_config::SdkConfig {
    crypto();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(REGION))
        .endpoint_url(ENDPOINT)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .load()
        .await
}

/// The TLS crypto provider, as the binary installs it.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The metadata every AWS component in the tests carries.
pub fn auth() -> Vec<(&'static str, String)> {
    vec![
        ("region", REGION.to_owned()),
        ("endpoint", ENDPOINT.to_owned()),
        ("accessKey", ACCESS_KEY.to_owned()),
        ("secretKey", SECRET_KEY.to_owned()),
    ]
}

/// A component file of `type_name` named `name` with the auth metadata plus `extra`.
pub fn component(name: &str, type_name: &str, extra: &[(&str, &str)]) -> String {
    let mut md: Vec<(String, String)> =
        auth().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in extra {
        md.retain(|(n, _)| n != k);
        md.push(((*k).to_owned(), (*v).to_owned()));
    }
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in md {
        yaml.push_str(&format!("  - name: {k}\n    value: \"{v}\"\n"));
    }
    yaml
}

/// Start bindery with `files`, delivering input events to `app_port` when given.
pub async fn start(app_id: &str, files: &[(&str, String)], app_port: Option<u16>) -> Bindery {
    crypto();
    let mut b = Bindery::builder(app_id);
    for (name, yaml) in files {
        b = b.file(name, yaml);
    }
    if let Some(p) = app_port {
        b = b.app_port(p);
    }
    b.start().await
}

/// Wait until `/v1.0/healthz` answers 204 (every binding connected).
pub async fn wait_healthy(b: &Bindery) {
    bindery_test_support::wait_until(Duration::from_secs(30), "healthz 204", || async {
        let r = b.client().get(b.url("/v1.0/healthz")).send().await.ok()?;
        (r.status().as_u16() == 204).then_some(())
    })
    .await;
}

/// One HTTP call's outcome: status, `metadata.*` headers (lower-cased, without the prefix),
/// body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub metadata: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `POST /v1.0/bindings/<name>` with `{operation, data, metadata}`.
pub async fn http(
    b: &Bindery,
    name: &str,
    operation: &str,
    data: serde_json::Value,
    metadata: &[(&str, &str)],
) -> HttpAnswer {
    let md: HashMap<&str, &str> = metadata.iter().copied().collect();
    let r = b
        .invoke(
            name,
            serde_json::json!({ "operation": operation, "data": data, "metadata": md }),
        )
        .await;
    let status = r.status().as_u16();
    let metadata = r
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            k.as_str()
                .strip_prefix("metadata.")
                .map(|k| (k.to_owned(), v.to_str().unwrap_or_default().to_owned()))
        })
        .collect();
    let body = r.bytes().await.unwrap().to_vec();
    HttpAnswer {
        status,
        metadata,
        body,
    }
}

/// gRPC `InvokeBinding`.
pub async fn grpc(
    b: &Bindery,
    name: &str,
    operation: &str,
    data: &[u8],
    metadata: &[(&str, &str)],
) -> Result<pb::InvokeBindingResponse, tonic::Status> {
    let addr = format!("http://127.0.0.1:{}", b.grpc_port);
    let mut c = bindery_test_support::wait_until(
        Duration::from_secs(10),
        &format!("the Dapr gRPC API on --dapr-grpc-port {}", b.grpc_port),
        || {
            let addr = addr.clone();
            async move { pb::dapr_client::DaprClient::connect(addr).await.ok() }
        },
    )
    .await;
    c.invoke_binding(pb::InvokeBindingRequest {
        name: name.into(),
        operation: operation.into(),
        data: data.to_vec(),
        metadata: metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .await
    .map(tonic::Response::into_inner)
}
