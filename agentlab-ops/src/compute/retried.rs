//! Retries of compute and balancer calls, in one place for every backend (the SDK's own
//! retries are off): temporary errors (throttling, 5xx, timeouts) are retried with backoff and
//! jitter by [`crate::retry`]. Creating snapshots is not idempotent, so it is retried only when
//! the API refused it outright (throttling), never after a timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{BalancerRef, Compute, InstanceState, LoadBalancer, Snapshot, TargetHealth};
use crate::error::{ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};

/// A [`Compute`] whose calls are retried.
#[derive(Debug, Clone)]
pub struct RetriedCompute {
    inner: Arc<dyn Compute>,
    policy: RetryPolicy,
}

impl RetriedCompute {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Compute>, policy: RetryPolicy) -> Self {
        RetriedCompute { inner, policy }
    }
    /// A policy for a wait of `timeout`: the attempt may take the whole wait.
    fn waiting(&self, timeout: Duration) -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: timeout + self.policy.attempt_timeout,
            ..self.policy
        }
    }
}

#[async_trait::async_trait]
impl Compute for RetriedCompute {
    fn place(&self) -> String {
        self.inner.place()
    }
    async fn describe(&self, id: &str) -> Result<super::Instance> {
        retry(&self.policy, "compute.describe", || self.inner.describe(id)).await
    }
    async fn stop(&self, id: &str) -> Result<()> {
        retry(&self.policy, "compute.stop", || self.inner.stop(id)).await
    }
    async fn start(&self, id: &str) -> Result<()> {
        retry(&self.policy, "compute.start", || self.inner.start(id)).await
    }
    async fn set_type(&self, id: &str, t: &str) -> Result<()> {
        retry(&self.policy, "compute.set_type", || {
            self.inner.set_type(id, t)
        })
        .await
    }
    async fn wait_state(&self, id: &str, state: InstanceState, timeout: Duration) -> Result<()> {
        retry(&self.waiting(timeout), "compute.wait_state", || {
            self.inner.wait_state(id, state, timeout)
        })
        .await
    }
    async fn wait_status_ok(&self, id: &str, timeout: Duration) -> Result<()> {
        retry(&self.waiting(timeout), "compute.wait_status_ok", || {
            self.inner.wait_status_ok(id, timeout)
        })
        .await
    }
    async fn snapshot(
        &self,
        id: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Snapshot>> {
        retry(&self.policy, "compute.snapshot", || async {
            self.inner
                .snapshot(id, description, tags)
                .await
                .map_err(|e| {
                    let refused = e.kind() == ErrorKind::RateLimited;
                    e.set_temporary(refused)
                })
        })
        .await
    }
    async fn snapshots(&self, ids: &[String]) -> Result<Vec<Snapshot>> {
        retry(&self.policy, "compute.snapshots", || {
            self.inner.snapshots(ids)
        })
        .await
    }
}

/// A [`LoadBalancer`] whose calls are retried (registering is idempotent).
#[derive(Debug, Clone)]
pub struct RetriedBalancer {
    inner: Arc<dyn LoadBalancer>,
    policy: RetryPolicy,
}

impl RetriedBalancer {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn LoadBalancer>, policy: RetryPolicy) -> Self {
        RetriedBalancer { inner, policy }
    }
}

#[async_trait::async_trait]
impl LoadBalancer for RetriedBalancer {
    fn which(&self) -> &BalancerRef {
        self.inner.which()
    }
    async fn register(&self, ids: &[String]) -> Result<()> {
        retry(&self.policy, "balancer.register", || {
            self.inner.register(ids)
        })
        .await
    }
    async fn deregister(&self, ids: &[String]) -> Result<()> {
        retry(&self.policy, "balancer.deregister", || {
            self.inner.deregister(ids)
        })
        .await
    }
    async fn health(&self) -> Result<Vec<TargetHealth>> {
        retry(&self.policy, "balancer.health", || self.inner.health()).await
    }
    async fn drain_delay(&self) -> Result<Duration> {
        retry(&self.policy, "balancer.drain_delay", || {
            self.inner.drain_delay()
        })
        .await
    }
    fn shows_draining(&self) -> bool {
        self.inner.shows_draining()
    }
}
