//! The spec's **Morning Health Check**: health, SLO status, last night's backups and the
//! resource usage of every host — all concurrently, each with its own timeout, so the wall
//! time is that of the slowest check and one failing check never hides the others.
//!
//! Escalation criteria (spec): any SLO red, error budget below 50%, failed or missing backups,
//! any resource above 90% — thresholds from `[thresholds]`. Also escalated: an unhealthy or
//! unreachable service, an unreachable host, and an SLO that cannot be judged (no data is never
//! green).

use std::time::Duration;

use chrono::NaiveDate;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::backup::{BackupStoreExt, PrefixSummary, day_prefix};
use crate::environment::Environment;
use crate::host::ResourceUsage;
use crate::host::fleet::{FleetOptions, HostOutcome, fan_out};
use crate::probe::{HealthStatus, assess};
use crate::report::{Outcome, Report};
use crate::runbook::run::{Checked, Run, RunOptions};
use crate::slo::{SloStatus, Zone};

mod hosts;
use hosts::host_check;

/// Options of the morning check.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MorningOptions {
    /// Backup date to look for (default: today, UTC).
    pub date: Option<NaiveDate>,
    /// Run options (dry-run, cancellation).
    pub run: RunOptions,
}

impl MorningOptions {
    /// Look for backups of this date.
    pub fn date(mut self, d: NaiveDate) -> Self {
        self.date = Some(d);
        self
    }
    /// Set run options.
    pub fn run(mut self, r: RunOptions) -> Self {
        self.run = r;
        self
    }
}

/// Backups of one dataset for the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetBackup {
    /// Dataset.
    pub dataset: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// Objects found.
    pub objects: u64,
    /// Bytes found.
    pub bytes: u64,
    /// At least one object.
    pub present: bool,
    /// The manifest is there (a backup without one is incomplete).
    pub manifest: bool,
}

/// One host's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    /// Host name.
    pub host: String,
    /// Usage, when it could be read.
    pub usage: Option<ResourceUsage>,
    /// Why not.
    pub error: Option<String>,
}

/// The typed payload of the morning report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MorningPayload {
    /// `/health`.
    pub health: Option<HealthStatus>,
    /// `/health/detailed`.
    pub detailed: Option<HealthStatus>,
    /// SLOs.
    pub slos: Vec<SloStatus>,
    /// Burn-rate alerts firing now.
    pub active_alerts: usize,
    /// Backups per dataset.
    pub backups: Vec<DatasetBackup>,
    /// Hosts.
    pub hosts: Vec<HostResult>,
    /// The alerting system's alerts of the last 24 hours (None: not configured or unreadable).
    pub alerts: Option<crate::runbook::alert_review::AlertReview>,
    /// Open incidents (None: not configured or unreadable).
    pub incidents: Option<Vec<crate::alerts::Incident>>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Run the morning check.
pub async fn morning_check(env: &Environment, opts: &MorningOptions) -> Report {
    let date = opts.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    env.execute("morning_check", &opts.run, |run| async move {
        let t = Some(env.config.thresholds.check_timeout.0);
        let since = chrono::Utc::now() - chrono::Duration::hours(24);
        let (health, detailed, slos, backups, (alerts, incidents), hosts) = futures::join!(
            health_check(env, &run, "health", false, t),
            health_check(env, &run, "health_detailed", true, t),
            slo_check(env, &run, t),
            backup_check(env, &run, date, t),
            async {
                futures::join!(
                    crate::runbook::alert_review::review(env, &run, since, t),
                    crate::runbook::alert_review::incidents(env, &run, t)
                )
            },
            fan_out(
                &env.hosts,
                FleetOptions::new(env.config.fleet.concurrency),
                |h| {
                    let run = &run;
                    async move { Ok::<_, crate::Error>(host_check(env, run, h, t).await) }
                },
            ),
        );
        let hosts: Vec<HostResult> = hosts
            .hosts
            .into_iter()
            .filter_map(|(_, o)| match o {
                HostOutcome::Done(r) => Some(r),
                _ => None,
            })
            .collect();
        let active_alerts = slos
            .iter()
            .map(|s| s.alerts.iter().filter(|a| a.firing).count())
            .sum();
        let payload = MorningPayload {
            health,
            detailed,
            slos,
            active_alerts,
            backups,
            hosts,
            alerts,
            incidents,
        };
        Ok(serde_json::to_value(payload).unwrap_or_default())
    })
    .await
}

async fn health_check(
    env: &Environment,
    run: &Run,
    name: &str,
    detailed: bool,
    t: Option<Duration>,
) -> Option<HealthStatus> {
    let path = if detailed {
        &env.config.service.detailed_health_path
    } else {
        &env.config.service.health_path
    };
    let max_latency = env.config.thresholds.health_latency_max.0;
    let r = run
        .check(name, t, async {
            let resp = match env.probe.get(path).await {
                Ok(r) => r,
                // The service answered, with a failure that persisted through the retries:
                // that is an unhealthy service, not an unreachable one.
                Err(e) if e.context().iter().any(|(k, _)| *k == "status") => {
                    let status = e
                        .context()
                        .iter()
                        .find(|(k, _)| *k == "status")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let attempts = e
                        .context()
                        .iter()
                        .find(|(k, _)| *k == "attempts")
                        .map_or(String::new(), |(_, v)| format!(" after {v} attempts"));
                    let url = e
                        .context()
                        .iter()
                        .find(|(k, _)| *k == "url")
                        .map_or(path.clone(), |(_, v)| v.clone());
                    let h = HealthStatus {
                        url,
                        http_status: status,
                        latency_ms: 0,
                        status: None,
                        healthy: false,
                        components: Vec::new(),
                        problems: vec![format!("HTTP {status}{attempts}")],
                    };
                    let summary = h.problems[0].clone();
                    return Ok(Checked::with(h, Outcome::Fail, summary));
                }
                Err(e) => return Err(e),
            };
            let h = assess(&resp, detailed);
            let retried = if resp.attempts > 1 {
                format!(" after {} attempts", resp.attempts)
            } else {
                String::new()
            };
            let c = if h.healthy {
                Checked::pass(
                    h.clone(),
                    format!(
                        "HTTP {} in {} ms{retried}{}",
                        h.http_status,
                        h.latency_ms,
                        if h.components.is_empty() {
                            String::new()
                        } else {
                            format!(", {} components ok", h.components.len())
                        }
                    ),
                )
            } else {
                Checked::with(h.clone(), Outcome::Fail, h.problems.join("; "))
            };
            Ok(c)
        })
        .await;
    match r {
        Ok(h) => {
            if !h.healthy {
                let failing: Vec<_> = h.components.iter().filter(|c| !c.healthy).collect();
                for c in &failing {
                    run.escalate(
                        "component_unhealthy",
                        c.name.clone(),
                        c.status.clone(),
                        "ok",
                        format!(
                            "component {} is {}{}",
                            c.name,
                            c.status,
                            c.detail
                                .as_ref()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        ),
                    );
                }
                let other: Vec<&String> = h
                    .problems
                    .iter()
                    .filter(|p| !p.starts_with("component "))
                    .collect();
                if !other.is_empty() || failing.is_empty() {
                    run.escalate(
                        "service_unhealthy",
                        path.clone(),
                        other
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join("; "),
                        "HTTP 2xx with a healthy status",
                        format!("{path} reports the service unhealthy"),
                    );
                }
            } else if Duration::from_millis(h.latency_ms) > max_latency {
                run.escalate(
                    "health_slow",
                    path.clone(),
                    format!("{} ms", h.latency_ms),
                    format!("{} ms", max_latency.as_millis()),
                    format!("{path} answered slowly"),
                );
            }
            Some(h)
        }
        Err(e) => {
            run.escalate(
                "service_unreachable",
                path.clone(),
                e.to_string(),
                "an answer",
                format!("{path} could not be checked"),
            );
            None
        }
    }
}

async fn slo_check(env: &Environment, run: &Run, t: Option<Duration>) -> Vec<SloStatus> {
    let min_budget = env.config.thresholds.error_budget_min.0;
    let r = run
        .check("slo", t, async {
            let data = env.slo_source.fetch().await?;
            let statuses = env.slo_evaluator().evaluate(&data);
            let worst = statuses.iter().map(|s| match s.zone {
                Zone::Green => Outcome::Pass,
                Zone::Yellow => Outcome::Warn,
                Zone::Inconclusive => Outcome::Inconclusive,
                Zone::Red => Outcome::Fail,
            });
            let outcome = if statuses.is_empty() {
                Outcome::Inconclusive
            } else {
                worst.max().unwrap_or(Outcome::Pass)
            };
            let summary = if statuses.is_empty() {
                "the SLO source reports no objectives".to_string()
            } else {
                statuses
                    .iter()
                    .map(|s| format!("{} {} ({})", s.name, s.zone.as_str(), s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Ok(Checked::with(statuses, outcome, summary))
        })
        .await;
    match r {
        Ok(statuses) => {
            if statuses.is_empty() {
                run.escalate(
                    "slo_inconclusive",
                    "slo",
                    "no objectives",
                    "at least one",
                    "no SLO could be evaluated",
                );
            }
            for s in &statuses {
                match s.zone {
                    Zone::Red => run.escalate(
                        "slo_red",
                        s.name.clone(),
                        format!("red: {}", s.reason),
                        "not red",
                        format!("SLO {} is red", s.name),
                    ),
                    Zone::Inconclusive => run.escalate(
                        "slo_inconclusive",
                        s.name.clone(),
                        s.reason.clone(),
                        format!(
                            "{} events with counts for the period",
                            env.config
                                .slos
                                .iter()
                                .find(|c| c.name == s.name)
                                .map_or(100, |c| c.min_events)
                        ),
                        format!("SLO {} cannot be judged", s.name),
                    ),
                    _ => {}
                }
                if let Some(b) = s.budget_remaining.filter(|b| *b < min_budget) {
                    run.escalate(
                        "error_budget_low",
                        s.name.clone(),
                        pct(b),
                        pct(min_budget),
                        format!("error budget of {} below {}", s.name, pct(min_budget)),
                    );
                }
            }
            statuses
        }
        Err(e) => {
            run.escalate(
                "slo_unavailable",
                "slo",
                e.to_string(),
                "SLO data",
                "SLO status could not be read",
            );
            Vec::new()
        }
    }
}

async fn backup_check(
    env: &Environment,
    run: &Run,
    date: NaiveDate,
    t: Option<Duration>,
) -> Vec<DatasetBackup> {
    let Some(store) = env.backups.clone() else {
        run.skip(
            "backups",
            crate::report::Action::Read,
            "no [backups] configured",
        );
        return Vec::new();
    };
    let datasets = env.datasets();
    let day = date.format("%Y%m%d").to_string();
    let r = run
        .check("backups", t, async {
            let sums = join_all(datasets.iter().map(|d| {
                let store = store.clone();
                async move {
                    let prefix = day_prefix(d, date);
                    let sum = store.summarize(&prefix).await;
                    let manifest = match store
                        .head(&crate::backup::manifest::manifest_key(d, date))
                        .await
                    {
                        Ok(m) => Ok(Some(m.size)),
                        Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e),
                    };
                    (d.clone(), sum.and_then(|s| manifest.map(|m| (s, m))))
                }
            }))
            .await;
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for (d, s) in sums {
                match s {
                    // Count and bytes of the same set: the data objects, without the manifest.
                    Ok((PrefixSummary { objects, bytes }, manifest)) => out.push(DatasetBackup {
                        dataset: d,
                        date: day.clone(),
                        objects: objects.saturating_sub(u64::from(manifest.is_some())),
                        bytes: bytes.saturating_sub(manifest.unwrap_or(0)),
                        present: objects > u64::from(manifest.is_some()),
                        manifest: manifest.is_some(),
                    }),
                    Err(e) => errors.push((d, e.to_string())),
                }
            }
            let missing: Vec<&str> = out
                .iter()
                .filter(|b| !b.present || !b.manifest)
                .map(|b| b.dataset.as_str())
                .collect();
            let outcome = if errors.is_empty() && missing.is_empty() {
                Outcome::Pass
            } else if !errors.is_empty() {
                Outcome::Error
            } else {
                Outcome::Fail
            };
            let mut summary = out
                .iter()
                .map(|b| {
                    let note = if b.present && !b.manifest {
                        ", no manifest"
                    } else {
                        ""
                    };
                    format!(
                        "{} {} objects ({} bytes){note}",
                        b.dataset, b.objects, b.bytes
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            for (d, e) in &errors {
                summary.push_str(&format!("; {d}: {e}"));
            }
            Ok(Checked::with(
                (out, errors),
                outcome,
                format!("{}: {summary}", store.describe()),
            ))
        })
        .await;
    match r {
        Ok((out, errors)) => {
            for b in out.iter().filter(|b| !b.present) {
                run.escalate(
                    "backup_missing",
                    b.dataset.clone(),
                    format!("0 objects under {}/{}/", b.dataset, b.date),
                    "at least 1 object",
                    format!("no {} backup for {}", b.dataset, b.date),
                );
            }
            for b in out.iter().filter(|b| b.present && !b.manifest) {
                run.escalate(
                    "backup_incomplete",
                    b.dataset.clone(),
                    format!(
                        "{} objects under {}/{}/, no manifest",
                        b.objects, b.dataset, b.date
                    ),
                    "a manifest",
                    format!(
                        "{} backup for {} has no manifest: incomplete",
                        b.dataset, b.date
                    ),
                );
            }
            for (d, e) in errors {
                run.escalate(
                    "backup_check_failed",
                    d.clone(),
                    e,
                    "a readable store",
                    format!("backups of {d} could not be listed"),
                );
            }
            out
        }
        Err(e) => {
            run.escalate(
                "backup_check_failed",
                store.describe(),
                e.to_string(),
                "a readable store",
                "backups could not be checked",
            );
            Vec::new()
        }
    }
}

/// Options of `morning_check` in the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MorningArgs {
    /// Backup date to look for (default today, UTC).
    #[serde(with = "crate::runbook::registry::date")]
    pub date: Option<NaiveDate>,
}

impl crate::runbook::registry::Validate for MorningArgs {}

/// `morning_check` in the catalogue.
pub static DEFINITION: crate::runbook::registry::Definition =
    crate::runbook::registry::Definition {
        name: "morning_check",
        command: "check morning",
        aliases: &["check_morning"],
        summary: "health, SLOs, last night's backups and the resources of every host",
        changes: false,
        steps: &[
            "health",
            "health_detailed",
            "slo",
            "backups",
            "resources:<host>",
        ],
        options: &[crate::runbook::registry::OptionDoc {
            name: "date",
            kind: "YYYY-MM-DD",
            help: "backup date to look for (default today, UTC)",
        }],
        defaults: crate::runbook::registry::defaults_of::<MorningArgs>,
        check_options: crate::runbook::registry::check_args::<MorningArgs>,
        example: "",
        start: |env, v, run| {
            Box::pin(async move {
                let a: MorningArgs = crate::runbook::registry::parse_args("morning_check", v)?;
                Ok(morning_check(env, &MorningOptions { date: a.date, run }).await)
            })
        },
    };
