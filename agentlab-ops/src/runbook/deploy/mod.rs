//! The deployment runbooks: the spec's Standard Deployment (`standard`), Blue-Green
//! Deployment (`blue_green`) and Rollback Procedure (`rollback`), their gates (`gates`), and
//! what they share: payloads, the health wait, the error-rate reading, the announcement.
//!
//! Every decision is a step or a finding with the values behind it. Gates are evaluated before
//! any change and a failed one stops the run unless forced with a reason. Once a deployment
//! started, its rollback is registered as the undo: a failed workflow, an unhealthy new
//! version, a failed smoke check, an error rate above the limit, Ctrl-C — all roll back.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::{DeployConfig, format_duration};
use crate::deploy::{Deployer, RunResult};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::probe::{HealthProbe, assess};
use crate::report::{Outcome, Severity};
use crate::runbook::run::{Run, RunOptions};
use crate::runbook::wave::{Analysis, WaveControl};
use crate::slo::SloSource;

pub use crate::config::MaintenanceWindow;

pub mod args;
mod blue_green;
mod gates;
mod perf_gate;
mod review_gates;
mod rollback;
mod standard;

pub use blue_green::blue_green_deploy;
pub use rollback::rollback;
pub use standard::standard_deploy;

/// The payload of `deploy_rollback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPayload {
    /// The release rolled back to.
    pub previous: Option<String>,
    /// Why.
    pub reason: String,
}

/// One gate and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// `error_budget`, `ci_checks`, `no_incident_or_maintenance`, `maintenance_window`.
    pub name: String,
    /// `pass`, `fail` or `skipped`.
    pub outcome: Outcome,
    /// What was seen.
    pub observed: String,
    /// What was required.
    pub threshold: String,
}

/// Options of [`standard_deploy`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeployOptions {
    /// Version to release (default: the repository's `version.txt`).
    pub version: Option<String>,
    /// Deploy despite failed gates, for this reason (recorded in the report).
    pub force: Option<String>,
    /// A high-risk release: it needs a maintenance window.
    pub high_risk: bool,
    /// A critical release (a reliability fix): it passes a yellow (non-critical) deploy freeze.
    pub critical: bool,
    /// Run options (dry-run evaluates every gate and prints the plan).
    pub run: RunOptions,
}

/// Options of [`blue_green_deploy`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BlueGreenOptions {
    /// Version to release.
    pub version: Option<String>,
    /// Deploy despite failed gates, for this reason.
    pub force: Option<String>,
    /// A critical release: it passes a yellow (non-critical) deploy freeze.
    pub critical: bool,
    /// Pause, resume or abort the rollout from outside.
    pub control: WaveControl,
    /// Run options.
    pub run: RunOptions,
}

/// Options of [`rollback`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// Why (passed to the rollback workflow).
    pub reason: String,
    /// The release to go back to (default: the newest tag before the current one).
    pub to: Option<String>,
    /// Run options.
    pub run: RunOptions,
}

/// One monitoring reading after a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorPoint {
    /// Minutes after the deployment.
    pub minute: u64,
    /// The error rate seen, when it could be read.
    pub error_rate: Option<f64>,
    /// The limit it was held to.
    pub limit: f64,
    /// `pass`, `fail` or `error`.
    pub outcome: Outcome,
}

/// The payload of a deployment report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeployPayload {
    /// The version released.
    pub version: Option<String>,
    /// Its tag.
    pub tag: Option<String>,
    /// The release before it (what a rollback returns to).
    pub previous: Option<String>,
    /// Every gate.
    pub gates: Vec<Gate>,
    /// The reason gates were overridden, when forced.
    pub forced: Option<String>,
    /// Whether the deployment went out.
    pub deployed: bool,
    /// The deploy workflow run.
    pub deploy_run: Option<RunResult>,
    /// Error rate before the deployment.
    pub baseline_error_rate: Option<f64>,
    /// Monitoring readings.
    pub monitoring: Vec<MonitorPoint>,
    /// Whether it was rolled back.
    pub rolled_back: bool,
    /// Why it was rolled back.
    pub rollback_reason: Option<String>,
    /// Blue-green: green's share reached, in percent.
    pub green_percent: Option<u8>,
    /// Blue-green: the analyses, step by step.
    pub analyses: Vec<Analysis>,
}

pub(super) fn deploy_cfg(env: &Environment) -> Result<&DeployConfig> {
    env.config
        .deploy
        .as_ref()
        .ok_or_else(|| Error::config("no [deploy] configured").with_operation("deploy"))
}

pub(super) fn deployer(env: &Environment) -> Result<Arc<dyn Deployer>> {
    env.deployer
        .clone()
        .ok_or_else(|| Error::config("no deployer: configure [deploy]").with_operation("deploy"))
}

/// The SLI whose errors a deployment watches: the configured SLO named like "availability",
/// else the first one, else `availability`.
pub(super) fn error_sli(env: &Environment) -> String {
    env.config
        .slos
        .iter()
        .find(|s| s.name.contains("avail"))
        .or(env.config.slos.first())
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "availability".into())
}

/// The error ratio of an SLI over its shortest window with traffic.
pub(super) async fn bad_ratio(source: &dyn SloSource, sli: &str) -> Result<f64> {
    let data = source.fetch().await?;
    let d = data.iter().find(|d| d.name == sli).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("no SLI named {sli:?} in the metrics"),
        )
    })?;
    d.windows
        .iter()
        .find(|(_, c)| c.total > 0)
        .and_then(|(_, c)| c.error_ratio())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("{sli}: no traffic in any window"),
            )
        })
}

/// The version to release: the one given (without a leading `v`), else the repository's
/// version file.
pub(super) async fn release_version(env: &Environment, given: &Option<String>) -> Result<String> {
    match (given, &env.repo) {
        (Some(v), _) => Ok(v.trim_start_matches('v').to_string()),
        (None, Some(r)) => r.version().await,
        (None, None) => Err(Error::config(
            "no version: pass one, or set deploy.repo_dir to read version.txt",
        )),
    }
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// The configured health paths (`[service] health_path`, `detailed_health_path`).
pub(super) fn health_paths(env: &Environment) -> [String; 2] {
    let s = &env.config.service;
    [s.health_path.clone(), s.detailed_health_path.clone()]
}

/// Wait until the health and detailed health paths are both healthy, at most `wait`.
pub(super) async fn wait_healthy(
    probe: &dyn HealthProbe,
    clock: &dyn Clock,
    wait: Duration,
    paths: &[String; 2],
) -> Result<String> {
    let start = clock.now();
    loop {
        let mut problems = Vec::new();
        for (path, detailed) in [(paths[0].as_str(), false), (paths[1].as_str(), true)] {
            match probe.get(path).await {
                Ok(r) => {
                    let h = assess(&r, detailed);
                    if !h.healthy {
                        problems.push(format!("{path}: {}", h.problems.join("; ")));
                    }
                }
                Err(e) => problems.push(format!("{path}: {e}")),
            }
        }
        if problems.is_empty() {
            return Ok(format!(
                "{} and {} healthy after {}s",
                paths[0],
                paths[1],
                (clock.now() - start).num_seconds()
            ));
        }
        let last = problems.join("; ");
        if (clock.now() - start).to_std().unwrap_or_default() >= wait {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("not healthy within {}: {last}", format_duration(wait)),
            )
            .with_operation("deploy.health"));
        }
        clock.sleep(Duration::from_secs(5)).await;
    }
}
pub(super) fn cfg_environment(env: &Environment) -> String {
    env.config
        .deploy
        .as_ref()
        .map(|d| d.environment.clone())
        .unwrap_or_else(|| env.name().to_string())
}

/// Tell the team how a deployment ended, through the notifier when one is configured. A
/// notification that fails is a warning, never a failed deployment.
pub(super) async fn announce(
    run: &Run,
    env: &Environment,
    target: &str,
    result: &Result<DeployPayload>,
) {
    let Some(n) = env.notifier.clone() else {
        return;
    };
    let text = match result {
        Ok(p) => {
            let v = p
                .tag
                .clone()
                .or(p.version.as_ref().map(|v| format!("v{v}")))
                .unwrap_or_else(|| "the release".into());
            if p.rolled_back {
                format!(
                    ":warning: {v} to {target} rolled back: {}",
                    p.rollback_reason.clone().unwrap_or_default()
                )
            } else if p.deployed {
                format!(":white_check_mark: {v} deployed to {target}")
            } else {
                let failed: Vec<&str> = p
                    .gates
                    .iter()
                    .filter(|g| g.outcome == Outcome::Fail)
                    .map(|g| g.name.as_str())
                    .collect();
                format!(
                    ":no_entry: {v} not deployed to {target}: gates failed ({})",
                    failed.join(", ")
                )
            }
        }
        Err(e) => format!(":x: deployment to {target} failed: {e}"),
    };
    let sent = run
        .change(
            "notify",
            format!("post to {}: {text}", n.describe()),
            async { n.notify(&text).await },
            None,
        )
        .await;
    if let Err(e) = sent {
        run.finding(
            Severity::Warning,
            "notify",
            format!("the deployment notification was not sent: {e}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn windows() {
        let w = MaintenanceWindow::parse("Sun 02:00-04:00").unwrap();
        let sun = Utc.with_ymd_and_hms(2026, 11, 29, 3, 0, 0).unwrap(); // a Sunday
        assert!(w.contains(sun));
        assert!(!w.contains(sun + chrono::Duration::hours(2)));
        assert!(!w.contains(sun + chrono::Duration::days(1)));
        let night = MaintenanceWindow::parse("daily 23:00-01:00").unwrap();
        assert!(night.contains(Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap()));
        assert!(MaintenanceWindow::parse("someday").is_err());
    }
}
