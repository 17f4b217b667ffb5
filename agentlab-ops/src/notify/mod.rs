//! `Notifier`: tell people (Slack incoming webhook, memory double).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};

/// Sends a message to humans.
///
/// Contract: a failed notification is an error the caller reports as a warning; it must never
/// fail a runbook on its own. Errors never contain the webhook URL.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + Debug {
    /// Where messages go, without secrets (`slack`).
    fn describe(&self) -> String;
    /// Send a text message (Slack mrkdwn).
    async fn notify(&self, text: &str) -> Result<()>;
}

#[async_trait::async_trait]
impl<T: Notifier + ?Sized> Notifier for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn notify(&self, text: &str) -> Result<()> {
        (**self).notify(text).await
    }
}

/// Slack incoming webhook: POST `{"text": ...}`.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    client: reqwest::Client,
    url: crate::config::LazySecret,
    policy: RetryPolicy,
}

impl SlackNotifier {
    /// Post to this webhook.
    pub fn new(url: impl Into<crate::config::LazySecret>, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(SlackNotifier {
            client,
            url: url.into(),
            policy: RetryPolicy::new(3, timeout),
        })
    }
}

#[async_trait::async_trait]
impl Notifier for SlackNotifier {
    fn describe(&self) -> String {
        format!("slack ({})", self.url.describe())
    }
    async fn notify(&self, text: &str) -> Result<()> {
        let body = serde_json::json!({ "text": text });
        let url = self.url.get()?;
        retry(&self.policy, "notify.slack", || async {
            let r = self
                .client
                .post(url.expose())
                .json(&body)
                .send()
                .await
                // Never the reqwest message: it contains the webhook URL.
                .map_err(|e| {
                    let kind = if e.is_timeout() {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Unavailable
                    };
                    Error::new(kind, "cannot reach the Slack webhook").set_temporary(true)
                })?;
            let status = r.status().as_u16();
            match status {
                200..=299 => Ok(()),
                429 => Err(Error::new(
                    ErrorKind::RateLimited,
                    "Slack rate limit (HTTP 429)",
                )),
                500..=599 => Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("Slack answered HTTP {status}"),
                )),
                404 | 410 => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("webhook rejected (HTTP {status}): revoked or wrong"),
                )),
                403 => Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "webhook rejected (HTTP 403)",
                )),
                _ => Err(Error::new(
                    ErrorKind::InvalidResponse,
                    format!("Slack answered HTTP {status}"),
                )),
            }
        })
        .await
    }
}

/// Records messages instead of sending them.
#[derive(Debug, Clone, Default)]
pub struct MemoryNotifier {
    /// Messages sent.
    pub sent: CallLog<String>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryNotifier {
    /// A new notifier.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl Notifier for MemoryNotifier {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn notify(&self, text: &str) -> Result<()> {
        self.faults.apply("notify.send").await?;
        self.sent.push(text.to_string());
        Ok(())
    }
}

/// The notifier `[notify]` describes (None without the section). Its webhook is resolved when a
/// post is made, not now: commands that post nothing run without the variable.
pub fn from_config(n: Option<&crate::config::NotifyConfig>) -> Result<Option<Arc<dyn Notifier>>> {
    let Some(n) = n else { return Ok(None) };
    let url = crate::config::LazySecret::deferred(
        n.slack_webhook_url.clone(),
        "notify.slack_webhook_url",
    );
    Ok(Some(Arc::new(SlackNotifier::new(url, n.timeout.0)?)))
}
