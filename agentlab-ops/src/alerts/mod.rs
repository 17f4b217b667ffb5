//! `AlertSource`: the alerts a team's alerting system holds, and its silences. Backends:
//! [`Alertmanager`] (API v2) and [`MemoryAlertSource`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};

mod alertmanager;
mod pagerduty;

pub use alertmanager::Alertmanager;
pub use pagerduty::{Incident, IncidentCall, IncidentSource, MemoryIncidentSource, PagerDuty};

/// The incident source of `[pagerduty]`, if configured (secrets resolved now).
pub fn incidents_from_config(c: &crate::config::Config) -> Result<Option<Arc<dyn IncidentSource>>> {
    let Some(p) = &c.pagerduty else {
        return Ok(None);
    };
    use crate::config::LazySecret;
    let token = p
        .token
        .clone()
        .map(|t| LazySecret::deferred(t, "pagerduty.token"));
    let key = p
        .routing_key
        .clone()
        .map(|t| LazySecret::deferred(t, "pagerduty.routing_key"));
    let pd = PagerDuty::deferred(
        p.api_url.clone(),
        p.events_url.clone(),
        token,
        key,
        p.timeout.0,
    )?;
    Ok(Some(Arc::new(pd)))
}

/// The alert source of `[alertmanager]`, if configured.
pub fn from_config(c: &crate::config::Config) -> Result<Option<Arc<dyn AlertSource>>> {
    let Some(a) = &c.alertmanager else {
        return Ok(None);
    };
    let policy = crate::retry::RetryPolicy::new(a.attempts, a.timeout.0);
    Ok(Some(Arc::new(Alertmanager::new(a.url.clone(), policy)?)))
}

/// Where an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Firing and notified.
    Active,
    /// Firing but silenced or inhibited.
    Suppressed,
    /// Just received, not yet processed.
    Unprocessed,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its identity (Alertmanager's fingerprint).
    pub fingerprint: String,
    /// Labels (`alertname`, `severity`...).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `runbook_url`...).
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolves (or resolved).
    pub ends_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub state: AlertState,
    /// Silences that hold it.
    pub silenced_by: Vec<String>,
}

impl Alert {
    /// `alertname`.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
    /// `severity` (`none` when unlabelled).
    pub fn severity(&self) -> &str {
        self.labels.get("severity").map_or("none", String::as_str)
    }
}

/// A label matcher of a silence (`alertname="X"`, or a regex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    /// Label.
    pub name: String,
    /// Value (or regex).
    pub value: String,
    /// A regex match.
    #[serde(default)]
    pub is_regex: bool,
    /// An equality (or regex) match; false negates it.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence that is active or pending (expired ones are never returned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// What it matches.
    pub matchers: Vec<Matcher>,
    /// From.
    pub starts_at: DateTime<Utc>,
    /// Until.
    pub ends_at: DateTime<Utc>,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Reads alerts and manages silences.
///
/// Contract: `alerts` returns the alerts the system holds now (firing, silenced, inhibited),
/// each with its labels and start; `silences` returns only active and pending silences (never
/// expired ones, whatever the server's filters do); `silence` creates one and returns its id,
/// which `expire` ends; expiring an unknown id is `not_found`. A system that cannot answer is
/// an error (`unavailable`), never an empty list that would read as "no alert".
#[async_trait::async_trait]
pub trait AlertSource: Send + Sync + Debug {
    /// `alertmanager:http://...`.
    fn describe(&self) -> String;
    /// Every alert held now.
    async fn alerts(&self) -> Result<Vec<Alert>>;
    /// Active and pending silences.
    async fn silences(&self) -> Result<Vec<Silence>>;
    /// Silence what `matchers` match until `ends_at`.
    async fn silence(
        &self,
        matchers: &[Matcher],
        ends_at: DateTime<Utc>,
        created_by: &str,
        comment: &str,
    ) -> Result<String>;
    /// End a silence now.
    async fn expire(&self, id: &str) -> Result<()>;
}

/// A call to the memory alert source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertCall {
    /// `alerts()`.
    Alerts,
    /// `silences()`.
    Silences,
    /// `silence(...)`, its comment.
    Silence(String),
    /// `expire(id)`.
    Expire(String),
}

#[derive(Debug, Default)]
struct MemoryAlerts {
    alerts: Vec<Alert>,
    silences: Vec<Silence>,
    next: u64,
}

/// Alerts in memory: fire them with [`MemoryAlertSource::fire`].
#[derive(Debug, Clone, Default)]
pub struct MemoryAlertSource {
    state: Arc<Mutex<MemoryAlerts>>,
    /// Calls made.
    pub calls: CallLog<AlertCall>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryAlertSource {
    /// No alert, no silence.
    pub fn new() -> Self {
        Self::default()
    }
    fn st(&self) -> std::sync::MutexGuard<'_, MemoryAlerts> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Fire an alert named `name` with `severity`, started at `at`.
    pub fn fire(&self, name: &str, severity: &str, at: DateTime<Utc>) -> &Self {
        let mut st = self.st();
        let n = st.alerts.len();
        st.alerts.push(Alert {
            fingerprint: format!("{n:016x}"),
            labels: BTreeMap::from([
                ("alertname".to_string(), name.to_string()),
                ("severity".to_string(), severity.to_string()),
            ]),
            annotations: BTreeMap::new(),
            starts_at: at,
            ends_at: None,
            state: AlertState::Active,
            silenced_by: Vec::new(),
        });
        self
    }
}

/// Whether a silence's matchers match an alert's labels (equality matchers; a regex matcher
/// matches by equality here).
fn matches(m: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    m.iter()
        .all(|m| (labels.get(&m.name) == Some(&m.value)) == m.is_equal)
}

#[async_trait::async_trait]
impl AlertSource for MemoryAlertSource {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn alerts(&self) -> Result<Vec<Alert>> {
        self.calls.push(AlertCall::Alerts);
        self.faults.apply("alerts.list").await?;
        let st = self.st();
        let now = Utc::now();
        Ok(st
            .alerts
            .iter()
            .map(|a| {
                let by: Vec<String> = st
                    .silences
                    .iter()
                    .filter(|s| {
                        s.starts_at <= now && s.ends_at > now && matches(&s.matchers, &a.labels)
                    })
                    .map(|s| s.id.clone())
                    .collect();
                let state = if by.is_empty() {
                    AlertState::Active
                } else {
                    AlertState::Suppressed
                };
                Alert {
                    state,
                    silenced_by: by,
                    ..a.clone()
                }
            })
            .collect())
    }
    async fn silences(&self) -> Result<Vec<Silence>> {
        self.calls.push(AlertCall::Silences);
        self.faults.apply("alerts.silences").await?;
        let now = Utc::now();
        Ok(self
            .st()
            .silences
            .iter()
            .filter(|s| s.ends_at > now)
            .cloned()
            .collect())
    }
    async fn silence(
        &self,
        matchers: &[Matcher],
        ends_at: DateTime<Utc>,
        created_by: &str,
        comment: &str,
    ) -> Result<String> {
        self.calls.push(AlertCall::Silence(comment.to_string()));
        self.faults.apply("alerts.silence").await?;
        if matchers.is_empty() {
            return Err(Error::config("a silence needs at least one matcher"));
        }
        let mut st = self.st();
        st.next += 1;
        let id = format!("memory-silence-{}", st.next);
        st.silences.push(Silence {
            id: id.clone(),
            matchers: matchers.to_vec(),
            starts_at: Utc::now(),
            ends_at,
            created_by: created_by.to_string(),
            comment: comment.to_string(),
        });
        Ok(id)
    }
    async fn expire(&self, id: &str) -> Result<()> {
        self.calls.push(AlertCall::Expire(id.to_string()));
        self.faults.apply("alerts.expire").await?;
        let mut st = self.st();
        let now = Utc::now();
        match st
            .silences
            .iter_mut()
            .find(|s| s.id == id && s.ends_at > now)
        {
            Some(s) => {
                s.ends_at = now;
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("no active silence {id}"),
            )),
        }
    }
}
