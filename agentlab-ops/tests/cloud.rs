//! The compute, balancer and cost backends: the conformance suite on the memory doubles, and on
//! moto (the real EC2, ELB, ELBv2 and Cost Explorer wire protocols) through the backends
//! `[aws]`/`[compute]`/`[cost]` build.
#![cfg(all(feature = "ec2", feature = "elb", feature = "cost"))]

mod common;

use std::sync::Arc;

use agentlab_ops::clock::{ManualClock, SystemClock};
use agentlab_ops::compute::{self, MemoryBalancer, MemoryCompute, MemoryCost};
use agentlab_ops::config::{BalancerConfig, BalancerKind, ComputeConfig, CostConfig};
use agentlab_ops::testing;
use chrono::NaiveDate;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test]
async fn the_memory_doubles_pass_the_conformance_suite() {
    let clock = ManualClock::starting_now();
    let c = MemoryCompute::new(Arc::new(clock.clone()));
    c.add("i-0a", "t3.small", &["/dev/xvda", "/dev/xvdf"]);
    c.add("i-0b", "t3.small", &["/dev/xvda"]);
    testing::compute_unknown_is_not_found(&c).await.unwrap();
    testing::compute_resize_cycle(&c, "i-0a", "t3.large")
        .await
        .unwrap();
    testing::compute_snapshot(&c, &clock, "i-0a").await.unwrap();
    for kind in [BalancerKind::Classic, BalancerKind::TargetGroup] {
        let lb = MemoryBalancer::new("web", kind, Arc::new(clock.clone()), Some(c.clone()));
        testing::balancer_cycle(&lb, &clock, "i-0b").await.unwrap();
    }
    let months: &[(NaiveDate, &[(&str, f64)])] = &[
        (
            day("2026-10-01"),
            &[("Amazon EC2", 120.5), ("Amazon S3", 3.25)],
        ),
        (
            day("2026-11-01"),
            &[("Amazon EC2", 180.0), ("Amazon S3", 3.5)],
        ),
    ];
    let mut cost = MemoryCost::new();
    for (d, s) in months {
        cost = cost.month(*d, s);
    }
    testing::cost_monthly(&cost, months).await.unwrap();
}

/// A config whose `[aws]` points at moto, with one balancer of each kind.
fn moto_config(endpoint: &str, lb: &str, tg_arn: &str) -> agentlab_ops::Config {
    let mut c = agentlab_ops::Config::new(
        agentlab_ops::config::BaseUrl::parse("http://127.0.0.1:9").unwrap(),
    );
    c.aws.endpoint_url = Some(endpoint.to_string());
    c.aws.region = Some("us-east-1".into());
    let mut cc = ComputeConfig::default();
    cc.load_balancers = vec![
        BalancerConfig::new("classic", BalancerKind::Classic, lb),
        BalancerConfig::new("group", BalancerKind::TargetGroup, tg_arn),
    ];
    c.compute = Some(cc);
    c.cost = Some(CostConfig::default());
    c
}

#[tokio::test]
async fn moto_passes_the_conformance_suite() {
    let Some(s) = common::servers("moto_passes_the_conformance_suite") else {
        return;
    };
    let sdk = common::aws::sdk(&s.s3).await;
    let a = common::aws::run_instance(&sdk, "t3.small").await;
    let b = common::aws::run_instance(&sdk, "t3.small").await;
    let lb = common::unique("lb").replace('_', "-");
    let lb = &lb[..lb.len().min(32)];
    common::aws::classic_lb(&sdk, lb).await;
    let tg = common::unique("tg").replace('_', "-");
    let arn = common::aws::target_group(&sdk, &tg[..tg.len().min(32)], 0).await;
    let config = moto_config(&s.s3, lb, &arn);
    let (c, lbs, cost) = compute::from_config(&config).await.unwrap();
    let c = c.expect("compute");
    testing::compute_unknown_is_not_found(c.as_ref())
        .await
        .unwrap();
    testing::compute_resize_cycle(c.as_ref(), &a, "t3.large")
        .await
        .unwrap();
    testing::compute_snapshot(c.as_ref(), &SystemClock, &a)
        .await
        .unwrap();
    for l in &lbs {
        testing::balancer_cycle(l.as_ref(), &SystemClock, &b)
            .await
            .unwrap();
    }
    common::aws::queue_costs(
        &s.s3,
        &[
            (
                "2026-09-01",
                "2026-10-01",
                &[("Amazon EC2", "98.25"), ("AWS Lambda", "1.5")],
            ),
            (
                "2026-10-01",
                "2026-11-01",
                &[("Amazon EC2", "120.5"), ("AWS Lambda", "2")],
            ),
        ],
    )
    .await;
    let months: &[(NaiveDate, &[(&str, f64)])] = &[
        (
            day("2026-09-01"),
            &[("Amazon EC2", 98.25), ("AWS Lambda", 1.5)],
        ),
        (
            day("2026-10-01"),
            &[("Amazon EC2", 120.5), ("AWS Lambda", 2.0)],
        ),
    ];
    testing::cost_monthly(cost.expect("cost").as_ref(), months)
        .await
        .unwrap();
}
