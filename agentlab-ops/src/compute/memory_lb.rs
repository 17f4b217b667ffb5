//! [`MemoryBalancer`] (a classic ELB or a target group on a [`Clock`]: a new target passes its
//! health checks only after a dwell, a deregistered one drains for the delay, a target whose
//! instance is not running is unhealthy) and [`MemoryCost`].

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    BalancerRef, Compute, CostPeriod, CostSource, InstanceState, LoadBalancer, MemoryCompute,
    TargetHealth, TargetState,
};
use crate::clock::Clock;
use crate::config::BalancerKind;
use crate::double::{CallLog, Faults};
use crate::error::Result;

/// A call made to a [`MemoryBalancer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalancerCall {
    /// `register(ids)`.
    Register(Vec<String>),
    /// `deregister(ids)`.
    Deregister(Vec<String>),
}

#[derive(Debug, Default)]
struct State {
    registered: BTreeMap<String, DateTime<Utc>>,
    draining: BTreeMap<String, DateTime<Utc>>,
    failing: HashSet<String>,
}

/// A load balancer in memory. Clones share state.
#[derive(Debug, Clone)]
pub struct MemoryBalancer {
    which: BalancerRef,
    st: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    compute: Option<MemoryCompute>,
    calls: CallLog<BalancerCall>,
    faults: Faults,
    /// Registration → healthy (healthy threshold × interval).
    pub healthy_after: Duration,
    /// The deregistration delay.
    pub drain: Duration,
}

impl MemoryBalancer {
    /// A balancer named `name` of `kind`; with `compute`, a target whose instance is not running
    /// is unhealthy, as on AWS.
    pub fn new(
        name: &str,
        kind: BalancerKind,
        clock: Arc<dyn Clock>,
        compute: Option<MemoryCompute>,
    ) -> Self {
        MemoryBalancer {
            which: BalancerRef {
                name: name.into(),
                kind,
                target: match kind {
                    BalancerKind::Classic => name.into(),
                    BalancerKind::TargetGroup => {
                        format!(
                            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0"
                        )
                    }
                },
            },
            st: Arc::default(),
            clock,
            compute,
            calls: CallLog::default(),
            faults: Faults::default(),
            healthy_after: Duration::from_secs(30),
            drain: Duration::from_secs(300),
        }
    }
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Register targets that are healthy already (set-up of a test).
    pub fn with_healthy(self, ids: &[&str]) -> Self {
        let long_ago = self.clock.now() - chrono::Duration::hours(1);
        for id in ids {
            self.st().registered.insert((*id).to_string(), long_ago);
        }
        self
    }
    /// This target fails its health checks.
    pub fn fail_health(&self, id: &str) {
        self.st().failing.insert(id.to_string());
    }
    /// Failures to inject into its calls.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
    /// Every register/deregister so far.
    pub fn calls(&self) -> Vec<BalancerCall> {
        self.calls.all()
    }
    /// Whether `id` is registered (not draining).
    pub fn is_registered(&self, id: &str) -> bool {
        self.st().registered.contains_key(id)
    }
}

#[async_trait::async_trait]
impl LoadBalancer for MemoryBalancer {
    fn which(&self) -> &BalancerRef {
        &self.which
    }
    async fn register(&self, ids: &[String]) -> Result<()> {
        self.faults.apply("balancer.register").await?;
        self.calls.push(BalancerCall::Register(ids.to_vec()));
        let now = self.clock.now();
        let mut st = self.st();
        for id in ids {
            st.draining.remove(id);
            st.registered.entry(id.clone()).or_insert(now);
        }
        Ok(())
    }
    async fn deregister(&self, ids: &[String]) -> Result<()> {
        self.faults.apply("balancer.deregister").await?;
        self.calls.push(BalancerCall::Deregister(ids.to_vec()));
        let now = self.clock.now();
        let mut st = self.st();
        for id in ids {
            if st.registered.remove(id).is_some() {
                st.draining.insert(id.clone(), now);
            }
        }
        Ok(())
    }
    async fn health(&self) -> Result<Vec<TargetHealth>> {
        self.faults.apply("balancer.health").await?;
        let now = self.clock.now();
        let (registered, draining, failing) = {
            let mut st = self.st();
            let drain = chrono::Duration::from_std(self.drain).unwrap_or_default();
            st.draining.retain(|_, at| *at + drain > now);
            (
                st.registered.clone(),
                st.draining.clone(),
                st.failing.clone(),
            )
        };
        let mut out = Vec::new();
        for (id, at) in registered {
            let running = match &self.compute {
                Some(c) => c
                    .describe(&id)
                    .await
                    .is_ok_and(|i| i.state == InstanceState::Running),
                None => true,
            };
            let warm = (now - at).to_std().unwrap_or_default() >= self.healthy_after;
            let (state, reason) = if !running {
                (
                    TargetState::Unhealthy,
                    Some("Instance is not running".into()),
                )
            } else if failing.contains(&id) {
                (TargetState::Unhealthy, Some("Health checks failed".into()))
            } else if !warm {
                (
                    TargetState::Initial,
                    Some("Target registration is in progress".into()),
                )
            } else {
                (TargetState::Healthy, None)
            };
            out.push(TargetHealth { id, state, reason });
        }
        if self.shows_draining() {
            out.extend(draining.into_keys().map(|id| TargetHealth {
                id,
                state: TargetState::Draining,
                reason: Some("Target deregistration is in progress".into()),
            }));
        }
        Ok(out)
    }
    async fn drain_delay(&self) -> Result<Duration> {
        Ok(self.drain)
    }
    fn shows_draining(&self) -> bool {
        self.which.kind == BalancerKind::TargetGroup
    }
}

/// Cost in memory: the months it was given.
#[derive(Debug, Clone, Default)]
pub struct MemoryCost {
    months: Arc<Mutex<Vec<CostPeriod>>>,
    faults: Faults,
}

impl MemoryCost {
    /// No months yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a month (`2026-11-01`) with its cost per service, in USD.
    pub fn month(self, start: NaiveDate, services: &[(&str, f64)]) -> Self {
        let end = start
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(start);
        let by_service: BTreeMap<String, f64> = services
            .iter()
            .map(|(s, v)| ((*s).to_string(), *v))
            .collect();
        let p = CostPeriod {
            start,
            end,
            total: by_service.values().sum(),
            unit: "USD".into(),
            by_service,
            estimated: false,
        };
        self.months
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
        self
    }
    /// Failures to inject.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

#[async_trait::async_trait]
impl CostSource for MemoryCost {
    async fn monthly(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        _metric: &str,
    ) -> Result<Vec<CostPeriod>> {
        self.faults.apply("cost.monthly").await?;
        let mut v: Vec<CostPeriod> = self
            .months
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|p| p.start >= start && p.start < end)
            .cloned()
            .collect();
        v.sort_by_key(|p| p.start);
        Ok(v)
    }
}
