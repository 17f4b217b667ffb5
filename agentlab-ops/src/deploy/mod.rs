//! Deployments: start a workflow (GitHub Actions, or a command on a host), follow it to its
//! end; tag releases in git; shift traffic between blue and green.
//!
//! [`Deployer`] is two calls — `dispatch` starts a workflow run and returns its handle,
//! `status` reads where it is — and [`run_workflow`] follows a run to completion with a
//! deadline, polling with backoff on the environment's [`Clock`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

mod build;
pub mod github;
mod memory;
pub mod repo;
pub mod review;
pub mod router;

pub use build::{Colors, blue_green_from_config, from_config};
pub use github::{GitHubActions, GitHubOptions};
pub use memory::{DeployCall, MemoryDeployer, Script};
pub use repo::{Commit, GitRepo, MemoryRepo, Repo};
pub use review::{ALERT_SOURCES, ReviewSummary, SEVERITIES, SecurityAlert};
pub use router::{MemoryRouter, NginxRouter, TrafficRouter};

/// A started workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHandle {
    /// The workflow (`deploy.yml`).
    pub workflow: String,
    /// The provider's id of the run.
    pub id: String,
    /// Where a human can watch it.
    pub url: Option<String>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting to start.
    Queued,
    /// Running.
    InProgress,
    /// Finished (see the conclusion).
    Completed,
}

/// How a finished run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    /// It worked.
    Success,
    /// It failed.
    Failure,
    /// Someone cancelled it.
    Cancelled,
    /// The provider gave up on it.
    TimedOut,
    /// Anything else the provider says (`action_required`, `startup_failure`...).
    Other,
}

/// A run's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatus {
    /// Where it is.
    pub state: RunState,
    /// How it ended, once completed.
    pub conclusion: Option<Conclusion>,
    /// The provider's own word for the conclusion (`failure`, `startup_failure`...).
    pub detail: Option<String>,
    /// Where to watch it.
    pub url: Option<String>,
}

/// The end of a followed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The run.
    pub run: RunHandle,
    /// How it ended.
    pub conclusion: Conclusion,
    /// The provider's word for it.
    pub detail: Option<String>,
    /// Seconds from dispatch to completion.
    pub seconds: f64,
}

/// The CI checks of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Checks seen.
    pub total: usize,
    /// Names of checks that failed (or did not succeed).
    pub failed: Vec<String>,
    /// Names of checks still running.
    pub pending: Vec<String>,
}

impl CheckSummary {
    /// Every check finished and succeeded (and there was at least one).
    pub fn green(&self) -> bool {
        self.total > 0 && self.failed.is_empty() && self.pending.is_empty()
    }
}

/// Starts and follows deployment workflows.
///
/// Contract: `dispatch` starts exactly one run of `workflow` and returns a handle `status` can
/// follow until it reports completed with a conclusion; an unknown workflow is an error naming
/// it, never a run that silently does nothing; temporary provider errors (5xx, rate limits) are
/// retried inside; `commit_checks` is `unsupported` for providers without CI.
#[async_trait::async_trait]
pub trait Deployer: Send + Sync + std::fmt::Debug {
    /// `github:org/repo`, `command:web-1`...
    fn describe(&self) -> String;
    /// Start `workflow` with these inputs.
    async fn dispatch(
        &self,
        workflow: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<RunHandle>;
    /// Where a started run is.
    async fn status(&self, run: &RunHandle) -> Result<RunStatus>;
    /// The CI checks of a commit; `Unsupported` when the provider has no CI.
    async fn commit_checks(&self, _commit: &str) -> Result<CheckSummary> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} reports no CI checks", self.describe()),
        )
        .with_operation("deploy.checks"))
    }
    /// The review state of the pull request `commit` came from; `Unsupported` when the
    /// provider has no reviews.
    async fn commit_review(&self, _commit: &str) -> Result<ReviewSummary> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} reports no code reviews", self.describe()),
        )
        .with_operation("deploy.review"))
    }
    /// Open security alerts of `source` (`code_scanning`, `dependabot`) with one of
    /// `severities`; `Unsupported` when the provider has no such alerts.
    async fn security_alerts(
        &self,
        source: &str,
        _severities: &[String],
    ) -> Result<Vec<SecurityAlert>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} reports no {source} alerts", self.describe()),
        )
        .with_operation("deploy.security"))
    }
    /// Whether `workflow` can be dispatched (not disabled); `Unsupported` for providers whose
    /// workflows cannot be disabled.
    async fn workflow_enabled(&self, workflow: &str) -> Result<bool> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} cannot enable or disable workflows", self.describe()),
        )
        .with_operation("deploy.workflow")
        .with_context("workflow", workflow))
    }
    /// Enable or disable `workflow` (a disabled workflow cannot be dispatched); idempotent.
    async fn set_workflow_enabled(&self, workflow: &str, _enabled: bool) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("{} cannot enable or disable workflows", self.describe()),
        )
        .with_operation("deploy.workflow")
        .with_context("workflow", workflow))
    }
}

/// Start `workflow` and follow it until it completes or `timeout` passes (polling every
/// `poll`, growing ×1.5 up to 1 minute). A run still going at the deadline is an error of kind
/// `timeout` that names it; status reads that fail transiently are retried by the backend.
pub async fn run_workflow(
    deployer: &dyn Deployer,
    clock: &dyn Clock,
    workflow: &str,
    inputs: &BTreeMap<String, String>,
    poll: Duration,
    timeout: Duration,
) -> Result<RunResult> {
    let start = clock.now();
    let run = deployer.dispatch(workflow, inputs).await?;
    let deadline = start + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    let mut wait = poll;
    loop {
        let s = deployer.status(&run).await?;
        if s.state == RunState::Completed {
            let run = RunHandle {
                url: s.url.clone().or(run.url.clone()),
                ..run
            };
            return Ok(RunResult {
                run,
                conclusion: s.conclusion.unwrap_or(Conclusion::Other),
                detail: s.detail,
                seconds: (clock.now() - start).num_milliseconds() as f64 / 1000.0,
            });
        }
        let now = clock.now();
        if now >= deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{workflow} run {} still {} after {}",
                    run.id,
                    match s.state {
                        RunState::Queued => "queued",
                        _ => "in progress",
                    },
                    crate::config::format_duration(timeout)
                ),
            )
            .with_operation("deploy.wait")
            .with_context("run", run.url.clone().unwrap_or(run.id.clone())));
        }
        let left = (deadline - now).to_std().unwrap_or_default();
        clock.sleep(wait.min(left)).await;
        wait = (wait.mul_f64(1.5)).min(Duration::from_secs(60));
    }
}

/// Deploys by running a configured command on a host (for teams without Actions): the
/// workflow's command line, with `{workflow}` and `{input}` placeholders replaced, runs to its
/// end during `dispatch`; exit status 0 is success.
#[derive(Debug, Clone)]
pub struct CommandDeployer {
    host: Arc<dyn RemoteHost>,
    commands: BTreeMap<String, Vec<String>>,
    timeout: Duration,
    results: Arc<Mutex<BTreeMap<String, RunStatus>>>,
}

impl CommandDeployer {
    /// Workflows (`deploy.yml`, `rollback.yml`) mapped to command lines on `host`.
    pub fn new(
        host: Arc<dyn RemoteHost>,
        commands: BTreeMap<String, Vec<String>>,
        timeout: Duration,
    ) -> Self {
        CommandDeployer {
            host,
            commands,
            timeout,
            results: Arc::default(),
        }
    }
}

/// Replace `{name}` by the input's value in each argument.
pub fn fill(args: &[String], vars: &BTreeMap<String, String>) -> Vec<String> {
    args.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("{{{k}}}"), v);
            }
            a
        })
        .collect()
}

#[async_trait::async_trait]
impl Deployer for CommandDeployer {
    fn describe(&self) -> String {
        format!("command:{}", self.host.name())
    }
    async fn dispatch(
        &self,
        workflow: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<RunHandle> {
        let line = self.commands.get(workflow).ok_or_else(|| {
            Error::config(format!(
                "deploy.commands: no command for workflow {workflow:?}"
            ))
            .with_operation("deploy.dispatch")
        })?;
        let mut vars = inputs.clone();
        vars.insert("workflow".into(), workflow.to_string());
        let argv = fill(line, &vars);
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::config(format!("deploy.commands.{workflow}: empty command")))?;
        let id = crate::ids::new_run_id();
        let out = self
            .host
            .run(
                &Cmd::new(program.clone())
                    .args(args.iter().cloned())
                    .timeout(self.timeout),
            )
            .await?;
        let ok = out.status == Some(0);
        let detail = if ok {
            "exit 0".to_string()
        } else {
            let tail: String = out
                .stderr
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ");
            format!("exit {:?}: {tail}", out.status)
        };
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.clone(),
                RunStatus {
                    state: RunState::Completed,
                    conclusion: Some(if ok {
                        Conclusion::Success
                    } else {
                        Conclusion::Failure
                    }),
                    detail: Some(detail),
                    url: None,
                },
            );
        Ok(RunHandle {
            workflow: workflow.to_string(),
            id,
            url: None,
        })
    }
    async fn status(&self, run: &RunHandle) -> Result<RunStatus> {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run.id)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("no run {}", run.id)))
    }
}
