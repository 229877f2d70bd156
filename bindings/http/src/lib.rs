//! `bindings.http`: an output binding that calls an HTTP endpoint.
//!
//! Component metadata:
//!
//! | name | default | |
//! |---|---|---|
//! | `url` | required | the base URL, `http://` or `https://` |
//! | `responseTimeout` | none | a Go duration (`10s`) for the whole call, body included; `0` means none |
//! | `maxResponseBodySize` | `100Mi` | longer bodies are truncated; a value ≤ 0 means no limit |
//! | `MTLSRootCA` | | PEM text or a file path; when set, it is the only trusted root |
//! | `MTLSClientCert`, `MTLSClientKey` | | PEM text or file paths; set both or neither |
//! | `MTLSRenegotiation` | | `RenegotiateNever`, `RenegotiateOnceAsClient`, `RenegotiateFreelyAsClient` (accepted; see below) |
//! | `securityToken` | | a credential sent on every call in the header `securityTokenHeader` |
//! | `securityTokenHeader` | | the header name for `securityToken` |
//! | `errorIfNot2XX` | `true` | a non-2xx answer is an error (its metadata is still returned) |
//!
//! Operations `create` (= `POST`), `get`, `head`, `post`, `put`, `patch`, `delete`, `options`,
//! `trace`: the HTTP method is the upper-cased operation. Only `POST`, `PUT` and `PATCH` carry
//! the request data as body.
//!
//! Request metadata:
//!
//! * `path` is appended to `url`, joined with exactly one `/`;
//! * `errorIfNot2XX` overrides the component setting for one call;
//! * every key that starts with an ASCII upper-case letter is sent as a header (`Content-Type`,
//!   `Authorization`, `X-Request-Id`); a value holding CR or LF is refused;
//! * `traceparent`, `tracestate` and `baggage` are forwarded as headers;
//! * `Content-Type: application/json; charset=utf-8` (when there is a body) and
//!   `Accept: application/json; charset=utf-8` are sent unless the metadata sets them.
//!
//! The response data is the response body; the response metadata holds `statusCode` (`404`),
//! `status` (`404 Not Found`) and every response header under its canonical name
//! (`Content-Type`), several values joined with `, `.
//!
//! Differences from Dapr, all deliberate:
//!
//! * configuration mistakes that Dapr ignores are refused when the component loads:
//!   `MTLSClientCert` without `MTLSClientKey` (or the reverse), `securityToken` without
//!   `securityTokenHeader`, a header name that is not valid, a `url` that is not http(s);
//! * a request `errorIfNot2XX` that is not a boolean is refused instead of read as false;
//! * TLS is rustls, which never renegotiates: `MTLSRenegotiation` is accepted, and a value
//!   other than `RenegotiateNever` logs a warning at start;
//! * `securityToken` never appears in errors or logs.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_http::register(&mut registry);
//! let factory = registry.get("bindings.http").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("url", "http://localhost:3000/api")]);
//! assert!(factory.validate(&md).is_ok());
//! assert!(factory.spec().is_sensitive("securityToken"));
//! ```

mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InvokeRequest,
    InvokeResponse, Metadata, MetadataField, OutputBinding, Registry, async_trait, parse_truthy,
};
use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tracing::{debug, warn};

use crate::config::{HttpConfig, Renegotiation};

/// The default `Content-Type` of a request with a body, and the default `Accept`.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Response metadata key holding the numeric status code.
pub const STATUS_CODE_KEY: &str = "statusCode";
/// Response metadata key holding the status line, e.g. `404 Not Found`.
pub const STATUS_KEY: &str = "status";

/// Dapr's dialer and TLS handshake timeout.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

const OPERATIONS: &[&str] = &[
    "create", "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

static METADATA: &[MetadataField] = &[
    MetadataField::required("url", "the base URL of the HTTP endpoint to invoke"),
    MetadataField::optional(
        "responseTimeout",
        "how long a call may take, body included (Go duration)",
    ),
    MetadataField::optional(
        "maxResponseBodySize",
        "the most response body to read; longer bodies are truncated; <= 0 means no limit",
    )
    .default("100Mi"),
    MetadataField::optional(
        "MTLSRootCA",
        "root CA for the server certificate: PEM text or a file path",
    )
    .sensitive(),
    MetadataField::optional(
        "MTLSClientCert",
        "client certificate for mTLS: PEM text or a file path",
    )
    .sensitive(),
    MetadataField::optional(
        "MTLSClientKey",
        "client private key for mTLS: PEM text or a file path",
    )
    .sensitive(),
    MetadataField::optional(
        "MTLSRenegotiation",
        "RenegotiateNever, RenegotiateOnceAsClient or RenegotiateFreelyAsClient",
    ),
    MetadataField::optional(
        "securityToken",
        "a token sent in the header securityTokenHeader on every call",
    )
    .sensitive(),
    MetadataField::optional("securityTokenHeader", "the header name for securityToken"),
    MetadataField::optional("errorIfNot2XX", "whether a non-2xx status is an error")
        .default("true"),
];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.http",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Calls an HTTP endpoint with the request's data, metadata headers and verb",
};

/// Add `bindings.http` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(HttpFactory);
}

/// Builds `bindings.http` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFactory;

#[async_trait]
impl BindingFactory for HttpFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        HttpConfig::parse(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let config = HttpConfig::parse(&ctx.metadata).map_err(join_errors)?;
        let client = build_client(&config).await?;
        if matches!(
            config.renegotiation,
            Some(Renegotiation::OnceAsClient | Renegotiation::FreelyAsClient)
        ) {
            warn!(binding = %ctx.name, "MTLSRenegotiation is set, but TLS renegotiation is not supported; servers that require it will fail the handshake");
        }
        ctx.health.connected();
        Ok(Box::new(HttpBinding {
            name: ctx.name.clone(),
            base: PlainBase::parse(&config.url),
            config: Arc::new(config),
            client,
            closed: AtomicBool::new(false),
        }))
    }
}

/// Fold configuration problems into one error for the build phase.
fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors
        .first()
        .and_then(|e| e.field())
        .unwrap_or("url")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

/// One client per component instance, so connections are reused across calls.
async fn build_client(config: &HttpConfig) -> Result<reqwest::Client, BindingError> {
    // reqwest panics when no rustls crypto provider is installed; the binary installs one at
    // start, and a missing one must be an error, not a crash.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(BindingError::internal(
            "no TLS crypto provider is installed in this process",
        ));
    }
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tls_version_min(reqwest::tls::Version::TLS_1_2);
    if let Some(ca) = &config.root_ca {
        let pem = ca.load("MTLSRootCA").await?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                BindingError::config("MTLSRootCA", "failed to add root certificate to certpool")
            })?;
        // As Dapr: a configured root CA is the only trusted one.
        builder = builder.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&config.client_cert, &config.client_key) {
        let mut pem = cert.load("MTLSClientCert").await?;
        pem.push(b'\n');
        pem.extend_from_slice(&key.load("MTLSClientKey").await?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            BindingError::config(
                "MTLSClientCert",
                format!("failed to load client certificate: {}", error_chain(&e)),
            )
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| {
        BindingError::config(
            "url",
            format!("failed to create HTTP client: {}", error_chain(&e)),
        )
    })
}

/// A running `bindings.http` component.
struct HttpBinding {
    name: String,
    /// `url` parsed once, when plain enough to take a `path` without parsing again.
    base: Option<PlainBase>,
    config: Arc<HttpConfig>,
    client: reqwest::Client,
    closed: AtomicBool,
}

#[async_trait]
impl OutputBinding for HttpBinding {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        let method = method_for(&req.operation)?;
        let path = req.metadata.get("path").map(String::as_str);
        // The URL as messages and logs show it, worked out only when one needs it.
        let shown_url = || redact_url(&join_path(&self.config.url, path));
        let parsed = match self.base.as_ref().and_then(|b| b.join(path)) {
            Some(url) => url,
            None => Url::parse(&join_path(&self.config.url, path)).map_err(|e| {
                BindingError::invalid_request(format!("invalid url {}: {e}", shown_url()))
            })?,
        };
        let error_if_not_2xx = match req.metadata.get("errorIfNot2XX").map(|v| v.trim()) {
            None | Some("") => self.config.error_if_not_2xx,
            Some(v) => parse_truthy(v).ok_or_else(|| {
                BindingError::invalid_request(format!(
                    "invalid value for request metadata errorIfNot2XX: {v:?} is not a boolean"
                ))
            })?,
        };
        let has_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        let headers = self.request_headers(&req.metadata, has_body)?;

        let mut request = self.client.request(method.clone(), parsed).headers(headers);
        if has_body {
            request = request.body(req.data);
        }
        if let Some(timeout) = self.config.response_timeout {
            request = request.timeout(timeout);
        }
        debug!(binding = %self.name, method = %method, url = %shown_url(), "calling HTTP endpoint");
        let response = request
            .send()
            .await
            .map_err(|e| map_send_error(e, &method, &shown_url()))?;

        let status = response.status();
        let mut metadata = response_metadata(&response);
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let data = read_body(response, self.config.max_response_body_size)
            .await
            .map_err(|e| map_send_error(e, &method, &shown_url()))?;
        debug!(binding = %self.name, method = %method, url = %shown_url(), status = status.as_u16(), bytes = data.len(), "HTTP endpoint answered");

        if error_if_not_2xx && !status.is_success() {
            return Err(BindingError::rejected(format!(
                "received status code {}",
                status.as_u16()
            ))
            .with_metadata(std::mem::take(&mut metadata)));
        }
        Ok(Some(InvokeResponse {
            data,
            metadata,
            content_type,
        }))
    }
    async fn close(&self) -> Result<(), BindingError> {
        // Idle pooled connections go when the client is dropped with the binding.
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

impl HttpBinding {
    /// The headers of one call: defaults, the security token, metadata headers, trace context.
    fn request_headers(
        &self,
        md: &HashMap<String, String>,
        has_body: bool,
    ) -> Result<HeaderMap, BindingError> {
        let mut headers = HeaderMap::new();
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        }
        headers.insert(ACCEPT, HeaderValue::from_static(JSON_UTF8));
        if let Some((name, value)) = &self.config.security_token {
            headers.insert(name.clone(), value.clone());
        }
        // Sorted, so that two keys naming the same header (`X-A`, `X-a`) resolve the same way
        // on every call.
        let mut keys: Vec<&String> = md
            .keys()
            .filter(|k| k.as_bytes().first().is_some_and(u8::is_ascii_uppercase))
            .collect();
        keys.sort();
        for key in keys {
            let (name, value) = header_pair(key, &md[key])?;
            headers.insert(name, value);
        }
        for key in ["traceparent", "tracestate", "baggage"] {
            let Some(v) = md.get(key).filter(|v| !v.is_empty()) else {
                continue;
            };
            let (name, value) = header_pair(key, v)?;
            if headers.contains_key(&name) {
                warn!(binding = %self.name, header = key, "a {key} header in the request metadata is replaced by the trace context");
            }
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

/// A header from request metadata `key: value`, refusing what would corrupt the request.
fn header_pair(key: &str, value: &str) -> Result<(HeaderName, HeaderValue), BindingError> {
    if value.contains(['\r', '\n']) {
        return Err(BindingError::invalid_request(format!(
            "invalid value for header {key:?} in request metadata: it contains CR or LF"
        )));
    }
    let name = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
        BindingError::invalid_request(format!("invalid header name {key:?} in request metadata"))
    })?;
    let value = HeaderValue::from_str(value).map_err(|_| {
        // The value may be a credential (Authorization): name the key only.
        BindingError::invalid_request(format!(
            "invalid value for header {key:?} in request metadata: it contains characters not allowed in a header"
        ))
    })?;
    Ok((name, value))
}

/// The HTTP method for an operation: its upper-cased name, `create` being `POST`.
fn method_for(operation: &str) -> Result<Method, BindingError> {
    Ok(match operation.to_ascii_lowercase().as_str() {
        "create" | "post" => Method::POST,
        "get" => Method::GET,
        "head" => Method::HEAD,
        "put" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" => Method::DELETE,
        "options" => Method::OPTIONS,
        "trace" => Method::TRACE,
        _ => {
            return Err(BindingError::unsupported(format!(
                "invalid operation: {operation}"
            )));
        }
    })
}

/// The component's `url`, parsed at start, when it has no query or fragment: a call's `path`
/// made of plain characters then only replaces its path, which gives the same URL as parsing
/// [`join_path`]'s text (checked in the tests) without parsing the scheme and host again.
struct PlainBase(Url);

impl PlainBase {
    fn parse(url: &str) -> Option<Self> {
        let parsed = Url::parse(url).ok()?;
        (parsed.query().is_none() && parsed.fragment().is_none() && !parsed.cannot_be_a_base())
            .then_some(PlainBase(parsed))
    }

    /// The URL of a call with `path`, or `None` when `path` needs the full parse: anything
    /// beyond unreserved characters and `/`, or a `.`/`..` segment.
    fn join(&self, path: Option<&str>) -> Option<Url> {
        let Some(p) = path.filter(|p| !p.is_empty()) else {
            return Some(self.0.clone());
        };
        let plain = p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
            && !p
                .split('/')
                .any(|segment| segment == "." || segment == "..");
        if !plain {
            return None;
        }
        let mut url = self.0.clone();
        let joined = format!(
            "{}/{}",
            url.path().trim_end_matches('/'),
            p.trim_start_matches('/')
        );
        url.set_path(&joined);
        Some(url)
    }
}

/// `base` and `path` joined with exactly one `/`; `base` alone when `path` is absent or empty.
fn join_path(base: &str, path: Option<&str>) -> String {
    match path.filter(|p| !p.is_empty()) {
        None => base.to_owned(),
        Some(p) => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            p.trim_start_matches('/')
        ),
    }
}

/// `statusCode`, `status` and every response header under its canonical name.
fn response_metadata(response: &reqwest::Response) -> HashMap<String, String> {
    let status = response.status();
    let mut md = HashMap::with_capacity(response.headers().keys_len() + 2);
    md.insert(STATUS_CODE_KEY.to_owned(), status.as_u16().to_string());
    // Go's Response.Status: the code and the server's reason phrase.
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok().map(str::to_owned))
        .or_else(|| status.canonical_reason().map(str::to_owned));
    let status_line = match reason {
        Some(r) if !r.is_empty() => format!("{} {r}", status.as_u16()),
        _ => status.as_u16().to_string(),
    };
    md.insert(STATUS_KEY.to_owned(), status_line);
    for name in response.headers().keys() {
        // Most headers have one value: build the joined text in place, no list in between.
        let mut joined = String::new();
        for (i, v) in response.headers().get_all(name).iter().enumerate() {
            if i > 0 {
                joined.push_str(", ");
            }
            joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        md.insert(canonical_header_key(name.as_str()), joined);
    }
    md
}

/// Read at most `limit` bytes of the body; the rest is dropped unread (Dapr's truncation).
async fn read_body(
    mut response: reqwest::Response,
    limit: Option<u64>,
) -> Result<Bytes, reqwest::Error> {
    let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .map(|n| limit.map_or(n, |l| n.min(l)))
        .unwrap_or(0);
    // Cap the up-front allocation; a lying Content-Length must not reserve gigabytes.
    let mut body = BytesMut::with_capacity(hint.min(1 << 20));
    while let Some(chunk) = response.chunk().await? {
        match limit {
            Some(limit) if body.len() + chunk.len() >= limit => {
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            _ => body.extend_from_slice(&chunk),
        }
    }
    Ok(body.freeze())
}

/// Map a transport failure to the binding error kinds. The message names the method and the
/// URL (credentials in it removed) and the cause; headers (and so the token) never appear.
fn map_send_error(err: reqwest::Error, method: &Method, url: &str) -> BindingError {
    let timeout = err.is_timeout();
    let connect = err.is_connect();
    let builder = err.is_builder();
    let redirect = err.is_redirect();
    let reason = error_chain(&err.without_url());
    let message = format!("{method} \"{url}\": {reason}");
    if timeout {
        BindingError::timeout(message)
    } else if builder {
        BindingError::invalid_request(message)
    } else if redirect {
        BindingError::rejected(message)
    } else if connect {
        BindingError::unavailable(message)
    } else {
        // The connection broke while sending or reading: the endpoint may be back later.
        BindingError::unavailable(message)
    }
}

/// An error and its sources, joined with `: `, without repeating a cause that the previous
/// message already contains.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Go's `http.CanonicalHeaderKey`: `content-type` → `Content-Type`. A name with bytes outside
/// the token set is returned unchanged, as Go does.
pub(crate) fn canonical_header_key(name: &str) -> String {
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(is_token) {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `url` without the password of its user info, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // set_password only fails for URLs that cannot have one, and this one has one.
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparseable: keep only the part before any `@`, which is where user info would end.
        Err(_) => match url.rfind('@') {
            Some(at) => match url.find("://") {
                Some(scheme_end) if scheme_end < at => {
                    format!("{}://redacted@{}", &url[..scheme_end], &url[at + 1..])
                }
                _ => url.to_owned(),
            },
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
