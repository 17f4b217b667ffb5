//! The service as a plain process, for hosts without systemd (the spec's `cd /app && python
//! app.py &`): started detached with its pid kept in a file; found again by the pid file or
//! by its argv among the login user's own processes — so stopping it never signals another
//! user's process, nor one of ours that only mentions the same words.

use std::sync::Arc;
use std::time::Duration;

use super::{ServiceManager, ServiceStatus, Signal};
use crate::config::{ServiceManagerConfig, fill_host};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, HostEntry, RemoteHost};

/// The service as a process on a host.
#[derive(Debug, Clone)]
pub struct ProcessManager {
    host: Arc<dyn RemoteHost>,
    start: Vec<String>,
    matches: Vec<String>,
    workdir: String,
    pid_file: String,
    log_file: String,
    stop_timeout: Duration,
}

/// Lists the login user's live processes: `pid<TAB>argv` with argv joined by 0x1f.
const SCAN: &str = r#"for d in /proc/[0-9]*; do
  [ -O "$d" ] || continue
  s=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$s" ] && [ "$s" != Z ] || continue
  printf '%s\t' "${d#/proc/}"; tr '\0' '\037' < "$d/cmdline" 2>/dev/null; echo
done"#;

/// Starts `$@` detached in `$1`, output to `$2`, pid to `$3`.
const START: &str = r#"cd "$1" || exit 1; log=$2; pidf=$3; shift 3
setsid "$@" </dev/null >>"$log" 2>&1 &
echo $! > "$pidf""#;

/// [`START`] unless the process in the pid file is alive (a watchdog's start, run by the host).
const START_IF_DOWN: &str = r#"pidf=$3; pid=$(cat "$pidf" 2>/dev/null)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then exit 0; fi
cd "$1" || exit 1; log=$2; shift 3
setsid "$@" </dev/null >>"$log" 2>&1 &
echo $! > "$pidf""#;

impl ProcessManager {
    /// From `[service_manager]`, with the host's placeholders filled.
    pub fn from_config(h: &HostEntry, sm: &ServiceManagerConfig) -> Result<Self> {
        let fill = |s: &String| fill_host(s, &h.config);
        let start: Vec<String> = sm.start.iter().map(fill).collect();
        if start.is_empty() {
            return Err(Error::config(
                "service_manager.start: the process kind needs a start command",
            ));
        }
        let matches = if sm.matches.is_empty() {
            start.clone()
        } else {
            sm.matches.iter().map(fill).collect()
        };
        Ok(ProcessManager {
            host: h.host.clone(),
            start,
            matches,
            workdir: fill(&sm.workdir),
            pid_file: fill(&sm.pid_file),
            log_file: fill(&sm.log_file),
            stop_timeout: sm.stop_timeout.0,
        })
    }

    async fn sh(&self, script: &str, args: &[String]) -> Result<crate::host::CmdOutput> {
        let cmd = Cmd::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(args.iter().cloned())
            .timeout(Duration::from_secs(30));
        self.host.run(&cmd).await
    }

    /// The pid in the pid file, if any.
    async fn pid_from_file(&self) -> Option<u32> {
        let b = self.host.read_file(&self.pid_file).await.ok()?;
        String::from_utf8_lossy(&b).trim().parse().ok()
    }

    /// Send `sig` to each pid; a process already gone is not an error.
    async fn signal(&self, sig: Signal, pids: &[u32]) -> Result<()> {
        if pids.is_empty() {
            return Ok(());
        }
        let cmd = Cmd::new("kill")
            .args(["-s", sig.name()])
            .args(pids.iter().map(|p| p.to_string()));
        self.host.run(&cmd).await?;
        Ok(())
    }

    /// Wait until none of the service's processes is alive, at most `limit`.
    async fn wait_gone(&self, limit: Duration) -> Result<Vec<u32>> {
        let start = std::time::Instant::now();
        loop {
            let left = self.processes().await?;
            if left.is_empty() || start.elapsed() >= limit {
                return Ok(left);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `argv` is the service: the same words as `matches` at its start (the program may
/// be given by path: `/usr/bin/python3` matches `python3`).
pub(crate) fn argv_matches(argv: &[&str], matches: &[String]) -> bool {
    if argv.len() < matches.len() || matches.is_empty() {
        return false;
    }
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    argv.iter()
        .zip(matches)
        .enumerate()
        .all(|(i, (a, m))| *a == m.as_str() || (i == 0 && (base(a) == base(m))))
}

/// Whether `pid` is a live process (not a zombie) on `host`.
pub(crate) async fn alive(host: &dyn RemoteHost, pid: u32) -> Result<bool> {
    match host.read_file(&format!("/proc/{pid}/stat")).await {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b);
            let state = s.rsplit_once(") ").map(|(_, r)| r.chars().next());
            Ok(!matches!(state, Some(Some('Z')) | Some(Some('X'))))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl ServiceManager for ProcessManager {
    fn describe(&self) -> String {
        format!("process:{}@{}", self.matches.join(" "), self.host.name())
    }

    async fn status(&self) -> Result<ServiceStatus> {
        let pids = self.processes().await?;
        let from_file = self.pid_from_file().await.filter(|p| pids.contains(p));
        Ok(ServiceStatus {
            active: !pids.is_empty(),
            state: if pids.is_empty() {
                "inactive"
            } else {
                "active"
            }
            .into(),
            main_pid: from_file.or(pids.first().copied()),
        })
    }

    fn start_argv(&self) -> Option<Vec<String>> {
        let mut a: Vec<String> = ["sh", "-c", START_IF_DOWN, "sh"].map(String::from).to_vec();
        a.extend([
            self.workdir.clone(),
            self.log_file.clone(),
            self.pid_file.clone(),
        ]);
        a.extend(self.start.iter().cloned());
        Some(a)
    }

    async fn start(&self) -> Result<()> {
        if !self.processes().await?.is_empty() {
            return Ok(());
        }
        let mut args = vec![
            self.workdir.clone(),
            self.log_file.clone(),
            self.pid_file.clone(),
        ];
        args.extend(self.start.iter().cloned());
        let out = self.sh(START, &args).await?;
        if !out.success() {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "starting {} on {} failed: {}",
                    self.start.join(" "),
                    self.host.name(),
                    out.stderr.trim()
                ),
            ));
        }
        // A service that dies at once did not start.
        tokio::time::sleep(Duration::from_millis(300)).await;
        if self.processes().await?.is_empty() {
            let log = self
                .host
                .read_file(&self.log_file)
                .await
                .unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} on {} exited right after starting: {}",
                    self.start.join(" "),
                    self.host.name(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
            ));
        }
        Ok(())
    }

    async fn stop(&self) -> Result<()> {
        let pids = self.processes().await?;
        self.signal(Signal::Term, &pids).await?;
        let left = self.wait_gone(self.stop_timeout).await?;
        if !left.is_empty() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} on {} still running {:?} after SIGTERM and {}",
                    self.start.join(" "),
                    self.host.name(),
                    left,
                    crate::units::format_duration(self.stop_timeout)
                ),
            ));
        }
        let _ = self
            .host
            .run(&Cmd::new("rm").args(["-f", &self.pid_file]))
            .await;
        Ok(())
    }

    async fn restart(&self) -> Result<()> {
        self.stop().await?;
        self.start().await
    }

    async fn kill(&self, signal: Signal) -> Result<()> {
        let pids = self.processes().await?;
        self.signal(signal, &pids).await?;
        if signal == Signal::Kill {
            self.wait_gone(Duration::from_secs(5)).await?;
        }
        Ok(())
    }

    async fn processes(&self) -> Result<Vec<u32>> {
        let out = self.sh(SCAN, &[]).await?;
        let mut pids = Vec::new();
        for line in out.stdout.lines() {
            let Some((pid, argv)) = line.split_once('\t') else {
                continue;
            };
            let argv: Vec<&str> = argv.trim_end_matches('\x1f').split('\x1f').collect();
            if let (Ok(pid), true) = (pid.parse::<u32>(), argv_matches(&argv, &self.matches)) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }
}

#[cfg(test)]
mod tests {
    use super::argv_matches;

    #[test]
    fn argv_prefix_matching() {
        let m = vec!["python3".to_string(), "app.py".to_string()];
        assert!(argv_matches(&["python3", "app.py", "--port", "1"], &m));
        assert!(argv_matches(&["/usr/bin/python3", "app.py"], &m));
        assert!(!argv_matches(&["python3", "other.py"], &m));
        assert!(!argv_matches(&["sh", "-c", "python3 app.py"], &m));
        assert!(!argv_matches(&["python3"], &m));
        assert!(!argv_matches(&["python3", "app.py"], &[]));
    }
}
