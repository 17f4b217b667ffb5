//! One Python exception class per core error kind, under `AgentlabOpsError`.

use agentlab_ops::{Error, ErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    _native,
    AgentlabOpsError,
    PyException,
    "Base of every agentlab-ops error; carries `kind`, `operation`, `context` and `temporary`."
);
create_exception!(
    _native,
    ConfigError,
    AgentlabOpsError,
    "The configuration is malformed or inconsistent."
);
create_exception!(
    _native,
    NotFoundError,
    AgentlabOpsError,
    "The thing asked for does not exist."
);
create_exception!(
    _native,
    PermissionDeniedError,
    AgentlabOpsError,
    "The caller is known but not allowed."
);
create_exception!(
    _native,
    UnauthenticatedError,
    AgentlabOpsError,
    "The caller could not be authenticated."
);
create_exception!(
    _native,
    UnsupportedError,
    AgentlabOpsError,
    "The backend does not support this operation."
);
create_exception!(
    _native,
    RateLimitedError,
    AgentlabOpsError,
    "The backend asked us to slow down."
);
create_exception!(
    _native,
    OpsTimeoutError,
    AgentlabOpsError,
    "An operation did not finish within its deadline."
);
create_exception!(
    _native,
    ConflictError,
    AgentlabOpsError,
    "The state of the world conflicts with the request."
);
create_exception!(
    _native,
    UnavailableError,
    AgentlabOpsError,
    "Could not reach the other side."
);
create_exception!(
    _native,
    InvalidResponseError,
    AgentlabOpsError,
    "The other side answered with something unreadable."
);
create_exception!(
    _native,
    OpsCancelledError,
    AgentlabOpsError,
    "The run was cancelled."
);
create_exception!(_native, UnexpectedError, AgentlabOpsError, "Anything else.");

/// The class for a kind.
fn class_of(py: Python<'_>, kind: ErrorKind) -> Bound<'_, pyo3::types::PyType> {
    match kind {
        ErrorKind::ConfigInvalid => py.get_type::<ConfigError>(),
        ErrorKind::NotFound => py.get_type::<NotFoundError>(),
        ErrorKind::PermissionDenied => py.get_type::<PermissionDeniedError>(),
        ErrorKind::Unauthenticated => py.get_type::<UnauthenticatedError>(),
        ErrorKind::Unsupported => py.get_type::<UnsupportedError>(),
        ErrorKind::RateLimited => py.get_type::<RateLimitedError>(),
        ErrorKind::Timeout => py.get_type::<OpsTimeoutError>(),
        ErrorKind::Conflict => py.get_type::<ConflictError>(),
        ErrorKind::Unavailable => py.get_type::<UnavailableError>(),
        ErrorKind::InvalidResponse => py.get_type::<InvalidResponseError>(),
        ErrorKind::Cancelled => py.get_type::<OpsCancelledError>(),
        _ => py.get_type::<UnexpectedError>(),
    }
}

/// The Python exception for a core error, with its attributes set. Messages pass the secret
/// scrubber once more on the way out.
pub(crate) fn to_py(e: Error) -> PyErr {
    Python::attach(|py| {
        let msg = agentlab_ops::secret::redact(&e.to_string());
        let build = || -> PyResult<PyErr> {
            let class = class_of(py, e.kind());
            let exc = class.call1((msg.clone(),))?;
            exc.setattr("kind", e.kind().as_str())?;
            exc.setattr("operation", e.operation())?;
            let ctx = PyDict::new(py);
            for (k, v) in e.context() {
                ctx.set_item(*k, agentlab_ops::secret::redact(v))?;
            }
            exc.setattr("context", ctx)?;
            exc.setattr("temporary", e.is_temporary())?;
            exc.setattr("message", agentlab_ops::secret::redact(e.message()))?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|err| err)
    })
}

/// `?` on core results inside pyo3 functions.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for agentlab_ops::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AgentlabOpsError", py.get_type::<AgentlabOpsError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add(
        "PermissionDeniedError",
        py.get_type::<PermissionDeniedError>(),
    )?;
    m.add(
        "UnauthenticatedError",
        py.get_type::<UnauthenticatedError>(),
    )?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("RateLimitedError", py.get_type::<RateLimitedError>())?;
    m.add("OpsTimeoutError", py.get_type::<OpsTimeoutError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add(
        "InvalidResponseError",
        py.get_type::<InvalidResponseError>(),
    )?;
    m.add("OpsCancelledError", py.get_type::<OpsCancelledError>())?;
    m.add("UnexpectedError", py.get_type::<UnexpectedError>())?;
    m.add_function(wrap_pyfunction!(_raise_kind, m)?)?;
    Ok(())
}

/// Raise the exception of a kind (`"not_found"`...): lets tests check the mapping of every kind.
#[pyfunction]
fn _raise_kind(kind: &str, message: &str) -> PyResult<()> {
    let k: ErrorKind = serde_json::from_value(serde_json::Value::String(kind.into()))
        .map_err(|_| pyo3::exceptions::PyValueError::new_err(format!("unknown kind {kind:?}")))?;
    Err(to_py(
        Error::new(k, message)
            .with_operation("test.raise")
            .with_context("key", "sessions/20261129/session-001.json"),
    ))
}
