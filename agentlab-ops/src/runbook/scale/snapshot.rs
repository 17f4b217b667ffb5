//! `snapshot`: the Incident Investigation's "snapshot the instance": every volume of an
//! instance, tagged with the incident, the run and who asked, awaited until completed. A
//! snapshot is evidence: it is never deleted by an undo.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{compute, resolve};
use crate::compute::{Compute, Snapshot, SnapshotState};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Action, Report};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions};

/// Options of `snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotOptions {
    /// Instances: ids or hosts of `[compute] instances` (default: every one of them).
    pub instances: Vec<String>,
    /// Incident id for the tags (`INC-42`).
    pub incident: Option<String>,
    /// Wait until every snapshot is completed.
    pub wait: bool,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            instances: Vec::new(),
            incident: None,
            wait: true,
        }
    }
}

impl Validate for SnapshotOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.instances.iter().any(|i| i.trim().is_empty()) {
            return Err("instances: an empty name".into());
        }
        Ok(())
    }
}

/// The payload of `snapshot`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SnapshotPayload {
    /// Every instance's snapshots.
    pub instances: Vec<InstanceSnapshots>,
}

/// One instance's snapshots.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InstanceSnapshots {
    /// Instance id.
    pub instance: String,
    /// Every snapshot, with its size and state.
    pub snapshots: Vec<Snapshot>,
    /// Total size of the volumes.
    pub total_gib: u64,
}

fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Snapshot every volume of each instance.
pub async fn snapshot(env: &Environment, o: &SnapshotOptions, ro: &RunOptions) -> Report {
    env.execute("snapshot", ro, |run| async move {
        let c = compute(env, "snapshot")?;
        let mut out = SnapshotPayload::default();
        for name in super::named_or_all(env, &o.instances)? {
            out.instances
                .push(one(env, &run, c.as_ref(), o, &name).await?);
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

pub(crate) async fn one(
    env: &Environment,
    run: &Run,
    c: &dyn Compute,
    o: &SnapshotOptions,
    name: &str,
) -> Result<InstanceSnapshots> {
    let (host, id) = resolve(env, name)?;
    let inst = run
        .check(
            &format!("describe:{id}"),
            Some(Duration::from_secs(60)),
            async {
                let i = c.describe(&id).await?;
                let vols: Vec<&str> = i.volumes.iter().map(|v| v.id.as_str()).collect();
                Ok(Checked::pass(
                    i.clone(),
                    format!("{id} {}: volumes {}", i.state, vols.join(", ")),
                ))
            },
        )
        .await?;
    if inst.volumes.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("{id} has no volume to snapshot"),
        ));
    }
    let mut tags = BTreeMap::from([
        ("agentlab-ops:run".to_string(), run.run_id().to_string()),
        ("agentlab-ops:by".to_string(), who()),
        ("agentlab-ops:instance".to_string(), id.clone()),
    ]);
    if let Some(i) = &o.incident {
        tags.insert("agentlab-ops:incident".into(), i.clone());
    }
    if let Some(h) = &host {
        tags.insert("agentlab-ops:host".into(), h.clone());
    }
    let desc = format!(
        "agentlab-ops {} {}",
        o.incident.as_deref().unwrap_or("snapshot"),
        run.run_id()
    );
    let plan = format!("snapshot {} volumes of {id}", inst.volumes.len());
    let taken = run
        .change(
            &format!("snapshot:{id}"),
            plan,
            c.snapshot(&id, &desc, &tags),
            None,
        )
        .await?;
    let Some(mut snaps) = taken else {
        return Ok(InstanceSnapshots {
            instance: id,
            ..Default::default()
        });
    };
    if o.wait {
        snaps = wait_completed(env, run, c, &id, &snaps).await?;
    } else {
        run.skip(&format!("completed:{id}"), Action::Read, "wait = false");
    }
    let total_gib = snaps.iter().map(|s| u64::from(s.size_gib)).sum();
    Ok(InstanceSnapshots {
        instance: id,
        snapshots: snaps,
        total_gib,
    })
}

async fn wait_completed(
    env: &Environment,
    run: &Run,
    c: &dyn Compute,
    id: &str,
    snaps: &[Snapshot],
) -> Result<Vec<Snapshot>> {
    let cc = env.config.compute.clone().unwrap_or_default();
    let ids: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
    let t = cc.snapshot_timeout.0;
    run.check(
        &format!("completed:{id}"),
        Some(t + Duration::from_secs(60)),
        async {
            // The last poll's answer is the result: no second describe once they completed.
            let seen = std::sync::Mutex::new(Vec::new());
            crate::compute::poll_until(
                env.clock.as_ref(),
                t,
                cc.poll_interval.0,
                "snapshots",
                || async {
                    let last = c.snapshots(&ids).await?;
                    if let Some(bad) = last.iter().find(|s| s.state == SnapshotState::Error) {
                        return Err(Error::new(
                            ErrorKind::Unexpected,
                            format!("snapshot {} failed", bad.id),
                        ));
                    }
                    let done = last.len() == ids.len()
                        && last.iter().all(|s| s.state == SnapshotState::Completed);
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = last;
                    Ok(done)
                },
            )
            .await?;
            let last = seen.into_inner().unwrap_or_else(|e| e.into_inner());
            let gib: u64 = last.iter().map(|s| u64::from(s.size_gib)).sum();
            let names: Vec<&str> = last.iter().map(|s| s.id.as_str()).collect();
            Ok(Checked::pass(
                last.clone(),
                format!(
                    "{} completed ({gib} GiB): {}",
                    names.len(),
                    names.join(", ")
                ),
            ))
        },
    )
    .await
}
