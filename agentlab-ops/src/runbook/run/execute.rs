//! Driving a runbook body: the stop listener, the undo stack on failure, the journal.

use super::*;

use std::future::Future;

use crate::error::{Error, ErrorKind, Result};
use crate::report::{Report, Severity};

/// Run a runbook body through a recorder: stop it on failure, cancellation or a stop signal,
/// run the undos, and return the report (journaling is the caller's: see
/// [`crate::Environment::execute`]).
pub async fn execute<F, Fut>(runbook: &str, environment: &str, opts: &RunOptions, body: F) -> Report
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = Result<serde_json::Value>>,
{
    execute_run(Run::new(runbook, environment, opts.dry_run), opts, body).await
}

/// [`execute`] with a run made by the caller (durable, or resumed).
async fn execute_run<F, Fut>(run: Run, opts: &RunOptions, body: F) -> Report
where
    F: FnOnce(Run) -> Fut,
    Fut: Future<Output = Result<serde_json::Value>>,
{
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
    // A failing run that was resumed ends failed whatever its replay did: it came back to
    // finish its undos.
    let unwinding = run
        .inner
        .replay
        .as_ref()
        .is_some_and(|r| r.failing.is_some());
    let error = match error {
        None if unwinding => Some(run.unwinding()),
        e => e,
    };
    if let Some(e) = &error {
        run.log(&RunRecord::Failing {
            error: redacted_info(e),
        });
    }
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
        let (run_id, log, problem) = self.open_run_log(runbook, opts);
        let replay = opts.resume.clone();
        let run = Run::durable(runbook, self.name(), opts.dry_run, run_id, log, replay);
        if let Some(rp) = &opts.resume {
            self.note_resume(&run, rp);
        }
        let (mut report, problem) = match (opts.resume.is_some(), problem) {
            // A resume without its log would repeat what it is meant to skip: it stops here.
            (true, Some(e)) => {
                let stop = |_| async move { Err(e) };
                (execute_run(run.clone(), opts, stop).await, None)
            }
            (_, p) => (execute_run(run.clone(), opts, body).await, p),
        };
        report.tool_version = Some(env!("CARGO_PKG_VERSION").to_string());
        report.config_hash = Some(self.config_hash());
        let warn = |report: &mut Report, subject: &str, message: String| {
            report.findings.push(crate::report::Finding {
                severity: Severity::Warning,
                subject: subject.into(),
                message: crate::secret::redact(&message),
            })
        };
        if let Some(e) = problem {
            let msg = format!("not kept (this run cannot be resumed): {e}");
            warn(&mut report, "run log", msg);
        }
        if let (Some(j), false) = (&self.journal, opts.no_journal) {
            if let Err(e) = j.append(&report) {
                warn(&mut report, "journal", format!("not journaled: {e}"));
            }
        }
        let verdict = format!("{:?}", report.verdict).to_lowercase();
        run.log(&RunRecord::End { verdict });
        report
    }

    /// Say in the report that this run is a resumed one, and whether the config changed.
    fn note_resume(&self, run: &Run, rp: &Replay) {
        let in_flight: Vec<&str> = rp.in_flight().iter().map(|(n, _)| *n).collect();
        let what = if rp.failing.is_some() {
            "it was failing: only its undos are left"
        } else {
            "the steps it finished are not run again"
        };
        let msg = format!(
            "attempt {} of this run: {} step(s) finished before, in flight: {}; {what}",
            rp.attempts + 1,
            rp.done_count(),
            if in_flight.is_empty() {
                "none".to_string()
            } else {
                in_flight.join(", ")
            },
        );
        run.finding(Severity::Info, "resume", msg);
        if rp.config_hash != self.config_hash() {
            let msg = format!(
                "the configuration changed since the run started ({} → {})",
                rp.config_hash,
                self.config_hash()
            );
            run.finding(Severity::Warning, "config", msg);
        }
    }

    /// The run id and the run log of a run about to start (or be resumed): none for a
    /// dry-run, a nested run or without a journal. An error is the run's warning, not its end.
    fn open_run_log(
        &self,
        runbook: &str,
        opts: &RunOptions,
    ) -> (String, Option<RunLog>, Option<Error>) {
        let run_id = match &opts.resume {
            Some(r) => r.run_id.clone(),
            None => opts.run_id.clone().unwrap_or_else(new_run_id),
        };
        let journal = match (&self.journal, opts.no_journal || opts.dry_run) {
            (Some(j), false) => j,
            _ => return (run_id, None, None),
        };
        let path = RunLog::path_of(journal.path(), &run_id);
        let first = match &opts.resume {
            Some(r) => RunRecord::Resume {
                attempt: r.attempts + 1,
                at: Utc::now(),
            },
            None => RunRecord::Start {
                run_id: run_id.clone(),
                runbook: runbook.to_string(),
                environment: self.name().to_string(),
                options: opts.invocation.clone(),
                config_hash: self.config_hash(),
                at: Utc::now(),
            },
        };
        match RunLog::open(path).and_then(|l| l.write(&first).map(|()| l)) {
            Ok(l) => (run_id, Some(l), None),
            Err(e) => (run_id, None, Some(e)),
        }
    }
}
