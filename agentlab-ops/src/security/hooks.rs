//! The hooks of a secret rotation: a command on this machine or an HTTP call, given the value
//! it acts on without ever putting it on a command line or in a URL.
//!
//! A command gets `AGENTLAB_SECRET` (the value acted on), `AGENTLAB_SECRET_NEW`,
//! `AGENTLAB_SECRET_OLD` and `AGENTLAB_SECRET_NAME` in its environment; exit 0 is success.
//! An HTTP call sends the value as its bearer token (`auth = "secret"`) or as `{secret}` in
//! its body; a 2xx is success, 401/403 a refusal. Every hook has a timeout; a command that
//! outlives it is killed.

use std::time::Duration;

use crate::config::Hook;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};
use crate::secret::Secret;

/// What a hook acts on.
#[derive(Debug, Clone, Copy)]
pub struct HookInput<'a> {
    /// The secret's name.
    pub name: &'a str,
    /// The value acted on.
    pub subject: &'a Secret,
    /// The new value, when issued.
    pub new: Option<&'a Secret>,
    /// The old value.
    pub old: Option<&'a Secret>,
}

/// How a `verify` hook judged a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The value works.
    Works,
    /// The value is refused.
    Refused,
}

/// Runs hooks with one HTTP client and a timeout per hook.
#[derive(Debug, Clone)]
pub struct HookRunner {
    client: reqwest::Client,
    timeout: Duration,
}

fn describe(hook: &Hook) -> String {
    match hook {
        Hook::Command { command, .. } => command.join(" "),
        Hook::Http { method, url, .. } => format!("{method} {}", crate::secret::redact_url(url)),
    }
}

impl HookRunner {
    /// Hooks that may each take `timeout`.
    pub fn new(timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(HookRunner { client, timeout })
    }

    /// Run `hook` once; its output on success.
    pub async fn run(&self, what: &str, hook: &Hook, input: HookInput<'_>) -> Result<String> {
        let r = match hook {
            Hook::Command { command, .. } => self.command(command, input).await,
            Hook::Http { .. } => self.http(hook, input).await,
        };
        r.map_err(|e| {
            e.with_operation("secret.hook")
                .with_context("secret", input.name.to_string())
                .with_context("hook", format!("{what}: {}", describe(hook)))
        })
    }

    /// Run `hook` with retries of transient failures (for idempotent hooks: verify, revoke,
    /// install — never issue, which would leave an orphan value per attempt).
    pub async fn run_retried(
        &self,
        what: &str,
        hook: &Hook,
        input: HookInput<'_>,
    ) -> Result<String> {
        let policy = RetryPolicy {
            attempts: 3,
            attempt_timeout: self.timeout + Duration::from_secs(1),
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        };
        retry(&policy, "secret.hook", || self.run(what, hook, input)).await
    }

    /// Judge a value with a `verify` hook: works, refused, or an error when the hook itself
    /// could not say (unreachable, timed out, an unexpected answer).
    pub async fn verify(&self, hook: &Hook, input: HookInput<'_>) -> Result<Verdict> {
        match self.run_retried("verify", hook, input).await {
            Ok(_) => Ok(Verdict::Works),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::PermissionDenied | ErrorKind::Unauthenticated
                ) =>
            {
                Ok(Verdict::Refused)
            }
            Err(e) => Err(e),
        }
    }

    async fn command(&self, argv: &[String], i: HookInput<'_>) -> Result<String> {
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("AGENTLAB_SECRET", i.subject.expose())
            .env("AGENTLAB_SECRET_NAME", i.name)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in [
            ("AGENTLAB_SECRET_NEW", i.new),
            ("AGENTLAB_SECRET_OLD", i.old),
        ] {
            match v {
                Some(s) => cmd.env(k, s.expose()),
                None => cmd.env_remove(k),
            };
        }
        let out = tokio::time::timeout(self.timeout, cmd.output())
            .await
            .map_err(|_| {
                let t = crate::units::format_duration(self.timeout);
                Error::new(
                    ErrorKind::Timeout,
                    format!("{} still running after {t}: killed", argv[0]),
                )
            })?
            .map_err(|e| Error::new(ErrorKind::NotFound, format!("{}: {e}", argv[0])))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // A command's refusal is its exit status: the verify hook's "this value is refused".
        Err(Error::new(
            ErrorKind::PermissionDenied,
            crate::secret::redact(&format!("{} exited with {}: {tail}", argv[0], out.status)),
        ))
    }

    async fn http(&self, hook: &Hook, i: HookInput<'_>) -> Result<String> {
        let Hook::Http {
            url,
            method,
            token,
            auth,
            body,
            ..
        } = hook
        else {
            return Err(Error::new(ErrorKind::Unexpected, "not an HTTP hook"));
        };
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::config(format!("HTTP method {method:?}")))?;
        let mut req = self.client.request(m, url);
        if auth.as_deref() == Some("secret") {
            req = req.bearer_auth(i.subject.expose());
        } else if let Some(t) = token {
            let t = t.resolve("secrets.token")?;
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.replace("{secret}", i.subject.expose()));
        }
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            Error::new(
                kind,
                format!("{}: {}", crate::secret::redact_url(url), e.without_url()),
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let kind = match status {
            200..=299 => return Ok(text),
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidResponse,
        };
        let head: String = text.chars().take(200).collect();
        Err(Error::new(
            kind,
            crate::secret::redact(&format!("HTTP {status}: {head}")),
        ))
    }
}

/// The new secret in an `issue` hook's output: `pointer` of its JSON, or the whole output
/// trimmed. Registered for redaction at once.
pub fn issued(name: &str, output: &str, pointer: Option<&str>) -> Result<Secret> {
    let value = match pointer {
        None => output.trim().to_string(),
        Some(p) => {
            let v: serde_json::Value = serde_json::from_str(output).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!("the issue hook's output is not JSON: {e}"),
                )
            })?;
            match v.pointer(p) {
                Some(serde_json::Value::String(s)) => s.clone(),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidResponse,
                        format!("the issue hook's JSON has no string at {p}"),
                    ));
                }
            }
        }
    };
    if value.is_empty() || value.contains('\n') {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            "the issue hook gave an empty or multi-line value",
        )
        .with_context("secret", name.to_string()));
    }
    Ok(Secret::new(value, format!("issued for {name}")))
}

/// The `json_pointer` of a hook.
pub fn pointer(hook: &Hook) -> Option<&str> {
    match hook {
        Hook::Command { json_pointer, .. } | Hook::Http { json_pointer, .. } => {
            json_pointer.as_deref()
        }
    }
}

/// A short fingerprint of a value, safe to show: `sha256:` and 12 hex digits.
pub fn fingerprint(s: &Secret) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(s.expose().as_bytes());
    let hex: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
