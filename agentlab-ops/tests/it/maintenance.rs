//! The weekly maintenance on memory doubles (virtual clock): the notice and its wait, host by
//! host order, a failing host stopping the ones after it, its package upgrade undone and its
//! flag removed (its package upgrade undone: see the real-host version). The real-host version is `maintenance_ssh.rs`; the SIGKILL one is in the
//! command's tests.

use agentlab_ops::runbook::maintenance::HostState;
use agentlab_ops::runbook::{MaintenanceOptions, MaintenancePayload, weekly_maintenance};
use agentlab_ops::{
    Clock, Environment, ManualClock, MemoryHost, MemoryNotifier, MemoryServiceManager, RunOptions,
    Verdict,
};

const BEFORE: &str = r#"[{"name": "requests", "version": "2.31.0"}]"#;

fn host(name: &str) -> MemoryHost {
    let h = MemoryHost::new(name);
    h.respond_any("sh", 0, "4242") // the lease's watchdog and renewals
        .respond_any("touch", 0, "")
        .respond_any("rm", 0, "")
        .respond_any("env", 0, "   openssl (3.0.11 => 3.0.15)\n")
        .respond_any("logrotate", 0, "")
        .respond(
            "/app/venv/bin/pip",
            &["list", "--format=json", "--disable-pip-version-check"],
            0,
            BEFORE,
        )
        .respond_any("/app/venv/bin/pip", 0, "");
    h
}

fn lab(n: usize) -> (Environment, Vec<MemoryHost>, MemoryNotifier, ManualClock) {
    let notifier = MemoryNotifier::new();
    let clock = ManualClock::starting_now();
    let mut b = Environment::builder("prod")
        .clock(clock.clone())
        .notifier(notifier.clone());
    let mut hosts = Vec::new();
    for i in 1..=n {
        let h = host(&format!("web-{i}"));
        b = b.host_with_service(h.clone(), &MemoryServiceManager::new(format!("web-{i}")));
        hosts.push(h);
    }
    let mut env = b.build();
    env.config.maintenance.tls_endpoint = String::new();
    (env, hosts, notifier, clock)
}

fn ran(h: &MemoryHost) -> Vec<String> {
    h.calls.all().iter().map(|c| c.display()).collect()
}

#[tokio::test]
async fn the_notice_goes_out_ahead_and_hosts_go_one_by_one() {
    let (env, hosts, notifier, clock) = lab(2);
    let start = clock.now();
    let r = weekly_maintenance(&env, &MaintenanceOptions::default(), &RunOptions::default()).await;
    let p: MaintenancePayload = r.payload_as().unwrap();
    assert!(
        notifier.sent.all()[0].contains("starting in 30m"),
        "{:?}",
        notifier.sent.all()
    );
    assert!(
        clock.now() - start >= chrono::Duration::minutes(30),
        "the run did not wait the notice"
    );
    assert!(
        p.hosts.iter().all(|h| h.state == HostState::Done),
        "{}",
        r.to_text(false)
    );
    assert_eq!(p.hosts[0].apt[0].name, "openssl");
    // web-1 was done (flag removed) before web-2 was flagged.
    let checks: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    let pos = |n: &str| {
        checks
            .iter()
            .position(|c| *c == n)
            .unwrap_or_else(|| panic!("{n}: {checks:?}"))
    };
    assert!(pos("web-1:unflag") < pos("web-2:flag"), "{checks:?}");
    assert!(
        ran(&hosts[1])
            .iter()
            .any(|c| c == "rm -f /app/MAINTENANCE_MODE")
    );
}

#[tokio::test]
async fn a_failed_host_stops_the_next_and_clears_its_own_flag() {
    let (env, hosts, _, _) = lab(3);
    // web-2's pip list shows an upgrade; then its log rotation fails.
    hosts[1].respond_any("logrotate", 1, "");
    let o = MaintenanceOptions {
        no_wait: true,
        ..Default::default()
    };
    let r = weekly_maintenance(&env, &o, &RunOptions::default()).await;
    let p: MaintenancePayload = r.payload_as().unwrap();
    let states: Vec<HostState> = p.hosts.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [HostState::Done, HostState::Failed, HostState::Skipped],
        "{}",
        r.to_text(false)
    );
    assert_eq!(p.hosts[1].failed_step.as_deref(), Some("logrotate"));
    assert!(p.hosts[1].flag_removed);
    assert_eq!(r.verdict, Verdict::Escalate);
    assert!(
        hosts[2].calls.is_empty(),
        "web-3 was touched: {:?}",
        ran(&hosts[2])
    );
    // No package changed on web-2 (same list before and after), so nothing to put back; the
    // flag was removed there and on web-1 — by each host's own scope, not at the end.
    assert!(ran(&hosts[1]).contains(&"rm -f /app/MAINTENANCE_MODE".to_string()));
    assert!(!r.checks.iter().any(|c| c.name == "web-1:pip:undo"));
}

#[tokio::test]
async fn the_restore_test_runs_once_and_its_escalations_are_the_maintenances() {
    let notifier = MemoryNotifier::new();
    let h = host("web-1");
    let env = {
        let b = Environment::builder("prod")
            .clock(ManualClock::starting_now())
            .notifier(notifier)
            .backups(agentlab_ops::MemoryBackupStore::new(), &["sessions"])
            .host_with_service(h, &MemoryServiceManager::new("web-1"));
        let mut e = b.build();
        e.config.maintenance.tls_endpoint = String::new();
        e
    };
    let o = MaintenanceOptions {
        no_wait: true,
        ..Default::default()
    };
    let r = weekly_maintenance(&env, &o, &RunOptions::default()).await;
    let p: MaintenancePayload = r.payload_as().unwrap();
    // No backup tonight: the verification escalates, and so does the maintenance — after the
    // hosts were done.
    assert_eq!(p.hosts[0].state, HostState::Done, "{}", r.to_text(false));
    assert_eq!(p.restore_test.as_deref(), Some("escalate"));
    assert!(
        r.escalations.iter().any(|e| e.subject.contains("sessions")),
        "{}",
        r.to_text(false)
    );
    assert_eq!(
        r.checks
            .iter()
            .filter(|c| c.name == "backup_restore_test")
            .count(),
        1
    );
}
