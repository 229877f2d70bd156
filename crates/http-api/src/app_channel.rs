//! The HTTP app channel: `OPTIONS /<route>` to ask whether the app subscribes, `POST /<route>`
//! per event, over one pool of keep-alive connections.

use std::time::Duration;

use bindery_core::InputEvent;
use bindery_runtime::app::{AppChannel, AppReply};
use bindery_runtime::resiliency::Code;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Delivers input events to an HTTP app.
#[derive(Debug, Clone)]
pub struct HttpAppChannel {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    app_api_token: Option<HeaderValue>,
    max_body_size: usize,
}

/// Headers that describe the connection or the body, never copied from event metadata.
const SKIPPED: &[&str] = &[
    "content-type",
    "content-length",
    "destination-app-id",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "dapr-api-token",
    "traceparent",
    "tracestate",
];

impl HttpAppChannel {
    /// A channel to the app at `address:port` (e.g. `127.0.0.1:3000`). `app_api_token` is sent
    /// as `dapr-api-token` on every call; app answers are read up to `max_body_size` bytes.
    pub fn new(
        address: &str,
        port: u16,
        app_api_token: Option<&str>,
        max_body_size: usize,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(15)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let host = if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        HttpAppChannel {
            client,
            base: format!("http://{host}:{port}"),
            app_api_token: app_api_token.and_then(|t| HeaderValue::from_str(t).ok()),
            max_body_size,
        }
    }

    fn request(&self, method: Method, route: &str) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, route));
        if let Some(token) = &self.app_api_token {
            b = b.header("dapr-api-token", token.clone());
        }
        b
    }
}

#[bindery_core::async_trait]
impl AppChannel for HttpAppChannel {
    async fn subscribed(&self, _binding: &str, route: &str) -> Result<bool, String> {
        let req = self
            .request(Method::OPTIONS, route)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("invalid probe request for route {route:?}: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("could not invoke OPTIONS method on input binding subscription endpoint {route:?}: {e}"))?;
        let status = resp.status();
        // Drain so the connection goes back to the pool.
        let _ = Limited::new(resp.into_body(), 64 * 1024).collect().await;
        Ok(status_subscribes(status))
    }

    async fn healthy(&self, path: &str) -> Result<(), String> {
        let req = self
            .request(Method::GET, path)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("invalid health check path {path:?}: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("app health check failed: {e}"))?;
        let status = resp.status();
        let _ = Limited::new(resp.into_body(), 64 * 1024).collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("app health check answered {status}"))
        }
    }

    async fn deliver(&self, binding: &str, route: &str, event: &InputEvent) -> AppReply {
        let mut builder = self.request(Method::POST, route).header(
            header::CONTENT_TYPE,
            event.content_type.as_deref().unwrap_or("application/json"),
        );
        if let Some(headers) = builder.headers_mut() {
            for (k, v) in &event.metadata {
                if let Some((name, value)) = metadata_header(k, v) {
                    headers.append(name, value);
                }
            }
            let traceparent = event
                .metadata
                .get("traceparent")
                .filter(|t| valid_traceparent(t))
                .cloned()
                .unwrap_or_else(new_traceparent);
            if let Ok(v) = HeaderValue::from_str(&traceparent) {
                headers.insert("traceparent", v);
            }
            if let Some(ts) = bindery_runtime::trace::get_ignore_case(&event.metadata, "tracestate")
                && let Ok(v) = HeaderValue::from_str(ts)
            {
                headers.insert("tracestate", v);
            }
        }
        let req = match builder.body(Full::new(event.data.clone())) {
            Ok(r) => r,
            Err(e) => {
                return AppReply::Failed {
                    reason: format!("cannot build the request for binding {binding}: {e}"),
                    code: None,
                };
            }
        };
        let resp = match self.client.request(req).await {
            Ok(r) => r,
            Err(e) => {
                return AppReply::Failed {
                    reason: format!("error invoking app: {e}"),
                    code: None,
                };
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match Limited::new(resp.into_body(), self.max_body_size)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return AppReply::Failed {
                    reason: format!("error reading the app's answer: {e}"),
                    code: None,
                };
            }
        };
        interpret(status, retry_after, &body)
    }
}

/// The rule of the original bindings overview: anything but 404 means "subscribed".
fn status_subscribes(status: StatusCode) -> bool {
    status != StatusCode::NOT_FOUND
}

/// Map the app's answer to an outcome: 2xx accepts unless the body says `RETRY` or `DROP`;
/// 429 and 503 ask for a retry (after `Retry-After`); anything else failed.
fn interpret(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> AppReply {
    if status.is_success() {
        return match explicit_status(body) {
            Some(s) if s.eq_ignore_ascii_case("DROP") => AppReply::Drop,
            Some(s) if s.eq_ignore_ascii_case("RETRY") => AppReply::Retry {
                reason: "app answered RETRY".into(),
                after: retry_after,
            },
            _ => AppReply::Accepted { fan_out: None },
        };
    }
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    let reason = format!(
        "fails to send binding event to http app channel, status code: {} body: {excerpt}",
        status.as_u16()
    );
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        AppReply::Retry {
            reason,
            after: retry_after,
        }
    } else {
        AppReply::Failed {
            reason,
            code: Some(Code::Http(status.as_u16())),
        }
    }
}

/// The `status` of a `{"status": "..."}` answer, when the body is such an object.
fn explicit_status(body: &[u8]) -> Option<String> {
    let trimmed = body.trim_ascii_start();
    if !trimmed.starts_with(b"{") || body.len() > 64 * 1024 {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Explicit {
        status: String,
    }
    serde_json::from_slice::<Explicit>(body)
        .ok()
        .map(|e| e.status)
}

/// The header an event metadata entry becomes, or `None` when it must not be sent.
fn metadata_header(key: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let lower = key.to_ascii_lowercase();
    if SKIPPED.contains(&lower.as_str()) || lower.ends_with("-bin") {
        return None;
    }
    let name = if lower.starts_with("grpc-") || lower.starts_with(':') {
        format!("dapr-{}", lower.trim_start_matches(':'))
    } else {
        lower
    };
    let name = HeaderName::try_from(name).ok()?;
    // from_str refuses CR, LF and other control characters: no header injection.
    let value = HeaderValue::from_str(value).ok()?;
    Some((name, value))
}

fn valid_traceparent(t: &str) -> bool {
    bindery_runtime::trace::TraceContext::parse(t).is_some()
}

fn new_traceparent() -> String {
    let trace: u128 = rand::random::<u128>() | 1;
    let span: u64 = rand::random::<u64>() | 1;
    format!("00-{trace:032x}-{span:016x}-01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_rule_is_anything_but_404() {
        assert!(status_subscribes(StatusCode::OK));
        assert!(status_subscribes(StatusCode::METHOD_NOT_ALLOWED));
        assert!(status_subscribes(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!status_subscribes(StatusCode::NOT_FOUND));
    }

    #[test]
    fn answers_map_to_replies() {
        assert_eq!(
            interpret(StatusCode::OK, None, b""),
            AppReply::Accepted { fan_out: None }
        );
        assert_eq!(
            interpret(StatusCode::NO_CONTENT, None, b""),
            AppReply::Accepted { fan_out: None }
        );
        assert_eq!(
            interpret(StatusCode::OK, None, br#"{"status":"DROP"}"#),
            AppReply::Drop
        );
        assert!(matches!(
            interpret(StatusCode::OK, None, br#"{"status":"retry"}"#),
            AppReply::Retry { .. }
        ));
        assert_eq!(
            interpret(StatusCode::OK, None, br#"{"status":"SUCCESS"}"#),
            AppReply::Accepted { fan_out: None }
        );
        assert_eq!(
            interpret(StatusCode::OK, None, br#"{"other":1}"#),
            AppReply::Accepted { fan_out: None }
        );
        assert!(matches!(
            interpret(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(3)), b""),
            AppReply::Retry { after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(
            matches!(interpret(StatusCode::INTERNAL_SERVER_ERROR, None, b"boom"), AppReply::Failed { reason, .. } if reason.contains("500") && reason.contains("boom"))
        );
    }

    #[test]
    fn metadata_headers_are_filtered() {
        assert!(metadata_header("Content-Type", "x").is_none());
        assert!(metadata_header("trace-bin", "x").is_none());
        assert!(metadata_header("evil", "a\r\nInjected: yes").is_none());
        assert_eq!(
            metadata_header("grpc-status", "0").unwrap().0.as_str(),
            "dapr-grpc-status"
        );
        assert_eq!(
            metadata_header("readTimeUTC", "x").unwrap().0.as_str(),
            "readtimeutc"
        );
    }

    #[test]
    fn traceparents() {
        assert!(valid_traceparent(&new_traceparent()));
        assert!(!valid_traceparent(
            "00-00000000000000000000000000000000-0000000000000001-01"
        ));
        assert!(!valid_traceparent("garbage"));
    }
}
