//! The spec's Rollback Procedure: the rollback workflow, else the manual fallback over SSH on
//! every host, then health. It runs on its own (`deploy_rollback`) and as the undo of a
//! deployment.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::clock::Clock;
use crate::config::DeployConfig;
use crate::deploy::{Conclusion, Deployer, fill, run_workflow};
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::Cmd;
use crate::host::fleet::{FleetOptions, HostOutcome, fan_out};
use crate::probe::HealthProbe;
use crate::report::Severity;
use crate::runbook::run::Run;

use super::{
    DeployPayload, RollbackOptions, RollbackPayload, deploy_cfg, deployer, health_paths,
    wait_healthy,
};

/// Everything the rollback needs, owned (it runs as an undo, after the runbook's borrows).
#[derive(Clone)]
pub(super) struct RollbackPlan {
    run: Run,
    deployer: Arc<dyn Deployer>,
    clock: Arc<dyn Clock>,
    cfg: DeployConfig,
    hosts: Vec<HostEntry>,
    fleet: crate::config::FleetConfig,
    probe: Arc<dyn HealthProbe>,
    health_paths: [String; 2],
    previous: Option<String>,
    reason: Arc<Mutex<String>>,
}

impl RollbackPlan {
    /// The plan for this environment, going back to `previous`.
    pub(super) fn new(
        run: &Run,
        env: &Environment,
        deployer: Arc<dyn Deployer>,
        previous: Option<String>,
        reason: Arc<Mutex<String>>,
    ) -> Result<Self> {
        Ok(Self {
            run: run.clone(),
            deployer,
            clock: env.clock.clone(),
            cfg: deploy_cfg(env)?.clone(),
            hosts: env.hosts.clone(),
            probe: env.probe.clone(),
            fleet: env.config.fleet.clone(),
            health_paths: health_paths(env),
            previous,
            reason,
        })
    }

    /// The spec's manual fallback on every host, through the fleet fan-out: `[fleet]
    /// concurrency` hosts at once, and once more hosts than `[fleet] failure_budget` allows
    /// have failed, the hosts not started yet are skipped (and named).
    async fn manual_rollback(&self, previous: &str) -> Result<String> {
        let vars = BTreeMap::from([("previous".to_string(), previous.to_string())]);
        let mut opts = FleetOptions::new(self.fleet.concurrency);
        if let Some(b) = self.fleet.failure_budget {
            opts = opts.failure_budget(b);
        }
        let res = fan_out(&self.hosts, opts, |h| {
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
                HostOutcome::Failed(e) => Some(format!("{name}: {e}")),
                HostOutcome::Skipped => Some(format!("{name}: skipped (failure budget spent)")),
                HostOutcome::Done(_) => None,
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
    pub(super) async fn execute(self) -> Result<()> {
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

/// Why a deployment is backed out: the escalation's criterion, subject, observed value and
/// threshold, and the message for the report and the rollback workflow.
pub(super) struct Backout {
    pub(super) criterion: &'static str,
    pub(super) subject: String,
    pub(super) observed: String,
    pub(super) threshold: String,
    pub(super) message: String,
}

/// Record why the deployment is backed out, roll back now, and report (escalate) — or fail
/// when the rollback itself failed.
pub(super) async fn back_out(
    run: &Run,
    payload: &mut DeployPayload,
    reason_slot: &Arc<Mutex<String>>,
    why: Backout,
) -> Result<()> {
    let message = why.message;
    if let Ok(mut r) = reason_slot.lock() {
        *r = message.clone();
    }
    run.escalate(
        why.criterion,
        why.subject,
        why.observed,
        why.threshold,
        message.clone(),
    );
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
        let plan = RollbackPlan::new(
            &run,
            env,
            d,
            previous.clone(),
            Arc::new(Mutex::new(reason.clone())),
        )?;
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
