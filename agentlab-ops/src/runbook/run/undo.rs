//! Undos: what a change leaves to put back, and how the run plays them back in reverse.

use super::*;

use std::future::Future;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::error::{Error, ErrorKind, Result};
use crate::report::{Action, Check, Finding, Outcome, Severity};
use crate::secret::redact;

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
    pub(super) name: String,
    pub(super) when: UndoWhen,
    pub(super) f: UndoFn,
    /// The change step it belongs to, while that step runs (see [`Run::change`]).
    pub(super) step: Option<u64>,
    /// How long it may take (default: the run's, 2 minutes).
    pub(super) timeout: Option<Duration>,
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
            timeout: None,
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
            timeout: None,
        }
    }
}

impl Undo {
    /// Let it take up to `d` (putting an instance back on its old type takes a stop and a
    /// start: minutes, not the default 2).
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
}

impl Run {
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

    /// End a scope early: take the newest undo named `name` off the stack and run it now
    /// (the maintenance flag of one host is removed when that host is done, not at the end of
    /// the run). Whether it ran and succeeded; false when there is none (dry-run).
    pub async fn settle(&self, name: &str) -> bool {
        let u = {
            let mut st = self.state();
            let Some(i) = st.undo.iter().rposition(|u| u.name == name) else {
                return false;
            };
            let u = st.undo.remove(i);
            st.undoing = Some(u.name.clone());
            u
        };
        let ok = self.run_undo_at(u, false).await;
        self.state().undoing = None;
        ok
    }

    /// Commit a scope: drop the newest undo named `name` without running it (a host whose
    /// maintenance succeeded keeps its upgraded packages even if a later host fails). Whether
    /// there was one.
    pub fn forget(&self, name: &str) -> bool {
        let mut st = self.state();
        match st.undo.iter().rposition(|u| u.name == name) {
            Some(i) => {
                st.undo.remove(i);
                true
            }
            None => false,
        }
    }

    pub(super) async fn run_undos(&self, failed: bool) -> bool {
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
    pub(super) fn abandon_undos(&self, failed: bool, why: &str) {
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

    pub(super) async fn run_undo(&self, u: Undo) -> bool {
        self.run_undo_at(u, true).await
    }

    /// Run an undo and record it: with the other undos at the end of the report, or where the
    /// run is now (a scope settled early).
    async fn run_undo_at(&self, u: Undo, at_end: bool) -> bool {
        let run = if at_end {
            self.group(u64::MAX)
        } else {
            self.clone()
        };
        if self.undone_before(&u.name) {
            let summary = "undone before the resume".to_string();
            let check = Check {
                name: u.name.clone(),
                action: Action::Undo,
                outcome: Outcome::Pass,
                summary,
                duration_ms: 0,
                error: None,
            };
            run.push(None, check);
            return true;
        }
        let start = Instant::now();
        let r = match tokio::time::timeout(u.timeout.unwrap_or(self.inner.undo_timeout), (u.f)())
            .await
        {
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
        // Undo steps are listed last, after every group (unless settled in place).
        self.log(&super::log::RunRecord::Undone {
            name: u.name.clone(),
            ok: r.is_ok(),
        });
        run.push(
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
}
