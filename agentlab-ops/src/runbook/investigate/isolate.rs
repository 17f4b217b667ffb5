//! Component isolation: each component `/health/detailed` lists, and each external dependency
//! of `[[investigation.dependencies]]` asked directly (the spec's OpenRouter check, its
//! bearer token a secret read when the check runs).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::DependencyCheck;
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Outcome;
use crate::retry::{RetryPolicy, retry};
use crate::runbook::run::{Checked, Run};

/// What was isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolatedKind {
    /// A component of `/health/detailed`.
    Component,
    /// An external dependency asked directly.
    Dependency,
}

/// One component or dependency and how it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isolated {
    /// Its name.
    pub name: String,
    /// Component or dependency.
    pub kind: IsolatedKind,
    /// Whether it is healthy.
    pub healthy: bool,
    /// Status as reported, or the HTTP status.
    pub status: String,
    /// Why it is not healthy, or what it said.
    pub detail: Option<String>,
    /// Latency of the check, for dependencies.
    pub latency_ms: Option<u64>,
}

/// Every component and dependency, checked concurrently.
pub(super) async fn components(env: &Environment, run: &Run) -> Vec<Isolated> {
    let deps = env
        .config
        .investigation
        .dependencies
        .iter()
        .map(|d| dependency(run, d));
    let (health, deps) = futures::join!(detailed(env, run), futures::future::join_all(deps));
    let mut out = health;
    out.extend(deps);
    out
}

async fn detailed(env: &Environment, run: &Run) -> Vec<Isolated> {
    let path = &env.config.service.detailed_health_path;
    let r = run
        .check("isolate:health", None, async {
            let h = crate::probe::assess(&env.probe.get(path).await?, true);
            let list: Vec<Isolated> = h
                .components
                .iter()
                .map(|c| Isolated {
                    name: c.name.clone(),
                    kind: IsolatedKind::Component,
                    healthy: c.healthy,
                    status: c.status.clone(),
                    detail: c.detail.clone(),
                    latency_ms: None,
                })
                .collect();
            let bad: Vec<String> = list
                .iter()
                .filter(|c| !c.healthy)
                .map(|c| format!("{} {}", c.name, c.status))
                .collect();
            let (outcome, s) = if !bad.is_empty() {
                (Outcome::Fail, format!("unhealthy: {}", bad.join(", ")))
            } else if !h.problems.is_empty() {
                (Outcome::Fail, h.problems.join("; "))
            } else {
                (Outcome::Pass, format!("{} components healthy", list.len()))
            };
            Ok(Checked::with(list, outcome, s))
        })
        .await;
    r.unwrap_or_default()
}

/// Ask one dependency: up when it answers one of `expect_status`. An unreachable dependency
/// is down (with the reason), never an error of the run.
async fn dependency(run: &Run, d: &DependencyCheck) -> Isolated {
    let name = format!("isolate:{}", d.name);
    let r = run
        .check(&name, None, async {
            let started = Instant::now();
            let answer = ask(d).await;
            let latency = started.elapsed().as_millis() as u64;
            let (healthy, status, detail) = match answer {
                Ok((code, body)) => {
                    let up = d.expect_status.contains(&code);
                    let snippet: String = body.chars().take(120).collect();
                    let detail = (!up).then(|| snippet.trim().to_string());
                    (up, format!("HTTP {code}"), detail)
                }
                Err(e) => (false, "unreachable".to_string(), Some(e.to_string())),
            };
            let i = Isolated {
                name: d.name.clone(),
                kind: IsolatedKind::Dependency,
                healthy,
                status: status.clone(),
                detail: detail.clone(),
                latency_ms: Some(latency),
            };
            let s = format!(
                "{} {status} in {latency} ms{}",
                d.url.as_str(),
                detail.map(|x| format!(": {x}")).unwrap_or_default()
            );
            let outcome = if healthy {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            Ok(Checked::with(i, outcome, s))
        })
        .await;
    r.unwrap_or_else(|e| Isolated {
        name: d.name.clone(),
        kind: IsolatedKind::Dependency,
        healthy: false,
        status: "error".into(),
        detail: Some(e.to_string()),
        latency_ms: None,
    })
}

async fn ask(d: &DependencyCheck) -> Result<(u16, String)> {
    let token = d
        .token
        .as_ref()
        .map(|t| t.resolve(&format!("investigation.dependencies.{}.token", d.name)))
        .transpose()?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
        .timeout(d.timeout.0)
        .build()
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
    let method = if d.method == "HEAD" {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let policy = RetryPolicy::new(2, d.timeout.0);
    let who = format!("{} at {}", d.name, d.url.as_str());
    retry(&policy, "investigate.dependency", || async {
        let mut req = client.request(method.clone(), d.url.as_str());
        if let Some(t) = &token {
            req = req.bearer_auth(t.expose());
        }
        let (status, body) = crate::probe::send(req, &who).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
}
