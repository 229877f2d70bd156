//! The Dapr gRPC API, called with the `dapr` crate's generated client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bindery_runtime::RuntimeOptions;
use common::Harness;
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::{Code, Request};

fn invoke(name: &str, operation: &str, data: &[u8]) -> pb::InvokeBindingRequest {
    pb::InvokeBindingRequest {
        name: name.into(),
        operation: operation.into(),
        data: data.to_vec(),
        metadata: HashMap::new(),
    }
}

#[tokio::test]
async fn invoke_binding_passes_data_verbatim_and_merges_call_metadata() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let mut c = h.client().await;
    let mut req = invoke("echo", "create", b"\"quoted\" \x00\xff raw");
    req.metadata.insert("key".into(), "from-message".into());
    let mut req = Request::new(req);
    req.metadata_mut()
        .insert("key", "from-header".parse().unwrap());
    req.metadata_mut()
        .insert("x-custom", "yes".parse().unwrap());
    let resp = c.invoke_binding(req).await.unwrap();
    let headers = resp.metadata().clone();
    let body = resp.into_inner();
    assert_eq!(body.data, b"\"quoted\" \x00\xff raw");
    assert_eq!(body.metadata["key"], "from-message");
    assert_eq!(body.metadata["x-custom"], "yes");
    assert!(
        body.metadata["user-agent"].contains("tonic"),
        "{:?}",
        body.metadata
    );
    assert_eq!(body.metadata["dapr-authority"], h.addr.to_string());
    // The response metadata also comes back as `metadata.<key>` headers.
    assert_eq!(headers.get("metadata.key").unwrap(), "from-message");
    assert_eq!(headers.get("metadata.x-custom").unwrap(), "yes");
    h.stop().await;
}

#[tokio::test]
async fn invoke_binding_without_a_response_returns_an_empty_message() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let resp = h
        .client()
        .await
        .invoke_binding(invoke("echo", "get", b""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp, pb::InvokeBindingResponse::default());
    h.stop().await;
}

#[tokio::test]
async fn invoke_errors_are_internal_with_daprs_message() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let mut c = h.client().await;

    let e = c
        .invoke_binding(invoke("nope", "create", b""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert_eq!(
        e.message(),
        "error invoking output binding nope: couldn't find output binding nope"
    );

    let e = c
        .invoke_binding(invoke("echo", "delete", b""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert_eq!(
        e.message(),
        "error invoking output binding echo: binding echo does not support operation delete. supported operations:create get fail"
    );

    let e = c.invoke_binding(invoke("echo", "", b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert!(
        e.message()
            .ends_with("operation field is missing from request"),
        "{}",
        e.message()
    );
    h.stop().await;
}

#[tokio::test]
async fn binding_failure_carries_response_metadata_headers() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let e = h
        .client()
        .await
        .invoke_binding(invoke("echo", "fail", b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal);
    assert_eq!(
        e.message(),
        "error invoking output binding echo: backend said no"
    );
    assert_eq!(e.metadata().get("metadata.statuscode").unwrap(), "503");
    assert_eq!(e.metadata().get("metadata.reason").unwrap(), "busy");
    h.stop().await;
}

#[tokio::test]
async fn api_token_is_required_when_set() {
    let h = Harness::start(RuntimeOptions {
        api_token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let mut c = h.client().await;

    let e = c
        .invoke_binding(invoke("echo", "create", b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.message(), "Unauthorized");

    let mut wrong = Request::new(pb::GetMetadataRequest {});
    wrong
        .metadata_mut()
        .insert("dapr-api-token", "nope".parse().unwrap());
    let e = c.get_metadata(wrong).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(e.message(), "Unauthorized");

    let mut right = Request::new(invoke("echo", "create", b"x"));
    right
        .metadata_mut()
        .insert("dapr-api-token", "s3cret".parse().unwrap());
    let resp = c.invoke_binding(right).await.unwrap().into_inner();
    assert_eq!(resp.data, b"x");
    // The token is not handed to the binding.
    assert!(!resp.metadata.contains_key("dapr-api-token"));
    h.stop().await;
}

#[tokio::test]
async fn messages_over_the_body_limit_are_refused_both_ways() {
    let h = Harness::start(RuntimeOptions {
        max_body_size: 64 * 1024,
        ..Default::default()
    })
    .await;
    let mut c = h.client().await;

    let big = vec![b'a'; 100 * 1024];
    let e = tokio::time::timeout(
        Duration::from_secs(10),
        c.invoke_binding(invoke("echo", "create", &big)),
    )
    .await
    .expect("an oversize request is answered, not left hanging")
    .unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    assert!(e.message().contains("too large"), "{}", e.message());

    // Just under the limit in, but the echoed answer (data + metadata) is over it.
    let near = vec![b'a'; 60 * 1024];
    let mut req = invoke("echo", "create", &near);
    req.metadata.insert("pad".into(), "p".repeat(8 * 1024));
    let e = c.invoke_binding(req).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );

    // The connection still serves normal calls.
    let ok = c
        .invoke_binding(invoke("echo", "create", b"small"))
        .await
        .unwrap();
    assert_eq!(ok.into_inner().data, b"small");
    h.stop().await;
}

#[tokio::test]
async fn get_metadata_reports_components_and_app_connection() {
    let h = Harness::start(RuntimeOptions {
        app_id: "myapp".into(),
        app_port: Some(6000),
        app_max_concurrency: Some(3),
        ..Default::default()
    })
    .await;
    let m = h
        .client()
        .await
        .get_metadata(pb::GetMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.id, "myapp");
    assert_eq!(m.runtime_version, bindery_runtime::VERSION);
    assert_eq!(
        m.registered_components,
        vec![pb::RegisteredComponents {
            name: "echo".into(),
            r#type: "bindings.test".into(),
            version: "v1".into(),
            capabilities: vec!["OUTPUT_BINDING".into()],
        }]
    );
    assert_eq!(
        m.extended_metadata
            .get("daprRuntimeVersion")
            .map(String::as_str),
        Some(bindery_runtime::VERSION)
    );
    let app = m.app_connection_properties.unwrap();
    assert_eq!(app.port, 6000);
    assert_eq!(app.protocol, "http");
    assert_eq!(app.channel_address, "127.0.0.1");
    assert_eq!(app.max_concurrency, 3);
    h.stop().await;
}

#[tokio::test]
async fn set_metadata_shows_in_get_metadata() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let mut c = h.client().await;
    c.set_metadata(pb::SetMetadataRequest {
        key: "team".into(),
        value: "blue".into(),
    })
    .await
    .unwrap();
    let m = c
        .get_metadata(pb::GetMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.extended_metadata["team"], "blue");
    h.stop().await;
}

#[tokio::test]
async fn shutdown_asks_the_runtime_to_stop() {
    let h = Harness::start(RuntimeOptions::default()).await;
    h.client()
        .await
        .shutdown(pb::ShutdownRequest {})
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.runtime.shutdown_requested())
        .await
        .expect("shutdown requested");
    h.stop().await;
}

#[tokio::test]
async fn other_dapr_methods_are_unimplemented() {
    let h = Harness::start(RuntimeOptions::default()).await;
    let e = h
        .client()
        .await
        .get_state(pb::GetStateRequest {
            store_name: "s".into(),
            key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    h.stop().await;
}

#[tokio::test]
async fn serves_on_every_listener() {
    let runtime =
        bindery_runtime::Runtime::new(RuntimeOptions::default(), Default::default(), None);
    runtime.start().await.unwrap();
    let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = [a.local_addr().unwrap(), b.local_addr().unwrap()];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bindery_grpc::serve(runtime, vec![a, b], async move {
        let _ = stopped.await;
    }));
    for addr in addrs {
        let mut c = pb::dapr_client::DaprClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        c.get_metadata(pb::GetMetadataRequest {}).await.unwrap();
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
