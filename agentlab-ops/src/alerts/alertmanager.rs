//! Alertmanager's API v2: `GET /api/v2/alerts`, `GET|POST /api/v2/silences`,
//! `DELETE /api/v2/silence/{id}`. Expired silences are filtered here: 0.25 ignores `active=`
//! and returns them too (prometheus/alertmanager#2928).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{Alert, AlertSource, AlertState, Matcher, Silence};
use crate::config::BaseUrl;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};

/// An Alertmanager.
#[derive(Debug, Clone)]
pub struct Alertmanager {
    client: reqwest::Client,
    base: BaseUrl,
    policy: RetryPolicy,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    state: String,
    #[serde(default)]
    silenced_by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    fingerprint: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    status: RawStatus,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSilence {
    id: String,
    status: RawSilenceStatus,
    #[serde(default)]
    matchers: Vec<Matcher>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize)]
struct RawSilenceStatus {
    state: String,
}

impl Alertmanager {
    /// The Alertmanager at `base`, each call at most `policy.attempt_timeout`, retried.
    pub fn new(base: BaseUrl, policy: RetryPolicy) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(policy.attempt_timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(Alertmanager {
            client,
            base,
            policy,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        op: &'static str,
    ) -> Result<(u16, bytes::Bytes)> {
        let url = self.base.join(path);
        retry(&self.policy, op, || async {
            let mut req = self.client.request(method.clone(), &url);
            if let Some(b) = &body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let who = format!("Alertmanager at {}", self.base.join(""));
            let (status, bytes) = crate::probe::send(req, &who).await?;
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string();
            // 0.25 answers an unknown silence id with a 500 "silence not found": not a
            // server failure to retry, a 404.
            if status == 500 && text.contains("not found") {
                return Ok((404, bytes));
            }
            if status >= 500 {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("Alertmanager answered HTTP {status}: {}", text.trim()),
                )
                .set_temporary(true));
            }
            Ok((status, bytes))
        })
        .await
        .map_err(|e| e.with_operation(op))
    }

    fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("Alertmanager's {what} do not parse: {e}"),
            )
        })
    }
}

fn client_error(status: u16, bytes: &[u8], what: &str) -> Error {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        .trim()
        .to_string();
    let kind = match status {
        404 => ErrorKind::NotFound,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        _ => ErrorKind::ConfigInvalid,
    };
    Error::new(
        kind,
        format!("Alertmanager refused {what} (HTTP {status}): {text}"),
    )
}

#[async_trait::async_trait]
impl AlertSource for Alertmanager {
    fn describe(&self) -> String {
        format!("alertmanager:{}", self.base.join(""))
    }

    async fn alerts(&self) -> Result<Vec<Alert>> {
        let (status, b) = self
            .call(reqwest::Method::GET, "/api/v2/alerts", None, "alerts.list")
            .await?;
        if status >= 300 {
            return Err(client_error(status, &b, "the alert list"));
        }
        let raw: Vec<RawAlert> = Self::parse(&b, "alerts")?;
        Ok(raw
            .into_iter()
            .map(|a| Alert {
                fingerprint: a.fingerprint,
                labels: a.labels,
                annotations: a.annotations,
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                state: match a.status.state.as_str() {
                    "active" => AlertState::Active,
                    "suppressed" => AlertState::Suppressed,
                    _ => AlertState::Unprocessed,
                },
                silenced_by: a.status.silenced_by,
            })
            .collect())
    }

    async fn silences(&self) -> Result<Vec<Silence>> {
        let (status, b) = self
            .call(
                reqwest::Method::GET,
                "/api/v2/silences",
                None,
                "alerts.silences",
            )
            .await?;
        if status >= 300 {
            return Err(client_error(status, &b, "the silence list"));
        }
        let raw: Vec<RawSilence> = Self::parse(&b, "silences")?;
        Ok(raw
            .into_iter()
            .filter(|s| s.status.state != "expired")
            .map(|s| Silence {
                id: s.id,
                matchers: s.matchers,
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                created_by: s.created_by,
                comment: s.comment,
            })
            .collect())
    }

    async fn silence(
        &self,
        matchers: &[Matcher],
        ends_at: DateTime<Utc>,
        created_by: &str,
        comment: &str,
    ) -> Result<String> {
        if matchers.is_empty() {
            return Err(Error::config("a silence needs at least one matcher"));
        }
        let body = json!({
            "matchers": matchers.iter().map(|m| json!({"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal})).collect::<Vec<_>>(),
            "startsAt": Utc::now().to_rfc3339(), "endsAt": ends_at.to_rfc3339(),
            "createdBy": created_by, "comment": comment,
        });
        let (status, b) = self
            .call(
                reqwest::Method::POST,
                "/api/v2/silences",
                Some(body),
                "alerts.silence",
            )
            .await?;
        if status >= 300 {
            return Err(client_error(status, &b, "the silence"));
        }
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "silenceID")]
            silence_id: String,
        }
        Ok(Self::parse::<Created>(&b, "silence answer")?.silence_id)
    }

    async fn expire(&self, id: &str) -> Result<()> {
        let path = format!("/api/v2/silence/{id}");
        let (status, b) = self
            .call(reqwest::Method::DELETE, &path, None, "alerts.expire")
            .await?;
        if status >= 300 {
            return Err(client_error(status, &b, &format!("expiring silence {id}")));
        }
        Ok(())
    }
}
