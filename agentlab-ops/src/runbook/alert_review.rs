//! The checklist's **Alert Review**, shared by the morning check and the handover: the alerts
//! the alerting system held since a point in time, by severity, and those still firing. An
//! unsilenced paging alert (severity in `[thresholds] page_severities`) beyond
//! `firing_page_alerts_max` escalates. Without `[alertmanager]` the check says so: never a
//! silent pass.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::AlertState;
use crate::environment::Environment;
use crate::report::{Action, Outcome};
use crate::runbook::run::{Checked, Run};

/// One alert in a review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBrief {
    /// `alertname`.
    pub name: String,
    /// `severity`.
    pub severity: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Silenced (or inhibited).
    pub silenced: bool,
    /// Its summary annotation.
    pub summary: Option<String>,
}

/// What the review found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReview {
    /// The alert source.
    pub source: String,
    /// Alerts that started since `since`.
    pub fired_since: usize,
    /// The review's start.
    pub since: DateTime<Utc>,
    /// Alerts held, by severity.
    pub by_severity: BTreeMap<String, usize>,
    /// Alerts firing now, silenced or not.
    pub firing: Vec<AlertBrief>,
}

/// Review the alerts since `since`, as the read step `alerts`; None when not configured or
/// unreadable (the step says why).
pub async fn review(
    env: &Environment,
    run: &Run,
    since: DateTime<Utc>,
    t: Option<Duration>,
) -> Option<AlertReview> {
    let Some(src) = env.alerts.clone() else {
        run.skip("alerts", Action::Read, "not configured ([alertmanager])");
        return None;
    };
    let th = &env.config.thresholds;
    let pages = |sev: &str| th.page_severities.iter().any(|p| p == sev);
    let r = run
        .check("alerts", t, async {
            let all = src.alerts().await?;
            let firing: Vec<AlertBrief> = all
                .iter()
                .filter(|a| a.ends_at.is_none_or(|e| e > Utc::now()))
                .map(|a| AlertBrief {
                    name: a.name().to_string(),
                    severity: a.severity().to_string(),
                    since: a.starts_at,
                    silenced: a.state == AlertState::Suppressed,
                    summary: a.annotations.get("summary").cloned(),
                })
                .collect();
            let mut by_severity = BTreeMap::new();
            for a in &all {
                *by_severity.entry(a.severity().to_string()).or_insert(0) += 1;
            }
            let loud = firing
                .iter()
                .filter(|a| !a.silenced && pages(&a.severity))
                .count();
            let review = AlertReview {
                source: src.describe(),
                fired_since: all.iter().filter(|a| a.starts_at >= since).count(),
                since,
                by_severity,
                firing,
            };
            let outcome = match (loud, review.firing.iter().any(|a| !a.silenced)) {
                (n, _) if n > th.firing_page_alerts_max => Outcome::Fail,
                (_, true) => Outcome::Warn,
                _ => Outcome::Pass,
            };
            let s = format!(
                "{} alerts since {}, {} firing ({loud} paging, unsilenced), by severity {:?}",
                review.fired_since,
                since.format("%a %H:%M UTC"),
                review.firing.len(),
                review.by_severity
            );
            Ok(Checked::with(review, outcome, s))
        })
        .await
        .ok()?;
    let loud: Vec<&AlertBrief> = r
        .firing
        .iter()
        .filter(|a| !a.silenced && pages(&a.severity))
        .collect();
    if loud.len() > th.firing_page_alerts_max {
        for a in loud {
            run.escalate(
                "alert_firing",
                a.name.clone(),
                format!("{} since {}", a.severity, a.since.format("%H:%M UTC")),
                format!("≤ {} unsilenced paging alerts", th.firing_page_alerts_max),
                format!(
                    "{} ({}) is firing: {}",
                    a.name,
                    a.severity,
                    a.summary.clone().unwrap_or_default()
                ),
            );
        }
    }
    Some(r)
}

/// The checklist's **Incident Review**: open incidents (opened in the last 30 days) with
/// urgency and age; more open high-urgency ones than `[thresholds]
/// high_urgency_incidents_max` escalate. Without `[pagerduty]` the check says so.
pub async fn incidents(
    env: &Environment,
    run: &Run,
    t: Option<Duration>,
) -> Option<Vec<crate::alerts::Incident>> {
    let Some(src) = env.incidents.clone() else {
        run.skip("incidents", Action::Read, "not configured ([pagerduty])");
        return None;
    };
    let max = env.config.thresholds.high_urgency_incidents_max;
    let now = Utc::now();
    let r = run
        .check("incidents", t, async {
            let all = src.incidents(now - chrono::Duration::days(30), now).await?;
            let high = all.iter().filter(|i| i.urgency == "high").count();
            let outcome = match high {
                n if n > max => Outcome::Fail,
                _ if !all.is_empty() => Outcome::Warn,
                _ => Outcome::Pass,
            };
            let oldest = all
                .iter()
                .map(|i| (now - i.created_at).num_hours())
                .max()
                .unwrap_or(0);
            let s = format!(
                "{} open incidents ({high} high urgency; oldest {oldest} h) on {}",
                all.len(),
                src.describe()
            );
            Ok(Checked::with(all, outcome, s))
        })
        .await
        .ok()?;
    let high: Vec<&crate::alerts::Incident> = r.iter().filter(|i| i.urgency == "high").collect();
    if high.len() > max {
        for i in high {
            run.escalate(
                "incident_open",
                i.id.clone(),
                format!("{} for {} h", i.status, (now - i.created_at).num_hours()),
                format!("≤ {max} open high-urgency incidents"),
                format!(
                    "incident {} ({}) is {}: {}",
                    i.id, i.urgency, i.status, i.title
                ),
            );
        }
    }
    Some(r)
}
