//! The spec's **Emergency Shutdown** runbook — on every host at once: the flag, a notice
//! (a failed one is a warning), a graceful stop, a typed check that no process of the service
//! remains, a `KILL` after the wait, and the check again — and its way back,
//! `emergency_recover`: flag removed, service started, health polled.

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::config::fill_host;
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, HostEntry};
use crate::report::Report;
use crate::runbook::registry::{Definition, OptionDoc, Validate, check_args, defaults_of};
use crate::runbook::run::{Run, RunOptions};
use crate::runbook::service_ops::poll_health;
use crate::service::Signal;

/// Options of `emergency_shutdown` and `emergency_recover`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmergencyOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Why (in the notice).
    pub reason: Option<String>,
}

impl Validate for EmergencyOptions {}

/// How the service was stopped on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// The graceful stop ended every process.
    Stopped,
    /// Processes remained after the graceful stop and the wait; `KILL` ended them.
    Killed,
    /// Processes remain even after `KILL` (or the host could not be reached).
    Failed,
    /// Dry-run.
    Planned,
}

/// One host of an emergency shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostShutdown {
    /// Host.
    pub host: String,
    /// Whether the flag was set.
    pub flag_set: bool,
    /// How the service stopped.
    pub outcome: StopOutcome,
    /// Pids that were running before.
    pub pids_before: Vec<u32>,
    /// Pids still alive at the end (empty unless failed).
    pub pids_left: Vec<u32>,
    /// What went wrong on the way (the graceful stop's error...).
    pub notes: Vec<String>,
}

/// The payload of `emergency_shutdown`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShutdownPayload {
    /// The flag's path (before host placeholders).
    pub flag: String,
    /// Whether the notice was sent.
    pub notified: bool,
    /// Every host.
    pub hosts: Vec<HostShutdown>,
}

/// One host of an emergency recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecovery {
    /// Host.
    pub host: String,
    /// Healthy at the end.
    pub healthy: bool,
    /// The health poll's answer.
    pub health: String,
}

/// The payload of `emergency_recover`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RecoverPayload {
    /// Every host.
    pub hosts: Vec<HostRecovery>,
}

fn chosen<'a>(env: &'a Environment, o: &EmergencyOptions) -> Result<Vec<&'a HostEntry>> {
    let hosts: Vec<&HostEntry> = if o.hosts.is_empty() {
        env.hosts.iter().collect()
    } else {
        o.hosts.iter().map(|h| env.host(h)).collect::<Result<_>>()?
    };
    if hosts.is_empty() {
        return Err(Error::config("no [[hosts]] to act on"));
    }
    for h in &hosts {
        env.service(&h.config.name)?;
    }
    Ok(hosts)
}

async fn run_ok(h: &HostEntry, cmd: Cmd) -> Result<()> {
    h.host.run(&cmd).await?.check(&h.config.name, &cmd)?;
    Ok(())
}

/// The spec's Emergency Shutdown, on every host at once.
pub async fn emergency_shutdown(
    env: &Environment,
    o: &EmergencyOptions,
    ro: &RunOptions,
) -> Report {
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(env.config.emergency.deadline.0));
    env.execute("emergency_shutdown", &ro, |run| async move {
        let hosts = chosen(env, o)?;
        let flag = env.config.emergency.flag.clone();
        let flags = join_all(hosts.iter().map(|h| set_flag(&run, h, &flag))).await;
        let notified = notify(env, &run, o).await;
        let stops = join_all(hosts.iter().map(|h| stop_host(env, &run, h))).await;
        let mut out = ShutdownPayload {
            flag,
            notified,
            hosts: Vec::new(),
        };
        for (mut s, flag_set) in stops.into_iter().zip(flags) {
            s.flag_set = flag_set;
            if !flag_set && !run.is_dry_run() {
                // The stop goes on without it (an emergency), but the service may start
                // again unflagged: say so.
                run.escalate(
                    "flag_not_set",
                    s.host.clone(),
                    format!("flag:{} failed", s.host),
                    "the flag present on every host".to_string(),
                    format!(
                        "{}: the emergency flag could not be set (see its step)",
                        s.host
                    ),
                );
            }
            if s.outcome == StopOutcome::Failed {
                run.escalate(
                    "shutdown_incomplete",
                    s.host.clone(),
                    format!("pids {:?} alive", s.pids_left),
                    "no process of the service".to_string(),
                    format!(
                        "{}: the service is still running after KILL: {}",
                        s.host,
                        s.notes.join("; ")
                    ),
                );
            }
            out.hosts.push(s);
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

async fn set_flag(run: &Run, h: &HostEntry, flag: &str) -> bool {
    let path = fill_host(flag, &h.config);
    let step = format!("flag:{}", h.config.name);
    let cmd = Cmd::new("touch").arg(&path);
    let plan = format!("touch {path} on {}", h.config.name);
    matches!(
        run.change(&step, plan, run_ok(h, cmd), None).await,
        Ok(Some(()))
    )
}

/// The notice; a failed one is a warning, never a stop.
async fn notify(env: &Environment, run: &Run, o: &EmergencyOptions) -> bool {
    let why = o
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let text = format!(
        ":rotating_light: Emergency shutdown of {} in progress{why}",
        env.name()
    );
    crate::runbook::notice::post(env, run, "notify", &text, "the emergency notice").await
}

/// Graceful stop → wait → check → `KILL` → check, as one change step of the host.
async fn stop_host(env: &Environment, run: &Run, h: &HostEntry) -> HostShutdown {
    let name = h.config.name.clone();
    let mut s = HostShutdown {
        host: name.clone(),
        flag_set: false,
        outcome: StopOutcome::Planned,
        pids_before: Vec::new(),
        pids_left: Vec::new(),
        notes: Vec::new(),
    };
    let Ok(svc) = env.service(&name) else {
        s.outcome = StopOutcome::Failed;
        return s;
    };
    let m = svc.manager.clone();
    let wait = env.config.emergency.stop_wait.0;
    let plan = format!(
        "stop {} gracefully; wait up to {} for its processes to end; then kill -s KILL; check none remains",
        m.describe(),
        crate::units::format_duration(wait)
    );
    let work = async {
        s.pids_before = m.processes().await.unwrap_or_default();
        if let Err(e) = m.stop().await {
            s.notes.push(format!("graceful stop: {e}"));
        }
        let mut left = gone_within(m.as_ref(), env, wait).await?;
        s.outcome = StopOutcome::Stopped;
        if !left.is_empty() {
            s.notes
                .push(format!("pids {left:?} alive after the graceful stop"));
            m.kill(Signal::Kill).await?;
            left = gone_within(m.as_ref(), env, std::time::Duration::from_secs(5)).await?;
            s.outcome = StopOutcome::Killed;
        }
        s.pids_left = left.clone();
        if left.is_empty() {
            Ok(format!("{name}: {:?}, no process left", s.outcome).to_lowercase())
        } else {
            Err(Error::new(
                ErrorKind::Unexpected,
                format!("pids {left:?} alive after KILL"),
            ))
        }
    };
    let r = run.change(&format!("stop:{name}"), plan, work, None).await;
    if let Err(e) = r {
        s.outcome = StopOutcome::Failed;
        s.notes.push(e.to_string());
    }
    s
}

/// The service's processes, polled until none is left or `limit` passes.
async fn gone_within(
    m: &dyn crate::service::ServiceManager,
    env: &Environment,
    limit: std::time::Duration,
) -> Result<Vec<u32>> {
    let start = env.clock.now();
    loop {
        let left = m.processes().await?;
        let took = (env.clock.now() - start).to_std().unwrap_or_default();
        if left.is_empty() || took >= limit {
            return Ok(left);
        }
        env.clock.sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The way back: flag removed, service started, health polled — every host at once.
pub async fn emergency_recover(env: &Environment, o: &EmergencyOptions, ro: &RunOptions) -> Report {
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(env.config.emergency.deadline.0));
    env.execute("emergency_recover", &ro, |run| async move {
        let hosts = chosen(env, o)?;
        let flag = env.config.emergency.flag.clone();
        let all = join_all(hosts.iter().map(|h| recover_host(env, &run, h, &flag))).await;
        for r in all.iter().filter(|r| !r.healthy) {
            run.escalate(
                "recover_failed",
                r.host.clone(),
                r.health.clone(),
                "healthy".to_string(),
                format!("{} is not healthy after the recovery", r.host),
            );
        }
        Ok(serde_json::to_value(RecoverPayload { hosts: all }).unwrap_or_default())
    })
    .await
}

async fn recover_host(env: &Environment, run: &Run, h: &HostEntry, flag: &str) -> HostRecovery {
    let name = h.config.name.clone();
    let path = fill_host(flag, &h.config);
    let mut out = HostRecovery {
        host: name.clone(),
        healthy: false,
        health: "planned".into(),
    };
    let Ok(svc) = env.service(&name) else {
        return out;
    };
    let cmd = Cmd::new("rm").args(["-f", &path]);
    let plan = format!("rm -f {path} on {name}");
    if let Err(e) = run
        .change(&format!("unflag:{name}"), plan, run_ok(h, cmd), None)
        .await
    {
        out.health = format!("flag not removed: {e}");
        return out;
    }
    let poll = env.config.restart.health;
    let hp = env.config.service.health_path.clone();
    let plan = format!("start {}; poll {hp}", svc.manager.describe());
    let work = async {
        svc.manager.start().await?;
        poll_health(svc.health.as_ref(), env.clock.as_ref(), &hp, &poll)
            .await
            .map_err(|e| Error::new(ErrorKind::Unavailable, e))
    };
    match run.change(&format!("start:{name}"), plan, work, None).await {
        Ok(Some(h)) => {
            out.healthy = true;
            out.health = h;
        }
        Ok(None) => {}
        Err(e) => out.health = e.to_string(),
    }
    out
}

const HOSTS_DOC: OptionDoc = OptionDoc {
    name: "hosts",
    kind: "list of host names",
    help: "only these hosts (default every host)",
};

/// `emergency_shutdown` in the catalogue.
pub static SHUTDOWN: Definition = Definition {
    name: "emergency_shutdown",
    command: "emergency shutdown",
    aliases: &[],
    summary: "flag, notify, stop the service on every host at once, KILL what remains, check none is left",
    changes: true,
    steps: &[
        "flag on every host ([emergency] flag)",
        "notify (a failure is a warning)",
        "graceful stop, wait, KILL, check no process remains — every host at once",
    ],
    options: &[
        HOSTS_DOC,
        OptionDoc {
            name: "reason",
            kind: "string",
            help: "why, in the notice",
        },
    ],
    defaults: defaults_of::<EmergencyOptions>,
    check_options: check_args::<EmergencyOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: EmergencyOptions =
                crate::runbook::registry::parse_args("emergency_shutdown", v)?;
            Ok(emergency_shutdown(env, &o, &run).await)
        })
    },
};

/// `emergency_recover` in the catalogue.
pub static RECOVER: Definition = Definition {
    name: "emergency_recover",
    command: "emergency recover",
    aliases: &[],
    summary: "the way back from an emergency shutdown: remove the flag, start, poll health on every host",
    changes: true,
    steps: &["remove the flag", "start the service", "poll health"],
    options: &[
        HOSTS_DOC,
        OptionDoc {
            name: "reason",
            kind: "string",
            help: "ignored (accepted for symmetry)",
        },
    ],
    defaults: defaults_of::<EmergencyOptions>,
    check_options: check_args::<EmergencyOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: EmergencyOptions = crate::runbook::registry::parse_args("emergency_recover", v)?;
            Ok(emergency_recover(env, &o, &run).await)
        })
    },
};
