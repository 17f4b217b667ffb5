//! Reports as Python objects with attributes, plus dict / JSON / Markdown / text renderings.

use agentlab_ops::report::{Check as CoreCheck, Escalation as CoreEsc, Finding as CoreFinding};
use agentlab_ops::{Format, Report as CoreReport, Verdict};
use pyo3::prelude::*;

/// The snake_case name serde gives an enum value.
fn name_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// A JSON value as a Python object (through `json.loads`: dicts, lists, str, int, float, bool,
/// None — exactly what `to_dict()` users expect).
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    v: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

/// One check or step of a run.
#[pyclass(module = "agentlab_ops", name = "Check", frozen, get_all)]
pub struct Check {
    /// `health`, `slo`, `integrity:sessions`...
    name: String,
    /// `read`, `change` or `undo`.
    action: String,
    /// `pass`, `warn`, `fail`, `error`, `skipped`, `planned`...
    outcome: String,
    /// One line saying what was seen or done.
    summary: String,
    /// How long it took.
    duration_ms: u64,
    /// The error (`{"kind", "message", "operation", "temporary"}`) when the outcome is `error`.
    error: Option<Py<PyAny>>,
}

#[pymethods]
impl Check {
    fn __repr__(&self) -> String {
        format!(
            "<Check {} {} {}ms: {}>",
            self.name, self.outcome, self.duration_ms, self.summary
        )
    }
}

impl Check {
    fn from_core(py: Python<'_>, c: &CoreCheck) -> PyResult<Self> {
        let error = match &c.error {
            Some(e) => Some(json_to_py(py, &serde_json::to_value(e).unwrap_or_default())?.unbind()),
            None => None,
        };
        Ok(Check {
            name: c.name.clone(),
            action: name_of(&c.action),
            outcome: name_of(&c.outcome),
            summary: c.summary.clone(),
            duration_ms: c.duration_ms,
            error,
        })
    }
}

/// Something noticed during a run (a key, a host, a component).
#[pyclass(module = "agentlab_ops", name = "Finding", frozen, get_all)]
pub struct Finding {
    /// `info`, `warning` or `critical`.
    severity: String,
    /// What it is about.
    subject: String,
    /// What was found.
    message: String,
}

#[pymethods]
impl Finding {
    fn __repr__(&self) -> String {
        format!(
            "<Finding {} {}: {}>",
            self.severity, self.subject, self.message
        )
    }
}

impl From<&CoreFinding> for Finding {
    fn from(f: &CoreFinding) -> Self {
        Finding {
            severity: name_of(&f.severity),
            subject: f.subject.clone(),
            message: f.message.clone(),
        }
    }
}

/// An escalation criterion that is met: a human must act.
#[pyclass(module = "agentlab_ops", name = "Escalation", frozen, get_all)]
pub struct Escalation {
    /// `slo_red`, `backup_missing`, `resource_high`...
    criterion: String,
    /// What it is about.
    subject: String,
    /// The value seen.
    observed: String,
    /// The threshold it crossed.
    threshold: String,
    /// One line for the on-call engineer.
    message: String,
}

#[pymethods]
impl Escalation {
    fn __repr__(&self) -> String {
        format!(
            "<Escalation {} {}: observed {}, threshold {}>",
            self.criterion, self.subject, self.observed, self.threshold
        )
    }
}

impl From<&CoreEsc> for Escalation {
    fn from(e: &CoreEsc) -> Self {
        Escalation {
            criterion: e.criterion.clone(),
            subject: e.subject.clone(),
            observed: e.observed.clone(),
            threshold: e.threshold.clone(),
            message: e.message.clone(),
        }
    }
}

/// The result of a runbook.
#[pyclass(module = "agentlab_ops", name = "Report", frozen)]
pub struct Report {
    pub(crate) inner: CoreReport,
}

impl From<CoreReport> for Report {
    fn from(r: CoreReport) -> Self {
        Report { inner: r }
    }
}

#[pymethods]
impl Report {
    /// `morning_check`, `verify_backups`...
    #[getter]
    fn runbook(&self) -> &str {
        &self.inner.runbook
    }
    /// The environment's name.
    #[getter]
    fn environment(&self) -> &str {
        &self.inner.environment
    }
    /// Unique id of the run (also in the journal).
    #[getter]
    fn run_id(&self) -> &str {
        &self.inner.run_id
    }
    /// When it started (RFC 3339, UTC).
    #[getter]
    fn started_at(&self) -> String {
        self.inner.started_at.to_rfc3339()
    }
    /// How long it took.
    #[getter]
    fn duration_ms(&self) -> u64 {
        self.inner.duration_ms
    }
    /// Whether changes were only planned.
    #[getter]
    fn dry_run(&self) -> bool {
        self.inner.dry_run
    }
    /// `healthy`, `escalate` or `failed`.
    #[getter]
    fn verdict(&self) -> String {
        name_of(&self.inner.verdict)
    }
    /// True when the verdict is healthy.
    #[getter]
    fn ok(&self) -> bool {
        self.inner.verdict == Verdict::Healthy
    }
    /// The command's exit code for this verdict: 0 healthy, 1 escalate, 2 failed.
    #[getter]
    fn exit_code(&self) -> i32 {
        self.inner.verdict.exit_code()
    }
    /// Why the run failed (`{"kind", "message", ...}`), or None.
    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.inner.error {
            Some(e) => Ok(Some(json_to_py(
                py,
                &serde_json::to_value(e).unwrap_or_default(),
            )?)),
            None => Ok(None),
        }
    }
    /// Checks and steps in the order they started.
    #[getter]
    fn checks(&self, py: Python<'_>) -> PyResult<Vec<Check>> {
        self.inner
            .checks
            .iter()
            .map(|c| Check::from_core(py, c))
            .collect()
    }
    /// Same as `checks` (a runbook that changes things calls them steps).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Vec<Check>> {
        self.checks(py)
    }
    /// Findings.
    #[getter]
    fn findings(&self) -> Vec<Finding> {
        self.inner.findings.iter().map(Finding::from).collect()
    }
    /// Escalations.
    #[getter]
    fn escalations(&self) -> Vec<Escalation> {
        self.inner
            .escalations
            .iter()
            .map(Escalation::from)
            .collect()
    }
    /// The runbook's own data, as a dict.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.payload)
    }
    /// The check or step with this name, or None.
    fn check(&self, py: Python<'_>, name: &str) -> PyResult<Option<Check>> {
        self.inner
            .check(name)
            .map(|c| Check::from_core(py, c))
            .transpose()
    }
    /// The whole report as plain data (what `to_json()` encodes).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.inner).unwrap_or(serde_json::Value::Null),
        )
    }
    /// JSON, as `agentlab-ops --format json` prints it.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }
    /// Markdown (for a ticket or a Slack message).
    fn to_markdown(&self) -> String {
        self.inner.to_markdown()
    }
    /// The terminal rendering; `color=True` for ANSI colours.
    #[pyo3(signature = (color = false))]
    fn to_text(&self, color: bool) -> String {
        self.inner.render(Format::Text, color)
    }
    fn __str__(&self) -> String {
        self.inner.render(Format::Text, false)
    }
    fn __repr__(&self) -> String {
        format!(
            "<Report {} {} {}: {} checks, {} findings, {} escalations, {}ms>",
            self.inner.runbook,
            self.inner.environment,
            name_of(&self.inner.verdict).to_uppercase(),
            self.inner.checks.len(),
            self.inner.findings.len(),
            self.inner.escalations.len(),
            self.inner.duration_ms
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Report>()?;
    m.add_class::<Check>()?;
    m.add_class::<Finding>()?;
    m.add_class::<Escalation>()?;
    Ok(())
}
