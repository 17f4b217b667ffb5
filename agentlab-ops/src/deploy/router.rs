//! Traffic between blue and green: a [`TrafficRouter`] sets the share of requests green gets.
//!
//! [`NginxRouter`] writes an nginx `upstream` block with weights to a file on a host, checks the
//! configuration (`nginx -t`), and reloads nginx; a check or reload that fails puts the previous
//! file back. Weighted AWS target groups can come later behind the same trait.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

/// Sets how traffic is split between blue (current) and green (new).
///
/// Contract (checked by [`crate::testing::traffic_router_conformance`]): `green()` answers the
/// share last set; a share above 100% is a `config_invalid` error that leaves the traffic as it
/// was; a failed change (a configuration the load balancer rejects) leaves the previous
/// configuration in place.
#[async_trait::async_trait]
pub trait TrafficRouter: Send + Sync + std::fmt::Debug {
    /// `nginx:lb-1:/etc/nginx/conf.d/agentlab-upstream.conf`, `memory`.
    fn describe(&self) -> String;
    /// Send `percent` (0–100) of requests to green, the rest to blue.
    async fn set_green(&self, percent: u8) -> Result<()>;
    /// The share green gets now.
    async fn green(&self) -> Result<u8>;
}

/// nginx on a host: an upstream file with weights, checked and reloaded.
#[derive(Debug, Clone)]
pub struct NginxRouter {
    host: Arc<dyn RemoteHost>,
    file: String,
    upstream: String,
    blue: String,
    green: String,
    check: Vec<String>,
    reload: Vec<String>,
}

impl NginxRouter {
    /// Write `upstream` (blue and green `host:port`) into `file` on `host`; `check` and `reload`
    /// are command lines (`nginx -t`, `nginx -s reload`; an empty check skips it).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Arc<dyn RemoteHost>,
        file: impl Into<String>,
        upstream: impl Into<String>,
        blue: impl Into<String>,
        green: impl Into<String>,
        check: Vec<String>,
        reload: Vec<String>,
    ) -> Self {
        NginxRouter {
            host,
            file: file.into(),
            upstream: upstream.into(),
            blue: blue.into(),
            green: green.into(),
            check,
            reload,
        }
    }

    /// The upstream block for a split.
    pub fn render(&self, green: u8) -> String {
        let line = |addr: &str, weight: u8| {
            if weight == 0 {
                format!("    server {addr} weight=1 down;\n")
            } else {
                format!("    server {addr} weight={weight};\n")
            }
        };
        format!(
            "# managed by agentlab-ops: green {green}%\nupstream {} {{\n{}{}}}\n",
            self.upstream,
            line(&self.blue, 100 - green),
            line(&self.green, green)
        )
    }

    async fn run(&self, argv: &[String], what: &str) -> Result<()> {
        let Some((program, args)) = argv.split_first() else {
            return Ok(());
        };
        let out = self
            .host
            .run(&Cmd::new(program.clone()).args(args.iter().cloned()))
            .await?;
        if out.status != Some(0) {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!(
                    "{what} ({}) failed on {}: {}",
                    argv.join(" "),
                    self.host.name(),
                    out.stderr.trim()
                ),
            )
            .with_operation("router.set"));
        }
        Ok(())
    }

    async fn restore(&self, previous: Option<Bytes>) {
        let _ = match previous {
            Some(p) => self.host.write_file(&self.file, p).await,
            None => self.host.delete_file(&self.file).await,
        };
    }
}

/// Green's share as an upstream file written by [`NginxRouter`] states it on its first line.
pub fn parse_green(text: &str) -> Option<u8> {
    let first = text.lines().next()?;
    let p = first.strip_prefix("# managed by agentlab-ops: green ")?;
    p.trim_end_matches('%').trim().parse().ok()
}

#[async_trait::async_trait]
impl TrafficRouter for NginxRouter {
    fn describe(&self) -> String {
        format!("nginx:{}:{}", self.host.name(), self.file)
    }

    async fn set_green(&self, percent: u8) -> Result<()> {
        if percent > 100 {
            return Err(Error::config(format!(
                "green share {percent}% is above 100%"
            )));
        }
        let previous = match self.host.read_file(&self.file).await {
            Ok(b) => Some(b),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        self.host
            .write_file(&self.file, Bytes::from(self.render(percent)))
            .await?;
        if let Err(e) = self.run(&self.check, "configuration check").await {
            self.restore(previous).await;
            return Err(e);
        }
        if let Err(e) = self.run(&self.reload, "reload").await {
            self.restore(previous).await;
            let _ = self.run(&self.reload, "reload").await;
            return Err(e);
        }
        Ok(())
    }

    async fn green(&self) -> Result<u8> {
        let text = self.host.read_file(&self.file).await?;
        parse_green(&String::from_utf8_lossy(&text)).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("{} was not written by agentlab-ops", self.file),
            )
        })
    }
}

/// A router in memory: the share, and every change made.
#[derive(Debug, Clone, Default)]
pub struct MemoryRouter {
    green: Arc<Mutex<u8>>,
    /// Shares set, in order.
    pub calls: CallLog<u8>,
    /// Inject failures.
    pub faults: Faults,
}

impl MemoryRouter {
    /// All traffic on blue.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl TrafficRouter for MemoryRouter {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn set_green(&self, percent: u8) -> Result<()> {
        self.calls.push(percent);
        self.faults.apply("router.set").await?;
        if percent > 100 {
            return Err(Error::config(format!(
                "green share {percent}% is above 100%"
            )));
        }
        *self.green.lock().unwrap_or_else(|e| e.into_inner()) = percent;
        Ok(())
    }
    async fn green(&self) -> Result<u8> {
        Ok(*self.green.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn the_memory_router_passes_the_conformance_suite() {
        crate::testing::traffic_router_conformance(&MemoryRouter::new()).await;
    }

    use super::*;

    #[test]
    fn render_and_parse() {
        let r = NginxRouter::new(
            Arc::new(crate::host::MemoryHost::new("lb")),
            "/etc/nginx/up.conf",
            "agentlab",
            "10.0.0.1:8000",
            "10.0.0.2:8000",
            vec![],
            vec![],
        );
        let t = r.render(25);
        assert!(t.contains("server 10.0.0.1:8000 weight=75;"));
        assert!(t.contains("server 10.0.0.2:8000 weight=25;"));
        assert_eq!(parse_green(&t), Some(25));
        assert!(r.render(0).contains("10.0.0.2:8000 weight=1 down;"));
        assert!(r.render(100).contains("10.0.0.1:8000 weight=1 down;"));
    }
}
