//! Incidents: PagerDuty REST v2 (`GET /incidents`, triggered and acknowledged, paginated with
//! `more`; a `since`/`until` window is always sent, the default being only the last 30 days)
//! and Events v2 (`POST /v2/enqueue`: trigger, acknowledge, resolve by `dedup_key`, so a
//! runbook's page and its resolution match exactly). The REST token and the routing key are
//! secrets: never in a report, log or error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{BaseUrl, LazySecret};
use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};
use crate::secret::Secret;

/// An open incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `triggered` or `acknowledged`.
    pub status: String,
    /// `high` or `low`.
    pub urgency: String,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// The service it is on.
    pub service: Option<String>,
    /// Where to see it.
    pub url: Option<String>,
}

/// Reads open incidents and sends events.
///
/// Contract: `incidents` returns every triggered or acknowledged incident opened in
/// `[since, until]`, all pages; `trigger` opens (or, with the same `dedup_key`, keeps) one
/// incident and `resolve` closes it; a system that cannot answer is an error, never an
/// empty list.
#[async_trait::async_trait]
pub trait IncidentSource: Send + Sync + std::fmt::Debug {
    /// `pagerduty:...`.
    fn describe(&self) -> String;
    /// Open incidents opened in the window.
    async fn incidents(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<Incident>>;
    /// Page: open an incident keyed `dedup_key`.
    async fn trigger(&self, dedup_key: &str, summary: &str, severity: &str) -> Result<()>;
    /// Close the incident keyed `dedup_key`.
    async fn resolve(&self, dedup_key: &str) -> Result<()>;
}

/// PagerDuty.
#[derive(Debug, Clone)]
pub struct PagerDuty {
    client: reqwest::Client,
    api: BaseUrl,
    events: BaseUrl,
    token: Option<LazySecret>,
    routing_key: Option<LazySecret>,
    policy: RetryPolicy,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    incidents: Vec<RawIncident>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct RawIncident {
    id: String,
    #[serde(default)]
    title: String,
    status: String,
    #[serde(default)]
    urgency: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    service: Option<serde_json::Value>,
}

fn status_error(status: u16, what: &str) -> Error {
    let kind = match status {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        400 | 422 => ErrorKind::ConfigInvalid,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("PagerDuty answered HTTP {status} to {what}"))
        .set_temporary(status >= 500 || status == 429)
}

impl PagerDuty {
    /// A client for the REST API at `api` (token) and the Events API at `events` (routing key).
    pub fn new(
        api: BaseUrl,
        events: BaseUrl,
        token: Option<Secret>,
        routing_key: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(PagerDuty {
            client,
            api,
            events,
            token: token.map(LazySecret::known),
            routing_key: routing_key.map(LazySecret::known),
            policy: RetryPolicy::new(3, timeout),
        })
    }

    /// [`PagerDuty::new`] with secrets read from their variables when first needed: a run that
    /// never pages does not need the routing key's variable.
    pub fn deferred(
        api: BaseUrl,
        events: BaseUrl,
        token: Option<LazySecret>,
        routing_key: Option<LazySecret>,
        timeout: Duration,
    ) -> Result<Self> {
        let mut pd = PagerDuty::new(api, events, None, None, timeout)?;
        pd.token = token;
        pd.routing_key = routing_key;
        Ok(pd)
    }

    async fn page(&self, since: &str, until: &str, offset: usize) -> Result<Page> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| Error::config("pagerduty.token is needed to read incidents"))?
            .get()?;
        let offset = offset.to_string();
        let params = [
            ("statuses[]", "triggered"),
            ("statuses[]", "acknowledged"),
            ("since", since),
            ("until", until),
            ("limit", "100"),
            ("offset", offset.as_str()),
        ];
        let url = reqwest::Url::parse_with_params(&self.api.join("/incidents"), params)
            .map_err(|e| Error::config(format!("pagerduty.api_url: {e}")))?;
        let body = retry(&self.policy, "incidents.list", || async {
            let r = self
                .client
                .get(url.clone())
                .header("authorization", format!("Token token={}", token.expose()))
                .header("accept", "application/vnd.pagerduty+json;version=2")
                .send()
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("PagerDuty: {}", crate::secret::redact(&e.to_string())),
                    )
                    .set_temporary(true)
                })?;
            let status = r.status().as_u16();
            if status >= 300 {
                return Err(status_error(status, "the incident list"));
            }
            r.bytes()
                .await
                .map_err(|e| Error::new(ErrorKind::Unavailable, e.to_string()).set_temporary(true))
        })
        .await
        .map_err(|e| e.with_operation("incidents.list"))?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("PagerDuty's incident list does not parse: {e}"),
            )
        })
    }

    async fn event(
        &self,
        action: &str,
        dedup_key: &str,
        payload: Option<serde_json::Value>,
    ) -> Result<()> {
        let key = self
            .routing_key
            .as_ref()
            .ok_or_else(|| Error::config("pagerduty.routing_key is needed to send events"))?
            .get()?;
        let mut body =
            json!({"routing_key": key.expose(), "event_action": action, "dedup_key": dedup_key});
        if let (Some(p), Some(o)) = (payload, body.as_object_mut()) {
            o.insert("payload".into(), p);
        }
        let url = self.events.join("/v2/enqueue");
        retry(&self.policy, "incidents.event", || async {
            let r = self
                .client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "PagerDuty events: {}",
                            crate::secret::redact(&e.to_string())
                        ),
                    )
                    .set_temporary(true)
                })?;
            let status = r.status().as_u16();
            if status >= 300 {
                return Err(status_error(status, &format!("the {action} event")));
            }
            Ok(())
        })
        .await
        .map_err(|e| e.with_operation("incidents.event"))
    }
}

#[async_trait::async_trait]
impl IncidentSource for PagerDuty {
    fn describe(&self) -> String {
        format!("pagerduty:{}", self.api.join(""))
    }

    async fn incidents(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<Incident>> {
        let (s, u) = (since.to_rfc3339(), until.to_rfc3339());
        let mut out: Vec<Incident> = Vec::new();
        loop {
            let p = self.page(&s, &u, out.len()).await?;
            let n = p.incidents.len();
            out.extend(p.incidents.into_iter().map(|i| Incident {
                id: i.id,
                title: i.title,
                status: i.status,
                urgency: i.urgency,
                created_at: i.created_at,
                service: i.service.and_then(|v| {
                    v.get("summary")
                        .and_then(|s| s.as_str())
                        .map(str::to_string)
                }),
                url: i.html_url,
            }));
            if !p.more || n == 0 || out.len() >= 10_000 {
                return Ok(out);
            }
        }
    }

    async fn trigger(&self, dedup_key: &str, summary: &str, severity: &str) -> Result<()> {
        let payload = json!({"summary": summary, "source": "agentlab-ops", "severity": severity});
        self.event("trigger", dedup_key, Some(payload)).await
    }

    async fn resolve(&self, dedup_key: &str) -> Result<()> {
        self.event("resolve", dedup_key, None).await
    }
}

/// A call to the memory incident source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentCall {
    /// `incidents()`.
    List,
    /// `trigger(dedup_key)`.
    Trigger(String),
    /// `resolve(dedup_key)`.
    Resolve(String),
}

/// Incidents in memory: a trigger opens one (once per dedup key), a resolve closes it.
#[derive(Debug, Clone, Default)]
pub struct MemoryIncidentSource {
    open: Arc<Mutex<Vec<(String, Incident)>>>,
    /// Calls made.
    pub calls: CallLog<IncidentCall>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryIncidentSource {
    /// No incident.
    pub fn new() -> Self {
        Self::default()
    }
    /// Open an incident as someone else's page would.
    pub fn open(&self, title: &str, urgency: &str, at: DateTime<Utc>) -> &Self {
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = o.len() + 1;
        o.push((
            format!("external-{n}"),
            Incident {
                id: format!("P{n:06}"),
                title: title.into(),
                status: "triggered".into(),
                urgency: urgency.into(),
                created_at: at,
                service: Some("agent-lab".into()),
                url: None,
            },
        ));
        self
    }
}

#[async_trait::async_trait]
impl IncidentSource for MemoryIncidentSource {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn incidents(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<Incident>> {
        self.calls.push(IncidentCall::List);
        self.faults.apply("incidents.list").await?;
        let o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        Ok(o.iter()
            .map(|(_, i)| i)
            .filter(|i| i.created_at >= since && i.created_at <= until)
            .cloned()
            .collect())
    }
    async fn trigger(&self, dedup_key: &str, summary: &str, severity: &str) -> Result<()> {
        self.calls.push(IncidentCall::Trigger(dedup_key.into()));
        self.faults.apply("incidents.event").await?;
        let mut o = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if !o.iter().any(|(k, _)| k == dedup_key) {
            let n = o.len() + 1;
            let urgency = if severity == "critical" || severity == "error" {
                "high"
            } else {
                "low"
            };
            o.push((
                dedup_key.into(),
                Incident {
                    id: format!("P{n:06}"),
                    title: summary.into(),
                    status: "triggered".into(),
                    urgency: urgency.into(),
                    created_at: Utc::now(),
                    service: Some("agent-lab".into()),
                    url: None,
                },
            ));
        }
        Ok(())
    }
    async fn resolve(&self, dedup_key: &str) -> Result<()> {
        self.calls.push(IncidentCall::Resolve(dedup_key.into()));
        self.faults.apply("incidents.event").await?;
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| k != dedup_key);
        Ok(())
    }
}
