//! The spec's **Resource Scaling**: assessment (`scale_assess`), vertical scaling
//! (`scale_vertical`: AWS-ResizeInstance's stop → modify → start, with the load balancers
//! drained around it and a way back), horizontal scaling (`scale_horizontal`: register or
//! deregister instances with every balancer, health read back), and the instance snapshot of
//! the Incident Investigation (`snapshot`).

use std::sync::Arc;
use std::time::Duration;

use crate::compute::{Compute, Instance, InstanceState, LoadBalancer};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Action;
use crate::runbook::run::{Checked, Run};
use crate::units::format_duration;

pub mod assess;
mod defs;
pub mod horizontal;
pub mod snapshot;
pub mod vertical;

pub use assess::{AssessOptions, AssessPayload, HostAssessment, Recommendation, scale_assess};
pub use defs::{SCALE_ASSESS, SCALE_HORIZONTAL, SCALE_VERTICAL, SNAPSHOT};
pub use horizontal::{HorizontalOptions, HorizontalPayload, scale_horizontal};
pub(crate) use snapshot::one as snapshot_one;
pub use snapshot::{InstanceSnapshots, SnapshotOptions, SnapshotPayload, snapshot};
pub use vertical::{Resize, ResizeOutcome, VerticalOptions, VerticalPayload, scale_vertical};

/// The compute backend, or a `config_invalid` error saying what to configure.
pub(crate) fn compute(env: &Environment, runbook: &str) -> Result<Arc<dyn Compute>> {
    env.compute.clone().ok_or_else(|| {
        Error::config(format!(
            "{runbook}: no [compute] configured (instances and load balancers)"
        ))
    })
}

/// An instance named by its id (`i-...`) or by the host it runs (`[compute] instances`):
/// `(host, id)`.
pub(crate) fn resolve(env: &Environment, name: &str) -> Result<(Option<String>, String)> {
    let instances = env
        .config
        .compute
        .as_ref()
        .map(|c| &c.instances)
        .cloned()
        .unwrap_or_default();
    if let Some(id) = instances.get(name) {
        return Ok((Some(name.to_string()), id.clone()));
    }
    if name.starts_with("i-") {
        let host = instances
            .iter()
            .find(|(_, i)| i.as_str() == name)
            .map(|(h, _)| h.clone());
        return Ok((host, name.to_string()));
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!("{name:?} is neither an instance id (i-...) nor a host of [compute] instances"),
    )
    .with_context("instance", name))
}

/// `names`, or every host of `[compute] instances` when empty.
pub(crate) fn named_or_all(env: &Environment, names: &[String]) -> Result<Vec<String>> {
    if !names.is_empty() {
        return Ok(names.to_vec());
    }
    let all: Vec<String> = env
        .config
        .compute
        .as_ref()
        .map(|c| c.instances.keys().cloned().collect())
        .unwrap_or_default();
    if all.is_empty() {
        return Err(Error::config(
            "no instances named and none in [compute] instances",
        ));
    }
    Ok(all)
}

/// Refuse an instance that cannot be resized or registered: missing (the error says so),
/// terminated, or not running.
pub(crate) fn must_run(i: &Instance) -> std::result::Result<(), String> {
    match i.state {
        InstanceState::Running => Ok(()),
        InstanceState::Terminated | InstanceState::ShuttingDown => {
            Err(format!("{} is {}: refusing", i.id, i.state))
        }
        s => Err(format!("{} is {s}, not running: refusing", i.id)),
    }
}

/// The balancers `id` is registered with (any state but draining).
pub(crate) async fn memberships(env: &Environment, id: &str) -> Result<Vec<Arc<dyn LoadBalancer>>> {
    let mut out = Vec::new();
    for lb in &env.balancers {
        let h = lb.health().await?;
        if h.iter()
            .any(|t| t.id == id && t.state != crate::compute::TargetState::Draining)
        {
            out.push(lb.clone());
        }
    }
    Ok(out)
}

/// The balancers named in `names` (all when empty).
pub(crate) fn balancers(env: &Environment, names: &[String]) -> Result<Vec<Arc<dyn LoadBalancer>>> {
    if names.is_empty() {
        return Ok(env.balancers.clone());
    }
    names
        .iter()
        .map(|n| {
            env.balancers
                .iter()
                .find(|b| &b.which().name == n)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = env
                        .balancers
                        .iter()
                        .map(|b| b.which().name.as_str())
                        .collect();
                    Error::config(format!(
                        "no load balancer {n:?} in [[compute.load_balancers]] (known: {})",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// The wait settings of a balancer (its `[[compute.load_balancers]]` entry, else defaults).
pub(crate) fn lb_waits(env: &Environment, lb: &dyn LoadBalancer) -> (Duration, Duration) {
    let c = env
        .config
        .compute
        .as_ref()
        .and_then(|c| c.load_balancers.iter().find(|b| b.name == lb.which().name));
    match c {
        Some(b) => (b.healthy_timeout.0, b.drain_timeout.0),
        None => (Duration::from_secs(300), Duration::from_secs(600)),
    }
}

/// How often waits poll.
pub(crate) fn poll(env: &Environment) -> Duration {
    env.config
        .compute
        .as_ref()
        .map_or(Duration::from_secs(5), |c| c.poll_interval.0)
}

/// A wait: run as a read, or, under dry-run (nothing changed, so nothing to wait for), listed.
pub(crate) async fn wait<F>(run: &Run, name: &str, timeout: Duration, fut: F) -> Result<()>
where
    F: std::future::Future<Output = Result<String>>,
{
    if run.is_dry_run() {
        run.skip(
            name,
            Action::Read,
            format!("dry run: would wait up to {}", format_duration(timeout)),
        );
        return Ok(());
    }
    run.check(name, Some(timeout + Duration::from_secs(60)), async {
        Ok(Checked::pass((), fut.await?))
    })
    .await
}
