//! The sandbox's past: three months of journal (morning checks with their SLOs, nightly backup
//! verifications, handovers, maintenances, deploys, incidents, monthly access reviews, a
//! config change mid-month), a sparse three-month log per host with recurring error templates,
//! and per-host resource history with per-endpoint latency for `/metrics/history`, so the
//! monthly review renders every section on it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use super::Scenario;
use crate::error::Result;
use crate::report::{Finding, Report, Severity, Verdict};

/// Days of history before today.
pub(super) const DAYS: i64 = 95;

fn at(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    d.and_hms_opt(h, m, 0)
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

/// The config hash of a run at `t`: the config changed on the 15th of last month.
fn config_hash(t: DateTime<Utc>) -> &'static str {
    let today = Utc::now().date_naive();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let change = first - chrono::Months::new(1) + Duration::days(14);
    if t.date_naive() < change {
        "7d793037a076"
    } else {
        "5d41402abc4b"
    }
}

fn report(
    env: &str,
    runbook: &str,
    t: DateTime<Utc>,
    secs: u64,
    verdict: Verdict,
    payload: Value,
) -> Report {
    Report {
        runbook: runbook.into(),
        environment: env.into(),
        run_id: format!("history-{runbook}-{}", t.format("%Y%m%dT%H%M")),
        started_at: t,
        duration_ms: secs * 1000,
        dry_run: false,
        verdict,
        error: None,
        checks: Vec::new(),
        findings: Vec::new(),
        escalations: Vec::new(),
        payload,
        tool_version: Some(env!("CARGO_PKG_VERSION").into()),
        config_hash: Some(config_hash(t).into()),
    }
}

fn zone(b: f64) -> &'static str {
    match b {
        b if b <= 0.0 => "red",
        b if b < 0.5 => "yellow",
        _ => "green",
    }
}

/// The availability budget left on day `d`: a 30-day burn with an incident every 23 days.
fn budget(d: NaiveDate) -> f64 {
    let dom = f64::from(d.day());
    let incident = if d.ordinal() % 23 < 3 { 0.12 } else { 0.0 };
    (1.0 - 0.021 * dom - incident).max(-0.05)
}

fn access_findings(month: u32) -> Vec<Finding> {
    let f = |sev, s: &str, m: &str| Finding {
        severity: sev,
        subject: s.into(),
        message: m.into(),
    };
    let mut v = vec![f(
        Severity::Warning,
        "deploy",
        "sudo without a password (NOPASSWD: ALL)",
    )];
    if month % 2 == 0 {
        v.push(f(
            Severity::Warning,
            "contractor",
            "no login for 92 days: disable the account",
        ));
    } else {
        v.push(f(
            Severity::Critical,
            "web-2:sshd",
            "PasswordAuthentication yes",
        ));
    }
    v
}

/// The morning check and the backup verification of every day.
fn daily(env: &str, d: NaiveDate) -> Vec<Report> {
    let mut v = Vec::new();
    let b = budget(d);
    let slos = json!({"slos": [
        {"name": "availability", "target": 0.999, "budget_remaining": b, "zone": zone(b)},
        {"name": "latency", "target": 0.99, "budget_remaining": 0.82, "zone": "green"},
    ]});
    let esc = if zone(b) == "green" {
        Verdict::Healthy
    } else {
        Verdict::Escalate
    };
    v.push(report(env, "morning_check", at(d, 9, 0), 38, esc, slos));
    let failed = d.ordinal() % 17 == 0;
    let day = d.format("%Y%m%d").to_string();
    let grow = 1.0 + 0.004 * f64::from(d.ordinal());
    let sessions = (5_200.0 * grow) as u64;
    v.push(report(
        env,
        "backup_verify",
        at(d, 3, 30),
        94,
        if failed {
            Verdict::Failed
        } else {
            Verdict::Healthy
        },
        json!({"date": day, "store": "fs:sandbox", "datasets": [
            {"dataset": "sessions", "objects": 5, "bytes": sessions, "levels": []},
            {"dataset": "telemetry", "objects": 1, "bytes": 1_950, "levels": []}]}),
    ));
    v
}

fn day_runs(env: &str, d: NaiveDate, s: Scenario) -> Vec<Report> {
    let mut v = daily(env, d);
    if d.weekday().num_days_from_monday() < 5 {
        v.push(report(
            env,
            "handover",
            at(d, 17, 30),
            21,
            Verdict::Healthy,
            json!({}),
        ));
    }
    if d.weekday() == chrono::Weekday::Tue {
        v.push(report(
            env,
            "weekly_maintenance",
            at(d, 2, 0),
            1_260,
            Verdict::Healthy,
            json!({}),
        ));
        v.push(report(
            env,
            "deploy_standard",
            at(d, 14, 0),
            410,
            Verdict::Healthy,
            json!({"version": "1.4.2"}),
        ));
    }
    if d.day() == 1 {
        let mut r = report(
            env,
            "access_review",
            at(d, 10, 0),
            55,
            Verdict::Escalate,
            json!({}),
        );
        r.findings = access_findings(d.month());
        v.push(r);
        v.push(report(
            env,
            "cost_report",
            at(d, 10, 30),
            6,
            Verdict::Healthy,
            json!({}),
        ));
    }
    if d.ordinal() % 23 == 0 {
        v.push(report(
            env,
            "alert_investigation",
            at(d, 11, 5),
            540,
            Verdict::Escalate,
            json!({}),
        ));
        v.push(report(
            env,
            "slo_response",
            at(d, 11, 30),
            1_800,
            Verdict::Escalate,
            json!({}),
        ));
    }
    if s == Scenario::Incident && d.ordinal() % 29 == 0 {
        v.push(report(
            env,
            "deploy_rollback",
            at(d, 15, 0),
            300,
            Verdict::Healthy,
            json!({}),
        ));
    }
    v
}

/// Write the journal of the last [`DAYS`] days (today excluded).
pub(super) fn journal(dir: &Path, env: &str, s: Scenario) -> Result<PathBuf> {
    let path = dir.join("history").join("journal.jsonl");
    std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
    let j = crate::journal::Journal::new(&path);
    let today = Utc::now().date_naive();
    for back in (1..=DAYS).rev() {
        for r in day_runs(env, today - Duration::days(back), s) {
            j.append(&r)?;
        }
    }
    Ok(path)
}

/// A sparse log per host over the last [`DAYS`] days: a line every 20 minutes, the same three
/// error templates recurring (upstream timeouts most, then rate limits, then a slow query).
pub(super) fn month_logs(dir: &Path, hosts: &[String]) -> Result<String> {
    use std::io::Write;
    let start = (Utc::now() - Duration::days(DAYS)).timestamp() / 1200 * 1200;
    let steps = DAYS * 72;
    for (h, host) in hosts.iter().enumerate() {
        let d = dir.join("logs").join(host);
        std::fs::create_dir_all(&d)?;
        let mut w = std::io::BufWriter::new(std::fs::File::create(d.join("month.log"))?);
        for i in 0..steps {
            let t = DateTime::from_timestamp(start + i * 1200, 0).unwrap_or_default();
            let iso = t.format("%Y-%m-%dT%H:%M:%SZ");
            let n = i + h as i64 * 7;
            let line = match n % 97 {
                0 | 31 | 62 => format!(
                    "{iso} ERROR request {} failed: upstream timeout after {}s",
                    1000 + n,
                    5 + n % 20
                ),
                13 | 57 => format!(
                    "{iso} ERROR OpenRouter answered 429 for model {}",
                    ["gpt-4o-mini", "claude-3-haiku"][(n % 2) as usize]
                ),
                44 => format!("{iso} ERROR slow query on runs.csv: {} ms", 2000 + n % 900),
                _ => format!(
                    "{iso} INFO session {} saved {} runs in {}ms",
                    n,
                    n % 50,
                    n % 900
                ),
            };
            writeln!(w, "{line}")?;
        }
        w.flush()?;
    }
    Ok(dir
        .join("logs")
        .join("{host}")
        .join("month.log")
        .display()
        .to_string())
}

/// `/metrics/history`'s per-host days: `days` of them up to today.
pub(super) fn host_days(s: Scenario, host: usize, days: i64) -> Vec<Value> {
    let today = Utc::now().date_naive();
    (0..days)
        .map(|i| {
            let d = today - Duration::days(days - 1 - i);
            let k = d.ordinal() as f64;
            let weekly = if d.weekday().num_days_from_monday() < 5 {
                0.06
            } else {
                0.0
            };
            let disk = match (s, host) {
                (Scenario::DiskFull, 1) => 0.96 - 0.01 * (days - 1 - i) as f64,
                _ => 0.37 + 0.07 * host as f64 + 0.0015 * k.rem_euclid(365.0) / 3.0,
            };
            json!({"date": d.format("%Y-%m-%d").to_string(),
                "cpu": 0.28 + weekly + 0.03 * host as f64 + 0.0008 * (i as f64),
                "memory": 0.55 + 0.03 * host as f64 + 0.0005 * (i as f64),
                "disk": disk.clamp(0.0, 1.0)})
        })
        .collect()
}

/// The service's slowest endpoints over the history, for `/metrics/history`.
pub(super) fn endpoints(s: Scenario) -> Value {
    let slow = if s == Scenario::Degraded {
        4_200.0
    } else {
        1_850.0
    };
    json!([
        {"path": "/api/run", "p95_ms": slow, "requests": 1_204_331},
        {"path": "/api/sessions", "p95_ms": 240.0, "requests": 3_100_870},
        {"path": "/metrics/slo", "p95_ms": 35.0, "requests": 86_400},
        {"path": "/health", "p95_ms": 4.0, "requests": 518_400},
    ])
}

/// The review's past, the rotatable secret and the SLO response's freeze flag, into `cfg`.
pub(super) fn install(
    dir: &Path,
    live: &Path,
    scenario: Scenario,
    cfg: &mut crate::config::Config,
) -> Result<()> {
    // The past the monthly review reads: a journal of its own (the user's journal is
    // left alone), a sparse three-month log per host.
    cfg.review.journals = vec![journal(dir, &cfg.environment, scenario)?];
    let names: Vec<String> = cfg.hosts.iter().map(|h| h.name.clone()).collect();
    cfg.review.log_file = Some(month_logs(dir, &names)?);
    cfg.review.scratch_dir = Some(dir.join("scratch"));
    cfg.secrets = vec![super::files::secret(dir)?];
    // The command deployer has no workflows to pause: the SLO response freezes by its flag.
    cfg.slo_response.workflows.clear();
    cfg.slo_response.red_workflows.clear();
    cfg.slo_response.freeze_flag = live.join("DEPLOY_FREEZE").display().to_string();
    Ok(())
}
