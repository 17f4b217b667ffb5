//! The memory backends for users' own tests (`agentlab_ops.testing`): assemble them into an
//! `Environment`, tell them to fail or be slow, and assert on the calls they recorded. Each
//! Python object shares its state with the backend inside the environment.

use std::time::Duration;

use agentlab_ops::backup::StoreCall;
use agentlab_ops::backup::{BackupStore, BackupStoreExt};
use agentlab_ops::{
    Environment as CoreEnv, ErrorKind, Faults, MemoryBackupStore as CoreStore,
    MemoryHost as CoreHost, MemoryNotifier as CoreNotifier, MemoryProbe as CoreProbe,
    MemorySloSource as CoreSlo,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::env::Environment;
use crate::errors::IntoPy;

fn kind_arg(kind: &str) -> PyResult<ErrorKind> {
    serde_json::from_value(serde_json::Value::String(kind.into())).map_err(|_| {
        PyValueError::new_err(format!(
            "unknown error kind {kind:?} (not_found, timeout, unavailable, permission_denied, ...)"
        ))
    })
}

fn delay_arg(seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err("delay must be a non-negative number of seconds"))
}

/// The fault methods every double has.
macro_rules! faults {
    ($t:ty) => {
        #[pymethods]
        impl $t {
            /// The next call fails with this kind (`"timeout"`, `"unavailable"`, ...).
            fn fail_next(&self, kind: &str, message: &str) -> PyResult<()> {
                self.faults().fail_next(kind_arg(kind)?, message);
                Ok(())
            }
            /// Every call fails with this kind until `clear_faults()`.
            fn fail_always(&self, kind: &str, message: &str) -> PyResult<()> {
                self.faults().fail_always(kind_arg(kind)?, message);
                Ok(())
            }
            /// Every call takes this long (seconds) before answering.
            fn set_delay(&self, seconds: f64) -> PyResult<()> {
                self.faults().set_delay(delay_arg(seconds)?);
                Ok(())
            }
            /// Remove injected failures and delays.
            fn clear_faults(&self) {
                self.faults().clear();
            }
        }
    };
}

/// A health probe answering from a table (unknown paths answer 404).
#[pyclass(module = "agentlab_ops.testing", name = "MemoryProbe", frozen)]
#[derive(Default)]
pub struct MemoryProbe {
    inner: CoreProbe,
}

impl MemoryProbe {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemoryProbe {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Answer `path` with `status` and `body`.
    fn respond(&self, path: &str, status: u16, body: &str) {
        self.inner.respond(path, status, body);
    }
    /// Answer `path` with 200 and this object as JSON.
    fn respond_json(&self, py: Python<'_>, path: &str, body: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (body,))?
            .extract()?;
        self.inner.respond(path, 200, text);
        Ok(())
    }
    /// A healthy Agent Lab: `/health` and `/health/detailed` answer ok.
    fn healthy(&self) {
        self.inner
            .respond("/health", 200, r#"{"status":"healthy"}"#);
        self.inner.respond(
            "/health/detailed",
            200,
            r#"{"status":"healthy","components":{"sessions":{"status":"ok"},"openrouter":{"status":"ok"}}}"#,
        );
    }
    /// Paths asked, in order.
    #[getter]
    fn calls(&self) -> Vec<String> {
        self.inner.calls.all()
    }
    fn __repr__(&self) -> String {
        format!("<MemoryProbe {} calls>", self.inner.calls.len())
    }
}
faults!(MemoryProbe);

/// SLI counts held in memory.
#[pyclass(module = "agentlab_ops.testing", name = "MemorySloSource", frozen)]
#[derive(Default)]
pub struct MemorySloSource {
    inner: CoreSlo,
}

impl MemorySloSource {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemorySloSource {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Set the counts of one window (`"30d"`, `"1h"`, `"5m"`) of one objective.
    fn set_counts(&self, name: &str, window: &str, good: u64, total: u64) -> PyResult<()> {
        let w = agentlab_ops::config::parse_duration(window).map_err(PyValueError::new_err)?;
        self.inner.set_counts(name, w, good, total);
        Ok(())
    }
    /// How many times the SLI data was fetched.
    #[getter]
    fn fetches(&self) -> usize {
        self.inner.calls.len()
    }
    fn __repr__(&self) -> String {
        format!("<MemorySloSource {} fetches>", self.inner.calls.len())
    }
}
faults!(MemorySloSource);

/// A backup store in memory.
#[pyclass(module = "agentlab_ops.testing", name = "MemoryBackupStore", frozen)]
#[derive(Default)]
pub struct MemoryBackupStore {
    inner: CoreStore,
}

impl MemoryBackupStore {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemoryBackupStore {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Store an object (no faults, not recorded: for arranging a test).
    fn insert(&self, key: &str, data: &[u8]) {
        self.inner.insert(key, data.to_vec());
    }
    /// Remove an object; whether it was there.
    fn remove(&self, key: &str) -> bool {
        self.inner.remove(key)
    }
    /// An object's bytes; raises `NotFoundError`.
    fn get<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyBytes>> {
        let store = self.inner.clone();
        let key = key.to_string();
        let data =
            crate::block_on(py, None, async move { store.get_bytes(&key).await })?.py_err()?;
        Ok(PyBytes::new(py, &data))
    }
    /// Keys under a prefix, sorted.
    #[pyo3(signature = (prefix = ""))]
    fn keys(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        use futures::TryStreamExt;
        let store = self.inner.clone();
        let prefix = prefix.to_string();
        let metas = crate::block_on(py, None, async move {
            store.list(&prefix).try_collect::<Vec<_>>().await
        })?
        .py_err()?;
        Ok(metas.into_iter().map(|m| m.key).collect())
    }
    /// Calls made, in order: `("list", prefix)`, `("head", key)`, `("get", key)`,
    /// `("put", key, size)`.
    #[getter]
    fn calls<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner
            .calls
            .all()
            .into_iter()
            .map(|c| {
                Ok(match c {
                    StoreCall::List(p) => ("list", p).into_pyobject(py)?.into_any(),
                    StoreCall::Head(k) => ("head", k).into_pyobject(py)?.into_any(),
                    StoreCall::Get(k) => ("get", k).into_pyobject(py)?.into_any(),
                    StoreCall::Put(k, n) => ("put", k, n).into_pyobject(py)?.into_any(),
                    #[allow(unreachable_patterns)]
                    other => format!("{other:?}").into_pyobject(py)?.into_any(),
                })
            })
            .collect()
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __repr__(&self) -> String {
        format!(
            "<MemoryBackupStore {} objects, {} calls>",
            self.inner.len(),
            self.inner.calls.len()
        )
    }
}
faults!(MemoryBackupStore);

/// A host that answers commands from a script and holds files in memory.
#[pyclass(module = "agentlab_ops.testing", name = "MemoryHost", frozen)]
pub struct MemoryHost {
    inner: CoreHost,
}

impl MemoryHost {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemoryHost {
    #[new]
    fn new(name: &str) -> Self {
        MemoryHost {
            inner: CoreHost::new(name),
        }
    }
    /// The host's name.
    #[getter]
    fn name(&self) -> String {
        agentlab_ops::RemoteHost::name(&self.inner).to_string()
    }
    /// Answer this exact command line.
    #[pyo3(signature = (program, args, status = 0, stdout = ""))]
    fn respond(&self, program: &str, args: Vec<String>, status: i32, stdout: &str) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.inner.respond(program, &args, status, stdout);
    }
    /// Answer any invocation of `program`.
    #[pyo3(signature = (program, status = 0, stdout = ""))]
    fn respond_any(&self, program: &str, status: i32, stdout: &str) {
        self.inner.respond_any(program, status, stdout);
    }
    /// Script `uptime`, `free`, `df` and `nproc`: 5-minute load, memory used (0..1) and
    /// `{mount: used}` per disk.
    #[pyo3(signature = (load = 0.5, memory = 0.5, disks = None))]
    fn set_resources(&self, load: f64, memory: f64, disks: Option<Vec<(String, f64)>>) {
        let disks = disks.unwrap_or_else(|| vec![("/".to_string(), 0.4)]);
        let d: Vec<(&str, f64)> = disks.iter().map(|(m, f)| (m.as_str(), *f)).collect();
        let _ = self.inner.clone().with_resources(load, memory, &d);
    }
    /// Put a file on the host.
    fn put_file(&self, path: &str, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes: Vec<u8> = match data.extract::<String>() {
            Ok(s) => s.into_bytes(),
            Err(_) => data.extract::<Vec<u8>>()?,
        };
        self.inner.put_file(path, bytes);
        Ok(())
    }
    /// A file's bytes, or None.
    fn file<'py>(&self, py: Python<'py>, path: &str) -> Option<Bound<'py, PyBytes>> {
        self.inner.file(path).map(|b| PyBytes::new(py, &b))
    }
    /// Remove a file; whether it was there.
    fn remove_file(&self, path: &str) -> bool {
        self.inner.remove_file(path)
    }
    /// Commands run, in order, each as `[program, *args]`.
    #[getter]
    fn calls(&self) -> Vec<Vec<String>> {
        self.inner
            .calls
            .all()
            .into_iter()
            .map(|c| std::iter::once(c.program).chain(c.args).collect())
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "<MemoryHost {} {} calls>",
            agentlab_ops::RemoteHost::name(&self.inner),
            self.inner.calls.len()
        )
    }
}
faults!(MemoryHost);

/// Records notifications instead of sending them.
#[pyclass(module = "agentlab_ops.testing", name = "MemoryNotifier", frozen)]
#[derive(Default)]
pub struct MemoryNotifier {
    inner: CoreNotifier,
}

impl MemoryNotifier {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemoryNotifier {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Messages sent, in order.
    #[getter]
    fn sent(&self) -> Vec<String> {
        self.inner.sent.all()
    }
    fn __repr__(&self) -> String {
        format!("<MemoryNotifier {} sent>", self.inner.sent.len())
    }
}
faults!(MemoryNotifier);

/// Deployments in memory: every workflow succeeds at once unless scripted otherwise.
#[pyclass(module = "agentlab_ops.testing", name = "MemoryDeployer", frozen)]
#[derive(Default)]
pub struct MemoryDeployer {
    inner: agentlab_ops::MemoryDeployer,
}

impl MemoryDeployer {
    fn faults(&self) -> &Faults {
        &self.inner.faults
    }
}

#[pymethods]
impl MemoryDeployer {
    #[new]
    fn new() -> Self {
        Self::default()
    }
    /// Runs of `workflow` end with `conclusion` (`success`, `failure`, `cancelled`,
    /// `timed_out`) after `polls` status reads; `conclusion=None` makes them never end.
    #[pyo3(signature = (workflow, conclusion = "success", polls = 0))]
    fn script(&self, workflow: &str, conclusion: Option<&str>, polls: u32) -> PyResult<()> {
        use agentlab_ops::deploy::{Conclusion, Script};
        let script = match conclusion {
            None => Script::Hangs,
            Some(c) => Script::Completes {
                conclusion: match c {
                    "success" => Conclusion::Success,
                    "failure" => Conclusion::Failure,
                    "cancelled" => Conclusion::Cancelled,
                    "timed_out" => Conclusion::TimedOut,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "unknown conclusion {other:?}"
                        )));
                    }
                },
                polls,
            },
        };
        self.inner.script(workflow, script);
        Ok(())
    }
    /// The CI checks every commit reports: how many, and the names that failed or are pending.
    #[pyo3(signature = (total, failed = None, pending = None))]
    fn set_checks(&self, total: usize, failed: Option<Vec<String>>, pending: Option<Vec<String>>) {
        self.inner.set_checks(agentlab_ops::deploy::CheckSummary {
            total,
            failed: failed.unwrap_or_default(),
            pending: pending.unwrap_or_default(),
        });
    }
    /// Workflows dispatched, in order.
    #[getter]
    fn dispatched(&self) -> Vec<String> {
        self.inner.dispatched()
    }
    /// Every call: `("dispatch", workflow, inputs)`, `("status", run_id)`, `("checks", commit)`.
    #[getter]
    fn calls<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        use agentlab_ops::deploy::DeployCall;
        self.inner
            .calls
            .all()
            .into_iter()
            .map(|c| {
                Ok(match c {
                    DeployCall::Dispatch(w, i) => ("dispatch", w, i).into_pyobject(py)?.into_any(),
                    DeployCall::Status(id) => ("status", id).into_pyobject(py)?.into_any(),
                    DeployCall::Checks(c) => ("checks", c).into_pyobject(py)?.into_any(),
                    #[allow(unreachable_patterns)]
                    other => format!("{other:?}").into_pyobject(py)?.into_any(),
                })
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        format!("<MemoryDeployer dispatched {:?}>", self.inner.dispatched())
    }
}
faults!(MemoryDeployer);

/// Assemble an `Environment` from memory backends. `slos` maps objective names to targets;
/// `settings` takes any part of the environment file as a dict (`{"thresholds": {...},
/// "backups": {"data_dir": "/srv/data"}, "handover": {...}}`).
#[pyfunction]
#[pyo3(signature = (name = "test", *, probe = None, slo_source = None, slos = None, backups = None, datasets = None, hosts = None, notifier = None, deployer = None, settings = None))]
#[allow(clippy::too_many_arguments)]
fn environment(
    py: Python<'_>,
    name: &str,
    probe: Option<PyRef<'_, MemoryProbe>>,
    slo_source: Option<PyRef<'_, MemorySloSource>>,
    slos: Option<std::collections::BTreeMap<String, f64>>,
    backups: Option<PyRef<'_, MemoryBackupStore>>,
    datasets: Option<Vec<String>>,
    hosts: Option<Vec<PyRef<'_, MemoryHost>>>,
    notifier: Option<PyRef<'_, MemoryNotifier>>,
    deployer: Option<PyRef<'_, MemoryDeployer>>,
    settings: Option<&Bound<'_, PyDict>>,
) -> PyResult<Environment> {
    let mut config = match settings {
        Some(s) => {
            let s = s.copy()?;
            if !s.contains("environment")? {
                s.set_item("environment", name)?;
            }
            let service = PyDict::new(py);
            service.set_item("base_url", "http://memory.invalid")?;
            if let Some(given) = s.get_item("service")? {
                service.update(given.cast::<PyDict>()?.as_mapping())?;
            }
            s.set_item("service", service)?;
            if let Some(b) = s.get_item("backups")? {
                let b = b.cast::<PyDict>()?.copy()?;
                b.set_item("store", "memory")?;
                s.set_item("backups", b)?;
            }
            let journal = PyDict::new(py);
            journal.set_item("disabled", true)?;
            if let Some(j) = s.get_item("journal")? {
                journal.update(j.cast::<PyDict>()?.as_mapping())?;
            }
            s.set_item("journal", journal)?;
            Some(crate::env::config_from_dict(py, &s, "<settings>")?)
        }
        None => None,
    };
    let mut b = CoreEnv::builder(name);
    if let Some(p) = &probe {
        b = b.probe(p.inner.clone());
    }
    if let Some(s) = &slo_source {
        b = b.slo_source(s.inner.clone());
    }
    if let Some(store) = &backups {
        let ds: Vec<String> = datasets.clone().unwrap_or_else(|| {
            config
                .as_ref()
                .and_then(|c| c.backups.as_ref().map(|b| b.datasets.clone()))
                .unwrap_or_else(|| vec!["sessions".into(), "telemetry".into()])
        });
        let ds: Vec<&str> = ds.iter().map(String::as_str).collect();
        b = b.backups(store.inner.clone(), &ds);
    }
    for h in hosts.iter().flatten() {
        b = b.host(h.inner.clone());
    }
    if let Some(n) = &notifier {
        b = b.notifier(n.inner.clone());
    }
    if let Some(d) = &deployer {
        b = b.deployer(d.inner.clone());
    }
    if let Some(mut cfg) = config.take() {
        b = b.configure(move |c| {
            // The builder's backups section (store kind, datasets) wins over the settings'.
            if cfg.deploy.is_none() {
                cfg.deploy = c.deploy.take();
            }
            match (c.backups.take(), cfg.backups.as_mut()) {
                (Some(built), Some(given)) => {
                    given.store = built.store;
                    given.datasets = built.datasets;
                }
                (Some(built), None) => cfg.backups = Some(built),
                _ => {}
            }
            if cfg.slos.is_empty() {
                cfg.slos = std::mem::take(&mut c.slos);
            }
            *c = cfg;
        });
    }
    if let Some(slos) = slos {
        for (n, t) in slos {
            b = b.slo(&n, t);
        }
    }
    Ok(Environment::new(b.build()))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MemoryProbe>()?;
    m.add_class::<MemorySloSource>()?;
    m.add_class::<MemoryBackupStore>()?;
    m.add_class::<MemoryHost>()?;
    m.add_class::<MemoryNotifier>()?;
    m.add_class::<MemoryDeployer>()?;
    m.add_function(wrap_pyfunction!(environment, m)?)?;
    Ok(())
}
