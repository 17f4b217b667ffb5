//! The service runbooks against the real sshd hosts started by `scripts/test.sh`: systemd is
//! the stand-in `systemctl` on the hosts' PATH (CI has no systemd as PID 1) managing a real
//! Python service per host; the plain-process manager runs the same service directly.

mod common;
use common::{control_dir, free_port, processes_mentioning, servers};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentlab_ops::config::{BaseUrl, Dur, HostAddress, HostConfig, ManagerKind};
use agentlab_ops::runbook::{
    EmergencyOptions, EmergencyRecoverPayload, HostOutcome, RestartOptions, RestartPayload,
    ShutdownPayload, StopOutcome, emergency_recover, emergency_shutdown, restart,
};
use agentlab_ops::testing::service_manager_conformance;
use agentlab_ops::{Config, Environment, MemoryNotifier, RunOptions};

const SERVICE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/standins/agentlab-service.py"
);

struct Fleet {
    env: Environment,
    dirs: Vec<PathBuf>,
    _tmp: tempfile::TempDir,
    _cd: tempfile::TempDir,
}

/// `n` hosts on the test sshd's ports, each with its own unit, port and app directory.
async fn fleet(test: &str, n: usize, kind: ManagerKind) -> Option<Fleet> {
    let s = servers(test)?;
    let tmp = tempfile::Builder::new()
        .prefix("alsvc")
        .tempdir_in("/tmp")
        .unwrap();
    let cd = control_dir();
    let mut cfg = Config::new(BaseUrl::parse("http://127.0.0.1:9").unwrap());
    cfg.journal.disabled = true;
    cfg.ssh.identity_file = Some(s.key());
    cfg.ssh.known_hosts = Some(s.known_hosts());
    cfg.ssh.config_file = Some("/dev/null".into());
    cfg.ssh.control_dir = Some(cd.path().to_path_buf());
    cfg.hosts.clear();
    let mut dirs = Vec::new();
    let tag = common::unique(test);
    for (i, port) in s.ssh_ports.iter().take(n).enumerate() {
        let name = format!("h{}", i + 1);
        let dir = tmp.path().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let http = free_port();
        let unit = format!("al-{tag}-{name}");
        write_unit(&s.ssh_dir.join("units"), &unit, &dir, http);
        let addr = format!("ssh://{}@127.0.0.1:{port}", s.user);
        let mut h = HostConfig::new(&name, HostAddress::parse(&addr).unwrap());
        h.vars.insert("dir".into(), dir.display().to_string());
        h.vars.insert("port".into(), http.to_string());
        h.vars.insert("unit".into(), unit);
        cfg.hosts.push(h);
        dirs.push(dir);
    }
    let sm = &mut cfg.service_manager;
    sm.kind = kind;
    sm.unit = "{unit}".into();
    sm.health_url = "http://127.0.0.1:{port}".into();
    sm.start = ["python3", SERVICE, "--port", "{port}", "--dir", "{dir}"]
        .map(String::from)
        .to_vec();
    sm.workdir = "{dir}".into();
    sm.pid_file = "{dir}/app.pid".into();
    sm.log_file = "{dir}/app.log".into();
    sm.stop_timeout = Dur(Duration::from_secs(2));
    cfg.restart.health.deadline = Dur(Duration::from_secs(6));
    cfg.restart.health.interval = Dur(Duration::from_millis(300));
    cfg.emergency.flag = "{dir}/EMERGENCY_SHUTDOWN".into();
    cfg.emergency.stop_wait = Dur(Duration::from_secs(2));
    let env = Environment::from_config(cfg).await.unwrap();
    Some(Fleet {
        env,
        dirs,
        _tmp: tmp,
        _cd: cd,
    })
}

fn write_unit(units: &Path, unit: &str, dir: &Path, port: u16) {
    let d = dir.display();
    let body = format!(
        "ExecStart=python3 {SERVICE} --port {port} --dir {d}\nWorkingDirectory={d}\nPIDFile={d}/app.pid\nStandardOutput=file:{d}/app.log\nTimeoutStopSec=1\nSendSIGKILL=no\n"
    );
    std::fs::write(units.join(format!("{unit}.service")), body).unwrap();
}

/// Live service processes of one host's directory, seen from outside the tool.
fn running(dir: &Path) -> Vec<String> {
    processes_mentioning(&format!("--dir {}", dir.display()))
}

impl Fleet {
    async fn start_all(&self) {
        for s in self.env.services.values() {
            s.manager.start().await.unwrap();
        }
    }
    async fn stop_all(&self) {
        for s in self.env.services.values() {
            let _ = s.manager.kill(agentlab_ops::service::Signal::Kill).await;
        }
        self.env.close().await;
    }
}

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
