//! SLO math from counts: `evaluate_slo(target, good, total, windows=...)`.

use std::collections::BTreeMap;

use agentlab_ops::config::parse_duration;
use agentlab_ops::slo::{Counts, SloSpec, SloStatus as CoreStatus, evaluate_counts};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::report::json_to_py;

/// The state of one objective: zone, budget left, burn rates and alerts.
#[pyclass(module = "agentlab_ops", name = "SloStatus", frozen)]
pub struct SloStatus {
    inner: CoreStatus,
}

#[pymethods]
impl SloStatus {
    /// Name of the objective.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Target ratio of good events.
    #[getter]
    fn target(&self) -> f64 {
        self.inner.target
    }
    /// `green`, `yellow`, `red` or `inconclusive`.
    #[getter]
    fn zone(&self) -> &'static str {
        self.inner.zone.as_str()
    }
    /// Fraction of the error budget left (negative when overspent), None without data.
    #[getter]
    fn budget_remaining(&self) -> Option<f64> {
        self.inner.budget_remaining
    }
    /// Error ratio over the period.
    #[getter]
    fn error_ratio(&self) -> Option<f64> {
        self.inner.error_ratio
    }
    /// Burn rate per window (`{"1h": 14.4, ...}`).
    #[getter]
    fn burn_rates(&self) -> BTreeMap<String, Option<f64>> {
        self.inner.burn_rates.clone()
    }
    /// The multiwindow burn-rate alerts and whether each fires.
    #[getter]
    fn alerts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_value(&self.inner.alerts).unwrap_or_default(),
        )
    }
    /// Why the zone is what it is.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    /// Everything as plain data.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &serde_json::to_value(&self.inner).unwrap_or_default())
    }
    fn __repr__(&self) -> String {
        format!(
            "<SloStatus {} {}: {}>",
            self.inner.name,
            self.inner.zone.as_str(),
            self.inner.reason
        )
    }
}

/// Evaluate an objective from event counts: `good`/`total` over the period, plus optional
/// shorter windows for burn rates (`windows={"1h": (good, total), "5m": (good, total)}`).
#[pyfunction]
#[pyo3(signature = (target, good, total, *, name = "slo", period = "30d", min_events = 100, windows = None))]
#[allow(clippy::too_many_arguments)]
fn evaluate_slo(
    target: f64,
    good: u64,
    total: u64,
    name: &str,
    period: &str,
    min_events: u64,
    windows: Option<BTreeMap<String, (u64, u64)>>,
) -> PyResult<SloStatus> {
    if !(target > 0.0 && target < 1.0) {
        return Err(PyValueError::new_err(
            "target must be in (0, 1), e.g. 0.999",
        ));
    }
    let period = parse_duration(period).map_err(PyValueError::new_err)?;
    let mut spec = SloSpec::new(name, target);
    spec.period = period;
    spec.min_events = min_events;
    let mut w = Vec::new();
    for (len, (good, total)) in windows.unwrap_or_default() {
        let len = parse_duration(&len).map_err(PyValueError::new_err)?;
        w.push((len, Counts { good, total }));
    }
    Ok(SloStatus {
        inner: evaluate_counts(&spec, Counts { good, total }, w),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SloStatus>()?;
    m.add_function(wrap_pyfunction!(evaluate_slo, m)?)?;
    Ok(())
}
