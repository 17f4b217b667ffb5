//! `resume`: take over a run that stopped half-way (its runner killed, its machine rebooted)
//! from its run log, and finish it — the steps already done are not done again (see
//! [`super::run::durable`]). `resume --last` takes the newest unfinished run of the
//! environment; `resume --list` shows them.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Report;
use crate::runbook::run::{Replay, RunLog, RunOptions};

/// What to resume, and the operator's word on in-flight steps.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ResumeRequest {
    /// The run id (None: the newest unfinished run of this environment).
    pub run_id: Option<String>,
    /// In-flight steps that did happen (`--done STEP`).
    pub done: Vec<String>,
    /// In-flight steps to run again (`--redo STEP`).
    pub redo: Vec<String>,
}

impl ResumeRequest {
    /// Resume `run_id`.
    pub fn run(run_id: impl Into<String>) -> Self {
        ResumeRequest {
            run_id: Some(run_id.into()),
            ..Default::default()
        }
    }
    /// Resume the newest unfinished run.
    pub fn last() -> Self {
        ResumeRequest::default()
    }
}

/// An unfinished run, as `resume --list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Unfinished {
    /// Run id.
    pub run_id: String,
    /// Runbook.
    pub runbook: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// Attempts so far.
    pub attempts: u32,
    /// Change steps finished.
    pub done: usize,
    /// Steps in flight when it stopped.
    pub in_flight: Vec<String>,
    /// Its undos had started.
    pub failing: bool,
    /// A live process still runs it (its log is locked): not to be resumed.
    pub running: bool,
    /// Its log.
    pub log: PathBuf,
}

fn runs_dir(env: &Environment) -> Result<PathBuf> {
    let j = env.journal.as_ref().ok_or_else(|| {
        Error::config(
            "resume needs the journal: the run logs live beside it ([journal] is disabled)",
        )
        .with_operation("resume")
    })?;
    Ok(RunLog::dir_of(j.path()))
}

/// The unfinished runs of this environment, newest first.
pub fn unfinished(env: &Environment) -> Result<Vec<Unfinished>> {
    let dir = runs_dir(env)?;
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::from(e)
                .with_operation("resume.list")
                .with_context("path", dir.display().to_string()));
        }
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        // A log that does not parse is not a run to resume; `resume ID` says why.
        let Ok(rp) = RunLog::read(&path) else {
            continue;
        };
        if rp.ended.is_some() || rp.environment != env.name() {
            continue;
        }
        out.push(Unfinished {
            in_flight: rp.in_flight().iter().map(|(n, _)| n.to_string()).collect(),
            run_id: rp.run_id.clone(),
            runbook: rp.runbook.clone(),
            started_at: rp.started_at,
            attempts: rp.attempts,
            done: rp.done_count(),
            failing: rp.failing.is_some(),
            running: RunLog::is_live(&path),
            log: path,
        });
    }
    // A run nested in an unfinished one (a script's runbook) is resumed with its parent.
    let ids: std::collections::HashSet<String> = out.iter().map(|u| u.run_id.clone()).collect();
    out.retain(|u| {
        u.run_id
            .split_once('.')
            .is_none_or(|(p, _)| !ids.contains(p))
    });
    out.sort_by_key(|u| std::cmp::Reverse(u.started_at));
    Ok(out)
}

/// Read the log of the run to resume and check that it can be resumed as asked.
pub fn prepare(env: &Environment, req: &ResumeRequest) -> Result<Replay> {
    let path = match &req.run_id {
        Some(id) => runs_dir(env)?.join(format!("{id}.jsonl")),
        None => unfinished(env)?
            .into_iter()
            .find(|u| !u.running)
            .map(|u| u.log)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no unfinished run of {} to resume", env.name()),
                )
                .with_operation("resume")
            })?,
    };
    let mut rp = RunLog::read(&path)?;
    let fail = |kind, msg: String| {
        Err(Error::new(kind, msg)
            .with_operation("resume")
            .with_context("run", rp.run_id.clone()))
    };
    if let Some(v) = &rp.ended {
        return fail(
            ErrorKind::Conflict,
            format!("run {} already ended ({v}): nothing to resume", rp.run_id),
        );
    }
    if RunLog::is_live(&path) {
        let msg = format!(
            "run {} is still going in another process: nothing to resume",
            rp.run_id
        );
        return fail(ErrorKind::Conflict, msg);
    }
    if rp.environment != env.name() {
        let msg = format!(
            "run {} is of environment {:?}, not {:?}",
            rp.run_id,
            rp.environment,
            env.name()
        );
        return fail(ErrorKind::Conflict, msg);
    }
    if rp.options.is_none() {
        let msg = format!(
            "run {} was started directly from Rust, without its options in the catalogue: it cannot be re-entered",
            rp.run_id
        );
        return fail(ErrorKind::Unsupported, msg);
    }
    let in_flight: Vec<String> = rp.in_flight().iter().map(|(n, _)| n.to_string()).collect();
    for s in req.done.iter().chain(&req.redo) {
        if !in_flight.contains(s) {
            let msg = format!(
                "{s} was not in flight when run {} stopped (in flight: {})",
                rp.run_id,
                list(&in_flight)
            );
            return fail(ErrorKind::ConfigInvalid, msg);
        }
    }
    rp.assume_done = req.done.iter().cloned().collect();
    rp.redo = req.redo.iter().cloned().collect();
    let undecided = rp.undecided();
    if !undecided.is_empty() {
        let msg = format!(
            "{} in flight when run {} stopped: neither safe to repeat nor able to check whether it happened. See whether it did, then resume with --done STEP (it did) or --redo STEP (it did not)",
            list(&undecided),
            rp.run_id
        );
        return fail(ErrorKind::Conflict, msg);
    }
    Ok(rp)
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Resume a run: re-enter its runbook with its options and the same run id, skip what it
/// finished, check or repeat what was in flight, finish (or finish undoing) the rest.
pub async fn resume(env: &Environment, req: &ResumeRequest, ro: RunOptions) -> Result<Report> {
    let rp = prepare(env, req)?;
    continue_run(env, rp, ro).await
}

/// [`resume`] of a log already read by [`prepare`] (a catalogue runbook's run; a Lua
/// script's run is resumed by `agentlab_ops_lua::resume_script`, which knows the script).
pub async fn continue_run(env: &Environment, rp: Replay, mut ro: RunOptions) -> Result<Report> {
    if is_script(&rp) {
        let msg = format!(
            "run {} is of the script {}: resume it with `agentlab-ops resume` or agentlab_ops_lua::resume_script",
            rp.run_id, rp.runbook
        );
        return Err(Error::new(ErrorKind::Unsupported, msg).with_operation("resume"));
    }
    let def = crate::runbook::registry::get(&rp.runbook)?;
    let options = rp.options.clone().unwrap_or_default();
    ro.invocation = Some(options.clone());
    ro.resume = Some(Arc::new(rp));
    ro.dry_run = false;
    def.run(env, options, ro).await
}

/// Whether the run is a script's (`lua:NAME`), not a catalogue runbook's.
pub fn is_script(rp: &Replay) -> bool {
    rp.runbook.starts_with("lua:")
}

/// Run the catalogue runbook `name` from inside `parent` (a script's `ops.restart{}`) so that
/// a resumed parent resumes it too: the child's run id derives from the parent's, and on a
/// resumed parent a child that ended is not run again (its journaled report comes back) and
/// one that did not end is resumed.
pub async fn nested(
    env: &Environment,
    parent: &crate::runbook::Run,
    name: &str,
    options: serde_json::Value,
    mut ro: RunOptions,
) -> Result<Report> {
    let child = parent.child_id(name);
    if let (true, Some(j)) = (parent.is_resumed(), &env.journal) {
        let path = RunLog::path_of(j.path(), &child);
        if path.exists() {
            let rp = RunLog::read(&path)?;
            if rp.ended.is_none() {
                let rp = prepare(env, &ResumeRequest::run(child))?;
                return continue_run(env, rp, ro).await;
            }
            let mut found = None;
            j.scan(|r| {
                if r.run_id == child {
                    found = Some(r);
                }
            })?;
            return found.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "run {child} ended before the resume, but its report is not in the journal"
                    ),
                )
                .with_operation("resume")
            });
        }
    }
    ro.run_id = Some(child);
    crate::runbook::registry::run(env, name, options, ro).await
}
