//! `scale_horizontal`: the spec's `aws elb register-instances-with-load-balancer`, for every
//! configured balancer (classic ELB or target group): new instances registered and awaited
//! until healthy (deregistered again when they are not), old ones deregistered and drained
//! (registered again when that fails). The last healthy target of a balancer is never removed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{balancers, compute, lb_waits, must_run, poll, resolve, wait};
use crate::compute::{LoadBalancer, TargetHealth, TargetState, wait_drained, wait_healthy};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Report;
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::units::format_duration;

/// Options of `scale_horizontal` (neither `add` nor `remove`: only read every target's
/// health).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HorizontalOptions {
    /// Instances to add (ids or hosts of `[compute] instances`); they must be running.
    pub add: Vec<String>,
    /// Instances to take out (drained first).
    pub remove: Vec<String>,
    /// Only these balancers (default: every `[[compute.load_balancers]]`).
    pub balancers: Vec<String>,
}

impl Validate for HorizontalOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(x) = self.add.iter().find(|a| self.remove.contains(a)) {
            return Err(format!("{x:?} is both in add and in remove"));
        }
        Ok(())
    }
}

/// One balancer's targets after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalancerResult {
    /// The balancer.
    pub balancer: String,
    /// Its targets' health, read back at the end.
    pub targets: Vec<TargetHealth>,
}

/// The payload of `scale_horizontal`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HorizontalPayload {
    /// Instance ids added.
    pub added: Vec<String>,
    /// Instance ids removed.
    pub removed: Vec<String>,
    /// Per balancer, the health read back.
    pub balancers: Vec<BalancerResult>,
}

async fn ids_of(env: &Environment, names: &[String], check_running: bool) -> Result<Vec<String>> {
    let c = compute(env, "scale_horizontal")?;
    let mut out = Vec::new();
    for n in names {
        let (_, id) = resolve(env, n)?;
        let i = c.describe(&id).await?;
        if check_running {
            must_run(&i).map_err(|m| {
                Error::new(ErrorKind::Conflict, m).with_context("instance", id.clone())
            })?;
        }
        out.push(id);
    }
    Ok(out)
}

/// Add and remove instances on every balancer.
pub async fn scale_horizontal(env: &Environment, o: &HorizontalOptions, ro: &RunOptions) -> Report {
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(env.config.scaling.deadline.0));
    env.execute("scale_horizontal", &ro, |run| async move {
        let lbs = balancers(env, &o.balancers)?;
        if lbs.is_empty() {
            return Err(Error::config(
                "scale_horizontal: no [[compute.load_balancers]] configured",
            ));
        }
        let (add, remove) = run
            .check("plan", Some(Duration::from_secs(120)), async {
                let add = ids_of(env, &o.add, true).await?;
                let remove = ids_of(env, &o.remove, false).await?;
                let names: Vec<&str> = lbs.iter().map(|b| b.which().name.as_str()).collect();
                let s = format!(
                    "add [{}], remove [{}] on {}",
                    add.join(", "),
                    remove.join(", "),
                    names.join(", ")
                );
                Ok(Checked::pass((add, remove), s))
            })
            .await?;
        for lb in &lbs {
            if !add.is_empty() {
                add_to(env, &run, lb, &add).await?;
            }
            if !remove.is_empty() {
                remove_from(env, &run, lb, &remove).await?;
            }
        }
        let mut out = HorizontalPayload {
            added: add,
            removed: remove,
            balancers: Vec::new(),
        };
        for lb in &lbs {
            let targets = run
                .check(
                    &format!("health:{}", lb.which().name),
                    Some(Duration::from_secs(60)),
                    async {
                        let h = lb.health().await?;
                        let ok = h.iter().filter(|t| t.state == TargetState::Healthy).count();
                        Ok(Checked::pass(
                            h.clone(),
                            format!("{ok} of {} targets healthy", h.len()),
                        ))
                    },
                )
                .await?;
            out.balancers.push(BalancerResult {
                balancer: lb.which().name.clone(),
                targets,
            });
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

/// Register, then wait until healthy; the undo deregisters them.
async fn add_to(
    env: &Environment,
    run: &Run,
    lb: &Arc<dyn LoadBalancer>,
    ids: &[String],
) -> Result<()> {
    let name = lb.which().name.clone();
    let (lb2, ids2) = (lb.clone(), ids.to_vec());
    let undo = Undo::on_failure(format!("deregister:{name}"), move || async move {
        lb2.deregister(&ids2).await
    });
    let plan = format!("register {} with {name}", ids.join(", "));
    run.change(
        &format!("register:{name}"),
        plan,
        lb.register(ids),
        Some(undo),
    )
    .await?;
    let (healthy, _) = lb_waits(env, lb.as_ref());
    wait(run, &format!("healthy:{name}"), healthy, async {
        let h = wait_healthy(lb.as_ref(), env.clock.as_ref(), ids, healthy, poll(env)).await?;
        Ok(format!("{} healthy in {name}", h.len()))
    })
    .await
}

/// Deregister (never the last healthy target), then wait for the drain; the undo registers
/// them again.
async fn remove_from(
    env: &Environment,
    run: &Run,
    lb: &Arc<dyn LoadBalancer>,
    ids: &[String],
) -> Result<()> {
    let name = lb.which().name.clone();
    let h = lb.health().await?;
    let left = h
        .iter()
        .filter(|t| t.state == TargetState::Healthy && !ids.contains(&t.id))
        .count();
    if left == 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{name}: removing {} would leave no healthy target: refusing",
                ids.join(", ")
            ),
        )
        .with_context("balancer", name));
    }
    let (lb2, ids2) = (lb.clone(), ids.to_vec());
    let undo = Undo::on_failure(format!("reregister:{name}"), move || async move {
        lb2.register(&ids2).await
    });
    let plan = format!(
        "deregister {} from {name} ({left} healthy targets stay)",
        ids.join(", ")
    );
    run.change(
        &format!("deregister:{name}"),
        plan,
        lb.deregister(ids),
        Some(undo),
    )
    .await?;
    let (_, drain) = lb_waits(env, lb.as_ref());
    wait(run, &format!("drain:{name}"), drain, async {
        let d = wait_drained(lb.as_ref(), env.clock.as_ref(), ids, drain, poll(env)).await?;
        Ok(format!("drained in {}", format_duration(d)))
    })
    .await
}
