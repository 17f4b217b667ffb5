//! Triage: which alert, what changed before it (our journal's deploys and rollbacks, the
//! repository's commits), and a metrics snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::Alert;
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Outcome, Severity};
use crate::runbook::run::{Checked, Run};

/// The alert investigated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertInfo {
    /// `alertname`.
    pub name: String,
    /// `severity`.
    pub severity: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `summary` or `description`.
    pub summary: Option<String>,
    /// When it started firing (None: named on the command line, not found firing).
    pub starts_at: Option<DateTime<Utc>>,
    /// Where it came from (`alertmanager:http://...`, `command line`).
    pub source: String,
}

/// What a timeline event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A commit of the deployed repository.
    Commit,
    /// A deployment (our journal).
    Deploy,
    /// A rollback (our journal).
    Rollback,
    /// Another change by a runbook (restart, maintenance, restore...).
    Change,
    /// Errors in a host's log started to spike.
    Spike,
    /// A message template never seen before first appeared.
    NewTemplate,
    /// The alert started firing.
    Alert,
}

/// One event, placed relative to the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Seconds from the anchor (negative: before the alert).
    pub offset_s: i64,
    /// What kind.
    pub kind: EventKind,
    /// One line.
    pub what: String,
    /// The host, for log events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl TimelineEvent {
    /// An event at `at`, relative to `anchor`.
    pub fn new(at: DateTime<Utc>, anchor: DateTime<Utc>, kind: EventKind, what: String) -> Self {
        TimelineEvent {
            at,
            offset_s: (at - anchor).num_seconds(),
            kind,
            what,
            host: None,
        }
    }
    /// `-25m`, `+3m10s`, `0s`.
    pub fn relative(&self) -> String {
        let s = self.offset_s.unsigned_abs();
        let sign = if self.offset_s < 0 { "-" } else { "+" };
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
        let mut d = String::new();
        for (n, u) in [(h, "h"), (m, "m"), (sec, "s")] {
            if n > 0 {
                d.push_str(&format!("{n}{u}"));
            }
        }
        if d.is_empty() {
            return "0s".into();
        }
        format!("{sign}{d}")
    }
}

/// One sample of the metrics snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// Metric (or query) name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value (None: NaN).
    pub value: Option<f64>,
    /// `metrics` (the service's endpoint) or `prometheus`.
    pub source: String,
}

const SEVERITIES: [&str; 5] = ["critical", "error", "warning", "info", "none"];

fn rank(a: &Alert) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == a.severity())
        .unwrap_or(SEVERITIES.len())
}

/// `name` or `label=value`.
fn selects(a: &Alert, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => a.labels.get(k.trim()).is_some_and(|x| x == v.trim()),
        None => a.name() == want,
    }
}

fn info_of(a: &Alert, source: String) -> AlertInfo {
    AlertInfo {
        name: a.name().to_string(),
        severity: a.severity().to_string(),
        labels: a.labels.clone(),
        summary: a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .cloned(),
        starts_at: Some(a.starts_at),
        source,
    }
}

fn named(want: &str) -> AlertInfo {
    AlertInfo {
        name: want.split_once('=').map_or(want, |(_, v)| v).to_string(),
        severity: "none".into(),
        labels: BTreeMap::new(),
        summary: None,
        starts_at: None,
        source: "command line".into(),
    }
}

/// Pick the alert: `want` among those firing (the newest of several), else the most severe,
/// then newest, of the active ones.
pub(super) fn pick<'a>(alerts: &'a [Alert], want: Option<&str>) -> Option<&'a Alert> {
    use crate::alerts::AlertState;
    let firing = alerts
        .iter()
        .filter(|a| a.ends_at.is_none_or(|e| e > a.starts_at));
    match want {
        Some(w) => firing.filter(|a| selects(a, w)).max_by_key(|a| a.starts_at),
        None => firing
            .filter(|a| a.state == AlertState::Active)
            .min_by_key(|a| (rank(a), std::cmp::Reverse(a.starts_at))),
    }
}

/// The alert investigated. A source that cannot answer is an error step; the investigation
/// goes on with the alert as named (or none).
pub(super) async fn alert(env: &Environment, run: &Run, want: Option<&str>) -> Option<AlertInfo> {
    let Some(src) = env.alerts.clone() else {
        let Some(w) = want else {
            run.skip(
                "triage:alert",
                crate::report::Action::Read,
                "no [alertmanager] and no --alert",
            );
            return None;
        };
        run.skip(
            "triage:alert",
            crate::report::Action::Read,
            format!("no [alertmanager]: {w} as named"),
        );
        return Some(named(w));
    };
    let r = run
        .check("triage:alert", None, async {
            let all = src.alerts().await?;
            let picked = pick(&all, want).map(|a| info_of(a, src.describe()));
            let s = match (&picked, want) {
                (Some(a), _) => format!(
                    "{} ({}) firing since {} of {} alerts",
                    a.name,
                    a.severity,
                    a.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    all.len()
                ),
                (None, Some(w)) => format!("{w} is not firing ({} alerts held)", all.len()),
                (None, None) => format!("no alert firing ({} held)", all.len()),
            };
            let outcome = if picked.is_none() && want.is_some() {
                Outcome::Warn
            } else {
                Outcome::Pass
            };
            Ok(Checked::with(picked, outcome, s))
        })
        .await;
    match r {
        Ok(Some(a)) => Some(a),
        Ok(None) | Err(_) => want.map(named),
    }
}

/// The alert on the timeline.
pub(super) fn alert_event(a: Option<&AlertInfo>, anchor: DateTime<Utc>) -> Option<TimelineEvent> {
    let a = a?;
    let at = a.starts_at?;
    let what = format!(
        "alert {} ({}) fired{}",
        a.name,
        a.severity,
        a.summary
            .as_ref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
    Some(TimelineEvent::new(at, anchor, EventKind::Alert, what))
}

fn kind_of(runbook: &str) -> EventKind {
    match runbook {
        "deploy_standard" | "deploy_blue_green" => EventKind::Deploy,
        "deploy_rollback" => EventKind::Rollback,
        _ => EventKind::Change,
    }
}

/// Changes in `[anchor - changes_window, now]`: the journal's changing runbooks (not dry
/// runs, this environment) and the repository's last commits.
pub(super) async fn changes(
    env: &Environment,
    run: &Run,
    anchor: DateTime<Utc>,
) -> Vec<TimelineEvent> {
    let c = &env.config.investigation;
    let from = anchor - chrono::Duration::from_std(c.changes_window.0).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(j) = env.journal.clone() {
        let name = env.name().to_string();
        let r = run
            .check("triage:journal", None, async move {
                let events =
                    tokio::task::spawn_blocking(move || journal_changes(&j, &name, from, anchor))
                        .await
                        .map_err(|e| {
                            Error::new(ErrorKind::Unexpected, format!("journal: {e}"))
                        })??;
                let s = format!("{} changes since {}", events.len(), from.to_rfc3339());
                Ok(Checked::pass(events, s))
            })
            .await;
        out.extend(r.unwrap_or_default());
    } else {
        run.skip("triage:journal", crate::report::Action::Read, "no journal");
    }
    if let Some(repo) = env.repo.clone() {
        let r = run
            .check("triage:commits", None, async {
                let commits = repo.log(c.commits).await?;
                let s = match commits.first() {
                    Some(h) => format!(
                        "{} commits, head {} {:?}",
                        commits.len(),
                        &h.sha[..h.sha.len().min(7)],
                        h.subject
                    ),
                    None => "no commit".to_string(),
                };
                Ok(Checked::pass(commits, s))
            })
            .await;
        for k in r.unwrap_or_default() {
            let what = format!(
                "commit {} {} ({})",
                &k.sha[..k.sha.len().min(7)],
                k.subject,
                k.author
            );
            out.push(TimelineEvent::new(k.at, anchor, EventKind::Commit, what));
        }
    }
    out
}

fn journal_changes(
    j: &crate::journal::Journal,
    environment: &str,
    from: DateTime<Utc>,
    anchor: DateTime<Utc>,
) -> Result<Vec<TimelineEvent>> {
    let changing: Vec<&str> = crate::runbook::registry::all()
        .iter()
        .filter(|d| d.changes && d.name != "alert_investigation" && d.name != "slo_response")
        .map(|d| d.name)
        .collect();
    let mut out = Vec::new();
    j.scan(|r| {
        if r.dry_run || r.environment != environment || r.started_at < from {
            return;
        }
        if !changing.contains(&r.runbook.as_str()) {
            return;
        }
        let version = r.payload.get("version").and_then(|v| v.as_str());
        let what = format!(
            "{}{} ({}, run {})",
            r.runbook,
            version.map(|v| format!(" {v}")).unwrap_or_default(),
            r.verdict.as_str(),
            r.run_id
        );
        out.push(TimelineEvent::new(
            r.started_at,
            anchor,
            kind_of(&r.runbook),
            what,
        ));
    })?;
    Ok(out)
}

/// The snapshot: the service's `/metrics` (Prometheus text) and `[investigation] queries`.
pub(super) async fn metrics(env: &Environment, run: &Run) -> Vec<MetricSample> {
    let c = &env.config.investigation;
    let mut out = Vec::new();
    if !c.metrics_path.is_empty() {
        let r = run
            .check("triage:metrics", None, async {
                let resp = env.probe.get(&c.metrics_path).await?;
                if !(200..300).contains(&resp.status) {
                    let s = format!("{} answered HTTP {}", resp.url, resp.status);
                    return Ok(Checked::with(Vec::new(), Outcome::Fail, s));
                }
                let samples = parse_metrics(&resp.body, &c.metrics);
                let s = format!("{} samples from {}", samples.len(), resp.url);
                let outcome = if samples.is_empty() {
                    Outcome::Warn
                } else {
                    Outcome::Pass
                };
                Ok(Checked::with(samples, outcome, s))
            })
            .await;
        out.extend(r.unwrap_or_default());
    }
    if let (Some(p), false) = (&env.config.prometheus, c.queries.is_empty()) {
        out.extend(prometheus(env, run, p).await);
    }
    if out.is_empty() && c.metrics_path.is_empty() && c.queries.is_empty() {
        run.finding(Severity::Info, "metrics", "no metrics snapshot configured");
    }
    out
}

async fn prometheus(
    env: &Environment,
    run: &Run,
    p: &crate::config::PrometheusConfig,
) -> Vec<MetricSample> {
    let c = &env.config.investigation;
    let r = run
        .check("triage:prometheus", None, async {
            let src = crate::slo::PrometheusSloSource::from_config(p, &[])?;
            let mut out = Vec::new();
            for (name, q) in &c.queries {
                let series = src
                    .query_now(q)
                    .await
                    .map_err(|e| e.with_context("query_name", name.clone()))?;
                out.extend(series.into_iter().map(|(labels, value)| MetricSample {
                    name: name.clone(),
                    labels,
                    value,
                    source: "prometheus".into(),
                }));
            }
            let s = format!("{} queries, {} series", c.queries.len(), out.len());
            Ok(Checked::pass(out, s))
        })
        .await;
    r.unwrap_or_default()
}

/// Samples of a Prometheus text exposition whose names start with one of `keep` (the first
/// 40 when `keep` is empty); histograms and summaries are left out. Garbage gives no sample.
pub fn parse_metrics(body: &str, keep: &[String]) -> Vec<MetricSample> {
    use prometheus_parse::Value;
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let Ok(scrape) = prometheus_parse::Scrape::parse(lines) else {
        return Vec::new();
    };
    let wanted = |n: &str| keep.is_empty() || keep.iter().any(|k| n.starts_with(k.as_str()));
    let mut out: Vec<MetricSample> = scrape
        .samples
        .into_iter()
        .filter(|s| wanted(&s.metric))
        .filter_map(|s| {
            let v = match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => return None,
            };
            Some(MetricSample {
                name: s.metric,
                labels: s
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                value: v.is_finite().then_some(v),
                source: "metrics".into(),
            })
        })
        .collect();
    if keep.is_empty() {
        out.truncate(40);
    }
    out
}
