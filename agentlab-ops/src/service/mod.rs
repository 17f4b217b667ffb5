//! `ServiceManager`: start, stop, restart and signal the service on one host, and say which
//! of its processes are alive.
//!
//! Backends: [`Systemd`] (`systemctl` on a [`RemoteHost`]), [`ProcessManager`] (a plain
//! process for hosts without systemd: a start command, a pid file, the argv that identifies
//! it — never a broad `pkill -f`), and [`MemoryServiceManager`] (scripted behaviours, recorded
//! calls). [`from_config`] builds one per host from `[service_manager]`, with the host's
//! health probe beside it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ManagerKind, fill_host};
use crate::error::{Error, Result};
use crate::host::HostEntry;
use crate::probe::{HealthProbe, HttpProbe};
use crate::retry::RetryPolicy;

mod memory;
mod process;
mod systemd;

pub use memory::{MemoryServiceManager, ServiceBehaviour, ServiceCall};
pub use process::ProcessManager;
pub use systemd::Systemd;

/// A signal sent to the service's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// Ask to stop.
    Term,
    /// Stop now.
    Kill,
    /// Reload.
    Hup,
}

impl Signal {
    /// `TERM`, `KILL`, `HUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
        }
    }
}

/// Where the service is on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Running (systemd `active`, or the process alive).
    pub active: bool,
    /// The manager's word for it (`active`, `inactive`, `failed`, `activating`...).
    pub state: String,
    /// The main process, when running.
    pub main_pid: Option<u32>,
}

/// Runs the service on one host.
///
/// Contract: `start` on a running service and `stop` on a stopped one succeed and change
/// nothing; `restart` ends with a new main process or an error; `stop` is graceful and
/// returns an error (kind `timeout`) when the service is still running after the stop
/// timeout; `kill` signals only the service's own processes; `processes` lists every process
/// of the service still alive (empty after a successful stop or a `KILL`).
#[async_trait::async_trait]
pub trait ServiceManager: Send + Sync + Debug {
    /// `systemd:agent-lab@web-1`, `process:app.py@web-1`...
    fn describe(&self) -> String;
    /// Where the service is.
    async fn status(&self) -> Result<ServiceStatus>;
    /// Start it.
    async fn start(&self) -> Result<()>;
    /// Stop it gracefully.
    async fn stop(&self) -> Result<()>;
    /// Restart it gracefully.
    async fn restart(&self) -> Result<()>;
    /// Send `signal` to its processes.
    async fn kill(&self, signal: Signal) -> Result<()>;
    /// Pids of its processes still alive.
    async fn processes(&self) -> Result<Vec<u32>>;
    /// A command line the host itself can run to start it when it is down (a dead-man's
    /// switch leaves it on the host before a stop); `None`: the manager has none.
    fn start_argv(&self) -> Option<Vec<String>> {
        None
    }
}

/// The service on one host: how it is run, and its health on that host.
#[derive(Debug, Clone)]
pub struct HostService {
    /// Host name.
    pub host: String,
    /// Starts and stops it.
    pub manager: Arc<dyn ServiceManager>,
    /// Its health endpoint on this host.
    pub health: Arc<dyn HealthProbe>,
}

/// One [`HostService`] per host, from `[service_manager]` (one attempt per probe: the health
/// poll does its own repeating).
pub fn from_config(config: &Config, hosts: &[HostEntry]) -> Result<BTreeMap<String, HostService>> {
    let sm = &config.service_manager;
    let mut out = BTreeMap::new();
    for h in hosts {
        let fill = |s: &str| fill_host(s, &h.config);
        let manager: Arc<dyn ServiceManager> = match sm.kind {
            ManagerKind::Systemd => Arc::new(Systemd::new(
                h.host.clone(),
                fill(&sm.unit),
                sm.command_timeout.0,
            )),
            ManagerKind::Process => Arc::new(ProcessManager::from_config(h, sm)?),
        };
        let url = fill(&sm.health_url);
        let base = crate::config::BaseUrl::parse(&url).map_err(|e| {
            Error::config(format!(
                "service_manager.health_url for host {}: {url:?}: {e}",
                h.config.name
            ))
        })?;
        let probe = HttpProbe::new(base, RetryPolicy::new(1, config.service.timeout.0))?;
        out.insert(
            h.config.name.clone(),
            HostService {
                host: h.config.name.clone(),
                manager,
                health: Arc::new(probe),
            },
        );
    }
    Ok(out)
}
