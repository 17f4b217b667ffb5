//! The spec's Standard Deployment (gates, tag, deploy, health, smoke checks, monitoring,
//! rollback) and Blue-Green Deployment (staging, green, traffic steps with analysis).
//!
//! Every decision is a step or a finding with the values behind it. Gates are evaluated before
//! any change and a failed one stops the run unless forced with a reason. Once a deployment
//! started, its rollback is registered as the undo: a failed workflow, an unhealthy new
//! version, a failed smoke check, an error rate above the limit, Ctrl-C — all roll back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::{BlueGreenConfig, DeployConfig, format_duration};
use crate::deploy::{Conclusion, Deployer, RunResult, fill, run_workflow};
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::Cmd;
use crate::probe::{HealthProbe, assess};
use crate::report::{Action, Outcome, Severity};
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::runbook::wave::{Analysis, WaveControl, WaveOutcome, WaveStep, run_wave};
use crate::slo::{HttpSloSource, SloSource};

pub use crate::config::MaintenanceWindow;

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

fn deploy_cfg(env: &Environment) -> Result<&DeployConfig> {
    env.config
        .deploy
        .as_ref()
        .ok_or_else(|| Error::config("no [deploy] configured").with_operation("deploy"))
}

fn deployer(env: &Environment) -> Result<Arc<dyn Deployer>> {
    env.deployer
        .clone()
        .ok_or_else(|| Error::config("no deployer: configure [deploy]").with_operation("deploy"))
}

/// The SLI whose errors a deployment watches: the configured SLO named like "availability",
/// else the first one, else `availability`.
fn error_sli(env: &Environment) -> String {
    env.config
        .slos
        .iter()
        .find(|s| s.name.contains("avail"))
        .or(env.config.slos.first())
        .map(|s| s.name.clone())
        .unwrap_or_else(|| "availability".into())
}

/// The error ratio of an SLI over its shortest window with traffic.
async fn bad_ratio(source: &dyn SloSource, sli: &str) -> Result<f64> {
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
async fn release_version(env: &Environment, given: &Option<String>) -> Result<String> {
    match (given, &env.repo) {
        (Some(v), _) => Ok(v.trim_start_matches('v').to_string()),
        (None, Some(r)) => r.version().await,
        (None, None) => Err(Error::config(
            "no version: pass one, or set deploy.repo_dir to read version.txt",
        )),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// The configured health paths (`[service] health_path`, `detailed_health_path`).
fn health_paths(env: &Environment) -> [String; 2] {
    let s = &env.config.service;
    [s.health_path.clone(), s.detailed_health_path.clone()]
}

/// Wait until the health and detailed health paths are both healthy, at most `wait`.
async fn wait_healthy(
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

/// Evaluate every gate (each a read step), before any change.
async fn evaluate_gates(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
    high_risk: bool,
) -> Vec<Gate> {
    let mut gates = Vec::new();
    let gate = |name: &str, outcome: Outcome, observed: String, threshold: String| Gate {
        name: name.into(),
        outcome,
        observed,
        threshold,
    };

    // 1. Error budget above the minimum on every SLO.
    let min = cfg.budget_min.0;
    let g = run
        .check("gate:error_budget", None, async {
            let g = match env.slo_source.fetch().await {
                Err(e) => gate(
                    "error_budget",
                    Outcome::Fail,
                    format!("SLO data unavailable: {e}"),
                    format!("> {}", pct(min)),
                ),
                Ok(data) => {
                    let statuses = env.slo_evaluator().evaluate(&data);
                    let mut low = Vec::new();
                    let mut seen = Vec::new();
                    for s in &statuses {
                        match s.budget_remaining {
                            Some(b) => {
                                seen.push(format!("{} {}", s.name, pct(b)));
                                if b <= min {
                                    low.push(s.name.clone());
                                }
                            }
                            None => {
                                seen.push(format!("{} unknown", s.name));
                                low.push(s.name.clone());
                            }
                        }
                    }
                    if statuses.is_empty() {
                        gate(
                            "error_budget",
                            Outcome::Fail,
                            "no SLO evaluated".into(),
                            format!("> {}", pct(min)),
                        )
                    } else {
                        let o = if low.is_empty() {
                            Outcome::Pass
                        } else {
                            Outcome::Fail
                        };
                        gate(
                            "error_budget",
                            o,
                            seen.join(", "),
                            format!("> {} left", pct(min)),
                        )
                    }
                }
            };
            let (o, sm) = (g.outcome, format!("{} (needs {})", g.observed, g.threshold));
            Ok(Checked::with(g, o, sm))
        })
        .await;
    gates.extend(g.ok());

    // 2. The commit's CI checks are green.
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
    } else if let Some(d) = env.deployer.clone() {
        let g = run
            .check("gate:ci_checks", None, async {
                let commit = match &env.repo {
                    Some(r) => r.head().await.unwrap_or_else(|_| cfg.git_ref.clone()),
                    None => cfg.git_ref.clone(),
                };
                let short: String = commit.chars().take(12).collect();
                let g = match d.commit_checks(&commit).await {
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
                };
                let (o, sm) = (g.outcome, g.observed.clone());
                Ok(Checked::with(g, o, sm))
            })
            .await;
        gates.extend(g.ok());
    }

    // 3. No active incident, maintenance or recovery on any host.
    let mut flags = vec![cfg.maintenance_flag.clone(), cfg.incident_flag.clone()];
    if let Some(b) = &env.config.backups {
        if let Some(f) = &b.read_only_flag {
            flags.push(f.clone());
        }
    }
    let g = run
        .check("gate:no_incident_or_maintenance", None, async {
            let mut present = Vec::new();
            for h in &env.hosts {
                for f in &flags {
                    match h.host.read_file(f).await {
                        Ok(_) => present.push(format!("{}:{f}", h.config.name)),
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => {
                            present.push(format!("{}:{f} unreadable ({})", h.config.name, e.kind()))
                        }
                    }
                }
            }
            let g = if present.is_empty() {
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
            };
            let (o, sm) = (g.outcome, g.observed.clone());
            Ok(Checked::with(g, o, sm))
        })
        .await;
    gates.extend(g.ok());

    // 4. A high-risk release needs a maintenance window.
    if high_risk {
        let now = env.clock.now();
        let windows: Vec<MaintenanceWindow> = cfg
            .maintenance_windows
            .iter()
            .filter_map(|w| MaintenanceWindow::parse(w).ok())
            .collect();
        let inside = windows.iter().any(|w| w.contains(now));
        let g = gate(
            "maintenance_window",
            if inside { Outcome::Pass } else { Outcome::Fail },
            format!("now {}", now.format("%a %H:%M UTC")),
            if cfg.maintenance_windows.is_empty() {
                "a window in deploy.maintenance_windows (none configured)".into()
            } else {
                cfg.maintenance_windows.join(" or ")
            },
        );
        let r = run
            .check("gate:maintenance_window", None, async {
                let (o, sm) = (g.outcome, format!("{} (needs {})", g.observed, g.threshold));
                Ok(Checked::with(g, o, sm))
            })
            .await;
        gates.extend(r.ok());
    } else {
        run.skip(
            "gate:maintenance_window",
            Action::Read,
            "not a high-risk release",
        );
    }
    gates
}

/// Stop on failed gates unless forced; returns whether to go on.
fn judge_gates(run: &Run, gates: &[Gate], force: &Option<String>) -> bool {
    let failed: Vec<&Gate> = gates
        .iter()
        .filter(|g| g.outcome == Outcome::Fail)
        .collect();
    if failed.is_empty() {
        return true;
    }
    match force {
        Some(reason) => {
            run.finding(
                Severity::Warning,
                "gates",
                format!(
                    "forced past failed gates [{}]: {reason}",
                    failed
                        .iter()
                        .map(|g| g.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
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

/// Everything the rollback needs, owned (it runs as an undo, after the runbook's borrows).
#[derive(Clone)]
struct RollbackPlan {
    run: Run,
    deployer: Arc<dyn Deployer>,
    clock: Arc<dyn Clock>,
    cfg: DeployConfig,
    hosts: Vec<HostEntry>,
    fleet: crate::config::FleetConfig,
    probe: Arc<dyn HealthProbe>,
    health_paths: [String; 2],
    previous: Option<String>,
    reason: Arc<std::sync::Mutex<String>>,
}

impl RollbackPlan {
    /// The spec's manual fallback on every host, through the fleet fan-out: `[fleet]
    /// concurrency` hosts at once, and once more hosts than `[fleet] failure_budget` allows
    /// have failed, the hosts not started yet are skipped (and named).
    async fn manual_rollback(&self, previous: &str) -> Result<String> {
        let vars = BTreeMap::from([("previous".to_string(), previous.to_string())]);
        let mut opts = crate::host::fleet::FleetOptions::new(self.fleet.concurrency);
        if let Some(b) = self.fleet.failure_budget {
            opts = opts.failure_budget(b);
        }
        let res = crate::host::fleet::fan_out(&self.hosts, opts, |h| {
            let vars = vars.clone();
            async move {
                for line in &self.cfg.manual_rollback {
                    let argv = fill(line, &vars);
                    let Some((p, a)) = argv.split_first() else {
                        continue;
                    };
                    let out = h
                        .host
                        .run(&Cmd::new(p.clone()).args(a.iter().cloned()))
                        .await?;
                    if out.status != Some(0) {
                        return Err(Error::new(
                            ErrorKind::Unexpected,
                            format!(
                                "`{}` exited {:?}: {}",
                                argv.join(" "),
                                out.status,
                                out.stderr.trim()
                            ),
                        ));
                    }
                }
                Ok(())
            }
        })
        .await;
        let (failed, skipped) = (res.failed(), res.skipped());
        if failed == 0 {
            return Ok(format!(
                "manual rollback to {previous} on {} hosts",
                self.hosts.len()
            ));
        }
        let problems: Vec<String> = res
            .hosts
            .iter()
            .filter_map(|(name, o)| match o {
                crate::host::fleet::HostOutcome::Failed(e) => Some(format!("{name}: {e}")),
                crate::host::fleet::HostOutcome::Skipped => {
                    Some(format!("{name}: skipped (failure budget spent)"))
                }
                crate::host::fleet::HostOutcome::Done(_) => None,
            })
            .collect();
        Err(Error::new(
            ErrorKind::Unexpected,
            format!(
                "manual rollback failed on {failed} of {} hosts ({skipped} skipped): {}",
                self.hosts.len(),
                problems.join("; ")
            ),
        ))
    }

    /// The rollback workflow; if it fails, the manual fallback over SSH on every host; then
    /// health again. Each decision is a finding.
    async fn execute(self) -> Result<()> {
        let reason = self.reason.lock().map(|r| r.clone()).unwrap_or_default();
        let mut inputs = BTreeMap::from([
            ("environment".to_string(), self.cfg.environment.clone()),
            ("reason".to_string(), reason.clone()),
        ]);
        if let Some(p) = &self.previous {
            inputs.insert("version".into(), p.clone());
        }
        let wf = run_workflow(
            self.deployer.as_ref(),
            self.clock.as_ref(),
            &self.cfg.rollback_workflow,
            &inputs,
            self.cfg.poll_interval.0,
            self.cfg.timeout.0,
        )
        .await;
        let how = match wf {
            Ok(r) if r.conclusion == Conclusion::Success => {
                format!("{} succeeded", self.cfg.rollback_workflow)
            }
            other => {
                let why = match other {
                    Ok(r) => format!(
                        "ended {:?} ({})",
                        r.conclusion,
                        r.detail.unwrap_or_default()
                    )
                    .to_lowercase(),
                    Err(e) => e.to_string(),
                };
                self.run.finding(
                    Severity::Warning,
                    "rollback",
                    format!(
                        "{} {why}: rolling back by hand on every host",
                        self.cfg.rollback_workflow
                    ),
                );
                let previous = self.previous.clone().ok_or_else(|| {
                    Error::new(
                        ErrorKind::NotFound,
                        "manual rollback needs the previous release tag, and none is known",
                    )
                })?;
                self.manual_rollback(&previous).await?
            }
        };
        let health = wait_healthy(
            self.probe.as_ref(),
            self.clock.as_ref(),
            self.cfg.health_wait.0,
            &self.health_paths,
        )
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{how}, but the service is not healthy after it: {e}"),
            )
        })?;
        self.run
            .finding(Severity::Info, "rollback", format!("{how}; {health}"));
        Ok(())
    }
}

/// Record why the deployment is backed out, roll back now, and report (escalate) — or fail
/// when the rollback itself failed.
#[allow(clippy::too_many_arguments)]
async fn back_out(
    run: &Run,
    payload: &mut DeployPayload,
    reason_slot: &Arc<std::sync::Mutex<String>>,
    criterion: &str,
    subject: &str,
    observed: String,
    threshold: String,
    message: String,
) -> Result<()> {
    if let Ok(mut r) = reason_slot.lock() {
        *r = message.clone();
    }
    run.escalate(criterion, subject, observed, threshold, message.clone());
    payload.rolled_back = true;
    payload.rollback_reason = Some(message.clone());
    if run.unwind().await {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Unexpected,
            format!("{message}; the rollback failed too: fix by hand (see the findings)"),
        )
        .with_operation("deploy.rollback"))
    }
}

fn cfg_environment(env: &Environment) -> String {
    env.config
        .deploy
        .as_ref()
        .map(|d| d.environment.clone())
        .unwrap_or_else(|| env.name().to_string())
}

/// Tell the team how a deployment ended, through the notifier when one is configured. A
/// notification that fails is a warning, never a failed deployment.
async fn announce(run: &Run, env: &Environment, target: &str, result: &Result<DeployPayload>) {
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

/// The spec's Standard Deployment.
pub async fn standard_deploy(env: &Environment, opts: &DeployOptions) -> crate::report::Report {
    env.execute("deploy_standard", &opts.run, |run| async move {
        let result: Result<DeployPayload> = async {
        let cfg = deploy_cfg(env)?;
        let d = deployer(env)?;
        let mut p = DeployPayload {
            gates: evaluate_gates(env, &run, cfg, opts.high_risk).await,
            ..DeployPayload::default()
        };
        if !judge_gates(&run, &p.gates, &opts.force) {
            return Ok(p);
        }
        p.forced = opts.force.clone();

        let version = release_version(env, &opts.version).await?;
        let tag = format!("v{version}");
        let previous = match &env.repo {
            Some(r) => r.tags().await?.into_iter().find(|t| *t != tag),
            None => None,
        };
        p.version = Some(version.clone());
        p.tag = Some(tag.clone());
        p.previous = previous.clone();

        let sli = error_sli(env);
        let baseline = run
            .check("baseline", None, async {
                let r = bad_ratio(env.slo_source.as_ref(), &sli).await?;
                Ok(Checked::pass(r, format!("{sli} error rate before the deployment: {}", pct(r))))
            })
            .await
            .ok();
        p.baseline_error_rate = baseline;

        match &env.repo {
            Some(r) => {
                let r = r.clone();
                let t = tag.clone();
                run.change(
                    "tag",
                    format!("tag {t} at {} and push it to {}", r.describe(), cfg.remote),
                    async move {
                        r.create_tag(&t, &format!("Release {t}")).await?;
                        if let Err(e) = r.push_tag(&t).await {
                            let _ = r.delete_tag(&t).await;
                            return Err(e);
                        }
                        Ok(())
                    },
                    None,
                )
                .await?;
            }
            None => run.skip("tag", Action::Change, "no deploy.repo_dir: the release is not tagged here"),
        }

        // From here on the rollback is the undo: whatever goes wrong, it runs.
        let reason = Arc::new(std::sync::Mutex::new("deployment failed".to_string()));
        let plan = RollbackPlan {
            run: run.clone(),
            deployer: d.clone(),
            clock: env.clock.clone(),
            cfg: cfg.clone(),
            hosts: env.hosts.clone(),
            probe: env.probe.clone(),
            fleet: env.config.fleet.clone(),
            health_paths: health_paths(env),
            previous: previous.clone(),
            reason: reason.clone(),
        };
        let rollback_name = format!(
            "rollback to {}",
            previous.clone().unwrap_or_else(|| "the previous release".into())
        );
        run.push_undo(Undo::on_failure(rollback_name, move || plan.execute()));

        let inputs = BTreeMap::from([
            ("environment".to_string(), cfg.environment.clone()),
            ("version".to_string(), version.clone()),
        ]);
        let clock = env.clock.clone();
        let deployed = run
            .change(
                "deploy",
                format!("run {} on {} (environment={}, version={version}), wait at most {}", cfg.workflow, d.describe(), cfg.environment, format_duration(cfg.timeout.0)),
                async {
                    let r = run_workflow(d.as_ref(), clock.as_ref(), &cfg.workflow, &inputs, cfg.poll_interval.0, cfg.timeout.0).await?;
                    if r.conclusion != Conclusion::Success {
                        return Err(Error::new(
                            ErrorKind::Unexpected,
                            format!("{} run {} ended {}", cfg.workflow, r.run.url.clone().unwrap_or(r.run.id.clone()), r.detail.clone().unwrap_or_else(|| format!("{:?}", r.conclusion).to_lowercase())),
                        ));
                    }
                    Ok(r)
                },
                None,
            )
            .await;
        let deployed = match deployed {
            Ok(Some(r)) => r,
            Ok(None) => {
                // Dry-run: the rest reads a version that is not there.
                for s in ["health:new_version", "smoke", "monitor"] {
                    run.skip(s, Action::Read, "dry-run: nothing deployed");
                }
                return Ok(p);
            }
            Err(e) => {
                back_out(&run, &mut p, &reason, "deploy_failed", cfg.workflow.as_str(), e.to_string(), "a successful run".into(), format!("the {} workflow failed: rolled back", cfg.workflow)).await?;
                return Ok(p);
            }
        };
        p.deploy_run = Some(deployed);
        p.deployed = true;

        // Health of the new version.
        let health = run
            .check("health:new_version", None, async {
                let s = wait_healthy(env.probe.as_ref(), env.clock.as_ref(), cfg.health_wait.0, &health_paths(env)).await?;
                Ok(Checked::pass((), s))
            })
            .await;
        if let Err(e) = health {
            back_out(&run, &mut p, &reason, "deploy_unhealthy", "health", e.to_string(), "healthy".into(), format!("{tag} is not healthy: rolled back")).await?;
            return Ok(p);
        }

        // Smoke checks.
        for s in &cfg.smoke {
            let r = run
                .check(&format!("smoke:{}", s.path), None, async {
                    let resp = env.probe.get(&s.path).await?;
                    let mut bad = Vec::new();
                    if resp.status != s.status {
                        bad.push(format!("HTTP {} (expected {})", resp.status, s.status));
                    }
                    if let Some(c) = &s.contains {
                        if !resp.body.contains(c.as_str()) {
                            bad.push(format!("body lacks {c:?}"));
                        }
                    }
                    if bad.is_empty() {
                        Ok(Checked::pass((), format!("HTTP {} in {} ms", resp.status, resp.latency.as_millis())))
                    } else {
                        Err(Error::new(ErrorKind::InvalidResponse, bad.join(", ")))
                    }
                })
                .await;
            if let Err(e) = r {
                back_out(&run, &mut p, &reason, "smoke_failed", s.path.as_str(), e.to_string(), format!("HTTP {}", s.status), format!("smoke check {} failed: rolled back", s.path)).await?;
                return Ok(p);
            }
        }

        // Monitoring: every interval for the period, error rate against the baseline.
        let limit = (baseline.unwrap_or(0.0) * cfg.error_rate_factor).max(cfg.error_rate_floor.0);
        let start = env.clock.now();
        let period = cfg.monitor_period.0;
        let interval = cfg.monitor_interval.0.max(Duration::from_secs(1));
        let mut errors_in_a_row = 0u32;
        loop {
            let elapsed = (env.clock.now() - start).to_std().unwrap_or_default();
            if elapsed >= period {
                break;
            }
            env.clock.sleep(interval.min(period - elapsed)).await;
            let minute = (env.clock.now() - start).num_minutes().max(0) as u64;
            let reading = bad_ratio(env.slo_source.as_ref(), &sli).await;
            let (outcome, rate) = match &reading {
                Ok(r) if *r > limit => (Outcome::Fail, Some(*r)),
                Ok(r) => (Outcome::Pass, Some(*r)),
                Err(_) => (Outcome::Error, None),
            };
            p.monitoring.push(MonitorPoint { minute, error_rate: rate, limit, outcome });
            let summary = match &reading {
                Ok(r) => format!("{sli} error rate {} at minute {minute} (limit {} = {}× baseline {}, floor {})", pct(*r), pct(limit), cfg.error_rate_factor, pct(baseline.unwrap_or(0.0)), pct(cfg.error_rate_floor.0)),
                Err(e) => format!("error rate unreadable at minute {minute}: {e}"),
            };
            let _ = run
                .check(&format!("monitor:{minute}m"), None, async { Ok(Checked::with((), outcome, summary.clone())) })
                .await;
            match outcome {
                Outcome::Fail => {
                    back_out(&run, &mut p, &reason, "error_rate_high", sli.as_str(), pct(rate.unwrap_or(0.0)), format!("≤ {} ({}× baseline {})", pct(limit), cfg.error_rate_factor, pct(baseline.unwrap_or(0.0))), format!("error rate {} above {} at minute {minute}: rolled back", pct(rate.unwrap_or(0.0)), pct(limit))).await?;
                    return Ok(p);
                }
                Outcome::Error => {
                    errors_in_a_row += 1;
                    if errors_in_a_row >= 2 {
                        back_out(&run, &mut p, &reason, "monitoring_blind", sli.as_str(), "2 readings in a row failed".into(), "a readable error rate".into(), format!("the error rate could not be read twice in a row at minute {minute}: rolled back")).await?;
                        return Ok(p);
                    }
                }
                _ => errors_in_a_row = 0,
            }
        }
        Ok(p)
        }
        .await;
        announce(&run, env, &cfg_environment(env), &result).await;
        result.map(|p| serde_json::to_value(&p).unwrap_or_default())
    })
    .await
}

/// The spec's Rollback Procedure on its own: the rollback workflow, else the manual fallback
/// over SSH, then health.
pub async fn rollback(env: &Environment, opts: &RollbackOptions) -> crate::report::Report {
    env.execute("deploy_rollback", &opts.run, |run| async move {
        let cfg = deploy_cfg(env)?;
        let d = deployer(env)?;
        let previous = match (&opts.to, &env.repo) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(r)) => r.tags().await?.into_iter().nth(1),
            (None, None) => None,
        };
        let reason = if opts.reason.is_empty() {
            "manual rollback".to_string()
        } else {
            opts.reason.clone()
        };
        let plan = RollbackPlan {
            run: run.clone(),
            deployer: d,
            clock: env.clock.clone(),
            cfg: cfg.clone(),
            hosts: env.hosts.clone(),
            probe: env.probe.clone(),
            fleet: env.config.fleet.clone(),
            health_paths: health_paths(env),
            previous: previous.clone(),
            reason: Arc::new(std::sync::Mutex::new(reason.clone())),
        };
        run.change(
            "rollback",
            format!(
                "run {} (reason: {reason}); if it fails, on every host: {}; then check health",
                cfg.rollback_workflow,
                cfg.manual_rollback
                    .iter()
                    .map(|l| l.join(" "))
                    .collect::<Vec<_>>()
                    .join(" && ")
            ),
            plan.execute(),
            None,
        )
        .await?;
        Ok(serde_json::to_value(RollbackPayload { previous, reason }).unwrap_or_default())
    })
    .await
}

/// Green against blue, `measurements` times: a failed or errored measurement counts against
/// the failure limit (never as a success).
async fn analyse(env: &Environment, b: &BlueGreenConfig, step: String) -> Result<Analysis> {
    let colors = env
        .colors
        .as_ref()
        .ok_or_else(|| Error::config("no blue/green services"))?;
    let path = env.config.service.slo_path.clone();
    let blue = HttpSloSource::new(colors.blue.clone(), path.clone());
    let green = HttpSloSource::new(colors.green.clone(), path);
    let sli = error_sli(env);
    let mut failures = 0u32;
    let mut points = Vec::new();
    let mut worst = String::new();
    for i in 0..b.measurements {
        if i > 0 {
            env.clock.sleep(b.interval.0).await;
        }
        let (be, ge) = (bad_ratio(&blue, &sli).await, bad_ratio(&green, &sli).await);
        let (bl, gl) = (
            bad_ratio(&blue, "latency").await.ok(),
            bad_ratio(&green, "latency").await.ok(),
        );
        let verdict = match (&be, &ge) {
            (Ok(be), Ok(ge)) => {
                let limit = (be * b.max_error_factor).max(b.error_rate_floor.0);
                let mut why = Vec::new();
                if *ge > limit {
                    why.push(format!(
                        "error_rate: green {} > limit {} (blue {} × {})",
                        pct(*ge),
                        pct(limit),
                        pct(*be),
                        b.max_error_factor
                    ));
                }
                if let (Some(bl), Some(gl)) = (bl, gl) {
                    let llimit = (bl * b.max_latency_factor).max(b.error_rate_floor.0);
                    if gl > llimit {
                        why.push(format!(
                            "latency: green slow share {} > limit {} (blue {} × {})",
                            pct(gl),
                            pct(llimit),
                            pct(bl),
                            b.max_latency_factor
                        ));
                    }
                }
                if why.is_empty() {
                    Ok(format!(
                        "error_rate green {} vs blue {}",
                        pct(*ge),
                        pct(*be)
                    ))
                } else {
                    Err(why.join("; "))
                }
            }
            (Err(e), _) => Err(format!(
                "measurement error (counts as failed): blue metrics: {e}"
            )),
            (_, Err(e)) => Err(format!(
                "measurement error (counts as failed): green metrics: {e}"
            )),
        };
        points.push(serde_json::json!({
            "step": step,
            "blue_error_rate": be.as_ref().ok(),
            "green_error_rate": ge.as_ref().ok(),
            "blue_slow_rate": bl,
            "green_slow_rate": gl,
            "passed": verdict.is_ok(),
            "note": match &verdict { Ok(s) | Err(s) => s.clone() },
        }));
        match verdict {
            Ok(s) => worst = if worst.is_empty() { s } else { worst },
            Err(s) => {
                failures += 1;
                worst = s;
            }
        }
        if failures > b.failure_limit {
            break;
        }
    }
    let passed = failures <= b.failure_limit;
    Ok(Analysis {
        passed,
        summary: format!(
            "{} of {} measurements failed (limit {}): {worst}",
            failures,
            points.len(),
            b.failure_limit
        ),
        details: serde_json::Value::Array(points),
    })
}

/// The spec's Blue-Green Deployment: staging, green, then traffic 10 → 25 → 50 → 100% with an
/// analysis after each step; on failure all traffic back to blue, and the report says why.
pub async fn blue_green_deploy(
    env: &Environment,
    opts: &BlueGreenOptions,
) -> crate::report::Report {
    env.execute("deploy_blue_green", &opts.run, |run| async move {
        let result: Result<DeployPayload> = async {
        let cfg = deploy_cfg(env)?;
        let b = env
            .config
            .blue_green
            .as_ref()
            .ok_or_else(|| Error::config("no [blue_green] configured"))?;
        let d = deployer(env)?;
        let router = env.router.clone().ok_or_else(|| Error::config("no traffic router: configure [blue_green]"))?;
        let colors = env.colors.clone().ok_or_else(|| Error::config("no blue/green services"))?;
        let mut p = DeployPayload {
            gates: evaluate_gates(env, &run, cfg, false).await,
            ..DeployPayload::default()
        };
        if !judge_gates(&run, &p.gates, &opts.force) {
            return Ok(p);
        }
        p.forced = opts.force.clone();
        let version = release_version(env, &opts.version).await?;
        p.version = Some(version.clone());
        let clock = env.clock.clone();
        let deploy_to = |environment: String| {
            let (d, clock, version) = (d.clone(), clock.clone(), version.clone());
            async move {
                let inputs = BTreeMap::from([("environment".to_string(), environment.clone()), ("version".to_string(), version)]);
                let r = run_workflow(d.as_ref(), clock.as_ref(), &cfg.workflow, &inputs, cfg.poll_interval.0, cfg.timeout.0).await?;
                if r.conclusion != Conclusion::Success {
                    return Err(Error::new(ErrorKind::Unexpected, format!("{} for {environment} ended {:?}", cfg.workflow, r.conclusion)));
                }
                Ok(r)
            }
        };

        // 1–2. Staging, validated.
        run.change("deploy:staging", format!("run {} with environment={}", cfg.workflow, b.staging_environment), deploy_to(b.staging_environment.clone()), None).await?;
        match &colors.staging {
            Some(s) if !run.is_dry_run() => {
                run.check("validate:staging", None, async {
                    Ok(Checked::pass((), wait_healthy(s.as_ref(), env.clock.as_ref(), cfg.health_wait.0, &health_paths(env)).await?))
                })
                .await?;
            }
            Some(_) => run.skip("validate:staging", Action::Read, "dry-run: nothing deployed"),
            None => run.skip("validate:staging", Action::Read, "no blue_green.staging_url"),
        }
        // 3–4. Green, healthy.
        let green_run = run
            .change("deploy:green", format!("run {} with environment={}", cfg.workflow, b.green_environment), deploy_to(b.green_environment.clone()), None)
            .await?;
        p.deploy_run = green_run;
        if run.is_dry_run() {
            run.skip("health:green", Action::Read, "dry-run: nothing deployed");
        } else {
            run.check("health:green", None, async {
                Ok(Checked::pass((), wait_healthy(colors.green.as_ref(), env.clock.as_ref(), cfg.health_wait.0, &health_paths(env)).await?))
            })
            .await?;
        }
        p.deployed = true;

        // 5. Traffic, step by step. The first step's undo sends everything back to blue.
        let mut steps = Vec::new();
        for (i, &share) in b.steps.iter().enumerate() {
            let r = router.clone();
            let mut step = WaveStep::new(
                format!("traffic:{share}%"),
                format!("send {share}% of requests to green through {}", router.describe()),
                move || async move { r.set_green(share).await },
            );
            if i == 0 {
                let r = router.clone();
                step = step.undo(Undo::on_failure("traffic: 100% blue", move || async move { r.set_green(0).await }));
            }
            steps.push(step);
        }
        let outcome = run_wave(&run, env.clock.as_ref(), steps, &opts.control, b.max_pause.0, |_, name| analyse(env, b, name)).await?;
        match outcome {
            WaveOutcome::Completed { .. } => {
                p.green_percent = Some(if run.is_dry_run() { 0 } else { 100 });
            }
            WaveOutcome::Aborted { step, reason, analyses } => {
                p.analyses = analyses;
                let unwound = run.unwind().await;
                p.rolled_back = true;
                p.green_percent = router.green().await.ok();
                p.rollback_reason = Some(format!("{step}: {reason}"));
                run.escalate(
                    "rollout_aborted",
                    step.clone(),
                    reason.clone(),
                    format!("green within {}× blue's error rate (floor {}), ≤ {} failed measurements", b.max_error_factor, pct(b.error_rate_floor.0), b.failure_limit),
                    format!("blue-green rollout stopped at {step}; traffic back to 100% blue"),
                );
                if !unwound {
                    return Err(Error::new(ErrorKind::Unexpected, format!("rollout stopped at {step} and traffic could not be sent back to blue: fix by hand")));
                }
            }
        }
        Ok(p)
        }
        .await;
        announce(&run, env, &cfg_environment(env), &result).await;
        result.map(|p| serde_json::to_value(&p).unwrap_or_default())
    })
    .await
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
