//! The HTTP probe (reqwest): per-attempt timeout, retries of 5xx / connection errors / hangs.

use std::time::Instant;

use crate::config::{BaseUrl, ServiceConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::probe::{HealthProbe, ProbeResponse};
use crate::retry::{RetryPolicy, retry};
use crate::secret::{Secret, redact_url};

const MAX_BODY: usize = 64 * 1024;

/// Probes the service over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
    base: BaseUrl,
    policy: RetryPolicy,
    token: Option<Secret>,
}

impl HttpProbe {
    /// A probe for `base_url` with the given retry policy.
    pub fn new(base: BaseUrl, policy: RetryPolicy) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.attempt_timeout)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}"))
                    .with_operation("probe.build")
            })?;
        Ok(HttpProbe {
            client,
            base,
            policy,
            token: None,
        })
    }

    /// Build from `[service]` (resolves the optional token).
    pub fn from_config(cfg: &ServiceConfig) -> Result<Self> {
        let mut p = HttpProbe::new(
            cfg.base_url.clone(),
            RetryPolicy::new(cfg.attempts, cfg.timeout.0),
        )?;
        if let Some(t) = &cfg.token {
            p.token = Some(t.resolve("service.token")?);
        }
        Ok(p)
    }

    /// Send this bearer token.
    pub fn with_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// Override the retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn attempt(&self, url: &str, shown: &str) -> Result<ProbeResponse> {
        let start = Instant::now();
        let mut req = self.client.get(url).header("accept", "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let mut resp = req.send().await.map_err(|e| map_reqwest(e, shown))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| map_reqwest(e, shown))? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room < chunk.len() {
                break;
            }
        }
        let latency = start.elapsed();
        if status >= 500 || status == 429 {
            let kind = if status == 429 {
                ErrorKind::RateLimited
            } else {
                ErrorKind::Unavailable
            };
            return Err(Error::new(kind, format!("HTTP {status}"))
                .with_context("url", shown.to_string())
                .with_context("status", status.to_string()));
        }
        Ok(ProbeResponse {
            url: shown.to_string(),
            status,
            latency,
            body: String::from_utf8_lossy(&body).into_owned(),
            attempts: 1,
        })
    }
}

fn map_reqwest(e: reqwest::Error, url: &str) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Unavailable
    } else if e.is_decode() {
        ErrorKind::InvalidResponse
    } else {
        ErrorKind::Unexpected
    };
    // reqwest's message includes the URL: use our scrubbed one instead.
    let msg = match std::error::Error::source(&e) {
        Some(s) => format!("{}: {}", short_reqwest_kind(&e), s),
        None => short_reqwest_kind(&e).to_string(),
    };
    Error::new(kind, crate::secret::redact(&msg))
        .set_temporary(true)
        .with_context("url", url.to_string())
}

fn short_reqwest_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() {
        "error reading body"
    } else {
        "request failed"
    }
}

#[async_trait::async_trait]
impl HealthProbe for HttpProbe {
    async fn get(&self, path: &str) -> Result<ProbeResponse> {
        let url = self.base.join(path);
        let shown = redact_url(&url);
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let mut r = retry(&self.policy, "probe.get", || {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.attempt(&url, &shown)
        })
        .await
        .map_err(|e| {
            if e.context().iter().any(|(k, _)| *k == "url") {
                e
            } else {
                e.with_context("url", shown.clone())
            }
        })?;
        r.attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
        Ok(r)
    }
}

/// Send `req` and read the whole answer: its status and body. A connection or read failure is
/// a temporary `unavailable` naming `who` (the Prometheus and Alertmanager clients share it).
pub(crate) async fn send(req: reqwest::RequestBuilder, who: &str) -> Result<(u16, bytes::Bytes)> {
    let resp = req.send().await.map_err(|e| {
        Error::new(ErrorKind::Unavailable, format!("{who}: {e}")).set_temporary(true)
    })?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| Error::new(ErrorKind::Unavailable, e.to_string()).set_temporary(true))?;
    Ok((status, bytes))
}
