//! The runbooks as functions: `morning_check`, `handover`, `take_backup`, `verify_backups`,
//! `recover_data`, each synchronous (GIL released, Ctrl-C aware) and as an awaitable
//! (`aio_*`, wrapped by `agentlab_ops.aio`).

use std::future::Future;
use std::sync::Arc;

use agentlab_ops::config::{OutstandingItem, ScheduleItem};
use agentlab_ops::runbook::{
    BlueGreenOptions, DeployOptions, RollbackOptions, blue_green_deploy as core_blue_green,
    rollback as core_rollback, standard_deploy as core_standard,
};
use agentlab_ops::runbook::{
    HandoverOptions, MorningOptions, RecoverOptions, RecoveryPoint, Sample, TakeOptions,
    VerifyOptions, handover as core_handover, morning_check as core_morning,
    recover_data as core_recover, take_backup as core_take, verify_backups as core_verify,
};
use agentlab_ops::{
    CancelToken as CoreCancel, Environment as CoreEnv, Report as CoreReport, RunOptions,
};
use chrono::NaiveDate;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyString};

use crate::env::{CancelToken, resolve};
use crate::report::Report;

/// `"2026-11-29"`, a `datetime.date` or a `datetime.datetime` (its date).
fn date_arg(d: Option<&Bound<'_, PyAny>>) -> PyResult<Option<NaiveDate>> {
    let Some(d) = d else { return Ok(None) };
    if d.is_none() {
        return Ok(None);
    }
    if d.is_instance_of::<PyString>() {
        let s: String = d.extract()?;
        let s = s.as_str();
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("date {s:?} is not YYYY-MM-DD")));
    }
    let (y, m, day): (i32, u32, u32) = (
        d.getattr("year")?.extract()?,
        d.getattr("month")?.extract()?,
        d.getattr("day")?.extract()?,
    );
    NaiveDate::from_ymd_opt(y, m, day)
        .map(Some)
        .ok_or_else(|| PyValueError::new_err("not a valid date"))
}

/// `None`, `"all"`, an int (that many objects), a float in (0, 1] (that fraction), or a string
/// as the CLI takes it (`"200"`, `"10%"`).
fn sample_arg(s: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Sample>> {
    let Some(s) = s else { return Ok(None) };
    if s.is_none() {
        return Ok(None);
    }
    if s.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(
            "sample must be 'all', an int, a float or 'N%'",
        ));
    }
    if let Ok(i) = s.cast::<PyInt>() {
        let n: i64 = i.extract()?;
        return u64::try_from(n)
            .map(|n| Some(Sample::Count(n)))
            .map_err(|_| PyValueError::new_err("sample must not be negative"));
    }
    if let Ok(f) = s.cast::<PyFloat>() {
        let f = f.value();
        if !(f > 0.0 && f <= 1.0) {
            return Err(PyValueError::new_err(
                "a fractional sample must be in (0, 1]",
            ));
        }
        return Ok(Some(Sample::Fraction(f)));
    }
    if s.is_instance_of::<PyString>() {
        let text: String = s.extract()?;
        return Sample::parse(&text)
            .map(Some)
            .map_err(PyValueError::new_err);
    }
    Err(PyTypeError::new_err(
        "sample must be 'all', an int, a float or 'N%'",
    ))
}

/// A list of dicts (or None) through JSON into typed items.
fn items_arg<T: serde::de::DeserializeOwned>(
    py: Python<'_>,
    what: &str,
    v: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<T>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if v.is_none() {
        return Ok(Vec::new());
    }
    let json: String = py.import("json")?.call_method1("dumps", (v,))?.extract()?;
    serde_json::from_str(&json).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

fn run_options(dry_run: bool, cancel: &CoreCancel) -> RunOptions {
    RunOptions::default()
        .dry_run(dry_run)
        .cancel_on(cancel.clone())
}

/// Start a runbook on its own thread; an environment opened for this call is closed after it.
fn start<F, Fut>(
    env: Arc<CoreEnv>,
    owned: bool,
    body: F,
) -> impl Future<Output = PyResult<CoreReport>> + Send + 'static
where
    F: FnOnce(Arc<CoreEnv>) -> Fut + Send + 'static,
    Fut: Future<Output = CoreReport>,
{
    crate::spawn_run(move || async move {
        let r = body(env.clone()).await;
        if owned {
            env.close().await;
        }
        r
    })
}

/// Run a runbook synchronously: the GIL is released; Ctrl-C cancels the run (its undo steps
/// run) and raises `KeyboardInterrupt`. An environment opened for this call is closed after.
fn run_sync<F, Fut>(
    py: Python<'_>,
    env: Arc<CoreEnv>,
    owned: bool,
    cancel: CoreCancel,
    body: F,
) -> PyResult<Report>
where
    F: FnOnce(Arc<CoreEnv>) -> Fut + Send + 'static,
    Fut: Future<Output = CoreReport>,
{
    let report = crate::block_on(py, Some(cancel), start(env, owned, body))??;
    Ok(Report::from(report))
}

/// The awaitable version: the run goes on the shared runtime; `agentlab_ops.aio` cancels the
/// token when the asyncio task is cancelled.
fn run_async<'py, F, Fut>(
    py: Python<'py>,
    env: Arc<CoreEnv>,
    owned: bool,
    body: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: FnOnce(Arc<CoreEnv>) -> Fut + Send + 'static,
    Fut: Future<Output = CoreReport>,
{
    let run = start(env, owned, body);
    pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(Report::from(run.await?)) })
}

fn token(cancel: Option<&CancelToken>) -> CoreCancel {
    cancel.map(|c| c.inner.clone()).unwrap_or_default()
}

macro_rules! both {
    ($sync:ident, $aio:ident, $prepare:ident, ($($arg:ident : $ty:ty = $default:tt),*), $call:expr) => {
        #[pyfunction]
        #[pyo3(signature = (config = None, *, $($arg = $default,)* dry_run = false))]
        #[allow(clippy::too_many_arguments)]
        fn $sync(
            py: Python<'_>,
            config: Option<&Bound<'_, PyAny>>,
            $($arg: $ty,)*
            dry_run: bool,
        ) -> PyResult<Report> {
            let cancel = CoreCancel::new();
            let opts = $prepare(py, $($arg,)* run_options(dry_run, &cancel))?;
            let (env, owned) = resolve(py, config)?;
            run_sync(py, env, owned, cancel, move |env| async move { $call(&env, &opts).await })
        }

        #[pyfunction]
        #[pyo3(signature = (config = None, *, $($arg = $default,)* dry_run = false, cancel = None))]
        #[allow(clippy::too_many_arguments)]
        fn $aio<'py>(
            py: Python<'py>,
            config: Option<&Bound<'py, PyAny>>,
            $($arg: $ty,)*
            dry_run: bool,
            cancel: Option<PyRef<'py, CancelToken>>,
        ) -> PyResult<Bound<'py, PyAny>> {
            let cancel = token(cancel.as_deref());
            let opts = $prepare(py, $($arg,)* run_options(dry_run, &cancel))?;
            let (env, owned) = resolve(py, config)?;
            run_async(py, env, owned, move |env| async move { $call(&env, &opts).await })
        }
    };
}

fn prep_morning(
    _py: Python<'_>,
    date: Option<&Bound<'_, PyAny>>,
    run: RunOptions,
) -> PyResult<MorningOptions> {
    let mut o = MorningOptions::default().run(run);
    o.date = date_arg(date)?;
    Ok(o)
}

both!(morning_check, aio_morning_check, prep_morning, (date: Option<&Bound<'_, PyAny>> = None), core_morning);

#[allow(clippy::too_many_arguments)]
fn prep_verify(
    _py: Python<'_>,
    date: Option<&Bound<'_, PyAny>>,
    sample: Option<&Bound<'_, PyAny>>,
    seed: u64,
    restore_test: bool,
    run: RunOptions,
) -> PyResult<VerifyOptions> {
    let mut o = VerifyOptions::default()
        .seed(seed)
        .restore_test(restore_test)
        .run(run);
    o.date = date_arg(date)?;
    o.sample = sample_arg(sample)?;
    Ok(o)
}

both!(
    verify_backups,
    aio_verify_backups,
    prep_verify,
    (date: Option<&Bound<'_, PyAny>> = None, sample: Option<&Bound<'_, PyAny>> = None, seed: u64 = 0, restore_test: bool = false),
    core_verify
);

fn prep_take(
    _py: Python<'_>,
    date: Option<&Bound<'_, PyAny>>,
    host: Option<String>,
    run: RunOptions,
) -> PyResult<TakeOptions> {
    let mut o = TakeOptions::default().run(run);
    o.date = date_arg(date)?;
    o.host = host;
    Ok(o)
}

both!(
    take_backup,
    aio_take_backup,
    prep_take,
    (date: Option<&Bound<'_, PyAny>> = None, host: Option<String> = None),
    core_take
);

fn prep_recover(
    _py: Python<'_>,
    date: Option<&Bound<'_, PyAny>>,
    before: Option<&Bound<'_, PyAny>>,
    host: Option<String>,
    run: RunOptions,
) -> PyResult<RecoverOptions> {
    let point = match (date_arg(date)?, date_arg(before)?) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err("give date or before, not both"));
        }
        (Some(d), None) => RecoveryPoint::Date(d),
        (None, Some(b)) => RecoveryPoint::OnOrBefore(b),
        (None, None) => RecoveryPoint::Latest,
    };
    let mut o = RecoverOptions::default().point(point).run(run);
    o.host = host;
    Ok(o)
}

both!(
    recover_data,
    aio_recover_data,
    prep_recover,
    (date: Option<&Bound<'_, PyAny>> = None, before: Option<&Bound<'_, PyAny>> = None, host: Option<String> = None),
    core_recover
);

#[allow(clippy::too_many_arguments)]
fn prep_handover(
    py: Python<'_>,
    notify: bool,
    primary: Option<String>,
    backup: Option<String>,
    outstanding: Option<&Bound<'_, PyAny>>,
    schedule: Option<&Bound<'_, PyAny>>,
    run: RunOptions,
) -> PyResult<HandoverOptions> {
    let mut o = HandoverOptions::default().notify(notify).run(run);
    o.primary = primary;
    o.backup = backup;
    o.outstanding = items_arg::<OutstandingItem>(py, "outstanding", outstanding)?;
    o.schedule = items_arg::<ScheduleItem>(py, "schedule", schedule)?;
    Ok(o)
}

both!(
    handover,
    aio_handover,
    prep_handover,
    (notify: bool = false, primary: Option<String> = None, backup: Option<String> = None, outstanding: Option<&Bound<'_, PyAny>> = None, schedule: Option<&Bound<'_, PyAny>> = None),
    core_handover
);

fn prep_standard(
    _py: Python<'_>,
    version: Option<String>,
    force: Option<String>,
    high_risk: bool,
    run: RunOptions,
) -> PyResult<DeployOptions> {
    let mut o = DeployOptions::default();
    o.version = version;
    o.force = force;
    o.high_risk = high_risk;
    o.run = run;
    Ok(o)
}

both!(
    standard_deploy,
    aio_standard_deploy,
    prep_standard,
    (version: Option<String> = None, force: Option<String> = None, high_risk: bool = false),
    core_standard
);

/// Pause, resume or abort a blue-green rollout from another thread or task: it stops before its
/// next traffic step.
#[pyclass(module = "agentlab_ops", name = "RolloutControl", frozen)]
#[derive(Default)]
pub struct RolloutControl {
    inner: agentlab_ops::runbook::WaveControl,
}

#[pymethods]
impl RolloutControl {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Stop before the next step until `resume()` (at most `blue_green.max_pause`).
    fn pause(&self) {
        self.inner.pause();
    }
    /// Go on after a pause.
    fn resume(&self) {
        self.inner.resume();
    }
    /// Stop before the next step; traffic goes back to blue.
    fn abort(&self, reason: &str) {
        self.inner.abort(reason);
    }
    /// Whether it is paused.
    #[getter]
    fn paused(&self) -> bool {
        self.inner.is_paused()
    }
    fn __repr__(&self) -> String {
        format!(
            "<RolloutControl{}>",
            if self.inner.is_paused() {
                " paused"
            } else {
                ""
            }
        )
    }
}

fn prep_blue_green(
    _py: Python<'_>,
    version: Option<String>,
    force: Option<String>,
    control: Option<PyRef<'_, RolloutControl>>,
    run: RunOptions,
) -> PyResult<BlueGreenOptions> {
    let mut o = BlueGreenOptions::default();
    o.version = version;
    o.force = force;
    if let Some(c) = control {
        o.control = c.inner.clone();
    }
    o.run = run;
    Ok(o)
}

both!(
    blue_green_deploy,
    aio_blue_green_deploy,
    prep_blue_green,
    (version: Option<String> = None, force: Option<String> = None, control: Option<PyRef<'_, RolloutControl>> = None),
    core_blue_green
);

fn prep_rollback(
    _py: Python<'_>,
    reason: Option<String>,
    to: Option<String>,
    run: RunOptions,
) -> PyResult<RollbackOptions> {
    let mut o = RollbackOptions::default();
    o.reason = reason.unwrap_or_else(|| "manual rollback".into());
    o.to = to;
    o.run = run;
    Ok(o)
}

both!(
    rollback,
    aio_rollback,
    prep_rollback,
    (reason: Option<String> = None, to: Option<String> = None),
    core_rollback
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RolloutControl>()?;
    for f in [
        wrap_pyfunction!(standard_deploy, m)?,
        wrap_pyfunction!(aio_standard_deploy, m)?,
        wrap_pyfunction!(blue_green_deploy, m)?,
        wrap_pyfunction!(aio_blue_green_deploy, m)?,
        wrap_pyfunction!(rollback, m)?,
        wrap_pyfunction!(aio_rollback, m)?,
    ] {
        m.add_function(f)?;
    }
    m.add_function(wrap_pyfunction!(morning_check, m)?)?;
    m.add_function(wrap_pyfunction!(aio_morning_check, m)?)?;
    m.add_function(wrap_pyfunction!(verify_backups, m)?)?;
    m.add_function(wrap_pyfunction!(aio_verify_backups, m)?)?;
    m.add_function(wrap_pyfunction!(take_backup, m)?)?;
    m.add_function(wrap_pyfunction!(aio_take_backup, m)?)?;
    m.add_function(wrap_pyfunction!(recover_data, m)?)?;
    m.add_function(wrap_pyfunction!(aio_recover_data, m)?)?;
    m.add_function(wrap_pyfunction!(handover, m)?)?;
    m.add_function(wrap_pyfunction!(aio_handover, m)?)?;
    Ok(())
}
