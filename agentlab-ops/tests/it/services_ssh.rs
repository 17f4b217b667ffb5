//! The service runbooks against the real sshd hosts started by `scripts/test.sh`: systemd is
//! the stand-in `systemctl` on the hosts' PATH (CI has no systemd as PID 1) managing a real
//! Python service per host; the plain-process manager runs the same service directly.

use crate::common;
use common::fleet::{fleet, running};

use std::sync::Arc;

use agentlab_ops::config::ManagerKind;
use agentlab_ops::runbook::{
    EmergencyOptions, EmergencyRecoverPayload, HostOutcome, RestartOptions, RestartPayload,
    ShutdownPayload, StopOutcome, emergency_recover, emergency_shutdown, restart,
};
use agentlab_ops::testing::service_manager_conformance;
use agentlab_ops::{MemoryNotifier, RunOptions};

#[tokio::test]
async fn systemd_and_process_managers_pass_the_conformance_suite_over_ssh() {
    for kind in [ManagerKind::Systemd, ManagerKind::Process] {
        let Some(f) = fleet("svc_conformance", 1, kind).await else {
            return;
        };
        let svc = f.env.service("h1").unwrap();
        service_manager_conformance(svc.manager.as_ref()).await;
        assert_eq!(
            running(&f.dirs[0]).len(),
            1,
            "{kind:?}: one service process at the end"
        );
        f.stop_all().await;
        assert!(running(&f.dirs[0]).is_empty());
    }
}

#[tokio::test]
async fn restart_over_three_hosts_forces_one_fails_one_and_stops_before_the_third() {
    let Some(f) = fleet("svc_restart", 3, ManagerKind::Systemd).await else {
        return;
    };
    std::fs::write(f.dirs[0].join("IGNORE_TERM"), "").unwrap();
    f.start_all().await;
    std::fs::write(f.dirs[1].join("BROKEN"), "").unwrap();
    let third_pid = std::fs::read_to_string(f.dirs[2].join("app.pid")).unwrap();

    let r = restart(&f.env, &RestartOptions::default(), &RunOptions::default()).await;
    let p: RestartPayload = r.payload_as().unwrap();
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
    assert!(
        p.hosts[0]
            .graceful_problem
            .as_deref()
            .unwrap()
            .contains("timeout"),
        "{:?}",
        p.hosts[0]
    );
    assert!(p.hosts[1].last_health.is_some());
    // From outside: h1 runs a new process, h2 none, h3 the same one as before.
    assert_eq!(running(&f.dirs[0]).len(), 1);
    assert!(running(&f.dirs[1]).is_empty());
    assert_eq!(
        std::fs::read_to_string(f.dirs[2].join("app.pid")).unwrap(),
        third_pid
    );
    f.stop_all().await;
}

#[tokio::test]
async fn emergency_shutdown_leaves_no_process_and_recover_brings_both_back() {
    let Some(mut f) = fleet("svc_emergency", 2, ManagerKind::Systemd).await else {
        return;
    };
    std::fs::write(f.dirs[1].join("IGNORE_TERM"), "").unwrap();
    f.start_all().await;
    let notifier = MemoryNotifier::new();
    f.env.notifier = Some(Arc::new(notifier.clone()));
    let r = emergency_shutdown(&f.env, &EmergencyOptions::default(), &RunOptions::default()).await;
    let p: ShutdownPayload = r.payload_as().unwrap();
    let outcomes: Vec<StopOutcome> = p.hosts.iter().map(|h| h.outcome).collect();
    assert_eq!(
        outcomes,
        [StopOutcome::Stopped, StopOutcome::Killed],
        "{}",
        r.to_text(false)
    );
    for d in &f.dirs {
        assert!(
            running(d).is_empty(),
            "a service process survived in {}",
            d.display()
        );
        assert!(d.join("EMERGENCY_SHUTDOWN").exists());
    }
    assert_eq!(notifier.sent.len(), 1);

    std::fs::remove_file(f.dirs[1].join("IGNORE_TERM")).unwrap();
    let r = emergency_recover(&f.env, &EmergencyOptions::default(), &RunOptions::default()).await;
    let p: EmergencyRecoverPayload = r.payload_as().unwrap();
    assert!(p.hosts.iter().all(|h| h.healthy), "{}", r.to_text(false));
    for d in &f.dirs {
        assert_eq!(running(d).len(), 1);
        assert!(!d.join("EMERGENCY_SHUTDOWN").exists());
    }
    f.stop_all().await;
}
