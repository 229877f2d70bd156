//! The Dapr HTTP API routes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bindery_core::InvokeRequest;
use bindery_runtime::Runtime;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;

use crate::error::{ApiError, metadata_headers};
use crate::json::reencode_json;

const TOKEN_HEADER: &str = "dapr-api-token";

/// The Dapr HTTP API for `runtime`.
pub fn router(runtime: Arc<Runtime>) -> Router {
    let api = Router::new()
        .route(
            "/v1.0/bindings/{name}",
            post(invoke_binding).put(invoke_binding),
        )
        .route("/v1.0/metadata", get(get_metadata))
        .route("/v1.0/metadata/{key}", put(put_metadata))
        .route("/v1.0/shutdown", post(shutdown))
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&runtime),
            check_token,
        ));
    Router::new()
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(healthz_outbound))
        .merge(api)
        .with_state(runtime)
}

/// The metrics endpoint: `GET /metrics` in the Prometheus text format.
pub fn metrics_router(runtime: Arc<Runtime>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(rt): State<Arc<Runtime>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    rt.render_metrics(),
                )
            }),
        )
        .with_state(runtime)
}

/// Serve `app` on `listeners` until `shutdown` resolves.
pub async fn serve_router(
    app: Router,
    listeners: Vec<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = broadcast_shutdown(shutdown);
    let servers = listeners.into_iter().map(|l| {
        let app = app.clone();
        let mut stop = stop.clone();
        async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }
    });
    futures::future::try_join_all(servers).await?;
    Ok(())
}

/// Serve the HTTP API on `listeners` until `shutdown` resolves.
pub async fn serve(
    runtime: Arc<Runtime>,
    listeners: Vec<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(router(runtime), listeners, shutdown).await
}

/// Turn one shutdown future into a watch that several servers can wait on.
fn broadcast_shutdown(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    rx
}

/// `DAPR_API_TOKEN`: every route but the two health endpoints needs the `dapr-api-token` header.
async fn check_token(State(rt): State<Arc<Runtime>>, mut req: Request, next: Next) -> Response {
    if let Some(expected) = &rt.options().api_token {
        let given = req.headers().get(TOKEN_HEADER).map(HeaderValue::as_bytes);
        if given != Some(expected.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, "invalid api token").into_response();
        }
        req.headers_mut().remove(TOKEN_HEADER);
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct OutputBindingRequest {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    operation: Option<String>,
}

async fn read_body(rt: &Runtime, body: Body) -> Result<Bytes, ApiError> {
    let limit = rt.options().max_body_size;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::malformed(format!(
            "failed deserializing HTTP body: request body is larger than the limit of {limit} bytes (--max-body-size)"
        ))),
        Err(e) => Err(ApiError::malformed(format!(
            "failed reading HTTP body: {e}"
        ))),
    }
}

async fn invoke_binding(
    State(rt): State<Arc<Runtime>>,
    name: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // A name that is not UTF-8 once decoded names no binding: answer as for any unknown name,
    // in Dapr's error shape, not with the router's plain-text rejection.
    let name = match name {
        Ok(Path(name)) => name,
        Err(_) => {
            let name = lossy_binding_name(uri.path());
            return Err(ApiError::invoke(
                format!(
                    "error invoking output binding {name}: couldn't find output binding {name}"
                ),
                HashMap::new(),
            ));
        }
    };
    let bytes = read_body(&rt, body).await?;
    let req: OutputBindingRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("failed deserializing HTTP body: {e}")))?;
    let data = match &req.data {
        Some(v) => reencode_json(v),
        None => "null".to_owned(),
    };
    let mut metadata = req.metadata.unwrap_or_default();
    for key in ["traceparent", "tracestate", "baggage"] {
        if let Some(v) = headers.get(key).and_then(|v| v.to_str().ok()) {
            metadata
                .entry(key.to_owned())
                .or_insert_with(|| v.to_owned());
        }
    }
    let request = InvokeRequest {
        operation: req.operation.unwrap_or_default(),
        data: Bytes::from(data),
        metadata,
    };
    match rt.invoke_output(&name, request).await {
        Ok(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Some(resp)) => {
            let mut out = HeaderMap::new();
            out.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            metadata_headers(&mut out, &resp.metadata);
            Ok((StatusCode::OK, out, resp.data).into_response())
        }
        Err(e) => Err(ApiError::invoke(e.message, e.metadata)),
    }
}

/// The `{name}` segment of a bindings path, percent-decoded, invalid UTF-8 replaced.
fn lossy_binding_name(path: &str) -> String {
    let segment = path.rsplit('/').next().unwrap_or_default().as_bytes();
    let mut out = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < segment.len() {
        let hex = segment
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (segment[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
struct HealthQuery {
    appid: Option<String>,
}

async fn healthz(State(rt): State<Arc<Runtime>>, Query(q): Query<HealthQuery>) -> Response {
    if let Some(id) = q.appid
        && id != rt.options().app_id
    {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            "dapr app-id does not match",
        )
        .into_response();
    }
    match rt.health() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(why) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            format!("dapr is not ready: {why}"),
        )
        .into_response(),
    }
}

async fn healthz_outbound(State(rt): State<Arc<Runtime>>) -> Response {
    if rt.outbound_ready() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_OUTBOUND_HEALTH_NOT_READY",
            "dapr outbound is not ready",
        )
        .into_response()
    }
}

async fn get_metadata(State(rt): State<Arc<Runtime>>) -> Response {
    let body = serde_json::to_vec(&rt.metadata()).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn put_metadata(
    State(rt): State<Arc<Runtime>>,
    Path(key): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&rt, body).await?;
    let value = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::malformed("metadata value is not valid UTF-8"))?;
    rt.set_extended(key, value);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn shutdown(State(rt): State<Arc<Runtime>>) -> Response {
    tracing::info!("shutdown requested through the API");
    rt.request_shutdown();
    StatusCode::NO_CONTENT.into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_NOT_FOUND",
        format!(
            "{} {} is not a bindery API route",
            req.method(),
            req.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_names_decode_lossily() {
        assert_eq!(lossy_binding_name("/v1.0/bindings/a%FFb"), "a\u{FFFD}b");
        assert_eq!(lossy_binding_name("/v1.0/bindings/%C3%A9%zz%4"), "é%zz%4");
    }
}
