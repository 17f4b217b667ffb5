//! Control sockets of ssh masters, kept per process so a new run can end the masters a killed
//! run left behind.
//!
//! Each process keeps its masters under `<control_dir>/agentlab-ops-<pid>/`. Before its first
//! connection, a process looks at the other `agentlab-ops-<pid>` directories there: for each
//! whose process is gone, it asks every master found in it to exit (`ssh -O exit`) and removes
//! the directory. Masters also end on their own once idle (`ControlPersist`), so even without
//! a next run none lives for long.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

const PREFIX: &str = "agentlab-ops-";

/// This process's control directory under `base` (created), after reaping dead runs' masters.
pub(crate) async fn process_dir(base: &Path) -> Result<PathBuf> {
    let dir = base.join(format!("{PREFIX}{}", std::process::id()));
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::from(e).with_context("control_dir", dir.display().to_string()))?;
    static REAPED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    REAPED
        .get_or_init(|| async {
            let n = reap_dead(base).await;
            if n > 0 {
                tracing::info!(masters = n, dir = %base.display(), "ended ssh masters of dead runs");
            }
        })
        .await;
    Ok(dir)
}

/// End the masters of dead processes' directories under `base`; how many were asked to exit.
pub async fn reap_dead(base: &Path) -> usize {
    let mut ended = 0;
    let Ok(mut rd) = tokio::fs::read_dir(base).await else {
        return 0;
    };
    while let Ok(Some(e)) = rd.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        for socket in masters_in(&e.path()) {
            exit_master(&socket).await;
            ended += 1;
        }
        let _ = tokio::fs::remove_dir_all(e.path()).await;
    }
    ended
}

/// `.ssh-connection*/master` sockets in a process directory.
fn masters_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path().join("master"))
        .filter(|p| p.exists())
        .collect()
}

fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        match rustix::process::Pid::from_raw(pid as i32) {
            // EPERM: it exists, as another user's process.
            Some(p) => !matches!(
                rustix::process::test_kill_process(p),
                Err(rustix::io::Errno::SRCH)
            ),
            None => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// `ssh -S <socket> -O exit`, output discarded: the master closes its connection and exits.
pub(crate) fn exit_command(ctl: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("ssh");
    c.arg("-F")
        .arg("/dev/null")
        .arg("-S")
        .arg(ctl)
        .args(["-O", "exit", "agentlab-ops"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// [`exit_command`], awaited for at most 5 s.
pub(crate) async fn exit_master(ctl: &Path) {
    let mut cmd = tokio::process::Command::from(exit_command(ctl));
    let status = cmd.kill_on_drop(true).status();
    let _ = tokio::time::timeout(Duration::from_secs(5), status).await;
}

/// A fresh mark for a remote command (unique per runner process and call).
pub(crate) fn remote_marker() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
