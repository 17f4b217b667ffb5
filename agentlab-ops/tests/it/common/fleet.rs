//! A fleet of hosts on the test sshd's ports, each with its own systemd unit (the stand-in
//! `systemctl`), port and app directory, running the stand-in Python service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentlab_ops::config::{BaseUrl, Dur, HostAddress, HostConfig, ManagerKind};
use agentlab_ops::{Config, Environment};

use super::{control_dir, free_port, processes_mentioning, servers};

pub const SERVICE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/standins/agentlab-service.py"
);

pub struct Fleet {
    pub env: Environment,
    pub dirs: Vec<PathBuf>,
    pub tmp: tempfile::TempDir,
    _cd: tempfile::TempDir,
}

/// `n` hosts on the test sshd's ports, each with its own unit, port and app directory.
pub async fn fleet(test: &str, n: usize, kind: ManagerKind) -> Option<Fleet> {
    fleet_with(test, n, kind, |_| {}).await
}

/// [`fleet`], with a last change to the config before the environment is built.
pub async fn fleet_with(
    test: &str,
    n: usize,
    kind: ManagerKind,
    edit: impl FnOnce(&mut Config),
) -> Option<Fleet> {
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
    let tag = super::unique(test);
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
    edit(&mut cfg);
    let env = Environment::from_config(cfg).await.unwrap();
    Some(Fleet {
        env,
        dirs,
        tmp,
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
pub fn running(dir: &Path) -> Vec<String> {
    processes_mentioning(&format!("--dir {}", dir.display()))
}

impl Fleet {
    pub async fn start_all(&self) {
        for s in self.env.services.values() {
            s.manager.start().await.unwrap();
        }
    }
    pub async fn stop_all(&self) {
        for s in self.env.services.values() {
            let _ = s.manager.kill(agentlab_ops::service::Signal::Kill).await;
        }
        self.env.close().await;
    }
}
