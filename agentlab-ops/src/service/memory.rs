//! The service in memory: a process that starts, stops and answers health as scripted, with
//! the same semantics as the real managers (a stop that times out leaves the process, a
//! service that dies at once makes `start` fail).

use std::sync::{Arc, Mutex};

use super::{ServiceManager, ServiceStatus, Signal};
use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::probe::{HealthProbe, ProbeResponse};

/// How the service behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServiceBehaviour {
    /// Starts, stops and restarts as asked, healthy when running.
    #[default]
    Normal,
    /// Ignores SIGTERM: a graceful stop or restart times out and leaves it running, unhealthy;
    /// `KILL` then `start` brings it back.
    IgnoresGraceful,
    /// Dies as soon as it starts: `start` and `restart` fail, health never answers.
    NeverComesUp,
    /// Restarts, but the new process hangs (running, never healthy) until killed and started.
    HangsAfterRestart,
}

/// A call made to the memory service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCall {
    /// `status()`.
    Status,
    /// `start()`.
    Start,
    /// `stop()`.
    Stop,
    /// `restart()`.
    Restart,
    /// `kill(signal)`.
    Kill(Signal),
    /// `processes()`.
    Processes,
}

#[derive(Debug)]
struct State {
    pid: Option<u32>,
    healthy: bool,
    next_pid: u32,
    behaviour: ServiceBehaviour,
}

/// The service of one host, in memory.
#[derive(Debug, Clone)]
pub struct MemoryServiceManager {
    name: String,
    state: Arc<Mutex<State>>,
    /// Calls made.
    pub calls: CallLog<ServiceCall>,
    /// Inject failures and latency (operation `service.<call>`).
    pub faults: Faults,
}

impl MemoryServiceManager {
    /// A running, healthy service on host `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryServiceManager {
            name: name.into(),
            state: Arc::new(Mutex::new(State {
                pid: Some(1000),
                healthy: true,
                next_pid: 1001,
                behaviour: ServiceBehaviour::Normal,
            })),
            calls: CallLog::default(),
            faults: Faults::default(),
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How it behaves from now on.
    pub fn behave(&self, b: ServiceBehaviour) -> &Self {
        self.st().behaviour = b;
        self
    }

    /// Stop it (as if it crashed), without a call being recorded.
    pub fn crash(&self) -> &Self {
        self.st().pid = None;
        self
    }

    /// Its main pid, when running.
    pub fn pid(&self) -> Option<u32> {
        self.st().pid
    }

    /// Its health endpoint: 200 `{"status":"ok"}` while running and healthy, else refused.
    pub fn health_probe(&self) -> MemoryServiceProbe {
        MemoryServiceProbe {
            name: self.name.clone(),
            state: self.state.clone(),
        }
    }

    /// Start a new process as the behaviour says.
    fn spawn(st: &mut State) -> Result<()> {
        if st.behaviour == ServiceBehaviour::NeverComesUp {
            st.pid = None;
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the service exited right after starting",
            ));
        }
        st.pid = Some(st.next_pid);
        st.next_pid += 1;
        st.healthy = true;
        Ok(())
    }

    async fn enter(&self, call: ServiceCall, op: &'static str) -> Result<()> {
        self.calls.push(call);
        self.faults.apply(op).await
    }
}

#[async_trait::async_trait]
impl ServiceManager for MemoryServiceManager {
    fn describe(&self) -> String {
        format!("memory:{}", self.name)
    }

    async fn status(&self) -> Result<ServiceStatus> {
        self.enter(ServiceCall::Status, "service.status").await?;
        let st = self.st();
        Ok(ServiceStatus {
            active: st.pid.is_some(),
            state: if st.pid.is_some() {
                "active"
            } else {
                "inactive"
            }
            .into(),
            main_pid: st.pid,
        })
    }

    /// What a memory host records for a watchdog's start (there is no real host to run it).
    fn start_argv(&self) -> Option<Vec<String>> {
        Some(vec![
            "memory-service".into(),
            "start".into(),
            self.name.clone(),
        ])
    }

    async fn start(&self) -> Result<()> {
        self.enter(ServiceCall::Start, "service.start").await?;
        let mut st = self.st();
        if st.pid.is_some() {
            return Ok(());
        }
        Self::spawn(&mut st)
    }

    async fn stop(&self) -> Result<()> {
        self.enter(ServiceCall::Stop, "service.stop").await?;
        let mut st = self.st();
        if st.pid.is_some() && st.behaviour == ServiceBehaviour::IgnoresGraceful {
            st.healthy = false;
            return Err(Error::new(
                ErrorKind::Timeout,
                "still running after SIGTERM and the stop timeout",
            ));
        }
        st.pid = None;
        Ok(())
    }

    async fn restart(&self) -> Result<()> {
        self.enter(ServiceCall::Restart, "service.restart").await?;
        let mut st = self.st();
        match st.behaviour {
            ServiceBehaviour::IgnoresGraceful if st.pid.is_some() => {
                st.healthy = false;
                Err(Error::new(
                    ErrorKind::Timeout,
                    "restart: still running after SIGTERM and the stop timeout",
                ))
            }
            ServiceBehaviour::HangsAfterRestart => {
                Self::spawn(&mut st)?;
                st.healthy = false;
                Ok(())
            }
            _ => Self::spawn(&mut st),
        }
    }

    async fn kill(&self, signal: Signal) -> Result<()> {
        self.enter(ServiceCall::Kill(signal), "service.kill")
            .await?;
        let mut st = self.st();
        let ignores = st.behaviour == ServiceBehaviour::IgnoresGraceful;
        if signal == Signal::Kill || (signal == Signal::Term && !ignores) {
            st.pid = None;
            // A kill ends the hang: the next start is healthy.
            if st.behaviour == ServiceBehaviour::HangsAfterRestart {
                st.behaviour = ServiceBehaviour::Normal;
            }
        }
        Ok(())
    }

    async fn processes(&self) -> Result<Vec<u32>> {
        self.enter(ServiceCall::Processes, "service.processes")
            .await?;
        Ok(self.st().pid.into_iter().collect())
    }
}

/// The health endpoint of a [`MemoryServiceManager`].
#[derive(Debug, Clone)]
pub struct MemoryServiceProbe {
    name: String,
    state: Arc<Mutex<State>>,
}

#[async_trait::async_trait]
impl HealthProbe for MemoryServiceProbe {
    async fn get(&self, path: &str) -> Result<ProbeResponse> {
        let up = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pid.is_some() && st.healthy
        };
        let url = format!("memory://{}{path}", self.name);
        if !up {
            return Err(
                Error::new(ErrorKind::Unavailable, format!("{url}: connection refused"))
                    .with_operation("probe.get"),
            );
        }
        let body = if path.contains("detailed") {
            r#"{"status":"ok","components":{"app":{"status":"ok"}}}"#
        } else {
            r#"{"status":"ok"}"#
        };
        Ok(ProbeResponse {
            url,
            status: 200,
            latency: std::time::Duration::from_millis(1),
            body: body.into(),
            attempts: 1,
        })
    }
}
