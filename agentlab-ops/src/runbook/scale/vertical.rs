//! `scale_vertical`: resize instances one at a time, AWS-ResizeInstance's order (stop → wait
//! stopped → modify → start → wait running) with what it lacks around it: out of the load
//! balancers and drained first, back in and healthy after, and a way back — any failure after
//! the stop puts the old type back, starts the instance and re-registers it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{compute, memberships, must_run, resolve, wait};
use crate::clock::Clock;
use crate::compute::{Compute, InstanceState, LoadBalancer, wait_drained, wait_healthy};
use crate::config::ComputeConfig;
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Action, Report, Severity};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::units::format_duration;

/// Options of `scale_vertical`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerticalOptions {
    /// Instances to resize: ids (`i-...`) or hosts of `[compute] instances`, in order
    /// (default: every instance of `[compute] instances`, one at a time).
    pub instances: Vec<String>,
    /// The new instance type (default: one rung up the `[compute] ladder`).
    pub to: Option<String>,
    /// One rung down the ladder instead of up.
    pub down: bool,
    /// After every resize, the spec's `ab -n 1000 -c 10` against this URL (loopback or under
    /// `[load] targets`), judged by `[load] thresholds`.
    pub load_url: Option<String>,
}

impl Validate for VerticalOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.to.is_some() && self.down {
            return Err("to and down: give one or the other".into());
        }
        if self.to.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("to: must not be empty".into());
        }
        Ok(())
    }
}

/// How one resize ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeOutcome {
    /// Dry run: the plan only.
    Planned,
    /// On its new type, running, in service, healthy.
    Resized,
    /// Failed, and put back: old type, running, registered again.
    RolledBack,
    /// Failed, and not (entirely) put back: see the findings.
    Failed,
    /// Not started: an earlier instance failed.
    NotStarted,
}

/// One instance's resize.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    /// Instance id.
    pub id: String,
    /// The host it runs, when known.
    pub host: Option<String>,
    /// Type before.
    pub from: String,
    /// Type asked for.
    pub to: String,
    /// The balancers it was in (and is put back in).
    pub balancers: Vec<String>,
    /// How it ended.
    pub outcome: ResizeOutcome,
    /// Why it failed.
    pub reason: Option<String>,
}

/// The payload of `scale_vertical`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct VerticalPayload {
    /// Every instance, in order.
    pub instances: Vec<Resize>,
    /// The post-scaling load test (`load_url`).
    #[serde(default)]
    pub load: Option<crate::runbook::load_test::LoadPayload>,
}

/// The type one rung up (or down) the ladder from `from`.
pub fn next_rung(ladder: &[String], from: &str, down: bool) -> std::result::Result<String, String> {
    let i = ladder.iter().position(|t| t == from).ok_or_else(|| {
        format!(
            "{from} is not on the [compute] ladder ({}): give `to`",
            ladder.join(", ")
        )
    })?;
    let j = if down { i.checked_sub(1) } else { Some(i + 1) };
    j.and_then(|j| ladder.get(j)).cloned().ok_or_else(|| {
        format!(
            "{from} is the {} rung of the ladder",
            if down { "lowest" } else { "highest" }
        )
    })
}

/// Describe every instance, refuse what cannot be resized, pick each new type.
async fn plan(
    env: &Environment,
    c: &Arc<dyn Compute>,
    o: &VerticalOptions,
) -> Result<Vec<(Resize, Vec<Arc<dyn LoadBalancer>>)>> {
    let ladder = env
        .config
        .compute
        .as_ref()
        .map(|c| c.ladder.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for name in &super::named_or_all(env, &o.instances)? {
        let (host, id) = resolve(env, name)?;
        let inst = c.describe(&id).await?;
        let refuse =
            |m: String| Error::new(ErrorKind::Conflict, m).with_context("instance", id.clone());
        must_run(&inst).map_err(refuse)?;
        let to = match &o.to {
            Some(t) => t.clone(),
            None => next_rung(&ladder, &inst.instance_type, o.down).map_err(refuse)?,
        };
        if to == inst.instance_type {
            return Err(refuse(format!("{id} is {to} already: nothing to resize")));
        }
        let lbs = memberships(env, &id).await?;
        let r = Resize {
            id,
            host,
            from: inst.instance_type,
            to,
            balancers: lbs.iter().map(|b| b.which().name.clone()).collect(),
            outcome: ResizeOutcome::Planned,
            reason: None,
        };
        out.push((r, lbs));
    }
    Ok(out)
}

/// Resize every instance of the options, one at a time; the first failure stops the rest.
pub async fn scale_vertical(env: &Environment, o: &VerticalOptions, ro: &RunOptions) -> Report {
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(env.config.scaling.deadline.0));
    env.execute("scale_vertical", &ro, |run| async move {
        let c = compute(env, "scale_vertical")?;
        let planned = run
            .check("plan", Some(Duration::from_secs(300)), async {
                let p = plan(env, &c, o).await?;
                let s: Vec<String> = p
                    .iter()
                    .map(|(r, _)| {
                        format!("{} {} → {} (in {})", r.id, r.from, r.to, list(&r.balancers))
                    })
                    .collect();
                Ok(Checked::pass(p, s.join("; ")))
            })
            .await?;
        let mut out = VerticalPayload::default();
        let mut stop: Option<String> = None;
        for (mut r, lbs) in planned {
            if let Some(why) = &stop {
                r.outcome = ResizeOutcome::NotStarted;
                r.reason = Some(why.clone());
                run.skip(&format!("resize:{}", r.id), Action::Change, why.clone());
            } else {
                r = one(env, &run, &c, r, &lbs).await;
                if matches!(r.outcome, ResizeOutcome::RolledBack | ResizeOutcome::Failed) {
                    stop = Some(format!(
                        "{} failed: the later instances were not started",
                        r.id
                    ));
                    escalate(&run, &r);
                }
            }
            out.instances.push(r);
        }
        if let (None, Some(url)) = (&stop, &o.load_url) {
            out.load = post_scaling_load(env, &run, url).await;
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

/// The spec's post-scaling check, `ab -n 1000 -c 10`: a failed threshold escalates
/// (`post_scaling_load`); the resize stands — the instances are healthy and in service.
async fn post_scaling_load(
    env: &Environment,
    run: &Run,
    url: &str,
) -> Option<crate::runbook::load_test::LoadPayload> {
    let o = crate::runbook::load_test::LoadOptions {
        url: Some(url.to_string()),
        requests: Some(1000),
        concurrency: 10,
        ..Default::default()
    };
    let p = match crate::runbook::load_test::embedded(env, run, &o, "post_scaling:").await {
        Ok(p) => p?,
        Err(e) => {
            run.finding(Severity::Warning, "post_scaling:load", e.to_string());
            return None;
        }
    };
    for t in p.thresholds.iter().filter(|t| !t.passed) {
        let m = format!(
            "after the resize, threshold {} failed: observed {:.4}",
            t.threshold, t.observed
        );
        run.escalate(
            "post_scaling_load",
            t.threshold.clone(),
            format!("{:.4}", t.observed),
            t.threshold.clone(),
            m,
        );
    }
    Some(p)
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "no load balancer".into()
    } else {
        v.join(", ")
    }
}

fn escalate(run: &Run, r: &Resize) {
    let how = match r.outcome {
        ResizeOutcome::RolledBack => format!("put back on {}, running and in service", r.from),
        _ => "NOT put back: see the findings and fix by hand".into(),
    };
    let why = r.reason.clone().unwrap_or_default();
    run.escalate(
        "resize_failed",
        r.id.clone(),
        why.clone(),
        format!("{} → {} without an error", r.from, r.to),
        format!("{}: {why}; {how}", r.id),
    );
}

/// One instance: the steps, then its undos settled (failure) or forgotten (success).
async fn one(
    env: &Environment,
    run: &Run,
    c: &Arc<dyn Compute>,
    mut r: Resize,
    lbs: &[Arc<dyn LoadBalancer>],
) -> Resize {
    let (restore, rereg) = (format!("restore:{}", r.id), format!("reregister:{}", r.id));
    match steps(env, run, c, &r, lbs).await {
        Ok(()) if run.is_dry_run() => r.outcome = ResizeOutcome::Planned,
        Ok(()) => {
            run.forget(&restore);
            while run.forget(&rereg) {}
            r.outcome = ResizeOutcome::Resized;
        }
        Err(e) => {
            let mut ok = settle_all(run, &restore).await;
            ok &= settle_all(run, &rereg).await;
            r.outcome = if ok {
                ResizeOutcome::RolledBack
            } else {
                ResizeOutcome::Failed
            };
            r.reason = Some(e.to_string());
        }
    }
    r
}

/// Run every pending undo named `name` now; whether all succeeded.
async fn settle_all(run: &Run, name: &str) -> bool {
    let mut ok = true;
    while run.pending_undos(true).iter().any(|n| n == name) {
        ok &= run.settle(name).await;
    }
    ok
}

/// The procedure for one instance.
async fn steps(
    env: &Environment,
    run: &Run,
    c: &Arc<dyn Compute>,
    r: &Resize,
    lbs: &[Arc<dyn LoadBalancer>],
) -> Result<()> {
    let cc = env.config.compute.clone().unwrap_or_default();
    let (id, ids, clock) = (&r.id, vec![r.id.clone()], env.clock.clone());
    let every = cc.poll_interval.0;
    for lb in lbs {
        let name = lb.which().name.clone();
        let (lb2, ids2) = (lb.clone(), ids.clone());
        let undo = Undo::on_failure(format!("reregister:{id}"), move || async move {
            lb2.register(&ids2).await
        });
        run.change(
            &format!("deregister:{id}:{name}"),
            format!("take {id} out of {name}"),
            lb.deregister(&ids),
            Some(undo),
        )
        .await?;
        let (_, drain) = super::lb_waits(env, lb.as_ref());
        wait(run, &format!("drain:{id}:{name}"), drain, async {
            let d = wait_drained(lb.as_ref(), clock.as_ref(), &ids, drain, every).await?;
            Ok(format!(
                "{id} drained from {name} in {}",
                format_duration(d)
            ))
        })
        .await?;
    }
    let undo = restore_undo(c.clone(), lbs.to_vec(), clock.clone(), r, &cc);
    run.change(
        &format!("stop:{id}"),
        format!("stop {id}"),
        c.stop(id),
        Some(undo),
    )
    .await?;
    let t = cc.stop_timeout.0;
    wait(run, &format!("wait_stopped:{id}"), t, async {
        c.wait_state(id, InstanceState::Stopped, t)
            .await
            .map(|()| format!("{id} stopped"))
    })
    .await?;
    let plan = format!("{id}: instance type {} → {}", r.from, r.to);
    run.change(&format!("modify:{id}"), plan, c.set_type(id, &r.to), None)
        .await?;
    run.change(
        &format!("start:{id}"),
        format!("start {id} as {}", r.to),
        c.start(id),
        None,
    )
    .await?;
    started(run, c, id, &cc).await?;
    for lb in lbs {
        let name = lb.which().name.clone();
        run.change(
            &format!("register:{id}:{name}"),
            format!("put {id} back in {name}"),
            lb.register(&ids),
            None,
        )
        .await?;
        let (healthy, _) = super::lb_waits(env, lb.as_ref());
        wait(run, &format!("in_service:{id}:{name}"), healthy, async {
            wait_healthy(lb.as_ref(), clock.as_ref(), &ids, healthy, every).await?;
            Ok(format!("{id} healthy in {name}"))
        })
        .await?;
    }
    validate(env, run, r).await
}

/// Wait running, then for the status checks.
async fn started(run: &Run, c: &Arc<dyn Compute>, id: &str, cc: &ComputeConfig) -> Result<()> {
    let t = cc.start_timeout.0;
    wait(run, &format!("wait_running:{id}"), t, async {
        c.wait_state(id, InstanceState::Running, t)
            .await
            .map(|()| format!("{id} running"))
    })
    .await?;
    let t = cc.status_timeout.0;
    if t.is_zero() {
        return Ok(());
    }
    wait(run, &format!("status_ok:{id}"), t, async {
        c.wait_status_ok(id, t)
            .await
            .map(|()| format!("{id} status checks passed"))
    })
    .await
}

/// Post-scaling validation: the host's health endpoint and its resources. The load-test hook:
/// when the load-testing runbook exists, a short load test runs here.
async fn validate(env: &Environment, run: &Run, r: &Resize) -> Result<()> {
    let Some(host) = r.host.clone() else {
        run.skip(
            &format!("health:{}", r.id),
            Action::Read,
            "no host of [compute] instances: health not probed",
        );
        return Ok(());
    };
    if run.is_dry_run() {
        run.skip(
            &format!("health:{host}"),
            Action::Read,
            "dry run: would probe health and resources",
        );
        return Ok(());
    }
    let poll = env.config.restart.health;
    let path = env.config.service.health_path.clone();
    let probe = env
        .services
        .get(&host)
        .map_or(env.probe.clone(), |s| s.health.clone());
    run.check(
        &format!("health:{host}"),
        Some(poll.deadline.0 + Duration::from_secs(30)),
        async {
            crate::runbook::service_ops::poll_health(
                probe.as_ref(),
                env.clock.as_ref(),
                &path,
                &poll,
            )
            .await
            .map(|s| Checked::pass((), format!("{host}: {s}")))
            .map_err(|e| Error::new(ErrorKind::Unavailable, format!("{host}: {e}")))
        },
    )
    .await?;
    if let Ok(h) = env.host(&host) {
        let t = &env.config.thresholds;
        match crate::host::resource_usage(h.host.as_ref(), &h.config.mounts).await {
            Ok(u) if u.memory.used_ratio > t.resource_max.0 => {
                run.finding(
                    Severity::Warning,
                    &host,
                    format!(
                        "memory at {:.0}% after the resize",
                        100.0 * u.memory.used_ratio
                    ),
                );
            }
            Ok(_) => run.record(
                &format!("resources:{host}"),
                Action::Read,
                crate::report::Outcome::Pass,
                "resources within thresholds",
            ),
            Err(e) => run.finding(
                Severity::Warning,
                &host,
                format!("resources not read after the resize: {e}"),
            ),
        }
    }
    Ok(())
}

/// The way back, registered before the stop: wait out a stop in flight, put the old type back
/// (stopping it first, out of its balancers, when it already runs the new one), start it and
/// wait for it to run. Re-registering is the `reregister` undo's, which runs after this one.
fn restore_undo(
    c: Arc<dyn Compute>,
    lbs: Vec<Arc<dyn LoadBalancer>>,
    clock: Arc<dyn Clock>,
    r: &Resize,
    cc: &ComputeConfig,
) -> Undo {
    let (id, from) = (r.id.clone(), r.from.clone());
    let (stop_t, start_t, every) = (cc.stop_timeout.0, cc.start_timeout.0, cc.poll_interval.0);
    Undo::on_failure(format!("restore:{id}"), move || async move {
        let i = c.describe(&id).await?;
        if i.state == InstanceState::Stopping {
            c.wait_state(&id, InstanceState::Stopped, stop_t).await?;
        }
        if i.instance_type != from {
            if matches!(i.state, InstanceState::Running | InstanceState::Pending) {
                let ids = vec![id.clone()];
                for lb in &lbs {
                    lb.deregister(&ids).await?;
                    wait_drained(lb.as_ref(), clock.as_ref(), &ids, stop_t, every).await?;
                }
                c.stop(&id).await?;
                c.wait_state(&id, InstanceState::Stopped, stop_t).await?;
            }
            c.set_type(&id, &from).await?;
        }
        c.start(&id).await?;
        c.wait_state(&id, InstanceState::Running, start_t).await
    })
    .with_timeout(stop_t * 2 + start_t + Duration::from_secs(60))
}
