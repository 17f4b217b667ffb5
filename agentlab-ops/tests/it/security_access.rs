//! `grant_access` and `revoke_access` on two real sshds that read each account's own
//! `~/.ssh/authorized_keys`: after the grant a real `ssh` as the new account logs in to both
//! (proven from outside the tool), the account is in the sudo group, and the access review
//! judges its key expected once it is in the allow-list; after the revoke the same login is
//! refused and the account is locked. A grant that fails a step leaves no account behind.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use agentlab_ops::runbook::{
    AccessChangePayload, AccessOptions, GrantOptions, RevokeOptions, access_review, grant_access,
    revoke_access,
};
use agentlab_ops::security::fingerprint;
use agentlab_ops::{Environment, RunOptions, Verdict};
use common::{Servers, Sshd};

/// An account made by the test, deleted (with its home) whatever happens.
struct Account(String);

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.0])
            .status();
        let _ = Command::new("userdel").args(["--remove", &self.0]).output();
    }
}

fn new_account() -> Account {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    Account(format!("agt{}{n:x}", std::process::id() % 1000))
}

fn is_root(s: &Servers) -> bool {
    s.user == "root"
}

struct Fleet {
    sshds: Vec<Sshd>,
    known_hosts: tempfile::NamedTempFile,
    _control: tempfile::TempDir,
    env: Environment,
}

/// `n` sshds reading the runner's keys and every account's own file.
fn fleet(s: &Servers, n: usize, configure: impl FnOnce(&mut agentlab_ops::Config)) -> Fleet {
    let files = format!(
        "{} %h/.ssh/authorized_keys",
        s.ssh_dir.join("authorized_keys").display()
    );
    let sshds: Vec<Sshd> = (0..n)
        .map(|_| Sshd::start_with(s, &[], 10, &files))
        .collect();
    let known_hosts = tempfile::NamedTempFile::new().unwrap();
    let lines: Vec<String> = sshds.iter().map(|d| d.known_hosts_line(s)).collect();
    std::fs::write(known_hosts.path(), lines.join("\n")).unwrap();
    let control = common::control_dir();
    let mut b = Environment::builder("access");
    for (i, d) in sshds.iter().enumerate() {
        let mut o = s.ssh_options(d.port, control.path());
        o.known_hosts = Some(known_hosts.path().to_path_buf());
        b = b.host(agentlab_ops::host::SshHost::new(
            format!("web-{}", i + 1),
            o,
        ));
    }
    let env = b
        .configure(|c| {
            c.journal.disabled = true;
            // Every "host" is this machine, with one /etc/passwd: one at a time.
            c.fleet.concurrency = 1;
            configure(c);
        })
        .build();
    Fleet {
        sshds,
        known_hosts,
        _control: control,
        env,
    }
}

fn payload(r: &agentlab_ops::Report) -> AccessChangePayload {
    serde_json::from_value(r.payload.clone()).unwrap_or_else(|e| panic!("{e}: {}", r.to_text(true)))
}

fn members(group: &str) -> Vec<String> {
    let out = Command::new("getent")
        .args(["group", group])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    line.rsplit(':')
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn granted_logs_in_everywhere_and_revoked_is_refused_everywhere() {
    let Some(s) = common::servers("access") else {
        return;
    };
    if !is_root(&s) {
        eprintln!("skipped: creating accounts needs root");
        return;
    }
    let acct = new_account();
    let user = acct.0.clone();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let public = common::ssh_keygen(&key, "new-hire");
    let fp = fingerprint(&public).unwrap();
    let f = fleet(&s, 2, |_| {});
    let ports: Vec<u16> = f.sshds.iter().map(|d| d.port).collect();
    assert!(
        ports
            .iter()
            .all(|p| !common::ssh_logs_in(*p, f.known_hosts.path(), &key, &user)),
        "no access before"
    );
    let o = GrantOptions {
        user: user.clone(),
        key: key.with_extension("pub").display().to_string(),
        sudo: true,
        identity: Some(key.display().to_string()),
        label: Some("New Hire, SRE".into()),
        ..GrantOptions::default()
    };
    let r = grant_access(&f.env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    assert_eq!(p.fingerprint.as_deref(), Some(fp.as_str()));
    assert!(
        p.hosts.iter().all(|h| h.ok && h.login_proven == Some(true)),
        "{:?}",
        p.hosts
    );
    // Both "hosts" are this machine: the second finds the account the first made.
    assert_eq!(
        p.hosts.iter().filter(|h| h.created).count(),
        1,
        "{:?}",
        p.hosts
    );
    for port in &ports {
        assert!(
            common::ssh_logs_in(*port, f.known_hosts.path(), &key, &user),
            "a real login on {port}"
        );
    }
    let home = format!("/home/{user}");
    let file = Path::new(&home).join(".ssh/authorized_keys");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let uid = String::from_utf8(
        Command::new("id")
            .args(["-u", &user])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        meta.uid().to_string(),
        uid.trim(),
        "the file is the account's own"
    );
    assert!(members("sudo").contains(&user), "{:?}", members("sudo"));
    review_judges_the_account(&s, &user, &fp).await;
    revoke_is_refused_everywhere(&f, &ports, &key, &user, &public).await;
}

/// The next access review: unexpected until the allow-list names the key and the sudoer.
async fn review_judges_the_account(s: &Servers, user: &str, fp: &str) {
    let user = user.to_string();
    // The allow-list before: only the runner's key and root; after: the new account too.
    let runner = std::fs::read_to_string(s.key().with_extension("pub")).unwrap();
    let runner_fp = fingerprint(&runner).unwrap();
    let review = |expected: bool| {
        let mut keys = vec![serde_json::json!({ "fingerprint": runner_fp })];
        let mut sudoers = vec!["root".to_string()];
        if expected {
            keys.push(serde_json::json!({ "fingerprint": fp, "user": user }));
            sudoers.push(user.clone());
        }
        let env = Environment::builder("review")
            .host(agentlab_ops::LocalHost::new("web-1"))
            .configure(|c| {
                c.journal.disabled = true;
                c.access.expected_keys = serde_json::from_value(keys.into()).unwrap();
                c.access.expected_sudoers = sudoers;
            })
            .build();
        async move { access_review(&env, &AccessOptions::default(), &RunOptions::default()).await }
    };
    let about_user = |r: &agentlab_ops::Report| -> Vec<String> {
        let host = &r.payload["hosts"][0];
        host["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f.to_string().contains(&user))
            .map(|f| f["kind"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let before = about_user(&review(false).await);
    assert!(before.iter().any(|k| k == "unexpected_key"), "{before:?}");
    assert!(
        before.iter().any(|k| k == "unexpected_sudoer"),
        "{before:?}"
    );
    let after = about_user(&review(true).await);
    assert!(
        !after.iter().any(|k| k.starts_with("unexpected")),
        "{after:?}"
    );
}

/// Revoke: refused everywhere, locked, sudo gone, the old file kept.
async fn revoke_is_refused_everywhere(
    f: &Fleet,
    ports: &[u16],
    key: &Path,
    user: &str,
    public: &str,
) {
    let user = user.to_string();
    let home = format!("/home/{user}");
    let o = RevokeOptions {
        user: user.clone(),
        identity: Some(key.display().to_string()),
        ..RevokeOptions::default()
    };
    let r = revoke_access(&f.env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    assert!(
        p.hosts.iter().all(|h| h.ok && h.login_proven == Some(true)),
        "{:?}",
        p.hosts
    );
    for port in ports {
        assert!(
            !common::ssh_logs_in(*port, f.known_hosts.path(), key, &user),
            "refused on {port} after the revoke"
        );
    }
    assert!(!members("sudo").contains(&user));
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let entry = shadow
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .unwrap();
    assert!(
        entry.split(':').nth(1).unwrap().starts_with('!'),
        "locked: {entry}"
    );
    let kept = std::fs::read_dir(Path::new(&home).join(".ssh"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("authorized_keys.agentlab-")
        })
        .expect("a copy of the keys kept");
    assert!(
        std::fs::read_to_string(kept.path())
            .unwrap()
            .contains(public.split_whitespace().nth(1).unwrap())
    );
}

#[tokio::test]
async fn a_grant_that_fails_a_step_leaves_no_account_and_no_key() {
    let Some(s) = common::servers("access-fail") else {
        return;
    };
    if !is_root(&s) {
        eprintln!("skipped: creating accounts needs root");
        return;
    }
    let acct = new_account();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    common::ssh_keygen(&key, "new-hire");
    // The sudo step fails: no such group.
    let f = fleet(&s, 1, |c| {
        c.access.sudo_groups = vec!["no-such-group-x".into()]
    });
    let o = GrantOptions {
        user: acct.0.clone(),
        key: key.with_extension("pub").display().to_string(),
        sudo: true,
        ..GrantOptions::default()
    };
    let r = grant_access(&f.env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(true));
    let p = payload(&r);
    let h = &p.hosts[0];
    assert!(!h.ok && h.created && h.restored == Some(true), "{h:?}");
    assert!(h.failures[0].contains("no-such-group-x"), "{h:?}");
    assert_eq!(r.escalations[0].criterion, "grant_failed");
    let out = Command::new("getent")
        .args(["passwd", &acct.0])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "the account was removed again");
    assert!(
        !Path::new(&format!("/home/{}", acct.0)).exists(),
        "its home too"
    );
    // Bad input is a clear error before anything runs.
    let bad = GrantOptions {
        user: "Root;rm".into(),
        key: "x".into(),
        ..GrantOptions::default()
    };
    let r = grant_access(&f.env, &bad, &RunOptions::default()).await;
    let m = r.error.map(|e| e.message).unwrap_or_default();
    assert!(m.contains("not an account name"), "{m}");
}
