//! The restart runbook on memory doubles (virtual clock): waves, force, failure budgets,
//! dry-run. The same scenario against the real sshd hosts is in `services_ssh.rs`.

use agentlab_ops::runbook::{HostOutcome, RestartOptions, RestartPayload, restart};
use agentlab_ops::service::{ServiceBehaviour, ServiceCall};
use agentlab_ops::{
    Environment, ManualClock, MemoryHost, MemoryServiceManager, RunOptions, Verdict,
};

fn fleet(n: usize) -> (Environment, Vec<MemoryServiceManager>) {
    let mut b = Environment::builder("restart").clock(ManualClock::starting_now());
    let mut svcs = Vec::new();
    for i in 1..=n {
        let s = MemoryServiceManager::new(format!("web-{i}"));
        b = b.host_with_service(MemoryHost::new(format!("web-{i}")), &s);
        svcs.push(s);
    }
    (b.build(), svcs)
}

fn payload(r: &agentlab_ops::Report) -> RestartPayload {
    r.payload_as().unwrap()
}

#[tokio::test]
async fn force_recovers_a_stuck_host_and_a_dead_one_stops_the_rollout() {
    let (env, s) = fleet(3);
    s[0].behave(ServiceBehaviour::IgnoresGraceful);
    s[1].behave(ServiceBehaviour::NeverComesUp);
    let r = restart(&env, &RestartOptions::default(), &RunOptions::default()).await;
    let p = payload(&r);
    let outcomes: Vec<HostOutcome> = p.hosts.iter().map(|h| h.outcome).collect();
    assert_eq!(
        outcomes,
        [
            HostOutcome::RecoveredByForce,
            HostOutcome::Failed,
            HostOutcome::Skipped
        ],
        "{}",
        r.to_text(false)
    );
    assert_eq!(p.waves, [["web-1"], ["web-2"], ["web-3"]]);
    assert!(p.stopped.as_deref().unwrap().contains("wave 2"));
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert_eq!(r.escalations[0].criterion, "restart_budget_spent");
    // The force was kill then start, and the third host was never touched.
    let c = s[0].calls.all();
    assert!(c.contains(&ServiceCall::Kill(agentlab_ops::service::Signal::Kill)));
    assert!(s[2].calls.is_empty(), "{:?}", s[2].calls.all());
    assert!(p.hosts[1].last_health.as_deref().unwrap().contains("start"));
    assert_ne!(p.hosts[0].pid_before, p.hosts[0].pid_after);
}

#[tokio::test]
async fn a_budget_lets_the_rollout_go_on_and_ramps_size_the_waves() {
    let (env, s) = fleet(10);
    s[0].behave(ServiceBehaviour::NeverComesUp);
    let opts: RestartOptions = serde_json::from_value(serde_json::json!({
        "serial": [1, "20%", "50%"], "failure_budget": 1, "wave_failure_budget": "100%"
    }))
    .unwrap();
    let r = restart(&env, &opts, &RunOptions::default()).await;
    let p = payload(&r);
    let sizes: Vec<usize> = p.waves.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 2, 5, 2]);
    assert!(p.stopped.is_none(), "{}", r.to_text(false));
    let healthy = p
        .hosts
        .iter()
        .filter(|h| h.outcome == HostOutcome::Healthy)
        .count();
    assert_eq!(healthy, 9);
    assert_eq!(p.hosts[0].outcome, HostOutcome::Failed);
}

#[tokio::test]
async fn dry_run_plans_every_host_and_restarts_none() {
    let (env, s) = fleet(3);
    let ro = RunOptions::default().dry_run(true);
    let r = restart(&env, &RestartOptions::default(), &ro).await;
    let p = payload(&r);
    assert!(p.hosts.iter().all(|h| h.outcome == HostOutcome::Planned));
    for (i, svc) in s.iter().enumerate() {
        let plan = &r
            .checks
            .iter()
            .find(|c| c.name == format!("restart:web-{}", i + 1))
            .unwrap()
            .summary;
        assert!(plan.contains("kill -s KILL"), "{plan}");
        assert!(svc.calls.is_empty(), "dry-run touched web-{}", i + 1);
    }
}

#[tokio::test]
async fn bad_options_name_the_field() {
    let (env, _) = fleet(1);
    let e = agentlab_ops::runbook::registry::find("restart")
        .unwrap()
        .check(&serde_json::json!({"serial": "0%"}))
        .unwrap_err();
    assert!(e.to_string().contains("serial"), "{e}");
    let r = restart(
        &env,
        &serde_json::from_value(serde_json::json!({"hosts": ["nope"]})).unwrap(),
        &RunOptions::default(),
    )
    .await;
    assert!(r.to_text(false).contains("nope"), "{}", r.to_text(false));
}

#[tokio::test]
async fn hosts_are_drained_before_and_put_back_after_but_a_failed_one_stays_out() {
    let (mut env, s) = fleet(3);
    s[1].behave(ServiceBehaviour::NeverComesUp);
    let d = tempfile::tempdir().unwrap();
    let lb = d.path().join("lb.log");
    let line = |what: &str| {
        vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo {what} {{host}} >> {}", lb.display()),
        ]
    };
    env.config.restart.drain = line("out");
    env.config.restart.undrain = line("in");
    let opts: RestartOptions =
        serde_json::from_value(serde_json::json!({"failure_budget": 1, "wave_failure_budget": 1}))
            .unwrap();
    let r = restart(&env, &opts, &RunOptions::default()).await;
    let log = std::fs::read_to_string(&lb).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "out web-1",
            "in web-1",
            "out web-2",
            "out web-3",
            "in web-3"
        ],
        "{}",
        r.to_text(false)
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == "web-2" && f.message.contains("left out of the load balancer"))
    );
}
