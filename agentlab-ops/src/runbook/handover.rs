//! The spec's **End-of-Day Handover**: the Handover Template filled from the latest morning
//! report (SLO status, active alerts, error budget, escalations) and the journal (runs that
//! failed today), the rest from `[handover]` in the config or the options. Optionally posted to
//! the notifier — a change step, so dry-run only plans it, and a failed post is a warning.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::config::{OutstandingItem, ScheduleItem};
use crate::environment::Environment;
use crate::report::{Outcome, Report, Severity, Verdict};
use crate::runbook::morning::{MorningOptions, MorningPayload, morning_check};
use crate::runbook::run::{Checked, RunOptions};
use crate::slo::Zone;

/// Options of the handover.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HandoverOptions {
    /// Primary on-call (overrides the config).
    pub primary: Option<String>,
    /// Backup on-call (overrides the config).
    pub backup: Option<String>,
    /// Extra outstanding items.
    pub outstanding: Vec<OutstandingItem>,
    /// Extra schedule entries.
    pub schedule: Vec<ScheduleItem>,
    /// Post the handover to the notifier.
    pub notify: bool,
    /// Use a journaled morning report only when younger than this; else run a fresh check.
    pub max_report_age: Duration,
    /// Run options.
    pub run: RunOptions,
}

impl Default for HandoverOptions {
    fn default() -> Self {
        HandoverOptions {
            primary: None,
            backup: None,
            outstanding: Vec::new(),
            schedule: Vec::new(),
            notify: false,
            max_report_age: Duration::from_secs(12 * 3600),
            run: RunOptions::default(),
        }
    }
}

impl HandoverOptions {
    /// Post to the notifier.
    pub fn notify(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }
    /// Set run options.
    pub fn run(mut self, r: RunOptions) -> Self {
        self.run = r;
        self
    }
}

/// The payload of a handover report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoverPayload {
    /// The filled template.
    pub markdown: String,
    /// Worst SLO zone (`Green`, `Yellow`, `Red`, `Unknown`).
    pub slo_status: String,
    /// Burn alerts firing plus open escalations.
    pub active_alerts: usize,
    /// Lowest error budget left, when known.
    pub error_budget: Option<f64>,
    /// Run id of the morning report used.
    pub source_run: String,
    /// Whether it was posted.
    pub posted: bool,
}

/// Run the handover.
pub async fn handover(env: &Environment, opts: &HandoverOptions) -> Report {
    env.execute("handover", &opts.run, |run| async move {
        // 1. The latest morning report, or a fresh one.
        let max_age =
            chrono::Duration::from_std(opts.max_report_age).unwrap_or(chrono::Duration::hours(12));
        let journaled = match &env.journal {
            Some(j) => j.latest("morning_check", env.name()).ok().flatten(),
            None => None,
        }
        .filter(|r| Utc::now() - r.started_at <= max_age && r.verdict != Verdict::Failed);
        let morning = match journaled {
            Some(r) => {
                run.check("morning_report", None, async {
                    let s = format!(
                        "journaled run {} from {}",
                        r.run_id,
                        r.started_at.format("%H:%M UTC")
                    );
                    Ok(Checked::pass(r, s))
                })
                .await?
            }
            None => {
                let mo = MorningOptions::default().run(RunOptions {
                    dry_run: opts.run.dry_run,
                    ..RunOptions::default()
                });
                run.check("morning_report", None, async {
                    let r = morning_check(env, &mo).await;
                    let s = format!("fresh morning check {} ({})", r.run_id, r.verdict.as_str());
                    Ok(Checked::pass(r, s))
                })
                .await?
            }
        };
        let payload: Option<MorningPayload> = morning.payload_as().ok();

        // 2. Today's failed runs from the journal.
        let failed_runs = run
            .check("journal", None, async {
                let mut failed = Vec::new();
                if let Some(j) = &env.journal {
                    let since = Utc::now() - chrono::Duration::hours(24);
                    j.scan(|r| {
                        if r.environment == env.name()
                            && r.started_at >= since
                            && r.verdict == Verdict::Failed
                        {
                            failed.push(r);
                        }
                    })?;
                }
                let n = failed.len();
                Ok(Checked::with(
                    failed,
                    if n == 0 { Outcome::Pass } else { Outcome::Warn },
                    format!("{n} failed runs in the last 24h"),
                ))
            })
            .await?;

        // 3. Fill the template.
        let (zone, budget, alerts_firing) = match &payload {
            Some(p) => {
                let worst = p.slos.iter().map(|s| s.zone).max_by_key(|z| match z {
                    Zone::Green => 0,
                    Zone::Yellow => 1,
                    Zone::Inconclusive => 2,
                    Zone::Red => 3,
                });
                let zone = match worst {
                    Some(Zone::Green) => "Green",
                    Some(Zone::Yellow) => "Yellow",
                    Some(Zone::Red) => "Red",
                    _ => "Unknown",
                };
                let budget = p
                    .slos
                    .iter()
                    .filter_map(|s| s.budget_remaining)
                    .reduce(f64::min);
                (zone, budget, p.active_alerts)
            }
            None => ("Unknown", None, 0),
        };
        let (alerting, incidents) = alerting_of(payload.as_ref());
        let active_alerts = alerts_firing + alerting + morning.escalations.len();
        let cfg = &env.config.handover;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Daily Handover - {}",
            Utc::now().format("%a %b %e %Y %H:%M UTC")
        );
        let _ = writeln!(md, "\n## Current Status");
        let _ = writeln!(md, "- **Environment**: {}", env.name());
        let _ = writeln!(md, "- **SLO Status**: {zone}");
        let _ = writeln!(md, "- **Active Alerts**: {active_alerts}");
        let _ = writeln!(md, "- **Ongoing Incidents**: {incidents}");
        let _ = writeln!(
            md,
            "- **Error Budget**: {}",
            budget.map_or("unknown".to_string(), |b| format!(
                "{:.1}% remaining",
                b * 100.0
            ))
        );
        let _ = writeln!(
            md,
            "- **Morning check**: {} ({}, {})",
            morning.verdict.as_str(),
            morning.run_id,
            morning.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(md, "\n## Outstanding Items");
        let mut any = false;
        for e in &morning.escalations {
            let _ = writeln!(
                md,
                "- {}: {} (observed {}, threshold {}), owner: on-call, ETA: TBD",
                e.criterion,
                crate::report::md_escape(&e.message),
                e.observed,
                e.threshold
            );
            any = true;
        }
        for r in &failed_runs {
            let why = r
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- {} run {} failed: {}, owner: on-call, ETA: TBD",
                r.runbook,
                r.run_id,
                crate::report::md_escape(&why)
            );
            any = true;
        }
        for i in cfg.outstanding.iter().chain(&opts.outstanding) {
            let _ = writeln!(
                md,
                "- {}: {}, {}, {}",
                i.issue,
                or_tbd(&i.status),
                or_tbd(&i.owner),
                or_tbd(&i.eta)
            );
            any = true;
        }
        if !any {
            let _ = writeln!(md, "- None");
        }
        let _ = writeln!(md, "\n## Tomorrow's Schedule");
        let sched: Vec<&ScheduleItem> = cfg.schedule.iter().chain(&opts.schedule).collect();
        if sched.is_empty() {
            let _ = writeln!(md, "- Nothing scheduled");
        }
        for s in sched {
            let _ = writeln!(md, "- {}: {}", s.what, or_tbd(&s.detail));
        }
        let _ = writeln!(md, "\n## On-call Contact");
        let primary = opts.primary.clone().or_else(|| cfg.primary.clone());
        let backup = opts.backup.clone().or_else(|| cfg.backup.clone());
        let _ = writeln!(
            md,
            "- **Primary**: {}",
            primary
                .as_deref()
                .unwrap_or("(not set: [handover] primary)")
        );
        let _ = writeln!(
            md,
            "- **Backup**: {}",
            backup.as_deref().unwrap_or("(not set: [handover] backup)")
        );
        if primary.is_none() || backup.is_none() {
            run.finding(
                Severity::Warning,
                "handover",
                "on-call contacts are not set",
            );
        }
        let md = crate::secret::redact(&md);

        // 4. Post it (a change).
        let mut posted = false;
        if opts.notify {
            match env.notifier.clone() {
                // The user asked for the post: not posting fails the run (the Markdown stays).
                None => run.fail(crate::error::Error::config(
                    "notify: the post was asked for but no [notify] is configured",
                )),
                Some(n) => {
                    let text = md.clone();
                    let r = run
                        .change(
                            "notify",
                            format!("post the handover to {}", n.describe()),
                            async move { n.notify(&text).await },
                            None,
                        )
                        .await;
                    match r {
                        Ok(Some(())) => posted = true,
                        Ok(None) => {}
                        Err(e) => {
                            run.finding(
                                Severity::Critical,
                                "notify",
                                format!("handover not posted: {e}"),
                            );
                            run.fail(e.with_context_once("step", "notify"));
                        }
                    }
                }
            }
        }
        let p = HandoverPayload {
            markdown: md,
            slo_status: zone.to_string(),
            active_alerts,
            error_budget: budget,
            source_run: morning.run_id.clone(),
            posted,
        };
        Ok(serde_json::to_value(p).unwrap_or_default())
    })
    .await
}

fn or_tbd(s: &str) -> &str {
    if s.is_empty() { "TBD" } else { s }
}

/// Options of `handover` in the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoverArgs {
    /// Post the handover to the notifier (a failed post fails the run).
    pub notify: bool,
    /// Primary on-call ("Name phone"; default the config's).
    pub primary: Option<String>,
    /// Backup on-call.
    pub backup: Option<String>,
    /// Extra outstanding items.
    pub items: Vec<OutstandingItem>,
    /// Extra schedule entries.
    pub schedule: Vec<ScheduleItem>,
}

impl crate::runbook::registry::Validate for HandoverArgs {}

/// The alerting system's unsilenced firing alerts the morning check saw, and its open
/// incidents as the handover's Ongoing Incidents line ("not configured" without a source).
fn alerting_of(p: Option<&crate::runbook::MorningPayload>) -> (usize, String) {
    let alerting = p
        .and_then(|p| p.alerts.as_ref())
        .map_or(0, |a| a.firing.iter().filter(|x| !x.silenced).count());
    let incidents = match p.and_then(|p| p.incidents.as_ref()) {
        None => "not configured".to_string(),
        Some(v) if v.is_empty() => "none".to_string(),
        Some(v) => v
            .iter()
            .map(|i| {
                format!(
                    "{} ({} urgency, {}): {}",
                    i.id,
                    i.urgency,
                    i.status,
                    crate::report::md_escape(&i.title)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    (alerting, incidents)
}

/// `handover` in the catalogue.
pub static DEFINITION: crate::runbook::registry::Definition =
    crate::runbook::registry::Definition {
        name: "handover",
        command: "handover",
        aliases: &[],
        summary: "the end-of-day handover (Markdown), posted with notify",
        changes: true,
        steps: &[
            "morning (journaled report, else a fresh check)",
            "notify (with notify = true)",
        ],
        options: &[
            crate::runbook::registry::OptionDoc {
                name: "notify",
                kind: "bool",
                help: "post it to the configured notifier",
            },
            crate::runbook::registry::OptionDoc {
                name: "primary",
                kind: "\"Name phone\"",
                help: "primary on-call",
            },
            crate::runbook::registry::OptionDoc {
                name: "backup",
                kind: "\"Name phone\"",
                help: "backup on-call",
            },
            crate::runbook::registry::OptionDoc {
                name: "items",
                kind: "[{issue, status, owner, eta}]",
                help: "outstanding items",
            },
            crate::runbook::registry::OptionDoc {
                name: "schedule",
                kind: "[{what, detail}]",
                help: "schedule entries",
            },
        ],
        defaults: crate::runbook::registry::defaults_of::<HandoverArgs>,
        check_options: crate::runbook::registry::check_args::<HandoverArgs>,
        example: "",
        start: |env, v, run| {
            Box::pin(async move {
                let a: HandoverArgs = crate::runbook::registry::parse_args("handover", v)?;
                let mut o = HandoverOptions::default().notify(a.notify).run(run);
                o.primary = a.primary;
                o.backup = a.backup;
                o.outstanding = a.items;
                o.schedule = a.schedule;
                Ok(handover(env, &o).await)
            })
        },
    };
