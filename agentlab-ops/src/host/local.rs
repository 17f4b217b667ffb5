//! Commands as local processes (tokio::process), never through a shell.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, CmdOutput, RemoteHost};

/// The machine this library runs on.
#[derive(Debug, Clone)]
pub struct LocalHost {
    name: String,
    env: BTreeMap<String, String>,
    default_timeout: Duration,
}

impl LocalHost {
    /// A local host called `name`, commands time out after 30 s unless told otherwise.
    pub fn new(name: impl Into<String>) -> Self {
        LocalHost {
            name: name.into(),
            env: BTreeMap::new(),
            default_timeout: Duration::from_secs(30),
        }
    }
    /// Set environment variables for every command (e.g. a `PATH` with wrapper scripts).
    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }
    /// Default timeout of a command.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.default_timeout = t;
        self
    }
}

#[async_trait::async_trait]
impl RemoteHost for LocalHost {
    async fn write_file(&self, path: &str, data: bytes::Bytes) -> Result<()> {
        let p = std::path::PathBuf::from(path);
        let r = async {
            if let Some(d) = p.parent() {
                tokio::fs::create_dir_all(d).await?;
            }
            tokio::fs::write(&p, &data).await
        };
        r.await.map_err(|e| {
            Error::from(e)
                .with_operation("host.write_file")
                .with_context("host", self.name.clone())
                .with_context("path", path.to_string())
        })
    }

    async fn read_file(&self, path: &str) -> Result<bytes::Bytes> {
        tokio::fs::read(path)
            .await
            .map(bytes::Bytes::from)
            .map_err(|e| {
                Error::from(e)
                    .with_operation("host.read_file")
                    .with_context("host", self.name.clone())
                    .with_context("path", path.to_string())
            })
    }

    async fn read_tail(&self, path: &str, offset: u64) -> Result<super::Tail> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let ctx = |e: std::io::Error| {
            Error::from(e)
                .with_operation("host.read_file")
                .with_context("host", self.name.clone())
                .with_context("path", path.to_string())
        };
        let mut f = tokio::fs::File::open(path).await.map_err(ctx)?;
        f.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(ctx)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).await.map_err(ctx)?;
        Ok(super::Tail {
            data: bytes::Bytes::from(v),
            gzip: false,
        })
    }

    fn name(&self) -> &str {
        &self.name
    }
    fn address(&self) -> String {
        "local".into()
    }
    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let timeout = cmd.timeout.unwrap_or(self.default_timeout);
        let mut c = tokio::process::Command::new(&cmd.program);
        c.args(&cmd.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let ctx = |e: Error| {
            e.with_operation("host.run")
                .with_context("host", self.name.clone())
                .with_context("program", cmd.program.clone())
        };
        let start = Instant::now();
        let child = c.spawn().map_err(|e| {
            let msg = if e.kind() == std::io::ErrorKind::NotFound {
                format!("{}: command not found", cmd.program)
            } else {
                format!("cannot start {}: {e}", cmd.program)
            };
            ctx(Error::new(Error::from(e).kind(), msg))
        })?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(CmdOutput {
                status: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                duration: start.elapsed(),
            }),
            Ok(Err(e)) => Err(ctx(Error::from(e))),
            // Dropping the future kills the child (kill_on_drop).
            Err(_) => Err(ctx(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} did not finish within {}; it was killed",
                    cmd.program,
                    crate::config::format_duration(timeout)
                ),
            ))),
        }
    }
}
