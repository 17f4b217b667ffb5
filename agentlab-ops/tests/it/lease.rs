//! The dead-man's switch on a real local host: an abandoned lease runs its undo on the host by
//! itself; a renewed one does not; a disarmed one never does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentlab_ops::LocalHost;
use agentlab_ops::host::lease::{Lease, LeaseEvent, LeaseLog};

fn flag_in(dir: &std::path::Path) -> (String, Vec<String>) {
    let flag = dir.join("MAINTENANCE_MODE");
    std::fs::write(&flag, "").unwrap();
    let f = flag.display().to_string();
    (f.clone(), vec!["rm".into(), "-f".into(), f])
}

async fn gone_within(path: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !std::path::Path::new(path).exists() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn an_abandoned_lease_undoes_the_change_on_the_host() {
    let d = tempfile::tempdir().unwrap();
    let (flag, undo) = flag_in(d.path());
    let events = Arc::new(Mutex::new(Vec::<LeaseEvent>::new()));
    let e2 = events.clone();
    let log: LeaseLog = Arc::new(move |e: &LeaseEvent| e2.lock().unwrap().push(e.clone()));
    let host = Arc::new(LocalHost::new("local"));
    let lease_file = format!("{flag}.lease");
    // A 4 s lease renewed every second: a renewal may lag by up to 3 s on a loaded machine
    // before the lease runs out.
    let lease = Lease::arm(host, &lease_file, Duration::from_secs(4), &undo, Some(log))
        .await
        .unwrap();
    // Renewed while the runner lives: still there after more than one ttl.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert!(
        std::path::Path::new(&flag).exists(),
        "removed while renewed"
    );
    drop(lease); // the runner dies: no more renewals
    let took = gone_within(&flag, Duration::from_secs(12)).await;
    assert!(took.is_some(), "the host did not remove the flag by itself");
    assert!(!std::path::Path::new(&lease_file).exists());
    let actions: Vec<&str> = events.lock().unwrap().iter().map(|e| e.action).collect();
    assert_eq!(actions[0], "set");
    assert!(actions.contains(&"renew"), "{actions:?}");
}

#[tokio::test]
async fn a_disarmed_lease_never_fires() {
    let d = tempfile::tempdir().unwrap();
    let (flag, undo) = flag_in(d.path());
    let host = Arc::new(LocalHost::new("local"));
    let lease = Lease::arm(
        host,
        &format!("{flag}.lease"),
        Duration::from_secs(2),
        &undo,
        None,
    )
    .await
    .unwrap();
    lease.disarm().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        std::path::Path::new(&flag).exists(),
        "a disarmed lease fired"
    );
}
