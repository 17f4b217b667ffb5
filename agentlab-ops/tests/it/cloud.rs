//! The compute, balancer and cost backends: the conformance suite on the memory doubles, and on
//! moto (the real EC2, ELB, ELBv2 and Cost Explorer wire protocols) through the backends
//! `[aws]`/`[compute]`/`[cost]` build.
#![cfg(all(feature = "ec2", feature = "elb", feature = "cost"))]

use crate::common;

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

/// The runbooks end to end on moto: resize (dry-run first: nothing changes), register with the
/// classic ELB, snapshot with tags read back, the cost report from queued results.
#[tokio::test]
async fn the_scaling_runbooks_run_end_to_end_on_moto() {
    use agentlab_ops::runbook::scale::*;
    use agentlab_ops::{Environment, RunOptions, Verdict};
    let Some(s) = common::servers("the_scaling_runbooks_run_end_to_end_on_moto") else {
        return;
    };
    let sdk = common::aws::sdk(&s.s3).await;
    let id = common::aws::run_instance(&sdk, "t3.small").await;
    let lb = common::unique("rb").replace('_', "-");
    let lb = &lb[..lb.len().min(32)];
    common::aws::classic_lb(&sdk, lb).await;
    let mut config = moto_config(
        &s.s3,
        lb,
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/none/0",
    );
    if let Some(c) = config.compute.as_mut() {
        c.load_balancers.truncate(1);
        c.poll_interval = agentlab_ops::config::Dur(std::time::Duration::from_millis(100));
    }
    let env = Environment::from_config(config).await.unwrap();
    let ro = RunOptions::default().without_journal();
    let add = HorizontalOptions {
        add: vec![id.clone()],
        ..Default::default()
    };
    let r = scale_horizontal(&env, &add, &ro).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: HorizontalPayload = r.payload_as().unwrap();
    assert!(p.balancers[0].targets.iter().any(|t| t.id == id), "{p:?}");

    let o = VerticalOptions {
        instances: vec![id.clone()],
        ..VerticalOptions::default()
    };
    let dry = scale_vertical(&env, &o, &ro.clone().dry_run(true)).await;
    assert!(dry.error.is_none(), "{}", dry.to_text(false));
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let type_of = |ec2: aws_sdk_ec2::Client, id: String| async move {
        let d = ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .unwrap();
        let i = &d.reservations()[0].instances()[0];
        (
            i.instance_type().unwrap().as_str().to_string(),
            i.state().unwrap().name().unwrap().as_str().to_string(),
        )
    };
    assert_eq!(
        type_of(ec2.clone(), id.clone()).await,
        ("t3.small".into(), "running".into())
    );
    let r = scale_vertical(&env, &o, &ro).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: VerticalPayload = r.payload_as().unwrap();
    assert_eq!(
        (p.instances[0].outcome, p.instances[0].to.as_str()),
        (ResizeOutcome::Resized, "t3.medium")
    );
    assert_eq!(
        type_of(ec2.clone(), id.clone()).await,
        ("t3.medium".into(), "running".into())
    );
    let elb = aws_sdk_elasticloadbalancing::Client::new(&sdk);
    let h = elb
        .describe_instance_health()
        .load_balancer_name(lb)
        .send()
        .await
        .unwrap();
    assert!(
        h.instance_states()
            .iter()
            .any(|i| i.instance_id() == Some(id.as_str()) && i.state() == Some("InService"))
    );

    snapshot_on_moto(&env, &sdk, &id, &ro).await;
    cost_on_moto(&env, &s.s3, &ro).await;
}

async fn snapshot_on_moto(
    env: &agentlab_ops::Environment,
    sdk: &aws_config::SdkConfig,
    id: &str,
    ro: &agentlab_ops::RunOptions,
) {
    use agentlab_ops::runbook::scale::*;
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let id = id.to_string();
    let so = SnapshotOptions {
        instances: vec![id.clone()],
        incident: Some("INC-9".into()),
        wait: true,
    };
    let r = snapshot(env, &so, ro).await;
    let p: SnapshotPayload = r
        .payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
    let p = &p.instances[0];
    let ids: Vec<String> = p.snapshots.iter().map(|s| s.id.clone()).collect();
    let d = ec2
        .describe_snapshots()
        .set_snapshot_ids(Some(ids))
        .send()
        .await
        .unwrap();
    assert_eq!(d.snapshots().len(), p.snapshots.len());
    for snap in d.snapshots() {
        let tag = snap
            .tags()
            .iter()
            .find(|t| t.key() == Some("agentlab-ops:incident"));
        assert_eq!(tag.and_then(|t| t.value()), Some("INC-9"), "{snap:?}");
    }
}

async fn cost_on_moto(
    env: &agentlab_ops::Environment,
    endpoint: &str,
    ro: &agentlab_ops::RunOptions,
) {
    use agentlab_ops::runbook::cost::{CostOptions, CostPayload, cost_report};
    common::aws::queue_costs(
        endpoint,
        &[
            (
                "2026-05-01",
                "2026-06-01",
                &[("Amazon EC2", "80"), ("Amazon S3", "4")],
            ),
            (
                "2026-06-01",
                "2026-07-01",
                &[("Amazon EC2", "120"), ("Amazon S3", "4")],
            ),
        ],
    )
    .await;
    let r = cost_report(
        env,
        &CostOptions {
            month: Some("2026-06".into()),
            top: None,
        },
        ro,
    )
    .await;
    let p: CostPayload = r
        .payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
    assert_eq!((p.total, p.previous_total), (124.0, Some(84.0)));
    assert_eq!(p.movers[0].service, "Amazon EC2");
}
