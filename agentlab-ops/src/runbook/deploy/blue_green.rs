//! The spec's Blue-Green Deployment as named steps: gates → staging (validated) → green
//! (healthy) → traffic 10 → 25 → 50 → 100% with an analysis of green against blue after
//! each step; on failure all traffic goes back to blue, and the report says why.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{BlueGreenConfig, DeployConfig};
use crate::deploy::{Conclusion, Deployer, RunResult, run_workflow};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::probe::HealthProbe;
use crate::report::Action;
use crate::runbook::run::{Checked, Run, Undo};
use crate::runbook::wave::{Analysis, WaveOutcome, WaveStep, run_wave};
use crate::slo::HttpSloSource;

use super::gates::{evaluate_gates, judge_gates};
use super::{
    BlueGreenOptions, DeployPayload, announce, bad_ratio, cfg_environment, deploy_cfg, deployer,
    error_sli, health_paths, pct, release_version, wait_healthy,
};

/// The spec's Blue-Green Deployment.
pub async fn blue_green_deploy(
    env: &Environment,
    opts: &BlueGreenOptions,
) -> crate::report::Report {
    env.execute("deploy_blue_green", &opts.run, |run| async move {
        let result = deploy(env, &run, opts).await;
        announce(&run, env, &cfg_environment(env), &result).await;
        result.map(|p| serde_json::to_value(&p).unwrap_or_default())
    })
    .await
}

async fn deploy(env: &Environment, run: &Run, opts: &BlueGreenOptions) -> Result<DeployPayload> {
    let cfg = deploy_cfg(env)?;
    let b = env
        .config
        .blue_green
        .as_ref()
        .ok_or_else(|| Error::config("no [blue_green] configured"))?;
    let d = deployer(env)?;
    let colors = env
        .colors
        .clone()
        .ok_or_else(|| Error::config("no blue/green services"))?;
    let mut p = DeployPayload {
        gates: evaluate_gates(env, run, cfg, false, opts.critical).await,
        ..DeployPayload::default()
    };
    if !judge_gates(run, &p.gates, &opts.force) {
        return Ok(p);
    }
    p.forced = opts.force.clone();
    let version = release_version(env, &opts.version).await?;
    p.version = Some(version.clone());
    let to = Target {
        env,
        run,
        cfg,
        d,
        version,
    };
    to.deploy("deploy:staging", &b.staging_environment).await?;
    match &colors.staging {
        Some(s) => to.healthy("validate:staging", s.as_ref()).await?,
        None => run.skip(
            "validate:staging",
            Action::Read,
            "no blue_green.staging_url",
        ),
    }
    p.deploy_run = to.deploy("deploy:green", &b.green_environment).await?;
    to.healthy("health:green", colors.green.as_ref()).await?;
    p.deployed = true;
    shift_traffic(env, run, b, opts, &mut p).await?;
    Ok(p)
}

/// Where a release goes: the deploy workflow for one environment, and health checks of the
/// services it updated.
struct Target<'a> {
    env: &'a Environment,
    run: &'a Run,
    cfg: &'a DeployConfig,
    d: Arc<dyn Deployer>,
    version: String,
}

impl Target<'_> {
    async fn deploy(&self, step: &str, environment: &str) -> Result<Option<RunResult>> {
        let cfg = self.cfg;
        let inputs = BTreeMap::from([
            ("environment".to_string(), environment.to_string()),
            ("version".to_string(), self.version.clone()),
        ]);
        let clock = self.env.clock.clone();
        let d = self.d.clone();
        let work = async move {
            let (wf, every, limit) = (&cfg.workflow, cfg.poll_interval.0, cfg.timeout.0);
            let r = run_workflow(d.as_ref(), clock.as_ref(), wf, &inputs, every, limit).await?;
            if r.conclusion != Conclusion::Success {
                let msg = format!(
                    "{wf} for {} ended {:?}",
                    inputs["environment"], r.conclusion
                );
                return Err(Error::new(ErrorKind::Unexpected, msg));
            }
            Ok(r)
        };
        let plan = format!("run {} with environment={environment}", cfg.workflow);
        self.run.change(step, plan, work, None).await
    }

    async fn healthy(&self, step: &str, service: &dyn HealthProbe) -> Result<()> {
        if self.run.is_dry_run() {
            self.run
                .skip(step, Action::Read, "dry-run: nothing deployed");
            return Ok(());
        }
        let (env, wait) = (self.env, self.cfg.health_wait.0);
        self.run
            .check(step, None, async {
                let paths = health_paths(env);
                let s = wait_healthy(service, env.clock.as_ref(), wait, &paths).await?;
                Ok(Checked::pass((), s))
            })
            .await
    }
}

/// Traffic to green step by step, an analysis after each; the first step's undo sends
/// everything back to blue, and an aborted rollout runs it and escalates.
async fn shift_traffic(
    env: &Environment,
    run: &Run,
    b: &BlueGreenConfig,
    opts: &BlueGreenOptions,
    p: &mut DeployPayload,
) -> Result<()> {
    let router = env
        .router
        .clone()
        .ok_or_else(|| Error::config("no traffic router: configure [blue_green]"))?;
    let mut steps = Vec::new();
    for (i, &share) in b.steps.iter().enumerate() {
        let r = router.clone();
        let plan = format!(
            "send {share}% of requests to green through {}",
            router.describe()
        );
        let mut step = WaveStep::new(format!("traffic:{share}%"), plan, move || async move {
            r.set_green(share).await
        });
        if i == 0 {
            let r = router.clone();
            let back =
                Undo::on_failure(
                    "traffic: 100% blue",
                    move || async move { r.set_green(0).await },
                );
            step = step.undo(back);
        }
        steps.push(step);
    }
    let clock = env.clock.as_ref();
    let analysis = |_, name| analyse(env, b, name);
    let outcome = run_wave(run, clock, steps, &opts.control, b.max_pause.0, analysis).await?;
    let WaveOutcome::Aborted {
        step,
        reason,
        analyses,
    } = outcome
    else {
        p.green_percent = Some(if run.is_dry_run() { 0 } else { 100 });
        return Ok(());
    };
    p.analyses = analyses;
    let unwound = run.unwind().await;
    p.rolled_back = true;
    p.green_percent = router.green().await.ok();
    p.rollback_reason = Some(format!("{step}: {reason}"));
    run.escalate(
        "rollout_aborted",
        step.clone(),
        reason.clone(),
        format!(
            "green within {}× blue's error rate (floor {}), ≤ {} failed measurements",
            b.max_error_factor,
            pct(b.error_rate_floor.0),
            b.failure_limit
        ),
        format!("blue-green rollout stopped at {step}; traffic back to 100% blue"),
    );
    if !unwound {
        let msg = format!(
            "rollout stopped at {step} and traffic could not be sent back to blue: fix by hand"
        );
        return Err(Error::new(ErrorKind::Unexpected, msg));
    }
    Ok(())
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
