//! The weekly maintenance over two real sshd hosts: a real venv per host upgraded by pip from a
//! local wheel directory, the apt-get stand-in (CI is never really upgraded), Debian's
//! logrotate on real files, the app's database command, a real TLS listener (openssl
//! s_server with a 20-day test certificate), the systemctl stand-in for the restart.

use crate::common;
use common::fleet::{Fleet, fleet_with};

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use agentlab_ops::config::{Dur, ManagerKind};
use agentlab_ops::runbook::maintenance::HostState;
use agentlab_ops::runbook::{MaintenanceOptions, MaintenancePayload, weekly_maintenance};
use agentlab_ops::{MemoryNotifier, RunOptions, Verdict};

const WHEELS: &str = r#"
import sys, zipfile
for v in ("1.0", "1.1"):
    di = f"alpkg-{v}.dist-info"
    with zipfile.ZipFile(f"{sys.argv[1]}/alpkg-{v}-py3-none-any.whl", "w") as z:
        z.writestr("alpkg/__init__.py", f"VERSION = {v!r}\n")
        z.writestr(f"{di}/METADATA", f"Metadata-Version: 2.1\nName: alpkg\nVersion: {v}\n")
        z.writestr(f"{di}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{di}/RECORD", f"alpkg/__init__.py,,\n{di}/METADATA,,\n{di}/WHEEL,,\n{di}/RECORD,,\n")
"#;

fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A host's app directory: a venv with alpkg 1.0, requirements, an apt fixture, a log to
/// rotate and its logrotate config.
fn prepare(dir: &Path, wheels: &Path) {
    sh(Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir.join("venv")));
    let pip = dir.join("venv/bin/pip");
    sh(Command::new(&pip)
        .args(["install", "-q", "--no-index", "--find-links"])
        .arg(wheels)
        .arg("alpkg==1.0"));
    std::fs::write(dir.join("requirements.txt"), "alpkg\n").unwrap();
    std::fs::write(
        dir.join("apt.fixture"),
        "openssl 3.0.11-1~deb12u1 3.0.15-1~deb12u1 security\ncurl 7.88.1-10 7.88.1-10+deb12u8\n",
    )
    .unwrap();
    std::fs::write(dir.join("agent-lab.log"), "request ok\n".repeat(200)).unwrap();
    let conf = format!(
        "{}/agent-lab.log {{\n    rotate 2\n    size 1\n    missingok\n    nocompress\n}}\n",
        dir.display()
    );
    std::fs::write(dir.join("logrotate.conf"), conf).unwrap();
}

/// The TLS listener, ended when the test ends, passed or not.
struct Tls(Child);

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// openssl s_server on a free port with a certificate valid for 20 more days.
fn tls_server(dir: &Path) -> (Tls, u16) {
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "20",
            "-subj",
            "/CN=agent-lab.test",
            "-keyout",
        ])
        .arg(&k)
        .arg("-out")
        .arg(&c));
    let port = common::free_port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(&c)
        .arg("-key")
        .arg(&k)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Tls(child);
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

async fn lab(test: &str) -> Option<(Fleet, Tls)> {
    let scratch = tempfile::tempdir().unwrap();
    let (tls, port) = tls_server(scratch.path());
    let wheels = scratch.keep().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    sh(Command::new("python3").args(["-c", WHEELS]).arg(&wheels));
    let w = wheels.display().to_string();
    let f = fleet_with(test, 2, ManagerKind::Systemd, |cfg| {
        let m = &mut cfg.maintenance;
        m.flag = "{dir}/MAINTENANCE_MODE".into();
        m.lease = Dur(Duration::from_secs(6));
        m.pip = "{dir}/venv/bin/pip".into();
        m.requirements = "{dir}/requirements.txt".into();
        m.pip_args = vec!["--no-index".into(), "--find-links".into(), w];
        m.apt_get = ["env", "AGENTLAB_APT_FIXTURE={dir}/apt.fixture", "apt-get"]
            .map(String::from)
            .to_vec();
        m.logrotate = [
            "logrotate",
            "-s",
            "{dir}/logrotate.state",
            "{dir}/logrotate.conf",
        ]
        .map(String::from)
        .to_vec();
        m.database = ["sh", "-c", "echo optimized $(ls | wc -l) entries"]
            .map(String::from)
            .to_vec();
        m.workdir = "{dir}".into();
        m.tls_endpoint = format!("127.0.0.1:{port}");
        m.tls_server_name = "agent-lab.test".into();
        m.restore_test = false;
    })
    .await?;
    for d in &f.dirs {
        prepare(d, &wheels);
    }
    f.start_all().await;
    Some((f, tls))
}

fn alpkg(dir: &Path) -> String {
    let p = dir.join("venv/bin/python");
    let o = Command::new(p)
        .args(["-c", "import alpkg; print(alpkg.VERSION)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn opts() -> MaintenanceOptions {
    MaintenanceOptions {
        no_wait: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn weekly_maintenance_on_two_hosts_upgrades_rotates_restarts_and_unflags() {
    let Some((mut f, _tls)) = lab("maint_ok").await else {
        return;
    };
    let notifier = MemoryNotifier::new();
    f.env.notifier = Some(Arc::new(notifier.clone()));
    let r = weekly_maintenance(&f.env, &opts(), &RunOptions::default()).await;
    let p: MaintenancePayload = r.payload_as().unwrap();
    assert_ne!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    assert!(p.notice_sent && notifier.sent.all()[0].contains("maintenance"));
    for (h, d) in p.hosts.iter().zip(&f.dirs) {
        assert_eq!(h.state, HostState::Done, "{}: {}", h.host, r.to_text(false));
        let alp = h.pip.iter().find(|c| c.name == "alpkg").unwrap();
        assert_eq!(
            (alp.old.as_deref(), alp.new.as_deref()),
            (Some("1.0"), Some("1.1"))
        );
        assert_eq!(alpkg(d), "1.1");
        let names: Vec<&str> = h.apt.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["openssl", "curl"]);
        assert!(
            d.join("agent-lab.log.1").exists(),
            "not rotated in {}",
            d.display()
        );
        assert!(h.database.as_deref().unwrap().contains("optimized"));
        let cert = h.certificate.as_ref().unwrap();
        assert!((18..=20).contains(&cert.days_left), "{cert:?}");
        assert!(h.restart.is_some() && h.flag_removed);
        assert!(!d.join("MAINTENANCE_MODE").exists() && !d.join("MAINTENANCE_MODE.lease").exists());
    }
    // 20 days left is inside the 30-day warning, not the 7-day escalation.
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("TLS certificate expires"))
    );
    f.stop_all().await;
}

#[tokio::test]
async fn a_failing_step_on_host_2_undoes_it_there_and_leaves_host_1_alone() {
    let Some((f, _tls)) = lab("maint_fail").await else {
        return;
    };
    std::fs::write(f.dirs[1].join("apt.fixture.fail"), "").unwrap();
    let r = weekly_maintenance(&f.env, &opts(), &RunOptions::default()).await;
    let p: MaintenancePayload = r.payload_as().unwrap();
    assert_eq!(p.hosts[0].state, HostState::Done, "{}", r.to_text(false));
    assert_eq!(p.hosts[1].state, HostState::Failed);
    assert_eq!(p.hosts[1].failed_step.as_deref(), Some("apt"));
    assert!(
        p.hosts[1]
            .error
            .as_deref()
            .unwrap()
            .contains("Could not get lock")
    );
    assert_eq!(r.verdict, Verdict::Escalate);
    // Host 2: its pip upgrade undone, its flag and lease gone; host 1 keeps its upgrade.
    assert_eq!(alpkg(&f.dirs[1]), "1.0");
    assert_eq!(alpkg(&f.dirs[0]), "1.1");
    for d in &f.dirs {
        assert!(!d.join("MAINTENANCE_MODE").exists() && !d.join("MAINTENANCE_MODE.lease").exists());
    }
    f.stop_all().await;
}

#[tokio::test]
async fn dry_run_plans_every_command_and_changes_no_host() {
    let Some((f, _tls)) = lab("maint_dry").await else {
        return;
    };
    let before: Vec<String> = f.dirs.iter().map(|d| alpkg(d)).collect();
    let r = weekly_maintenance(&f.env, &opts(), &RunOptions::default().dry_run(true)).await;
    let text = r.to_text(false);
    for step in [
        "h1:flag",
        "h1:pip",
        "h1:apt",
        "h1:logrotate",
        "h1:database",
        "h1:restart",
        "h2:unflag",
    ] {
        assert!(
            r.checks.iter().any(|c| c.name == step),
            "{step} not planned: {text}"
        );
    }
    assert!(text.contains("install --upgrade -r"), "{text}");
    for (d, b) in f.dirs.iter().zip(before) {
        assert_eq!(alpkg(d), b);
        assert!(!d.join("MAINTENANCE_MODE").exists() && !d.join("agent-lab.log.1").exists());
        assert!(!d.join("apt.fixture.done").exists());
    }
    f.stop_all().await;
}
