//! The run log: what makes a run resumable. One JSON line per event of one run — started,
//! a step begun, a step done (with its value), an undo done, failing, ended — each written and
//! `fsync`'d before the run goes on, so a runner killed at any moment leaves a log that says
//! exactly which steps finished, which one was in flight, and which undos already ran.
//!
//! The log sits beside the journal (`<journal dir>/runs/<run id>.jsonl`); lines are scrubbed of
//! secrets like the journal's. [`RunLog::read`] folds a log back into a [`Replay`], what
//! `resume` re-enters the runbook with.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorInfo, ErrorKind, Result};
use crate::report::Outcome;

/// One line of a run log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum RunRecord {
    /// The run started.
    Start {
        /// Run id.
        run_id: String,
        /// Runbook.
        runbook: String,
        /// Environment.
        environment: String,
        /// The options it was started with (None: called directly from Rust, not resumable).
        options: Option<serde_json::Value>,
        /// The configuration's hash.
        config_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A later attempt took the run over.
    Resume {
        /// 2 for the first resume.
        attempt: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// A change step started (written before it acts).
    Begin {
        /// Step name (`restart:web-1`).
        step: String,
        /// Which occurrence of that name in the run (0 for the first).
        n: u32,
        /// Repeating it is harmless.
        idempotent: bool,
        /// It can check whether it happened.
        verify: bool,
        /// What it saw before acting (the main pid before a restart), for its check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        witness: Option<serde_json::Value>,
    },
    /// A change step (or a scope) finished.
    Done {
        /// Step name.
        step: String,
        /// Occurrence.
        n: u32,
        /// How it ended.
        outcome: Outcome,
        /// Its report line.
        summary: String,
        /// What it returned (None: a value that lives only in the runner).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    /// The run failed; its undos start.
    Failing {
        /// Why.
        error: ErrorInfo,
    },
    /// An undo finished.
    Undone {
        /// Its name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// The run ended (its report is in the journal).
    End {
        /// `healthy`, `escalate`, `failed`.
        verdict: String,
    },
}

/// The writer of one run's log: every line is on disk (`fsync`) when [`RunLog::write`] returns.
#[derive(Debug, Clone)]
pub struct RunLog {
    path: PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl RunLog {
    /// Where the logs of a journal live.
    pub fn dir_of(journal: &Path) -> PathBuf {
        journal.parent().unwrap_or(Path::new(".")).join("runs")
    }

    /// The log of `run_id` beside `journal`.
    pub fn path_of(journal: &Path, run_id: &str) -> PathBuf {
        Self::dir_of(journal).join(format!("{run_id}.jsonl"))
    }

    /// Open (create or append to) the log at `path`.
    pub fn open(path: PathBuf) -> Result<RunLog> {
        let ctx = |e: std::io::Error| {
            Error::from(e)
                .with_operation("runlog.open")
                .with_context("path", path.display().to_string())
        };
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(ctx)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(ctx)?;
        // Held while the run lives (flock: gone with the process, also on SIGKILL): a resume
        // never takes over a run that is still going, nor do two resumes race.
        if let Err(e) = flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            let msg = match e {
                rustix::io::Errno::WOULDBLOCK => format!(
                    "{}: the run is still going in another process (or another resume took it over)",
                    path.display()
                ),
                e => format!("{}: cannot lock: {e}", path.display()),
            };
            return Err(Error::new(ErrorKind::Conflict, msg)
                .with_operation("runlog.open")
                .with_context("path", path.display().to_string()));
        }
        Ok(RunLog {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Whether a live process holds the log at `path` (its run is still going).
    pub fn is_live(path: &Path) -> bool {
        std::fs::File::open(path).is_ok_and(|f| {
            flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared)
                == Err(rustix::io::Errno::WOULDBLOCK)
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record and `fsync` it.
    pub fn write(&self, r: &RunRecord) -> Result<()> {
        let mut line = serde_json::to_string(r)
            .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        line = crate::secret::redact(&line);
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let r = f.write_all(line.as_bytes()).and_then(|()| f.sync_data());
        r.map_err(|e| {
            Error::from(e)
                .with_operation("runlog.write")
                .with_context("path", self.path.display().to_string())
        })
    }

    /// Fold the log at `path` into what a resume needs.
    pub fn read(path: &Path) -> Result<Replay> {
        let f = std::fs::File::open(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                Error::from(e).kind()
            };
            Error::new(kind, format!("no run log at {}", path.display()))
                .with_operation("runlog.read")
                .with_context("path", path.display().to_string())
        })?;
        let mut rp = Replay::default();
        let lines: Vec<(usize, String)> = std::io::BufReader::new(f)
            .lines()
            .enumerate()
            .map(|(i, l)| l.map(|l| (i + 1, l)))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::from(e).with_operation("runlog.read"))?;
        let lines: Vec<_> = lines
            .into_iter()
            .filter(|(_, l)| !l.trim().is_empty())
            .collect();
        let last = lines.last().map(|(n, _)| *n);
        for (n, line) in &lines {
            match serde_json::from_str::<RunRecord>(line) {
                Ok(r) => rp.apply(r),
                // A torn last line (killed mid-write) is what a crash leaves: skip it.
                Err(e) if Some(*n) == last => rp.torn.push(format!("{}:{n}: {e}", path.display())),
                // Anything else is damage: resuming from a log that lies would repeat steps.
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::InvalidResponse,
                        format!("{}: line {n}: not a run log record: {e}", path.display()),
                    )
                    .with_operation("runlog.read")
                    .with_context("path", path.display().to_string())
                    .with_context("line", n.to_string()));
                }
            }
        }
        if rp.run_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("{}: no start record: not a run log", path.display()),
            )
            .with_operation("runlog.read"));
        }
        Ok(rp)
    }
}

/// A step as the log left it.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Whether repeating it is harmless.
    pub idempotent: bool,
    /// Whether it can check itself.
    pub verify: bool,
    /// What it saw before acting.
    pub witness: Option<serde_json::Value>,
    /// How it ended (None: in flight when the run stopped).
    pub done: Option<DoneRecord>,
}

/// A finished step.
#[derive(Debug, Clone)]
pub struct DoneRecord {
    /// How it ended.
    pub outcome: Outcome,
    /// Its report line.
    pub summary: String,
    /// Its value.
    pub value: Option<serde_json::Value>,
    /// Its error.
    pub error: Option<ErrorInfo>,
}

/// A run log folded: who the run is, what it finished, what was in flight.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Run id.
    pub run_id: String,
    /// Runbook.
    pub runbook: String,
    /// Environment.
    pub environment: String,
    /// Its options (None: not started through the catalogue).
    pub options: Option<serde_json::Value>,
    /// The config's hash when it started.
    pub config_hash: String,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// Attempts so far (1: never resumed).
    pub attempts: u32,
    /// Steps by (name, occurrence).
    pub steps: BTreeMap<(String, u32), StepRecord>,
    /// Undos that succeeded, by name, with how many times.
    pub undone: BTreeMap<String, u32>,
    /// Why the run was failing (its undos had started), if it was.
    pub failing: Option<ErrorInfo>,
    /// Its verdict, when it ended.
    pub ended: Option<String>,
    /// Lines that did not parse (a torn last write).
    pub torn: Vec<String>,
    /// In-flight steps the operator says happened (`resume --done STEP`).
    pub assume_done: BTreeSet<String>,
    /// In-flight steps the operator says to run again (`resume --redo STEP`).
    pub redo: BTreeSet<String>,
}

impl Replay {
    fn apply(&mut self, r: RunRecord) {
        match r {
            RunRecord::Start {
                run_id,
                runbook,
                environment,
                options,
                config_hash,
                at,
            } => {
                (self.run_id, self.runbook, self.environment) = (run_id, runbook, environment);
                (self.options, self.config_hash) = (options, config_hash);
                self.started_at = Some(at);
                self.attempts = 1;
            }
            RunRecord::Resume { attempt, .. } => self.attempts = attempt,
            RunRecord::Begin {
                step,
                n,
                idempotent,
                verify,
                witness,
            } => {
                let rec = StepRecord {
                    idempotent,
                    verify,
                    witness,
                    done: None,
                };
                self.steps.insert((step, n), rec);
            }
            RunRecord::Done {
                step,
                n,
                outcome,
                summary,
                value,
                error,
            } => {
                let done = Some(DoneRecord {
                    outcome,
                    summary,
                    value,
                    error,
                });
                let e = self.steps.entry((step, n)).or_insert(StepRecord {
                    idempotent: false,
                    verify: false,
                    witness: None,
                    done: None,
                });
                e.done = done;
            }
            RunRecord::Failing { error } => self.failing = Some(error),
            RunRecord::Undone { name, ok } => {
                if ok {
                    *self.undone.entry(name).or_default() += 1;
                }
            }
            RunRecord::End { verdict } => self.ended = Some(verdict),
        }
    }

    /// Steps that were in flight when the run stopped: `(name, record)`.
    pub fn in_flight(&self) -> Vec<(&str, &StepRecord)> {
        self.steps
            .iter()
            .filter(|(_, s)| s.done.is_none())
            .map(|((n, _), s)| (n.as_str(), s))
            .collect()
    }

    /// Steps that finished (not counting the scopes that group them).
    pub fn done_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|((n, _), s)| s.done.is_some() && !n.starts_with("scope:"))
            .count()
    }

    /// In-flight steps a resume cannot decide alone: neither idempotent nor able to check
    /// themselves, and not named by `--done` or `--redo`.
    pub fn undecided(&self) -> Vec<String> {
        if self.failing.is_some() {
            // A failing run is only unwound: its in-flight steps are undone, not repeated.
            return Vec::new();
        }
        self.in_flight()
            .into_iter()
            .filter(|(n, s)| {
                !s.idempotent
                    && !s.verify
                    && !self.assume_done.contains(*n)
                    && !self.redo.contains(*n)
            })
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

/// `flock(2)` on an open file: the lock lives as long as the file is open in this process.
fn flock(f: &std::fs::File, op: rustix::fs::FlockOperation) -> rustix::io::Result<()> {
    rustix::fs::flock(f, op)
}
