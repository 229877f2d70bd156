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
//! Redirects are followed as Go's client follows them (at most ten; `301`/`302`/`303` turn a
//! call other than `GET`/`HEAD` into a `GET` without body; credentials are not sent on to
//! another origin), and user info in `url` is sent as `Authorization: Basic`.
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

mod client;
mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InvokeRequest,
    InvokeResponse, Metadata, MetadataField, OutputBinding, Registry, async_trait, parse_truthy,
};
use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION,
    PROXY_AUTHORIZATION, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use tracing::{debug, warn};
use url::Url;

use crate::client::{HttpClient, Target, basic_auth, build_client};
use crate::config::{HttpConfig, Renegotiation};

/// The default `Content-Type` of a request with a body, and the default `Accept`.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Response metadata key holding the numeric status code.
pub const STATUS_CODE_KEY: &str = "statusCode";
/// Response metadata key holding the status line, e.g. `404 Not Found`.
pub const STATUS_KEY: &str = "status";

/// Redirects followed for one call, as Go's client does.
const MAX_REDIRECTS: usize = 10;

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
        // `parse` checked the URL; a failure here is reported on the first call.
        let url = Url::parse(&config.url).ok();
        let target = url.as_ref().and_then(|u| Target::from_url(u).ok());
        ctx.health.connected();
        Ok(Box::new(HttpBinding {
            name: ctx.name.clone(),
            base: url.as_ref().and_then(PlainBase::new),
            auth: url.as_ref().and_then(basic_auth),
            target,
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

/// A running `bindings.http` component.
struct HttpBinding {
    name: String,
    /// `url` parsed once, when plain enough to take a `path` without parsing again.
    base: Option<PlainBase>,
    /// The target of a call without `path`.
    target: Option<Target>,
    /// `Authorization` for the user info of `url`.
    auth: Option<HeaderValue>,
    config: Arc<HttpConfig>,
    client: HttpClient,
    closed: AtomicBool,
}

/// Why a call failed after it was built.
enum CallError {
    /// The connection could not be made, or broke.
    Transport(Box<dyn std::error::Error + Send + Sync>),
    /// `responseTimeout` ran out.
    Timeout(Duration),
    /// A redirect that is not followed: too many, or to something that is not http(s).
    Redirect(String),
    /// A refusal of the binding itself (a header it cannot send).
    Binding(BindingError),
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
        let (target, auth) = self.target_of(path).map_err(|e| {
            BindingError::invalid_request(format!("invalid url {}: {e}", shown_url()))
        })?;
        let error_if_not_2xx = match req.metadata.get("errorIfNot2XX").map(|v| v.trim()) {
            None | Some("") => self.config.error_if_not_2xx,
            Some(v) => parse_truthy(v).ok_or_else(|| {
                BindingError::invalid_request(format!(
                    "invalid value for request metadata errorIfNot2XX: {v:?} is not a boolean"
                ))
            })?,
        };
        let has_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        let headers = self.request_headers(&req.metadata, has_body, auth.as_ref())?;
        debug!(binding = %self.name, method = %method, url = %shown_url(), "calling HTTP endpoint");

        let body = has_body.then_some(req.data);
        let call = async {
            let response = self
                .send(method.clone(), target, headers, body, &req.metadata)
                .await?;
            let (parts, incoming) = response.into_parts();
            let data = read_body(
                incoming,
                self.config.max_response_body_size,
                parts.headers.get(CONTENT_LENGTH),
            )
            .await
            .map_err(|e| CallError::Transport(e.into()))?;
            Ok::<_, CallError>((parts, data))
        };
        let result = match self.config.response_timeout {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(CallError::Timeout(limit))),
        };
        let (parts, data) = result.map_err(|e| call_error(e, &method, &shown_url()))?;

        let status = parts.status;
        let mut metadata = response_metadata(status, &parts.headers, &parts.extensions);
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
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
    /// Where a call with `path` goes, and the `Authorization` of the URL's user info.
    fn target_of(&self, path: Option<&str>) -> Result<(Target, Option<HeaderValue>), String> {
        let path = path.filter(|p| !p.is_empty());
        if path.is_none()
            && let Some(target) = &self.target
        {
            return Ok((target.clone(), self.auth.clone()));
        }
        if let Some(target) = self.base.as_ref().and_then(|b| b.join(path)) {
            return Ok((target?, self.auth.clone()));
        }
        let url = Url::parse(&join_path(&self.config.url, path)).map_err(|e| e.to_string())?;
        Ok((Target::from_url(&url)?, basic_auth(&url)))
    }

    /// Send one request, following redirects as Go's client does: up to ten; `301`, `302` and
    /// `303` turn a call other than `GET` or `HEAD` into a `GET` without body, `307` and `308`
    /// repeat it; credentials (`Authorization`, cookies) are not sent to another origin.
    async fn send(
        &self,
        mut method: Method,
        mut target: Target,
        mut headers: HeaderMap,
        mut body: Option<Bytes>,
        md: &HashMap<String, String>,
    ) -> Result<Response<Incoming>, CallError> {
        let mut other_origin = false;
        for hop in 0..=MAX_REDIRECTS {
            let uri = target
                .uri()
                .map_err(|e| CallError::Binding(BindingError::invalid_request(e)))?;
            let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri;
            *request.headers_mut() = headers;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CallError::Transport(e.into()))?;
            let status = response.status();
            let follow = matches!(
                status,
                StatusCode::MOVED_PERMANENTLY
                    | StatusCode::FOUND
                    | StatusCode::SEE_OTHER
                    | StatusCode::TEMPORARY_REDIRECT
                    | StatusCode::PERMANENT_REDIRECT
            );
            let Some(location) = response.headers().get(LOCATION).filter(|_| follow) else {
                return Ok(response);
            };
            if hop == MAX_REDIRECTS {
                return Err(CallError::Redirect(format!(
                    "stopped after {MAX_REDIRECTS} redirects"
                )));
            }
            let next = next_target(&target, location).map_err(CallError::Redirect)?;
            other_origin |= target.other_origin(&next);
            target = next;
            if matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
            ) {
                if method != Method::GET && method != Method::HEAD {
                    method = Method::GET;
                }
                body = None;
            }
            // The headers of the first request again: they were handed to the request sent.
            headers = self
                .request_headers(md, body.is_some(), self.auth.as_ref())
                .map_err(CallError::Binding)?;
            if body.is_none() {
                for name in [
                    CONTENT_TYPE,
                    CONTENT_LENGTH,
                    CONTENT_ENCODING,
                    TRANSFER_ENCODING,
                ] {
                    headers.remove(name);
                }
            }
            if other_origin {
                for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, WWW_AUTHENTICATE] {
                    headers.remove(name);
                }
            }
        }
        Err(CallError::Redirect(format!(
            "stopped after {MAX_REDIRECTS} redirects"
        )))
    }

    /// The headers of one call: defaults, the URL's user info, the security token, metadata
    /// headers, trace context.
    fn request_headers(
        &self,
        md: &HashMap<String, String>,
        has_body: bool,
        auth: Option<&HeaderValue>,
    ) -> Result<HeaderMap, BindingError> {
        let mut headers = HeaderMap::with_capacity(8);
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        }
        headers.insert(ACCEPT, HeaderValue::from_static(JSON_UTF8));
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if let Some((name, value)) = &self.config.security_token {
            headers.insert(name.clone(), value.clone());
        }
        let is_header = |k: &&String| k.as_bytes().first().is_some_and(u8::is_ascii_uppercase);
        // Sorted, so that two keys naming the same header (`X-A`, `X-a`) resolve the same way
        // on every call; with one key or none there is nothing to sort.
        if md.keys().filter(is_header).nth(1).is_none() {
            if let Some(key) = md.keys().find(is_header) {
                let (name, value) = header_pair(key, &md[key])?;
                headers.insert(name, value);
            }
        } else {
            let mut keys: Vec<&String> = md.keys().filter(is_header).collect();
            keys.sort();
            for key in keys {
                let (name, value) = header_pair(key, &md[key])?;
                headers.insert(name, value);
            }
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

/// The target a redirect's `Location` names, relative to `current`.
fn next_target(current: &Target, location: &HeaderValue) -> Result<Target, String> {
    let location = std::str::from_utf8(location.as_bytes())
        .map_err(|_| "redirect location is not valid UTF-8".to_owned())?;
    let current = Url::parse(&format!(
        "{}://{}{}",
        current.scheme, current.authority, current.path_and_query
    ))
    .map_err(|e| e.to_string())?;
    let next = current
        .join(location)
        .map_err(|e| format!("invalid redirect location {location:?}: {e}"))?;
    Target::from_url(&next).map_err(|e| format!("redirect to {}: {e}", redact_url(next.as_str())))
}

/// Map a failed call to the binding error kinds. The message names the method and the URL
/// (credentials in it removed) and the cause; headers (and so the token) never appear.
fn call_error(err: CallError, method: &Method, url: &str) -> BindingError {
    match err {
        CallError::Timeout(after) => BindingError::timeout(format!(
            "{method} \"{url}\": no complete answer within responseTimeout ({after:?})"
        )),
        CallError::Redirect(reason) => {
            BindingError::rejected(format!("{method} \"{url}\": {reason}"))
        }
        // The connection could not be made, or broke while sending or reading: the endpoint
        // may be back later.
        CallError::Transport(e) => {
            BindingError::unavailable(format!("{method} \"{url}\": {}", error_chain(e.as_ref())))
        }
        CallError::Binding(e) => e,
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
/// made of plain characters then only replaces its path, which gives the same target as parsing
/// [`join_path`]'s text (checked in the tests) without parsing the scheme and host again.
struct PlainBase {
    target: Target,
}

impl PlainBase {
    fn new(url: &Url) -> Option<Self> {
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            return None;
        }
        Some(PlainBase {
            target: Target::from_url(url).ok()?,
        })
    }

    #[cfg(test)]
    fn parse(url: &str) -> Option<Self> {
        PlainBase::new(&Url::parse(url).ok()?)
    }

    /// The target of a call with `path`, or `None` when `path` needs the full parse: anything
    /// beyond unreserved characters and `/`, or a `.`/`..` segment.
    fn join(&self, path: Option<&str>) -> Option<Result<Target, String>> {
        let Some(p) = path.filter(|p| !p.is_empty()) else {
            return Some(Ok(self.target.clone()));
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
        let base = self.target.path_and_query.path().trim_end_matches('/');
        let p = p.trim_start_matches('/');
        let mut joined = String::with_capacity(base.len() + 1 + p.len());
        joined.push_str(base);
        joined.push('/');
        joined.push_str(p);
        Some(self.target.with_path(joined))
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
fn response_metadata(
    status: StatusCode,
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> HashMap<String, String> {
    let mut md = HashMap::with_capacity(headers.keys_len() + 2);
    md.insert(STATUS_CODE_KEY.to_owned(), status.as_u16().to_string());
    // Go's Response.Status: the code and the server's reason phrase.
    let reason = extensions
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
        .or_else(|| status.canonical_reason());
    let status_line = match reason {
        Some(r) if !r.is_empty() => format!("{} {r}", status.as_u16()),
        _ => status.as_u16().to_string(),
    };
    md.insert(STATUS_KEY.to_owned(), status_line);
    for name in headers.keys() {
        // Most headers have one value: build the joined text in place, no list in between.
        let mut joined = String::new();
        for (i, v) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                joined.push_str(", ");
            }
            joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        md.insert(canonical_header_key(name.as_str()), joined);
    }
    md
}

/// Read at most `limit` bytes of the body; the rest is dropped unread (Dapr's truncation). A
/// body that arrives in one piece is returned as it is, without a copy.
async fn read_body(
    mut body: Incoming,
    limit: Option<u64>,
    content_length: Option<&HeaderValue>,
) -> Result<Bytes, hyper::Error> {
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut first = Bytes::new();
    let mut rest: Option<BytesMut> = None;
    let mut len = 0;
    while len < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(mut chunk) = frame?.into_data() else {
            // Trailers are not part of the data.
            continue;
        };
        chunk.truncate(limit - len);
        if chunk.is_empty() {
            continue;
        }
        len += chunk.len();
        match &mut rest {
            Some(buf) => buf.extend_from_slice(&chunk),
            None if first.is_empty() => first = chunk,
            None => {
                let hint = content_length
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0)
                    .min(limit);
                // Cap the up-front allocation; a lying Content-Length must not reserve gigabytes.
                let mut buf = BytesMut::with_capacity(hint.min(1 << 20).max(len));
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                rest = Some(buf);
            }
        }
    }
    Ok(rest.map_or(first, BytesMut::freeze))
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
