//! systemd through `systemctl` on a host.

use std::sync::Arc;
use std::time::Duration;

use super::{ServiceManager, ServiceStatus, Signal};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, CmdOutput, RemoteHost};

/// A systemd unit on a host.
#[derive(Debug, Clone)]
pub struct Systemd {
    host: Arc<dyn RemoteHost>,
    unit: String,
    timeout: Duration,
}

impl Systemd {
    /// `unit` (with or without `.service`) on `host`; each systemctl call times out after
    /// `timeout`.
    pub fn new(host: Arc<dyn RemoteHost>, unit: impl Into<String>, timeout: Duration) -> Self {
        Systemd {
            host,
            unit: unit.into(),
            timeout,
        }
    }

    async fn systemctl(&self, args: &[&str]) -> Result<CmdOutput> {
        let cmd = Cmd::new("systemctl")
            .args(args.iter().copied())
            .arg(&self.unit)
            .timeout(self.timeout);
        self.host.run(&cmd).await.map_err(|e| self.named(e))
    }

    /// A failed systemctl call as an error naming the unit and the host.
    async fn expect_ok(&self, verb: &str) -> Result<()> {
        let out = self.systemctl(&[verb]).await?;
        if out.success() {
            return Ok(());
        }
        let kind = match out.status {
            Some(5) => ErrorKind::NotFound,
            Some(4) => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unexpected,
        };
        Err(Error::new(
            kind,
            format!(
                "systemctl {verb} {} on {} exited {:?}: {}",
                self.unit,
                self.host.name(),
                out.status,
                out.stderr.trim()
            ),
        )
        .with_operation("service"))
    }

    fn named(&self, e: Error) -> Error {
        e.with_context("unit", &self.unit)
            .with_context("host", self.host.name())
    }

    /// `systemctl show -p …` as key → value.
    async fn show(&self, props: &[&str]) -> Result<std::collections::BTreeMap<String, String>> {
        let mut args = vec!["show"];
        for p in props {
            args.extend(["-p", p]);
        }
        let out = self.systemctl(&args).await?;
        if !out.success() {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "systemctl show {} on {}: {}",
                    self.unit,
                    self.host.name(),
                    out.stderr.trim()
                ),
            ));
        }
        Ok(parse_show(&out.stdout))
    }
}

/// `Key=value` lines; anything else is ignored.
pub(crate) fn parse_show(s: &str) -> std::collections::BTreeMap<String, String> {
    s.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[async_trait::async_trait]
impl ServiceManager for Systemd {
    fn describe(&self) -> String {
        format!("systemd:{}@{}", self.unit, self.host.name())
    }

    async fn status(&self) -> Result<ServiceStatus> {
        let p = self.show(&["ActiveState", "MainPID"]).await?;
        let state = p
            .get("ActiveState")
            .cloned()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "systemctl show {} on {} gave no ActiveState",
                        self.unit,
                        self.host.name()
                    ),
                )
            })?;
        let main_pid = p
            .get("MainPID")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|p| *p > 0);
        Ok(ServiceStatus {
            active: state == "active",
            state,
            main_pid,
        })
    }

    async fn start(&self) -> Result<()> {
        self.expect_ok("start").await
    }

    fn start_argv(&self) -> Option<Vec<String>> {
        Some(vec!["systemctl".into(), "start".into(), self.unit.clone()])
    }

    async fn stop(&self) -> Result<()> {
        self.expect_ok("stop").await
    }

    async fn restart(&self) -> Result<()> {
        self.expect_ok("restart").await
    }

    async fn kill(&self, signal: Signal) -> Result<()> {
        let out = self.systemctl(&["kill", "-s", signal.name()]).await?;
        if out.success() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unexpected,
            format!(
                "systemctl kill -s {} {} on {}: {}",
                signal.name(),
                self.unit,
                self.host.name(),
                out.stderr.trim()
            ),
        ))
    }

    /// The unit's cgroup members when the host exposes them, else its main process.
    async fn processes(&self) -> Result<Vec<u32>> {
        let p = self.show(&["ControlGroup", "MainPID"]).await?;
        if let Some(cg) = p.get("ControlGroup").filter(|c| !c.is_empty()) {
            let path = format!("/sys/fs/cgroup{cg}/cgroup.procs");
            if let Ok(b) = self.host.read_file(&path).await {
                return Ok(String::from_utf8_lossy(&b)
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect());
            }
        }
        let pid = p.get("MainPID").and_then(|v| v.parse::<u32>().ok());
        match pid.filter(|p| *p > 0) {
            Some(pid) if super::process::alive(self.host.as_ref(), pid).await? => Ok(vec![pid]),
            _ => Ok(Vec::new()),
        }
    }
}
