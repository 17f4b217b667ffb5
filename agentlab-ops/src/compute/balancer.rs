//! The load-balancer trait (one classic ELB or one ELBv2 target group), target health, and the
//! waits for "in service" and "drained" shared by every backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{Error, ErrorKind, Result};

/// Which balancer, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerRef {
    /// Name in reports (`web`).
    pub name: String,
    /// `classic` or `target_group`.
    pub kind: crate::config::BalancerKind,
    /// The classic balancer's name or the target group's ARN.
    pub target: String,
}

/// A target's health, in one vocabulary for both APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Serving (`InService`, `healthy`).
    Healthy,
    /// Registered, health checks not passed yet (`initial`; classic: registration in
    /// progress).
    Initial,
    /// Failing its health checks (`OutOfService`, `unhealthy`).
    Unhealthy,
    /// Deregistered, connections draining (`draining`).
    Draining,
    /// Registered but not used: no listener, stopped instance (`unused`, `unavailable`).
    Unused,
}

/// One registered target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// Instance id.
    pub id: String,
    /// Health.
    pub state: TargetState,
    /// Why, when the API says (`Instance has failed at least the UnhealthyThreshold...`).
    pub reason: Option<String>,
}

/// One classic ELB or ELBv2 target group.
///
/// Contract: `health` lists every registered target (and, for ELBv2, those still draining);
/// registering a registered target and deregistering an unregistered one succeed and change
/// nothing; an unknown balancer is `not_found`. A newly registered target is not healthy until
/// its health checks pass; a deregistered one drains for [`LoadBalancer::drain_delay`].
#[async_trait::async_trait]
pub trait LoadBalancer: Send + Sync + std::fmt::Debug {
    /// Which balancer.
    fn which(&self) -> &BalancerRef;
    /// Add these instances.
    async fn register(&self, ids: &[String]) -> Result<()>;
    /// Remove these instances (they drain first).
    async fn deregister(&self, ids: &[String]) -> Result<()>;
    /// Every target's health.
    async fn health(&self) -> Result<Vec<TargetHealth>>;
    /// How long a deregistered target drains (ELBv2 `deregistration_delay.timeout_seconds`,
    /// classic connection draining; 0 when off).
    async fn drain_delay(&self) -> Result<Duration>;
    /// Whether the API shows draining targets (ELBv2 does; a classic ELB drops them at once,
    /// so waiting for a drain means waiting for the delay).
    fn shows_draining(&self) -> bool;
}

/// Wait until every one of `ids` is healthy; a target that is unhealthy at the deadline is
/// named with the balancer's reason.
pub async fn wait_healthy(
    lb: &dyn LoadBalancer,
    clock: &dyn Clock,
    ids: &[String],
    timeout: Duration,
    every: Duration,
) -> Result<Vec<TargetHealth>> {
    let deadline = clock.now() + chrono::Duration::from_std(timeout).unwrap_or_default();
    loop {
        let all = lb.health().await?;
        let mine: Vec<TargetHealth> = all.into_iter().filter(|t| ids.contains(&t.id)).collect();
        let not: Vec<String> = ids
            .iter()
            .filter(|id| {
                !mine
                    .iter()
                    .any(|t| &t.id == *id && t.state == TargetState::Healthy)
            })
            .map(|id| describe_target(&mine, id))
            .collect();
        if not.is_empty() {
            return Ok(mine);
        }
        if clock.now() >= deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}: not healthy after {}: {}",
                    lb.which().name,
                    crate::units::format_duration(timeout),
                    not.join("; ")
                ),
            )
            .with_context("balancer", lb.which().name.clone()));
        }
        clock.sleep(every).await;
    }
}

fn describe_target(mine: &[TargetHealth], id: &str) -> String {
    match mine.iter().find(|t| t.id == id) {
        None => format!("{id} not registered"),
        Some(t) => match &t.reason {
            Some(r) => format!("{id} {:?} ({r})", t.state),
            None => format!("{id} {:?}", t.state),
        },
    }
}

/// Wait until `ids` have drained: gone from the balancer's list (ELBv2), or the drain delay
/// has passed since deregistering (a classic ELB, which drops them at once).
pub async fn wait_drained(
    lb: &dyn LoadBalancer,
    clock: &dyn Clock,
    ids: &[String],
    timeout: Duration,
    every: Duration,
) -> Result<Duration> {
    let delay = lb.drain_delay().await?;
    let started = clock.now();
    if !lb.shows_draining() {
        if delay > timeout {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{}: the drain delay {} is longer than drain_timeout",
                    lb.which().name,
                    crate::units::format_duration(delay)
                ),
            ));
        }
        clock.sleep(delay).await;
        return Ok(delay);
    }
    let name = format!("{}: drain of {}", lb.which().name, ids.join(", "));
    super::poll_until(clock, timeout, every, &name, || async {
        let h = lb.health().await?;
        Ok(!h.iter().any(|t| ids.contains(&t.id)))
    })
    .await?;
    Ok((clock.now() - started).to_std().unwrap_or_default())
}
