//! Compute, load balancers and cost: the cloud side of Resource Scaling, the incident snapshot
//! and the monthly review.
//!
//! - [`Compute`]: instances (state, type, volumes, tags), stop/start with waits, resize,
//!   snapshots. EC2 through `aws-sdk-ec2` ([`Ec2Compute`], feature `ec2`); [`MemoryCompute`]
//!   is a double *stricter than moto*: the real state machine with dwell times on the
//!   [`Clock`], refusing what EC2 refuses, with capacity failures, throttling and stalls.
//! - [`LoadBalancer`]: one classic ELB or ELBv2 target group ([`AwsBalancer`], feature `elb`;
//!   [`MemoryBalancer`]): register, deregister, target health, the drain delay.
//! - [`CostSource`]: Cost Explorer's monthly cost by service ([`CostExplorer`], feature
//!   `cost`; [`MemoryCost`]).
//!
//! Every backend passes [`crate::testing::compute`]'s conformance checks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};

#[cfg(any(feature = "ec2", feature = "elb", feature = "cost"))]
mod aws;
mod balancer;
#[cfg(feature = "cost")]
mod ce;
#[cfg(feature = "ec2")]
mod ec2;
#[cfg(feature = "elb")]
mod elb;
mod memory;
mod memory_lb;
mod retried;

pub use balancer::{
    BalancerRef, LoadBalancer, TargetHealth, TargetState, wait_drained, wait_healthy,
};
#[cfg(feature = "cost")]
pub use ce::CostExplorer;
#[cfg(feature = "ec2")]
pub use ec2::Ec2Compute;
#[cfg(feature = "elb")]
pub use elb::AwsBalancer;
pub use memory::{ComputeCall, MemoryCompute};
pub use memory_lb::{BalancerCall, MemoryBalancer, MemoryCost};
pub use retried::{RetriedBalancer, RetriedCompute};

/// The lifecycle state of an instance (EC2's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Starting.
    Pending,
    /// Running.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating.
    ShuttingDown,
    /// Gone.
    Terminated,
}

impl InstanceState {
    /// EC2's name (`running`).
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }
    /// From EC2's name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            _ => return None,
        })
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A volume attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `vol-...`.
    pub id: String,
    /// Device name (`/dev/xvda`).
    pub device: String,
}

/// An instance as described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-...`.
    pub id: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Instance type (`t3.medium`).
    pub instance_type: String,
    /// Attached volumes.
    pub volumes: Vec<Volume>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Private address.
    pub private_ip: Option<String>,
}

/// A snapshot's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// Being taken.
    Pending,
    /// Done.
    Completed,
    /// Failed.
    Error,
}

/// A volume snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `snap-...`.
    pub id: String,
    /// The volume it is of.
    pub volume_id: String,
    /// The volume's size.
    pub size_gib: u32,
    /// Progress.
    pub state: SnapshotState,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// Instances: describe, stop/start and wait, resize, snapshot.
///
/// Contract (EC2's): `describe` of an unknown id is `not_found`; `stop` of a stopped instance
/// and `start` of a running one succeed and change nothing; `set_type` is refused with
/// `conflict` unless the instance is `stopped` (EC2's `IncorrectInstanceState`); `start` may
/// fail with `unavailable` (`InsufficientInstanceCapacity`) and leave the instance stopped;
/// waits end with `timeout` after `timeout`, and with `conflict` when the instance reaches a
/// state it cannot leave towards the one awaited (terminated).
#[async_trait::async_trait]
pub trait Compute: Send + Sync + std::fmt::Debug {
    /// Where it is, for messages (`EC2 us-east-1`).
    fn place(&self) -> String;
    /// One instance.
    async fn describe(&self, id: &str) -> Result<Instance>;
    /// Ask it to stop.
    async fn stop(&self, id: &str) -> Result<()>;
    /// Ask it to start.
    async fn start(&self, id: &str) -> Result<()>;
    /// Change its type (stopped instances only).
    async fn set_type(&self, id: &str, instance_type: &str) -> Result<()>;
    /// Wait until it is in `state`.
    async fn wait_state(&self, id: &str, state: InstanceState, timeout: Duration) -> Result<()>;
    /// Wait until its status checks pass (EC2's `instance-status-ok`).
    async fn wait_status_ok(&self, id: &str, timeout: Duration) -> Result<()>;
    /// Snapshot every volume of the instance, with `tags` on each snapshot.
    async fn snapshot(
        &self,
        id: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Snapshot>>;
    /// The snapshots of these ids.
    async fn snapshots(&self, ids: &[String]) -> Result<Vec<Snapshot>>;
}

/// A month's cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPeriod {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last.
    pub end: NaiveDate,
    /// Sum of every service.
    pub total: f64,
    /// Currency (`USD`).
    pub unit: String,
    /// Cost per service.
    pub by_service: BTreeMap<String, f64>,
    /// Whether the provider still estimates it (the current month).
    pub estimated: bool,
}

/// Cost per month and service.
///
/// Contract: one [`CostPeriod`] per month in `[start, end)`, oldest first; an amount that is not
/// a number is `invalid_response` naming the service.
#[async_trait::async_trait]
pub trait CostSource: Send + Sync + std::fmt::Debug {
    /// Monthly cost by service, of `metric` (`UnblendedCost`).
    async fn monthly(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        metric: &str,
    ) -> Result<Vec<CostPeriod>>;
}

/// The cloud backends of a config: compute (with `[compute]`), its load balancers, and cost
/// (with `[cost]`).
pub type CloudBackends = (
    Option<Arc<dyn Compute>>,
    Vec<Arc<dyn LoadBalancer>>,
    Option<Arc<dyn CostSource>>,
);

/// Build them from `[aws]`, `[compute]` and `[cost]` (a section whose SDK was not compiled in is
/// an `unsupported` error naming the cargo feature).
pub async fn from_config(config: &Config) -> Result<CloudBackends> {
    if config.compute.is_none() && config.cost.is_none() {
        return Ok((None, Vec::new(), None));
    }
    build(config).await
}

#[cfg(any(feature = "ec2", feature = "elb", feature = "cost"))]
async fn build(config: &Config) -> Result<CloudBackends> {
    let sdk = aws::load(&config.aws).await?;
    let (compute, lbs) = match &config.compute {
        Some(c) => (
            Some(ec2_of(&sdk, config, c)?),
            c.load_balancers
                .iter()
                .map(|b| elb_of(&sdk, config, b))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => (None, Vec::new()),
    };
    let cost = match &config.cost {
        Some(_) => Some(cost_of(&sdk, config)?),
        None => None,
    };
    Ok((compute, lbs, cost))
}

#[cfg(not(any(feature = "ec2", feature = "elb", feature = "cost")))]
async fn build(config: &Config) -> Result<CloudBackends> {
    let section = if config.compute.is_some() {
        "compute"
    } else {
        "cost"
    };
    Err(missing_feature(section, "aws"))
}

#[cfg(feature = "ec2")]
fn ec2_of(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    c: &crate::config::ComputeConfig,
) -> Result<Arc<dyn Compute>> {
    Ok(Arc::new(Ec2Compute::new(sdk, &config.aws, c)))
}
#[cfg(all(not(feature = "ec2"), any(feature = "elb", feature = "cost")))]
fn ec2_of(
    _: &aws_config::SdkConfig,
    _: &Config,
    _: &crate::config::ComputeConfig,
) -> Result<Arc<dyn Compute>> {
    Err(missing_feature("compute", "ec2"))
}

#[cfg(feature = "elb")]
fn elb_of(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    b: &crate::config::BalancerConfig,
) -> Result<Arc<dyn LoadBalancer>> {
    Ok(Arc::new(AwsBalancer::new(sdk, &config.aws, b)))
}
#[cfg(all(not(feature = "elb"), any(feature = "ec2", feature = "cost")))]
fn elb_of(
    _: &aws_config::SdkConfig,
    _: &Config,
    b: &crate::config::BalancerConfig,
) -> Result<Arc<dyn LoadBalancer>> {
    Err(missing_feature(
        &format!("compute.load_balancers {}", b.name),
        "elb",
    ))
}

#[cfg(feature = "cost")]
fn cost_of(sdk: &aws_config::SdkConfig, config: &Config) -> Result<Arc<dyn CostSource>> {
    Ok(Arc::new(CostExplorer::new(sdk, &config.aws)))
}
#[cfg(all(not(feature = "cost"), any(feature = "ec2", feature = "elb")))]
fn cost_of(_: &aws_config::SdkConfig, _: &Config) -> Result<Arc<dyn CostSource>> {
    Err(missing_feature("cost", "cost"))
}

#[allow(dead_code)] // only without some cloud feature
fn missing_feature(section: &str, feature: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("[{section}] needs agentlab-ops built with the cargo feature {feature:?}"),
    )
    .with_operation("compute.build")
}

/// Poll `f` through `clock` every `every` until it says done, or `timeout` passes: the one wait
/// loop of the doubles (and of the classic ELB's drain). A temporary error (throttling) is one
/// more poll, not the end of the wait; the timeout names the last one.
pub(crate) async fn poll_until<F, Fut>(
    clock: &dyn Clock,
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = clock.now() + chrono::Duration::from_std(timeout).unwrap_or_default();
    let mut last_err = None;
    loop {
        match f().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) if e.is_temporary() => {
                tracing::debug!(what, error = %e, "poll failed, polling again");
                last_err = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
        if clock.now() >= deadline {
            let why = last_err
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{what}: not done after {}{why}",
                    crate::units::format_duration(timeout)
                ),
            ));
        }
        clock.sleep(every).await;
    }
}
