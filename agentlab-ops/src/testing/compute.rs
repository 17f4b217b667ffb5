//! Conformance of [`Compute`], [`LoadBalancer`] and [`CostSource`] backends: the same checks
//! run on the memory doubles and on moto, so neither drifts from EC2's shape.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;

use crate::clock::Clock;
use crate::compute::{
    Compute, CostSource, InstanceState, LoadBalancer, SnapshotState, TargetState, wait_drained,
    wait_healthy,
};
use crate::error::{ErrorKind, Result};

fn fail(msg: String) -> crate::error::Error {
    crate::error::Error::new(ErrorKind::Unexpected, msg).with_operation("conformance")
}

/// An unknown instance is `not_found`.
pub async fn compute_unknown_is_not_found(c: &dyn Compute) -> Result<()> {
    match c.describe("i-0000000000deadbee").await {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => Err(fail(format!("describe of an unknown id: {other:?}"))),
    }
}

/// The resize cycle on a running instance `id`: stop → wait stopped → set type → start → wait
/// running; the type reads back, and stopping a stopped (starting a running) instance is a
/// no-op.
pub async fn compute_resize_cycle(c: &dyn Compute, id: &str, to: &str) -> Result<()> {
    let t = Duration::from_secs(120);
    let before = c.describe(id).await?;
    if before.state != InstanceState::Running {
        return Err(fail(format!(
            "{id} should start running, is {}",
            before.state
        )));
    }
    if before.instance_type == to {
        return Err(fail(format!("{id} is {to} already: pick another type")));
    }
    c.stop(id).await?;
    c.wait_state(id, InstanceState::Stopped, t).await?;
    c.stop(id).await?;
    c.set_type(id, to).await?;
    c.start(id).await?;
    c.wait_state(id, InstanceState::Running, t).await?;
    c.start(id).await?;
    c.wait_status_ok(id, t).await?;
    let after = c.describe(id).await?;
    if after.instance_type != to || after.state != InstanceState::Running {
        return Err(fail(format!(
            "{id} after the resize: {} {} (wanted {to} running)",
            after.instance_type, after.state
        )));
    }
    Ok(())
}

/// Snapshots of every volume of `id`, tagged; they complete within `timeout` (on `clock`).
pub async fn compute_snapshot(c: &dyn Compute, clock: &dyn Clock, id: &str) -> Result<()> {
    let inst = c.describe(id).await?;
    let tags = BTreeMap::from([("incident".to_string(), "INC-1".to_string())]);
    let snaps = c.snapshot(id, "conformance", &tags).await?;
    if snaps.len() != inst.volumes.len() || snaps.is_empty() {
        return Err(fail(format!(
            "{} snapshots for {} volumes",
            snaps.len(),
            inst.volumes.len()
        )));
    }
    let ids: Vec<String> = snaps.iter().map(|s| s.id.clone()).collect();
    for _ in 0..100 {
        let now = c.snapshots(&ids).await?;
        if now
            .iter()
            .any(|s| s.tags.get("incident").map(String::as_str) != Some("INC-1"))
        {
            return Err(fail(format!("a snapshot lost its tags: {now:?}")));
        }
        if now.len() == ids.len() && now.iter().all(|s| s.state == SnapshotState::Completed) {
            return Ok(());
        }
        clock.sleep(Duration::from_secs(60)).await;
    }
    Err(fail("snapshots never completed".into()))
}

/// Register → healthy → deregister → drained → gone, for a running instance `id` not yet
/// registered; deregistering again changes nothing.
pub async fn balancer_cycle(lb: &dyn LoadBalancer, clock: &dyn Clock, id: &str) -> Result<()> {
    let ids = vec![id.to_string()];
    let every = Duration::from_secs(1);
    let t = Duration::from_secs(900);
    if lb.health().await?.iter().any(|h| h.id == id) {
        return Err(fail(format!("{id} is registered already")));
    }
    lb.register(&ids).await?;
    lb.register(&ids).await?;
    let h = wait_healthy(lb, clock, &ids, t, every).await?;
    if h.len() != 1 || h[0].state != TargetState::Healthy {
        return Err(fail(format!("after register: {h:?}")));
    }
    lb.deregister(&ids).await?;
    wait_drained(lb, clock, &ids, t, every).await?;
    if let Some(h) = lb.health().await?.iter().find(|h| h.id == id) {
        return Err(fail(format!("{id} still listed after the drain: {h:?}")));
    }
    lb.deregister(&ids).await?;
    Ok(())
}

/// `months` (each `(first day, [(service, cost)])`) read back per service, oldest first.
pub async fn cost_monthly(
    c: &dyn CostSource,
    months: &[(NaiveDate, &[(&str, f64)])],
) -> Result<()> {
    let (Some(first), Some(last)) = (months.first(), months.last()) else {
        return Ok(());
    };
    let end = last.0 + chrono::Months::new(1);
    let got = c.monthly(first.0, end, "UnblendedCost").await?;
    if got.len() != months.len() {
        return Err(fail(format!(
            "{} months for {}: {got:?}",
            got.len(),
            months.len()
        )));
    }
    for (g, (start, services)) in got.iter().zip(months) {
        if g.start != *start {
            return Err(fail(format!(
                "month {} where {start} was expected",
                g.start
            )));
        }
        for (svc, v) in services.iter() {
            let x = g.by_service.get(*svc).copied().unwrap_or(f64::NAN);
            if (x - v).abs() > 1e-6 {
                return Err(fail(format!("{start} {svc}: {x} where {v} was expected")));
            }
        }
        let sum: f64 = services.iter().map(|(_, v)| v).sum();
        if (g.total - sum).abs() > 1e-6 {
            return Err(fail(format!(
                "{start} total {} where {sum} was expected",
                g.total
            )));
        }
    }
    Ok(())
}
