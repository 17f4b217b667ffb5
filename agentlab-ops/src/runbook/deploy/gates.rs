//! The deployment gates, each a read step evaluated before any change, and the judgement
//! that stops a deployment on a failed one unless forced with a reason.

use crate::config::DeployConfig;
use crate::environment::Environment;
use crate::error::ErrorKind;
use crate::report::{Action, Outcome, Severity};
use crate::runbook::run::{Checked, Run};

use super::{Gate, MaintenanceWindow, pct};

pub(super) fn gate(name: &str, outcome: Outcome, observed: String, threshold: String) -> Gate {
    Gate {
        name: name.into(),
        outcome,
        observed,
        threshold,
    }
}

/// Record a gate as a check step of its own.
async fn record(run: &Run, step: &str, g: Gate, with_threshold: bool) -> Option<Gate> {
    run.check(step, None, async {
        let summary = if with_threshold {
            format!("{} (needs {})", g.observed, g.threshold)
        } else {
            g.observed.clone()
        };
        let o = g.outcome;
        Ok(Checked::with(g, o, summary))
    })
    .await
    .ok()
}

/// Evaluate every gate (each a read step), before any change.
pub(super) async fn evaluate_gates(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
    high_risk: bool,
    critical: bool,
) -> Vec<Gate> {
    let mut gates = Vec::new();
    let g = error_budget(env, cfg.budget_min.0).await;
    gates.extend(record(run, "gate:error_budget", g, true).await);
    if !cfg.require_checks {
        run.skip(
            "gate:ci_checks",
            Action::Read,
            "deploy.require_checks = false",
        );
        gates.push(gate(
            "ci_checks",
            Outcome::Skipped,
            "not required".into(),
            "green".into(),
        ));
    } else if env.deployer.is_some() {
        let g = ci_checks(env, cfg).await;
        gates.extend(record(run, "gate:ci_checks", g, false).await);
    }
    if env.deployer.is_some() {
        if cfg.required_approvals == 0 {
            let why = "deploy.required_approvals = 0";
            run.skip("gate:code_review", Action::Read, why);
        } else {
            let g = super::review_gates::code_review(env, cfg).await;
            gates.extend(record(run, "gate:code_review", g, false).await);
        }
        if cfg.security_scan.is_empty() {
            let why = "deploy.security_scan = []";
            run.skip("gate:security_scan", Action::Read, why);
        } else {
            let g = super::review_gates::security_scan(env, cfg).await;
            gates.extend(record(run, "gate:security_scan", g, false).await);
        }
    }
    match &cfg.performance {
        Some(p) => {
            let g = super::perf_gate::performance(env, run, p).await;
            gates.extend(record(run, "gate:performance", g, false).await);
        }
        None => run.skip("gate:performance", Action::Read, "no [deploy.performance]"),
    }
    let g = no_flags(env, cfg).await;
    gates.extend(record(run, "gate:no_incident_or_maintenance", g, false).await);
    if !env.hosts.is_empty() {
        let g = deploy_freeze(env, critical).await;
        gates.extend(record(run, "gate:deploy_freeze", g, false).await);
    }
    if high_risk {
        let g = maintenance_window(env, cfg);
        gates.extend(record(run, "gate:maintenance_window", g, true).await);
    } else {
        run.skip(
            "gate:maintenance_window",
            Action::Read,
            "not a high-risk release",
        );
    }
    gates
}

/// 1. Error budget above the minimum on every SLO; an SLO whose budget is unknown fails.
async fn error_budget(env: &Environment, min: f64) -> Gate {
    let need = format!("> {}", pct(min));
    let data = match env.slo_source.fetch().await {
        Err(e) => {
            return gate(
                "error_budget",
                Outcome::Fail,
                format!("SLO data unavailable: {e}"),
                need,
            );
        }
        Ok(d) => d,
    };
    let statuses = env.slo_evaluator().evaluate(&data);
    if statuses.is_empty() {
        return gate(
            "error_budget",
            Outcome::Fail,
            "no SLO evaluated".into(),
            need,
        );
    }
    let mut low = false;
    let mut seen = Vec::new();
    for s in &statuses {
        match s.budget_remaining {
            Some(b) => {
                seen.push(format!("{} {}", s.name, pct(b)));
                low |= b <= min;
            }
            None => {
                seen.push(format!("{} unknown", s.name));
                low = true;
            }
        }
    }
    let o = if low { Outcome::Fail } else { Outcome::Pass };
    gate("error_budget", o, seen.join(", "), format!("{need} left"))
}

/// 2. The commit's CI checks are all completed and green.
async fn ci_checks(env: &Environment, cfg: &DeployConfig) -> Gate {
    let Some(d) = env.deployer.clone() else {
        return gate(
            "ci_checks",
            Outcome::Skipped,
            "no deployer".into(),
            "green".into(),
        );
    };
    let commit = super::review_gates::release_commit(env, cfg).await;
    let short: String = commit.chars().take(12).collect();
    match d.commit_checks(&commit).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => gate(
            "ci_checks",
            Outcome::Skipped,
            format!("{}: no CI checks to read", d.describe()),
            "green".into(),
        ),
        Err(e) => gate(
            "ci_checks",
            Outcome::Fail,
            format!("checks of {short} unreadable: {e}"),
            "green".into(),
        ),
        Ok(s) if s.green() => gate(
            "ci_checks",
            Outcome::Pass,
            format!("{} checks of {short} green", s.total),
            "green".into(),
        ),
        Ok(s) => gate(
            "ci_checks",
            Outcome::Fail,
            format!(
                "{short}: {} checks, failed [{}], pending [{}]",
                s.total,
                s.failed.join(", "),
                s.pending.join(", ")
            ),
            "every check completed and green".into(),
        ),
    }
}

/// 3. No active incident, maintenance or recovery flag on any host; an unreadable flag fails.
async fn no_flags(env: &Environment, cfg: &DeployConfig) -> Gate {
    let mut flags = vec![cfg.maintenance_flag.clone(), cfg.incident_flag.clone()];
    if let Some(f) = env
        .config
        .backups
        .as_ref()
        .and_then(|b| b.read_only_flag.clone())
    {
        flags.push(f);
    }
    let mut present = Vec::new();
    for h in &env.hosts {
        for f in &flags {
            match h.host.read_file(f).await {
                Ok(_) => present.push(format!("{}:{f}", h.config.name)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => present.push(format!("{}:{f} unreadable ({})", h.config.name, e.kind())),
            }
        }
    }
    if present.is_empty() {
        gate(
            "no_incident_or_maintenance",
            Outcome::Pass,
            format!("no flag on {} hosts", env.hosts.len()),
            "no flag".into(),
        )
    } else {
        gate(
            "no_incident_or_maintenance",
            Outcome::Fail,
            present.join(", "),
            format!("none of {}", flags.join(", ")),
        )
    }
}

/// 4. No deploy freeze from the SLO response; a critical release passes a yellow one.
async fn deploy_freeze(env: &Environment, critical: bool) -> Gate {
    use crate::runbook::slo_response::{FreezeLevel, FreezeStore};
    let need = "no deploy freeze (a critical release passes a non_critical one)".to_string();
    let read = match FreezeStore::of(env) {
        Ok(s) => s.read().await,
        Err(e) => Err(e),
    };
    let (outcome, observed) = match read {
        Err(e) => (
            Outcome::Fail,
            format!("the deploy freeze is unreadable: {e}"),
        ),
        Ok(None) => (Outcome::Pass, "no deploy freeze".to_string()),
        Ok(Some(f)) => {
            let what = format!(
                "deployments frozen ({}) since {} by run {}: {}",
                f.level.as_str(),
                f.since.format("%Y-%m-%d %H:%M UTC"),
                f.run_id,
                f.reason
            );
            if f.level == FreezeLevel::NonCritical && critical {
                (
                    Outcome::Pass,
                    format!("{what}; passed as a critical release"),
                )
            } else {
                (Outcome::Fail, what)
            }
        }
    };
    gate("deploy_freeze", outcome, observed, need)
}

/// 5. A high-risk release needs a maintenance window.
fn maintenance_window(env: &Environment, cfg: &DeployConfig) -> Gate {
    let now = env.clock.now();
    let inside = cfg
        .maintenance_windows
        .iter()
        .filter_map(|w| MaintenanceWindow::parse(w).ok())
        .any(|w| w.contains(now));
    gate(
        "maintenance_window",
        if inside { Outcome::Pass } else { Outcome::Fail },
        format!("now {}", now.format("%a %H:%M UTC")),
        if cfg.maintenance_windows.is_empty() {
            "a window in deploy.maintenance_windows (none configured)".into()
        } else {
            cfg.maintenance_windows.join(" or ")
        },
    )
}

/// Stop on failed gates unless forced; returns whether to go on.
pub(super) fn judge_gates(run: &Run, gates: &[Gate], force: &Option<String>) -> bool {
    let failed: Vec<&Gate> = gates
        .iter()
        .filter(|g| g.outcome == Outcome::Fail)
        .collect();
    if failed.is_empty() {
        return true;
    }
    match force {
        Some(reason) => {
            let names: Vec<&str> = failed.iter().map(|g| g.name.as_str()).collect();
            run.finding(
                Severity::Warning,
                "gates",
                format!("forced past failed gates [{}]: {reason}", names.join(", ")),
            );
            true
        }
        None => {
            for g in failed {
                run.escalate(
                    "deploy_gate_failed",
                    g.name.clone(),
                    g.observed.clone(),
                    g.threshold.clone(),
                    format!(
                        "gate {} failed: nothing was deployed (--force --reason to override)",
                        g.name
                    ),
                );
            }
            false
        }
    }
}
