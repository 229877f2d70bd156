//! The Dapr gRPC API: decode, authenticate, bound the size, then hand over to the runtime.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bindery_core::{InvokeRequest, InvokeResponse};
use bindery_runtime::trace::{TRACEPARENT, TraceContext};
use bindery_runtime::{MetadataInfo, OutputCaller, OutputError, Runtime};
use dapr::dapr::proto::runtime::v1 as pb;
use tonic::metadata::{KeyAndValueRef, MetadataKey, MetadataMap, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::proto::dapr_server::{Dapr, DaprServer};

/// The binary trace context of OpenCensus-style gRPC clients.
const GRPC_TRACE_BIN: &str = "grpc-trace-bin";

/// The metadata key that carries the API token, both ways.
pub(crate) const API_TOKEN_KEY: &str = "dapr-api-token";

/// Why the gRPC API stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be prepared.
    #[error("gRPC API listener: {0}")]
    Io(#[from] std::io::Error),
    /// The server failed while serving.
    #[error("gRPC API server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serve the Dapr gRPC API for `runtime` on every listener until `shutdown` resolves.
///
/// In-flight calls finish before this returns. Without listeners it waits for `shutdown`.
pub async fn serve(
    runtime: Arc<Runtime>,
    listeners: Vec<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if listeners.is_empty() {
        // tonic returns as soon as its incoming stream ends; keep the documented contract.
        shutdown.await;
        return Ok(());
    }
    let max = runtime.options().max_body_size;
    let token = runtime.options().api_token.clone();
    let api = DaprServer::new(DaprApi { runtime })
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let api = InterceptedService::new(api, move |req: Request<()>| {
        check_token(token.as_deref(), req)
    });
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(address = %addr, "gRPC API listening");
        }
    }
    let incoming = futures::stream::select_all(
        listeners
            .into_iter()
            .map(|l| TcpIncoming::from(l).with_nodelay(Some(true))),
    );
    tonic::transport::Server::builder()
        .layer(tower::util::MapRequestLayer::new(keep_authority))
        .add_service(api)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// The `:authority` pseudo-header, which tonic does not put in the request metadata.
#[derive(Debug, Clone)]
struct Authority(String);

fn keep_authority(mut req: http::Request<tonic::body::Body>) -> http::Request<tonic::body::Body> {
    if let Some(a) = req.uri().authority().map(|a| Authority(a.to_string())) {
        req.extensions_mut().insert(a);
    }
    req
}

/// `DAPR_API_TOKEN`: every call must carry the token as `dapr-api-token` metadata.
#[allow(clippy::result_large_err)] // tonic's interceptor signature
fn check_token(expected: Option<&str>, req: Request<()>) -> Result<Request<()>, Status> {
    let Some(expected) = expected else {
        return Ok(req);
    };
    let given = req
        .metadata()
        .get(API_TOKEN_KEY)
        .and_then(|v| v.to_str().ok());
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(req),
        Some(_) => {
            tracing::debug!("gRPC call rejected: api token mismatch");
            Err(Status::unauthenticated("Unauthorized"))
        }
        None => {
            tracing::debug!("gRPC call rejected: missing api token in request metadata");
            Err(Status::unauthenticated("Unauthorized"))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct DaprApi {
    runtime: Arc<Runtime>,
}

#[tonic::async_trait]
impl Dapr for DaprApi {
    async fn invoke_binding(
        &self,
        request: Request<pb::InvokeBindingRequest>,
    ) -> Result<Response<pb::InvokeBindingResponse>, Status> {
        let authority = request.extensions().get::<Authority>().cloned();
        let (incoming, _, msg) = request.into_parts();
        let mut metadata = msg.metadata;
        merge_request_metadata(&mut metadata, &incoming, authority.as_ref().map(|a| &*a.0));
        let call = InvokeRequest {
            operation: msg.operation,
            data: msg.data.into(),
            metadata,
        };
        match self
            .runtime
            .invoke_output_from(OutputCaller::Grpc, &msg.name, call)
            .await
        {
            Ok(None) => Ok(Response::new(pb::InvokeBindingResponse::default())),
            Ok(Some(InvokeResponse { data, metadata, .. })) => {
                let headers = metadata_headers(&metadata);
                let mut resp = Response::new(pb::InvokeBindingResponse {
                    data: data.into(),
                    metadata,
                });
                *resp.metadata_mut() = headers;
                Ok(resp)
            }
            Err(e) => Err(output_error_status(e)),
        }
    }

    async fn get_metadata(
        &self,
        _request: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        Ok(Response::new(metadata_response(self.runtime.metadata())))
    }

    async fn set_metadata(
        &self,
        request: Request<pb::SetMetadataRequest>,
    ) -> Result<Response<()>, Status> {
        let pb::SetMetadataRequest { key, value } = request.into_inner();
        self.runtime.set_extended(key, value);
        Ok(Response::new(()))
    }

    async fn shutdown(
        &self,
        _request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<()>, Status> {
        tracing::info!("shutdown requested through the gRPC API");
        self.runtime.request_shutdown();
        Ok(Response::new(()))
    }
}

/// The one place an output failure becomes a gRPC status: `Internal` with Dapr's message, and the
/// binding's response metadata as `metadata.<key>` headers.
fn output_error_status(e: OutputError) -> Status {
    Status::with_metadata(Code::Internal, e.message, metadata_headers(&e.metadata))
}

/// Response metadata as `metadata.<key>` response headers. Entries that cannot be an ASCII gRPC
/// header (binary `-bin` keys, non-ASCII values) stay in the message body only.
fn metadata_headers(metadata: &HashMap<String, String>) -> MetadataMap {
    let mut headers = MetadataMap::new();
    for (k, v) in metadata {
        let key = MetadataKey::from_bytes(format!("metadata.{k}").as_bytes());
        // gRPC allows only printable ASCII in text metadata values.
        let printable = v.bytes().all(|b| (0x20..0x7f).contains(&b));
        match (key, MetadataValue::try_from(v.as_str())) {
            (Ok(key), Ok(value)) if printable => {
                headers.insert(key, value);
            }
            _ => tracing::debug!(key = %k, "response metadata entry not sent as a header"),
        }
    }
    headers
}

/// Merge the call's gRPC metadata into the binding request metadata, as Dapr does: keys the app
/// put in the message win; `:authority` becomes `dapr-authority`, `grpc-*` keys get a `dapr-`
/// prefix; binary keys and the API token are not passed on.
fn merge_request_metadata(
    into: &mut HashMap<String, String>,
    incoming: &MetadataMap,
    authority: Option<&str>,
) {
    let mut add = |key: String, value: &str| {
        into.entry(key).or_insert_with(|| value.to_owned());
    };
    if let Some(a) = authority {
        add("dapr-authority".to_owned(), a);
    }
    // gRPC clients instrumented the OpenCensus way send the trace context in binary.
    if incoming.get(TRACEPARENT).is_none()
        && let Some(ctx) = incoming
            .get_bin(GRPC_TRACE_BIN)
            .and_then(|v| v.to_bytes().ok())
            .and_then(|b| TraceContext::from_grpc_trace_bin(&b))
    {
        add(TRACEPARENT.to_owned(), &ctx.traceparent());
    }
    for entry in incoming.iter() {
        let KeyAndValueRef::Ascii(key, value) = entry else {
            continue;
        };
        let key = key.as_str();
        if key == API_TOKEN_KEY {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let key = if key.starts_with("grpc-") {
            format!("dapr-{key}")
        } else {
            key.to_owned()
        };
        add(key, value);
    }
}

fn metadata_response(info: MetadataInfo) -> pb::GetMetadataResponse {
    let app = info.app_connection_properties;
    pb::GetMetadataResponse {
        id: info.id,
        runtime_version: info.runtime_version,
        enabled_features: info.enabled_features,
        registered_components: info
            .components
            .into_iter()
            .map(|c| pb::RegisteredComponents {
                name: c.name,
                r#type: c.type_name,
                version: c.version,
                capabilities: c.capabilities,
            })
            .collect(),
        extended_metadata: info.extended.into_iter().collect(),
        app_connection_properties: Some(pb::AppConnectionProperties {
            port: app.port.map(i32::from).unwrap_or_default(),
            protocol: app.protocol,
            channel_address: app.channel_address,
            max_concurrency: app
                .max_concurrency
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or_default(),
            health: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_metadata_is_merged_without_overwriting() {
        let mut incoming = MetadataMap::new();
        incoming.insert("user-agent", "grpc-python/1.0".parse().unwrap());
        incoming.insert("grpc-accept-encoding", "gzip".parse().unwrap());
        incoming.insert("dapr-api-token", "secret".parse().unwrap());
        incoming.insert("key", "from-header".parse().unwrap());
        incoming.insert_bin(
            "trace-bin",
            tonic::metadata::MetadataValue::from_bytes(b"\x01"),
        );
        let mut md = HashMap::from([("key".to_owned(), "from-app".to_owned())]);
        merge_request_metadata(&mut md, &incoming, Some("127.0.0.1:50001"));
        assert_eq!(md["key"], "from-app");
        assert_eq!(md["user-agent"], "grpc-python/1.0");
        assert_eq!(md["dapr-grpc-accept-encoding"], "gzip");
        assert_eq!(md["dapr-authority"], "127.0.0.1:50001");
        assert!(!md.contains_key("dapr-api-token"));
        assert!(!md.contains_key("grpc-accept-encoding"));
        assert!(!md.keys().any(|k| k.ends_with("-bin")));
    }

    #[test]
    fn grpc_trace_bin_becomes_a_traceparent() {
        let mut bin = vec![0u8, 0];
        bin.extend_from_slice(&0x0af7651916cd43dd8448eb211c80319cu128.to_be_bytes());
        bin.push(1);
        bin.extend_from_slice(&0xb7ad6b7169203331u64.to_be_bytes());
        bin.extend_from_slice(&[2, 1]);
        let mut incoming = MetadataMap::new();
        incoming.insert_bin(GRPC_TRACE_BIN, MetadataValue::from_bytes(&bin));
        let mut md = HashMap::new();
        merge_request_metadata(&mut md, &incoming, None);
        assert_eq!(
            md[TRACEPARENT],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        // A text traceparent wins.
        incoming.insert(
            TRACEPARENT,
            "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
                .parse()
                .unwrap(),
        );
        let mut md = HashMap::new();
        merge_request_metadata(&mut md, &incoming, None);
        assert!(md[TRACEPARENT].starts_with("00-1af"));
    }

    #[test]
    fn response_headers_skip_what_cannot_be_a_header() {
        let md = HashMap::from([
            ("statusCode".to_owned(), "404".to_owned()),
            ("blob-bin".to_owned(), "x".to_owned()),
            ("text".to_owned(), "caf\u{e9}".to_owned()),
        ]);
        let h = metadata_headers(&md);
        assert_eq!(h.get("metadata.statuscode").unwrap(), "404");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn token_check() {
        assert!(check_token(None, Request::new(())).is_ok());
        let err = check_token(Some("t"), Request::new(())).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.message(), "Unauthorized");
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert(API_TOKEN_KEY, "u".parse().unwrap());
        assert!(check_token(Some("t"), bad).is_err());
        let mut good = Request::new(());
        good.metadata_mut()
            .insert(API_TOKEN_KEY, "t".parse().unwrap());
        assert!(check_token(Some("t"), good).is_ok());
    }
}
