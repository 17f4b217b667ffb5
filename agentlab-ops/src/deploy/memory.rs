//! The memory deployer: workflows that succeed at once unless scripted otherwise, with the
//! enabled/disabled state of each workflow, calls recorded and faults injectable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};

use super::{
    CheckSummary, Conclusion, Deployer, ReviewSummary, RunHandle, RunState, RunStatus,
    SecurityAlert,
};

/// What a memory deployer does when a workflow is dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Completes with this conclusion after `polls` status reads.
    Completes {
        /// How it ends.
        conclusion: Conclusion,
        /// Status reads that still say in progress.
        polls: u32,
    },
    /// Never completes.
    Hangs,
}

/// A call made to the memory deployer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployCall {
    /// `dispatch(workflow, inputs)`.
    Dispatch(String, BTreeMap<String, String>),
    /// `status(run id)`.
    Status(String),
    /// `commit_checks(commit)`.
    Checks(String),
    /// `set_workflow_enabled(workflow, enabled)`.
    SetEnabled(String, bool),
}

#[derive(Debug, Default)]
struct MemoryDeployerState {
    scripts: BTreeMap<String, Script>,
    runs: BTreeMap<String, (Script, u32)>,
    checks: Option<CheckSummary>,
    review: Option<ReviewSummary>,
    alerts: Vec<SecurityAlert>,
    known: Option<BTreeSet<String>>,
    disabled: BTreeSet<String>,
    next: u64,
}

impl MemoryDeployerState {
    fn known(&self, workflow: &str, op: &'static str) -> Result<()> {
        match &self.known {
            Some(k) if !k.contains(workflow) => Err(Error::new(
                ErrorKind::NotFound,
                format!("no workflow {workflow:?} in the memory deployer"),
            )
            .with_operation(op)),
            _ => Ok(()),
        }
    }
}

/// Deployments in memory: every workflow succeeds at once unless scripted otherwise.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeployer {
    state: Arc<Mutex<MemoryDeployerState>>,
    /// Calls made.
    pub calls: CallLog<DeployCall>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryDeployer {
    /// Every workflow succeeds; CI checks are green.
    pub fn new() -> Self {
        Self::default()
    }
    fn st(&self) -> std::sync::MutexGuard<'_, MemoryDeployerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// What runs of `workflow` do from now on.
    pub fn script(&self, workflow: &str, script: Script) -> &Self {
        self.st().scripts.insert(workflow.to_string(), script);
        self
    }
    /// Only these workflows exist from now on: dispatching another is `not_found`, as on
    /// GitHub (by default every workflow exists).
    pub fn known_workflows(&self, names: &[&str]) -> &Self {
        self.st().known = Some(names.iter().map(|n| n.to_string()).collect());
        self
    }
    /// The CI checks every commit reports.
    pub fn set_checks(&self, checks: CheckSummary) -> &Self {
        self.st().checks = Some(checks);
        self
    }
    /// The review every commit's pull request has (default: #1, approved by `reviewer`).
    pub fn set_review(&self, review: ReviewSummary) -> &Self {
        self.st().review = Some(review);
        self
    }
    /// Open security alerts (default: none).
    pub fn set_alerts(&self, alerts: Vec<SecurityAlert>) -> &Self {
        self.st().alerts = alerts;
        self
    }
    /// Disable `workflow` as someone outside the runbooks would (by hand on GitHub).
    pub fn disable(&self, workflow: &str) -> &Self {
        self.st().disabled.insert(workflow.to_string());
        self
    }
    /// The workflows disabled now.
    pub fn disabled(&self) -> Vec<String> {
        self.st().disabled.iter().cloned().collect()
    }
    /// Workflows dispatched, in order.
    pub fn dispatched(&self) -> Vec<String> {
        self.calls
            .all()
            .into_iter()
            .filter_map(|c| match c {
                DeployCall::Dispatch(w, _) => Some(w),
                _ => None,
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Deployer for MemoryDeployer {
    fn describe(&self) -> String {
        "memory".into()
    }
    async fn dispatch(
        &self,
        workflow: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<RunHandle> {
        self.calls
            .push(DeployCall::Dispatch(workflow.to_string(), inputs.clone()));
        self.faults.apply("deploy.dispatch").await?;
        let mut st = self.st();
        st.known(workflow, "deploy.dispatch")?;
        if st.disabled.contains(workflow) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("workflow {workflow:?} is disabled: it cannot be dispatched"),
            )
            .with_operation("deploy.dispatch"));
        }
        st.next += 1;
        let id = st.next.to_string();
        let script = st
            .scripts
            .get(workflow)
            .cloned()
            .unwrap_or(Script::Completes {
                conclusion: Conclusion::Success,
                polls: 0,
            });
        st.runs.insert(id.clone(), (script, 0));
        Ok(RunHandle {
            workflow: workflow.to_string(),
            url: Some(format!("memory://runs/{id}")),
            id,
        })
    }
    async fn status(&self, run: &RunHandle) -> Result<RunStatus> {
        self.calls.push(DeployCall::Status(run.id.clone()));
        self.faults.apply("deploy.status").await?;
        let mut st = self.st();
        let Some((script, seen)) = st.runs.get_mut(&run.id) else {
            return Err(
                Error::new(ErrorKind::NotFound, format!("no run {}", run.id))
                    .with_operation("deploy.status"),
            );
        };
        *seen += 1;
        let url = Some(format!("memory://runs/{}", run.id));
        Ok(match script {
            Script::Completes { conclusion, polls } if *seen > *polls => RunStatus {
                state: RunState::Completed,
                conclusion: Some(*conclusion),
                detail: Some(format!("{conclusion:?}").to_lowercase()),
                url,
            },
            _ => RunStatus {
                state: RunState::InProgress,
                conclusion: None,
                detail: None,
                url,
            },
        })
    }
    async fn commit_checks(&self, commit: &str) -> Result<CheckSummary> {
        self.calls.push(DeployCall::Checks(commit.to_string()));
        self.faults.apply("deploy.checks").await?;
        Ok(self.st().checks.clone().unwrap_or(CheckSummary {
            total: 1,
            failed: Vec::new(),
            pending: Vec::new(),
        }))
    }
    async fn commit_review(&self, _commit: &str) -> Result<ReviewSummary> {
        self.faults.apply("deploy.review").await?;
        Ok(self.st().review.clone().unwrap_or(ReviewSummary {
            pull: Some(1),
            url: Some("memory://pulls/1".into()),
            approved_by: vec!["reviewer".into()],
            changes_requested_by: Vec::new(),
        }))
    }
    async fn security_alerts(
        &self,
        source: &str,
        severities: &[String],
    ) -> Result<Vec<SecurityAlert>> {
        self.faults.apply("deploy.security").await?;
        let st = self.st();
        Ok(st
            .alerts
            .iter()
            .filter(|a| a.source == source && severities.contains(&a.severity))
            .cloned()
            .collect())
    }
    async fn workflow_enabled(&self, workflow: &str) -> Result<bool> {
        self.faults.apply("deploy.workflow").await?;
        let st = self.st();
        st.known(workflow, "deploy.workflow")?;
        Ok(!st.disabled.contains(workflow))
    }
    async fn set_workflow_enabled(&self, workflow: &str, enabled: bool) -> Result<()> {
        self.calls
            .push(DeployCall::SetEnabled(workflow.to_string(), enabled));
        self.faults.apply("deploy.workflow").await?;
        let mut st = self.st();
        st.known(workflow, "deploy.workflow")?;
        if enabled {
            st.disabled.remove(workflow);
        } else {
            st.disabled.insert(workflow.to_string());
        }
        Ok(())
    }
}
