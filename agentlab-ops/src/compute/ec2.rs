//! [`Ec2Compute`]: instances through `aws-sdk-ec2`, waits through the SDK's waiters.
//!
//! Credentials come from the standard chain; `[aws] endpoint_url` points it at moto or
//! LocalStack. Calls are not retried here (SDK retries are off): the environment wraps this in
//! [`super::RetriedCompute`], the one retry policy for every compute backend.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{AttributeValue, ResourceType, Tag, TagSpecification};

use super::aws::{map, map_wait};
use super::{Compute, Instance, InstanceState, Snapshot, SnapshotState, Volume};
use crate::config::{AwsConfig, ComputeConfig};
use crate::error::{Error, ErrorKind, Result};

/// EC2 in one region.
#[derive(Debug, Clone)]
pub struct Ec2Compute {
    client: aws_sdk_ec2::Client,
    place: String,
}

impl Ec2Compute {
    /// A client from the shared SDK config.
    pub fn new(sdk: &aws_config::SdkConfig, aws: &AwsConfig, _c: &ComputeConfig) -> Self {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let place = match &aws.endpoint_url {
            Some(u) => format!("EC2 at {u}"),
            None => format!("EC2 {region}"),
        };
        Ec2Compute {
            client: aws_sdk_ec2::Client::new(sdk),
            place,
        }
    }
    /// Wrap an existing client (tests, custom credentials).
    pub fn from_client(client: aws_sdk_ec2::Client, place: impl Into<String>) -> Self {
        Ec2Compute {
            client,
            place: place.into(),
        }
    }
    /// The client (to create instances in tests).
    pub fn client(&self) -> &aws_sdk_ec2::Client {
        &self.client
    }
}

fn tags_of(t: &[Tag]) -> BTreeMap<String, String> {
    t.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn snapshot_of(s: &aws_sdk_ec2::types::Snapshot) -> Snapshot {
    Snapshot {
        id: s.snapshot_id().unwrap_or_default().to_string(),
        volume_id: s.volume_id().unwrap_or_default().to_string(),
        size_gib: s.volume_size().unwrap_or(0).max(0) as u32,
        state: state_of(s.state().map(|s| s.as_str())),
        tags: tags_of(s.tags()),
    }
}

fn state_of(s: Option<&str>) -> SnapshotState {
    match s {
        Some("completed") => SnapshotState::Completed,
        Some("error") => SnapshotState::Error,
        _ => SnapshotState::Pending,
    }
}

impl Ec2Compute {
    fn bad(&self, id: &str, what: &str) -> Error {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("{}: {id}: the answer has no {what}", self.place),
        )
        .with_context("instance", id)
    }

    fn instance_of(&self, id: &str, i: &aws_sdk_ec2::types::Instance) -> Result<Instance> {
        let state = i
            .state()
            .and_then(|s| s.name())
            .and_then(|n| InstanceState::parse(n.as_str()))
            .ok_or_else(|| self.bad(id, "known state"))?;
        let instance_type = i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .ok_or_else(|| self.bad(id, "instance type"))?;
        let volumes = i
            .block_device_mappings()
            .iter()
            .filter_map(|b| {
                Some(Volume {
                    id: b.ebs()?.volume_id()?.to_string(),
                    device: b.device_name().unwrap_or_default().to_string(),
                })
            })
            .collect();
        Ok(Instance {
            id: id.to_string(),
            state,
            instance_type,
            volumes,
            tags: tags_of(i.tags()),
            private_ip: i.private_ip_address().map(str::to_string),
        })
    }
}

#[async_trait::async_trait]
impl Compute for Ec2Compute {
    fn place(&self) -> String {
        self.place.clone()
    }
    async fn describe(&self, id: &str) -> Result<Instance> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| map(e, "compute.describe", &self.place).with_context("instance", id))?;
        let found = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id));
        match found {
            Some(i) => self.instance_of(id, i),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("{}: no instance {id}", self.place),
            )
            .with_context("instance", id)),
        }
    }
    async fn stop(&self, id: &str) -> Result<()> {
        self.client
            .stop_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map(e, "compute.stop", &self.place).with_context("instance", id))
    }
    async fn start(&self, id: &str) -> Result<()> {
        self.client
            .start_instances()
            .instance_ids(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map(e, "compute.start", &self.place).with_context("instance", id))
    }
    async fn set_type(&self, id: &str, instance_type: &str) -> Result<()> {
        self.client
            .modify_instance_attribute()
            .instance_id(id)
            .instance_type(AttributeValue::builder().value(instance_type).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map(e, "compute.set_type", &self.place).with_context("instance", id))
    }
    async fn wait_state(&self, id: &str, state: InstanceState, timeout: Duration) -> Result<()> {
        let what = format!("{id} {state}");
        let op = "compute.wait_state";
        let c = &self.client;
        let r = match state {
            InstanceState::Stopped => c
                .wait_until_instance_stopped()
                .instance_ids(id)
                .wait(timeout)
                .await
                .map(|_| ())
                .map_err(|e| map_wait(e, op, &self.place, &what)),
            InstanceState::Running => c
                .wait_until_instance_running()
                .instance_ids(id)
                .wait(timeout)
                .await
                .map(|_| ())
                .map_err(|e| map_wait(e, op, &self.place, &what)),
            InstanceState::Terminated => c
                .wait_until_instance_terminated()
                .instance_ids(id)
                .wait(timeout)
                .await
                .map(|_| ())
                .map_err(|e| map_wait(e, op, &self.place, &what)),
            s => Err(Error::new(
                ErrorKind::Unsupported,
                format!("EC2 has no waiter for {s}"),
            )),
        };
        r.map_err(|e| e.with_context("instance", id))
    }
    async fn wait_status_ok(&self, id: &str, timeout: Duration) -> Result<()> {
        let what = format!("{id} status checks");
        self.client
            .wait_until_instance_status_ok()
            .instance_ids(id)
            .wait(timeout)
            .await
            .map(|_| ())
            .map_err(|e| {
                map_wait(e, "compute.wait_status_ok", &self.place, &what)
                    .with_context("instance", id)
            })
    }
    async fn snapshot(
        &self,
        id: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<Snapshot>> {
        let inst = self.describe(id).await?;
        let spec = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let mut out = Vec::new();
        for v in &inst.volumes {
            let s = self
                .client
                .create_snapshot()
                .volume_id(&v.id)
                .description(format!("{description} ({id} {})", v.device))
                .tag_specifications(spec.clone())
                .send()
                .await
                .map_err(|e| {
                    map(e, "compute.snapshot", &self.place)
                        .with_context("instance", id)
                        .with_context("volume", v.id.clone())
                })?;
            out.push(Snapshot {
                id: s.snapshot_id().unwrap_or_default().to_string(),
                volume_id: v.id.clone(),
                size_gib: s.volume_size().unwrap_or(0).max(0) as u32,
                state: state_of(s.state().map(|s| s.as_str())),
                tags: tags_of(s.tags()),
            });
        }
        Ok(out)
    }
    async fn snapshots(&self, ids: &[String]) -> Result<Vec<Snapshot>> {
        let out = self
            .client
            .describe_snapshots()
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| map(e, "compute.snapshots", &self.place))?;
        Ok(out.snapshots().iter().map(snapshot_of).collect())
    }
}
