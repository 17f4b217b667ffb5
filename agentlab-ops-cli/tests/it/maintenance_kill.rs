//! The maintenance flag can never be left behind: the runner (the command) is killed with
//! SIGKILL at several moments of a weekly maintenance over the real sshd, and every flag is
//! gone within lease + 5 s with no later command — the host's own watchdog removes it. The
//! journal has the lease's set and renewals.

use crate::common;
use common::{bin, text};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_SECS: u64 = 3;

fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) => Some(v),
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => None,
        Err(_) => {
            panic!("needs the test sshd: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)")
        }
    }
}

/// Two hosts, a pip that takes a second, a database step that takes long: a run that is
/// killed somewhere inside the first host's maintenance.
fn setup() -> Option<(tempfile::TempDir, Vec<PathBuf>)> {
    let key_dir = PathBuf::from(env("AGENTLAB_TEST_SSH_DIR")?);
    let ports = env("AGENTLAB_TEST_SSH_PORTS")?;
    let user = std::env::var("AGENTLAB_TEST_SSH_USER").unwrap_or_else(|_| "root".into());
    let d = tempfile::Builder::new()
        .prefix("alk")
        .tempdir_in("/tmp")
        .unwrap();
    let pip = d.path().join("fakepip");
    std::fs::write(
        &pip,
        "#!/bin/sh\ncase \"$1\" in list) echo '[]' ;; install) sleep 1 ;; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&pip, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut hosts = String::new();
    let mut dirs = Vec::new();
    for (i, p) in ports.split_whitespace().take(2).enumerate() {
        let dir = d.path().join(format!("h{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        hosts += &format!(
            "[[hosts]]\nname = \"h{}\"\naddress = \"ssh://{user}@127.0.0.1:{p}\"\nvars = {{ dir = \"{}\" }}\n",
            i + 1,
            dir.display()
        );
        dirs.push(dir);
    }
    let cfg = format!(
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n\
         [ssh]\nidentity_file = \"{k}/client_ed25519\"\nknown_hosts = \"{k}/known_hosts\"\nconfig_file = \"/dev/null\"\ncontrol_dir = \"{ctl}\"\n\
         [service_manager]\nkind = \"process\"\nstart = [\"sleep\", \"600\"]\nhealth_url = \"http://127.0.0.1:9\"\n\
         [maintenance]\nflag = \"{{dir}}/MAINTENANCE_MODE\"\nlease = \"{LEASE_SECS}s\"\npip = \"{pip}\"\nrequirements = \"{{dir}}/req.txt\"\n\
         apt_get = []\nlogrotate = []\ndatabase = [\"sleep\", \"19.125\"]\nworkdir = \"{{dir}}\"\ntls_endpoint = \"\"\nrestore_test = false\nnotice = \"0s\"\n{hosts}",
        k = key_dir.display(),
        ctl = d.path().join("ctl").display(),
        pip = pip.display(),
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    Some((d, dirs))
}

fn wait_until(limit: Duration, f: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Kill what a killed runner leaves: its ssh masters, and the remote `sleep`.
fn clean_up(dir: &Path) {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        let ours =
            cmd.contains(&dir.join("ctl").display().to_string()) || cmd.trim() == "sleep 19.125";
        if ours && !cmd.contains("/proc") {
            let pid = e.file_name().to_string_lossy().to_string();
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

#[test]
fn sigkill_of_the_runner_never_leaves_a_flag() {
    // When: as soon as the lease exists, once the flag exists, during pip, during the
    // database step.
    for (when, after_flag) in [
        ("lease armed", None),
        ("flag set", Some(0)),
        ("pip", Some(600)),
        ("database", Some(2000)),
    ] {
        let Some((d, dirs)) = setup() else { return };
        let flag = dirs[0].join("MAINTENANCE_MODE");
        let lease = dirs[0].join("MAINTENANCE_MODE.lease");
        let mut child = bin(d.path())
            .args(["maintenance", "weekly", "--no-wait"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = match after_flag {
            None => wait_until(Duration::from_secs(15), || lease.exists()),
            Some(_) => wait_until(Duration::from_secs(15), || flag.exists()),
        };
        assert!(seen.is_some(), "{when}: the run never got there");
        std::thread::sleep(Duration::from_millis(after_flag.unwrap_or(0)));
        child.kill().unwrap(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let limit = Duration::from_secs(LEASE_SECS + 5);
        let gone = wait_until(limit, || !flag.exists() && !lease.exists());
        clean_up(d.path());
        assert!(
            gone.is_some(),
            "{when}: the flag outlived the lease + 5 s: {}",
            text(&out.stderr)
        );
        assert!(
            !dirs[1].join("MAINTENANCE_MODE").exists(),
            "{when}: h2 was flagged"
        );
        let journal = std::fs::read_to_string(d.path().join("journal.jsonl")).unwrap_or_default();
        assert!(
            journal.contains("\"action\":\"set\""),
            "{when}: no lease in the journal: {journal}"
        );
        if when == "database" {
            assert!(
                journal.contains("\"action\":\"renew\""),
                "{when}: no renewal journaled"
            );
        }
    }
}
