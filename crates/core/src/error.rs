use std::collections::HashMap;
use std::fmt;

/// What went wrong, in terms the runtime can act on (status codes, retries, health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Component metadata is missing, malformed or contradictory. Found before any I/O.
    InvalidConfig,
    /// The request (operation data or metadata) is not acceptable to the binding.
    InvalidRequest,
    /// The binding does not support what was asked.
    Unsupported,
    /// The thing asked for does not exist (a file, an object, a key).
    NotFound,
    /// The backend cannot be reached or refused the connection; retrying later may help.
    Unavailable,
    /// The backend did not answer in time; retrying may help.
    Timeout,
    /// The backend answered and said no (a SQL error, a non-2xx status, a rejected publish).
    Rejected,
    /// The component was closed and takes no more calls.
    Closed,
    /// A bug or an unexpected state inside bindery.
    Internal,
}

impl ErrorKind {
    /// A short stable name, used in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Closed => "closed",
            ErrorKind::Internal => "internal",
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type at the binding trait boundary.
///
/// It carries a [`ErrorKind`], a message in Dapr's words (what callers see), the metadata field
/// it concerns (for configuration errors), an optional source, and response metadata that some
/// bindings return together with an error (the `http` binding's `statusCode` on a non-2xx answer).
///
/// ```
/// use bindery_core::{BindingError, ErrorKind};
/// let err = BindingError::config("url", "required metadata not set: url");
/// assert_eq!(err.kind(), ErrorKind::InvalidConfig);
/// assert_eq!(err.field(), Some("url"));
/// assert!(!err.is_retryable());
/// assert!(BindingError::unavailable("connection refused").is_retryable());
/// ```
pub struct BindingError {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    source: Option<Source>,
    metadata: HashMap<String, String>,
}

impl BindingError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BindingError {
            kind,
            message: message.into(),
            field: None,
            source: None,
            metadata: HashMap::new(),
        }
    }

    /// A configuration error about metadata `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::InvalidConfig, message);
        e.field = Some(field.into());
        e
    }

    /// The request is not acceptable.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// The backend cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The backend answered with a refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Not supported by this binding.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// The backend did not answer in time.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Something unexpected inside bindery.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The component is closed.
    pub fn closed() -> Self {
        Self::new(ErrorKind::Closed, "component is closed")
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Attach the metadata field this error concerns.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Attach response metadata to return alongside the error.
    pub fn with_metadata(mut self, metadata: HashMap<String, String>) -> Self {
        self.metadata = metadata;
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, in the words callers see.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The metadata field the error concerns, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// Response metadata returned together with the error.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// Take the response metadata out of the error.
    pub fn take_metadata(&mut self) -> HashMap<String, String> {
        std::mem::take(&mut self.metadata)
    }

    /// Whether trying again later can succeed (the backend was unavailable or slow).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindingError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("field", &self.field)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for BindingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}
