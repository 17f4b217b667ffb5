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
use futures::future::BoxFuture;

use crate::error::{Error, ErrorInfo, ErrorKind, Result};
use crate::report::{Action, Check, Escalation, Finding, Outcome, Report, Severity, Verdict};
use crate::secret::redact;

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

/// When an undo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoWhen {
    /// Only when the run fails or is cancelled (roll back a change).
    OnFailure,
    /// Always at the end (clear a flag that was set for the duration of the run).
    Always,
}

type UndoFn = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// An undo registered with a change.
pub struct Undo {
    name: String,
    when: UndoWhen,
    f: UndoFn,
    /// The change step it belongs to, while that step runs (see [`Run::change`]).
    step: Option<u64>,
}

impl std::fmt::Debug for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Undo")
            .field("name", &self.name)
            .field("when", &self.when)
            .finish()
    }
}

impl Undo {
    /// An undo that runs only when the run fails.
    pub fn on_failure<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Undo {
            name: name.into(),
            when: UndoWhen::OnFailure,
            f: Box::new(move || Box::pin(f())),
            step: None,
        }
    }
    /// An undo that always runs at the end.
    pub fn always<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        Undo {
            name: name.into(),
            when: UndoWhen::Always,
            f: Box::new(move || Box::pin(f())),
            step: None,
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
        Run {
            inner: Arc::new(Inner {
                runbook: runbook.to_string(),
                environment: environment.to_string(),
                run_id: new_run_id(),
                started_at: Utc::now(),
                started: Instant::now(),
                dry_run,
                undo_timeout: Duration::from_secs(120),
                state: Mutex::new(State::default()),
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
    pub async fn change<T, Fut>(
        &self,
        name: &str,
        plan: impl Into<String>,
        fut: Fut,
        undo: Option<Undo>,
    ) -> Result<Option<T>>
    where
        Fut: Future<Output = Result<T>>,
    {
        let plan = plan.into();
        if self.inner.dry_run {
            self.push(
                None,
                Check {
                    name: name.to_string(),
                    action: Action::Change,
                    outcome: Outcome::Planned,
                    summary: redact(&plan),
                    duration_ms: 0,
                    error: None,
                },
            );
            return Ok(None);
        }
        let seq = self.begin(name);
        // The undo is registered before the change runs: a run stopped while the change is in
        // flight (Ctrl-C, SIGTERM, a deadline) does not know how much of it happened, so it
        // runs the undo. A change that fails by itself withdraws an `OnFailure` undo (it
        // reports its own error); an `Always` undo stays.
        if let Some(mut u) = undo {
            u.step = Some(seq);
            self.state().undo.push(u);
        }
        let start = Instant::now();
        let result = fut.await;
        let ms = start.elapsed().as_millis() as u64;
        match result {
            Ok(v) => {
                self.push(
                    Some(seq),
                    Check {
                        name: name.to_string(),
                        action: Action::Change,
                        outcome: Outcome::Pass,
                        summary: redact(&plan),
                        duration_ms: ms,
                        error: None,
                    },
                );
                Ok(Some(v))
            }
            Err(e) => {
                self.push(
                    Some(seq),
                    Check {
                        name: name.to_string(),
                        action: Action::Change,
                        outcome: Outcome::Error,
                        summary: redact(&format!("{plan}: {e}")),
                        duration_ms: ms,
                        error: Some(redacted_info(&e)),
                    },
                );
                self.state()
                    .undo
                    .retain(|u| u.step != Some(seq) || u.when == UndoWhen::Always);
                Err(e)
            }
        }
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

    /// Register an undo without a change step: for a change whose effect may exist even when
    /// it failed (a deployment workflow that failed half-way must still be rolled back).
    pub fn push_undo(&self, undo: Undo) {
        if !self.inner.dry_run {
            self.state().undo.push(undo);
        }
    }

    /// Undo everything changed so far, now (newest first), as on a failure, and go on: the
    /// runbook decided to back out (a failed analysis) and reports why itself. Whether every
    /// undo succeeded.
    pub async fn unwind(&self) -> bool {
        self.run_undos(true).await
    }

    async fn run_undos(&self, failed: bool) -> bool {
        let mut all_ok = true;
        loop {
            // One at a time from the stack, so what is left is always known (`pending_undos`).
            let u = {
                let mut st = self.state();
                let Some(u) = st.undo.pop() else { break };
                if u.when == UndoWhen::OnFailure && !failed {
                    continue;
                }
                st.undoing = Some(u.name.clone());
                u
            };
            all_ok &= self.run_undo(u).await;
            self.state().undoing = None;
        }
        all_ok
    }

    /// The undos not finished yet, the running one first.
    pub fn pending_undos(&self, failed: bool) -> Vec<String> {
        let st = self.state();
        let rest = st
            .undo
            .iter()
            .rev()
            .filter(|u| failed || u.when == UndoWhen::Always);
        st.undoing
            .iter()
            .cloned()
            .chain(rest.map(|u| u.name.clone()))
            .collect()
    }

    /// Give up on the undos left: each becomes a critical finding to fix by hand.
    fn abandon_undos(&self, failed: bool, why: &str) {
        let left = self.pending_undos(failed);
        let mut st = self.state();
        st.undo.clear();
        st.undoing = None;
        for name in left {
            st.findings.push(Finding {
                severity: Severity::Critical,
                subject: name,
                message: format!("not undone ({why}): fix by hand"),
            });
        }
    }

    async fn run_undo(&self, u: Undo) -> bool {
        let start = Instant::now();
        let r = match tokio::time::timeout(self.inner.undo_timeout, (u.f)()).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                "undo did not finish in time",
            )),
        };
        let ms = start.elapsed().as_millis() as u64;
        let (outcome, summary, error) = match &r {
            Ok(()) => (Outcome::Pass, "undone".to_string(), None),
            Err(e) => (
                Outcome::Error,
                redact(&e.to_string()),
                Some(redacted_info(e)),
            ),
        };
        // Undo steps are listed last, after every group.
        self.group(u64::MAX).push(
            None,
            Check {
                name: u.name.clone(),
                action: Action::Undo,
                outcome,
                summary,
                duration_ms: ms,
                error,
            },
        );
        if let Err(e) = r {
            self.state().findings.push(Finding {
                severity: Severity::Critical,
                subject: u.name.clone(),
                message: redact(&format!("undo failed, fix by hand: {e}")),
            });
            return false;
        }
        true
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

/// Run a runbook body through a recorder: stop it on failure, cancellation or a stop signal,
/// run the undos, and return the report (journaling is the caller's: see
/// [`crate::Environment::execute`]).
pub async fn execute<F, Fut>(runbook: &str, environment: &str, opts: &RunOptions, body: F) -> Report
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = Result<serde_json::Value>>,
{
    let run = Run::new(runbook, environment, opts.dry_run);
    // One listener for the whole run, so each signal is seen exactly once: the first stops the
    // body (and cancels the caller's token, which a script's instruction hook reads), later
    // ones reach the undo loop.
    let mut signals = opts
        .handle_signals
        .then(|| listen(opts.cancel.clone()))
        .flatten();
    let fut = body(run.clone());
    let deadline = async {
        match opts.deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => futures::future::pending().await,
        }
    };
    // `biased`, stop first: a body that ends because the token was cancelled still reports
    // the signal that cancelled it (and consumes it).
    let outcome = tokio::select! {
        biased;
        why = stopped(opts.cancel.as_ref(), signals.as_mut().map(|s| &mut s.rx)) => {
            Err(Error::new(ErrorKind::Cancelled, format!("run {why}")))
        }
        _ = deadline => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "run did not finish within its deadline of {}",
                crate::config::format_duration(opts.deadline.unwrap_or_default())
            ),
        )),
        r = fut => r,
    };
    let failure = run.state().failure.take();
    let (payload, error) = match outcome {
        Ok(payload) => (payload, failure),
        Err(e) => (serde_json::Value::Null, Some(e)),
    };
    let failed = error.is_some();
    match &mut signals {
        Some(sig) => undo_under_signals(&run, failed, &mut sig.rx).await,
        None => {
            run.run_undos(failed).await;
        }
    }
    if let Some(sig) = signals {
        sig.task.abort();
    }
    run.report(payload, error)
}

/// The stop signals of a run, as they arrive.
struct Listener {
    rx: tokio::sync::mpsc::UnboundedReceiver<&'static str>,
    task: tokio::task::JoinHandle<()>,
}

fn listen(cancel: Option<CancelToken>) -> Option<Listener> {
    let mut sig = StopSignals::new()?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let name = sig.recv().await;
            // Sent before the token is cancelled: whoever sees the token cancelled finds the
            // signal already in the channel, so it is never counted twice.
            if tx.send(name).is_err() {
                return;
            }
            if let Some(c) = &cancel {
                c.cancel();
            }
        }
    });
    Some(Listener { rx, task })
}

/// Run the undos while stop signals keep arriving: the second one says what is left and lets
/// the undos finish; the third abandons them, each named in the report as not undone.
async fn undo_under_signals(
    run: &Run,
    failed: bool,
    sig: &mut tokio::sync::mpsc::UnboundedReceiver<&'static str>,
) {
    let undos = run.run_undos(failed);
    tokio::pin!(undos);
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = &mut undos => return,
            Some(name) = sig.recv() => {
                seen += 1;
                let left = run.pending_undos(failed).join(", ");
                if seen == 1 {
                    tracing::warn!(signal = name, left = %left, "signal while undoing; undos continue");
                    eprintln!(
                        "agentlab-ops: {name} while undoing; still to undo: {left}. The undos go on (each bounded); {name} again abandons them."
                    );
                } else {
                    eprintln!("agentlab-ops: {name} again: abandoning the undos left: {left}");
                    run.abandon_undos(failed, &format!("abandoned on a repeated {name}"));
                    return;
                }
            }
        }
    }
}

impl crate::environment::Environment {
    /// Run a runbook body through the step recorder and append the report to the journal.
    pub async fn execute<F, Fut>(&self, runbook: &str, opts: &RunOptions, body: F) -> Report
    where
        F: FnOnce(Run) -> Fut,
        Fut: Future<Output = Result<serde_json::Value>>,
    {
        let mut report = execute(runbook, self.name(), opts, body).await;
        if let (Some(j), false) = (&self.journal, opts.no_journal) {
            if let Err(e) = j.append(&report) {
                report.findings.push(crate::report::Finding {
                    severity: Severity::Warning,
                    subject: "journal".into(),
                    message: crate::secret::redact(&format!("not journaled: {e}")),
                });
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[tokio::test]
    async fn dry_run_plans_changes_without_running_them() {
        let ran = Arc::new(AtomicU32::new(0));
        let r2 = ran.clone();
        let report = execute(
            "t",
            "env",
            &RunOptions::default().dry_run(true),
            |run| async move {
                let v = run
                    .change(
                        "restart",
                        "restart agent-lab on web-1",
                        async move {
                            r2.fetch_add(1, Ordering::SeqCst);
                            Ok(1)
                        },
                        None,
                    )
                    .await?;
                assert!(v.is_none());
                Ok(serde_json::Value::Null)
            },
        )
        .await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(report.checks[0].outcome, Outcome::Planned);
        assert_eq!(report.verdict, Verdict::Healthy);
        assert!(report.dry_run);
    }

    #[tokio::test]
    async fn failure_runs_undos_in_reverse_and_always_undos_on_success() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let report = execute("t", "env", &RunOptions::default(), |run| async move {
            for name in ["a", "b"] {
                let l = l.clone();
                run.change(
                    name,
                    format!("do {name}"),
                    async { Ok(()) },
                    Some(Undo::on_failure(
                        format!("undo {name}"),
                        move || async move {
                            l.lock().unwrap().push(name);
                            Ok(())
                        },
                    )),
                )
                .await?;
            }
            Err::<serde_json::Value, _>(Error::new(ErrorKind::Unexpected, "boom"))
        })
        .await;
        assert_eq!(*log.lock().unwrap(), vec!["b", "a"]);
        assert_eq!(report.verdict, Verdict::Failed);
        let undos: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.action == Action::Undo)
            .collect();
        assert_eq!(undos.len(), 2);

        // On success: on_failure undos do not run, always undos do.
        let log2 = Arc::new(Mutex::new(Vec::new()));
        let (l1, l2) = (log2.clone(), log2.clone());
        let report = execute("t", "env", &RunOptions::default(), |run| async move {
            run.change(
                "flag",
                "set flag",
                async { Ok(()) },
                Some(Undo::always("clear flag", move || async move {
                    l1.lock().unwrap().push("clear");
                    Ok(())
                })),
            )
            .await?;
            run.change(
                "x",
                "x",
                async { Ok(()) },
                Some(Undo::on_failure("undo x", move || async move {
                    l2.lock().unwrap().push("x");
                    Ok(())
                })),
            )
            .await?;
            Ok(serde_json::Value::Null)
        })
        .await;
        assert_eq!(*log2.lock().unwrap(), vec!["clear"]);
        assert_eq!(report.verdict, Verdict::Healthy);
    }

    #[tokio::test]
    async fn cancellation_stops_the_body_and_undoes() {
        let token = CancelToken::new();
        let undone = Arc::new(AtomicBool::new(false));
        let u = undone.clone();
        let t2 = token.clone();
        let report = execute(
            "t",
            "env",
            &RunOptions::default().cancel_on(token),
            |run| async move {
                run.change(
                    "flag",
                    "set",
                    async { Ok(()) },
                    Some(Undo::always("clear", move || async move {
                        u.store(true, Ordering::SeqCst);
                        Ok(())
                    })),
                )
                .await?;
                t2.cancel();
                run.check("slow", None, async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Checked::pass((), "done"))
                })
                .await?;
                Ok(serde_json::Value::Null)
            },
        )
        .await;
        assert!(undone.load(Ordering::SeqCst));
        assert_eq!(report.verdict, Verdict::Failed);
        assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::Cancelled);
        assert!(report.findings.iter().any(|f| f.message.contains("slow")));
    }

    #[tokio::test]
    async fn check_timeout_is_an_error_outcome() {
        let run = Run::new("t", "e", false);
        let r: Result<()> = run
            .check("hang", Some(Duration::from_millis(20)), async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(Checked::pass((), ""))
            })
            .await;
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
        let rep = run.finish(serde_json::Value::Null, None).await;
        assert_eq!(rep.checks[0].outcome, Outcome::Error);
        assert!(rep.checks[0].summary.contains("20ms"));
    }
}
