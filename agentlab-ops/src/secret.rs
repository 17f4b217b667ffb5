//! Secrets: values that never print, never serialise, and are scrubbed from every output.
//!
//! A [`Secret`] is only ever created from a `${ENV_VAR}` reference in the config file (or
//! explicitly by code). Its `Debug`, `Display` and `Serialize` all give `[REDACTED]`. When a
//! secret is resolved, its value is also registered in a process-wide list that [`redact`]
//! uses to scrub report text, error messages, logs and the journal — a second line of defence
//! for the case where a secret leaks into a string by way of a URL or a server's echo.

use std::fmt;
use std::sync::RwLock;

/// The placeholder written instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

static REGISTRY: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, e.g. `${SLACK_WEBHOOK_URL}`: safe to show.
    origin: String,
}

impl Secret {
    /// Wrap a value and register it for redaction.
    pub fn new(value: impl Into<String>, origin: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret {
            value,
            origin: origin.into(),
        }
    }

    /// Resolve a `${ENV_VAR}` reference from the process environment.
    pub fn from_env_ref(reference: &str) -> Result<Self, String> {
        let name = parse_env_ref(reference).ok_or_else(|| {
            "secrets must be given as a ${ENV_VAR} reference, never inline".to_string()
        })?;
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v, format!("${{{name}}}"))),
            Ok(_) => Err(format!("environment variable {name} is empty")),
            Err(_) => Err(format!("environment variable {name} is not set")),
        }
    }

    /// The value. Use it only to talk to the backend.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Where the secret came from (`${NAME}`), safe to print.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// `${NAME}` → `Some("NAME")`.
pub fn parse_env_ref(s: &str) -> Option<&str> {
    let name = s.trim().strip_prefix("${")?.strip_suffix('}')?;
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    ok.then_some(name)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Register a value to be scrubbed by [`redact`]. Values shorter than 6 characters are
/// ignored: scrubbing them would mangle ordinary text and they are not credentials.
pub fn register(value: &str) {
    if value.len() < 6 {
        return;
    }
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    if !reg.iter().any(|v| v == value) {
        reg.push(value.to_string());
        // Longest first, so a secret containing another is replaced whole.
        reg.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Replace every registered secret value in `text` with `[REDACTED]`.
pub fn redact(text: &str) -> String {
    let reg = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for v in reg.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), REDACTED);
        }
    }
    out
}

/// Strip the user info and query string of a URL, which is where credentials hide.
pub fn redact_url(url: &str) -> String {
    let mut s = url.to_string();
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            s = format!("{}{}@{}", &s[..scheme_end + 3], REDACTED, &rest[at + 1..]);
        }
    }
    if let Some(q) = s.find('?') {
        s.truncate(q);
        s.push_str("?[REDACTED]");
    }
    redact(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2-very-secret", "${X}");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[REDACTED]\"");
        assert_eq!(
            redact("token is hunter2-very-secret!"),
            "token is [REDACTED]!"
        );
    }

    #[test]
    fn env_refs() {
        assert_eq!(
            parse_env_ref("${SLACK_WEBHOOK_URL}"),
            Some("SLACK_WEBHOOK_URL")
        );
        assert_eq!(parse_env_ref("https://hooks"), None);
        assert_eq!(parse_env_ref("${1X}"), None);
        assert!(Secret::from_env_ref("inline-value").is_err());
        assert!(
            Secret::from_env_ref("${AGENTLAB_OPS_SURELY_UNSET_VAR}")
                .unwrap_err()
                .contains("not set")
        );
    }

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(
            redact_url("https://user:pw@host/x?token=abc"),
            "https://[REDACTED]@host/x?[REDACTED]"
        );
    }
}
