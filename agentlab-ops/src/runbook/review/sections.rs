//! Gathering the review's sections (each a step of the run, each failing on its own) and
//! judging them: escalations for a failed drill, findings and recommendations for the rest.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::capacity::Capacity;
use super::dr::DrDrill;
use super::history::{BackupSection, SecuritySection, SloSection, UsageSection};
use super::perf::PerfSection;
use super::{Period, Section, SectionStatus};
use crate::environment::Environment;
use crate::report::{Action, Severity};
use crate::runbook::cost::CostPayload;
use crate::runbook::run::Run;

/// The payload of `monthly_review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewPayload {
    /// The environment.
    pub environment: String,
    /// The period.
    pub period: Period,
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// The journals read.
    pub journals: Vec<String>,
    /// Capacity.
    pub capacity: Section<Capacity>,
    /// Cost.
    pub cost: Section<CostPayload>,
    /// SLOs, incidents.
    pub slo: Section<SloSection>,
    /// Performance.
    pub performance: Section<PerfSection>,
    /// Security.
    pub security: Section<SecuritySection>,
    /// Backups.
    pub backups: Section<BackupSection>,
    /// The disaster-recovery drill.
    pub dr: Section<DrDrill>,
    /// Runbook usage.
    pub usage: Section<UsageSection>,
    /// What to do, from the sections.
    pub recommendations: Vec<String>,
    /// Files written (with `out`).
    pub files: Vec<String>,
}

async fn cost(env: &Environment, p: &Period) -> Section<CostPayload> {
    let Some(src) = env.costs.clone() else {
        return Section::not_configured("not configured ([cost])");
    };
    let c = env.config.cost.clone().unwrap_or_default();
    let prev = p.start - chrono::Months::new(1);
    match src.monthly(prev, p.end, &c.metric).await {
        Err(e) => Section::failed(e.to_string()),
        Ok(months) => match months.iter().find(|m| m.start == p.start) {
            None => Section::no_data(format!("no cost data for {}", p.label)),
            Some(cur) => {
                let pay = crate::runbook::cost::summarise(
                    cur,
                    months.iter().find(|m| m.start == prev),
                    c.top,
                );
                let mom = pay.change_ratio.map_or(String::new(), |r| {
                    format!(", {:+.0}% month over month", r * 100.0)
                });
                Section::ok(format!("{:.2} {}{mom}", pay.total, pay.unit), pay)
            }
        },
    }
}

async fn open_incidents(env: &Environment, p: &Period) -> Option<usize> {
    let src = env.incidents.clone()?;
    src.incidents(p.start_instant(), p.end_instant())
        .await
        .ok()
        .map(|v| v.len())
}

fn fmt_ms(ms: u64) -> String {
    crate::config::format_duration(std::time::Duration::from_millis(ms))
}

fn record<T>(run: &Run, name: &str, s: &Section<T>) {
    run.record(name, Action::Read, s.outcome(), s.note.clone());
}

/// The period's reports (None: the journal could not be read) and the journals read.
fn read_journal(env: &Environment, run: &Run) -> (Option<Vec<crate::report::Report>>, Vec<String>) {
    match super::history::reports(env) {
        Ok((rs, bad, paths)) => {
            let skipped = if bad > 0 {
                format!(", {bad} malformed lines skipped")
            } else {
                String::new()
            };
            run.record(
                "journal",
                Action::Read,
                crate::report::Outcome::Pass,
                format!("{} runs in {} journal(s){skipped}", rs.len(), paths.len()),
            );
            (Some(rs), paths)
        }
        Err(e) => {
            run.record(
                "journal",
                Action::Read,
                crate::report::Outcome::Fail,
                e.to_string(),
            );
            (None, Vec::new())
        }
    }
}

/// The disaster-recovery drill as a section.
async fn dr(env: &Environment, drill: bool) -> Section<DrDrill> {
    if !drill {
        return Section::not_configured("not run (drill = false)");
    }
    if env.backups.is_none() {
        return Section::not_configured("not configured ([backups])");
    }
    match super::dr::drill(env).await {
        Ok(d) if d.passed => Section::ok(
            format!(
                "restored {} datasets; RTO {} (target {}), RPO {} (target {})",
                d.datasets.len(),
                fmt_ms(d.rto_ms),
                fmt_ms(d.rto_target_ms),
                fmt_ms(d.rpo_s * 1000),
                fmt_ms(d.rpo_target_s * 1000)
            ),
            d,
        ),
        Ok(d) => Section {
            status: SectionStatus::Failed,
            note: format!("drill failed: {}", d.problems.join("; ")),
            data: Some(d),
        },
        Err(e) => Section::failed(e.to_string()),
    }
}

/// Every section, each recorded as a step.
pub async fn gather(env: &Environment, run: &Run, p: &Period, drill: bool) -> ReviewPayload {
    let (reports, journals) = read_journal(env, run);
    // One read of /metrics/history for capacity and the endpoints.
    let history = super::capacity::fetch_history(env, p).await;
    let (capacity, cost, perf, dr, incidents) = futures::join!(
        super::capacity::gather(env, p, history.as_ref()),
        cost(env, p),
        super::perf::gather(env, p, history.as_ref()),
        dr(env, drill),
        open_incidents(env, p)
    );
    fn journal_failed<T>() -> Section<T> {
        Section::failed("the journal could not be read")
    }
    let rs = reports.as_deref();
    let mut slo = rs.map_or_else(journal_failed, |r| super::history::slos(r, p));
    if let Some(d) = slo.data.as_mut() {
        d.open_incidents = incidents;
    }
    let security = rs.map_or_else(journal_failed, |r| super::history::security(r, p));
    let backups = rs.map_or_else(journal_failed, |r| super::history::backups(r, p));
    let usage = rs.map_or_else(journal_failed, |r| {
        super::history::usage(r, p, &env.config.review.manual_minutes)
    });
    record(run, "capacity", &capacity);
    record(run, "cost", &cost);
    record(run, "slo", &slo);
    record(run, "performance", &perf);
    record(run, "security", &security);
    record(run, "backups", &backups);
    record(run, "dr_drill", &dr);
    record(run, "usage", &usage);
    ReviewPayload {
        environment: env.name().to_string(),
        period: p.clone(),
        generated_at: env.clock.now(),
        journals,
        capacity,
        cost,
        slo,
        performance: perf,
        security,
        backups,
        dr,
        usage,
        recommendations: Vec::new(),
        files: Vec::new(),
    }
}

/// Findings and recommendations for resources over, or soon over, their threshold.
fn capacity_advice(run: &Run, p: &ReviewPayload, rec: &mut Vec<String>) {
    if let Some(c) = &p.capacity.data {
        let soon = p.generated_at.date_naive() + chrono::Duration::days(90);
        for s in &c.series {
            match (s.over, s.crosses_on) {
                (true, _) => rec.push(format!(
                    "{} {} is over {:.0}% now: scale it (scale assess)",
                    s.subject,
                    s.resource,
                    c.threshold * 100.0
                )),
                (false, Some(d)) if d <= soon => {
                    run.finding(
                        Severity::Warning,
                        format!("{}:{}", s.subject, s.resource),
                        format!(
                            "at this trend it reaches {:.0}% on {d}",
                            c.threshold * 100.0
                        ),
                    );
                    rec.push(format!(
                        "Plan capacity for {} {} before {d} ({:+.2} points a day)",
                        s.subject,
                        s.resource,
                        s.slope_per_day * 100.0
                    ));
                }
                _ => {}
            }
        }
    }
}

/// Escalate a failed drill; findings and recommendations from the rest.
pub fn judge(run: &Run, p: &mut ReviewPayload) {
    let mut rec = Vec::new();
    if let Some(d) = p.dr.data.as_ref().filter(|d| !d.passed) {
        run.escalate(
            "dr_drill_failed",
            "dr_drill",
            d.problems.join("; "),
            "every object restored and valid, RTO and RPO within target",
            "the disaster-recovery drill failed: the latest backup cannot be trusted to restore",
        );
        rec.push(format!(
            "Fix the backups before the next night: {}",
            d.problems.join("; ")
        ));
    } else if p.dr.status == SectionStatus::Failed {
        run.escalate(
            "dr_drill_failed",
            "dr_drill",
            p.dr.note.clone(),
            "a completed drill",
            "the disaster-recovery drill could not run",
        );
    }
    capacity_advice(run, p, &mut rec);
    if let Some(r) = p
        .cost
        .data
        .as_ref()
        .and_then(|c| c.change_ratio)
        .filter(|r| *r >= 0.2)
    {
        rec.push(format!(
            "Cost rose {:+.0}% month over month: look at the top movers",
            r * 100.0
        ));
    }
    for s in p.slo.data.iter().flat_map(|d| &d.slos) {
        if s.zones.get("red").copied().unwrap_or(0) > 0 {
            rec.push(format!(
                "{}: {} red day(s): put reliability work first next month",
                s.name, s.zones["red"]
            ));
        }
    }
    if let Some(b) = p.backups.data.as_ref().filter(|b| !b.failures.is_empty()) {
        rec.push(format!(
            "Backup verification failed on {} night(s): {}",
            b.failures.len(),
            b.failures
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(s) = p.security.data.as_ref().filter(|s| !s.new.is_empty()) {
        rec.push(format!(
            "{} new access-review finding(s) since the last review: see the security section",
            s.new.len()
        ));
    }
    for (name, st) in [
        ("capacity", p.capacity.status),
        ("cost", p.cost.status),
        ("slo", p.slo.status),
        ("performance", p.performance.status),
        ("security", p.security.status),
        ("backups", p.backups.status),
    ] {
        if st == SectionStatus::Failed {
            run.finding(Severity::Warning, name, "its source failed: see the step");
        }
    }
    p.recommendations = rec;
}
