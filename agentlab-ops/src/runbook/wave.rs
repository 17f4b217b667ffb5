//! One wave engine for every staged change: ordered steps, an analysis after each, pause,
//! resume and abort from outside, and the undo of every step that ran. Blue-green traffic
//! shifts run on it (and restarts host by host will).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Outcome;
use crate::runbook::run::{Checked, Run, Undo};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum ControlState {
    #[default]
    Running,
    Paused,
    Aborted(String),
}

/// Pause, resume or abort a running wave from another task (or thread). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct WaveControl(Arc<Mutex<ControlState>>);

impl WaveControl {
    /// A control in the running state.
    pub fn new() -> Self {
        Self::default()
    }
    fn st(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Stop before the next step until `resume` (at most the wave's `max_pause`).
    pub fn pause(&self) {
        let mut s = self.st();
        if *s == ControlState::Running {
            *s = ControlState::Paused;
        }
    }
    /// Go on after a pause.
    pub fn resume(&self) {
        let mut s = self.st();
        if *s == ControlState::Paused {
            *s = ControlState::Running;
        }
    }
    /// Stop before the next step; everything done is undone.
    pub fn abort(&self, reason: impl Into<String>) {
        *self.st() = ControlState::Aborted(reason.into());
    }
    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        *self.st() == ControlState::Paused
    }
}

/// One step of a wave.
pub struct WaveStep {
    /// Step name in the report (`traffic:25%`).
    pub name: String,
    /// What it changes, in words (shown under dry-run).
    pub plan: String,
    /// The change.
    pub apply: Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>,
    /// Its undo, registered once it succeeded.
    pub undo: Option<Undo>,
}

impl std::fmt::Debug for WaveStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaveStep")
            .field("name", &self.name)
            .field("plan", &self.plan)
            .field("undo", &self.undo)
            .finish()
    }
}

impl WaveStep {
    /// A step.
    pub fn new<F, Fut>(name: impl Into<String>, plan: impl Into<String>, apply: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        WaveStep {
            name: name.into(),
            plan: plan.into(),
            apply: Box::new(move || Box::pin(apply())),
            undo: None,
        }
    }
    /// With an undo.
    pub fn undo(mut self, u: Undo) -> Self {
        self.undo = Some(u);
        self
    }
}

/// What an analysis concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Whether the wave may go on.
    pub passed: bool,
    /// One line: the values behind the decision.
    pub summary: String,
    /// The measurements, for the report's payload.
    pub details: serde_json::Value,
}

/// How a wave ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum WaveOutcome {
    /// Every step ran and passed its analysis.
    Completed {
        /// Steps run.
        steps: usize,
    },
    /// Stopped at a step (a failed analysis or an abort); the caller unwinds.
    Aborted {
        /// The step whose analysis failed, or the next step when aborted.
        step: String,
        /// Why.
        reason: String,
        /// Analyses of the steps that ran.
        analyses: Vec<Analysis>,
    },
}

/// Run `steps` in order: wait while paused (at most `max_pause`, on `clock`), apply the step
/// as a change, then `analyze(step index, step name)`; a failed analysis or an abort stops the
/// wave. Under dry-run the steps are planned and the analyses skipped.
pub async fn run_wave<A, AF>(
    run: &Run,
    clock: &dyn Clock,
    steps: Vec<WaveStep>,
    control: &WaveControl,
    max_pause: Duration,
    mut analyze: A,
) -> Result<WaveOutcome>
where
    A: FnMut(usize, String) -> AF,
    AF: Future<Output = Result<Analysis>>,
{
    let n = steps.len();
    let mut analyses = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        // Pause and abort are looked at between steps.
        let mut paused_for = Duration::ZERO;
        loop {
            let state = control.st().clone();
            match state {
                ControlState::Running => break,
                ControlState::Aborted(reason) => {
                    return Ok(WaveOutcome::Aborted {
                        step: step.name,
                        reason: format!("aborted: {reason}"),
                        analyses,
                    });
                }
                ControlState::Paused => {
                    if paused_for >= max_pause {
                        return Ok(WaveOutcome::Aborted {
                            step: step.name,
                            reason: format!(
                                "paused for longer than {}",
                                crate::config::format_duration(max_pause)
                            ),
                            analyses,
                        });
                    }
                    let tick = Duration::from_millis(200);
                    clock.sleep(tick).await;
                    paused_for += tick;
                }
            }
        }
        let name = step.name.clone();
        let applied = run
            .change(&name, step.plan, (step.apply)(), step.undo)
            .await?;
        if applied.is_none() {
            run.skip(
                &format!("analysis:{name}"),
                crate::report::Action::Read,
                "dry-run: nothing to analyse",
            );
            continue;
        }
        let a = run
            .check(&format!("analysis:{name}"), None, async {
                let a = analyze(i, name.clone()).await?;
                let outcome = if a.passed {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                };
                let summary = a.summary.clone();
                Ok(Checked::with(a, outcome, summary))
            })
            .await;
        let a = match a {
            Ok(a) => a,
            // An analysis that could not run is a failed one, never a pass.
            Err(e) if e.kind() == ErrorKind::Cancelled => return Err(e),
            Err(e) => Analysis {
                passed: false,
                summary: format!("analysis could not run: {e}"),
                details: serde_json::Value::Null,
            },
        };
        let passed = a.passed;
        let reason = a.summary.clone();
        analyses.push(a);
        if !passed {
            return Ok(WaveOutcome::Aborted {
                step: name,
                reason,
                analyses,
            });
        }
    }
    Ok(WaveOutcome::Completed { steps: n })
}

/// An error for a wave that stopped.
pub fn aborted_error(step: &str, reason: &str) -> Error {
    Error::new(ErrorKind::Conflict, format!("stopped at {step}: {reason}")).with_operation("wave")
}
