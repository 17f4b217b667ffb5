//! Durable change steps: each has a stable identity (the run id, its name — which names its
//! host — and which occurrence of that name it is), and its outcome is on disk before the next
//! step starts. A resumed run ([`super::RunOptions::resume`]) re-enters the runbook with the
//! same run id and, step by step:
//!
//! - a step that finished is not run again: its value (or error) comes from the log and its
//!   undo is registered again, as if it had just run;
//! - a step that was in flight is checked when it can check itself ([`Change::verify`]: was
//!   the change applied?), run again when it is idempotent, and otherwise left to the operator
//!   (`resume --done STEP` or `--redo STEP`: the resume refuses to guess);
//! - a step the run never reached runs as usual;
//! - a run that was failing (its undos had started) is unwound: its finished steps register
//!   their undos, the first step it never finished stops the body, and only the undos that
//!   had not run yet run.
//!
//! Scopes ([`Run::scope`]) keep a whole part of a runbook (one host's maintenance) with its
//! value: a resumed run skips a finished host altogether.

use std::future::Future;
use std::time::Instant;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::log::{DoneRecord, Replay, RunRecord};
use super::*;

use crate::error::{Error, ErrorInfo, ErrorKind, Result};
use crate::report::{Action, Check, Outcome};
use crate::secret::redact;

type VerifyFn<T> =
    Box<dyn FnOnce(Option<serde_json::Value>) -> BoxFuture<'static, Result<Option<T>>> + Send>;

/// A change step with what a resume needs to know about it (see [`Run::apply`]).
pub struct Change<T> {
    name: String,
    plan: String,
    undo: Option<Undo>,
    idempotent: bool,
    redo_on_resume: bool,
    witness: Option<serde_json::Value>,
    verify: Option<VerifyFn<T>>,
}

impl<T> std::fmt::Debug for Change<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("name", &self.name)
            .field("idempotent", &self.idempotent)
            .field("redo_on_resume", &self.redo_on_resume)
            .field("verify", &self.verify.is_some())
            .finish()
    }
}

impl<T> Change<T> {
    /// A change step named `name` (with its host: `restart:web-1`), planned as `plan`.
    pub fn new(name: impl Into<String>, plan: impl Into<String>) -> Self {
        Change {
            name: name.into(),
            plan: plan.into(),
            undo: None,
            idempotent: false,
            redo_on_resume: false,
            witness: None,
            verify: None,
        }
    }
    /// Its undo, registered before it acts (see [`Run::change`]).
    pub fn undo(mut self, u: Option<Undo>) -> Self {
        self.undo = u;
        self
    }
    /// Running it twice is harmless (`touch`, `pip install -r`): a resume runs it again when
    /// it was in flight.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    /// A guard the rest depends on (a flag whose lease may have fired while the runner was
    /// dead): a resume sets it again, though it finished, unless its undo already ran.
    /// Implies [`Change::idempotent`].
    pub fn redo_on_resume(mut self) -> Self {
        self.redo_on_resume = true;
        self.idempotent = true;
        self
    }
    /// How a resume checks whether the change happened when the run stopped while it was in
    /// flight: `witness` is what the step saw before acting (the main pid before a restart),
    /// kept in the log; `check` gets it back and answers `Some(value)` (it happened) or None
    /// (it did not: the step runs).
    pub fn verify<F, Fut>(mut self, witness: serde_json::Value, check: F) -> Self
    where
        F: FnOnce(Option<serde_json::Value>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>>> + Send + 'static,
    {
        self.witness = Some(witness);
        self.verify = Some(Box::new(move |w| Box::pin(check(w))));
        self
    }
}

/// How a step's value goes to the log and back (None: it lives only in the runner).
struct Codec<T> {
    enc: fn(&T) -> Option<serde_json::Value>,
    dec: fn(serde_json::Value) -> Option<T>,
}

fn serde_codec<T: Serialize + DeserializeOwned>() -> Codec<T> {
    Codec {
        enc: |v| serde_json::to_value(v).ok(),
        dec: |v| serde_json::from_value(v).ok(),
    }
}

/// The error of a step that failed before the stop, as the log kept it.
fn error_of(i: &ErrorInfo) -> Error {
    Error::new(i.kind, i.message.clone()).set_temporary(i.temporary)
}

impl Run {
    /// Run a change step whose value is kept in the run log (see [`Change`]): the durable
    /// form of [`Run::change`].
    pub async fn apply<T, Fut>(&self, c: Change<T>, fut: Fut) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<T>>,
    {
        self.apply_with(c, fut, serde_codec()).await
    }

    /// [`Run::change`] for a value that cannot or must not be kept (a running proxy, a new
    /// key, a secret): a resume cannot go on past it once it finished (it fails there, and
    /// the undos run).
    pub async fn change_live<T, Fut>(
        &self,
        name: &str,
        plan: impl Into<String>,
        fut: Fut,
        undo: Option<Undo>,
    ) -> Result<Option<T>>
    where
        Fut: Future<Output = Result<T>>,
    {
        let codec = Codec {
            enc: |_| None,
            dec: |_| None,
        };
        self.apply_with(Change::new(name, plan).undo(undo), fut, codec)
            .await
    }

    async fn apply_with<T, Fut>(
        &self,
        mut c: Change<T>,
        fut: Fut,
        codec: Codec<T>,
    ) -> Result<Option<T>>
    where
        Fut: Future<Output = Result<T>>,
    {
        if self.inner.dry_run {
            self.push(
                None,
                check_of(&c.name, Outcome::Planned, redact(&c.plan), 0, None),
            );
            return Ok(None);
        }
        let n = self.occurrence(&c.name);
        if let Some(rp) = self.inner.replay.clone() {
            if let Some(r) = self.replayed(&mut c, n, &rp, &codec).await {
                return r;
            }
        }
        self.run_fresh(c, n, fut, codec).await
    }

    /// The next occurrence number of `name` in this run.
    pub(super) fn occurrence(&self, name: &str) -> u32 {
        let mut st = self.state();
        let n = st.occurrences.entry(name.to_string()).or_default();
        *n += 1;
        *n - 1
    }

    /// What a resume does with a step: `Some(result)` when the log decides it, None when it
    /// runs.
    async fn replayed<T>(
        &self,
        c: &mut Change<T>,
        n: u32,
        rp: &Replay,
        codec: &Codec<T>,
    ) -> Option<Result<Option<T>>> {
        let key = (c.name.clone(), n);
        let Some(rec) = rp.steps.get(&key) else {
            return rp.failing.as_ref().map(|_| Err(self.unwinding()));
        };
        if let Some(d) = &rec.done {
            let guard_gone = c
                .undo
                .as_ref()
                .is_some_and(|u| rp.undone.contains_key(&u.name));
            if c.redo_on_resume && rp.failing.is_none() && !guard_gone {
                return None;
            }
            return Some(self.replay_done(c, d, codec));
        }
        if rp.failing.is_some() {
            self.register(c.undo.take());
            let why = "in flight when the run stopped; undone";
            self.push(
                None,
                check_of(&c.name, Outcome::Skipped, why.into(), 0, None),
            );
            return Some(Err(self.unwinding()));
        }
        if rp.assume_done.contains(&c.name) {
            let d = DoneRecord {
                outcome: Outcome::Pass,
                summary: "done (the operator said so on resume)".into(),
                value: Some(serde_json::Value::Null),
                error: None,
            };
            self.log(&RunRecord::Done {
                step: c.name.clone(),
                n,
                outcome: Outcome::Pass,
                summary: d.summary.clone(),
                value: None,
                error: None,
            });
            return Some(self.replay_done(c, &d, codec));
        }
        if rp.redo.contains(&c.name) {
            return None;
        }
        if let Some(verify) = c.verify.take() {
            return self
                .verify_in_flight(c, n, rec.witness.clone(), verify, codec)
                .await;
        }
        if c.idempotent {
            return None;
        }
        Some(Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{} was in flight when the run stopped and can neither be repeated safely nor check itself: see whether it happened, then resume with --done {0} or --redo {0}",
                c.name
            ),
        )
        .with_operation("resume")))
    }

    /// A step that finished before the stop: its undo registered again, its result replayed.
    fn replay_done<T>(
        &self,
        c: &mut Change<T>,
        d: &DoneRecord,
        codec: &Codec<T>,
    ) -> Result<Option<T>> {
        if let Some(u) = c.undo.take() {
            if d.error.is_none() || u.when == UndoWhen::Always {
                self.register(Some(u));
            }
        }
        let summary = format!("done before the resume: {}", d.summary);
        self.push(
            None,
            check_of(&c.name, d.outcome, summary, 0, d.error.clone()),
        );
        if let Some(e) = &d.error {
            return Err(error_of(e));
        }
        match d.value.clone().and_then(codec.dec) {
            Some(v) => Ok(Some(v)),
            None if d.value == Some(serde_json::Value::Null) => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{0} was declared done (--done), but the rest of the run needs what it returned, which was never logged: resume with --redo {0} instead",
                    c.name
                ),
            )
            .with_operation("resume")),
            None => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} finished before the stop, but what it made lives only in the runner that stopped: this run cannot go on past it",
                    c.name
                ),
            )
            .with_operation("resume")),
        }
    }

    /// An in-flight step that can check itself: applied (kept as done) or not (None: it runs).
    async fn verify_in_flight<T>(
        &self,
        c: &mut Change<T>,
        n: u32,
        witness: Option<serde_json::Value>,
        verify: VerifyFn<T>,
        codec: &Codec<T>,
    ) -> Option<Result<Option<T>>> {
        let start = Instant::now();
        match verify(witness).await {
            Ok(None) => None,
            Ok(Some(v)) => {
                let summary = format!("{}: applied before the stop (checked on resume)", c.plan);
                let ms = start.elapsed().as_millis() as u64;
                self.register(c.undo.take());
                self.log(&RunRecord::Done {
                    step: c.name.clone(),
                    n,
                    outcome: Outcome::Pass,
                    summary: redact(&summary),
                    value: (codec.enc)(&v),
                    error: None,
                });
                self.push(
                    None,
                    check_of(&c.name, Outcome::Pass, redact(&summary), ms, None),
                );
                Some(Ok(Some(v)))
            }
            Err(e) => {
                let summary = redact(&format!("could not check whether it happened: {e}"));
                let ms = start.elapsed().as_millis() as u64;
                let info = Some(super::redacted_info(&e));
                self.push(None, check_of(&c.name, Outcome::Error, summary, ms, info));
                Some(Err(e))
            }
        }
    }

    fn register(&self, u: Option<Undo>) {
        if let Some(mut u) = u {
            u.step = None;
            self.state().undo.push(u);
        }
    }

    /// What stops the body of a failing run being resumed: its undos are what is left.
    pub(super) fn unwinding(&self) -> Error {
        let why = self
            .inner
            .replay
            .as_ref()
            .and_then(|r| r.failing.as_ref())
            .map(|e| e.message.clone())
            .unwrap_or_default();
        Error::new(
            ErrorKind::Cancelled,
            format!("resumed to finish the undos of a failed run: {why}"),
        )
        .with_operation("resume")
    }

    /// Append to the run log; a record that cannot be written is a warning (the step ran).
    pub(super) fn log(&self, r: &RunRecord) -> bool {
        let Some(log) = &self.inner.log else {
            return true;
        };
        match log.write(r) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "run log not written");
                self.finding(
                    Severity::Warning,
                    "run log",
                    format!("not written (this run may not resume exactly): {e}"),
                );
                false
            }
        }
    }

    async fn run_fresh<T, Fut>(
        &self,
        c: Change<T>,
        n: u32,
        fut: Fut,
        codec: Codec<T>,
    ) -> Result<Option<T>>
    where
        Fut: Future<Output = Result<T>>,
    {
        let begin = RunRecord::Begin {
            step: c.name.clone(),
            n,
            idempotent: c.idempotent,
            // A step that could check itself still can (its check may have just run).
            verify: c.witness.is_some(),
            witness: c.witness.clone(),
        };
        if let Some(log) = &self.inner.log {
            // Nothing acts before the log says it may have.
            if let Err(e) = log.write(&begin) {
                let e = e.with_context("step", c.name.clone());
                let info = Some(super::redacted_info(&e));
                self.push(
                    None,
                    check_of(&c.name, Outcome::Error, redact(&e.to_string()), 0, info),
                );
                return Err(e);
            }
        }
        let seq = self.begin(&c.name);
        if let Some(mut u) = c.undo {
            u.step = Some(seq);
            self.state().undo.push(u);
        }
        let start = Instant::now();
        let result = fut.await;
        let ms = start.elapsed().as_millis() as u64;
        let (check, done) = match &result {
            Ok(v) => {
                let s = redact(&c.plan);
                let rec = done_of(&c.name, n, Outcome::Pass, &s, (codec.enc)(v), None);
                (check_of(&c.name, Outcome::Pass, s, ms, None), rec)
            }
            Err(e) => {
                let s = redact(&format!("{}: {e}", c.plan));
                let info = super::redacted_info(e);
                let rec = done_of(&c.name, n, Outcome::Error, &s, None, Some(info.clone()));
                (check_of(&c.name, Outcome::Error, s, ms, Some(info)), rec)
            }
        };
        self.log(&done);
        self.push(Some(seq), check);
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                self.state()
                    .undo
                    .retain(|u| u.step != Some(seq) || u.when == UndoWhen::Always);
                Err(e)
            }
        }
    }

    /// Keep a whole part of the runbook (one host's maintenance) with its value: a resumed run
    /// that finished it before the stop gets the value back without running any of it. The
    /// part must leave no undo behind (settle or forget its own).
    pub async fn scope<T, Fut>(&self, name: String, fut: Fut) -> T
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = T>,
    {
        if self.inner.dry_run {
            return fut.await;
        }
        let key = format!("scope:{name}");
        let n = self.occurrence(&key);
        let kept = self.inner.replay.as_ref().and_then(|rp| {
            let d = rp.steps.get(&(key.clone(), n))?.done.as_ref()?;
            serde_json::from_value(d.value.clone()?).ok()
        });
        if let Some(v) = kept {
            let why = "done before the resume: not run again".to_string();
            self.push(None, check_of(&name, Outcome::Skipped, why, 0, None));
            return v;
        }
        let v = fut.await;
        self.log(&done_of(
            &key,
            n,
            Outcome::Pass,
            "",
            serde_json::to_value(&v).ok(),
            None,
        ));
        v
    }

    /// Whether step `name` (its first occurrence) finished before this run was resumed: a
    /// runbook skips the wait that followed it (the maintenance notice's lead time).
    pub fn done_before(&self, name: &str) -> bool {
        self.inner.replay.as_ref().is_some_and(|rp| {
            rp.steps
                .get(&(name.to_string(), 0))
                .is_some_and(|s| s.done.is_some())
        })
    }

    /// The id of the `name` run nested in this one (its n-th): the same on every attempt.
    pub fn child_id(&self, name: &str) -> String {
        let n = self.occurrence(&format!("run:{name}"));
        format!("{}.{name}.{n}", self.inner.run_id)
    }

    /// Whether this run is a resumed one.
    pub fn is_resumed(&self) -> bool {
        self.inner.replay.is_some()
    }

    /// Whether an undo named `name` succeeded before this run was resumed (the flag of a host
    /// already taken down: no new lease for it).
    pub fn undone_in_log(&self, name: &str) -> bool {
        self.inner
            .replay
            .as_ref()
            .is_some_and(|rp| rp.undone.contains_key(name))
    }

    /// An undo that already succeeded before the resume (counted per name): true when it is
    /// recorded as such instead of being run again.
    pub(super) fn undone_before(&self, name: &str) -> bool {
        let Some(rp) = &self.inner.replay else {
            return false;
        };
        let before = rp.undone.get(name).copied().unwrap_or(0);
        let mut st = self.state();
        let seen = st.undone_replayed.entry(name.to_string()).or_default();
        if *seen < before {
            *seen += 1;
            return true;
        }
        false
    }
}

fn check_of(
    name: &str,
    outcome: Outcome,
    summary: String,
    ms: u64,
    error: Option<ErrorInfo>,
) -> Check {
    Check {
        name: name.to_string(),
        action: Action::Change,
        outcome,
        summary,
        duration_ms: ms,
        error,
    }
}

fn done_of(
    name: &str,
    n: u32,
    outcome: Outcome,
    summary: &str,
    value: Option<serde_json::Value>,
    error: Option<ErrorInfo>,
) -> RunRecord {
    RunRecord::Done {
        step: name.to_string(),
        n,
        outcome,
        summary: summary.to_string(),
        value,
        error,
    }
}
