//! The step recorder: every action of a runbook goes through a [`Run`].
//!
//! A step is declared as a read ([`Run::check`]) or a change ([`Run::change`]). The recorder
//! times each step, scrubs secrets from what it records, runs reads and only *plans* changes
//! under dry-run, and keeps an undo for every change that ran. [`execute`] drives a runbook
//! body: when the body fails, is cancelled, or Ctrl-C arrives, the body is stopped and the
//! undo stack runs in reverse (undos marked [`UndoWhen::Always`] run in every case: the
//! maintenance flag is always removed). The finished [`Report`] is appended to the journal.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::error::{Error, ErrorInfo, ErrorKind, Result};
use crate::report::{Action, Check, Escalation, Finding, Outcome, Report, Severity, Verdict};
use crate::secret::redact;

pub mod durable;
mod execute;
pub mod log;
#[cfg(test)]
mod tests;
mod undo;

pub use durable::Change;
pub use execute::execute;
pub use log::{Replay, RunLog, RunRecord};
pub use undo::{Undo, UndoWhen};

/// How a run behaves.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Reads run; changes are only planned.
    pub dry_run: bool,
    /// Stop on SIGINT (Ctrl-C), SIGTERM and SIGHUP and run the undo steps (see
    /// [`super::stop`]): for a process that owns its signals, like the command.
    pub handle_signals: bool,
    /// Stop when this token is cancelled and run the undo steps.
    pub cancel: Option<CancelToken>,
    /// Do not append the report to the journal.
    pub no_journal: bool,
    /// Stop the run after this long (a `timeout` error; its undo steps run). A runbook may set
    /// its own default when the caller sets none.
    pub deadline: Option<Duration>,
    /// Progress of a long runbook (objects verified), for a progress bar.
    pub progress: Option<Progress>,
    /// Pause, resume or abort a rollout from outside (SIGUSR1/SIGUSR2, Python's RolloutControl).
    pub control: Option<super::wave::WaveControl>,
    /// The options the run was started with through the catalogue (set by
    /// [`super::registry::Definition::run`]): kept in the run log so `resume` can re-enter it.
    pub invocation: Option<serde_json::Value>,
    /// Resume this run (its log folded, see [`super::resume`]) instead of starting a new one.
    pub resume: Option<Arc<Replay>>,
    /// The new run's id (default: a fresh one): a run nested in another gets one derived
    /// from its parent's, so that resuming the parent finds it (see [`super::resume::nested`]).
    pub run_id: Option<String>,
}

/// Progress of a long operation, for a progress bar.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Units done.
    pub done: Arc<std::sync::atomic::AtomicU64>,
    /// Units expected (0 while unknown).
    pub total: Arc<std::sync::atomic::AtomicU64>,
}

impl RunOptions {
    /// Options with dry-run set.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
    /// Options with stop-signal handling (SIGINT, SIGTERM, SIGHUP) set.
    pub fn signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }
    /// Options with a cancellation token.
    pub fn cancel_on(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
    /// Options with a deadline for the whole run.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
    /// Options without journaling.
    pub fn without_journal(mut self) -> Self {
        self.no_journal = true;
        self
    }
}

pub use super::stop::CancelToken;
use super::stop::{StopSignals, stopped};

/// The value of a read step with its judgement.
#[derive(Debug, Clone)]
pub struct Checked<T> {
    /// What the caller gets back.
    pub value: T,
    /// The outcome to record.
    pub outcome: Outcome,
    /// One line for the report.
    pub summary: String,
}

impl<T> Checked<T> {
    /// A passing check.
    pub fn pass(value: T, summary: impl Into<String>) -> Self {
        Checked {
            value,
            outcome: Outcome::Pass,
            summary: summary.into(),
        }
    }
    /// A check with an explicit outcome.
    pub fn with(value: T, outcome: Outcome, summary: impl Into<String>) -> Self {
        Checked {
            value,
            outcome,
            summary: summary.into(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Steps with the sequence number of their start, so the report lists them in start order.
    checks: Vec<((u64, u64), Check)>,
    next_seq: u64,
    findings: Vec<Finding>,
    escalations: Vec<Escalation>,
    undo: Vec<Undo>,
    /// The undo running now.
    undoing: Option<String>,
    /// Set by [`Run::fail`]: the run failed, though its body finished with a payload.
    failure: Option<Error>,
    in_flight: BTreeSet<String>,
    /// How many times each change step name (and scope) was seen: a step's identity.
    occurrences: std::collections::HashMap<String, u32>,
    /// Undos found already done in the log of a resumed run, per name, as they were met.
    undone_replayed: std::collections::HashMap<String, u32>,
}

struct Inner {
    runbook: String,
    environment: String,
    run_id: String,
    started_at: chrono::DateTime<Utc>,
    started: Instant,
    dry_run: bool,
    undo_timeout: Duration,
    state: Mutex<State>,
    /// Where the steps are made durable (None: dry-run, no journal, a nested run).
    log: Option<RunLog>,
    /// The log of the run being resumed.
    replay: Option<Arc<Replay>>,
}

/// A run in progress. Cheap to clone; clones record into the same run.
#[derive(Clone)]
pub struct Run {
    inner: Arc<Inner>,
    /// Steps recorded through this clone are listed in the report under this group, in
    /// start order within it (see [`Run::group`]).
    group: u64,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("runbook", &self.inner.runbook)
            .field("run_id", &self.inner.run_id)
            .field("dry_run", &self.inner.dry_run)
            .finish()
    }
}

pub use crate::ids::new_run_id;

impl Run {
    /// Start recording a run.
    pub fn new(runbook: &str, environment: &str, dry_run: bool) -> Run {
        Self::durable(runbook, environment, dry_run, new_run_id(), None, None)
    }

    /// A run whose change steps go to `log`; with `replay`, the resumed run of that log (its
    /// start time; `run_id` is then the log's).
    pub fn durable(
        runbook: &str,
        environment: &str,
        dry_run: bool,
        run_id: String,
        log: Option<RunLog>,
        replay: Option<Arc<Replay>>,
    ) -> Run {
        let started_at = replay
            .as_ref()
            .and_then(|r| r.started_at)
            .unwrap_or_else(Utc::now);
        Run {
            inner: Arc::new(Inner {
                runbook: runbook.to_string(),
                environment: environment.to_string(),
                run_id,
                started_at,
                started: Instant::now(),
                dry_run,
                undo_timeout: Duration::from_secs(120),
                state: Mutex::new(State::default()),
                log,
                replay,
            }),
            group: 0,
        }
    }

    /// A clone whose steps are listed together in the report, after those of lower groups:
    /// parts of a runbook that run concurrently (one per dataset) report in a stable order.
    pub fn group(&self, group: u64) -> Run {
        Run {
            inner: self.inner.clone(),
            group,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self, name: &str) -> u64 {
        let mut st = self.state();
        st.in_flight.insert(name.to_string());
        st.next_seq += 1;
        st.next_seq
    }

    fn push(&self, seq: Option<u64>, check: Check) {
        // One event per step (already redacted): `-v` in the command, `logging` in Python.
        let outcome = check.outcome.as_str();
        match check.action {
            Action::Read => tracing::debug!(
                runbook = %self.inner.runbook,
                step = %check.name,
                outcome,
                duration_ms = check.duration_ms,
                "{}",
                check.summary
            ),
            _ => tracing::info!(
                runbook = %self.inner.runbook,
                step = %check.name,
                outcome,
                duration_ms = check.duration_ms,
                "{}",
                check.summary
            ),
        }
        let mut st = self.state();
        let seq = match seq {
            Some(s) => s,
            None => {
                st.next_seq += 1;
                st.next_seq
            }
        };
        st.in_flight.remove(&check.name);
        st.checks.push(((self.group, seq), check));
    }

    /// Whether changes are only planned.
    pub fn is_dry_run(&self) -> bool {
        self.inner.dry_run
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// Run a read step. `timeout` bounds it (None: unbounded, for steps bounded inside).
    /// An error or a timeout is recorded as outcome `error` and returned.
    pub async fn check<T, Fut>(&self, name: &str, timeout: Option<Duration>, fut: Fut) -> Result<T>
    where
        Fut: Future<Output = Result<Checked<T>>>,
    {
        let seq = self.begin(name);
        let start = Instant::now();
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{name} did not finish within {}",
                        crate::config::format_duration(t)
                    ),
                )),
            },
            None => fut.await,
        };
        let ms = start.elapsed().as_millis() as u64;
        match result {
            Ok(c) => {
                self.push(
                    Some(seq),
                    Check {
                        name: name.to_string(),
                        action: Action::Read,
                        outcome: c.outcome,
                        summary: redact(&c.summary),
                        duration_ms: ms,
                        error: None,
                    },
                );
                Ok(c.value)
            }
            Err(e) => {
                self.push(
                    Some(seq),
                    Check {
                        name: name.to_string(),
                        action: Action::Read,
                        outcome: Outcome::Error,
                        summary: redact(&e.to_string()),
                        duration_ms: ms,
                        error: Some(redacted_info(&e)),
                    },
                );
                Err(e)
            }
        }
    }

    /// Run a change step. Under dry-run it is recorded as `planned` with `plan` as its summary
    /// and `Ok(None)` is returned without running `fut`. Otherwise `fut` runs; on success its
    /// `undo` (if any) stays registered and `Ok(Some(value))` is returned. The undo is
    /// registered *before* `fut` runs, so it also runs when the run is stopped while the change
    /// is in flight (a flag written, then SIGTERM): an undo must be safe when the change did
    /// not happen. A change that fails by itself withdraws its [`UndoWhen::OnFailure`] undo.
    ///
    /// The step is durable (see [`durable`]): its start and its value are in the run log
    /// before the next step, and a resumed run replays it instead of running it again. It is
    /// neither idempotent nor able to check itself: use [`Run::apply`] to say more.
    pub async fn change<T, Fut>(
        &self,
        name: &str,
        plan: impl Into<String>,
        fut: Fut,
        undo: Option<Undo>,
    ) -> Result<Option<T>>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        Fut: Future<Output = Result<T>>,
    {
        self.apply(Change::new(name, plan).undo(undo), fut).await
    }

    /// Record a step that was not run, with the reason.
    pub fn skip(&self, name: &str, action: Action, reason: impl Into<String>) {
        self.push(
            None,
            Check {
                name: name.to_string(),
                action,
                outcome: Outcome::Skipped,
                summary: redact(&reason.into()),
                duration_ms: 0,
                error: None,
            },
        );
    }

    /// Record a step that ran elsewhere (a nested runbook), with its outcome.
    pub fn record(&self, name: &str, action: Action, outcome: Outcome, summary: impl Into<String>) {
        self.push(
            None,
            Check {
                name: name.to_string(),
                action,
                outcome,
                summary: redact(&summary.into()),
                duration_ms: 0,
                error: None,
            },
        );
    }

    /// Record a finding.
    pub fn finding(
        &self,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.state().findings.push(Finding {
            severity,
            subject: redact(&subject.into()),
            message: redact(&message.into()),
        });
    }

    /// Record a met escalation criterion.
    pub fn escalate(
        &self,
        criterion: &str,
        subject: impl Into<String>,
        observed: impl Into<String>,
        threshold: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.state().escalations.push(Escalation {
            criterion: criterion.to_string(),
            subject: redact(&subject.into()),
            observed: redact(&observed.into()),
            threshold: redact(&threshold.into()),
            message: redact(&message.into()),
        });
    }

    /// Fail the run with `e` while the body goes on to return its payload (the handover's
    /// Markdown stays in the report when the post the user asked for failed). The first
    /// failure is kept.
    pub fn fail(&self, e: Error) {
        let mut st = self.state();
        if st.failure.is_none() {
            st.failure = Some(e);
        }
    }

    /// Number of escalations so far.
    pub fn escalation_count(&self) -> usize {
        self.state().escalations.len()
    }

    /// Run the registered undos (newest first) and build the report.
    pub async fn finish(self, payload: serde_json::Value, error: Option<Error>) -> Report {
        // (`execute` does the same with signal handling in between.)
        let failed = error.is_some();
        self.run_undos(failed).await;
        self.report(payload, error)
    }

    fn report(&self, payload: serde_json::Value, error: Option<Error>) -> Report {
        let failed = error.is_some();
        let mut st = self.state();
        if failed && !st.in_flight.is_empty() {
            let names: Vec<String> = st.in_flight.iter().cloned().collect();
            st.findings.push(Finding {
                severity: Severity::Warning,
                subject: "run".into(),
                message: format!("stopped while running: {}", names.join(", ")),
            });
        }
        let verdict = if failed {
            Verdict::Failed
        } else if st.escalations.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Escalate
        };
        Report {
            runbook: self.inner.runbook.clone(),
            environment: self.inner.environment.clone(),
            run_id: self.inner.run_id.clone(),
            started_at: self.inner.started_at,
            duration_ms: self.inner.started.elapsed().as_millis() as u64,
            dry_run: self.inner.dry_run,
            verdict,
            error: error.as_ref().map(redacted_info),
            checks: {
                let mut c = std::mem::take(&mut st.checks);
                c.sort_by_key(|(seq, _)| *seq);
                c.into_iter().map(|(_, c)| c).collect()
            },
            findings: std::mem::take(&mut st.findings),
            escalations: std::mem::take(&mut st.escalations),
            payload,
            tool_version: None,
            config_hash: None,
        }
    }
}

fn redacted_info(e: &Error) -> ErrorInfo {
    let mut i = ErrorInfo::from(e);
    i.message = redact(&i.message);
    i.detail = i.detail.map(|d| redact(&d));
    for v in i.context.values_mut() {
        *v = redact(v);
    }
    i
}
