//! `RemoteHost`: run programs on the machines the service lives on.
//!
//! A command is a program and its arguments — never a shell string built by concatenation.
//! Backends: [`LocalHost`] (local processes), [`MemoryHost`] (scripted answers, recorded
//! calls); SSH arrives with its own backend. [`resource_usage`] runs `uptime`, `free -b` and
//! `df -P -B1` concurrently and parses them into a typed [`ResourceUsage`].

pub mod fleet;
pub mod lease;
mod local;
mod memory;
pub mod parse;
#[cfg(feature = "ssh")]
mod ssh;
pub mod ssh_login;
#[cfg(feature = "ssh")]
pub mod ssh_masters;

pub use local::LocalHost;
pub use memory::MemoryHost;
pub use parse::{DiskUsage, LoadAverage, MemoryUsage, Uptime};
#[cfg(feature = "ssh")]
pub use ssh::{SshHost, SshOptions};

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A program with arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmd {
    /// Program name or path.
    pub program: String,
    /// Arguments, passed verbatim.
    pub args: Vec<String>,
    /// Timeout; the backend's default when None.
    pub timeout: Option<Duration>,
}

impl Cmd {
    /// `program` without arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            timeout: None,
        }
    }
    /// Add one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    /// Set the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// `program arg arg` for display (not for execution).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|s| {
                if s.is_empty()
                    || s.contains(|c: char| c.is_whitespace() || "'\"$`\\;&|<>()*?".contains(c))
                {
                    format!("'{}'", s.replace('\'', "'\\''"))
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdOutput {
    /// Exit code; None when killed by a signal.
    pub status: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// Wall time.
    pub duration: Duration,
}

impl CmdOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    /// `Ok(self)` on success, else an error with the exit code and the end of stderr.
    pub fn check(self, host: &str, cmd: &Cmd) -> Result<Self> {
        if self.success() {
            return Ok(self);
        }
        let tail: String = {
            let t = self.stderr.trim();
            let start = t.len().saturating_sub(200);
            let mut s = start;
            while !t.is_char_boundary(s) {
                s += 1;
            }
            t[s..].to_string()
        };
        let code = self
            .status
            .map_or("a signal".to_string(), |c| format!("exit code {c}"));
        Err(Error::new(
            ErrorKind::Unexpected,
            format!(
                "{} ended with {code}{}",
                cmd.program,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ),
        )
        .with_operation("host.run")
        .with_context("host", host.to_string()))
    }
}

/// A machine that runs commands.
///
/// Contract (checked by the conformance suite in [`crate::testing`]): `run` returns `Ok` with
/// the exit code for any program that started, whatever its exit code; arguments reach the
/// program verbatim (no shell interpretation); a program that does not exist fails with kind
/// `not_found`; a command past its timeout is stopped and fails with kind `timeout`; errors name
/// the host in their context.
#[async_trait::async_trait]
pub trait RemoteHost: Send + Sync + Debug {
    /// Short name (`web-1`).
    fn name(&self) -> &str;
    /// Where it is (`local`, `ssh://deploy@web-1:22`).
    fn address(&self) -> String;
    /// Run a command.
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput>;
    /// Read a whole file, byte for byte. A missing file is `not_found`.
    async fn read_file(&self, path: &str) -> Result<bytes::Bytes>;
    /// Write a whole file (created or replaced), creating its directory.
    async fn write_file(&self, path: &str, data: bytes::Bytes) -> Result<()>;
    /// Swap two paths atomically (`renameat2(RENAME_EXCHANGE)`): a reader sees one or the
    /// other, never neither. Both must exist.
    async fn exchange(&self, a: &str, b: &str) -> Result<()> {
        // The hosts run a Python app, so python3 is there; no coreutils on Debian 12 can do it.
        const SCRIPT: &str = "import ctypes,os,sys\nlibc=ctypes.CDLL(None,use_errno=True)\nr=libc.renameat2(-100,os.fsencode(sys.argv[1]),-100,os.fsencode(sys.argv[2]),2)\nif r!=0:\n e=ctypes.get_errno(); sys.exit('exchange failed: '+os.strerror(e))\n";
        let cmd = Cmd::new("python3").args(["-c", SCRIPT, a, b]);
        self.run(&cmd).await?.check(self.name(), &cmd).map(|_| ())
    }
    /// Rename a file or directory (`mv -T`: onto a missing or empty directory).
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let cmd = Cmd::new("mv").args(["-T", "--", from, to]);
        self.run(&cmd).await?.check(self.name(), &cmd).map(|_| ())
    }
    /// Delete a file; a missing file is fine.
    async fn delete_file(&self, path: &str) -> Result<()> {
        let cmd = Cmd::new("rm").args(["-f", "--", path]);
        self.run(&cmd).await?.check(self.name(), &cmd).map(|_| ())
    }
    /// Delete a file or a directory with everything in it (`rm -rf`); a missing path is fine.
    async fn remove_tree(&self, path: &str) -> Result<()> {
        let cmd = Cmd::new("rm").args(["-rf", "--", path]);
        self.run(&cmd).await?.check(self.name(), &cmd).map(|_| ())
    }
    /// Whether a file or directory exists at `path`.
    async fn exists(&self, path: &str) -> Result<bool> {
        let cmd = Cmd::new("test").args(["-e", path]);
        Ok(self.run(&cmd).await?.success())
    }
    /// Regular files directly in `dir` whose name matches the shell `pattern` (`*.json`), or
    /// `dir` itself when it is a matching file; sorted. A missing path gives an empty list.
    async fn list_files(&self, dir: &str, pattern: &str) -> Result<Vec<String>> {
        let cmd = Cmd::new("find").args([dir, "-maxdepth", "1", "-type", "f", "-name", pattern]);
        let out = self.run(&cmd).await?;
        if !out.success() {
            if out.stderr.contains("No such file") {
                return Ok(Vec::new());
            }
            return Err(out
                .check(self.name(), &cmd)
                .err()
                .unwrap_or_else(|| Error::new(ErrorKind::Unexpected, "find failed")));
        }
        let mut files: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        files.sort();
        Ok(files)
    }
    /// The bytes of `path` from `offset` to its end, for a log's tail without the whole file.
    /// A host may send them gzip-compressed (`gzip` says so); this default reads the file.
    async fn read_tail(&self, path: &str, offset: u64) -> Result<Tail> {
        let all = self.read_file(path).await?;
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        Ok(Tail {
            data: all.slice(from..),
            gzip: false,
        })
    }
    /// The size of a file in bytes.
    async fn file_size(&self, path: &str) -> Result<u64> {
        let cmd = Cmd::new("stat").args(["-L", "-c", "%s", "--", path]);
        let out = self.run(&cmd).await?;
        if !out.success() && out.stderr.contains("No such file") {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{}:{path}: no such file", self.name()),
            )
            .with_context("host", self.name().to_string()));
        }
        let out = out.check(self.name(), &cmd)?;
        out.stdout.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("stat gave {:?} for {path}", out.stdout.trim()),
            )
            .with_context("host", self.name().to_string())
        })
    }
    /// Release connections. Idempotent.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
    /// The private key this host logs in with (`identity_file`), if it is reached by key.
    fn identity_file(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether a *fresh* login with only the private key `identity` is accepted (a new
    /// connection beside the open one: no agent, no other key, no password): `Ok(true)`
    /// accepted, `Ok(false)` refused by the server; an unreachable server is an error. A host
    /// not reached by key says `unsupported`.
    async fn try_key_login(&self, identity: &std::path::Path) -> Result<bool> {
        let _ = identity;
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{}: not reached over SSH by key", self.name()),
        )
        .with_context("host", self.name().to_string()))
    }
    /// The same fresh login as another account (`user`): how granting access proves the new
    /// account's key logs in, and revoking proves it no longer does.
    async fn try_key_login_as(&self, identity: &std::path::Path, user: &str) -> Result<bool> {
        let _ = (identity, user);
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{}: not reached over SSH by key", self.name()),
        )
        .with_context("host", self.name().to_string()))
    }
}

/// A file's tail as a host sent it.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The bytes (gzip when `gzip`).
    pub data: bytes::Bytes,
    /// Compressed on the wire.
    pub gzip: bool,
}

#[async_trait::async_trait]
impl<T: RemoteHost + ?Sized> RemoteHost for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn address(&self) -> String {
        (**self).address()
    }
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        (**self).run(cmd).await
    }
    async fn close(&self) -> Result<()> {
        (**self).close().await
    }
    async fn read_file(&self, path: &str) -> Result<bytes::Bytes> {
        (**self).read_file(path).await
    }
    async fn list_files(&self, dir: &str, pattern: &str) -> Result<Vec<String>> {
        (**self).list_files(dir, pattern).await
    }
    async fn write_file(&self, path: &str, data: bytes::Bytes) -> Result<()> {
        (**self).write_file(path, data).await
    }
    async fn exchange(&self, a: &str, b: &str) -> Result<()> {
        (**self).exchange(a, b).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        (**self).rename(from, to).await
    }
    async fn delete_file(&self, path: &str) -> Result<()> {
        (**self).delete_file(path).await
    }
    async fn remove_tree(&self, path: &str) -> Result<()> {
        (**self).remove_tree(path).await
    }
    async fn exists(&self, path: &str) -> Result<bool> {
        (**self).exists(path).await
    }
    fn identity_file(&self) -> Option<std::path::PathBuf> {
        (**self).identity_file()
    }
    async fn try_key_login(&self, identity: &std::path::Path) -> Result<bool> {
        (**self).try_key_login(identity).await
    }
    async fn try_key_login_as(&self, identity: &std::path::Path, user: &str) -> Result<bool> {
        (**self).try_key_login_as(identity, user).await
    }
}

/// A host with its settings.
#[derive(Debug, Clone)]
pub struct HostEntry {
    /// Settings (name, mounts).
    pub config: crate::config::HostConfig,
    /// The backend.
    pub host: Arc<dyn RemoteHost>,
}

/// The hosts `[[hosts]]` lists, with the `[ssh]` defaults.
pub fn from_config(config: &crate::config::Config) -> Result<Vec<HostEntry>> {
    use crate::config::HostAddress;
    let mut hosts = Vec::new();
    for h in &config.hosts {
        let host: Arc<dyn RemoteHost> = match &h.address {
            HostAddress::Local => Arc::new(
                LocalHost::new(h.name.clone())
                    .with_env(h.env.clone())
                    .with_timeout(h.command_timeout.0),
            ),
            #[cfg(feature = "ssh")]
            HostAddress::Ssh { .. } => Arc::new(SshHost::new(
                h.name.clone(),
                SshOptions::from_config(h, config)?,
            )),
            #[cfg(not(feature = "ssh"))]
            HostAddress::Ssh { .. } => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("hosts: {}: built without the \"ssh\" feature", h.name),
                )
                .with_operation("environment.build"));
            }
        };
        hosts.push(HostEntry {
            config: h.clone(),
            host,
        });
    }
    Ok(hosts)
}

/// The host named `name` among `hosts`, or the first when None (errors name `field`).
pub fn named<'a>(hosts: &'a [HostEntry], name: Option<&str>, field: &str) -> Result<&'a HostEntry> {
    match name {
        Some(n) => hosts
            .iter()
            .find(|h| h.config.name == n)
            .ok_or_else(|| Error::config(format!("{field}: no host named {n:?} in [[hosts]]"))),
        None => hosts
            .first()
            .ok_or_else(|| Error::config(format!("{field}: needs a [[hosts]] entry"))),
    }
}

/// Resource usage of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Host name.
    pub host: String,
    /// Uptime and load.
    pub uptime: Uptime,
    /// CPUs (`nproc`), when known.
    pub cpus: Option<u32>,
    /// Memory.
    pub memory: MemoryUsage,
    /// Disks (filtered to the configured mounts when any).
    pub disks: Vec<DiskUsage>,
}

/// Run `uptime`, `free -b`, `df -P -B1` and `nproc` concurrently and parse them.
/// `mounts`: keep only these mount points (all when empty).
pub async fn resource_usage(host: &dyn RemoteHost, mounts: &[String]) -> Result<ResourceUsage> {
    let name = host.name().to_string();
    let run = |cmd: Cmd| {
        let name = name.clone();
        async move {
            let out = host.run(&cmd).await?;
            out.check(&name, &cmd)
        }
    };
    let (up, free, df, nproc) = futures::join!(
        run(Cmd::new("uptime")),
        run(Cmd::new("free").arg("-b")),
        run(Cmd::new("df").args(["-P", "-B1"])),
        run(Cmd::new("nproc")),
    );
    let ctx = |e: Error| e.with_context_once("host", name.clone());
    let uptime = parse::parse_uptime(&up.map_err(ctx)?.stdout).map_err(ctx)?;
    let memory = parse::parse_free(&free.map_err(ctx)?.stdout).map_err(ctx)?;
    let mut disks = parse::parse_df(&df.map_err(ctx)?.stdout).map_err(ctx)?;
    if !mounts.is_empty() {
        disks.retain(|d| mounts.contains(&d.mount));
    }
    let cpus = nproc.ok().and_then(|o| o.stdout.trim().parse().ok());
    Ok(ResourceUsage {
        host: name.clone(),
        uptime,
        cpus,
        memory,
        disks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_what_a_shell_would_mangle() {
        let c = Cmd::new("echo").args(["a b", "$(id)", "it's", "plain"]);
        assert_eq!(c.display(), "echo 'a b' '$(id)' 'it'\\''s' plain");
    }
}
