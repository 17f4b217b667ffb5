//! The spec's Standard Deployment as named steps: gates → version → baseline → tag → (the
//! rollback becomes the undo) → deploy workflow → health → smoke checks → monitoring.
//! Whatever fails after the deployment started backs out through the rollback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{DeployConfig, format_duration};
use crate::deploy::{Conclusion, Deployer, RunResult, run_workflow};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Action, Outcome};
use crate::runbook::run::{Checked, Run, Undo};

use super::gates::{evaluate_gates, judge_gates};
use super::rollback::{Backout, RollbackPlan, back_out};
use super::{
    DeployOptions, DeployPayload, MonitorPoint, announce, bad_ratio, cfg_environment, deploy_cfg,
    deployer, error_sli, health_paths, pct, release_version, wait_healthy,
};

/// The spec's Standard Deployment.
pub async fn standard_deploy(env: &Environment, opts: &DeployOptions) -> crate::report::Report {
    env.execute("deploy_standard", &opts.run, |run| async move {
        let result = deploy(env, &run, opts).await;
        announce(&run, env, &cfg_environment(env), &result).await;
        result.map(|p| serde_json::to_value(&p).unwrap_or_default())
    })
    .await
}

async fn deploy(env: &Environment, run: &Run, opts: &DeployOptions) -> Result<DeployPayload> {
    let cfg = deploy_cfg(env)?;
    let d = deployer(env)?;
    let mut p = DeployPayload {
        gates: evaluate_gates(env, run, cfg, opts.high_risk, opts.critical).await,
        ..DeployPayload::default()
    };
    if !judge_gates(run, &p.gates, &opts.force) {
        return Ok(p);
    }
    p.forced = opts.force.clone();
    let version = release_version(env, &opts.version).await?;
    let tag = format!("v{version}");
    p.previous = match &env.repo {
        Some(r) => r.tags().await?.into_iter().find(|t| *t != tag),
        None => None,
    };
    p.version = Some(version.clone());
    p.tag = Some(tag.clone());
    let sli = error_sli(env);
    p.baseline_error_rate = baseline(env, run, &sli).await;
    tag_release(env, run, cfg, &tag).await?;

    // From here on the rollback is the undo: whatever goes wrong, it runs.
    let reason = Arc::new(Mutex::new("deployment failed".to_string()));
    let plan = RollbackPlan::new(run, env, d.clone(), p.previous.clone(), reason.clone())?;
    let name = format!(
        "rollback to {}",
        p.previous.as_deref().unwrap_or("the previous release")
    );
    run.push_undo(Undo::on_failure(name, move || plan.execute()));

    let outcome = match run_deploy(env, run, cfg, &d, &version).await {
        Ok(None) => {
            // Dry-run: the rest reads a version that is not there.
            for s in ["health:new_version", "smoke", "monitor"] {
                run.skip(s, Action::Read, "dry-run: nothing deployed");
            }
            return Ok(p);
        }
        Ok(Some(r)) => {
            p.deploy_run = Some(r);
            p.deployed = true;
            after_deploy(env, run, cfg, &tag, &sli, &mut p).await
        }
        Err(e) => Err(Backout {
            criterion: "deploy_failed",
            subject: cfg.workflow.clone(),
            observed: e.to_string(),
            threshold: "a successful run".into(),
            message: format!("the {} workflow failed: rolled back", cfg.workflow),
        }),
    };
    if let Err(why) = outcome {
        back_out(run, &mut p, &reason, why).await?;
    }
    Ok(p)
}

/// Health, smoke checks and monitoring of the released version; the first that fails says
/// why to back out.
async fn after_deploy(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
    tag: &str,
    sli: &str,
    p: &mut DeployPayload,
) -> std::result::Result<(), Backout> {
    let health = run
        .check("health:new_version", None, async {
            let paths = health_paths(env);
            let s = wait_healthy(
                env.probe.as_ref(),
                env.clock.as_ref(),
                cfg.health_wait.0,
                &paths,
            )
            .await?;
            Ok(Checked::pass((), s))
        })
        .await;
    if let Err(e) = health {
        return Err(Backout {
            criterion: "deploy_unhealthy",
            subject: "health".into(),
            observed: e.to_string(),
            threshold: "healthy".into(),
            message: format!("{tag} is not healthy: rolled back"),
        });
    }
    smoke_checks(env, run, cfg).await?;
    monitor(env, run, cfg, sli, p).await
}

/// The error rate before the deployment, the monitoring's baseline.
async fn baseline(env: &Environment, run: &Run, sli: &str) -> Option<f64> {
    run.check("baseline", None, async {
        let r = bad_ratio(env.slo_source.as_ref(), sli).await?;
        let s = format!("{sli} error rate before the deployment: {}", pct(r));
        Ok(Checked::pass(r, s))
    })
    .await
    .ok()
}

/// Tag the release and push the tag; a tag that could not be pushed is deleted again.
async fn tag_release(env: &Environment, run: &Run, cfg: &DeployConfig, tag: &str) -> Result<()> {
    let Some(r) = env.repo.clone() else {
        let why = "no deploy.repo_dir: the release is not tagged here";
        run.skip("tag", Action::Change, why);
        return Ok(());
    };
    let t = tag.to_string();
    let plan = format!("tag {t} at {} and push it to {}", r.describe(), cfg.remote);
    run.change(
        "tag",
        plan,
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
    Ok(())
}

/// Run the deploy workflow and wait for it; `None` in a dry-run.
async fn run_deploy(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
    d: &Arc<dyn Deployer>,
    version: &str,
) -> Result<Option<RunResult>> {
    let inputs = BTreeMap::from([
        ("environment".to_string(), cfg.environment.clone()),
        ("version".to_string(), version.to_string()),
    ]);
    let clock = env.clock.clone();
    let plan = format!(
        "run {} on {} (environment={}, version={version}), wait at most {}",
        cfg.workflow,
        d.describe(),
        cfg.environment,
        format_duration(cfg.timeout.0)
    );
    let work = async {
        let (wf, every, limit) = (&cfg.workflow, cfg.poll_interval.0, cfg.timeout.0);
        let r = run_workflow(d.as_ref(), clock.as_ref(), wf, &inputs, every, limit).await?;
        if r.conclusion != Conclusion::Success {
            let id = r.run.url.clone().unwrap_or(r.run.id.clone());
            let how = r
                .detail
                .clone()
                .unwrap_or_else(|| format!("{:?}", r.conclusion).to_lowercase());
            let msg = format!("{} run {id} ended {how}", cfg.workflow);
            return Err(Error::new(ErrorKind::Unexpected, msg));
        }
        Ok(r)
    };
    run.change("deploy", plan, work, None).await
}

/// Each configured smoke check: status, and the text the body must contain.
async fn smoke_checks(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
) -> std::result::Result<(), Backout> {
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
                    let ms = resp.latency.as_millis();
                    Ok(Checked::pass(
                        (),
                        format!("HTTP {} in {ms} ms", resp.status),
                    ))
                } else {
                    Err(Error::new(ErrorKind::InvalidResponse, bad.join(", ")))
                }
            })
            .await;
        if let Err(e) = r {
            return Err(Backout {
                criterion: "smoke_failed",
                subject: s.path.clone(),
                observed: e.to_string(),
                threshold: format!("HTTP {}", s.status),
                message: format!("smoke check {} failed: rolled back", s.path),
            });
        }
    }
    Ok(())
}

/// Every interval for the monitoring period, the error rate against the baseline; above the
/// limit, or unreadable twice in a row, backs out.
async fn monitor(
    env: &Environment,
    run: &Run,
    cfg: &DeployConfig,
    sli: &str,
    p: &mut DeployPayload,
) -> std::result::Result<(), Backout> {
    let base = p.baseline_error_rate.unwrap_or(0.0);
    let limit = (base * cfg.error_rate_factor).max(cfg.error_rate_floor.0);
    let start = env.clock.now();
    let period = cfg.monitor_period.0;
    let interval = cfg.monitor_interval.0.max(Duration::from_secs(1));
    let mut errors_in_a_row = 0u32;
    loop {
        let elapsed = (env.clock.now() - start).to_std().unwrap_or_default();
        if elapsed >= period {
            return Ok(());
        }
        env.clock.sleep(interval.min(period - elapsed)).await;
        let minute = (env.clock.now() - start).num_minutes().max(0) as u64;
        let reading = bad_ratio(env.slo_source.as_ref(), sli).await;
        let (outcome, rate) = match &reading {
            Ok(r) if *r > limit => (Outcome::Fail, Some(*r)),
            Ok(r) => (Outcome::Pass, Some(*r)),
            Err(_) => (Outcome::Error, None),
        };
        p.monitoring.push(MonitorPoint {
            minute,
            error_rate: rate,
            limit,
            outcome,
        });
        let summary = match &reading {
            Ok(r) => format!(
                "{sli} error rate {} at minute {minute} (limit {} = {}× baseline {}, floor {})",
                pct(*r),
                pct(limit),
                cfg.error_rate_factor,
                pct(base),
                pct(cfg.error_rate_floor.0)
            ),
            Err(e) => format!("error rate unreadable at minute {minute}: {e}"),
        };
        let step = format!("monitor:{minute}m");
        let _ = run
            .check(&step, None, async {
                Ok(Checked::with((), outcome, summary))
            })
            .await;
        match outcome {
            Outcome::Fail => {
                let r = pct(rate.unwrap_or(0.0));
                return Err(Backout {
                    criterion: "error_rate_high",
                    subject: sli.to_string(),
                    observed: r.clone(),
                    threshold: format!(
                        "≤ {} ({}× baseline {})",
                        pct(limit),
                        cfg.error_rate_factor,
                        pct(base)
                    ),
                    message: format!(
                        "error rate {r} above {} at minute {minute}: rolled back",
                        pct(limit)
                    ),
                });
            }
            Outcome::Error => {
                errors_in_a_row += 1;
                if errors_in_a_row >= 2 {
                    return Err(Backout {
                        criterion: "monitoring_blind",
                        subject: sli.to_string(),
                        observed: "2 readings in a row failed".into(),
                        threshold: "a readable error rate".into(),
                        message: format!(
                            "the error rate could not be read twice in a row at minute {minute}: rolled back"
                        ),
                    });
                }
            }
            _ => errors_in_a_row = 0,
        }
    }
}
