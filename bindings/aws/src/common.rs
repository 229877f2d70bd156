//! What every AWS binding shares: the authentication metadata, building an `SdkConfig` on a
//! rustls (ring) HTTP client, and mapping SDK errors to [`BindingError`]s.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use bindery_core::{BindingError, Metadata, MetadataField, MetadataReader};

/// The authentication and connection fields every AWS binding reads (Dapr's AWS
/// authentication profile).
pub(crate) const AUTH_FIELDS: [MetadataField; 9] = [
    MetadataField::optional(
        "region",
        "the AWS region; else the SDK's default region chain (AWS_REGION, profile)",
    )
    .aliases(&["awsRegion"]),
    MetadataField::optional(
        "endpoint",
        "a custom endpoint URL (LocalStack, moto, MinIO); without a scheme https:// is assumed",
    ),
    MetadataField::optional(
        "accessKey",
        "static access key id; with secretKey, else the default credential chain",
    ),
    MetadataField::optional("secretKey", "static secret access key").sensitive(),
    MetadataField::optional(
        "sessionToken",
        "session token for temporary static credentials",
    )
    .sensitive(),
    MetadataField::optional(
        "assumeRoleArn",
        "assume this IAM role (STS AssumeRole) on top of the credentials",
    ),
    MetadataField::optional("sessionName", "the session name when assuming a role")
        .default("DaprDefaultSession"),
    MetadataField::optional(
        "trustAnchorArn",
        "IAM Roles Anywhere trust anchor: not supported by bindery (refused)",
    ),
    MetadataField::optional(
        "trustProfileArn",
        "IAM Roles Anywhere profile: not supported by bindery (refused)",
    ),
];

/// Concatenate [`AUTH_FIELDS`] with a binding's own fields, in a `static`.
macro_rules! fields {
    ($($field:expr),* $(,)?) => {{
        const OWN: &[bindery_core::MetadataField] = &[$($field),*];
        const N: usize = crate::common::AUTH_FIELDS.len() + OWN.len();
        const ALL: [bindery_core::MetadataField; N] = {
            let mut out = [crate::common::AUTH_FIELDS[0]; N];
            let mut i = 0;
            while i < crate::common::AUTH_FIELDS.len() {
                out[i] = crate::common::AUTH_FIELDS[i];
                i += 1;
            }
            let mut j = 0;
            while j < OWN.len() {
                out[i + j] = OWN[j];
                j += 1;
            }
            out
        };
        &ALL
    }};
}

/// Parsed authentication and connection settings.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct AwsSettings {
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) access_key: Option<String>,
    pub(crate) secret_key: Option<String>,
    pub(crate) session_token: Option<String>,
    pub(crate) assume_role_arn: Option<String>,
    pub(crate) session_name: String,
}

impl Debug for AwsSettings {
    // Credentials never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("assume_role_arn", &self.assume_role_arn)
            .finish()
    }
}

impl AwsSettings {
    /// Read the common fields. `disable_ssl` picks `http://` for an endpoint given without a
    /// scheme (and turns an `https://` endpoint into `http://`), as Dapr's `disableSSL` does.
    pub(crate) fn parse(r: &MetadataReader<'_>, disable_ssl: bool) -> Self {
        let access_key = r.string("accessKey");
        let secret_key = r.string("secretKey");
        if access_key.is_some() != secret_key.is_some() {
            r.error(
                if access_key.is_some() {
                    "secretKey"
                } else {
                    "accessKey"
                },
                "accessKey and secretKey must be set together (or neither, for the default credential chain)",
            );
        }
        let session_token = r.string("sessionToken");
        if session_token.is_some() && access_key.is_none() {
            r.error("sessionToken", "sessionToken needs accessKey and secretKey");
        }
        for field in ["trustAnchorArn", "trustProfileArn"] {
            if r.string(field).is_some() {
                r.error(
                    field,
                    format!("{field}: IAM Roles Anywhere is not supported by bindery yet; use static keys, a role to assume or the default credential chain"),
                );
            }
        }
        let endpoint = r
            .string("endpoint")
            .map(|e| normalize_endpoint(&e, disable_ssl));
        if let Some(e) = &endpoint
            && e.parse::<http_uri::Uri>().is_err()
        {
            r.error("endpoint", format!("endpoint {e:?} is not a valid URL"));
        }
        AwsSettings {
            region: r.string_any(&["region", "awsRegion"]),
            endpoint,
            access_key,
            secret_key,
            session_token,
            assume_role_arn: r.string("assumeRoleArn"),
            session_name: r.string_or("sessionName", "DaprDefaultSession"),
        }
    }

    /// Build the SDK configuration: a rustls client on the `ring` provider, the region, the
    /// endpoint, and static credentials when given (else the default chain). Loading the
    /// default chain does no network I/O until the first call.
    pub(crate) async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_with(None).await
    }

    /// [`AwsSettings::sdk_config`] on `http` instead of the default client.
    pub(crate) async fn sdk_config_with(&self, http: Option<SharedHttpClient>) -> SdkConfig {
        let http = http.unwrap_or_else(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https()
        });
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let (Some(ak), Some(sk)) = (&self.access_key, &self.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                ak.clone(),
                sk.clone(),
                self.session_token.clone(),
                None,
                "bindery-static",
            ));
        }
        let base = loader.load().await;
        let Some(role) = &self.assume_role_arn else {
            return base;
        };
        let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
            .session_name(self.session_name.clone())
            .configure(&base)
            .build()
            .await;
        base.into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build()
    }
}

/// Put a scheme on an endpoint: `http://` with `disableSSL`, else `https://`.
pub(crate) fn normalize_endpoint(endpoint: &str, disable_ssl: bool) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if let Some(rest) = e.strip_prefix("https://") {
        if disable_ssl {
            return format!("http://{rest}");
        }
        return e.to_owned();
    }
    if e.starts_with("http://") {
        return e.to_owned();
    }
    if disable_ssl {
        format!("http://{e}")
    } else {
        format!("https://{e}")
    }
}

/// A tiny URI check without another dependency: scheme, then a non-empty authority.
mod http_uri {
    pub(crate) struct Uri;
    impl std::str::FromStr for Uri {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let rest = s
                .strip_prefix("http://")
                .or_else(|| s.strip_prefix("https://"))
                .ok_or(())?;
            let authority = rest.split('/').next().unwrap_or("");
            if authority.is_empty() || authority.contains(char::is_whitespace) {
                return Err(());
            }
            Ok(Uri)
        }
    }
}

/// Fold configuration problems into one error for the build phase.
pub(crate) fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors
        .first()
        .and_then(|e| e.field())
        .unwrap_or("")
        .to_owned();
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field, message)
}

/// Error codes that mean "these credentials are not accepted": retrying will not help.
const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthorizationError",
];

/// Error codes AWS uses for throttling: retrying later helps.
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "SlowDown",
    "LimitExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
];

/// The backend's error code, when the call got an answer.
pub(crate) fn error_code<E, R>(err: &SdkError<E, R>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(e) => e.err().code().map(str::to_owned),
        _ => None,
    }
}

/// Map an SDK error: no answer (connection refused, DNS, TLS) → `unavailable`; a timeout →
/// `timeout`; throttling or a 5xx → `unavailable`; any other answer → `rejected` carrying the
/// backend's own code and message. `context` says what bindery was doing.
// Callers hand the error over (`map_err(|e| sdk_error(.., e))`); taking it by value keeps that
// call shape even though only a reference is needed.
#[allow(clippy::needless_pass_by_value)]
pub(crate) fn sdk_error<E>(context: &str, err: SdkError<E, HttpResponse>) -> BindingError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => {
            BindingError::timeout(format!("{context}: the request timed out"))
        }
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            BindingError::unavailable(format!("{context}: {}", DisplayErrorContext(&err)))
        }
        SdkError::ResponseError(_) => {
            BindingError::unavailable(format!("{context}: {}", DisplayErrorContext(&err)))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("").to_owned();
            let message = service.err().message().unwrap_or("").to_owned();
            let status = service.raw().status().as_u16();
            let text = match (code.is_empty(), message.is_empty()) {
                (false, false) => format!("{context}: {code}: {message}"),
                (false, true) => format!("{context}: {code}"),
                (true, false) => format!("{context}: {message}"),
                (true, true) => format!("{context}: HTTP {status}"),
            };
            if THROTTLE_CODES.contains(&code.as_str()) || status >= 500 {
                BindingError::unavailable(text)
            } else {
                BindingError::rejected(text)
            }
        }
        _ => BindingError::unavailable(format!("{context}: {}", DisplayErrorContext(&err))),
    }
}

/// Whether an error from a start-up probe means "these credentials are refused" (fatal) rather
/// than "not there yet" (retried in the background).
pub(crate) fn probe_error<E>(context: &str, err: SdkError<E, HttpResponse>) -> BindingError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let auth = error_code(&err).is_some_and(|c| AUTH_CODES.contains(&c.as_str()));
    let e = sdk_error(context, err);
    if auth || e.is_retryable() {
        return e;
    }
    // A missing queue, stream or table may be created after bindery starts: keep trying in
    // the background (the binding reports not ready meanwhile) rather than exit.
    BindingError::unavailable(e.message().to_owned())
}

/// Parse `metadata` for one binding and turn the problems into one error, for `build_*`.
pub(crate) fn parse_or_join<T>(
    metadata: &Metadata,
    parse: impl FnOnce(&Metadata) -> Result<T, Vec<BindingError>>,
) -> Result<T, BindingError> {
    parse(metadata).map_err(join_errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_a_scheme() {
        assert_eq!(
            normalize_endpoint("localhost:4566", false),
            "https://localhost:4566"
        );
        assert_eq!(
            normalize_endpoint("localhost:4566", true),
            "http://localhost:4566"
        );
        assert_eq!(
            normalize_endpoint("https://s3.example.com/", true),
            "http://s3.example.com"
        );
        assert_eq!(
            normalize_endpoint("http://127.0.0.1:15000", false),
            "http://127.0.0.1:15000"
        );
    }

    #[test]
    fn static_credentials_need_both_halves_and_never_print() {
        let md = Metadata::from_pairs([("accessKey", "AKIA"), ("sessionToken", "tok")]);
        let r = md.reader();
        let _ = AwsSettings::parse(&r, false);
        let errs = r.finish().unwrap_err();
        assert_eq!(errs[0].field(), Some("secretKey"));

        let md = Metadata::from_pairs([
            ("accessKey", "AKIA"),
            ("secretKey", "very-secret"),
            ("sessionToken", "token-secret"),
            ("awsRegion", "eu-west-1"),
        ]);
        let r = md.reader();
        let s = AwsSettings::parse(&r, false);
        assert!(r.finish().is_ok());
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.session_name, "DaprDefaultSession");
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
    }

    #[test]
    fn roles_anywhere_is_refused_and_bad_endpoints_reported() {
        let md =
            Metadata::from_pairs([("trustAnchorArn", "arn:x"), ("endpoint", "http://bad host")]);
        let r = md.reader();
        let _ = AwsSettings::parse(&r, false);
        let fields: Vec<_> = r
            .finish()
            .unwrap_err()
            .iter()
            .map(|e| e.field().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(fields, ["trustAnchorArn", "endpoint"]);
    }
}
