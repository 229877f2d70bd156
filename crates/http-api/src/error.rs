//! The one place that maps failures to HTTP responses in Dapr's error shape.

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

/// A failed API call: status, Dapr `errorCode`, message, and any response metadata to return as
/// `metadata.<key>` headers.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    metadata: HashMap<String, String>,
    /// Answer with `Connection: close`: the request body was not read to its end, so the
    /// connection cannot carry another request.
    close: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            metadata: HashMap::new(),
            close: false,
        }
    }

    /// Close the connection after this answer.
    pub(crate) fn closing(self) -> Self {
        ApiError {
            close: true,
            ..self
        }
    }

    /// 400 `ERR_MALFORMED_REQUEST`.
    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
    }

    /// 500 `ERR_INVOKE_OUTPUT_BINDING` with response metadata.
    pub(crate) fn invoke(message: String, metadata: HashMap<String, String>) -> Self {
        ApiError {
            metadata,
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_INVOKE_OUTPUT_BINDING",
                message,
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errorCode": self.code, "message": self.message });
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        metadata_headers(&mut headers, &self.metadata);
        if self.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        (self.status, headers, body.to_string()).into_response()
    }
}

/// Add one `metadata.<key>` header per response metadata entry. Entries that cannot be a header
/// (a key with spaces, a value with CR/LF) are left out and logged, never sent half-formed.
pub(crate) fn metadata_headers(headers: &mut HeaderMap, metadata: &HashMap<String, String>) {
    // One buffer for every name: HeaderName copies what it keeps.
    let mut name = String::with_capacity(32);
    for (k, v) in metadata {
        name.clear();
        name.push_str("metadata.");
        name.push_str(k);
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_str(v);
        match (name, value) {
            (Ok(n), Ok(v)) => {
                headers.append(n, v);
            }
            _ => {
                tracing::debug!(key = %k, "response metadata entry is not a valid header; not returned as one")
            }
        }
    }
}
