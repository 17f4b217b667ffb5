//! `rotate_ssh_key` against real sshds that read their own authorized_keys: the rotation ends
//! on the new key with the old one refused, a watcher sees a working key in the file at every
//! moment, and a host that fails a step keeps its old key — next to a host that rotates.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use agentlab_ops::runbook::security::Rotation;
use agentlab_ops::runbook::{RotateOptions, RotatePayload, rotate_ssh_key};
use agentlab_ops::security::fingerprint;
use agentlab_ops::{Environment, MemoryHost, RunOptions, Verdict};
use common::{Servers, Sshd};

fn keygen(path: &Path) -> String {
    common::ssh_keygen(path, "old")
}

/// Whether a real `ssh` as the test user with only `key` logs in.
fn logs_in(s: &Servers, port: u16, known_hosts: &Path, key: &Path) -> bool {
    common::ssh_logs_in(port, known_hosts, key, &s.user)
}

/// One host with its own sshd, reading `files` (relative to the host's directory), the old
/// key in the first of them.
struct KeyHost {
    dir: tempfile::TempDir,
    sshd: Sshd,
    old: PathBuf,
    known_hosts: PathBuf,
}

impl KeyHost {
    fn start(s: &Servers, files: &[&str], old_in: &[&str]) -> KeyHost {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("keys/old");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        let public = keygen(&old);
        for f in old_in {
            let p = dir.path().join(f);
            std::fs::write(&p, &public).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let paths: Vec<String> = files
            .iter()
            .map(|f| dir.path().join(f).display().to_string())
            .collect();
        let sshd = Sshd::start_with(s, &[], 10, &paths.join(" "));
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, sshd.known_hosts_line(s)).unwrap();
        KeyHost {
            dir,
            sshd,
            old,
            known_hosts,
        }
    }

    fn file(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn host(&self, s: &Servers, name: &str, control: &Path) -> agentlab_ops::host::SshHost {
        let mut o = s.ssh_options(self.sshd.port, control);
        o.identity_file = Some(self.old.clone());
        o.known_hosts = Some(self.known_hosts.clone());
        agentlab_ops::host::SshHost::new(name, o)
    }
}

fn payload(r: &agentlab_ops::Report) -> RotatePayload {
    serde_json::from_value(r.payload.clone()).unwrap()
}

fn keys_in(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| fingerprint(l).ok()).collect()
}

#[tokio::test]
async fn the_rotation_ends_on_the_new_key_with_a_working_key_at_every_moment() {
    let Some(s) = common::servers("rotation") else {
        return;
    };
    let h = KeyHost::start(&s, &["authorized_keys"], &["authorized_keys"]);
    let control = common::control_dir();
    let keys = tempfile::tempdir().unwrap();
    let env = Environment::builder("rotate")
        .host(h.host(&s, "web-1", control.path()))
        .configure(|c| c.journal.disabled = true)
        .build();
    let file = h.file("authorized_keys");
    let old_fp =
        fingerprint(&std::fs::read_to_string(h.old.with_extension("pub")).unwrap()).unwrap();
    // A watcher: at every moment the file sshd reads holds the old key or a key the run made.
    let (stop, seen, empty) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let watcher = {
        let (file, stop, seen, empty) = (file.clone(), stop.clone(), seen.clone(), empty.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if keys_in(&file).is_empty() {
                    empty.fetch_add(1, Ordering::Relaxed);
                }
                seen.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    let o = RotateOptions {
        authorized_keys: file.display().to_string(),
        key_dir: Some(keys.path().display().to_string()),
        ..RotateOptions::default()
    };
    let r = rotate_ssh_key(&env, &o, &RunOptions::default()).await;
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    let host = &p.hosts[0];
    assert_eq!(
        (p.rotated, host.outcome),
        (1, Rotation::Rotated),
        "{host:?}"
    );
    assert_eq!(host.old_fingerprint.as_deref(), Some(old_fp.as_str()));
    assert!(seen.load(Ordering::Relaxed) > 10, "the watcher looked");
    assert_eq!(
        empty.load(Ordering::Relaxed),
        0,
        "the file was never without a key"
    );
    // The new key: here, 0600, an ed25519 key named after the run; it logs in, the old one not.
    let new = PathBuf::from(host.new_identity.clone().unwrap());
    assert!(new.starts_with(keys.path()));
    assert_eq!(
        std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = std::fs::read_to_string(new.with_extension("pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(
        public.contains(&format!("rotate_ssh_key:{}:", r.run_id)),
        "{public}"
    );
    assert_eq!(keys_in(&file), vec![host.new_fingerprint.clone().unwrap()]);
    assert!(logs_in(&s, h.sshd.port, &h.known_hosts, &new));
    assert!(!logs_in(&s, h.sshd.port, &h.known_hosts, &h.old));
    // The file as it was is kept, and the change to make is printed.
    let copy = h.file(&format!("authorized_keys.agentlab-{}", r.run_id));
    assert_eq!(keys_in(&copy), vec![old_fp]);
    assert!(
        host.config_change
            .as_deref()
            .unwrap()
            .contains(&new.display().to_string())
    );
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "identity:web-1",
            "locate_old:web-1",
            "generate:web-1",
            "add:web-1",
            "prove_new:web-1",
            "remove_old:web-1",
            "prove_old_refused:web-1",
            "switch:web-1"
        ]
    );
}

#[tokio::test]
async fn a_host_that_fails_a_step_keeps_its_old_key_and_loses_the_new_one() {
    let Some(s) = common::servers("rotation") else {
        return;
    };
    // good: edits the file sshd reads. unread: the edited file is not the one sshd reads, so
    // the new key is refused. twice: the old key is also in a second file sshd reads, so it
    // still logs in after its removal from the edited one.
    let good = KeyHost::start(&s, &["ak"], &["ak"]);
    let unread = KeyHost::start(&s, &["ak"], &["ak", "edited"]);
    let twice = KeyHost::start(&s, &["ak", "ak2"], &["ak", "ak2"]);
    let control = common::control_dir();
    let keys = tempfile::tempdir().unwrap();
    let env = Environment::builder("rotate")
        .host(good.host(&s, "good", control.path()))
        .host(unread.host(&s, "unread", control.path()))
        .host(twice.host(&s, "twice", control.path()))
        .configure(|c| c.journal.disabled = true)
        .build();
    let mut all = Vec::new();
    for (name, h, f) in [
        ("good", &good, "ak"),
        ("unread", &unread, "edited"),
        ("twice", &twice, "ak"),
    ] {
        let o = RotateOptions {
            hosts: vec![name.into()],
            authorized_keys: h.file(f).display().to_string(),
            key_dir: Some(keys.path().display().to_string()),
        };
        all.push(rotate_ssh_key(&env, &o, &RunOptions::default()).await);
    }
    assert_eq!(all[0].verdict, Verdict::Healthy, "{}", all[0].to_text(true));
    for (r, step, h, f) in [
        (&all[1], "prove_new:unread", &unread, "edited"),
        (&all[2], "prove_old_refused:twice", &twice, "ak"),
    ] {
        assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(true));
        assert_eq!(r.escalations[0].criterion, "rotation_failed");
        let p = payload(r);
        let host = &p.hosts[0];
        assert_eq!(
            (host.outcome, host.failed_step.as_deref(), host.restored),
            (Rotation::KeptOld, Some(step), Some(true)),
            "{host:?}"
        );
        // The old key is back in the edited file and logs in; the new key is gone from the
        // host and from here.
        let old_fp = host.old_fingerprint.clone().unwrap();
        assert_eq!(keys_in(&h.file(f)), vec![old_fp], "{step}");
        assert!(logs_in(&s, h.sshd.port, &h.known_hosts, &h.old), "{step}");
        assert!(
            !Path::new(host.new_identity.as_deref().unwrap()).exists(),
            "{step}: unused key deleted"
        );
        assert!(
            r.checks.iter().any(|c| c.name.starts_with("unkey:")),
            "{}",
            r.to_text(true)
        );
    }
}

#[tokio::test]
async fn dry_run_plans_every_step_and_changes_nothing() {
    let Some(s) = common::servers("rotation") else {
        return;
    };
    let h = KeyHost::start(&s, &["ak"], &["ak"]);
    let control = common::control_dir();
    let keys = tempfile::tempdir().unwrap();
    let env = Environment::builder("rotate")
        .host(h.host(&s, "web-1", control.path()))
        .configure(|c| c.journal.disabled = true)
        .build();
    let before = std::fs::read(h.file("ak")).unwrap();
    let o = RotateOptions {
        authorized_keys: h.file("ak").display().to_string(),
        key_dir: Some(keys.path().display().to_string()),
        ..RotateOptions::default()
    };
    let r = rotate_ssh_key(&env, &o, &RunOptions::default().dry_run(true)).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    assert_eq!(payload(&r).hosts[0].outcome, Rotation::Planned);
    assert_eq!(r.checks.len(), 7, "{}", r.to_text(true));
    assert_eq!(std::fs::read(h.file("ak")).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(keys.path()).unwrap().count(),
        0,
        "no key made"
    );
}

#[tokio::test]
async fn the_memory_double_rotates_with_the_same_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old");
    let public = keygen(&old);
    let good = MemoryHost::new("m1").with_key_login(&old, ".ssh/authorized_keys");
    good.put_file(".ssh/authorized_keys", public.clone());
    // Its "sshd" reads another file than the one edited: the new key is refused.
    let wrong = MemoryHost::new("m2").with_key_login(&old, "other");
    wrong.put_file("other", public.clone());
    wrong.put_file(".ssh/authorized_keys", public.clone());
    let env = Environment::builder("rotate")
        .host(good.clone())
        .host(wrong.clone())
        .configure(|c| c.journal.disabled = true)
        .build();
    let o = RotateOptions {
        key_dir: Some(dir.path().join("new").display().to_string()),
        ..RotateOptions::default()
    };
    let r = rotate_ssh_key(&env, &o, &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!((p.rotated, p.kept_old), (1, 1), "{}", r.to_text(true));
    let new_fp = p.hosts[0].new_fingerprint.clone().unwrap();
    let text = |h: &MemoryHost, f: &str| String::from_utf8(h.file(f).unwrap().to_vec()).unwrap();
    assert_eq!(
        text(&good, ".ssh/authorized_keys")
            .lines()
            .map(|l| fingerprint(l).unwrap())
            .collect::<Vec<_>>(),
        vec![new_fp]
    );
    assert_eq!(
        text(&wrong, ".ssh/authorized_keys"),
        public,
        "m2 is as it was"
    );
    assert_eq!(p.hosts[1].failed_step.as_deref(), Some("prove_new:m2"));
}
