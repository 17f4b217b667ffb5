//! The spec's **Service Restart** runbook, fleet-wide in waves: in each wave every host gets a
//! graceful restart and a health poll, and a force (kill, start, poll) when it is not healthy;
//! after each wave the failure budgets (per wave and for the run) decide whether the next
//! starts. An unreachable host counts as failed; one host failing never hides the others.

use std::sync::{Arc, Mutex};

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::config::{Dur, FailureBudget, HealthPoll, Serial, fill_host};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, LocalHost, RemoteHost};
use crate::report::{Report, Severity};
use crate::runbook::registry::{Definition, OptionDoc, Validate, check_args, defaults_of};
use crate::runbook::run::{Change, Run, RunOptions, Undo};
use crate::runbook::service_ops::{HostOutcome, HostRestart, restart_host, restarted_since};

/// Options of `restart` (each default from `[restart]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Waves: `1`, `"10%"` or a ramp `[1, "10%", "50%"]`.
    pub serial: Option<Serial>,
    /// Failed hosts a wave may have (count or share of the wave).
    pub wave_failure_budget: Option<FailureBudget>,
    /// Failed hosts the run may have.
    pub failure_budget: Option<FailureBudget>,
    /// Give up on a host's health after this long.
    pub health_deadline: Option<Dur>,
    /// Time between two health probes.
    pub health_interval: Option<Dur>,
    /// Healthy answers in a row needed.
    pub health_successes: Option<u32>,
}

impl Validate for RestartOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.health_successes == Some(0) {
            return Err("health_successes: at least 1".into());
        }
        Ok(())
    }
}

/// The payload of `restart`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RestartPayload {
    /// The hosts of each wave.
    pub waves: Vec<Vec<String>>,
    /// Every host's result, in wave order.
    pub hosts: Vec<HostRestart>,
    /// Why the rollout stopped before the last wave.
    pub stopped: Option<String>,
}

/// The resolved plan: hosts in waves, budgets, health poll.
struct Plan {
    waves: Vec<Vec<String>>,
    wave_budget: FailureBudget,
    run_budget: FailureBudget,
    total: usize,
    poll: HealthPoll,
}

fn plan(env: &Environment, o: &RestartOptions) -> Result<Plan> {
    let c = &env.config.restart;
    let hosts: Vec<String> = if o.hosts.is_empty() {
        env.hosts.iter().map(|h| h.config.name.clone()).collect()
    } else {
        for h in &o.hosts {
            env.host(h)?;
        }
        o.hosts.clone()
    };
    if hosts.is_empty() {
        return Err(Error::config("restart: no [[hosts]] to restart"));
    }
    for h in &hosts {
        env.service(h)?;
    }
    let serial = o.serial.clone().unwrap_or_else(|| c.serial.clone());
    let mut waves = Vec::new();
    let mut rest = hosts.iter();
    for n in serial.waves(hosts.len()) {
        waves.push(rest.by_ref().take(n).cloned().collect());
    }
    let mut poll = c.health;
    poll.deadline = o.health_deadline.unwrap_or(poll.deadline);
    poll.interval = o.health_interval.unwrap_or(poll.interval);
    poll.successes = o.health_successes.unwrap_or(poll.successes);
    Ok(Plan {
        waves,
        wave_budget: o.wave_failure_budget.unwrap_or(c.wave_failure_budget),
        run_budget: o.failure_budget.unwrap_or(c.failure_budget),
        total: hosts.len(),
        poll,
    })
}

/// The spec's Service Restart on every host (or `hosts`), in waves.
pub async fn restart(env: &Environment, opts: &RestartOptions, run_opts: &RunOptions) -> Report {
    let mut ro = run_opts.clone();
    ro.deadline = ro.deadline.or(Some(env.config.restart.deadline.0));
    env.execute("restart", &ro, |run| async move {
        let p = plan(env, opts)?;
        let mut out = RestartPayload {
            waves: p.waves.clone(),
            ..RestartPayload::default()
        };
        let mut failed = 0;
        for (i, wave) in p.waves.iter().enumerate() {
            if let Some(why) = &out.stopped {
                let skipped = wave
                    .iter()
                    .map(|h| HostRestart::new(h, i + 1, HostOutcome::Skipped));
                out.hosts.extend(skipped);
                run.skip(
                    &format!("wave:{}", i + 1),
                    crate::report::Action::Change,
                    why.clone(),
                );
                continue;
            }
            let results = run_wave(env, &run, &p, wave, i + 1).await;
            let wave_failed = results
                .iter()
                .filter(|r| r.outcome == HostOutcome::Failed)
                .count();
            failed += wave_failed;
            out.hosts.extend(results);
            out.stopped = judge(&run, &p, i + 1, wave.len(), wave_failed, failed);
        }
        if failed > 0 && out.stopped.is_none() {
            let msg = format!("{failed} of {} hosts failed to restart", p.total);
            run.finding(Severity::Critical, "restart", msg);
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

/// After a wave: stop the rollout (and escalate) when a budget is spent.
fn judge(
    run: &Run,
    p: &Plan,
    wave: usize,
    size: usize,
    wave_failed: usize,
    failed: usize,
) -> Option<String> {
    let (wave_allowed, run_allowed) = (p.wave_budget.allowed(size), p.run_budget.allowed(p.total));
    let why = if wave_failed > wave_allowed {
        format!("wave {wave}: {wave_failed} of {size} hosts failed (budget {wave_allowed})")
    } else if failed > run_allowed {
        format!("{failed} hosts failed in all (budget {run_allowed})")
    } else {
        return None;
    };
    if wave < p.waves.len() {
        run.escalate(
            "restart_budget_spent",
            format!("wave {wave}"),
            why.clone(),
            format!("≤ {wave_allowed} per wave, ≤ {run_allowed} in all"),
            format!("{why}: the later waves were not started"),
        );
    } else {
        run.escalate(
            "restart_failed",
            format!("wave {wave}"),
            why.clone(),
            format!("≤ {run_allowed} failed hosts"),
            why.clone(),
        );
    }
    Some(why)
}

/// Every host of a wave at once, each its own change step.
async fn run_wave(
    env: &Environment,
    run: &Run,
    p: &Plan,
    wave: &[String],
    n: usize,
) -> Vec<HostRestart> {
    // One scope per host: a resumed run does not touch a host it finished.
    let hosts = wave
        .iter()
        .map(|h| run.scope(format!("host:{h}"), one_host(env, run, p, h, n)));
    join_all(hosts).await
}

/// One host: out of the load balancer (when configured), restarted, back in once healthy.
async fn one_host(env: &Environment, run: &Run, p: &Plan, h: &str, n: usize) -> HostRestart {
    let svc = match env.service(h) {
        Ok(s) => s.clone(),
        Err(e) => {
            let mut r = HostRestart::new(h, n, HostOutcome::Failed);
            r.last_health = Some(e.to_string());
            return r;
        }
    };
    if let Err(e) = drain(env, run, h).await {
        let mut r = HostRestart::new(h, n, HostOutcome::Failed);
        r.last_health = Some(format!("not drained, not restarted: {e}"));
        return r;
    }
    let (path, poll) = (env.config.service.health_path.clone(), p.poll);
    let plan_text = format!(
        "wave {n}: restart {} gracefully; poll {path} every {} for {} ({} in a row); if not healthy: kill -s KILL, start, poll again",
        svc.manager.describe(),
        crate::units::format_duration(poll.interval.0),
        crate::units::format_duration(poll.deadline.0),
        poll.successes
    );
    let slot = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    let clock = env.clock.clone();
    // What a resume checks when the runner stopped during this restart: a new main process
    // that answers healthy means it happened.
    let pid_before = match run.is_dry_run() {
        true => None,
        false => svc.manager.status().await.ok().and_then(|s| s.main_pid),
    };
    let (svc2, clock2, path2) = (svc.clone(), clock.clone(), path.clone());
    let change = Change::new(format!("restart:{h}"), plan_text).verify(
        serde_json::json!(pid_before),
        move |w| async move {
            let before = w.and_then(|v| serde_json::from_value(v).ok()).flatten();
            restarted_since(&svc2, clock2.as_ref(), &path2, &poll, n, before).await
        },
    );
    let work = async move {
        let r = restart_host(&svc, clock.as_ref(), &path, &poll, n).await;
        if r.outcome == HostOutcome::Failed {
            let line = r.summary();
            *s2.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            return Err(Error::new(ErrorKind::Unavailable, line));
        }
        Ok(r)
    };
    let r = match run.apply(change, work).await {
        Ok(Some(r)) => r,
        Ok(None) => HostRestart::new(h, n, HostOutcome::Planned),
        Err(e) => slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| {
                // Failed before the runner stopped: what the log kept of it.
                let mut r = HostRestart::new(h, n, HostOutcome::Failed);
                r.last_health = Some(e.to_string());
                r
            }),
    };
    if r.outcome == HostOutcome::RecoveredByForce {
        run.finding(Severity::Warning, h.to_string(), r.summary());
    }
    undrain(env, run, h, r.outcome).await;
    r
}

/// Where drain and undrain run, and their argv.
type DrainCmds = (Arc<dyn RemoteHost>, Vec<String>, Vec<String>);

/// Where drain and undrain run, and their argv for host `h`.
fn drain_cmds(env: &Environment, h: &str) -> Result<Option<DrainCmds>> {
    let c = &env.config.restart;
    if c.drain.is_empty() {
        return Ok(None);
    }
    let target = env.host(h)?;
    let fill = |v: &Vec<String>| {
        v.iter()
            .map(|a| fill_host(a, &target.config))
            .collect::<Vec<_>>()
    };
    let on: Arc<dyn RemoteHost> = match &c.drain_host {
        Some(n) => env
            .host_or_first(Some(n), "restart.drain_host")?
            .host
            .clone(),
        None => Arc::new(LocalHost::new("local")),
    };
    Ok(Some((on, fill(&c.drain), fill(&c.undrain))))
}

async fn run_argv(on: &dyn RemoteHost, argv: &[String]) -> Result<()> {
    let Some((p, a)) = argv.split_first() else {
        return Ok(());
    };
    let cmd = Cmd::new(p.clone())
        .args(a.iter().cloned())
        .timeout(Duration::from_secs(60));
    on.run(&cmd).await?.check(on.name(), &cmd)?;
    Ok(())
}

/// Take `h` out; its undrain is registered first (always run: Ctrl-C puts it back).
async fn drain(env: &Environment, run: &Run, h: &str) -> Result<()> {
    let Some((on, out, back)) = drain_cmds(env, h)? else {
        return Ok(());
    };
    let on2 = on.clone();
    let undo = Undo::always(format!("undrain:{h}"), move || async move {
        run_argv(on2.as_ref(), &back).await
    });
    let plan = format!("on {}: {}", on.name(), out.join(" "));
    let work = async { run_argv(on.as_ref(), &out).await };
    // Taking a host out twice leaves it out: a resume repeats a drain that was in flight.
    let change = Change::new(format!("drain:{h}"), plan)
        .undo(Some(undo))
        .idempotent();
    run.apply(change, work).await?;
    Ok(())
}

/// Put `h` back once it is healthy; a failed host stays out of the load balancer.
async fn undrain(env: &Environment, run: &Run, h: &str, outcome: HostOutcome) {
    if env.config.restart.drain.is_empty() || run.is_dry_run() {
        if !env.config.restart.drain.is_empty() {
            let plan = env.config.restart.undrain.join(" ");
            let _ = run
                .change::<(), _>(&format!("undrain:{h}"), plan, async { Ok(()) }, None)
                .await;
        }
        return;
    }
    let name = format!("undrain:{h}");
    if outcome == HostOutcome::Failed {
        run.forget(&name);
        let msg =
            "left out of the load balancer: it is not healthy (put it back by hand once fixed)";
        run.finding(Severity::Critical, h.to_string(), msg);
    } else {
        run.settle(&name).await;
    }
}

/// `restart` in the catalogue.
pub static RESTART: Definition = Definition {
    name: "restart",
    command: "restart",
    aliases: &["service_restart"],
    summary: "restart the service host by host in waves: graceful, health poll, force if needed, failure budgets",
    changes: true,
    steps: &[
        "per wave, every host at once: graceful restart (systemctl restart or stop/start)",
        "poll health (deadline, interval, K in a row)",
        "if not healthy: kill -s KILL, start, poll again",
        "after each wave: stop when the wave's or the run's failure budget is spent",
    ],
    options: &[
        OptionDoc {
            name: "hosts",
            kind: "list of host names",
            help: "only these hosts (default every host)",
        },
        OptionDoc {
            name: "serial",
            kind: "count, \"10%\" or a ramp",
            help: "wave sizes (default [restart] serial, 1)",
        },
        OptionDoc {
            name: "wave_failure_budget",
            kind: "count or \"%\"",
            help: "failed hosts a wave may have (default 0)",
        },
        OptionDoc {
            name: "failure_budget",
            kind: "count or \"%\"",
            help: "failed hosts the run may have (default 0)",
        },
        OptionDoc {
            name: "health_deadline",
            kind: "duration",
            help: "give up on a host's health after (default 100s)",
        },
        OptionDoc {
            name: "health_interval",
            kind: "duration",
            help: "between two probes (default 10s)",
        },
        OptionDoc {
            name: "health_successes",
            kind: "count",
            help: "healthy answers in a row (default 1)",
        },
    ],
    defaults: defaults_of::<RestartOptions>,
    check_options: check_args::<RestartOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: RestartOptions = crate::runbook::registry::parse_args("restart", v)?;
            Ok(restart(env, &o, &run).await)
        })
    },
};
