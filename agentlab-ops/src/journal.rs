//! The audit journal: one JSON line per run, secrets scrubbed.
//!
//! `journal stats` answers the spec's Runbook Maintenance questions: which runbooks are used
//! most, how often they succeed, and how long they take (median).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::report::{Format, Report, Verdict};

/// A JSONL journal file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// A journal at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Journal { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append a report as one line (atomic `O_APPEND` write).
    pub fn append(&self, report: &Report) -> Result<()> {
        let ctx = |e: std::io::Error| {
            Error::from(e)
                .with_operation("journal.append")
                .with_context("path", self.path.display().to_string())
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(ctx)?;
        }
        let mut line = serde_json::to_string(report)
            .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        line = crate::secret::redact(&line);
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(ctx)?;
        f.write_all(line.as_bytes()).map_err(ctx)?;
        Ok(())
    }

    /// Append an event line (`{"event": ..., ...}`), secrets scrubbed: what happened between
    /// reports (a lease set, renewed, removed). `scan` passes over them.
    pub fn event(&self, event: &str, fields: serde_json::Value) -> Result<()> {
        let mut v = serde_json::json!({ "at": Utc::now().to_rfc3339() });
        if let (Some(o), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
            o.extend(f);
        }
        // `event` first, whatever the map's order: `scan` recognises event lines by it.
        let body = v.to_string();
        let name = serde_json::Value::String(event.to_string());
        let mut line = crate::secret::redact(&format!("{{\"event\":{name},{}", &body[1..]));
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::from(e).with_operation("journal.event"))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::from(e).with_operation("journal.event"))?;
        Ok(())
    }

    /// Visit every well-formed report; returns the number of malformed lines skipped.
    pub fn scan(&self, mut visit: impl FnMut(Report)) -> Result<usize> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => {
                return Err(Error::from(e)
                    .with_operation("journal.read")
                    .with_context("path", self.path.display().to_string()));
            }
        };
        let mut bad = 0;
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| Error::from(e).with_operation("journal.read"))?;
            if line.trim().is_empty() || line.starts_with("{\"event\"") {
                continue;
            }
            match serde_json::from_str::<Report>(&line) {
                Ok(r) => visit(r),
                Err(_) => bad += 1,
            }
        }
        Ok(bad)
    }

    /// The latest report of `runbook` in `environment`.
    pub fn latest(&self, runbook: &str, environment: &str) -> Result<Option<Report>> {
        let mut last: Option<Report> = None;
        self.scan(|r| {
            if r.runbook == runbook && r.environment == environment {
                last = Some(r);
            }
        })?;
        Ok(last)
    }

    /// Runs per runbook, success rate, median duration.
    pub fn stats(&self, environment: Option<&str>) -> Result<JournalStats> {
        let mut by: BTreeMap<String, Tally> = BTreeMap::new();
        let mut total = 0;
        let malformed = self.scan(|r| {
            if environment.is_some_and(|e| e != r.environment) {
                return;
            }
            total += 1;
            let e = by.entry(r.runbook.clone()).or_default();
            e.0.push(r.duration_ms);
            e.1[match r.verdict {
                Verdict::Healthy => 0,
                Verdict::Escalate => 1,
                Verdict::Failed => 2,
            }] += 1;
            if e.2.is_none_or(|t| t < r.started_at) {
                e.2 = Some(r.started_at);
            }
        })?;
        let mut runbooks: Vec<RunbookStats> = by
            .into_iter()
            .map(|(runbook, (mut d, [h, esc, f], last))| {
                let runs = d.len() as u64;
                RunbookStats {
                    runbook,
                    runs,
                    healthy: h,
                    escalated: esc,
                    failed: f,
                    success_rate: (h + esc) as f64 / runs as f64,
                    median_duration_ms: median(&mut d),
                    last_run: last,
                }
            })
            .collect();
        runbooks.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.runbook.cmp(&b.runbook)));
        Ok(JournalStats {
            journal: self.path.display().to_string(),
            total_runs: total,
            malformed_lines: malformed as u64,
            runbooks,
        })
    }
}

/// Durations, verdict counts (healthy, escalate, failed) and latest start of one runbook.
type Tally = (Vec<u64>, [u64; 3], Option<DateTime<Utc>>);

/// Median of a set of counts (0 when empty); sorts the slice.
pub fn median(v: &mut [u64]) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Usage of one runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookStats {
    /// Runbook name.
    pub runbook: String,
    /// Number of runs.
    pub runs: u64,
    /// Runs that found nothing.
    pub healthy: u64,
    /// Runs that ended in an escalation.
    pub escalated: u64,
    /// Runs that could not complete.
    pub failed: u64,
    /// Share of runs that completed (healthy or escalated), 0..=1.
    pub success_rate: f64,
    /// Median duration.
    pub median_duration_ms: u64,
    /// Start of the latest run.
    pub last_run: Option<DateTime<Utc>>,
}

/// `journal stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalStats {
    /// The file read.
    pub journal: String,
    /// Runs counted.
    pub total_runs: u64,
    /// Lines that were not a report.
    pub malformed_lines: u64,
    /// Per runbook, most used first.
    pub runbooks: Vec<RunbookStats>,
}

impl JournalStats {
    /// Render as text, JSON or Markdown.
    pub fn render(&self, format: Format) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        match format {
            Format::Json => {
                s = serde_json::to_string_pretty(self).unwrap_or_default();
            }
            Format::Text => {
                let _ = writeln!(s, "journal: {} ({} runs)", self.journal, self.total_runs);
                let w = self
                    .runbooks
                    .iter()
                    .map(|r| r.runbook.len())
                    .max()
                    .unwrap_or(7)
                    .max(7);
                let _ = writeln!(
                    s,
                    "  {:<w$}  {:>5}  {:>8}  {:>9}  {:>6}  {:>10}",
                    "runbook", "runs", "success", "escalated", "failed", "median"
                );
                for r in &self.runbooks {
                    let _ = writeln!(
                        s,
                        "  {:<w$}  {:>5}  {:>7.1}%  {:>9}  {:>6}  {:>8}ms",
                        r.runbook,
                        r.runs,
                        r.success_rate * 100.0,
                        r.escalated,
                        r.failed,
                        r.median_duration_ms
                    );
                }
                if self.malformed_lines > 0 {
                    let _ = writeln!(s, "  ({} malformed lines skipped)", self.malformed_lines);
                }
            }
            Format::Markdown => {
                let _ = writeln!(
                    s,
                    "| Runbook | Runs | Success | Escalated | Failed | Median |"
                );
                let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
                for r in &self.runbooks {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {:.1}% | {} | {} | {} ms |",
                        r.runbook,
                        r.runs,
                        r.success_rate * 100.0,
                        r.escalated,
                        r.failed,
                        r.median_duration_ms
                    );
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::run::Run;

    #[tokio::test]
    async fn stats_count_runs_success_and_median() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("sub/journal.jsonl"));
        for (i, fail) in [(10, false), (30, true), (20, false)] {
            let run = Run::new("morning_check", "prod", false);
            let err = fail.then(|| Error::new(ErrorKind::Timeout, "x"));
            let mut r = run.finish(serde_json::Value::Null, err).await;
            r.duration_ms = i;
            j.append(&r).unwrap();
        }
        let run = Run::new("handover", "prod", false);
        j.append(&run.finish(serde_json::Value::Null, None).await)
            .unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let s = j.stats(None).unwrap();
        assert_eq!(s.total_runs, 4);
        assert_eq!(s.malformed_lines, 1);
        let m = &s.runbooks[0];
        assert_eq!(
            (m.runbook.as_str(), m.runs, m.failed),
            ("morning_check", 3, 1)
        );
        assert!((m.success_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.median_duration_ms, 20);
        assert!(j.latest("handover", "prod").unwrap().is_some());
        assert!(j.latest("handover", "staging").unwrap().is_none());
        assert_eq!(j.stats(Some("staging")).unwrap().total_runs, 0);
    }
}
