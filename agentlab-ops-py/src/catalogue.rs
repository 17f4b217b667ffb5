//! Any runbook of the catalogue by name: `agentlab_ops.run("backup_verify", env, sample="10%")`
//! (and `aio.run`). The options go to the core as JSON, parsed and validated there: the same
//! errors as the command and Lua. A new runbook needs no code here.

use std::sync::Arc;

use agentlab_ops::runbook::registry;
use agentlab_ops::{CancelToken as CoreCancel, Environment as CoreEnv, RunOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::env::{CancelToken, resolve};
use crate::report::Report;

/// Options as JSON (dates given as `datetime.date` become ISO strings).
fn options_json(
    py: Python<'_>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<serde_json::Value> {
    let Some(o) = options else {
        return Ok(serde_json::Value::Null);
    };
    let json = py.import("json")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.eval(c"str", None, None)?)?;
    let text: String = json.call_method("dumps", (o,), Some(&kwargs))?.extract()?;
    serde_json::from_str(&text).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

fn prepare(
    py: Python<'_>,
    name: &str,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<(&'static registry::Definition, serde_json::Value)> {
    let def = registry::get(name).map_err(crate::errors::to_py)?;
    let v = options_json(py, options)?;
    def.check(&v).map_err(crate::errors::to_py)?;
    Ok((def, v))
}

async fn go(
    def: &'static registry::Definition,
    env: Arc<CoreEnv>,
    v: serde_json::Value,
    run: RunOptions,
    owned: bool,
) -> agentlab_ops::Result<agentlab_ops::Report> {
    let r = def.run(&env, v, run).await;
    if owned {
        env.close().await;
    }
    r
}

/// Run the runbook `name` (its name, an alias or its command path) with `**options`.
#[pyfunction]
#[pyo3(signature = (name, config = None, *, dry_run = false, **options))]
fn run(
    py: Python<'_>,
    name: &str,
    config: Option<&Bound<'_, PyAny>>,
    dry_run: bool,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Report> {
    let (def, v) = prepare(py, name, options)?;
    let cancel = CoreCancel::new();
    let run = RunOptions::default()
        .dry_run(dry_run)
        .cancel_on(cancel.clone());
    let (env, owned) = resolve(py, config)?;
    let fut = crate::spawn_run(move || go(def, env, v, run, owned));
    let report = crate::block_on(py, Some(cancel), fut)??;
    Ok(Report::from(report.map_err(crate::errors::to_py)?))
}

/// The awaitable [`run`].
#[pyfunction]
#[pyo3(signature = (name, config = None, *, dry_run = false, cancel = None, **options))]
fn aio_run<'py>(
    py: Python<'py>,
    name: &str,
    config: Option<&Bound<'py, PyAny>>,
    dry_run: bool,
    cancel: Option<PyRef<'py, CancelToken>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (def, v) = prepare(py, name, options)?;
    let cancel = cancel.map(|c| c.inner.clone()).unwrap_or_default();
    let run = RunOptions::default().dry_run(dry_run).cancel_on(cancel);
    let (env, owned) = resolve(py, config)?;
    let fut = crate::spawn_run(move || go(def, env, v, run, owned));
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        Ok(Report::from(fut.await?.map_err(crate::errors::to_py)?))
    })
}

/// Every runbook: `[{"name", "command", "aliases", "summary", "changes", "options"}]`.
#[pyfunction]
fn runbooks(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let list: Vec<serde_json::Value> = registry::all().iter().map(|d| d.to_json()).collect();
    let text = serde_json::to_string(&list).unwrap_or_default();
    py.import("json")?.call_method1("loads", (text,))
}

/// The drill: every runbook (or those named) against the sandbox scenarios it should catch;
/// `{"cases": [...], "uncovered": [...], "passed": bool}`.
#[pyfunction]
#[pyo3(signature = (*runbooks))]
fn drill(py: Python<'_>, runbooks: Vec<String>) -> PyResult<Bound<'_, PyAny>> {
    for n in &runbooks {
        registry::get(n).map_err(crate::errors::to_py)?;
    }
    let fut = crate::spawn_run(move || async move { agentlab_ops::drill::run(&runbooks).await });
    let r = crate::block_on(py, None, fut)??;
    let text = serde_json::to_string(&r).unwrap_or_default();
    py.import("json")?.call_method1("loads", (text,))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(drill, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(aio_run, m)?)?;
    m.add_function(wrap_pyfunction!(runbooks, m)?)?;
    Ok(())
}
