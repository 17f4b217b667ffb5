//! The scaling runbooks, the snapshot and the cost report on the doubles (virtual clock): the
//! stricter-than-moto EC2 double refuses a resize of a running instance, so a test passing here
//! proves the order stop → modify → start; capacity failures, stalls and throttling are
//! injected. The same runbooks against moto are in `cloud_runbooks.rs`.

use std::sync::Arc;

use agentlab_ops::compute::{BalancerCall, ComputeCall, InstanceState, TargetState};
use agentlab_ops::config::BalancerKind;
use agentlab_ops::runbook::cost::{CostOptions, CostPayload, cost_report};
use agentlab_ops::runbook::scale::{
    HorizontalOptions, HorizontalPayload, ResizeOutcome, SnapshotOptions, SnapshotPayload,
    VerticalOptions, VerticalPayload,
};
use agentlab_ops::runbook::{scale_horizontal, scale_vertical, snapshot};
use agentlab_ops::{
    Compute, Environment, LoadBalancer, ManualClock, MemoryBalancer, MemoryCompute, MemoryCost,
    MemoryHost, MemoryProbe, Outcome, RunOptions, Verdict,
};
use chrono::NaiveDate;

struct Lab {
    env: Environment,
    ec2: MemoryCompute,
    lb: MemoryBalancer,
    clock: ManualClock,
}

/// web-1 = i-web1 (t3.medium) and web-2 = i-web2, both healthy behind a classic ELB.
fn lab(kind: BalancerKind) -> Lab {
    lab_with(kind, &[])
}

/// [`lab`] with `[load] thresholds`.
fn lab_with(kind: BalancerKind, thresholds: &[&str]) -> Lab {
    let thresholds: Vec<String> = thresholds.iter().map(|t| t.to_string()).collect();
    let clock = ManualClock::starting_now();
    let ec2 = MemoryCompute::new(Arc::new(clock.clone()));
    ec2.add("i-web1", "t3.medium", &["/dev/xvda", "/dev/xvdf"]);
    ec2.add("i-web2", "t3.medium", &["/dev/xvda"]);
    ec2.add("i-spare", "t3.medium", &["/dev/xvda"]);
    let lb = MemoryBalancer::new("web", kind, Arc::new(clock.clone()), Some(ec2.clone()))
        .with_healthy(&["i-web1", "i-web2"]);
    let probe = MemoryProbe::new();
    probe.respond_json("/health", serde_json::json!({"status": "ok"}));
    let env = Environment::builder("scaling")
        .clock(clock.clone())
        .probe(probe)
        .host(MemoryHost::new("web-1").with_resources(0.5, 0.4, &[("/", 0.3)]))
        .compute(ec2.clone(), &[("web-1", "i-web1"), ("web-2", "i-web2")])
        .balancer(lb.clone())
        .configure(move |c| c.load.thresholds = thresholds)
        .build();
    Lab {
        env,
        ec2,
        lb,
        clock,
    }
}

fn vertical(names: &[&str], to: Option<&str>) -> VerticalOptions {
    VerticalOptions {
        instances: names.iter().map(|s| s.to_string()).collect(),
        to: to.map(str::to_string),
        down: false,
        load_url: None,
    }
}

fn resize_payload(r: &agentlab_ops::Report) -> VerticalPayload {
    r.payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)))
}

#[tokio::test]
async fn the_post_scaling_load_test_runs_after_the_resizes_and_a_failed_threshold_escalates() {
    let base = super::load::server().await;
    let l = lab_with(BalancerKind::Classic, &["error_rate<1%", "p50<5ms"]);
    let mut o = vertical(&["web-1"], None);
    o.load_url = Some(format!("{base}/fixed"));
    let r = scale_vertical(&l.env, &o, &RunOptions::default()).await;
    let p = resize_payload(&r);
    assert_eq!(p.instances[0].outcome, ResizeOutcome::Resized);
    let load = p.load.expect("the post-scaling load test ran");
    assert_eq!((load.summary.requests, load.summary.failed), (1000, 0));
    // After the resize and its health check, never before.
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    let at = |n: &str| {
        names
            .iter()
            .position(|x| x.starts_with(n))
            .unwrap_or_else(|| panic!("{n}: {names:?}"))
    };
    assert!(at("post_scaling:load") > at("health:web-1"), "{names:?}");
    // The 20 ms server fails p50<5ms: escalated, the resize stands.
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let e: Vec<(&str, &str)> = r
        .escalations
        .iter()
        .map(|e| (e.criterion.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(e, [("post_scaling_load", "p50<5ms")]);
    assert_eq!(
        l.ec2.describe("i-web1").await.unwrap().instance_type,
        "t3.large"
    );
}

#[tokio::test]
async fn a_resize_goes_stop_modify_start_and_back_into_service() {
    let l = lab(BalancerKind::Classic);
    let r = scale_vertical(&l.env, &vertical(&["web-1"], None), &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p = resize_payload(&r);
    assert_eq!(p.instances[0].outcome, ResizeOutcome::Resized);
    assert_eq!(
        (p.instances[0].from.as_str(), p.instances[0].to.as_str()),
        ("t3.medium", "t3.large")
    );
    assert_eq!(p.instances[0].balancers, ["web"]);
    let i = l.ec2.describe("i-web1").await.unwrap();
    assert_eq!(
        (i.instance_type.as_str(), i.state),
        ("t3.large", InstanceState::Running)
    );
    assert_eq!(
        l.ec2.mutations(),
        [
            ComputeCall::Stop("i-web1".into()),
            ComputeCall::SetType("i-web1".into(), "t3.large".into()),
            ComputeCall::Start("i-web1".into()),
        ]
    );
    assert_eq!(
        l.lb.calls(),
        [
            BalancerCall::Deregister(vec!["i-web1".into()]),
            BalancerCall::Register(vec!["i-web1".into()])
        ]
    );
    let h = l.lb.health().await.unwrap();
    assert!(
        h.iter()
            .any(|t| t.id == "i-web1" && t.state == TargetState::Healthy),
        "{h:?}"
    );
    // The classic ELB's drain is its connection-draining delay, waited on the clock.
    assert!(
        l.clock.sleeps().contains(&l.lb.drain),
        "{:?}",
        l.clock.sleeps()
    );
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    for s in [
        "deregister:i-web1:web",
        "drain:i-web1:web",
        "stop:i-web1",
        "wait_stopped:i-web1",
        "modify:i-web1",
        "start:i-web1",
        "wait_running:i-web1",
        "status_ok:i-web1",
        "register:i-web1:web",
        "in_service:i-web1:web",
        "health:web-1",
    ] {
        assert!(names.contains(&s), "no step {s}: {names:?}");
    }
}

#[tokio::test]
async fn no_capacity_after_the_stop_puts_the_old_type_back_running_and_in_service() {
    let l = lab(BalancerKind::TargetGroup);
    l.ec2.no_capacity_for("t3.xlarge");
    let r = scale_vertical(
        &l.env,
        &vertical(&["i-web1", "i-web2"], Some("t3.xlarge")),
        &RunOptions::default(),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let p = resize_payload(&r);
    assert_eq!(p.instances[0].outcome, ResizeOutcome::RolledBack, "{p:?}");
    assert!(
        p.instances[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("InsufficientInstanceCapacity"),
        "{p:?}"
    );
    assert_eq!(
        p.instances[1].outcome,
        ResizeOutcome::NotStarted,
        "the second instance must not be touched"
    );
    let i = l.ec2.describe("i-web1").await.unwrap();
    assert_eq!(
        (i.instance_type.as_str(), i.state),
        ("t3.medium", InstanceState::Running)
    );
    assert!(l.lb.is_registered("i-web1"));
    l.clock.advance(l.lb.healthy_after);
    let h = l.lb.health().await.unwrap();
    assert!(
        h.iter()
            .any(|t| t.id == "i-web1" && t.state == TargetState::Healthy),
        "{h:?}"
    );
    assert!(
        !l.ec2
            .mutations()
            .iter()
            .any(|c| matches!(c, ComputeCall::Stop(id) if id == "i-web2"))
    );
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "resize_failed" && e.message.contains("put back on t3.medium")),
        "{:?}",
        r.escalations
    );
}

#[tokio::test]
async fn a_stop_that_never_finishes_times_out_without_any_modify() {
    let l = lab(BalancerKind::Classic);
    l.ec2.stall_stopping("i-web1");
    let r = scale_vertical(&l.env, &vertical(&["web-1"], None), &RunOptions::default()).await;
    let p = resize_payload(&r);
    assert_ne!(p.instances[0].outcome, ResizeOutcome::Resized);
    assert!(
        p.instances[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not done after"),
        "{p:?}"
    );
    assert!(
        !l.ec2
            .calls()
            .iter()
            .any(|c| matches!(c, ComputeCall::SetType(..))),
        "{:?}",
        l.ec2.calls()
    );
    let wait = r
        .checks
        .iter()
        .find(|c| c.name == "wait_stopped:i-web1")
        .unwrap();
    assert_eq!(wait.outcome, Outcome::Error);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let l = lab(BalancerKind::Classic);
    l.ec2.throttle_next(3);
    let r = scale_vertical(
        &l.env,
        &vertical(&["web-1"], Some("t3.large")),
        &RunOptions::default(),
    )
    .await;
    assert_eq!(
        resize_payload(&r).instances[0].outcome,
        ResizeOutcome::Resized,
        "{}",
        r.to_text(false)
    );
    // The three throttled describes were made again.
    let describes = l
        .ec2
        .calls()
        .iter()
        .filter(|c| matches!(c, ComputeCall::Describe(_)))
        .count();
    assert!(describes >= 4, "{describes}");
}

#[tokio::test]
async fn dry_run_plans_from_a_real_describe_and_changes_nothing() {
    let l = lab(BalancerKind::Classic);
    let r = scale_vertical(
        &l.env,
        &vertical(&["web-1"], None),
        &RunOptions::default().dry_run(true),
    )
    .await;
    assert!(r.error.is_none(), "{}", r.to_text(false));
    assert!(l.ec2.mutations().is_empty(), "{:?}", l.ec2.mutations());
    assert!(l.lb.calls().is_empty());
    assert!(
        l.ec2
            .calls()
            .contains(&ComputeCall::Describe("i-web1".into()))
    );
    let plan = r.checks.iter().find(|c| c.name == "modify:i-web1").unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);
    assert!(
        plan.summary.contains("t3.medium → t3.large"),
        "{}",
        plan.summary
    );
}

#[tokio::test]
async fn guards_refuse_a_missing_terminated_or_same_type_instance() {
    let l = lab(BalancerKind::Classic);
    l.ec2.terminate("i-spare");
    for (name, to, want) in [
        ("i-nope", None, "does not exist"),
        ("i-spare", None, "terminated"),
        ("web-1", Some("t3.medium"), "already"),
    ] {
        let r = scale_vertical(&l.env, &vertical(&[name], to), &RunOptions::default()).await;
        let e = r
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {}", r.to_text(false)));
        assert!(e.message.contains(want), "{name}: {}", e.message);
    }
    assert!(l.ec2.mutations().is_empty());
}

#[tokio::test]
async fn horizontal_registers_until_healthy_and_never_removes_the_last_healthy_target() {
    let l = lab(BalancerKind::TargetGroup);
    let add = HorizontalOptions {
        add: vec!["i-spare".into()],
        ..Default::default()
    };
    let r = scale_horizontal(&l.env, &add, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: HorizontalPayload = r.payload_as().unwrap();
    let t = &p.balancers[0].targets;
    assert!(
        t.iter()
            .any(|t| t.id == "i-spare" && t.state == TargetState::Healthy),
        "{t:?}"
    );
    // A target that never passes its checks is taken out again.
    l.ec2.add("i-bad", "t3.medium", &["/dev/xvda"]);
    l.lb.fail_health("i-bad");
    let r = scale_horizontal(
        &l.env,
        &HorizontalOptions {
            add: vec!["i-bad".into()],
            ..Default::default()
        },
        &RunOptions::default(),
    )
    .await;
    assert!(r.error.is_some(), "{}", r.to_text(false));
    assert!(!l.lb.is_registered("i-bad"));
    let all = HorizontalOptions {
        remove: vec!["i-web1".into(), "i-web2".into(), "i-spare".into()],
        ..Default::default()
    };
    let r = scale_horizontal(&l.env, &all, &RunOptions::default()).await;
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .contains("no healthy target"),
        "{}",
        r.to_text(false)
    );
    assert!(l.lb.is_registered("i-web1"));
    let one = HorizontalOptions {
        remove: vec!["i-spare".into()],
        ..Default::default()
    };
    let r = scale_horizontal(&l.env, &one, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(!l.lb.is_registered("i-spare"));
}

#[tokio::test]
async fn a_snapshot_of_every_volume_is_tagged_and_awaited() {
    let l = lab(BalancerKind::Classic);
    let o = SnapshotOptions {
        instances: vec!["web-1".into()],
        incident: Some("INC-7".into()),
        wait: true,
    };
    let r = snapshot(&l.env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: SnapshotPayload = r.payload_as().unwrap();
    let p = &p.instances[0];
    assert_eq!(p.snapshots.len(), 2);
    for s in &p.snapshots {
        assert_eq!(s.state, agentlab_ops::compute::SnapshotState::Completed);
        assert_eq!(s.tags["agentlab-ops:incident"], "INC-7");
        assert_eq!(s.tags["agentlab-ops:run"], r.run_id);
        assert_eq!(s.tags["agentlab-ops:host"], "web-1");
    }
    assert_eq!(p.total_gib, 16);
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test]
async fn the_cost_report_gives_month_over_month_and_the_movers() {
    let costs = MemoryCost::new()
        .month(
            day("2026-10-01"),
            &[
                ("Amazon EC2", 100.0),
                ("Amazon S3", 10.0),
                ("AWS Lambda", 5.0),
            ],
        )
        .month(
            day("2026-11-01"),
            &[
                ("Amazon EC2", 150.0),
                ("Amazon S3", 10.5),
                ("Amazon RDS", 40.0),
            ],
        );
    let env = Environment::builder("cost").costs(costs).build();
    let o = CostOptions {
        month: Some("2026-11".into()),
        top: Some(3),
    };
    let r = cost_report(&env, &o, &RunOptions::default()).await;
    let p: CostPayload = r
        .payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
    assert_eq!((p.total, p.previous_total), (200.5, Some(115.0)));
    assert!((p.change_ratio.unwrap() - 85.5 / 115.0).abs() < 1e-9);
    let movers: Vec<&str> = p.movers.iter().map(|m| m.service.as_str()).collect();
    assert_eq!(movers, ["Amazon EC2", "Amazon RDS", "AWS Lambda"]);
    assert_eq!(p.services[0], ("Amazon EC2".to_string(), 150.0));
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == "Amazon RDS" && f.message.contains("new")),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == "cost" && f.message.contains("+74%")),
        "{:?}",
        r.findings
    );
    let bad = cost_report(
        &env,
        &CostOptions {
            month: Some("2026-13".into()),
            top: None,
        },
        &RunOptions::default(),
    )
    .await;
    assert!(bad.error.is_some());
}

const IOSTAT: &str = "Linux 6.1.0 (web-1) \t12/02/2026 \t_x86_64_\t(4 CPU)\n\nDevice            r/s     rkB/s   rrqm/s  %rrqm r_await rareq-sz     w/s     wkB/s   wrqm/s  %wrqm w_await wareq-sz     d/s     dkB/s   drqm/s  %drqm d_await dareq-sz     f/s f_await  aqu-sz  %util\nnvme0n1          1.00     10.00     0.00   0.00    0.50    10.00    2.00     20.00     0.00   0.00    1.50    10.00    0.00      0.00     0.00   0.00    0.00     0.00    0.00    0.00    0.00   1.00\n\nDevice            r/s     rkB/s   rrqm/s  %rrqm r_await rareq-sz     w/s     wkB/s   wrqm/s  %wrqm w_await wareq-sz     d/s     dkB/s   drqm/s  %drqm d_await dareq-sz     f/s f_await  aqu-sz  %util\nnvme0n1        300.00  30000.00     0.00   0.00   20.00    10.00  500.00  50000.00     0.00   0.00   40.00    10.00    0.00      0.00     0.00   0.00    0.00     0.00    0.00    0.00    9.00  {UTIL}\n";

fn assess_env(load: f64, util: &str, hosts: usize) -> Environment {
    let probe = MemoryProbe::new();
    let days: Vec<serde_json::Value> = (0..30)
        .map(|i| serde_json::json!({"date": format!("2026-11-{:02}", i + 1), "cpu": 0.3 + 0.01 * i as f64, "memory": 0.5, "disk": 0.4}))
        .collect();
    probe.respond_json(
        "/metrics/history",
        serde_json::json!({"resources": {"last_30_days": days}}),
    );
    let mut b = Environment::builder("assess").probe(probe);
    for i in 1..=hosts {
        // web-1 carries `load`; the others idle.
        let l = if i == 1 { load } else { 0.4 };
        let h = MemoryHost::new(format!("web-{i}")).with_resources(l, 0.5, &[("/", 0.4)]);
        h.respond(
            "iostat",
            &["-dx", "1", "2"],
            0,
            &IOSTAT.replace("{UTIL}", if i == 1 { util } else { "5.00" }),
        );
        b = b.host(h);
    }
    b.build()
}

#[tokio::test]
async fn the_assessment_recommends_with_the_numbers_that_led_to_it() {
    use agentlab_ops::runbook::scale::{
        AssessOptions, AssessPayload, Recommendation, scale_assess,
    };
    let run = |env: Environment| async move {
        let r = scale_assess(&env, &AssessOptions::default(), &RunOptions::default()).await;
        let p: AssessPayload = r
            .payload_as()
            .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
        p
    };
    // A saturated disk device: optimise first, whatever the CPU says.
    let p = run(assess_env(6.0, "97.00", 3)).await;
    assert!(
        matches!(&p.recommendation, Recommendation::OptimiseFirst { reasons } if reasons[0].contains("nvme0n1 97% busy, await 30.0 ms")),
        "{p:?}"
    );
    // The last report of iostat, not the since-boot one.
    assert_eq!(p.hosts[0].io[0].util, 0.97);
    // One of three hosts at 1.5 load per CPU: scale that one up.
    let p = run(assess_env(6.0, "10.00", 3)).await;
    assert!(
        matches!(&p.recommendation, Recommendation::Vertical { hosts } if hosts[0].0 == "web-1"),
        "{p:?}"
    );
    assert!(
        p.because[0].contains("1 of 3 hosts saturated"),
        "{:?}",
        p.because
    );
    let t = p.trend.as_ref().unwrap();
    assert_eq!(t.days, 30);
    assert!(t.cpu.1 > t.cpu.0);
    // The only host saturated: scale out, by how much the pressure says (1.5/0.8 → 2 hosts).
    let p = run(assess_env(6.0, "10.00", 1)).await;
    assert_eq!(p.recommendation, Recommendation::Horizontal { add: 1 });
    let p = run(assess_env(1.0, "10.00", 2)).await;
    assert_eq!(p.recommendation, Recommendation::None, "{p:?}");
}

#[test]
fn iostat_without_its_columns_is_an_error_not_a_guess() {
    use agentlab_ops::runbook::scale::assess::parse_iostat;
    assert!(parse_iostat("garbage\n").is_err());
    assert!(parse_iostat("Device r/s\nsda 1.0\n").is_err());
    let old = "Device: rrqm/s wrqm/s r/s w/s rkB/s wkB/s avgrq-sz avgqu-sz await r_await w_await svctm %util\nsda 0.00 1.00 2.00 3.00 4.00 5.00 6.00 0.10 12.50 10.00 15.00 1.00 42.00\n";
    let d = parse_iostat(old).unwrap();
    assert_eq!(
        (d[0].device.as_str(), d[0].util, d[0].await_ms),
        ("sda", 0.42, 12.5)
    );
}
