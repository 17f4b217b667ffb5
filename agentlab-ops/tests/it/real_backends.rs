//! The conformance suites on the real backends (S3 against the S3-compatible server, SSH against
//! sshd on 127.0.0.1), host-key checking, connection reuse and cleanup, and the morning check
//! end to end on real infrastructure. `scripts/test.sh` starts the servers.

use crate::common;

use std::time::Duration;

use agentlab_ops::backup::{BackupStore, S3BackupStore, S3Options};
use agentlab_ops::config::{BackupsConfig, HostAddress, HostConfig, StoreKind};
use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
use agentlab_ops::testing::{backup_store_conformance, remote_host_conformance};
use agentlab_ops::{
    Cmd, Environment, ErrorKind, Outcome, RemoteHost, RunOptions, Sandbox, Scenario, Verdict,
};
use common::{Sshd, control_dir, processes_mentioning, servers};

#[tokio::test]
async fn s3_backup_store_conformance() {
    let Some(s) = servers("s3_backup_store_conformance") else {
        return;
    };
    let store = s.s3_store("conformance", "").await;
    backup_store_conformance(&store, "").await.unwrap();
    // With a key prefix inside the bucket: keys come back relative to it.
    let store = s.s3_store("conformance-pfx", "agent-lab/").await;
    backup_store_conformance(&store, "run/").await.unwrap();
    let raw = store
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
    assert!(
        raw.contents()
            .iter()
            .all(|o| o.key().unwrap().starts_with("agent-lab/run/"))
    );
}

#[tokio::test]
async fn s3_listing_is_paginated() {
    let Some(s) = servers("s3_listing_is_paginated") else {
        return;
    };
    let store = s.s3_store("paginate", "").await;
    // moto caps a page at 1000 keys: 1100 objects need two pages.
    // Bounded concurrency: 1100 puts at once starve moto on a 2-core machine
    // and time out; 16 in flight is what a real uploader would use.
    use futures::{StreamExt, TryStreamExt};
    futures::stream::iter(0..1100)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .put(
                        &format!("many/{i:05}.json"),
                        bytes::Bytes::from_static(b"{}"),
                    )
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list("many/")
        .map_ok(|m| m.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys.len(), 1100);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn s3_errors_name_bucket_and_key() {
    let Some(s) = servers("s3_errors_name_bucket_and_key") else {
        return;
    };
    let mut o = S3Options::new("agentlab-no-such-bucket");
    o.endpoint_url = Some(s.s3.clone());
    o.force_path_style = true;
    o.region = Some("us-east-1".into());
    let store = S3BackupStore::connect(o).await.unwrap();
    let e = store.head("sessions/x.json").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let m = e.to_string();
    assert!(
        m.contains("bucket=agentlab-no-such-bucket") && m.contains("key=sessions/x.json"),
        "{m}"
    );
    // Nothing listening: a temporary error, retried, then reported with the attempts.
    let mut o = S3Options::new("agentlab-bucket");
    o.endpoint_url = Some(format!("http://127.0.0.1:{}", common::free_port()));
    o.force_path_style = true;
    o.region = Some("us-east-1".into());
    o.policy = agentlab_ops::retry::RetryPolicy {
        attempts: 2,
        attempt_timeout: Duration::from_secs(2),
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let e = S3BackupStore::connect(o)
        .await
        .unwrap()
        .head("k")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("attempts=2"), "{e}");
}

#[tokio::test]
async fn ssh_host_conformance_and_clean_close() {
    let Some(s) = servers("ssh_host_conformance_and_clean_close") else {
        return;
    };
    let cd = control_dir();
    let host = s.ssh_host("ssh-1", s.ssh_ports[0], cd.path());
    remote_host_conformance(&host).await.unwrap();
    // One multiplexed connection, reused.
    let sock = host.control_socket().await.expect("connected");
    for _ in 0..5 {
        host.run(&Cmd::new("true")).await.unwrap();
        assert_eq!(host.control_socket().await.as_ref(), Some(&sock));
    }
    let needle = cd.path().display().to_string();
    assert_eq!(processes_mentioning(&needle).len(), 1, "exactly one master");
    let pid = host.master_pid().await.expect("master pid");
    host.close().await.unwrap();
    host.close().await.unwrap(); // idempotent
    common::wait_gone(pid).await;
    assert!(processes_mentioning(&needle).is_empty());
    // A host dropped without close() ends its master too.
    let host = s.ssh_host("ssh-dropped", s.ssh_ports[0], cd.path());
    host.run(&Cmd::new("true")).await.unwrap();
    let pid = host.master_pid().await.expect("master pid");
    drop(host);
    common::wait_gone(pid).await;
}

#[tokio::test]
async fn ssh_arguments_reach_the_remote_verbatim() {
    let Some(s) = servers("ssh_arguments_reach_the_remote_verbatim") else {
        return;
    };
    let cd = control_dir();
    let host = s.ssh_host("ssh-args", s.ssh_ports[1], cd.path());
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("x");
    std::fs::write(&marker, "keep").unwrap();
    let nasty = [
        format!("; rm -rf {}", marker.display()),
        "'single' \"double\"".into(),
        "$(id)".into(),
        "`id`".into(),
        "a  b".into(),
        "new\nline".into(),
    ];
    let out = host
        .run(&Cmd::new("printf").arg("[%s]").args(nasty.iter().cloned()))
        .await
        .unwrap();
    let want: String = nasty.iter().map(|a| format!("[{a}]")).collect();
    assert_eq!(out.stdout, want);
    assert!(marker.exists(), "an argument was executed");
    host.close().await.unwrap();
}

/// A remote command past its timeout is ended on the host with what it started (its process
/// group), and the error says so.
#[tokio::test]
async fn ssh_timed_out_command_is_ended_on_the_host() {
    let Some(s) = servers("ssh_timed_out_command_is_ended_on_the_host") else {
        return;
    };
    let cd = control_dir();
    let host = s.ssh_host("ssh-timeout", s.ssh_ports[0], cd.path());
    // A unique duration names the processes: the shell and the sleep it started.
    let tag = format!(
        "{}.{}",
        40 + std::process::id() % 50,
        std::process::id() % 997
    );
    let script = format!("sleep {tag}; echo done");
    let err = host
        .run(
            &Cmd::new("sh")
                .args(["-c", script.as_str()])
                .timeout(Duration::from_millis(800)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), agentlab_ops::ErrorKind::Timeout);
    assert!(
        err.to_string()
            .contains("it was stopped on the host (process group"),
        "{err}"
    );
    let mut left = processes_mentioning(&format!("sleep {tag}"));
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = processes_mentioning(&format!("sleep {tag}"));
    }
    assert!(left.is_empty(), "still running on the host: {left:?}");
    // The host still works afterwards.
    let out = host.run(&Cmd::new("echo").arg("ok")).await.unwrap();
    assert_eq!(out.stdout.trim(), "ok");
    host.close().await.unwrap();
}

#[tokio::test]
async fn ssh_reads_files_byte_for_byte() {
    let Some(s) = servers("ssh_reads_files_byte_for_byte") else {
        return;
    };
    let cd = control_dir();
    let host = s.ssh_host("ssh-files", s.ssh_ports[0], cd.path());
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(dir.path().join("bin.dat"), &data).unwrap();
    std::fs::write(dir.path().join("a.json"), "{}").unwrap();
    let p = dir.path().join("bin.dat").display().to_string();
    assert_eq!(host.read_file(&p).await.unwrap().to_vec(), data);
    let d = dir.path().display().to_string();
    assert_eq!(
        host.list_files(&d, "*.json").await.unwrap(),
        vec![format!("{d}/a.json")]
    );
    assert!(
        host.list_files(&format!("{d}/nope"), "*")
            .await
            .unwrap()
            .is_empty()
    );
    host.close().await.unwrap();
}

#[tokio::test]
async fn ssh_wrong_or_unknown_host_key_is_refused() {
    let Some(s) = servers("ssh_wrong_or_unknown_host_key_is_refused") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Known hosts listing another key for the same host and port.
    let other = dir.path().join("other");
    assert!(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let port = s.ssh_ports[0];
    let mut parts = pubkey.split_whitespace();
    let wrong = dir.path().join("known_hosts_wrong");
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{port} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let empty = dir.path().join("known_hosts_empty");
    std::fs::write(&empty, "").unwrap();
    for kh in [wrong, empty] {
        let cd = control_dir();
        let mut o = s.ssh_options(port, cd.path());
        o.known_hosts = Some(kh.clone());
        let host = agentlab_ops::host::SshHost::new("web-strict", o);
        let e = host.run(&Cmd::new("true")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
        let m = e.to_string();
        let target = format!("ssh://{}@127.0.0.1:{port}", s.user);
        let want = if kh.ends_with("known_hosts_empty") {
            format!("host key for web-strict ({target}) is not in known_hosts (strict checking)")
        } else {
            format!(
                "host key for web-strict ({target}) changed (known_hosts line 1): refusing to connect"
            )
        };
        assert!(m.contains(&want), "{m}");
        assert!(m.contains("host=web-strict"), "{m}");
        // One readable line; OpenSSH's banner is the detail (JSON, -v), not the message.
        assert!(
            !m.contains('\n') && !m.contains("@@@") && m.len() < 260,
            "{m}"
        );
        assert!(
            e.detail().is_some_and(|d| d.contains("ost key")),
            "{:?}",
            e.detail()
        );
        // The file was not changed behind our back (strict means strict).
        assert_eq!(
            std::fs::read_to_string(&kh).unwrap().lines().count(),
            if kh.ends_with("known_hosts_empty") {
                0
            } else {
                1
            }
        );
    }
}

#[tokio::test]
async fn ssh_concurrency_stays_under_max_sessions() {
    let Some(s) = servers("ssh_concurrency_stays_under_max_sessions") else {
        return;
    };
    // A host whose sshd allows 10 sessions per connection: 30 concurrent commands all succeed
    // because the host queues them 10 at a time.
    let sshd = Sshd::start(&s, &[], 10);
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line(&s)).unwrap();
    let cd = control_dir();
    let mut o = s.ssh_options(sshd.port, cd.path());
    o.known_hosts = Some(kh);
    o.max_concurrent = 10;
    let host = agentlab_ops::host::SshHost::new("web-limited", o);
    let outs = futures::future::join_all((0..30).map(|i| {
        let host = &host;
        async move {
            host.run(&Cmd::new("sh").args(["-c", &format!("sleep 0.1; echo {i}")]))
                .await
        }
    }))
    .await;
    for (i, o) in outs.into_iter().enumerate() {
        assert_eq!(o.unwrap().stdout, format!("{i}\n"));
    }
    host.close().await.unwrap();
}

/// The morning check on real infrastructure: the sandbox's HTTP service, backups in S3, two
/// hosts over SSH. Then one sshd dies in the middle of a run.
#[tokio::test]
async fn morning_check_on_real_backends_and_a_host_dying_mid_run() {
    let Some(s) = servers("morning_check_on_real_backends") else {
        return;
    };
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    // Today's backups, copied from the sandbox tree into a bucket.
    let store = s.s3_store("e2e", "").await;
    let fs = agentlab_ops::FsBackupStore::new(
        sb.config().backups.as_ref().unwrap().path.clone().unwrap(),
    )
    .unwrap();
    let day = chrono::Utc::now().date_naive().format("%Y%m%d").to_string();
    use agentlab_ops::BackupStoreExt;
    use futures::TryStreamExt;
    let objs: Vec<_> = fs.list("").try_collect().await.unwrap();
    for m in objs.iter().filter(|m| m.key.contains(&day)) {
        store
            .put(&m.key, fs.get_bytes(&m.key).await.unwrap())
            .await
            .unwrap();
    }
    // Two hosts, each its own sshd, running the sandbox's uptime/free/df; web-2 is slow.
    let env_of = |h: usize| sb.config().hosts[h].env.clone();
    let (e1, e2) = (env_of(0), env_of(1));
    let sshd1 = Sshd::start(
        &s,
        &[
            ("PATH", &e1["PATH"]),
            ("AGENTLAB_SANDBOX_HOST", &e1["AGENTLAB_SANDBOX_HOST"]),
        ],
        10,
    );
    let mut sshd2 = Sshd::start(
        &s,
        &[
            ("PATH", &e2["PATH"]),
            ("AGENTLAB_SANDBOX_HOST", &e2["AGENTLAB_SANDBOX_HOST"]),
            ("AGENTLAB_SANDBOX_DELAY", "1.5"),
        ],
        10,
    );
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "{}{}",
            sshd1.known_hosts_line(&s),
            sshd2.known_hosts_line(&s)
        ),
    )
    .unwrap();
    let cd = control_dir();

    let mut cfg = sb.config().clone();
    let mut b = BackupsConfig::new(StoreKind::S3, None);
    b.bucket = Some(store.bucket().to_string());
    b.endpoint_url = Some(s.s3.clone());
    b.force_path_style = true;
    b.region = Some("us-east-1".into());
    cfg.backups = Some(b);
    cfg.ssh.identity_file = Some(s.key());
    cfg.ssh.known_hosts = Some(kh);
    cfg.ssh.config_file = Some("/dev/null".into());
    cfg.ssh.control_dir = Some(cd.path().to_path_buf());
    cfg.hosts = [("web-1", sshd1.port), ("web-2", sshd2.port)]
        .into_iter()
        .map(|(n, p)| {
            HostConfig::new(
                n,
                HostAddress::parse(&format!("ssh://{}@127.0.0.1:{p}", s.user)).unwrap(),
            )
        })
        .collect();
    let env = Environment::from_config(cfg).await.unwrap();
    let opts = MorningOptions::default().run(RunOptions::default().without_journal());

    let r = morning_check(&env, &opts).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: MorningPayload = r.payload_as().unwrap();
    for h in &p.hosts {
        let u = h
            .usage
            .as_ref()
            .unwrap_or_else(|| panic!("{}: {:?}", h.host, h.error));
        assert_eq!(u.memory.total, 8 * 1024 * 1024 * 1024);
        assert!(u.disks.iter().any(|d| d.mount == "/app"));
    }
    let counts: Vec<(String, u64)> = p
        .backups
        .iter()
        .map(|b| (b.dataset.clone(), b.objects))
        .collect();
    assert_eq!(
        counts,
        vec![("sessions".to_string(), 5), ("telemetry".to_string(), 1)]
    );
    assert!(r.check("backups").unwrap().summary.starts_with("s3://"));

    // web-2's sshd dies while its commands are running.
    let run = tokio::spawn({
        let env = env.clone();
        let opts = opts.clone();
        async move { morning_check(&env, &opts).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    sshd2.kill();
    let r = run.await.unwrap();
    let web2 = r.check("resources:web-2").unwrap();
    assert_eq!(web2.outcome, Outcome::Error, "{}", web2.summary);
    eprintln!("web-2 after its sshd died: {}", web2.summary);
    assert!(web2.summary.contains("web-2"), "{}", web2.summary);
    assert!(
        web2.summary.contains("connection") || web2.summary.contains("refused"),
        "{}",
        web2.summary
    );
    for name in [
        "health",
        "health_detailed",
        "slo",
        "backups",
        "resources:web-1",
    ] {
        assert_eq!(r.check(name).unwrap().outcome, Outcome::Pass, "{name}");
    }
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "host_unreachable" && e.subject == "web-2")
    );
    assert_eq!(r.verdict.exit_code(), 1);

    env.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = processes_mentioning(&cd.path().display().to_string());
    assert!(left.is_empty(), "ssh masters left: {left:?}");
    assert!(
        common::stray_masters().is_empty(),
        "{:?}",
        common::stray_masters()
    );
}

/// A host lost in the middle of a file transfer (as during `backup take`) is one message for
/// one cause: `connection to ssh://... lost`, not the crate's "remote process has terminated".
#[tokio::test]
async fn ssh_host_lost_mid_transfer_says_connection_lost() {
    let Some(s) = servers("ssh_host_lost_mid_transfer_says_connection_lost") else {
        return;
    };
    let mut sshd = Sshd::start(&s, &[], 10);
    let cd = control_dir();
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sshd.known_hosts_line(&s)).unwrap();
    let mut o = s.ssh_options(sshd.port, cd.path());
    o.known_hosts = Some(kh);
    let host = std::sync::Arc::new(agentlab_ops::host::SshHost::new("web-lost", o));
    host.run(&Cmd::new("true")).await.unwrap();
    let big = dir.path().join("big");
    let target = big.display().to_string();
    let data = bytes::Bytes::from(vec![b'x'; 400 << 20]);
    let h = host.clone();
    let write = tokio::spawn(async move { h.write_file(&target, data).await });
    // Kill sshd once bytes are arriving on the host.
    for _ in 0..500 {
        if std::fs::metadata(&big).is_ok_and(|m| m.len() > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sshd.kill();
    let e = write.await.unwrap().expect_err("the write must fail");
    let m = e.to_string();
    assert!(
        m.contains(&format!(
            "connection to ssh://{}@127.0.0.1:{} lost",
            s.user, sshd.port
        )),
        "{m}"
    );
    assert!(!m.contains("remote process has terminated"), "{m}");
    host.close().await.unwrap();
}
