//! The sandbox's hosts run the service under the stand-in `systemctl` (the same one the test
//! hosts use): one unit per host whose process is a `sleep`, its health the sandbox's own
//! HTTP service — so `restart`, `emergency shutdown`/`recover` and the maintenance's restart
//! really start and stop processes in the sandbox, and nothing outside it.

use std::path::Path;

use crate::config::{Config, ManagerKind};
use crate::error::Result;

const SYSTEMCTL: &str = include_str!("../../../scripts/standins/systemctl");

/// Install the stand-in and a unit per host; point `[service_manager]` at them.
pub(super) fn install(dir: &Path, bin: &Path, cfg: &mut Config, base_url: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let units = dir.join("units");
    std::fs::create_dir_all(&units)?;
    let sc = bin.join("systemctl");
    std::fs::write(&sc, SYSTEMCTL)?;
    std::fs::set_permissions(&sc, std::fs::Permissions::from_mode(0o755))?;
    for h in &mut cfg.hosts {
        let unit = format!(
            "ExecStart=sleep 3600\nPIDFile={}/agent-lab-{}.pid\nTimeoutStopSec=5\n",
            units.display(),
            h.name
        );
        std::fs::write(units.join(format!("agent-lab-{}.service", h.name)), unit)?;
        h.env
            .insert("AGENTLAB_SYSTEMD_UNITS".into(), units.display().to_string());
    }
    let sm = &mut cfg.service_manager;
    sm.kind = ManagerKind::Systemd;
    sm.unit = "agent-lab-{host}".into();
    sm.health_url = base_url.to_string();
    Ok(())
}

/// Stop every unit a runbook started (on drop: no `sleep` outlives the sandbox).
pub(super) fn stop_all(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("units")) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pid") {
            if let Ok(pid) = std::fs::read_to_string(&p) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}
