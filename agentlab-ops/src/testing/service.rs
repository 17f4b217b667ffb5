//! The conformance suite of [`ServiceManager`]: systemd (the stand-in `systemctl` on the
//! test hosts), the plain-process manager, the memory double.

use std::time::Duration;

use crate::service::{ServiceManager, Signal};

async fn pids_after(m: &dyn ServiceManager, limit: Duration) -> Vec<u32> {
    let start = std::time::Instant::now();
    loop {
        let p = m.processes().await.expect("processes()");
        if p.is_empty() || start.elapsed() >= limit {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run every service manager check; the service is left running.
pub async fn service_manager_conformance(m: &dyn ServiceManager) {
    assert!(!m.describe().is_empty(), "describe() names the manager");
    service_starts_once(m).await;
    service_restart_makes_a_new_process(m).await;
    service_stop_leaves_no_process(m).await;
    service_kill_leaves_no_process(m).await;
    m.start().await.expect("start() at the end");
}

/// From stopped, `start` runs it (active, a main pid among its processes); a second `start`
/// changes nothing.
pub async fn service_starts_once(m: &dyn ServiceManager) {
    m.stop().await.expect("stop() first");
    let s = m.status().await.expect("status()");
    assert!(!s.active, "{}: stopped, yet {s:?}", m.describe());
    m.start().await.expect("start()");
    let s = m.status().await.expect("status()");
    assert!(s.active, "{}: started, yet {s:?}", m.describe());
    let pid = s.main_pid.expect("a main pid once started");
    assert!(m.processes().await.expect("processes()").contains(&pid));
    m.start().await.expect("start() again");
    assert_eq!(
        m.status().await.expect("status()").main_pid,
        Some(pid),
        "start twice, one process"
    );
}

/// `restart` ends with a different main process, running.
pub async fn service_restart_makes_a_new_process(m: &dyn ServiceManager) {
    m.start().await.expect("start()");
    let before = m.status().await.expect("status()").main_pid;
    m.restart().await.expect("restart()");
    let s = m.status().await.expect("status()");
    assert!(s.active, "{}: restarted, yet {s:?}", m.describe());
    assert_ne!(
        s.main_pid,
        before,
        "{}: restart kept the same pid",
        m.describe()
    );
}

/// A graceful `stop` leaves none of its processes; stopping again is fine.
pub async fn service_stop_leaves_no_process(m: &dyn ServiceManager) {
    m.start().await.expect("start()");
    m.stop().await.expect("stop()");
    assert_eq!(
        m.processes().await.expect("processes()"),
        Vec::<u32>::new(),
        "{}",
        m.describe()
    );
    assert!(!m.status().await.expect("status()").active);
    m.stop().await.expect("stop() when stopped");
}

/// `kill(KILL)` ends every process of the service.
pub async fn service_kill_leaves_no_process(m: &dyn ServiceManager) {
    m.start().await.expect("start()");
    m.kill(Signal::Kill).await.expect("kill(KILL)");
    let left = pids_after(m, Duration::from_secs(5)).await;
    assert!(left.is_empty(), "{}: after KILL {left:?}", m.describe());
}
