//! `agentlab_ops._native`: the pyo3 layer of `import agentlab_ops`.
//!
//! Thin by design (as pydantic-core's or polars' bindings): conversion of arguments and results,
//! GIL release, Ctrl-C, exceptions and the logging bridge. Every behaviour lives in the core
//! crate; the pure-Python package around this module (`python/agentlab_ops`) adds the context
//! managers, the `aio` and `testing` namespaces and the typing stubs.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use agentlab_ops::CancelToken;
use pyo3::prelude::*;

mod catalogue;
mod env;
mod errors;
mod log;
mod report;
mod resume;
mod runbooks;
mod slo;
mod testing;

/// The one tokio runtime every call runs on (sync calls block on it with the GIL released;
/// awaitables are driven by it through pyo3-async-runtimes).
pub(crate) fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name("agentlab-ops")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// How often a blocked call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run `fut` on the runtime with the GIL released, checking for signals meanwhile. On Ctrl-C
/// (`KeyboardInterrupt` from the signal handler) the run's `cancel` token is cancelled and the
/// call waits for the runbook to undo its changes and finish, then raises the
/// `KeyboardInterrupt`; a second Ctrl-C while it waits abandons the wait.
pub(crate) fn block_on<T, F>(py: Python<'_>, cancel: Option<CancelToken>, fut: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut handle = rt().spawn(fut);
    let mut interrupted: Option<PyErr> = None;
    loop {
        let step = py.detach(|| {
            rt().block_on(async { tokio::time::timeout(SIGNAL_POLL, &mut handle).await })
        });
        match step {
            Ok(Ok(value)) => {
                return match interrupted {
                    Some(e) => Err(e),
                    None => Ok(value),
                };
            }
            Ok(Err(join)) => {
                return Err(errors::AgentlabOpsError::new_err(format!(
                    "internal error in agentlab-ops: {join}"
                )));
            }
            Err(_elapsed) => {
                if let Err(e) = py.check_signals() {
                    match (&cancel, interrupted.is_some()) {
                        (Some(token), false) => {
                            token.cancel();
                            interrupted = Some(e);
                        }
                        _ => {
                            handle.abort();
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

/// Run a runbook on a thread of its own that drives it with the runtime's handle: a long run
/// never holds one of the runtime's two workers or its blocking threads (a `gather` of many
/// runbooks cannot starve the ones they spawn), and the future need not be `Send`. Its I/O and
/// spawned tasks still run on the shared runtime.
pub(crate) fn spawn_run<T, F, Fut>(make: F) -> impl Future<Output = PyResult<T>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = rt().handle().clone();
    let spawned = std::thread::Builder::new()
        .name("agentlab-ops-run".into())
        .spawn(move || {
            let _ = tx.send(handle.block_on(make()));
        });
    async move {
        spawned.map_err(|e| {
            errors::AgentlabOpsError::new_err(format!("cannot start the run's thread: {e}"))
        })?;
        rx.await.map_err(|_| {
            errors::AgentlabOpsError::new_err("the run ended without a report (it panicked)")
        })
    }
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    pyo3_async_runtimes::tokio::init_with_runtime(rt()).map_err(|_| {
        errors::AgentlabOpsError::new_err("the asyncio bridge was already initialised")
    })?;
    log::install(py)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    env::register(m)?;
    report::register(m)?;
    runbooks::register(m)?;
    catalogue::register(m)?;
    resume::register(m)?;
    slo::register(m)?;
    testing::register(m)?;
    Ok(())
}
