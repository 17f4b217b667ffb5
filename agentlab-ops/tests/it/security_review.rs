//! The access review against fixture trees on the local host (real `find`, real files, keys
//! made by the real `ssh-keygen`), compared with Lynis on the tests both have, and over the
//! real sshd.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use agentlab_ops::config::ExpectedKey;
use agentlab_ops::runbook::security::FindingKind;
use agentlab_ops::runbook::{AccessOptions, AccessPayload, access_review};
use agentlab_ops::security::fingerprint;
use agentlab_ops::{Environment, LocalHost, RunOptions, Verdict};

fn write(root: &Path, rel: &str, body: &str, mode: u32) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A key made by ssh-keygen: (public line, what `ssh-keygen -lf` says: bits, fingerprint).
fn keygen(dir: &Path, name: &str, args: &[&str]) -> (String, u32, String) {
    let f = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&f)
        .status()
        .unwrap();
    assert!(ok.success());
    let public = std::fs::read_to_string(f.with_extension("pub")).unwrap();
    let l = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(f.with_extension("pub"))
        .output()
        .unwrap();
    let l = String::from_utf8(l.stdout).unwrap();
    let mut w = l.split_whitespace();
    let bits = w.next().unwrap().parse().unwrap();
    (
        public.trim().to_string(),
        bits,
        w.next().unwrap().to_string(),
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: String,
    good: String,
    stray: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let keys = r.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (good, _, good_fp) = keygen(&keys, "alice", &["-t", "ed25519"]);
    let (stray, _, stray_fp) = keygen(&keys, "old-contractor", &["-t", "rsa", "-b", "1024"]);
    write(
        r,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nops:x:1000:1000::/home/ops:/bin/bash\nbackup:x:1000:1000::/home/backup:/usr/sbin/nologin\nsshd:x:104:65534::/run/sshd:/usr/sbin/nologin\nthis line is garbage\n",
        0o644,
    );
    write(
        r,
        "/etc/group",
        "root:x:0:\nsudo:x:27:ops,mallory\nops:x:1000:\n",
        0o644,
    );
    write(
        r,
        "/etc/sudoers",
        "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        0o440,
    );
    write(
        r,
        "/etc/sudoers.d/deploy",
        "deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart agent-lab\n",
        0o666,
    );
    std::fs::set_permissions(
        r.join("etc/sudoers.d"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    write(
        r,
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\n",
        0o644,
    );
    write(
        r,
        "/etc/ssh/sshd_config.d/50-cloud.conf",
        "PermitRootLogin yes\n",
        0o644,
    );
    write(
        r,
        "/home/ops/.ssh/authorized_keys",
        &format!("{good}\nno-pty,from=\"10.0.0.0/8\" {stray}\nssh-rsa AAAA-truncated\n"),
        0o664,
    );
    write(r, "/root/.ssh/authorized_keys", &format!("{good}\n"), 0o600);
    write(r, "/app/run.py", "print()\n", 0o644);
    write(r, "/app/data/runs.csv", "a,b\n", 0o666);
    std::os::unix::fs::chown(r.join("app/data"), Some(1000), None).unwrap();
    let mut f = Fixture {
        root: r.to_str().unwrap().to_string(),
        _dir: dir,
        good: good_fp,
        stray: stray_fp,
    };
    f.stray = f.stray.clone();
    f
}

fn env(f: &Fixture, expected: bool) -> Environment {
    let (good, root) = (f.good.clone(), f.root.clone());
    Environment::builder("security")
        .host(LocalHost::new("fx"))
        .configure(move |c| {
            c.access.root = root;
            c.access.app_owner = Some("root".into());
            if expected {
                c.access.expected_sudoers = vec!["ops".into(), "deploy".into()];
                let mut k: ExpectedKey =
                    serde_json::from_value(serde_json::json!({"fingerprint": good})).unwrap();
                k.label = Some("alice".into());
                c.access.expected_keys = vec![k];
            }
        })
        .build()
}

fn kinds(p: &AccessPayload) -> Vec<FindingKind> {
    let mut k: Vec<FindingKind> = p.hosts[0].findings.iter().map(|f| f.kind).collect();
    k.sort();
    k.dedup();
    k
}

#[tokio::test]
async fn a_fixture_host_gives_every_finding_with_its_lynis_id() {
    let f = fixture();
    let r = access_review(
        &env(&f, true),
        &AccessOptions::default(),
        &RunOptions::default(),
    )
    .await;
    let p: AccessPayload = r.payload_as().unwrap();
    let text = r.to_text(false);
    use FindingKind::*;
    let k = kinds(&p);
    for want in [
        Uid0Account,
        DuplicateUid,
        SystemAccountShell,
        SudoersPermissions,
        UnexpectedSudoer,
        UnexpectedKey,
        WeakKey,
        KeyFilePermissions,
        Malformed,
        RootLoginPermitted,
        WorldWritable,
        OwnerMismatch,
    ] {
        assert!(k.contains(&want), "{want:?} missing from {k:?}\n{text}");
    }
    assert!(
        !k.contains(&PasswordLogin),
        "PasswordAuthentication no was read: {k:?}"
    );
    let h = &p.hosts[0];
    let by = |kind| h.findings.iter().filter(move |x| x.kind == kind);
    // toor is a second root; uid 0 and 1000 are both shared.
    assert_eq!(
        by(Uid0Account)
            .map(|x| x.subject.as_str())
            .collect::<Vec<_>>(),
        ["toor"]
    );
    assert_eq!(
        by(Uid0Account).next().unwrap().lynis.as_deref(),
        Some("AUTH-9204")
    );
    assert_eq!(by(DuplicateUid).count(), 2);
    // mallory sudoes through the group and is not expected; ops and deploy are.
    let who: Vec<&str> = by(UnexpectedSudoer).map(|x| x.subject.as_str()).collect();
    assert_eq!(who, ["mallory"], "{text}");
    // Only the stray key of ops is unexpected: the good one is expected for every account.
    let unexpected: Vec<&str> = by(UnexpectedKey).map(|x| x.subject.as_str()).collect();
    assert_eq!(unexpected.len(), 1, "{unexpected:?}");
    assert!(unexpected[0].starts_with("ops:") && unexpected[0].contains(&f.stray));
    // The sudoers file of mode 0666 is flagged, the 0440 one and the 0750 directory are not.
    let sudo: Vec<&str> = by(SudoersPermissions).map(|x| x.subject.as_str()).collect();
    assert_eq!(sudo, ["/etc/sudoers.d/deploy"]);
    let ww: Vec<&str> = by(WorldWritable).map(|x| x.subject.as_str()).collect();
    assert_eq!(ww, ["/app/data/runs.csv"]);
    let owner: Vec<&str> = by(OwnerMismatch).map(|x| x.subject.as_str()).collect();
    assert_eq!(owner, ["/app/data"]);
    // The inventory: every key with type, bits and the fingerprint ssh-keygen printed.
    let files = h.inventory.keys.as_ref().unwrap();
    let ops = files.iter().find(|k| k.user == "ops").unwrap();
    assert_eq!(ops.path, "/home/ops/.ssh/authorized_keys");
    assert_eq!(ops.meta.as_ref().unwrap().mode, 0o664);
    assert_eq!(ops.keys.len(), 2);
    assert_eq!(ops.keys[0].fingerprint, f.good);
    assert_eq!(
        (ops.keys[1].key_type.as_str(), ops.keys[1].bits),
        ("ssh-rsa", 1024)
    );
    assert_eq!(ops.keys[1].options, ["no-pty", "from=\"10.0.0.0/8\""]);
    assert_eq!(ops.malformed.len(), 1);
    assert!(ops.malformed[0].starts_with("3:"), "{:?}", ops.malformed);
    let sshd = h.inventory.sshd.as_ref().unwrap();
    assert_eq!(
        sshd.permit_root_login, "yes",
        "the Include comes first and wins"
    );
    assert!(
        h.inventory.sessions.is_none(),
        "a fixture has no live sessions"
    );
    // Critical findings escalate; nothing was changed.
    assert_eq!(r.verdict, Verdict::Escalate, "{text}");
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "access_unexpected")
    );
}

#[tokio::test]
async fn without_allow_lists_present_is_listed_not_judged() {
    let f = fixture();
    let r = access_review(
        &env(&f, false),
        &AccessOptions::default(),
        &RunOptions::default(),
    )
    .await;
    let p: AccessPayload = r.payload_as().unwrap();
    let k = kinds(&p);
    assert!(k.contains(&FindingKind::NoAllowList), "{k:?}");
    assert!(
        !k.contains(&FindingKind::UnexpectedKey) && !k.contains(&FindingKind::UnexpectedSudoer)
    );
}

#[tokio::test]
async fn key_types_and_sizes_match_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("ed", &["-t", "ed25519"][..]),
        ("rsa2048", &["-t", "rsa", "-b", "2048"]),
        ("rsa3072", &["-t", "rsa", "-b", "3072"]),
        ("ec256", &["-t", "ecdsa", "-b", "256"]),
        ("ec384", &["-t", "ecdsa", "-b", "384"]),
        ("ec521", &["-t", "ecdsa", "-b", "521"]),
    ] {
        let (public, bits, fp) = keygen(dir.path(), name, args);
        assert_eq!(fingerprint(&public).unwrap(), fp, "{name}");
        let (k, bad) = agentlab_ops::security::parse_authorized_keys(&public);
        assert!(bad.is_empty(), "{name}: {bad:?}");
        assert_eq!(k[0].bits, bits, "{name}");
        assert_eq!(k[0].comment, name);
    }
}

#[tokio::test]
async fn an_unreadable_area_is_its_own_failed_step_and_the_others_still_run() {
    let f = fixture();
    std::fs::remove_file(Path::new(&f.root).join("etc/ssh/sshd_config")).unwrap();
    let r = access_review(
        &env(&f, true),
        &AccessOptions::default(),
        &RunOptions::default(),
    )
    .await;
    let step = |n: &str| {
        r.checks
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("no step {n}"))
    };
    assert_eq!(step("sshd:fx").outcome, agentlab_ops::Outcome::Error);
    assert!(
        step("sshd:fx").summary.contains("sshd_config"),
        "{}",
        step("sshd:fx").summary
    );
    assert_eq!(step("keys:fx").outcome, agentlab_ops::Outcome::Pass);
    let p: AccessPayload = r.payload_as().unwrap();
    assert!(
        kinds(&p).contains(&FindingKind::UnexpectedKey),
        "default AuthorizedKeysFile used"
    );
}

/// What Lynis said about a tree mounted over `/etc` in a private mount namespace (the host's
/// own `/etc` is never touched): the warnings' test ids, the sudoers paths AUTH-9252 found
/// unsafe, and whether SSH-7408 suggested changing PermitRootLogin.
struct Lynis {
    warnings: Vec<String>,
    unsafe_sudoers: Vec<String>,
    root_login: bool,
}

fn lynis(etc: &Path) -> Option<Lynis> {
    if Command::new("lynis").arg("--version").output().is_err() {
        if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") {
            eprintln!("SKIPPED lynis comparison: lynis not installed");
            return None;
        }
        panic!("lynis is not installed: ./scripts/test.sh installs it (Debian package lynis)");
    }
    let out = tempfile::tempdir().unwrap();
    let (report, log) = (out.path().join("report.dat"), out.path().join("lynis.log"));
    let script = format!(
        "mount --bind {etc} /etc && lynis audit system --quick --no-colors --tests 'AUTH-9204 AUTH-9208 AUTH-9250 AUTH-9252 SSH-7402 SSH-7404 SSH-7406 SSH-7408' --report-file {r} --log-file {l} >/dev/null 2>&1",
        etc = etc.display(),
        r = report.display(),
        l = log.display()
    );
    let st = Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(st.success(), "lynis in a mount namespace failed");
    let report = std::fs::read_to_string(report).unwrap();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("Performing test ID SSH-7408"),
        "lynis skipped SSH-7408 (no sshd running?)"
    );
    let warnings = report
        .lines()
        .filter_map(|l| l.strip_prefix("warning[]="))
        .filter_map(|l| l.split('|').next().map(str::to_string))
        .collect();
    let re = regex::Regex::new(r"Result: (?:file|directory) (\S+) has possibly unsafe").unwrap();
    let mut unsafe_sudoers: Vec<String> = log
        .lines()
        .filter_map(|l| re.captures(l))
        .map(|c| c[1].to_string())
        .collect();
    unsafe_sudoers.sort();
    unsafe_sudoers.dedup();
    let root_login = report
        .lines()
        .any(|l| l.starts_with("suggestion[]=SSH-7408") && l.contains("PermitRootLogin"));
    Some(Lynis {
        warnings,
        unsafe_sudoers,
        root_login,
    })
}

/// A copy of this machine's `/etc`, made clean or bad on the four overlapping tests.
fn etc_copy(bad: bool) -> tempfile::TempDir {
    // Other tests add accounts meanwhile: a lock file that vanishes mid-copy fails `cp`, so a
    // few attempts, each into a fresh folder.
    let dir = (0..5)
        .find_map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let ok = Command::new("cp")
                .args(["-a", "/etc"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            ok.then_some(dir)
        })
        .expect("cp -a /etc failed 5 times");
    let r = dir.path();
    let _ = std::fs::remove_dir_all(r.join("etc/sudoers.d"));
    write(r, "/etc/sudoers", "root ALL=(ALL:ALL) ALL\n", 0o440);
    write(
        r,
        "/etc/sudoers.d/ops",
        "ops ALL=(ALL) ALL\n",
        if bad { 0o666 } else { 0o440 },
    );
    std::fs::set_permissions(
        r.join("etc/sudoers.d"),
        std::fs::Permissions::from_mode(if bad { 0o755 } else { 0o750 }),
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(r.join("etc/ssh/sshd_config.d"));
    let cfg = std::fs::read_to_string(r.join("etc/ssh/sshd_config")).unwrap_or_default();
    let cfg: String = cfg
        .lines()
        .filter(|l| {
            !l.trim_start()
                .to_ascii_lowercase()
                .starts_with("permitrootlogin")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let root_login = if bad {
        "PermitRootLogin yes\n"
    } else {
        "PermitRootLogin no\n"
    };
    write(
        r,
        "/etc/ssh/sshd_config",
        &format!("{root_login}{cfg}"),
        0o644,
    );
    if bad {
        let mut p = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
        p.push_str("toor:x:0:0::/root:/bin/sh\n");
        write(r, "/etc/passwd", &p, 0o644);
    }
    dir
}

#[tokio::test]
async fn lynis_agrees_on_the_tests_both_have() {
    let _servers = common::servers("lynis_agrees_on_the_tests_both_have"); // sshd must run for SSH-7408
    for bad in [true, false] {
        let tree = etc_copy(bad);
        let Some(l) = lynis(&tree.path().join("etc")) else {
            return;
        };
        let env = Environment::builder("lynis")
            .host(LocalHost::new("fx"))
            .configure(|c| c.access.root = tree.path().to_str().unwrap().to_string())
            .build();
        let r = access_review(&env, &AccessOptions::default(), &RunOptions::default()).await;
        let p: AccessPayload = r.payload_as().unwrap();
        let ours = |k: FindingKind| p.hosts[0].findings.iter().any(|f| f.kind == k);
        let said = |id: &str| l.warnings.iter().any(|w| w == id);
        let ctx = format!(
            "bad={bad} lynis={:?} {:?}\n{}",
            l.warnings,
            l.unsafe_sudoers,
            r.to_text(false)
        );
        assert_eq!(
            ours(FindingKind::Uid0Account),
            said("AUTH-9204"),
            "AUTH-9204 {ctx}"
        );
        assert_eq!(
            ours(FindingKind::DuplicateUid),
            said("AUTH-9208"),
            "AUTH-9208 {ctx}"
        );
        assert_eq!(
            ours(FindingKind::RootLoginPermitted),
            l.root_login,
            "SSH-7408 {ctx}"
        );
        let mut sudo: Vec<String> = p.hosts[0]
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::SudoersPermissions)
            .map(|f| f.subject.clone())
            .collect();
        sudo.sort();
        assert_eq!(sudo, l.unsafe_sudoers, "AUTH-9252 {ctx}");
        assert_eq!(
            said("AUTH-9204"),
            bad,
            "the fixture is what it claims: {ctx}"
        );
    }
}

#[tokio::test]
async fn over_ssh_the_review_reads_what_the_local_host_reads() {
    let Some(s) = common::servers("over_ssh_the_review_reads_what_the_local_host_reads") else {
        return;
    };
    let cd = common::control_dir();
    let env = Environment::builder("ssh-review")
        .host(s.ssh_host("ssh-1", s.ssh_ports[0], cd.path()))
        .host(LocalHost::new("local"))
        .build();
    let r = access_review(&env, &AccessOptions::default(), &RunOptions::default()).await;
    let p: AccessPayload = r.payload_as().unwrap();
    let (ssh, local) = (&p.hosts[0].inventory, &p.hosts[1].inventory);
    let a = ssh
        .accounts
        .as_ref()
        .unwrap_or_else(|| panic!("{}", r.to_text(false)));
    assert!(a.accounts.iter().any(|x| x.name == "root" && x.uid == 0));
    assert_eq!(ssh.accounts, local.accounts);
    assert_eq!(ssh.sudoers, local.sudoers);
    assert_eq!(ssh.sshd, local.sshd);
    assert_eq!(ssh.keys, local.keys);
    assert!(
        ssh.sessions.is_some(),
        "who ran over SSH: {}",
        r.to_text(false)
    );
    let kinds = |i: usize| {
        p.hosts[i]
            .findings
            .iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(0), kinds(1));
}
