//! The spec's **Alert Investigation**: triage (the alert, the changes before it, a metrics
//! snapshot), component isolation (`/health/detailed` and every external dependency), log
//! analysis (the scanner on each host's log: error templates with first-seen times, spikes,
//! top talkers), then resolution — a known issue of `[investigation]` with its documented fix
//! (or the runbook that applies it) — or escalation, paged once with the run id as key.
//!
//! Everything is placed on one timeline relative to the alert's start, so "the deploy 7
//! minutes before the burst" reads off the report. One failing source never hides the others:
//! each step's error is in the report and the investigation goes on with what it has.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::environment::Environment;
use crate::report::Report;
use crate::runbook::registry::{Definition, OptionDoc, Validate, check_args, defaults_of};
use crate::runbook::run::RunOptions;

mod isolate;
mod logs;
mod resolve;
mod triage;

pub use isolate::{Isolated, IsolatedKind};
pub use logs::HostLogs;
pub use resolve::{Decision, DecisionKind};
pub use triage::{AlertInfo, EventKind, MetricSample, TimelineEvent, parse_metrics};

/// Options of `alert_investigation`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvestigateOptions {
    /// The alert: its name, or `label=value`; without it, the most severe alert firing.
    pub alert: Option<String>,
    /// Logs this far back from the alert's start (`[investigation] since` by default).
    pub since: Option<Dur>,
    /// Only this host's log.
    pub host: Option<String>,
    /// Run the matched known issue's runbook.
    pub apply_fix: bool,
    /// Silence the alert this long once a known issue matched (the spec's "update alert
    /// status").
    pub silence: Option<Dur>,
}

impl Validate for InvestigateOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.since.is_some_and(|d| d.0.is_zero()) {
            return Err("since: must be above 0".into());
        }
        if self.silence.is_some_and(|d| d.0.is_zero()) {
            return Err("silence: must be above 0".into());
        }
        if self.alert.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err("alert: must not be empty".into());
        }
        Ok(())
    }
}

/// The payload of `alert_investigation`: a typed triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    /// The alert investigated, when there is one.
    pub alert: Option<AlertInfo>,
    /// The instant everything is placed relative to: the alert's start, else the run's.
    pub anchor: DateTime<Utc>,
    /// Changes, the alert, the error bursts and new templates, oldest first.
    pub timeline: Vec<TimelineEvent>,
    /// The metrics snapshot.
    pub metrics: Vec<MetricSample>,
    /// Components and dependencies, each healthy or not.
    pub components: Vec<Isolated>,
    /// What each host's log says.
    pub logs: Vec<HostLogs>,
    /// Known issue, escalation, or nothing found.
    pub decision: Decision,
}

impl Triage {
    /// Components and dependencies that are not healthy.
    pub fn failing(&self) -> impl Iterator<Item = &Isolated> {
        self.components.iter().filter(|c| !c.healthy)
    }
}

/// The spec's Alert Investigation.
pub async fn alert_investigation(
    env: &Environment,
    o: &InvestigateOptions,
    ro: &RunOptions,
) -> Report {
    let c = &env.config.investigation;
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(c.deadline.0));
    let fix_ro = ro.clone();
    env.execute("alert_investigation", &ro, |run| async move {
        let alert = triage::alert(env, &run, o.alert.as_deref()).await;
        let anchor = alert
            .as_ref()
            .and_then(|a| a.starts_at)
            .unwrap_or_else(|| env.clock.now());
        let since = o.since.map_or(c.since.0, |d| d.0);
        let (changes, metrics, components, logs) = futures::join!(
            triage::changes(env, &run, anchor),
            triage::metrics(env, &run),
            isolate::components(env, &run),
            logs::scan(env, &run, o.host.as_deref(), anchor, since),
        );
        let logs = logs?;
        let mut timeline = changes;
        timeline.extend(triage::alert_event(alert.as_ref(), anchor));
        timeline.extend(logs::events(&logs, anchor));
        timeline.sort_by(|a, b| a.at.cmp(&b.at).then(a.kind.cmp(&b.kind)));
        let mut t = Triage {
            alert,
            anchor,
            timeline,
            metrics,
            components,
            logs,
            decision: Decision::default(),
        };
        t.decision = resolve::decide(env, &run, o, &fix_ro, &t).await?;
        Ok(serde_json::to_value(&t).unwrap_or_default())
    })
    .await
}

/// `alert_investigation`.
pub static ALERT_INVESTIGATION: Definition = Definition {
    name: "alert_investigation",
    command: "investigate",
    aliases: &[],
    summary: "triage an alert: changes before it, metrics, failing components, the logs' new errors, spikes and talkers; a known issue's fix, or escalate",
    changes: true,
    steps: &[
        "triage: the alert (Alertmanager or --alert), deploys and rollbacks from the journal, commits, metrics",
        "isolate: /health/detailed and every [[investigation.dependencies]]",
        "logs: the scanner on each host's [investigation] log_file",
        "resolve: match [[investigation.known_issues]]; apply_fix runs its runbook, silence updates the alert",
        "escalate when unknown: page once through [pagerduty] (dedup key = run id)",
    ],
    options: &[
        OptionDoc {
            name: "alert",
            kind: "name | label=value",
            help: "the alert investigated (default: the most severe firing)",
        },
        OptionDoc {
            name: "since",
            kind: "duration",
            help: "logs this far back from the alert's start",
        },
        OptionDoc {
            name: "host",
            kind: "host name",
            help: "only this host's log",
        },
        OptionDoc {
            name: "apply_fix",
            kind: "bool",
            help: "run the matched known issue's runbook",
        },
        OptionDoc {
            name: "silence",
            kind: "duration",
            help: "silence the alert this long when a known issue matched",
        },
    ],
    defaults: defaults_of::<InvestigateOptions>,
    check_options: check_args::<InvestigateOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: InvestigateOptions =
                crate::runbook::registry::parse_args("alert_investigation", v)?;
            Ok(alert_investigation(env, &o, &run).await)
        })
    },
};
