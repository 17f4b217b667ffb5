//! Reports: what a runbook did, what it found, and whether a human must act.
//!
//! A [`Report`] has the runbook's name, the environment, timings, a [`Verdict`], the checks and
//! steps that ran (each with its action kind, outcome and duration), findings, escalations
//! (criterion, observed value, threshold) and a typed payload (serialised; read it back with
//! [`Report::payload_as`]). It renders as terminal text, JSON or Markdown.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorInfo;

/// The overall result of a run. Exit codes: healthy 0, escalate 1, failed 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything checked is fine.
    Healthy,
    /// A human must act: at least one escalation criterion is met.
    Escalate,
    /// The runbook could not run to the end.
    Failed,
}

impl Verdict {
    /// The command's exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Escalate => 1,
            Verdict::Failed => 2,
        }
    }
    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Escalate => "escalate",
            Verdict::Failed => "failed",
        }
    }
}

/// Does a step read the world or change it?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only reads: always runs, also under dry-run.
    Read,
    /// Changes something: only planned under dry-run, undone on failure.
    Change,
    /// The undo of an earlier change.
    Undo,
}

/// How a check or step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Passed / done.
    Pass,
    /// Planned only (dry-run).
    Planned,
    /// Not run.
    Skipped,
    /// Passed with a warning.
    Warn,
    /// Not enough data to decide: never counted as a pass.
    Inconclusive,
    /// Ran and found a problem.
    Fail,
    /// Could not run (timeout, unreachable, bad answer).
    Error,
}

impl Outcome {
    /// Short label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Planned => "planned",
            Outcome::Skipped => "skipped",
            Outcome::Warn => "warn",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}

/// One check or step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Name (`health`, `slo`, `backups`, `resources:web-1`...).
    pub name: String,
    /// Read, change or undo.
    pub action: Action,
    /// Outcome.
    pub outcome: Outcome,
    /// One line saying what was seen or done.
    pub summary: String,
    /// Milliseconds the step took.
    pub duration_ms: u64,
    /// The error, when the outcome is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Something is wrong.
    Critical,
}

/// Something noticed during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// What it is about (a host, a key, a component).
    pub subject: String,
    /// What was found.
    pub message: String,
}

/// An escalation criterion that is met: a human must act.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// The criterion (`slo_red`, `error_budget_low`, `backup_missing`, `resource_high`...).
    pub criterion: String,
    /// What it is about (`availability`, `web-1:/`, `sessions`).
    pub subject: String,
    /// The value seen, human-readable.
    pub observed: String,
    /// The threshold it crossed, human-readable.
    pub threshold: String,
    /// One line for the on-call engineer.
    pub message: String,
}

/// The result of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Runbook name (`morning_check`).
    pub runbook: String,
    /// Environment name.
    pub environment: String,
    /// Unique id of the run.
    pub run_id: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Whether changes were only planned.
    pub dry_run: bool,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Checks and steps, in the order they were started.
    pub checks: Vec<Check>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Escalations.
    pub escalations: Vec<Escalation>,
    /// Runbook-specific data.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// The version of agentlab-ops that ran it (set when journaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    /// A hash of the environment's config it ran with (secrets redacted before hashing): a
    /// change in it is a change in how the runbook runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Aligned terminal text.
    Text,
    /// One JSON document.
    Json,
    /// Markdown, for handovers and tickets.
    Markdown,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "markdown" | "md" => Ok(Format::Markdown),
            _ => Err(format!("unknown format {s:?} (text, json, markdown)")),
        }
    }
}

impl Report {
    /// Whether the verdict is healthy.
    pub fn ok(&self) -> bool {
        self.verdict == Verdict::Healthy
    }

    /// The payload as its typed form.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            crate::Error::new(crate::ErrorKind::InvalidResponse, format!("payload: {e}"))
        })
    }

    /// A check by name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Render in `format`; `color` adds ANSI colours to text.
    pub fn render(&self, format: Format, color: bool) -> String {
        let out = match format {
            Format::Json => self.to_json(),
            Format::Markdown => self.to_markdown(),
            Format::Text => self.to_text(color),
        };
        crate::secret::redact(&out)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        crate::secret::redact(
            &serde_json::to_string_pretty(self)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        )
    }

    /// Terminal text with aligned columns.
    pub fn to_text(&self, color: bool) -> String {
        use anstyle::{AnsiColor, Style};
        let paint = |style: Style, s: &str| {
            if color {
                format!("{style}{s}{style:#}")
            } else {
                s.to_string()
            }
        };
        let fg = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
        let outcome_color = |o: Outcome| match o {
            Outcome::Pass => fg(AnsiColor::Green),
            Outcome::Planned | Outcome::Skipped => fg(AnsiColor::Cyan),
            Outcome::Warn | Outcome::Inconclusive => fg(AnsiColor::Yellow),
            Outcome::Fail | Outcome::Error => fg(AnsiColor::Red),
        };
        let verdict_color = match self.verdict {
            Verdict::Healthy => fg(AnsiColor::Green).bold(),
            Verdict::Escalate => fg(AnsiColor::Yellow).bold(),
            Verdict::Failed => fg(AnsiColor::Red).bold(),
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} · {} · {} · {}{}",
            self.runbook,
            self.environment,
            self.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            crate::config::format_duration(std::time::Duration::from_millis(self.duration_ms)),
            if self.dry_run { " · dry-run" } else { "" }
        );
        let name_w = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let label_w = 12;
        for c in &self.checks {
            let label = match c.action {
                Action::Read => c.outcome.as_str().to_uppercase(),
                Action::Change => format!("{}*", c.outcome.as_str().to_uppercase()),
                Action::Undo => format!("UNDO {}", c.outcome.as_str()),
            };
            let padded = format!("{label:<label_w$}");
            let _ = writeln!(
                s,
                "  {}  {:<name_w$}  {:>7}  {}",
                paint(outcome_color(c.outcome), &padded),
                c.name,
                format!("{}ms", c.duration_ms),
                c.summary
            );
        }
        if !self.findings.is_empty() {
            let _ = writeln!(s, "findings:");
            for f in &self.findings {
                let sev = format!("{:?}", f.severity).to_lowercase();
                let code = match f.severity {
                    Severity::Info => fg(AnsiColor::Cyan),
                    Severity::Warning => fg(AnsiColor::Yellow),
                    Severity::Critical => fg(AnsiColor::Red),
                };
                let _ = writeln!(
                    s,
                    "  {}  {}: {}",
                    paint(code, &format!("{sev:<8}")),
                    f.subject,
                    f.message
                );
            }
        }
        if !self.escalations.is_empty() {
            let _ = writeln!(s, "escalations:");
            for e in &self.escalations {
                let _ = writeln!(
                    s,
                    "  {}  {} — observed {}, threshold {}",
                    paint(fg(AnsiColor::Red).bold(), "!"),
                    e.message,
                    e.observed,
                    e.threshold
                );
            }
        }
        if let Some(err) = &self.error {
            let _ = writeln!(s, "error: {}", err.message);
        }
        let _ = writeln!(
            s,
            "verdict: {}",
            paint(verdict_color, &self.verdict.as_str().to_uppercase())
        );
        s
    }

    /// Markdown for tickets and handovers.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {} — {}", self.runbook, self.environment);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "- **Verdict**: {}\n- **Started**: {}\n- **Duration**: {} ms{}",
            self.verdict.as_str(),
            self.started_at.to_rfc3339(),
            self.duration_ms,
            if self.dry_run {
                "\n- **Dry run**: yes"
            } else {
                ""
            }
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "| Check | Action | Outcome | Duration | Summary |");
        let _ = writeln!(s, "|---|---|---|---:|---|");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "| {} | {:?} | {} | {} ms | {} |",
                md_escape(&c.name),
                c.action,
                c.outcome.as_str(),
                c.duration_ms,
                md_escape(&c.summary)
            );
        }
        if !self.escalations.is_empty() {
            let _ = writeln!(s, "\n## Escalations\n");
            let _ = writeln!(s, "| Criterion | Subject | Observed | Threshold |");
            let _ = writeln!(s, "|---|---|---|---|");
            for e in &self.escalations {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    md_escape(&e.criterion),
                    md_escape(&e.subject),
                    md_escape(&e.observed),
                    md_escape(&e.threshold)
                );
            }
        }
        if !self.findings.is_empty() {
            let _ = writeln!(s, "\n## Findings\n");
            for f in &self.findings {
                let _ = writeln!(
                    s,
                    "- **{:?}** {}: {}",
                    f.severity,
                    md_escape(&f.subject),
                    md_escape(&f.message)
                );
            }
        }
        if let Some(err) = &self.error {
            let _ = writeln!(s, "\n**Error**: {}", md_escape(&err.message));
        }
        s
    }
}

/// Escape `|` and newlines for a Markdown table cell.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            runbook: "morning_check".into(),
            environment: "prod".into(),
            run_id: "r1".into(),
            started_at: Utc::now(),
            duration_ms: 12,
            dry_run: false,
            verdict: Verdict::Escalate,
            error: None,
            checks: vec![Check {
                name: "health".into(),
                action: Action::Read,
                outcome: Outcome::Fail,
                summary: "HTTP 503 | down".into(),
                duration_ms: 5,
                error: None,
            }],
            findings: vec![],
            escalations: vec![Escalation {
                criterion: "service_unhealthy".into(),
                subject: "health".into(),
                observed: "HTTP 503".into(),
                threshold: "2xx".into(),
                message: "health endpoint failing".into(),
            }],
            payload: serde_json::json!({"x": 1}),
            tool_version: None,
            config_hash: None,
        }
    }

    #[test]
    fn renders_all_formats() {
        let r = sample();
        let j: serde_json::Value = serde_json::from_str(&r.render(Format::Json, false)).unwrap();
        assert_eq!(j["verdict"], "escalate");
        assert_eq!(j["checks"][0]["outcome"], "fail");
        assert_eq!(j["escalations"][0]["observed"], "HTTP 503");
        let t = r.render(Format::Text, false);
        assert!(t.contains("FAIL") && t.contains("verdict: ESCALATE"), "{t}");
        assert!(!t.contains('\x1b'));
        assert!(r.render(Format::Text, true).contains('\x1b'));
        let m = r.render(Format::Markdown, false);
        assert!(m.contains("HTTP 503 \\| down"), "{m}");
        assert_eq!(Verdict::Escalate.exit_code(), 1);
    }
}
