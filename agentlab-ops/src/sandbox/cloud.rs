//! The sandbox's cloud: EC2 and a classic load balancer in memory (each host an instance,
//! both in service), and two months of cost — so the scaling runbooks, the snapshot and the
//! cost report run with no AWS account. Dwell times are a second, not EC2's minutes.

use std::sync::Arc;
use std::time::Duration;

use chrono::Datelike;

use crate::clock::{Clock, SystemClock};
use crate::compute::{MemoryBalancer, MemoryCompute, MemoryCost};
use crate::config::{BalancerConfig, BalancerKind, ComputeConfig, CostConfig, Dur};
use crate::environment::Environment;

/// Give `env` the simulated cloud when its config has none.
pub(crate) fn attach(env: &mut Environment) {
    if env.compute.is_some() || env.config.compute.is_some() {
        return;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut ec2 = MemoryCompute::new(clock.clone());
    let second = Duration::from_secs(1);
    (
        ec2.start_dwell,
        ec2.stop_dwell,
        ec2.status_dwell,
        ec2.snapshot_dwell,
    ) = (second, second, second, second);
    ec2.poll = Duration::from_millis(200);
    let mut cc = ComputeConfig {
        poll_interval: Dur(Duration::from_millis(200)),
        ..ComputeConfig::default()
    };
    let mut ids = Vec::new();
    for h in &env.hosts {
        let id = format!(
            "i-sandbox{}",
            h.config
                .name
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        ec2.add(&id, "t3.medium", &["/dev/xvda"]);
        cc.instances.insert(h.config.name.clone(), id.clone());
        ids.push(id);
    }
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut lb = MemoryBalancer::new("web", BalancerKind::Classic, clock, Some(ec2.clone()))
        .with_healthy(&names);
    (lb.healthy_after, lb.drain) = (second, second);
    cc.load_balancers = vec![BalancerConfig::new("web", BalancerKind::Classic, "web")];
    let today = chrono::Utc::now().date_naive();
    let this = chrono::NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let cost = MemoryCost::new()
        .month(
            this - chrono::Months::new(2),
            &[
                ("Amazon EC2", 182.4),
                ("Amazon S3", 11.2),
                ("Amazon CloudWatch", 6.1),
            ],
        )
        .month(
            this - chrono::Months::new(1),
            &[
                ("Amazon EC2", 236.9),
                ("Amazon S3", 11.9),
                ("Amazon CloudWatch", 6.0),
            ],
        );
    env.config.compute = Some(cc);
    env.config.cost = Some(CostConfig::default());
    env.compute = Some(Arc::new(ec2));
    env.balancers = vec![Arc::new(lb)];
    env.costs = Some(Arc::new(cost));
}
