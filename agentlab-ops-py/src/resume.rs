//! `agentlab_ops.resume(env, run_id)` and `agentlab_ops.unfinished(env)`: take over a run that
//! stopped half-way (its runner killed) from its run log, as `agentlab-ops resume` does.

use agentlab_ops::runbook::resume::{self as core, ResumeRequest};
use agentlab_ops::{CancelToken as CoreCancel, RunOptions};
use pyo3::prelude::*;

use crate::env::resolve;
use crate::report::Report;

/// Resume the run `run_id` (None: the newest unfinished run of the environment): the steps
/// it finished are not run again, the one in flight is checked (or repeated when harmless;
/// else name it in `done` or `redo`), a failing run finishes its undos.
#[pyfunction]
#[pyo3(signature = (config = None, run_id = None, *, done = Vec::new(), redo = Vec::new()))]
fn resume(
    py: Python<'_>,
    config: Option<&Bound<'_, PyAny>>,
    run_id: Option<String>,
    done: Vec<String>,
    redo: Vec<String>,
) -> PyResult<Report> {
    let mut req = match run_id {
        Some(id) => ResumeRequest::run(id),
        None => ResumeRequest::last(),
    };
    req.done = done;
    req.redo = redo;
    let cancel = CoreCancel::new();
    let run = RunOptions::default().cancel_on(cancel.clone());
    let (env, owned) = resolve(py, config)?;
    let fut = crate::spawn_run(move || async move {
        let r = core::resume(&env, &req, run).await;
        if owned {
            env.close().await;
        }
        r
    });
    let report = crate::block_on(py, Some(cancel), fut)??;
    Ok(Report::from(report.map_err(crate::errors::to_py)?))
}

/// The unfinished runs of the environment, newest first: `[{"run_id", "runbook",
/// "started_at", "attempts", "done", "in_flight", "failing", "log"}]`.
#[pyfunction]
#[pyo3(signature = (config = None))]
fn unfinished<'py>(
    py: Python<'py>,
    config: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (env, _) = resolve(py, config)?;
    let list = core::unfinished(&env).map_err(crate::errors::to_py)?;
    let text = serde_json::to_string(&list).unwrap_or_default();
    py.import("json")?.call_method1("loads", (text,))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(unfinished, m)?)?;
    Ok(())
}
