//! Emergency shutdown and recovery on memory doubles: flags, notice, graceful stop, KILL of
//! what remains, the way back. The real-host version is in `services_ssh.rs`.

use agentlab_ops::runbook::{
    EmergencyOptions, EmergencyRecoverPayload, ShutdownPayload, StopOutcome, emergency_recover,
    emergency_shutdown,
};
use agentlab_ops::service::ServiceBehaviour;
use agentlab_ops::{
    Environment, ErrorKind, ManualClock, MemoryHost, MemoryNotifier, MemoryServiceManager,
    RunOptions, Verdict,
};

fn lab(
    n: usize,
) -> (
    Environment,
    Vec<MemoryHost>,
    Vec<MemoryServiceManager>,
    MemoryNotifier,
) {
    let notifier = MemoryNotifier::new();
    let mut b = Environment::builder("prod")
        .clock(ManualClock::starting_now())
        .notifier(notifier.clone());
    let (mut hosts, mut svcs) = (Vec::new(), Vec::new());
    for i in 1..=n {
        let h = MemoryHost::new(format!("web-{i}"));
        h.respond_any("touch", 0, "").respond_any("rm", 0, "");
        let s = MemoryServiceManager::new(format!("web-{i}"));
        b = b.host_with_service(h.clone(), &s);
        hosts.push(h);
        svcs.push(s);
    }
    (b.build(), hosts, svcs, notifier)
}

fn ran(h: &MemoryHost) -> Vec<String> {
    h.calls.all().iter().map(|c| c.display()).collect()
}

#[tokio::test]
async fn shutdown_flags_notifies_stops_and_kills_what_ignores_the_stop() {
    let (env, hosts, svcs, notifier) = lab(2);
    svcs[1].behave(ServiceBehaviour::IgnoresGraceful);
    let o = EmergencyOptions {
        reason: Some("data leak".into()),
        ..Default::default()
    };
    let r = emergency_shutdown(&env, &o, &RunOptions::default()).await;
    let p: ShutdownPayload = r.payload_as().unwrap();
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let outcomes: Vec<StopOutcome> = p.hosts.iter().map(|h| h.outcome).collect();
    assert_eq!(outcomes, [StopOutcome::Stopped, StopOutcome::Killed]);
    assert!(p.hosts.iter().all(|h| h.flag_set && h.pids_left.is_empty()));
    assert!(svcs.iter().all(|s| s.pid().is_none()));
    assert_eq!(ran(&hosts[0]), ["touch /app/EMERGENCY_SHUTDOWN"]);
    let sent = notifier.sent.all();
    assert!(
        sent[0].contains("Emergency shutdown") && sent[0].contains("data leak"),
        "{sent:?}"
    );
    assert!(p.notified);

    let r = emergency_recover(&env, &EmergencyOptions::default(), &RunOptions::default()).await;
    let p: EmergencyRecoverPayload = r.payload_as().unwrap();
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(p.hosts.iter().all(|h| h.healthy), "{:?}", p.hosts);
    assert!(svcs.iter().all(|s| s.pid().is_some()));
    assert_eq!(ran(&hosts[0])[1], "rm -f /app/EMERGENCY_SHUTDOWN");
}

#[tokio::test]
async fn a_failed_notice_is_a_warning_and_the_shutdown_goes_on() {
    let (env, _, svcs, notifier) = lab(2);
    notifier
        .faults
        .fail_always(ErrorKind::Unavailable, "slack down");
    let r = emergency_shutdown(&env, &EmergencyOptions::default(), &RunOptions::default()).await;
    let p: ShutdownPayload = r.payload_as().unwrap();
    assert!(!p.notified);
    assert!(
        svcs.iter().all(|s| s.pid().is_none()),
        "{}",
        r.to_text(false)
    );
    assert!(r.findings.iter().any(|f| f.message.contains("not sent")));
}

#[tokio::test]
async fn dry_run_touches_no_host_and_no_service() {
    let (env, hosts, svcs, notifier) = lab(2);
    let ro = RunOptions::default().dry_run(true);
    let r = emergency_shutdown(&env, &EmergencyOptions::default(), &ro).await;
    assert!(r.dry_run);
    assert!(hosts.iter().all(|h| h.calls.is_empty()));
    assert!(svcs.iter().all(|s| s.calls.is_empty() && s.pid().is_some()));
    assert!(notifier.sent.all().is_empty());
    let plan = r.to_text(false);
    assert!(
        plan.contains("kill -s KILL") && plan.contains("touch /app/EMERGENCY_SHUTDOWN"),
        "{plan}"
    );
}
