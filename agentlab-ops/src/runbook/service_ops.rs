//! What the service runbooks share: the health poll on one host, and a restart of one host
//! (graceful, then forced when it is not healthy) with its typed outcome.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::HealthPoll;
use crate::probe::{HealthProbe, assess};
use crate::service::{HostService, Signal};
use crate::units::format_duration;

/// How one host's restart ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostOutcome {
    /// Healthy after the graceful restart.
    Healthy,
    /// Not healthy after the graceful restart; healthy after kill and start.
    RecoveredByForce,
    /// Not healthy even after the force (or unreachable).
    Failed,
    /// Not started: the failure budget was spent before its wave.
    Skipped,
    /// Dry-run: only planned.
    Planned,
}

/// One host's restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRestart {
    /// Host.
    pub host: String,
    /// Wave (from 1).
    pub wave: usize,
    /// How it ended.
    pub outcome: HostOutcome,
    /// Main pid before and after.
    pub pid_before: Option<u32>,
    /// Main pid after.
    pub pid_after: Option<u32>,
    /// Why the graceful restart did not do (its error, or the health it left).
    pub graceful_problem: Option<String>,
    /// The last health answer (or error).
    pub last_health: Option<String>,
    /// Seconds it took.
    pub seconds: f64,
}

impl HostRestart {
    /// A result with nothing done yet.
    pub fn new(host: &str, wave: usize, outcome: HostOutcome) -> Self {
        HostRestart {
            host: host.to_string(),
            wave,
            outcome,
            pid_before: None,
            pid_after: None,
            graceful_problem: None,
            last_health: None,
            seconds: 0.0,
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let pids = match (self.pid_before, self.pid_after) {
            (Some(a), Some(b)) => format!(" (pid {a} → {b})"),
            (None, Some(b)) => format!(" (pid {b})"),
            _ => String::new(),
        };
        match self.outcome {
            HostOutcome::Healthy => format!("{}: healthy after restart{pids}", self.host),
            HostOutcome::RecoveredByForce => format!(
                "{}: recovered by force{pids}; graceful: {}",
                self.host,
                self.graceful_problem.as_deref().unwrap_or("?")
            ),
            HostOutcome::Failed => format!(
                "{}: failed; last health: {}",
                self.host,
                self.last_health.as_deref().unwrap_or("none")
            ),
            HostOutcome::Skipped => format!("{}: skipped (failure budget spent)", self.host),
            HostOutcome::Planned => format!("{}: planned", self.host),
        }
    }
}

/// Probe `path` on one host until `poll.successes` healthy answers in a row, at most
/// `poll.deadline`. Ok: how long it took; Err: the last answer.
pub async fn poll_health(
    probe: &dyn HealthProbe,
    clock: &dyn Clock,
    path: &str,
    poll: &HealthPoll,
) -> std::result::Result<String, String> {
    let start = clock.now();
    let need = poll.successes.max(1);
    let mut in_a_row = 0;
    loop {
        let last = match probe.get(path).await {
            Ok(r) => {
                let h = assess(&r, false);
                in_a_row = if h.healthy { in_a_row + 1 } else { 0 };
                format!(
                    "HTTP {} from {}: {}",
                    r.status,
                    r.url,
                    h.problems.join("; ")
                )
            }
            Err(e) => {
                in_a_row = 0;
                e.to_string()
            }
        };
        let took = (clock.now() - start).to_std().unwrap_or_default();
        if in_a_row >= need {
            return Ok(format!(
                "healthy ({need} in a row) after {}",
                format_duration(took)
            ));
        }
        if took >= poll.deadline.0 {
            return Err(format!(
                "not healthy within {}: {last}",
                format_duration(poll.deadline.0)
            ));
        }
        let left = poll.deadline.0.saturating_sub(took);
        clock
            .sleep(poll.interval.0.min(left).max(Duration::from_millis(1)))
            .await;
    }
}

/// Restart one host: graceful restart → health poll → if not healthy, `KILL` and start →
/// health poll again. Never an error: the outcome says what happened.
pub async fn restart_host(
    svc: &HostService,
    clock: &dyn Clock,
    health_path: &str,
    poll: &HealthPoll,
    wave: usize,
) -> HostRestart {
    let started = clock.now();
    let mut r = HostRestart::new(&svc.host, wave, HostOutcome::Failed);
    let m = &svc.manager;
    r.pid_before = m.status().await.ok().and_then(|s| s.main_pid);
    let graceful = match m.restart().await {
        Ok(()) => poll_health(svc.health.as_ref(), clock, health_path, poll).await,
        Err(e) => Err(format!("restart: {e}")),
    };
    match graceful {
        Ok(_) => r.outcome = HostOutcome::Healthy,
        Err(why) => {
            r.graceful_problem = Some(why.clone());
            r.last_health = Some(why);
            let forced = async {
                m.kill(Signal::Kill)
                    .await
                    .map_err(|e| format!("kill: {e}"))?;
                m.start().await.map_err(|e| format!("start: {e}"))?;
                poll_health(svc.health.as_ref(), clock, health_path, poll).await
            };
            match forced.await {
                Ok(_) => r.outcome = HostOutcome::RecoveredByForce,
                Err(why) => r.last_health = Some(why),
            }
        }
    }
    r.pid_after = m.status().await.ok().and_then(|s| s.main_pid);
    r.seconds = (clock.now() - started).num_milliseconds() as f64 / 1000.0;
    r
}

/// Whether a restart that was in flight when its runner stopped happened: the service runs
/// with another main process than `pid_before` and answers healthy. Some(result) if so; None
/// when it did not happen or did not end healthy (the restart is to be done).
pub async fn restarted_since(
    svc: &HostService,
    clock: &dyn Clock,
    health_path: &str,
    poll: &HealthPoll,
    wave: usize,
    pid_before: Option<u32>,
) -> crate::error::Result<Option<HostRestart>> {
    let s = svc.manager.status().await?;
    let Some(pid) = s.main_pid.filter(|p| s.active && Some(*p) != pid_before) else {
        return Ok(None);
    };
    let started = clock.now();
    if poll_health(svc.health.as_ref(), clock, health_path, poll)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let mut r = HostRestart::new(&svc.host, wave, HostOutcome::Healthy);
    (r.pid_before, r.pid_after) = (pid_before, Some(pid));
    r.seconds = (clock.now() - started).num_milliseconds() as f64 / 1000.0;
    Ok(Some(r))
}
