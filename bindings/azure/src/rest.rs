//! A small Azure Storage REST client: signs each request with the account key, retries what is
//! safe to retry, and turns failures into [`BindingError`]s that keep the service's own error
//! code and message. The bindings use it; it is public so tests and tools can talk to the same
//! account the same way.

use std::time::Duration;

use bindery_core::BindingError;
use bindery_core::util::Backoff;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use tracing::debug;

pub use crate::account::{DEV_ACCOUNT, DEV_KEY, SharedKey};
pub use crate::queue::api::{QueueClient, QueueMessage};
pub use crate::sign::API_VERSION;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the service may stay silent while a response is read.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The first pause before a retry (the Azure SDKs' default), doubling up to [`RETRY_MAX`].
const RETRY_INITIAL: Duration = Duration::from_millis(800);
/// The longest pause between retries.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How much of an error body is read to find the service's code and message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One request: method, URL, headers and body; [`StorageClient::send`] signs it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// The full URL, query included.
    pub url: Url,
    /// Headers to send besides the signature headers.
    pub headers: HeaderMap,
    /// The body (empty: none).
    pub body: Bytes,
    /// Whether sending it twice is harmless, so that it may be retried after an attempt that
    /// may have reached the service (a timeout, a dropped connection). Calls that are not are
    /// retried only when the connection could not be made.
    pub idempotent: bool,
}

impl Call {
    /// A call with no headers and no body, idempotent.
    pub fn new(method: Method, url: Url) -> Self {
        Call {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            idempotent: true,
        }
    }

    /// Add a header; invalid values are refused (they would be a bug or bad request metadata).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, BindingError> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BindingError::invalid_request(format!("invalid header name {name:?}")))?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            BindingError::invalid_request(format!(
                "invalid value for {name}: it must be printable ASCII without line breaks"
            ))
        })?;
        self.headers.append(n, v);
        Ok(self)
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Mark the call as not safe to repeat (see [`Call::idempotent`]).
    pub fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }
}

/// What [`StorageClient::send`] got back.
#[derive(Debug)]
pub struct Sent {
    /// The final response (any status).
    pub response: Response,
    /// Whether an earlier attempt may have been carried out by the service although its
    /// answer was lost (so a `404` on a retried delete means "already deleted").
    pub maybe_applied_before: bool,
}

/// A signed client for one account and one service.
#[derive(Clone)]
pub struct StorageClient {
    http: reqwest::Client,
    key: SharedKey,
    retries: u32,
    service: &'static str,
}

impl std::fmt::Debug for StorageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageClient")
            .field("account", &self.key.account)
            .field("retries", &self.retries)
            .field("service", &self.service)
            .finish()
    }
}

impl StorageClient {
    /// A client signing with `key`, retrying failed requests up to `retries` times. `service`
    /// names the service in messages (`Azure Blob Storage`).
    pub fn new(key: SharedKey, retries: u32, service: &'static str) -> Result<Self, BindingError> {
        // reqwest panics when no rustls crypto provider is installed; the binary installs one.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(BindingError::internal(
                "no TLS crypto provider is installed in this process",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tls_version_min(reqwest::tls::Version::TLS_1_2)
            // `X-Ms-Meta-Custom`, as Go (and so Dapr) sends header names: the service keeps
            // blob metadata names as it receives them.
            .http1_title_case_headers()
            .build()
            .map_err(|e| {
                BindingError::internal(format!("cannot create the HTTP client: {}", chain(&e)))
            })?;
        Ok(StorageClient {
            http,
            key,
            retries,
            service,
        })
    }

    /// The same client with another retry count (e.g. none at start, where the runtime
    /// retries building the component in the background).
    pub fn with_retries(&self, retries: u32) -> Self {
        StorageClient {
            retries,
            ..self.clone()
        }
    }

    /// The account this client signs for.
    pub fn key(&self) -> &SharedKey {
        &self.key
    }

    /// The service's name, for messages.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Send `call`, signed, retrying connection failures, timeouts (for idempotent calls) and
    /// the statuses the service uses for "try again" (408, 429, 500, 502, 503, 504) with
    /// exponential backoff. Returns the final response whatever its status; fails only when no
    /// response came at all.
    pub async fn send(&self, call: &Call) -> Result<Sent, BindingError> {
        let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
        let mut maybe_applied_before = false;
        let mut attempt = 0u32;
        loop {
            let result = self.attempt(call).await;
            let retryable = match &result {
                Ok(resp) => is_retryable_status(resp.status()),
                Err(e) => e.is_connect() || (call.idempotent && !e.is_builder()),
            };
            if !retryable || attempt >= self.retries {
                return match result {
                    Ok(response) => Ok(Sent {
                        response,
                        maybe_applied_before,
                    }),
                    Err(e) => Err(self.transport_error(&call.url, &e)),
                };
            }
            match &result {
                Ok(resp) => {
                    debug!(service = self.service, status = %resp.status(), attempt, "storage request failed; retrying");
                    // 5xx and 408 may come after the change was made.
                    maybe_applied_before |= resp.status() != StatusCode::TOO_MANY_REQUESTS;
                }
                Err(e) => {
                    debug!(service = self.service, error = %chain(e), attempt, "storage request failed; retrying");
                    maybe_applied_before |= !e.is_connect();
                }
            }
            attempt += 1;
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Response, reqwest::Error> {
        let mut headers = call.headers.clone();
        if !call.body.is_empty() || matches!(call.method, Method::PUT | Method::POST) {
            headers.insert(
                reqwest::header::CONTENT_LENGTH,
                HeaderValue::from(call.body.len()),
            );
        }
        if let Err(e) = crate::sign::sign(&call.method, &call.url, &mut headers, &self.key) {
            // Only reachable with a header value that cannot be represented; report it as a
            // request that cannot be built.
            debug!(error = %e, "cannot sign the request");
        }
        let mut req = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(headers);
        if !call.body.is_empty() {
            req = req.body(call.body.clone());
        }
        req.send().await
    }

    /// An error for a request that got no response, naming the service and its address.
    pub fn transport_error(&self, url: &Url, e: &reqwest::Error) -> BindingError {
        let address = address(url);
        if e.is_timeout() {
            BindingError::timeout(format!(
                "{} at {address} did not answer in time: {}",
                self.service,
                chain(e)
            ))
        } else {
            BindingError::unavailable(format!(
                "{} at {address} is unavailable: {}",
                self.service,
                chain(e)
            ))
        }
    }

    /// Turn a non-success response into an error: `<context>: <status> <ErrorCode>: <message>`,
    /// with the service's own code and message. 404 is `not_found`, other 4xx `rejected`, and
    /// statuses that mean "try again" `unavailable`.
    pub async fn status_error(&self, context: &str, resp: Response) -> BindingError {
        let status = resp.status();
        let (code, message) = read_error(resp).await;
        let mut text = format!(
            "{context}: {} {}",
            status.as_u16(),
            code.as_deref()
                .unwrap_or(status.canonical_reason().unwrap_or(""))
        );
        if let Some(m) = message.filter(|m| !m.is_empty()) {
            text.push_str(": ");
            text.push_str(&m);
        }
        if status == StatusCode::NOT_FOUND {
            BindingError::not_found(text)
        } else if is_retryable_status(status) {
            BindingError::unavailable(text)
        } else {
            BindingError::rejected(text)
        }
    }
}

/// Statuses the storage services answer when a retry can succeed.
fn is_retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// `host:port` of `url`.
pub(crate) fn address(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.as_str().to_owned(),
    }
}

/// The service's error code (`x-ms-error-code` or the body's `<Code>`) and the first line of
/// its `<Message>`.
pub(crate) async fn read_error(resp: Response) -> (Option<String>, Option<String>) {
    let header_code = resp
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    let mut resp = resp;
    while body.len() < ERROR_BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    let (body_code, message) = match roxmltree::Document::parse(text.trim_start_matches('\u{feff}'))
    {
        Ok(doc) => {
            let find = |name: &str| {
                doc.descendants()
                    .find(|n| n.has_tag_name(name))
                    .and_then(|n| n.text())
                    .map(|t| t.lines().next().unwrap_or_default().trim().to_owned())
            };
            (find("Code"), find("Message"))
        }
        Err(_) => (None, None),
    };
    (header_code.or(body_code), message)
}

/// An error with its causes, `a: b: c`.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}
