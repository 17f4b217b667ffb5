//! The morning check's resource check of one host: load, memory and disks against
//! `[thresholds]`.

use super::*;
use crate::environment::{Environment, HostEntry};
use crate::error::Result;
use crate::host::{ResourceUsage, resource_usage};
use crate::report::Outcome;
use crate::runbook::run::{Checked, Run};
use std::time::Duration;

/// Load, memory and every disk of one host against the thresholds.
pub(super) async fn host_check(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    t: Option<Duration>,
) -> HostResult {
    let name = h.config.name.clone();
    let max = env.config.thresholds.resource_max.0;
    let load_max = env.config.thresholds.load_per_cpu_max;
    let check_name = format!("resources:{name}");
    let r: Result<ResourceUsage> = run
        .check(&check_name, t, async {
            let u = resource_usage(h.host.as_ref(), &h.config.mounts).await?;
            let mut high = Vec::new();
            if u.memory.used_ratio > max {
                high.push(format!("memory {}", pct(u.memory.used_ratio)));
            }
            for d in &u.disks {
                if d.used_ratio > max {
                    high.push(format!("disk {} {}", d.mount, pct(d.used_ratio)));
                }
            }
            let worst_disk = u.disks.iter().map(|d| d.used_ratio).fold(0.0, f64::max);
            let summary = format!(
                "load {:.2}, memory {}, worst disk {}",
                u.uptime.load.five,
                pct(u.memory.used_ratio),
                pct(worst_disk)
            );
            let outcome = if high.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail
            };
            Ok(Checked::with(u, outcome, summary))
        })
        .await;
    match r {
        Ok(u) => {
            if u.memory.used_ratio > max {
                run.escalate(
                    "resource_high",
                    format!("{name}:memory"),
                    pct(u.memory.used_ratio),
                    pct(max),
                    format!("memory on {name} above {}", pct(max)),
                );
            }
            for d in &u.disks {
                if d.used_ratio > max {
                    run.escalate(
                        "resource_high",
                        format!("{name}:{}", d.mount),
                        pct(d.used_ratio),
                        pct(max),
                        format!("disk {} on {name} above {}", d.mount, pct(max)),
                    );
                }
            }
            if let (Some(lim), Some(cpus)) = (load_max, u.cpus.filter(|c| *c > 0)) {
                let per = u.uptime.load.five / cpus as f64;
                if per > lim {
                    run.escalate(
                        "resource_high",
                        format!("{name}:load"),
                        format!("{per:.2} per CPU"),
                        format!("{lim:.2} per CPU"),
                        format!("load on {name} is high"),
                    );
                }
            }
            HostResult {
                host: name,
                usage: Some(u),
                error: None,
            }
        }
        Err(e) => {
            run.escalate(
                "host_unreachable",
                name.clone(),
                e.to_string(),
                "resource usage readable",
                format!("resource usage of {name} could not be read"),
            );
            HostResult {
                host: name,
                usage: None,
                error: Some(crate::secret::redact(&e.to_string())),
            }
        }
    }
}
