//! Component metadata of `bindings.http`, checked without I/O.

use std::path::PathBuf;
use std::time::Duration;

use bindery_core::{BindingError, Metadata, parse_quantity};
use http::header::{HeaderName, HeaderValue};
use url::Url;

/// Default for `maxResponseBodySize`: 100Mi.
pub(crate) const DEFAULT_MAX_RESPONSE_BODY_SIZE: u64 = 100 * 1024 * 1024;

/// A PEM value from the metadata: the PEM text itself, or a path to a file holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemSource {
    /// The value is PEM text.
    Inline(String),
    /// The value names a file.
    File(PathBuf),
}

impl PemSource {
    /// Dapr's rule: a value holding a PEM block is PEM, anything else is a file path.
    pub(crate) fn from_value(value: &str) -> Self {
        if value.contains("-----BEGIN ") {
            PemSource::Inline(value.to_owned())
        } else {
            PemSource::File(PathBuf::from(value.trim()))
        }
    }

    /// The PEM bytes, reading the file when the value is a path.
    pub(crate) async fn load(&self, field: &str) -> Result<Vec<u8>, BindingError> {
        match self {
            PemSource::Inline(pem) => Ok(pem.as_bytes().to_vec()),
            PemSource::File(path) => tokio::fs::read(path).await.map_err(|e| {
                BindingError::config(
                    field,
                    format!(
                        "provided {field:?} value is neither a valid file path nor a valid PEM encoded string: {e}"
                    ),
                )
            }),
        }
    }
}

/// `MTLSRenegotiation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renegotiation {
    /// `RenegotiateNever`.
    Never,
    /// `RenegotiateOnceAsClient`.
    OnceAsClient,
    /// `RenegotiateFreelyAsClient`.
    FreelyAsClient,
}

/// The checked configuration of one `bindings.http` component.
#[derive(Clone)]
pub(crate) struct HttpConfig {
    pub(crate) url: String,
    pub(crate) response_timeout: Option<Duration>,
    /// `None`: no limit (`maxResponseBodySize` ≤ 0).
    pub(crate) max_response_body_size: Option<u64>,
    pub(crate) root_ca: Option<PemSource>,
    pub(crate) client_cert: Option<PemSource>,
    pub(crate) client_key: Option<PemSource>,
    pub(crate) renegotiation: Option<Renegotiation>,
    /// The header carrying `securityToken`, and the token as a sensitive header value.
    pub(crate) security_token: Option<(HeaderName, HeaderValue)>,
    pub(crate) error_if_not_2xx: bool,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token, nor inline key material.
        f.debug_struct("HttpConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("response_timeout", &self.response_timeout)
            .field("max_response_body_size", &self.max_response_body_size)
            .field("root_ca", &self.root_ca.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("client_key", &self.client_key.is_some())
            .field("renegotiation", &self.renegotiation)
            .field(
                "security_token_header",
                &self.security_token.as_ref().map(|(h, _)| h.as_str()),
            )
            .field("error_if_not_2xx", &self.error_if_not_2xx)
            .finish()
    }
}

impl HttpConfig {
    /// Parse and check `md`, reporting every problem. No I/O: PEM files are read at build time.
    pub(crate) fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let url = r.required("url", "required metadata not set: url");
        if !url.is_empty() {
            match Url::parse(url.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                Ok(u) => r.error(
                    "url",
                    format!(
                        "invalid url {}: scheme {:?} is not http or https",
                        crate::redact_url(&url),
                        u.scheme()
                    ),
                ),
                Err(e) => r.error(
                    "url",
                    format!("invalid url {}: {e}", crate::redact_url(&url)),
                ),
            }
        }
        let response_timeout = r
            .opt_duration_any(&["responseTimeout"])
            .filter(|d| !d.is_zero());

        let max_response_body_size = match r.string("maxResponseBodySize") {
            None => Some(DEFAULT_MAX_RESPONSE_BODY_SIZE),
            Some(v) => {
                let v = v.trim();
                // Dapr: a value <= 0 means no limit.
                let (negative, magnitude) = match v.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, v),
                };
                match parse_quantity(magnitude) {
                    Ok(n) if negative || n == 0 => None,
                    Ok(n) => Some(n),
                    Err(e) => {
                        r.error(
                            "maxResponseBodySize",
                            format!("invalid value for maxResponseBodySize: {e}"),
                        );
                        None
                    }
                }
            }
        };

        let root_ca = r.string("MTLSRootCA").map(|v| PemSource::from_value(&v));
        let client_cert = r
            .string("MTLSClientCert")
            .map(|v| PemSource::from_value(&v));
        let client_key = r.string("MTLSClientKey").map(|v| PemSource::from_value(&v));
        match (&client_cert, &client_key) {
            (Some(_), None) => r.error(
                "MTLSClientKey",
                "MTLSClientCert is set but MTLSClientKey is not: set both or neither",
            ),
            (None, Some(_)) => r.error(
                "MTLSClientCert",
                "MTLSClientKey is set but MTLSClientCert is not: set both or neither",
            ),
            _ => {}
        }

        let renegotiation = match r.string("MTLSRenegotiation").as_deref().map(str::trim) {
            None => None,
            Some("RenegotiateNever") => Some(Renegotiation::Never),
            Some("RenegotiateOnceAsClient") => Some(Renegotiation::OnceAsClient),
            Some("RenegotiateFreelyAsClient") => Some(Renegotiation::FreelyAsClient),
            Some(other) => {
                r.error(
                    "MTLSRenegotiation",
                    format!(
                        "invalid renegotiation value: {other} (use RenegotiateNever, RenegotiateOnceAsClient or RenegotiateFreelyAsClient)"
                    ),
                );
                None
            }
        };

        let token = r.string("securityToken");
        let token_header = r.string("securityTokenHeader");
        let security_token = match (token, token_header) {
            (Some(token), Some(header)) => {
                let name = HeaderName::from_bytes(header.trim().as_bytes());
                let value = HeaderValue::from_str(&token);
                match (name, value) {
                    (Ok(name), Ok(mut value)) => {
                        value.set_sensitive(true);
                        Some((name, value))
                    }
                    (Err(_), _) => {
                        r.error(
                            "securityTokenHeader",
                            format!(
                                "invalid value for securityTokenHeader: {:?} is not a valid HTTP header name",
                                header.trim()
                            ),
                        );
                        None
                    }
                    (_, Err(_)) => {
                        // The value itself is a credential: say what is wrong, never what it is.
                        r.error(
                            "securityToken",
                            "invalid value for securityToken: it contains characters not allowed in an HTTP header (such as CR or LF)",
                        );
                        None
                    }
                }
            }
            (Some(_), None) => {
                r.error(
                    "securityTokenHeader",
                    "securityToken is set but securityTokenHeader is not: the token would never be sent",
                );
                None
            }
            (None, Some(_)) | (None, None) => None,
        };

        let error_if_not_2xx = r.bool("errorIfNot2XX", true);

        r.finish()?;
        Ok(HttpConfig {
            url: url.trim().to_owned(),
            response_timeout,
            max_response_body_size,
            root_ca,
            client_cert,
            client_key,
            renegotiation,
            security_token,
            error_if_not_2xx,
        })
    }
}
