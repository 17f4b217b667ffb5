//! GitHub Actions over the REST API: `workflow_dispatch`, finding the run it started, polling
//! it, and a commit's check runs.
//!
//! Transient failures (5xx, connection errors, hangs) are retried with backoff and jitter. A
//! rate limit (403/429 with `x-ratelimit-remaining: 0`, or a `retry-after`) waits until the
//! reset time GitHub gives, on the environment's clock, at most `max_rate_wait`; then the
//! request is sent again. The token is a [`Secret`]: it never appears in errors or reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::deploy::review::{parse_alerts, pick_pull, tally_reviews};
use crate::deploy::{
    CheckSummary, Conclusion, Deployer, ReviewSummary, RunHandle, RunState, RunStatus,
    SecurityAlert,
};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};

/// Where and how to reach GitHub.
#[derive(Debug, Clone)]
pub struct GitHubOptions {
    /// `https://api.github.com` (or a GitHub Enterprise / test server URL).
    pub api_url: String,
    /// `owner/repo`.
    pub repository: String,
    /// The branch or tag workflows run on.
    pub git_ref: String,
    /// A token with `actions:write` (and `checks:read`).
    pub token: crate::config::LazySecret,
    /// Retries of transient failures.
    pub policy: RetryPolicy,
    /// The longest a rate limit is waited out.
    pub max_rate_wait: Duration,
    /// How long to look for the run a dispatch started.
    pub discovery_timeout: Duration,
}

/// The GitHub Actions deployer.
#[derive(Debug, Clone)]
pub struct GitHubActions {
    client: reqwest::Client,
    opts: GitHubOptions,
    clock: Arc<dyn Clock>,
}

fn status_error(status: u16, body: &[u8], what: &str) -> Error {
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let kind = match status {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        422 => ErrorKind::ConfigInvalid,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidResponse,
    };
    Error::new(
        kind,
        format!("GitHub answered HTTP {status} to {what}: {msg}"),
    )
}

/// When a 403/429 is a rate limit: how long GitHub asks us to wait.
fn rate_limit_wait(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(s) = h("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(s));
    }
    if h("x-ratelimit-remaining") == Some("0") {
        let reset = h("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())?;
        let secs = (reset - now.timestamp()).max(0) as u64;
        return Some(Duration::from_secs(secs + 1));
    }
    (status == 429).then(|| Duration::from_secs(60))
}

impl GitHubActions {
    /// A deployer for `opts.repository`.
    pub fn new(opts: GitHubOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        if opts.repository.split('/').filter(|p| !p.is_empty()).count() != 2 {
            return Err(Error::config(format!(
                "deploy.repository: {:?} is not owner/repo",
                opts.repository
            )));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.policy.attempt_timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(GitHubActions {
            client,
            opts,
            clock,
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/repos/{}{path}",
            self.opts.api_url.trim_end_matches('/'),
            self.opts.repository
        )
    }

    /// One request, with retries of transient failures and rate limits waited out.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &'static str,
    ) -> Result<(u16, Vec<u8>)> {
        let url = self.url(path);
        let token = self.opts.token.get()?;
        let mut waited = Duration::ZERO;
        loop {
            let (status, headers, bytes) = retry(&self.opts.policy, what, || async {
                let mut req = self
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(token.expose())
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28");
                if let Some(b) = body {
                    req = req.json(b);
                }
                let resp = req.send().await.map_err(|e| {
                    let kind = if e.is_timeout() {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Unavailable
                    };
                    Error::new(kind, format!("GitHub unreachable: {}", e.without_url()))
                })?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("reading GitHub's answer: {}", e.without_url()),
                    )
                })?;
                if status >= 500 {
                    return Err(status_error(status, &bytes, what));
                }
                Ok((status, headers, bytes.to_vec()))
            })
            .await?;
            if let Some(wait) = rate_limit_wait(status, &headers, self.clock.now()) {
                if waited + wait > self.opts.max_rate_wait {
                    return Err(Error::new(
                        ErrorKind::RateLimited,
                        format!(
                            "GitHub rate limit: reset in {}, more than the {} allowed",
                            crate::config::format_duration(wait),
                            crate::config::format_duration(self.opts.max_rate_wait)
                        ),
                    )
                    .with_operation(what));
                }
                tracing::info!(
                    operation = what,
                    wait_s = wait.as_secs(),
                    "GitHub rate limit: waiting for the reset"
                );
                waited += wait;
                self.clock.sleep(wait).await;
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(status_error(status, &bytes, what).with_operation(what));
            }
            return Ok((status, bytes));
        }
    }

    async fn json(&self, path: &str, what: &'static str) -> Result<Value> {
        let (_, body) = self.request(reqwest::Method::GET, path, None, what).await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("GitHub sent unreadable JSON: {e}"),
            )
            .with_operation(what)
        })
    }

    async fn run_ids(&self, workflow: &str) -> Result<Vec<(u64, Option<String>)>> {
        let v = self
            .json(
                &format!(
                    "/actions/workflows/{workflow}/runs?event=workflow_dispatch&branch={}&per_page=30",
                    self.opts.git_ref
                ),
                "deploy.discover",
            )
            .await?;
        let runs = v
            .get("workflow_runs")
            .and_then(|r| r.as_array())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    "GitHub's run list has no workflow_runs",
                )
                .with_operation("deploy.discover")
            })?;
        Ok(runs
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("id")?.as_u64()?,
                    r.get("html_url")
                        .and_then(|u| u.as_str())
                        .map(str::to_string),
                ))
            })
            .collect())
    }
}

fn conclusion_of(s: &str) -> Conclusion {
    match s {
        "success" => Conclusion::Success,
        "failure" => Conclusion::Failure,
        "cancelled" => Conclusion::Cancelled,
        "timed_out" => Conclusion::TimedOut,
        _ => Conclusion::Other,
    }
}

#[async_trait::async_trait]
impl Deployer for GitHubActions {
    fn describe(&self) -> String {
        format!("github:{}", self.opts.repository)
    }

    async fn dispatch(
        &self,
        workflow: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<RunHandle> {
        // A 404 names the workflow: usually a typo in the config, or the file is not on the ref.
        let named = |e: Error| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no workflow {workflow:?} in {} on {}: {e}",
                        self.opts.repository, self.opts.git_ref
                    ),
                )
                .with_operation("deploy.dispatch")
            } else {
                e.with_context("workflow", workflow)
            }
        };
        // Runs that exist before the dispatch are not ours.
        let before: BTreeSet<u64> = self
            .run_ids(workflow)
            .await
            .map_err(named)?
            .into_iter()
            .map(|r| r.0)
            .collect();
        let body =
            json!({ "ref": self.opts.git_ref, "inputs": inputs, "return_run_details": true });
        let (status, answer) = self
            .request(
                reqwest::Method::POST,
                &format!("/actions/workflows/{workflow}/dispatches"),
                Some(&body),
                "deploy.dispatch",
            )
            .await
            .map_err(named)?;
        // Newer GitHub answers 200 with the run's id; older answers 204 and the run must be found.
        if status == 200 {
            if let Ok(v) = serde_json::from_slice::<Value>(&answer) {
                if let Some(id) = v.get("workflow_run_id").and_then(|i| i.as_u64()) {
                    return Ok(RunHandle {
                        workflow: workflow.to_string(),
                        id: id.to_string(),
                        url: v
                            .get("html_url")
                            .and_then(|u| u.as_str())
                            .map(str::to_string),
                    });
                }
            }
        }
        let start = self.clock.now();
        let mut wait = Duration::from_secs(1);
        loop {
            let new: Vec<(u64, Option<String>)> = self
                .run_ids(workflow)
                .await?
                .into_iter()
                .filter(|(id, _)| !before.contains(id))
                .collect();
            if let Some((id, url)) = new.into_iter().min_by_key(|r| r.0) {
                return Ok(RunHandle {
                    workflow: workflow.to_string(),
                    id: id.to_string(),
                    url,
                });
            }
            let elapsed = (self.clock.now() - start).to_std().unwrap_or_default();
            if elapsed >= self.opts.discovery_timeout {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{workflow} was dispatched but no new run appeared within {}",
                        crate::config::format_duration(self.opts.discovery_timeout)
                    ),
                )
                .with_operation("deploy.discover"));
            }
            self.clock.sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    async fn status(&self, run: &RunHandle) -> Result<RunStatus> {
        let v = self
            .json(&format!("/actions/runs/{}", run.id), "deploy.status")
            .await?;
        let state = match v.get("status").and_then(|s| s.as_str()) {
            Some("completed") => RunState::Completed,
            Some("in_progress") => RunState::InProgress,
            Some(_) => RunState::Queued,
            None => {
                return Err(
                    Error::new(ErrorKind::InvalidResponse, "GitHub's run has no status")
                        .with_operation("deploy.status"),
                );
            }
        };
        let detail = v
            .get("conclusion")
            .and_then(|c| c.as_str())
            .map(str::to_string);
        Ok(RunStatus {
            state,
            conclusion: detail.as_deref().map(conclusion_of),
            detail,
            url: v
                .get("html_url")
                .and_then(|u| u.as_str())
                .map(str::to_string),
        })
    }

    async fn commit_checks(&self, commit: &str) -> Result<CheckSummary> {
        let v = self
            .json(
                &format!("/commits/{commit}/check-runs?per_page=100"),
                "deploy.checks",
            )
            .await?;
        let runs = v
            .get("check_runs")
            .and_then(|r| r.as_array())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidResponse,
                    "GitHub's answer has no check_runs",
                )
                .with_operation("deploy.checks")
            })?;
        let mut s = CheckSummary {
            total: runs.len(),
            failed: Vec::new(),
            pending: Vec::new(),
        };
        for r in runs {
            let name = r
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("?")
                .to_string();
            match (
                r.get("status").and_then(|x| x.as_str()),
                r.get("conclusion").and_then(|x| x.as_str()),
            ) {
                (Some("completed"), Some("success" | "neutral" | "skipped")) => {}
                (Some("completed"), _) => s.failed.push(name),
                _ => s.pending.push(name),
            }
        }
        Ok(s)
    }

    async fn commit_review(&self, commit: &str) -> Result<ReviewSummary> {
        let v = self
            .json(&format!("/commits/{commit}/pulls"), "deploy.review")
            .await?;
        let Some((n, url)) = pick_pull(&v, commit)? else {
            return Ok(ReviewSummary {
                pull: None,
                url: None,
                approved_by: Vec::new(),
                changes_requested_by: Vec::new(),
            });
        };
        let v = self
            .json(&format!("/pulls/{n}/reviews?per_page=100"), "deploy.review")
            .await?;
        tally_reviews(&v, n, url)
    }

    async fn security_alerts(
        &self,
        source: &str,
        severities: &[String],
    ) -> Result<Vec<SecurityAlert>> {
        let path = match source {
            "code_scanning" => "code-scanning",
            "dependabot" => "dependabot",
            other => {
                return Err(Error::config(format!("no alert source {other:?}")));
            }
        };
        let q = format!(
            "/{path}/alerts?state=open&severity={}&per_page=100",
            severities.join(",")
        );
        let v = self.json(&q, "deploy.security").await?;
        parse_alerts(&v, source, severities)
    }

    async fn workflow_enabled(&self, workflow: &str) -> Result<bool> {
        let v = self
            .json(&format!("/actions/workflows/{workflow}"), "deploy.workflow")
            .await
            .map_err(|e| e.with_context("workflow", workflow))?;
        match v.get("state").and_then(|s| s.as_str()) {
            Some("active") => Ok(true),
            Some(_) => Ok(false),
            None => Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("GitHub's answer for workflow {workflow:?} has no state"),
            )
            .with_operation("deploy.workflow")),
        }
    }

    async fn set_workflow_enabled(&self, workflow: &str, enabled: bool) -> Result<()> {
        let verb = if enabled { "enable" } else { "disable" };
        self.request(
            reqwest::Method::PUT,
            &format!("/actions/workflows/{workflow}/{verb}"),
            None,
            "deploy.workflow",
        )
        .await
        .map_err(|e| e.with_context("workflow", workflow))?;
        Ok(())
    }
}
