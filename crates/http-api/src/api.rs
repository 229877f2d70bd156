//! The Dapr HTTP API routes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use bindery_core::InvokeRequest;
use bindery_runtime::{OutputCaller, Runtime, TapEvent};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ApiError, metadata_headers};
use crate::json::Data;

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
        .route("/v1.0-alpha1/bindery/tap/{name}", get(tap))
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
            // Answers are small and written at once: send them without waiting for an ACK.
            let l = l.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
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
    let stop = broadcast_shutdown(shutdown);
    let mut stopped = stop.clone();
    // Open-ended answers (tap streams) end when the server stops, so they do not hold it up.
    let app = router(runtime).layer(Extension(stop));
    serve_router(app, listeners, async move {
        let _ = stopped.wait_for(|s| *s).await;
    })
    .await
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
struct OutputBindingRequest<'a> {
    #[serde(default, borrow)]
    data: Option<Data<'a>>,
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
        ))
        .closing()),
        Err(e) => Err(ApiError::malformed(format!(
            "failed reading HTTP body: {e}"
        ))),
    }
}

/// Decode the body of `POST /v1.0/bindings/{name}`: `{data, metadata, operation}`, with `data`
/// re-encoded as compact JSON text (a missing `data` is `null`). `Err` is the message of a
/// 400 `ERR_MALFORMED_REQUEST`.
///
/// ```
/// let r = bindery_http::decode_output_request(br#"{"operation":"create","data":{"b":1,"a":2}}"#).unwrap();
/// assert_eq!(r.operation, "create");
/// assert_eq!(&r.data[..], br#"{"a":2,"b":1}"#);
/// assert!(bindery_http::decode_output_request(b"{").is_err());
/// ```
pub fn decode_output_request(body: &[u8]) -> Result<InvokeRequest, String> {
    let req: OutputBindingRequest<'_> =
        serde_json::from_slice(body).map_err(|e| format!("failed deserializing HTTP body: {e}"))?;
    let data = match req.data {
        Some(mut data) => data.encode(body.len()),
        None => Bytes::from_static(b"null"),
    };
    Ok(InvokeRequest {
        operation: req.operation.unwrap_or_default(),
        data,
        metadata: req.metadata.unwrap_or_default(),
    })
}

async fn invoke_binding(
    State(rt): State<Arc<Runtime>>,
    name: Result<Path<String>, PathRejection>,
    // The request itself rather than its URI and headers as extractors, which would copy them.
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    // A name that is not UTF-8 once decoded names no binding: answer as for any unknown name,
    // in Dapr's error shape, not with the router's plain-text rejection.
    let name = match name {
        Ok(Path(name)) => name,
        Err(_) => {
            let name = lossy_binding_name(parts.uri.path());
            return Err(ApiError::invoke(
                format!(
                    "error invoking output binding {name}: couldn't find output binding {name}"
                ),
                HashMap::new(),
            ));
        }
    };
    let bytes = read_body(&rt, body).await?;
    let mut request = decode_output_request(&bytes).map_err(ApiError::malformed)?;
    for key in ["traceparent", "tracestate", "baggage"] {
        if let Some(v) = parts.headers.get(key).and_then(|v| v.to_str().ok()) {
            request
                .metadata
                .entry(key.to_owned())
                .or_insert_with(|| v.to_owned());
        }
    }
    match rt
        .invoke_output_from(OutputCaller::Http, &name, request)
        .await
    {
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

/// `GET /v1.0-alpha1/bindery/tap/{name}`: a copy of every event input binding `name` delivers
/// from now on, with its outcome, as newline-delimited JSON; the app still gets every event.
/// A listener that falls behind gets a `{"lagged": n}` line for the `n` events it missed.
async fn tap(
    State(rt): State<Arc<Runtime>>,
    Path(name): Path<String>,
    stop: Option<Extension<tokio::sync::watch::Receiver<bool>>>,
) -> Result<Response, ApiError> {
    let Some(events) = rt.tap(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_INPUT_BINDING_NOT_FOUND",
            format!("couldn't find input binding {name}"),
        ));
    };
    let stop = stop.map(|Extension(s)| s);
    let lines = futures::stream::unfold((events, stop), |(mut events, mut stop)| async move {
        let stopped = async {
            match &mut stop {
                Some(s) => {
                    let _ = s.wait_for(|stopped| *stopped).await;
                }
                None => std::future::pending().await,
            }
        };
        let line = tokio::select! {
            received = events.recv() => match received {
                Ok(event) => tap_line(&event),
                Err(RecvError::Lagged(n)) => Bytes::from(format!("{{\"lagged\":{n}}}\n")),
                Err(RecvError::Closed) => return None,
            },
            () = stopped => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(line), (events, stop)))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

/// One tap line: `binding`, `metadata`, `outcome` and `data`, as UTF-8 text when it is, else
/// base64 with `"dataBase64": true`.
fn tap_line(event: &TapEvent) -> Bytes {
    let mut line = serde_json::json!({
        "binding": event.binding,
        "metadata": event.metadata,
        "outcome": event.outcome,
    });
    match std::str::from_utf8(&event.data) {
        Ok(text) => line["data"] = text.into(),
        Err(_) => {
            line["data"] = BASE64_STANDARD.encode(&event.data).into();
            line["dataBase64"] = true.into();
        }
    }
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    Bytes::from(bytes)
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
    fn tap_lines_carry_text_or_base64() {
        let event = |data: &'static [u8]| TapEvent {
            binding: "tick".into(),
            metadata: HashMap::from([("k".to_owned(), "v".to_owned())]),
            data: Bytes::from_static(data),
            outcome: "accepted".into(),
        };
        let text: serde_json::Value = serde_json::from_slice(&tap_line(&event(b"hi"))).unwrap();
        assert_eq!(
            text,
            serde_json::json!({"binding": "tick", "metadata": {"k": "v"}, "outcome": "accepted", "data": "hi"})
        );
        let line = tap_line(&event(&[0xff, 0x00]));
        assert!(line.ends_with(b"\n"));
        let binary: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(binary["data"], "/wA=");
        assert_eq!(binary["dataBase64"], true);
    }

    #[test]
    fn binding_names_decode_lossily() {
        assert_eq!(lossy_binding_name("/v1.0/bindings/a%FFb"), "a\u{FFFD}b");
        assert_eq!(lossy_binding_name("/v1.0/bindings/%C3%A9%zz%4"), "é%zz%4");
    }
}
