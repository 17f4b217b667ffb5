//! Hosts over SSH (the `openssh` crate, native multiplexing).
//!
//! One multiplexed master connection per host, opened on first use, reused by every command and
//! closed by [`RemoteHost::close`] (or on drop). Host keys are checked strictly by default
//! against the configured known_hosts: an unknown or changed key is an `unauthenticated` error
//! that says host-key verification failed for that host. A per-host semaphore keeps concurrent
//! commands under sshd's `MaxSessions`. Arguments are escaped by the crate (`.arg()`), never
//! concatenated into a shell string.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::sync::{Mutex, Semaphore};

use crate::config::{Config, HostAddress, HostConfig, HostKeyCheck};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, CmdOutput, RemoteHost};

/// Settings of one SSH host.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SshOptions {
    /// Login user (the ssh default when None).
    pub user: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Private key.
    pub identity_file: Option<PathBuf>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Host-key policy.
    pub host_key_check: HostKeyCheck,
    /// ssh_config file (`/dev/null` to ignore the user's).
    pub config_file: Option<PathBuf>,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Default timeout of a command.
    pub command_timeout: Duration,
    /// Concurrent commands.
    pub max_concurrent: usize,
    /// Directory for control sockets (each process uses `agentlab-ops-<pid>/` in it).
    pub control_dir: PathBuf,
    /// How long an idle master connection outlives its last command (`ControlPersist`): a
    /// master left by a killed runner ends by itself after this long.
    pub master_idle: Duration,
}

impl SshOptions {
    /// Options for `host:port` with defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        SshOptions {
            user: None,
            host: host.into(),
            port,
            identity_file: None,
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            config_file: None,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            max_concurrent: 10,
            control_dir: std::env::temp_dir(),
            master_idle: Duration::from_secs(120),
        }
    }

    /// From a `[[hosts]]` entry and the `[ssh]` defaults.
    pub fn from_config(h: &HostConfig, cfg: &Config) -> Result<Self> {
        let HostAddress::Ssh { user, host, port } = &h.address else {
            return Err(Error::config(format!(
                "hosts: {}: not an ssh:// address",
                h.name
            )));
        };
        let s = &cfg.ssh;
        Ok(SshOptions {
            user: user.clone(),
            host: host.clone(),
            port: *port,
            identity_file: h.identity_file.clone().or_else(|| s.identity_file.clone()),
            known_hosts: h.known_hosts.clone().or_else(|| s.known_hosts.clone()),
            host_key_check: s.host_key_check,
            config_file: s.config_file.clone(),
            connect_timeout: s.connect_timeout.0,
            command_timeout: h.command_timeout.0,
            max_concurrent: h.max_concurrent.unwrap_or(s.max_concurrent).max(1),
            control_dir: s.control_dir.clone().unwrap_or_else(std::env::temp_dir),
            master_idle: Duration::from_secs(120),
        })
    }
}

/// A host reached over SSH.
#[derive(Debug)]
pub struct SshHost {
    name: String,
    opts: SshOptions,
    session: Mutex<Option<Arc<Session>>>,
    permits: Semaphore,
}

impl SshHost {
    /// A host; nothing connects until the first command.
    pub fn new(name: impl Into<String>, opts: SshOptions) -> Self {
        let permits = Semaphore::new(opts.max_concurrent.max(1));
        SshHost {
            name: name.into(),
            opts,
            session: Mutex::new(None),
            permits,
        }
    }

    fn target(&self) -> String {
        let o = &self.opts;
        let user = o.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        format!("ssh://{user}{}:{}", o.host, o.port)
    }

    fn ctx(&self, e: Error) -> Error {
        e.with_operation("host.run")
            .with_context("host", self.name.clone())
            .with_context("address", self.target())
    }

    /// The control socket of the open master connection, if any (to check it is gone after
    /// [`RemoteHost::close`]).
    pub async fn control_socket(&self) -> Option<PathBuf> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| s.control_socket().to_path_buf())
    }

    async fn connect(&self) -> Result<Session> {
        let o = &self.opts;
        let control_dir = super::ssh_masters::process_dir(&o.control_dir).await?;
        let idle = std::num::NonZeroUsize::new(o.master_idle.as_secs().max(1) as usize)
            .unwrap_or(std::num::NonZeroUsize::MIN);
        let mut b = SessionBuilder::default();
        b.port(o.port)
            .connect_timeout(o.connect_timeout)
            .server_alive_interval(Duration::from_secs(15))
            .control_directory(&control_dir)
            .control_persist(openssh::ControlPersist::IdleFor(idle))
            .known_hosts_check(match o.host_key_check {
                HostKeyCheck::Strict => KnownHosts::Strict,
                HostKeyCheck::AcceptNew => KnownHosts::Add,
            });
        if let Some(u) = &o.user {
            b.user(u.clone());
        }
        if let Some(k) = &o.identity_file {
            b.keyfile(k);
        }
        if let Some(k) = &o.known_hosts {
            b.user_known_hosts_file(k);
        }
        if let Some(c) = &o.config_file {
            b.config_file(c);
        }
        let budget = o.connect_timeout + Duration::from_secs(5);
        match tokio::time::timeout(budget, b.connect_mux(&o.host)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(self.map_connect_error(e)),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "could not connect to {} within {}",
                    self.target(),
                    crate::config::format_duration(budget)
                ),
            )),
        }
    }

    fn map_connect_error(&self, e: openssh::Error) -> Error {
        let detail = match &e {
            openssh::Error::Connect(io) | openssh::Error::Master(io) => io.to_string(),
            other => other.to_string(),
        };
        let (kind, msg) = connect_failure(&self.name, &self.target(), &detail);
        tracing::debug!(host = %self.name, detail = %detail.trim(), "ssh connect failed");
        Error::new(kind, msg)
            .with_detail(detail.trim().to_string())
            .with_source(e)
    }

    async fn session(&self) -> Result<Arc<Session>> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            // An idle master ends after `master_idle`: reconnect then.
            if s.check().await.is_ok() {
                return Ok(s.clone());
            }
            tracing::debug!(host = %self.name, "ssh master gone (idle or lost); reconnecting");
            guard.take();
        }
        let s = Arc::new(self.connect().await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// A slot under the per-host limit, and the (possibly new) master connection.
    async fn channel(&self) -> Result<(tokio::sync::SemaphorePermit<'_>, Arc<Session>)> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.ctx(Error::new(ErrorKind::Cancelled, "host closed")))?;
        let session = self.session().await.map_err(|e| self.ctx(e))?;
        Ok((permit, session))
    }

    /// Forget a broken master so the next command reconnects.
    async fn drop_if_dead(&self, s: &Arc<Session>) -> bool {
        if s.check().await.is_ok() {
            return false;
        }
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_some_and(|g| Arc::ptr_eq(g, s)) {
            guard.take();
        }
        true
    }
}

#[async_trait::async_trait]
impl RemoteHost for SshHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> String {
        self.target()
    }

    fn identity_file(&self) -> Option<PathBuf> {
        self.opts.identity_file.clone()
    }

    async fn try_key_login(&self, identity: &std::path::Path) -> Result<bool> {
        super::ssh_login::try_login(&self.name, &self.opts, identity).await
    }

    async fn try_key_login_as(&self, identity: &std::path::Path, user: &str) -> Result<bool> {
        let mut o = self.opts.clone();
        o.user = Some(user.to_string());
        super::ssh_login::try_login(&self.name, &o, identity).await
    }

    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let timeout = cmd.timeout.unwrap_or(self.opts.command_timeout);
        let start = Instant::now();
        let (_permit, session) = self.channel().await?;
        let marker = super::ssh_masters::remote_marker();
        let fut = async {
            // sshd may still count a just-closed channel against MaxSessions: opening a new
            // one then fails before anything runs, so it is safe to try again shortly.
            let mut delay = Duration::from_millis(20);
            let mut tries = 0;
            loop {
                // Marked in its environment by the login shell's own assignment prefix, so a
                // command past its timeout can be found on the host and ended with its whole
                // process group (what it started too). The mark costs no extra process (an
                // `env` in front cost 1.4 ms a command); it is `[0-9a-f-]` only, safe unquoted.
                let r = session
                    .raw_command(format!("{MARK}={marker}"))
                    .arg(cmd.program.as_str())
                    .args(cmd.args.iter().map(String::as_str))
                    .stdin(Stdio::null())
                    .output()
                    .await;
                match r {
                    Err(openssh::Error::SshMux(_))
                        if tries < 6 && session.check().await.is_ok() =>
                    {
                        tries += 1;
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    r => return r,
                }
            }
        };
        let left = timeout.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, fut).await {
            Ok(Ok(out)) => {
                let code = out.status.code();
                if code == Some(127) && out.stdout.is_empty() {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let missing = stderr.contains("not found")
                        || stderr.contains("No such file or directory")
                        || stderr.is_empty();
                    if missing {
                        return Err(self.ctx(Error::new(
                            ErrorKind::NotFound,
                            format!("{}: command not found", cmd.program),
                        )));
                    }
                }
                Ok(CmdOutput {
                    status: code,
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    duration: start.elapsed(),
                })
            }
            Ok(Err(e)) => {
                let dead = self.drop_if_dead(&session).await;
                let err = if dead {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("connection to {} lost", self.target()),
                    )
                } else {
                    match &e {
                        // The crate reports a remote exit code 127 as an error.
                        openssh::Error::Remote(_) => Error::new(
                            ErrorKind::NotFound,
                            format!("{}: command not found", cmd.program),
                        ),
                        _ => Error::new(
                            ErrorKind::Unavailable,
                            format!("{} failed: {e}", cmd.program),
                        )
                        .set_temporary(false),
                    }
                };
                Err(self.ctx(err.with_source(e)))
            }
            Err(_) => {
                let ended = self.end_remote_group(&session, &marker).await;
                Err(self.ctx(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} did not finish within {}; {ended}",
                        cmd.program,
                        crate::config::format_duration(timeout)
                    ),
                )))
            }
        }
    }

    async fn write_file(&self, path: &str, data: bytes::Bytes) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let (_permit, session) = self.channel().await?;
        let fut = async {
            let dir = path
                .rsplit_once('/')
                .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d });
            let mut child = session
                .command("sh")
                .args(["-c", "mkdir -p -- \"$1\" && cat > \"$2\"", "sh", dir, path])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .await?;
            if let Some(mut stdin) = child.stdin().take() {
                stdin
                    .write_all(&data)
                    .await
                    .map_err(openssh::Error::ChildIo)?;
                stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
            }
            child.wait_with_output().await
        };
        self.file_command("write", path, &session, fut)
            .await
            .map(|_| ())
    }

    async fn read_file(&self, path: &str) -> Result<bytes::Bytes> {
        let (_permit, session) = self.channel().await?;
        let fut = async {
            session
                .command("cat")
                .arg("--")
                .arg(path)
                .stdin(Stdio::null())
                .output()
                .await
        };
        let out = self.file_command("read", path, &session, fut).await?;
        Ok(bytes::Bytes::from(out.stdout))
    }

    async fn read_tail(&self, path: &str, offset: u64) -> Result<super::Tail> {
        // Compressed on the wire when the host has gzip; plain bytes otherwise (the magic
        // number tells which). A missing file is an error, not an empty log.
        const SCRIPT: &str = "test -r \"$1\" || { echo \"$1: No such file\" >&2; exit 2; }; \
            if command -v gzip >/dev/null; then tail -c +\"$2\" -- \"$1\" | gzip -1 -c; \
            else exec tail -c +\"$2\" -- \"$1\"; fi";
        let (_permit, session) = self.channel().await?;
        let from = (offset + 1).to_string();
        let fut = async {
            session
                .command("sh")
                .args(["-c", SCRIPT, "sh", path, from.as_str()])
                .stdin(Stdio::null())
                .output()
                .await
        };
        let out = self.file_command("read", path, &session, fut).await?;
        let gzip = out.stdout.starts_with(&[0x1f, 0x8b]);
        Ok(super::Tail {
            data: bytes::Bytes::from(out.stdout),
            gzip,
        })
    }

    async fn close(&self) -> Result<()> {
        let s = self.session.lock().await.take();
        if let Some(s) = s {
            // `Session::close` only asks the master to stop listening, which leaves it running
            // as "ssh: [stopped mux]", still connected: ask it to exit instead.
            super::ssh_masters::exit_master(s.control_socket()).await;
            drop(s);
        }
        Ok(())
    }
}

/// What a failed connection means, in one line: OpenSSH's output (a 15-line banner for a changed
/// host key) is kept as the error's detail.
pub(super) fn connect_failure(name: &str, target: &str, detail: &str) -> (ErrorKind, String) {
    let lower = detail.to_ascii_lowercase();
    let first_line = detail
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('@'))
        .unwrap_or("")
        .to_string();
    if lower.contains("remote host identification has changed") || lower.contains("offending") {
        // "Offending ED25519 key in /path/known_hosts:3"
        let line = detail
            .lines()
            .find_map(|l| l.trim().strip_prefix("Offending ")?.rsplit_once(':'))
            .map(|(_, n)| format!(" (known_hosts line {})", n.trim()))
            .unwrap_or_default();
        let msg = format!("host key for {name} ({target}) changed{line}: refusing to connect");
        (ErrorKind::Unauthenticated, msg)
    } else if lower.contains("host key verification failed")
        || lower.contains("host key is known")
        || lower.contains("no matching host key")
    {
        let msg = format!("host key for {name} ({target}) is not in known_hosts (strict checking)");
        (ErrorKind::Unauthenticated, msg)
    } else if lower.contains("permission denied") {
        (
            ErrorKind::Unauthenticated,
            format!("authentication failed for {target}: {first_line}"),
        )
    } else if lower.contains("connection refused") {
        (
            ErrorKind::Unavailable,
            format!("connection refused by {target}"),
        )
    } else if lower.contains("timed out") {
        (
            ErrorKind::Timeout,
            format!("connecting to {target} timed out"),
        )
    } else if lower.contains("could not resolve") {
        (ErrorKind::NotFound, format!("cannot resolve {target}"))
    } else {
        (
            ErrorKind::Unavailable,
            format!("cannot connect to {target}: {first_line}"),
        )
    }
}

/// The environment variable that marks a command run by [`SshHost::run`].
const MARK: &str = "AGENTLAB_OPS_CMD";

/// Ends the process groups of the processes marked `AGENTLAB_OPS_CMD=$0` (TERM, then KILL
/// after 2 s); prints their ids, or exits 3 when none is left.
// (dash's `kill` takes a negative pid only as `kill -s SIG -- -PGID`.)
const GROUP_KILLER: &str = r#"m="AGENTLAB_OPS_CMD=$0"; g=""
for d in /proc/[0-9]*; do
  tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qxF "$m" || continue
  p=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -d' ' -f3)
  [ -n "$p" ] && case " $g " in *" $p "*) ;; *) g="$g $p" ;; esac
done
[ -n "$g" ] || exit 3
for p in $g; do kill -s TERM -- "-$p" 2>/dev/null; done
i=0; while [ $i -lt 20 ]; do a=""; for p in $g; do kill -s 0 -- "-$p" 2>/dev/null && a=1; done; [ -n "$a" ] || break; sleep 0.1; i=$((i+1)); done
for p in $g; do kill -s KILL -- "-$p" 2>/dev/null; done
echo $g"#;

impl SshHost {
    /// End a timed-out command's process group on the host; says what happened, in words.
    async fn end_remote_group(&self, session: &Session, marker: &str) -> String {
        let fut = async {
            session
                .command("sh")
                .args(["-c", GROUP_KILLER, marker])
                .stdin(Stdio::null())
                .output()
                .await
        };
        match tokio::time::timeout(Duration::from_secs(10), fut).await {
            Ok(Ok(out)) if out.status.success() => {
                let pgid = String::from_utf8_lossy(&out.stdout).trim().to_string();
                tracing::debug!(host = %self.name, pgid, "timed-out remote command ended");
                format!("it was stopped on the host (process group {pgid})")
            }
            Ok(Ok(_)) => "it had already ended on the host".to_string(),
            Ok(Err(e)) => {
                tracing::warn!(host = %self.name, error = %e, "cannot end a timed-out remote command");
                "it may still run on the host (could not reach it to stop it)".to_string()
            }
            Err(_) => "it may still run on the host (stopping it timed out)".to_string(),
        }
    }

    /// Run a file command (`cat`, `sh -c 'cat > f'`) under the command timeout and turn a
    /// failure into an error naming the path: a missing file is `not_found`, a refused one
    /// `permission_denied`.
    async fn file_command<F>(
        &self,
        verb: &str,
        path: &str,
        session: &Arc<Session>,
        fut: F,
    ) -> Result<std::process::Output>
    where
        F: std::future::Future<Output = std::result::Result<std::process::Output, openssh::Error>>,
    {
        let out = match tokio::time::timeout(self.opts.command_timeout, fut).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                // One message for one cause: a dead master is a lost connection, whichever
                // command noticed it.
                let msg = if self.drop_if_dead(session).await {
                    format!("connection to {} lost", self.target())
                } else {
                    format!("{verb} {path} failed: {e}")
                };
                return Err(self.ctx(
                    Error::new(ErrorKind::Unavailable, msg)
                        .with_context("path", path.to_string())
                        .with_source(e),
                ));
            }
            Err(_) => {
                return Err(self.ctx(Error::new(
                    ErrorKind::Timeout,
                    format!("{verb} {path} timed out"),
                )));
            }
        };
        if out.status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let kind = if stderr.contains("No such file") {
            ErrorKind::NotFound
        } else if stderr.contains("Permission denied") {
            ErrorKind::PermissionDenied
        } else {
            ErrorKind::Unexpected
        };
        Err(self.ctx(
            Error::new(kind, format!("cannot {verb} {path}: {stderr}"))
                .with_context("path", path.to_string()),
        ))
    }

    /// The pid of the master connection process, if connected.
    pub async fn master_pid(&self) -> Option<u32> {
        let ctl = self.control_socket().await?;
        let mut c = openssh_mux_client::Connection::connect(&ctl).await.ok()?;
        c.send_alive_check().await.ok().map(|p| p.get())
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        // Closed without `close()`: end the master anyway (synchronously; it takes milliseconds).
        if let Some(s) = self.session.get_mut().take() {
            let _ = super::ssh_masters::exit_command(s.control_socket()).status();
        }
    }
}
