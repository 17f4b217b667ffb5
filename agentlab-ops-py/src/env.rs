//! `Environment` (what runbooks run against), `Sandbox` and `CancelToken`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agentlab_ops::Notifier as _;
use agentlab_ops::config::Config;
use agentlab_ops::sandbox::{Sandbox as CoreSandbox, Scenario};
use agentlab_ops::{CancelToken as CoreCancel, Environment as CoreEnv, Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{IntoPy, to_py};
use crate::{block_on, rt};

/// A configured environment: the service, its SLOs, backup store, hosts and notifier.
#[pyclass(module = "agentlab_ops", name = "Environment", frozen)]
pub struct Environment {
    pub(crate) inner: Arc<CoreEnv>,
}

impl Environment {
    pub(crate) fn new(env: CoreEnv) -> Self {
        Environment {
            inner: Arc::new(env),
        }
    }

    fn build(py: Python<'_>, cfg: Config) -> PyResult<Self> {
        let env = block_on(py, None, CoreEnv::from_config(cfg))?.py_err()?;
        Ok(Environment::new(env))
    }
}

/// What runbook functions accept as `config`: `None` (discover), a path, or an `Environment`.
/// Returns the environment and whether the call owns it (and must close it afterwards).
pub(crate) fn resolve(
    py: Python<'_>,
    config: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Arc<CoreEnv>, bool)> {
    match config {
        None => Ok((Environment::discover(py, None)?.inner, true)),
        Some(obj) => {
            if let Ok(env) = obj.cast::<Environment>() {
                return Ok((env.get().inner.clone(), false));
            }
            let path: PathBuf = obj.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "config must be None, a path to an environment file, or an Environment",
                )
            })?;
            Ok((Environment::from_file(py, path)?.inner, true))
        }
    }
}

/// Drop `null`s (TOML has none: a `None` in a dict means "not set").
fn strip_nulls(v: serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match v {
        Value::Null => None,
        Value::Object(m) => Some(Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| strip_nulls(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(strip_nulls).collect(),
        )),
        other => Some(other),
    }
}

/// A dict with the environment file's structure as a config: through JSON (what Python can
/// say) and TOML (so errors name the field exactly as for a file); `None` means "not set".
pub(crate) fn config_from_dict(
    py: Python<'_>,
    dict: &Bound<'_, PyDict>,
    origin: &str,
) -> PyResult<Config> {
    let json: String = py
        .import("json")?
        .call_method1("dumps", (dict,))?
        .extract()?;
    let value: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| to_py(Error::config(format!("{origin}: not JSON-like: {e}"))))?;
    let value = strip_nulls(value).unwrap_or(serde_json::Value::Null);
    let text = toml::to_string(&value).map_err(|e| {
        to_py(Error::config(format!(
            "{origin}: cannot be an environment file: {e}"
        )))
    })?;
    Config::from_toml_str(&text, origin).py_err()
}

#[pymethods]
impl Environment {
    /// Load an environment file (TOML), as `agentlab-ops --config FILE` does.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let cfg = Config::from_file(&path).py_err()?;
        Environment::build(py, cfg)
    }

    /// Build an environment from a dict with the environment file's structure
    /// (`{"environment": "staging", "service": {"base_url": "..."}, ...}`). Errors name the
    /// field's path.
    #[staticmethod]
    fn from_dict(py: Python<'_>, config: &Bound<'_, PyDict>) -> PyResult<Self> {
        let cfg = config_from_dict(py, config, "<dict>")?;
        Environment::build(py, cfg)
    }

    /// The discovered environment: `config` if given, then `$AGENTLAB_OPS_CONFIG`, then
    /// `./agentlab-ops.toml`. Raises `ConfigError` when there is none (a script never falls
    /// back to a sandbox silently; use `agentlab_ops.sandbox()` for that).
    #[staticmethod]
    #[pyo3(signature = (config = None))]
    fn discover(py: Python<'_>, config: Option<PathBuf>) -> PyResult<Self> {
        match Config::load(config.as_deref()).py_err()? {
            Some(cfg) => Environment::build(py, cfg),
            None => Err(to_py(
                Error::new(
                    ErrorKind::ConfigInvalid,
                    "no config found (config=..., $AGENTLAB_OPS_CONFIG, ./agentlab-ops.toml); \
                     agentlab_ops.sandbox() gives a simulated one",
                )
                .with_operation("config.discover"),
            )),
        }
    }

    /// The environment's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// The service's base URL.
    #[getter]
    fn base_url(&self) -> String {
        self.inner.config.service.base_url.as_str().to_string()
    }

    /// The backed-up datasets.
    #[getter]
    fn datasets(&self) -> Vec<String> {
        self.inner.datasets()
    }

    /// The hosts' names.
    #[getter]
    fn hosts(&self) -> Vec<String> {
        self.inner
            .hosts
            .iter()
            .map(|h| h.config.name.clone())
            .collect()
    }

    /// Close connections (SSH masters). Runbook functions given a path close what they open;
    /// an `Environment` you hold is closed here, by `with`, or when it is garbage-collected.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let env = self.inner.clone();
        block_on(py, None, async move { env.close().await })
    }

    /// Post a message through the environment's notifier (`[notify]`, Slack): retried with
    /// backoff; raises `ConfigError` when none is configured, the error's class otherwise.
    fn notify(&self, py: Python<'_>, text: String) -> PyResult<()> {
        let Some(n) = self.inner.notifier.clone() else {
            return Err(to_py(
                Error::new(
                    ErrorKind::ConfigInvalid,
                    "no notifier configured ([notify])",
                )
                .with_operation("notify.send"),
            ));
        };
        block_on(py, None, async move { n.notify(&text).await })?.py_err()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let e = &self.inner;
        let store = e
            .backups
            .as_ref()
            .map(|b| b.describe())
            .unwrap_or_else(|| "none".into());
        format!(
            "<Environment {:?}: {} · {} hosts · backups {}>",
            e.name(),
            e.config.service.base_url.as_str(),
            e.hosts.len(),
            store
        )
    }
}

/// A simulated Agent Lab on 127.0.0.1 (HTTP service, filesystem backups, two local hosts).
#[pyclass(module = "agentlab_ops", name = "Sandbox", frozen)]
pub struct Sandbox {
    inner: Mutex<Option<CoreSandbox>>,
    scenario: String,
    base_url: String,
    dir: PathBuf,
    env: Py<Environment>,
}

#[pymethods]
impl Sandbox {
    /// Start a sandbox for a scenario (`healthy`, `degraded`, `budget-exhausted`,
    /// `backups-missing`, `disk-full`, `corrupt-object`, `missing-manifest`, `size-drop`).
    #[new]
    #[pyo3(signature = (scenario = "healthy"))]
    fn new(py: Python<'_>, scenario: &str) -> PyResult<Self> {
        let sc: Scenario = scenario.parse().map_err(to_py)?;
        let (sb, env) = block_on(py, None, async move {
            let mut sb = CoreSandbox::start(sc).await?;
            // A sandbox's runs are not worth journaling next to real ones.
            sb.config_mut().journal.disabled = true;
            let env = sb.environment().await?;
            Ok::<_, Error>((sb, env))
        })?
        .py_err()?;
        Ok(Sandbox {
            scenario: sc.as_str().to_string(),
            base_url: sb.base_url(),
            dir: sb.dir().to_path_buf(),
            inner: Mutex::new(Some(sb)),
            env: Py::new(py, Environment::new(env))?,
        })
    }

    /// The scenario's name.
    #[getter]
    fn scenario(&self) -> String {
        self.scenario.clone()
    }

    /// `http://127.0.0.1:PORT`.
    #[getter]
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The temporary directory (backups, live data, host scripts).
    #[getter]
    fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The environment over the sandbox.
    #[getter]
    fn environment(&self, py: Python<'_>) -> Py<Environment> {
        self.env.clone_ref(py)
    }

    /// Whether it is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().map(|g| g.is_some()).unwrap_or(false)
    }

    /// Stop serving and remove the temporary directory.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let sb = self.inner.lock().ok().and_then(|mut g| g.take());
        if let Some(mut sb) = sb {
            // Dropped inside the runtime: the server task is told to stop there.
            let _ = block_on(py, None, async move {
                sb.stop();
                drop(sb);
            });
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<Sandbox {:?} at {}{}>",
            self.scenario,
            self.base_url,
            if self.running() { "" } else { " (stopped)" }
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(sb) = self.inner.get_mut().ok().and_then(|g| g.take()) {
            let _guard = rt().enter();
            drop(sb);
        }
    }
}

/// Cancels a run from Python (used by `agentlab_ops.aio` when a task is cancelled).
#[pyclass(module = "agentlab_ops", name = "CancelToken", frozen)]
#[derive(Default)]
pub struct CancelToken {
    pub(crate) inner: CoreCancel,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Stop the run: it undoes what it changed and reports `cancelled`.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn __repr__(&self) -> &'static str {
        if self.inner.is_cancelled() {
            "<CancelToken cancelled>"
        } else {
            "<CancelToken>"
        }
    }
}

/// Post a message through the (discovered) environment's notifier.
#[pyfunction]
#[pyo3(signature = (text, config = None))]
fn notify(py: Python<'_>, text: String, config: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let (env, owned) = resolve(py, config)?;
    let e = Environment { inner: env };
    let r = e.notify(py, text);
    if owned {
        e.close(py)?;
    }
    r
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(notify, m)?)?;
    m.add_class::<Environment>()?;
    m.add_class::<Sandbox>()?;
    m.add_class::<CancelToken>()?;
    Ok(())
}
