//! One error type for the whole library.
//!
//! Every backend maps its own failures into [`Error`]: a [`ErrorKind`] (which the Python
//! exception classes and the Lua error's `kind` mirror one to one), whether retrying may help
//! ([`Error::is_temporary`]), the operation that failed, key/value context (host, key, url...)
//! and the underlying source. Messages and context never carry secrets: backends pass URLs
//! through [`crate::secret::redact_url`] before putting them here.

use std::fmt;

/// What went wrong, independent of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is malformed or inconsistent.
    ConfigInvalid,
    /// The thing asked for does not exist.
    NotFound,
    /// The caller is known but not allowed.
    PermissionDenied,
    /// The caller could not be authenticated (including a failed SSH host-key check).
    Unauthenticated,
    /// The backend does not support this operation.
    Unsupported,
    /// The backend asked us to slow down.
    RateLimited,
    /// An operation did not finish within its deadline.
    Timeout,
    /// The state of the world conflicts with the request (a flag already set, a key that exists).
    Conflict,
    /// Could not reach the other side (connection refused, reset, DNS).
    Unavailable,
    /// The other side answered with something we could not understand.
    InvalidResponse,
    /// The run was cancelled (Ctrl-C or a caller's cancellation).
    Cancelled,
    /// Anything else.
    Unexpected,
}

impl ErrorKind {
    /// Stable snake_case name, as used in JSON, Python and Lua.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConfigInvalid => "config_invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// Whether errors of this kind are temporary by default.
    pub fn default_temporary(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Unavailable
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The library's error.
pub struct Error {
    kind: ErrorKind,
    message: String,
    operation: &'static str,
    context: Vec<(&'static str, String)>,
    temporary: bool,
    detail: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error; whether it is temporary follows the kind (see [`ErrorKind::default_temporary`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            operation: "",
            context: Vec::new(),
            temporary: kind.default_temporary(),
            detail: None,
            source: None,
        }
    }

    /// Shorthand for a configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConfigInvalid, message)
    }

    /// Set the operation that failed (`"probe.get"`, `"backup.list"`...), keeping the first one set.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        if self.operation.is_empty() {
            self.operation = operation;
        }
        self
    }

    /// Add a key/value pair of context.
    pub fn with_context(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context.push((key, value.into()));
        self
    }

    /// Add a key/value pair of context unless that key is already there.
    pub fn with_context_once(self, key: &'static str, value: impl Into<String>) -> Self {
        if self.context.iter().any(|(k, _)| *k == key) {
            self
        } else {
            self.with_context(key, value)
        }
    }

    /// Replace the message (a backend's one-line summary of a lower error).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Attach the full technical detail (an SDK's error chain, a tool's banner): kept out of the
    /// one-line display, shown in `-v` logs and in the JSON error (`detail`).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The technical detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Mark as temporary (worth retrying) or not.
    pub fn set_temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Attach the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// Whether retrying may help.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }
    /// The failing operation, or `""`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }
    /// The human message (without context).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Key/value context.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.operation.is_empty() {
            write!(f, "{}: ", self.operation)?;
        }
        f.write_str(&self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str(")")?;
        }
        if let Some(src) = &self.source {
            // A long or multi-line source is detail, not part of the one line.
            let s = src.to_string();
            let short = s.len() <= 160 && !s.contains('\n');
            if short && !s.is_empty() && !self.message.contains(&s) && self.detail.is_none() {
                write!(f, ": {s}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("operation", &self.operation)
            .field("context", &self.context)
            .field("temporary", &self.temporary)
            .field("detail", &self.detail)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::PermissionDenied => ErrorKind::PermissionDenied,
            K::AlreadyExists => ErrorKind::Conflict,
            K::TimedOut => ErrorKind::Timeout,
            K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                ErrorKind::Unavailable
            }
            K::Interrupted => ErrorKind::Cancelled,
            K::InvalidData | K::UnexpectedEof => ErrorKind::InvalidResponse,
            _ => ErrorKind::Unexpected,
        };
        Error::new(kind, e.to_string()).with_source(e)
    }
}

/// A serialisable view of an error, as it appears in reports and the journal.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorInfo {
    /// Kind name.
    pub kind: ErrorKind,
    /// Full display message, context included.
    pub message: String,
    /// Operation, may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// Whether it was temporary.
    #[serde(default)]
    pub temporary: bool,
    /// Key/value context (host, key, path...), also in the message.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub context: std::collections::BTreeMap<String, String>,
    /// The full technical detail, kept out of the one-line message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        ErrorInfo {
            kind: e.kind,
            message: e.to_string(),
            operation: e.operation.to_string(),
            temporary: e.temporary,
            context: e
                .context
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            detail: e.detail.clone().or_else(|| {
                e.source
                    .as_ref()
                    .map(|s| s.to_string())
                    .filter(|s| s.len() > 160 || s.contains('\n'))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_operation_context_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::from(io)
            .with_operation("probe.get")
            .with_context("url", "http://x/health");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
        assert_eq!(e.to_string(), "probe.get: refused (url=http://x/health)");
    }

    #[test]
    fn first_operation_wins() {
        let e = Error::config("bad").with_operation("a").with_operation("b");
        assert_eq!(e.operation(), "a");
        assert!(!e.is_temporary());
    }
}
