//! [`AwsBalancer`]: a classic ELB (`aws-sdk-elasticloadbalancing`, the spec's
//! `aws elb register-instances-with-load-balancer`) or an ELBv2 target group
//! (`aws-sdk-elasticloadbalancingv2`), behind one [`LoadBalancer`].

use std::time::Duration;

use aws_sdk_elasticloadbalancing as elb;
use aws_sdk_elasticloadbalancingv2 as elbv2;

use super::aws::map;
use super::{BalancerRef, LoadBalancer, TargetHealth, TargetState};
use crate::config::{AwsConfig, BalancerConfig, BalancerKind};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone)]
enum Client {
    Classic(elb::Client),
    Group(elbv2::Client),
}

/// One classic ELB or ELBv2 target group.
#[derive(Debug, Clone)]
pub struct AwsBalancer {
    client: Client,
    which: BalancerRef,
    place: String,
}

impl AwsBalancer {
    /// A client for `b` from the shared SDK config.
    pub fn new(sdk: &aws_config::SdkConfig, _aws: &AwsConfig, b: &BalancerConfig) -> Self {
        let client = match b.kind {
            BalancerKind::Classic => Client::Classic(elb::Client::new(sdk)),
            BalancerKind::TargetGroup => Client::Group(elbv2::Client::new(sdk)),
        };
        let place = match b.kind {
            BalancerKind::Classic => format!("ELB {}", b.target),
            BalancerKind::TargetGroup => format!("target group {}", b.name),
        };
        AwsBalancer {
            client,
            which: BalancerRef {
                name: b.name.clone(),
                kind: b.kind,
                target: b.target.clone(),
            },
            place,
        }
    }
}

fn instances(ids: &[String]) -> Vec<elb::types::Instance> {
    ids.iter()
        .map(|i| elb::types::Instance::builder().instance_id(i).build())
        .collect()
}

fn targets(ids: &[String]) -> Vec<elbv2::types::TargetDescription> {
    ids.iter()
        .map(|i| elbv2::types::TargetDescription::builder().id(i).build())
        .collect()
}

fn classic_state(s: &elb::types::InstanceState) -> TargetHealth {
    let desc = s.description().map(str::to_string);
    let state = match s.state() {
        Some("InService") => TargetState::Healthy,
        Some("OutOfService")
            if desc
                .as_deref()
                .is_some_and(|d| d.contains("registration is still in progress")) =>
        {
            TargetState::Initial
        }
        Some("OutOfService") => TargetState::Unhealthy,
        _ => TargetState::Initial,
    };
    TargetHealth {
        id: s.instance_id().unwrap_or_default().to_string(),
        state,
        reason: desc.filter(|d| !d.is_empty() && d != "N/A"),
    }
}

fn group_state(d: &elbv2::types::TargetHealthDescription) -> TargetHealth {
    let h = d.target_health();
    let state = match h.and_then(|h| h.state()).map(|s| s.as_str()) {
        Some("healthy") => TargetState::Healthy,
        Some("initial") => TargetState::Initial,
        Some("draining" | "unhealthy.draining") => TargetState::Draining,
        Some("unused" | "unavailable") => TargetState::Unused,
        _ => TargetState::Unhealthy,
    };
    TargetHealth {
        id: d
            .target()
            .and_then(|t| t.id())
            .unwrap_or_default()
            .to_string(),
        state,
        reason: h.and_then(|h| h.description()).map(str::to_string),
    }
}

#[async_trait::async_trait]
impl LoadBalancer for AwsBalancer {
    fn which(&self) -> &BalancerRef {
        &self.which
    }
    async fn register(&self, ids: &[String]) -> Result<()> {
        let op = "balancer.register";
        let t = &self.which.target;
        match &self.client {
            Client::Classic(c) => c
                .register_instances_with_load_balancer()
                .load_balancer_name(t)
                .set_instances(Some(instances(ids)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map(e, op, &self.place)),
            Client::Group(c) => c
                .register_targets()
                .target_group_arn(t)
                .set_targets(Some(targets(ids)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map(e, op, &self.place)),
        }
    }
    async fn deregister(&self, ids: &[String]) -> Result<()> {
        // Only what is registered: ELBv2 answers `InvalidTarget` for the others, and the
        // contract is that deregistering an unregistered target changes nothing.
        let registered: Vec<String> = self
            .health()
            .await?
            .into_iter()
            .filter(|t| t.state != TargetState::Draining && ids.contains(&t.id))
            .map(|t| t.id)
            .collect();
        if registered.is_empty() {
            return Ok(());
        }
        let ids = &registered[..];
        let op = "balancer.deregister";
        let t = &self.which.target;
        match &self.client {
            Client::Classic(c) => c
                .deregister_instances_from_load_balancer()
                .load_balancer_name(t)
                .set_instances(Some(instances(ids)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map(e, op, &self.place)),
            Client::Group(c) => c
                .deregister_targets()
                .target_group_arn(t)
                .set_targets(Some(targets(ids)))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| map(e, op, &self.place)),
        }
    }
    async fn health(&self) -> Result<Vec<TargetHealth>> {
        let op = "balancer.health";
        let t = &self.which.target;
        match &self.client {
            Client::Classic(c) => {
                let out = c
                    .describe_instance_health()
                    .load_balancer_name(t)
                    .send()
                    .await
                    .map_err(|e| map(e, op, &self.place))?;
                // One entry per instance (moto lists an instance registered twice twice).
                let mut seen = std::collections::HashSet::new();
                Ok(out
                    .instance_states()
                    .iter()
                    .map(classic_state)
                    .filter(|t| seen.insert(t.id.clone()))
                    .collect())
            }
            Client::Group(c) => {
                let out = c
                    .describe_target_health()
                    .target_group_arn(t)
                    .send()
                    .await
                    .map_err(|e| map(e, op, &self.place))?;
                Ok(out
                    .target_health_descriptions()
                    .iter()
                    .map(group_state)
                    .collect())
            }
        }
    }
    async fn drain_delay(&self) -> Result<Duration> {
        let op = "balancer.drain_delay";
        let t = &self.which.target;
        let secs = match &self.client {
            Client::Classic(c) => {
                let out = c
                    .describe_load_balancer_attributes()
                    .load_balancer_name(t)
                    .send()
                    .await
                    .map_err(|e| map(e, op, &self.place))?;
                let d = out
                    .load_balancer_attributes()
                    .and_then(|a| a.connection_draining());
                match d {
                    Some(d) if d.enabled() => d.timeout().unwrap_or(300) as i64,
                    _ => 0,
                }
            }
            Client::Group(c) => {
                let out = c
                    .describe_target_group_attributes()
                    .target_group_arn(t)
                    .send()
                    .await
                    .map_err(|e| map(e, op, &self.place))?;
                let v = out
                    .attributes()
                    .iter()
                    .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                    .and_then(|a| a.value());
                match v {
                    None => 300,
                    Some(v) => v.parse::<i64>().map_err(|_| {
                        Error::new(
                            ErrorKind::InvalidResponse,
                            format!(
                                "{}: deregistration_delay.timeout_seconds {v:?} is not a number",
                                self.place
                            ),
                        )
                    })?,
                }
            }
        };
        Ok(Duration::from_secs(secs.max(0) as u64))
    }
    fn shows_draining(&self) -> bool {
        matches!(self.client, Client::Group(_))
    }
}
