//! `backup verify`'s sample always reads something and catches damage in small datasets; a
//! missing object is one completeness finding, not also a corrupt one; the runbook has a
//! deadline and checks datasets together, even against a hung S3 server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentlab_ops::backup::{BackupStore, BackupStoreExt, S3BackupStore, S3Options};
use agentlab_ops::config::{BackupsConfig, Dur, StoreKind};
use agentlab_ops::retry::RetryPolicy;
use agentlab_ops::runbook::{TakeOptions, VerifyOptions, take_backup, verify_backups};
use agentlab_ops::{
    Environment, ErrorKind, FsBackupStore, MemoryBackupStore, MemoryHost, Outcome, Report, Verdict,
};
use bytes::Bytes;
use chrono::NaiveDate;

fn host(sessions: usize) -> MemoryHost {
    let h = MemoryHost::new("web-1");
    for i in 0..sessions {
        h.put_file(
            &format!("/app/data/sessions/session-{i:03}.json"),
            format!(
                "{{\"session_id\": \"s-{i}\", \"pad\": \"{}\"}}",
                "x".repeat(300)
            ),
        );
    }
    h.put_file("/app/data/runs.csv", "run_id,status\nr1,ok\n");
    h
}

fn fresh_dir(base: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = base.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// An environment with the default `[backups]` settings (sample "10%").
fn env(store: Arc<dyn BackupStore>, host: MemoryHost) -> Environment {
    let mut e = Environment::builder("verify").host(host).build();
    e.config.backups = Some(BackupsConfig::new(StoreKind::Memory, None));
    e.backups = Some(store);
    e
}

fn check<'a>(r: &'a Report, name: &str) -> &'a agentlab_ops::report::Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}: {}", r.to_text(false)))
}

/// Objects read, from the integrity summary ("N objects read ...").
fn objects_read(r: &Report) -> u64 {
    let c = check(r, "integrity:sessions");
    c.summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_default_sample_reads_small_datasets_and_catches_a_planted_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    for sessions in [1usize, 5] {
        for day in 0..40 {
            let date = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + chrono::Duration::days(day);
            let stores: Vec<Arc<dyn BackupStore>> = vec![
                Arc::new(MemoryBackupStore::new()),
                Arc::new(
                    FsBackupStore::new(fresh_dir(tmp.path(), &format!("{sessions}-{day}")))
                        .unwrap(),
                ),
            ];
            for store in stores {
                let e = env(store.clone(), host(sessions));
                let r = take_backup(&e, &TakeOptions::default().date(date)).await;
                assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
                // Intact: something was read, and it passes.
                let r = verify_backups(&e, &VerifyOptions::default().date(date)).await;
                assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
                assert!(objects_read(&r) >= 1, "{}", r.to_text(false));
                // A flipped byte in the last session is found, every night.
                let key = format!(
                    "sessions/{}/session-{:03}.json",
                    date.format("%Y%m%d"),
                    sessions - 1
                );
                let mut data = store.get_bytes(&key).await.unwrap().to_vec();
                data[20] ^= 0x01;
                store.put(&key, Bytes::from(data)).await.unwrap();
                let r = verify_backups(&e, &VerifyOptions::default().date(date)).await;
                assert!(
                    r.findings
                        .iter()
                        .any(|f| f.subject == key && f.message.contains("SHA-256")),
                    "{sessions} sessions on {date}: {}",
                    r.to_text(false)
                );
                assert!(
                    r.escalations
                        .iter()
                        .any(|x| x.criterion == "backup_corrupt")
                );
            }
        }
    }
}

#[tokio::test]
async fn a_sample_of_nothing_is_skipped_never_passed() {
    let store: Arc<dyn BackupStore> = Arc::new(MemoryBackupStore::new());
    let e = env(store, host(5));
    let date = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    take_backup(&e, &TakeOptions::default().date(date)).await;
    let r = verify_backups(
        &e,
        &VerifyOptions::default()
            .date(date)
            .sample(agentlab_ops::runbook::Sample::Count(0)),
    )
    .await;
    let c = check(&r, "integrity:sessions");
    assert_eq!(c.outcome, Outcome::Skipped, "{}", r.to_text(false));
    assert!(c.summary.contains("no object read"), "{}", c.summary);
}

#[tokio::test]
async fn a_missing_object_is_one_completeness_finding_not_a_corrupt_one() {
    let tmp = tempfile::tempdir().unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    let key = "sessions/20261128/session-002.json".to_string();
    for (i, sample) in ["all", "10%"].into_iter().enumerate() {
        let mem = MemoryBackupStore::new();
        let root = fresh_dir(tmp.path(), &format!("s{i}"));
        let stores: Vec<(Arc<dyn BackupStore>, bool)> = vec![
            (Arc::new(mem.clone()), true),
            (Arc::new(FsBackupStore::new(&root).unwrap()), false),
        ];
        for (store, in_memory) in stores {
            let e = env(store.clone(), host(5));
            take_backup(&e, &TakeOptions::default().date(date)).await;
            if in_memory {
                mem.remove(&key);
            } else {
                std::fs::remove_file(root.join(&key)).unwrap();
            }
            let r = verify_backups(
                &e,
                &VerifyOptions::default()
                    .date(date)
                    .sample(agentlab_ops::runbook::Sample::parse(sample).unwrap()),
            )
            .await;
            let about: Vec<_> = r.findings.iter().filter(|f| f.subject == key).collect();
            assert_eq!(about.len(), 1, "sample {sample}: {}", r.to_text(false));
            assert!(about[0].message.contains("missing"), "{}", about[0].message);
            let criteria: Vec<_> = r.escalations.iter().map(|x| x.criterion.as_str()).collect();
            assert!(criteria.contains(&"backup_incomplete"), "{criteria:?}");
            assert!(!criteria.contains(&"backup_corrupt"), "{criteria:?}");
        }
    }
}

/// A server that accepts connections and never answers.
async fn hung_server() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (url, task)
}

#[tokio::test]
async fn verify_stops_at_its_deadline_with_a_hung_s3_server() {
    let (url, _server) = hung_server().await;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "k", "s", None, None, "t",
        ))
        .endpoint_url(&url)
        .force_path_style(true)
        .build();
    let mut o = S3Options::new("b");
    o.policy = RetryPolicy {
        attempts: 3,
        attempt_timeout: Duration::from_secs(2),
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let store: Arc<dyn BackupStore> = Arc::new(S3BackupStore::from_client(
        aws_sdk_s3::Client::from_conf(conf),
        o,
    ));
    let mut e = env(store, host(0));
    let b = e.config.backups.as_mut().unwrap();
    b.verify_deadline = Dur(Duration::from_millis(2500));
    let start = Instant::now();
    let r = verify_backups(&e, &VerifyOptions::default()).await;
    let took = start.elapsed();
    // Alone, each dataset would take 3 attempts x 2 s; both together stop at 2.5 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    let err = r.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert!(err.message.contains("deadline of 2.5s"), "{}", err.message);
    let stopped = r
        .findings
        .iter()
        .find(|f| f.message.starts_with("stopped while running"));
    let stopped = stopped.expect("the report names what was not verified");
    assert!(
        stopped.message.contains("presence:sessions"),
        "{}",
        stopped.message
    );
    assert!(
        stopped.message.contains("presence:telemetry"),
        "{}",
        stopped.message
    );
}

/// A stopped S3 server is one readable line naming the endpoint and the real key (with the
/// configured prefix); the SDK's chain is the error's detail.
#[tokio::test]
async fn a_stopped_s3_server_is_one_readable_line_with_the_real_key() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "k", "s", None, None, "t",
        ))
        .endpoint_url(&url)
        .force_path_style(true)
        .build();
    let mut o = S3Options::new("b");
    o.prefix = "nightly/".into();
    o.endpoint_url = Some(url.clone());
    o.policy = RetryPolicy {
        attempts: 2,
        attempt_timeout: Duration::from_secs(2),
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
    };
    let store = S3BackupStore::from_client(aws_sdk_s3::Client::from_conf(conf), o);
    let e = store
        .head("sessions/20261128/MANIFEST.jsonl")
        .await
        .unwrap_err();
    let line = e.to_string();
    assert!(
        line.contains(&format!("S3 at {url}: connection refused")),
        "{line}"
    );
    assert!(
        line.contains("key=nightly/sessions/20261128/MANIFEST.jsonl"),
        "{line}"
    );
    assert!(
        !line.contains("DispatchFailure") && line.len() < 200,
        "{line}"
    );
    assert!(
        e.detail().is_some_and(|d| d.contains("dispatch")),
        "{:?}",
        e.detail()
    );
    // In a report: the check's summary is the same line.
    let store: Arc<dyn BackupStore> = Arc::new(store);
    let r = verify_backups(&env(store, host(0)), &VerifyOptions::default()).await;
    let c = check(&r, "presence:sessions");
    assert!(
        c.summary.contains("connection refused") && c.summary.len() < 250,
        "{}",
        c.summary
    );
    let json = serde_json::to_value(&r).unwrap();
    assert!(
        json.to_string().contains("\"detail\""),
        "the JSON keeps the detail"
    );
}

/// The morning check's backup line counts and sums the same set (the data objects, not the
/// manifest); an incomplete backup's escalation says how many objects are there.
#[tokio::test]
async fn backup_counts_and_bytes_are_of_the_same_objects() {
    let store = MemoryBackupStore::new();
    let shared: Arc<dyn BackupStore> = Arc::new(store.clone());
    let e = env(shared.clone(), host(4));
    let date = chrono::Utc::now().date_naive();
    take_backup(&e, &TakeOptions::default().date(date)).await;
    let day = date.format("%Y%m%d");
    let mut data_bytes = 0;
    for i in 0..4 {
        data_bytes += shared
            .get_bytes(&format!("sessions/{day}/session-{i:03}.json"))
            .await
            .unwrap()
            .len() as u64;
    }
    let r = agentlab_ops::runbook::morning_check(&e, &Default::default()).await;
    let p: agentlab_ops::runbook::MorningPayload = r.payload_as().unwrap();
    let s = p.backups.iter().find(|b| b.dataset == "sessions").unwrap();
    assert_eq!(
        (s.objects, s.bytes),
        (4, data_bytes),
        "{}",
        r.to_text(false)
    );
    // Without its manifest: "4 objects, no manifest", not "2+".
    store.remove(&format!("sessions/{day}/MANIFEST.jsonl"));
    let r = verify_backups(&e, &VerifyOptions::default().date(date)).await;
    let x = r
        .escalations
        .iter()
        .find(|x| x.criterion == "backup_incomplete")
        .unwrap();
    assert_eq!(x.observed, "4 objects, no manifest");
}

/// Datasets are verified together, and the report still lists them one after the other, each
/// dataset's levels in order: the same order on every run.
#[tokio::test]
async fn the_report_order_is_stable_with_concurrent_datasets() {
    let store: Arc<dyn BackupStore> = Arc::new(MemoryBackupStore::new());
    let e = env(store, host(5));
    let date = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    take_backup(&e, &TakeOptions::default().date(date)).await;
    let want: Vec<String> = ["sessions", "telemetry"]
        .iter()
        .flat_map(|d| {
            ["presence", "completeness", "integrity", "trend"].map(|l| format!("{l}:{d}"))
        })
        .collect();
    for _ in 0..20 {
        let r = verify_backups(&e, &VerifyOptions::default().date(date)).await;
        let names: Vec<String> = r.checks.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, want);
    }
}
