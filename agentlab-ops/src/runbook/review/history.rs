//! What the journal says about the period: runbook usage and the time it saved, what changed
//! in how runbooks run (tool version, config hash), SLO days per zone from the morning checks,
//! incidents and pages, backup verification nights, and the access review against last
//! month's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Period, Section};
use crate::journal::{Journal, median};
use crate::report::{Report, Verdict};

/// Every report of the environment from the journal and `[review] journals`, one per run id,
/// in start order; and the malformed lines skipped.
pub fn reports(
    env: &crate::environment::Environment,
) -> crate::error::Result<(Vec<Report>, usize, Vec<String>)> {
    let mut paths: Vec<std::path::PathBuf> =
        env.journal.iter().map(|j| j.path().to_path_buf()).collect();
    paths.extend(env.config.review.journals.iter().cloned());
    let mut seen = BTreeSet::new();
    let (mut out, mut bad) = (Vec::new(), 0);
    for p in &paths {
        bad += Journal::new(p).scan(|r| {
            if r.environment == env.name() && seen.insert(r.run_id.clone()) {
                out.push(r);
            }
        })?;
    }
    out.sort_by_key(|r| r.started_at);
    Ok((
        out,
        bad,
        paths.iter().map(|p| p.display().to_string()).collect(),
    ))
}

/// The spec's duration of each runbook done by hand, in minutes (the middle of a range).
pub fn spec_minutes(runbook: &str) -> Option<f64> {
    Some(match runbook {
        "morning_check" => 15.0,
        "handover" => 10.0,
        "deploy_standard" | "deploy_rollback" => 45.0,
        "deploy_blue_green" => 67.5,
        "weekly_maintenance" => 60.0,
        "monthly_review" => 120.0,
        "alert_investigation" => 37.5,
        "slo_response" => 75.0,
        "backup_verify" | "backup_take" => 15.0,
        "backup_recover" => 75.0,
        "restart" => 10.0,
        "emergency_shutdown" | "emergency_recover" => 3.5,
        "scale_assess" | "scale_vertical" | "scale_horizontal" => 45.0,
        "access_review" | "grant_access" | "revoke_access" => 60.0,
        "incident_evidence" | "auth_timeline" => 150.0,
        "load_test" => 60.0,
        "chaos_run" => 30.0,
        "cost_report" => 20.0,
        _ => return None,
    })
}

/// One runbook's month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Runbook.
    pub runbook: String,
    /// Runs (dry runs excluded).
    pub runs: u64,
    /// Healthy or escalated (it did its job) over runs.
    pub success_rate: f64,
    /// Failed runs.
    pub failed: u64,
    /// Median duration.
    pub median_ms: u64,
    /// Minutes by hand (the spec's, or `[review] manual_minutes`).
    pub manual_minutes: Option<f64>,
    /// Hours saved: runs × manual − time taken.
    pub hours_saved: Option<f64>,
}

/// How runbooks ran: one tool version and config hash, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// agentlab-ops version.
    pub tool_version: String,
    /// Config hash.
    pub config_hash: String,
    /// First run with it in the period.
    pub first: DateTime<Utc>,
    /// Runs with it.
    pub runs: u64,
}

/// The usage section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSection {
    /// Per runbook, most used first.
    pub runbooks: Vec<Usage>,
    /// Hours saved in all.
    pub hours_saved: f64,
    /// The (tool version, config) each run used, in order: a new row is a change.
    pub revisions: Vec<Revision>,
}

fn in_period<'a>(rs: &'a [Report], p: &'a Period) -> impl Iterator<Item = &'a Report> + 'a {
    rs.iter()
        .filter(move |r| !r.dry_run && p.contains(r.started_at))
}

/// Runbook usage and time saved.
pub fn usage(rs: &[Report], p: &Period, manual: &BTreeMap<String, f64>) -> Section<UsageSection> {
    let mut by: BTreeMap<&str, (Vec<u64>, u64, u64)> = BTreeMap::new();
    let mut revisions: Vec<Revision> = Vec::new();
    for r in in_period(rs, p) {
        let e = by.entry(&r.runbook).or_default();
        e.0.push(r.duration_ms);
        match r.verdict {
            Verdict::Failed => e.2 += 1,
            _ => e.1 += 1,
        }
        let (v, h) = (
            r.tool_version.clone().unwrap_or_else(|| "unknown".into()),
            r.config_hash.clone().unwrap_or_else(|| "unknown".into()),
        );
        match revisions
            .iter_mut()
            .find(|x| x.tool_version == v && x.config_hash == h)
        {
            Some(x) => x.runs += 1,
            None => revisions.push(Revision {
                tool_version: v,
                config_hash: h,
                first: r.started_at,
                runs: 1,
            }),
        }
    }
    if by.is_empty() {
        return Section::no_data(format!("no runs journaled in {}", p.label));
    }
    let mut runbooks: Vec<Usage> = by
        .into_iter()
        .map(|(name, (mut d, ok, failed))| {
            let runs = d.len() as u64;
            let spent_h = d.iter().sum::<u64>() as f64 / 3_600_000.0;
            let m = manual.get(name).copied().or_else(|| spec_minutes(name));
            Usage {
                runbook: name.to_string(),
                runs,
                success_rate: ok as f64 / runs as f64,
                failed,
                median_ms: median(&mut d),
                manual_minutes: m,
                hours_saved: m.map(|m| runs as f64 * m / 60.0 - spent_h),
            }
        })
        .collect();
    runbooks.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.runbook.cmp(&b.runbook)));
    let hours_saved = runbooks.iter().filter_map(|u| u.hours_saved).sum();
    let runs: u64 = runbooks.iter().map(|u| u.runs).sum();
    let note = format!(
        "{runs} runs of {} runbooks, {hours_saved:.1} hours saved; {} revision(s) of tool and config",
        runbooks.len(),
        revisions.len()
    );
    Section::ok(
        note,
        UsageSection {
            runbooks,
            hours_saved,
            revisions,
        },
    )
}

/// One SLO over the period, from the morning checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloMonth {
    /// SLO name.
    pub name: String,
    /// Budget left at the end of each day checked (the last check of the day).
    pub budget: Vec<(NaiveDate, f64)>,
    /// Days per zone (`green`, `yellow`, `red`, `inconclusive`).
    pub zones: BTreeMap<String, u32>,
    /// Budget consumed by the period's end (1 − the last budget left).
    pub consumed: Option<f64>,
}

/// The SLO section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSection {
    /// Per SLO.
    pub slos: Vec<SloMonth>,
    /// Alert investigations, SLO responses and emergency shutdowns run.
    pub incidents: u64,
    /// Runs that escalated (each one a page or a ticket).
    pub escalated_runs: u64,
    /// Incidents the incident source holds for the period (None: not configured or failed).
    pub open_incidents: Option<usize>,
}

/// Budget left and zone per SLO and day, by SLO name.
type SloDays = BTreeMap<String, BTreeMap<NaiveDate, (f64, String)>>;

/// A morning check's SLOs into `by` (the day's last check wins).
fn add_slos(by: &mut SloDays, r: &Report) {
    let day = r.started_at.date_naive();
    let slos = r.payload.get("slos").and_then(|s| s.as_array());
    for s in slos.into_iter().flatten() {
        let (Some(n), Some(b)) = (
            s.get("name").and_then(|x| x.as_str()),
            s.get("budget_remaining").and_then(|x| x.as_f64()),
        ) else {
            continue;
        };
        let z = s
            .get("zone")
            .and_then(|x| x.as_str())
            .unwrap_or("inconclusive");
        by.entry(n.into()).or_default().insert(day, (b, z.into()));
    }
}

/// SLO days per zone and budget from the morning checks; incidents and escalations.
pub fn slos(rs: &[Report], p: &Period) -> Section<SloSection> {
    let mut by: SloDays = BTreeMap::new();
    let (mut incidents, mut escalated_runs) = (0, 0);
    for r in in_period(rs, p) {
        escalated_runs += u64::from(r.verdict == Verdict::Escalate);
        if matches!(
            r.runbook.as_str(),
            "alert_investigation" | "slo_response" | "emergency_shutdown"
        ) {
            incidents += 1;
        }
        if r.runbook != "morning_check" {
            continue;
        }
        add_slos(&mut by, r);
    }
    if by.is_empty() {
        return Section::no_data(format!(
            "no morning check with SLOs journaled in {}",
            p.label
        ));
    }
    let slos: Vec<SloMonth> = by
        .into_iter()
        .map(|(name, days)| {
            let mut zones = BTreeMap::new();
            for (_, z) in days.values() {
                *zones.entry(z.clone()).or_insert(0) += 1;
            }
            let budget: Vec<(NaiveDate, f64)> = days.iter().map(|(d, (b, _))| (*d, *b)).collect();
            let consumed = budget.last().map(|b| 1.0 - b.1);
            SloMonth {
                name,
                budget,
                zones,
                consumed,
            }
        })
        .collect();
    let line: Vec<String> = slos
        .iter()
        .map(|s| {
            let c = s
                .consumed
                .map_or("?".into(), |c| format!("{:.0}%", c * 100.0));
            let red = s.zones.get("red").copied().unwrap_or(0);
            format!("{} {c} of budget used, {red} red day(s)", s.name)
        })
        .collect();
    let note = format!(
        "{}; {incidents} incident runs, {escalated_runs} escalated runs",
        line.join("; ")
    );
    Section::ok(
        note,
        SloSection {
            slos,
            incidents,
            escalated_runs,
            open_incidents: None,
        },
    )
}

/// One night of backup verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Night {
    /// The backup's day.
    pub date: NaiveDate,
    /// healthy, escalate or failed.
    pub verdict: String,
    /// Bytes verified, all datasets.
    pub bytes: u64,
}

/// The backup section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupSection {
    /// Every night verified, in order.
    pub nights: Vec<Night>,
    /// Nights verified healthy.
    pub verified: u32,
    /// Nights whose verification escalated or failed.
    pub failures: Vec<NaiveDate>,
    /// Size trend, share per week (least squares over the nights' bytes).
    pub size_trend_per_week: Option<f64>,
}

/// The verification history.
pub fn backups(rs: &[Report], p: &Period) -> Section<BackupSection> {
    let mut nights: BTreeMap<NaiveDate, Night> = BTreeMap::new();
    for r in in_period(rs, p).filter(|r| r.runbook == "backup_verify") {
        let date = r
            .payload
            .get("date")
            .and_then(|d| d.as_str())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            .unwrap_or_else(|| r.started_at.date_naive());
        let bytes = r
            .payload
            .get("datasets")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("bytes")?.as_u64())
            .sum();
        let verdict = serde_json::to_value(r.verdict)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        nights.insert(
            date,
            Night {
                date,
                verdict,
                bytes,
            },
        );
    }
    if nights.is_empty() {
        return Section::no_data(format!("no backup verification journaled in {}", p.label));
    }
    let nights: Vec<Night> = nights.into_values().collect();
    let verified = nights.iter().filter(|n| n.verdict == "healthy").count() as u32;
    let failures: Vec<NaiveDate> = nights
        .iter()
        .filter(|n| n.verdict != "healthy")
        .map(|n| n.date)
        .collect();
    let sizes: Vec<f64> = nights.iter().map(|n| n.bytes as f64).collect();
    let mean = sizes.iter().sum::<f64>() / sizes.len() as f64;
    let size_trend_per_week = (sizes.len() >= 2 && mean > 0.0)
        .then(|| 7.0 * super::capacity::linear_fit(&sizes).1 / mean);
    let trend = size_trend_per_week.map_or(String::new(), |t| {
        format!(", size {:+.1}% a week", t * 100.0)
    });
    let note = format!(
        "{verified} of {} nights verified, {} failed{trend}",
        nights.len(),
        failures.len()
    );
    Section::ok(
        note,
        BackupSection {
            nights,
            verified,
            failures,
            size_trend_per_week,
        },
    )
}

/// A finding of the access review, as compared between months.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessFinding {
    /// `warning`, `critical`...
    pub severity: String,
    /// What it is about (an account, a key).
    pub subject: String,
    /// The finding.
    pub message: String,
}

/// The security section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecuritySection {
    /// When the latest review ran.
    pub reviewed_at: DateTime<Utc>,
    /// Its findings.
    pub findings: Vec<AccessFinding>,
    /// New since the review before it.
    pub new: Vec<AccessFinding>,
    /// Gone since the review before it.
    pub resolved: Vec<AccessFinding>,
    /// When the review before it ran (None: the first).
    pub previous_at: Option<DateTime<Utc>>,
}

fn findings_of(r: &Report) -> BTreeSet<AccessFinding> {
    r.findings
        .iter()
        .map(|f| AccessFinding {
            severity: serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            subject: f.subject.clone(),
            message: f.message.clone(),
        })
        .collect()
}

/// The latest access review up to the period's end against the one before it.
pub fn security(rs: &[Report], p: &Period) -> Section<SecuritySection> {
    let reviews: Vec<&Report> = rs
        .iter()
        .filter(|r| {
            r.runbook == "access_review"
                && !r.dry_run
                && r.verdict != Verdict::Failed
                && r.started_at < p.end_instant()
        })
        .collect();
    let Some(last) = reviews.last() else {
        return Section::no_data(format!(
            "no access review journaled by the end of {}",
            p.label
        ));
    };
    let now = findings_of(last);
    let prev = reviews.len().checked_sub(2).map(|i| reviews[i]);
    let before = prev.map(findings_of).unwrap_or_default();
    let new: Vec<AccessFinding> = now.difference(&before).cloned().collect();
    let resolved: Vec<AccessFinding> = before.difference(&now).cloned().collect();
    let note = match prev {
        Some(_) => format!(
            "{} findings on {}: {} new, {} resolved since the review before",
            now.len(),
            last.started_at.date_naive(),
            new.len(),
            resolved.len()
        ),
        None => format!(
            "{} findings on {} (the first review journaled)",
            now.len(),
            last.started_at.date_naive()
        ),
    };
    Section::ok(
        note,
        SecuritySection {
            reviewed_at: last.started_at,
            findings: now.into_iter().collect(),
            new,
            resolved,
            previous_at: prev.map(|r| r.started_at),
        },
    )
}
