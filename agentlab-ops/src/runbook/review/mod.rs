//! `monthly_review`: the spec's Monthly Infrastructure Review for a period (default: the last
//! full month) — capacity trends, cost, SLOs, performance, security, backups, a
//! disaster-recovery drill and runbook usage — each section saying plainly when its source is
//! not configured or has no data; written as one self-contained HTML file (inline SVG charts),
//! Markdown for the wiki and JSON for machines.

pub mod capacity;
mod charts;
pub mod dr;
pub mod history;
mod html;
mod html_more;
mod markdown;
pub mod perf;
mod prom;
mod sections;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::Error;
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, month, parse_args,
};
use crate::runbook::run::RunOptions;

pub use html::render_html;
pub use markdown::render_markdown;
pub use sections::ReviewPayload;

/// A period of whole days, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last.
    pub end: NaiveDate,
    /// `2026-11`.
    pub label: String,
}

impl Period {
    /// The month starting on `first`'s month.
    pub fn month(first: NaiveDate) -> Period {
        let start = NaiveDate::from_ymd_opt(first.year(), first.month(), 1).unwrap_or(first);
        Period {
            start,
            end: start + chrono::Months::new(1),
            label: start.format("%Y-%m").to_string(),
        }
    }
    /// Days in it.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
    /// Its first instant.
    pub fn start_instant(&self) -> DateTime<Utc> {
        self.start
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default()
    }
    /// The instant after it.
    pub fn end_instant(&self) -> DateTime<Utc> {
        self.end
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default()
    }
    /// Whether `t` is in it.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start_instant() && t < self.end_instant()
    }
    /// Whether the day is in it.
    pub fn contains_day(&self, d: NaiveDate) -> bool {
        d >= self.start && d < self.end
    }
}

/// How a section fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionStatus {
    /// Filled.
    Ok,
    /// Its source is not configured.
    NotConfigured,
    /// Its source had nothing for the period.
    NoData,
    /// Its source failed (the note says how).
    Failed,
}

/// One section of the review: its status, one line, and its data when there is some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section<T> {
    /// Filled, not configured, no data or failed.
    pub status: SectionStatus,
    /// One line: the key numbers, or why there are none.
    pub note: String,
    /// The data.
    pub data: Option<T>,
}

impl<T> Section<T> {
    /// Filled.
    pub fn ok(note: impl Into<String>, data: T) -> Self {
        Section {
            status: SectionStatus::Ok,
            note: note.into(),
            data: Some(data),
        }
    }
    /// Not configured.
    pub fn not_configured(note: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::NotConfigured,
            note: note.into(),
            data: None,
        }
    }
    /// No data.
    pub fn no_data(note: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::NoData,
            note: note.into(),
            data: None,
        }
    }
    /// Failed.
    pub fn failed(note: impl Into<String>) -> Self {
        Section {
            status: SectionStatus::Failed,
            note: note.into(),
            data: None,
        }
    }
    /// The step outcome it is recorded with.
    pub fn outcome(&self) -> Outcome {
        match self.status {
            SectionStatus::Ok => Outcome::Pass,
            SectionStatus::NotConfigured => Outcome::Skipped,
            SectionStatus::NoData => Outcome::Inconclusive,
            SectionStatus::Failed => Outcome::Fail,
        }
    }
}

/// Options of `monthly_review`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewOptions {
    /// The month, `YYYY-MM` (default: the last full month).
    pub month: Option<String>,
    /// Write the HTML report here, and the Markdown (`.md`) and JSON (`.json`) beside it.
    pub out: Option<String>,
    /// Run the disaster-recovery drill (restore into a scratch folder); default true.
    pub drill: bool,
}

impl Default for ReviewOptions {
    fn default() -> Self {
        ReviewOptions {
            month: None,
            out: None,
            drill: true,
        }
    }
}

impl Validate for ReviewOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(m) = &self.month {
            month::parse(m)?;
        }
        if self.out.as_deref().is_some_and(|o| o.trim().is_empty()) {
            return Err("out: an empty path".into());
        }
        Ok(())
    }
}

/// The period of the options: the month asked, or the last full month before `now`.
pub fn period_of(o: &ReviewOptions, now: DateTime<Utc>) -> Period {
    match o.month.as_deref().and_then(|m| month::parse(m).ok()) {
        Some(d) => Period::month(d),
        None => Period::month(month::last_full(now)),
    }
}

/// Where the three files go: `report.html` → `report.html`, `report.md`, `report.json`.
pub fn out_paths(out: &str) -> [std::path::PathBuf; 3] {
    let p = std::path::PathBuf::from(out);
    [p.clone(), p.with_extension("md"), p.with_extension("json")]
}

fn write_files(
    run: &crate::runbook::run::Run,
    payload: &ReviewPayload,
    out: &str,
) -> crate::error::Result<Vec<String>> {
    let paths = out_paths(out);
    let json = serde_json::to_string_pretty(payload).unwrap_or_default();
    let bodies = [render_html(payload), render_markdown(payload), json];
    for (p, body) in paths.iter().zip(bodies) {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::from(e).with_context("path", d.display().to_string()))?;
        }
        std::fs::write(p, crate::secret::redact(&body))
            .map_err(|e| Error::from(e).with_context("path", p.display().to_string()))?;
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    run.record(
        "write",
        Action::Read,
        Outcome::Pass,
        format!("wrote {}", names.join(", ")),
    );
    Ok(names)
}

/// The review.
pub async fn monthly_review(env: &Environment, o: &ReviewOptions, ro: &RunOptions) -> Report {
    let mut ro = ro.clone();
    if ro.deadline.is_none() {
        ro.deadline =
            Some(std::time::Duration::from_secs(600).max(env.config.review.rto_target.0 * 2));
    }
    env.execute("monthly_review", &ro, |run| async move {
        let p = period_of(o, env.clock.now());
        let mut payload = sections::gather(env, &run, &p, o.drill).await;
        sections::judge(&run, &mut payload);
        if let Some(out) = &o.out {
            payload.files = write_files(&run, &payload, out)?;
        }
        Ok(serde_json::to_value(&payload).unwrap_or_default())
    })
    .await
}

/// `monthly_review`.
pub static MONTHLY_REVIEW: Definition = Definition {
    name: "monthly_review",
    command: "review monthly",
    aliases: &["review"],
    summary: "the Monthly Infrastructure Review: capacity, cost, SLOs, performance, security, backups, a DR drill, runbook usage; HTML, Markdown, JSON",
    changes: false,
    steps: &[
        "journal: every run of the period (the journal and [review] journals)",
        "capacity: /metrics/history or Prometheus, a trend and the day each resource crosses its threshold",
        "cost: the month and the one before, per service",
        "slo: budget used, days per zone, incidents and escalations",
        "performance: slowest endpoints, error templates of the logs",
        "security: the latest access review against the one before",
        "backups: nights verified, failures, size trend",
        "dr_drill: restore the latest complete backup into a scratch folder, validate, RTO and RPO",
        "usage: runs, success rate, median duration, hours saved, tool and config revisions",
        "write: the HTML, Markdown and JSON files (with out)",
    ],
    options: &[
        month::DOC,
        OptionDoc {
            name: "out",
            kind: "path",
            help: "write the HTML here, .md and .json beside it",
        },
        OptionDoc {
            name: "drill",
            kind: "bool",
            help: "run the disaster-recovery drill (default true)",
        },
    ],
    defaults: defaults_of::<ReviewOptions>,
    check_options: check_args::<ReviewOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: ReviewOptions = parse_args("monthly_review", v)?;
            Ok(monthly_review(env, &o, &run).await)
        })
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_period_is_the_last_full_month() {
        let now = NaiveDate::from_ymd_opt(2026, 12, 4)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc();
        let p = period_of(&ReviewOptions::default(), now);
        assert_eq!((p.label.as_str(), p.days()), ("2026-11", 30));
        let jan = NaiveDate::from_ymd_opt(2027, 1, 2)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(period_of(&ReviewOptions::default(), jan).label, "2026-12");
        let o = ReviewOptions {
            month: Some("2026-02".into()),
            ..Default::default()
        };
        assert_eq!(period_of(&o, now).days(), 28);
        assert!(o.validate().is_ok());
        let bad = ReviewOptions {
            month: Some("2026-13".into()),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("2026-13"));
    }
}
