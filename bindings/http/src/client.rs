//! The pooled HTTP client of one component: hyper's connection pool (hyper-util) over TCP, or
//! rustls for `https` URLs, and the targets of calls as parts of an absolute URI.

use std::sync::Arc;
use std::time::Duration;

use bindery_core::BindingError;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;

use crate::config::HttpConfig;

/// One component's client; cloning it shares the pool.
pub(crate) type HttpClient = Client<Connector, Full<Bytes>>;

/// Dapr's dialer and TLS handshake timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Go's dialer default, which Dapr's dialer keeps.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
/// How long an idle pooled connection is kept (Go's `IdleConnTimeout` in its default transport).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The client for `config`: the configured root CA as the only trusted root, or the platform's
/// roots; the client certificate when one is configured.
pub(crate) async fn build_client(config: &HttpConfig) -> Result<HttpClient, BindingError> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .ok_or_else(|| {
            BindingError::internal("no TLS crypto provider is installed in this process")
        })?;
    // TLS 1.2 and 1.3: rustls has nothing older.
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| BindingError::config("url", format!("failed to create HTTP client: {e}")))?;
    let builder = match &config.root_ca {
        // As Dapr: a configured root CA is the only trusted one.
        Some(ca) => {
            let pem = ca.load("MTLSRootCA").await?;
            builder.with_root_certificates(root_store(&pem).ok_or_else(|| {
                BindingError::config("MTLSRootCA", "failed to add root certificate to certpool")
            })?)
        }
        // The platform's roots, read when the first TLS connection needs them.
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider).map_err(|e| {
                BindingError::config("url", format!("failed to create HTTP client: {e}"))
            })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let tls = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let cert = cert.load("MTLSClientCert").await?;
            let key = key.load("MTLSClientKey").await?;
            let fail = |reason: String| {
                BindingError::config(
                    "MTLSClientCert",
                    format!("failed to load client certificate: {reason}"),
                )
            };
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            if chain.is_empty() {
                return Err(fail("no certificate found".to_owned()));
            }
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| fail(e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| fail(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(TCP_KEEPALIVE));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(Connector(https)))
}

/// Every certificate of a PEM bundle, or `None` when there is none or one is not valid.
fn root_store(pem: &[u8]) -> Option<rustls::RootCertStore> {
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        store.add(cert.ok()?).ok()?;
    }
    (!store.is_empty()).then_some(store)
}

/// Where a call goes: scheme, host and port (no user info), and path with query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    pub(crate) path_and_query: PathAndQuery,
}

impl Target {
    /// The target of `url`, which must be `http` or `https` with a host.
    pub(crate) fn from_url(url: &Url) -> Result<Self, String> {
        let scheme = match url.scheme() {
            "http" => Scheme::HTTP,
            "https" => Scheme::HTTPS,
            other => return Err(format!("scheme {other:?} is not http or https")),
        };
        let host = url.host_str().ok_or("the URL has no host")?;
        let authority = match url.port() {
            Some(port) => Authority::try_from(format!("{host}:{port}")),
            None => Authority::try_from(host),
        }
        .map_err(|e| e.to_string())?;
        let path_and_query = match url.query() {
            None => PathAndQuery::try_from(url.path()),
            Some(q) => PathAndQuery::try_from(format!("{}?{q}", url.path())),
        }
        .map_err(|e| e.to_string())?;
        Ok(Target {
            scheme,
            authority,
            path_and_query,
        })
    }

    /// This target with another path (no query).
    pub(crate) fn with_path(&self, path: String) -> Result<Self, String> {
        Ok(Target {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            path_and_query: PathAndQuery::from_maybe_shared(Bytes::from(path))
                .map_err(|e| e.to_string())?,
        })
    }

    /// The absolute URI hyper sends the request to.
    pub(crate) fn uri(&self) -> Result<Uri, String> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query.clone())
            .build()
            .map_err(|e| e.to_string())
    }

    /// Whether `other` is on another origin (scheme, host or port differ): credentials are not
    /// sent there when a redirect leads to it.
    pub(crate) fn other_origin(&self, other: &Target) -> bool {
        self.scheme != other.scheme || self.authority != other.authority
    }
}

/// `Authorization: Basic …` for the user info of `url`, percent-decoded, as Go and browsers send
/// it; `None` when the URL has none.
pub(crate) fn basic_auth(url: &Url) -> Option<HeaderValue> {
    use base64::Engine as _;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
    let mut credentials = decode(url.username());
    credentials.push(b':');
    credentials.extend(decode(url.password().unwrap_or_default()));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::try_from(format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The connector: TCP, then TLS for `https`, the two together bounded by Dapr's 15 s (hyper-rustls
/// does the handshake inside its connect future, which `HttpConnector`'s own timeout does not
/// cover).
#[derive(Clone)]
pub(crate) struct Connector(HttpsConnector<HttpConnector>);

type Connecting = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Future;
type Connection = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Response;
type ConnectError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<Uri> for Connector {
    type Response = Connection;
    type Error = ConnectError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Connection, ConnectError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting: Connecting = self.0.call(uri);
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(connected) => connected,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {CONNECT_TIMEOUT:?}"),
                )
                .into()),
            }
        })
    }
}
