//! Backup take + verify on the memory, filesystem and S3 stores: each kind of damage is found
//! with the key named, and nothing is reported on an intact backup.

use crate::common;

use std::sync::Arc;

use agentlab_ops::backup::manifest::manifest_key;
use agentlab_ops::backup::{BackupStore, BackupStoreExt};
use agentlab_ops::runbook::{
    Sample, TakeOptions, VerifyOptions, VerifyPayload, take_backup, verify_backups,
};
use agentlab_ops::{
    Environment, FsBackupStore, MemoryBackupStore, MemoryHost, Outcome, Report, RunOptions, Verdict,
};
use bytes::Bytes;
use chrono::NaiveDate;

type Remove = Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn host(sessions: usize) -> MemoryHost {
    let h = MemoryHost::new("web-1");
    for i in 0..sessions {
        let body = serde_json::json!({"session_id": format!("s-{i}"), "messages": [{"role": "user", "content": "x".repeat(1800)}]});
        h.put_file(
            &format!("/app/data/sessions/session-{i:03}.json"),
            body.to_string(),
        );
    }
    h.put_file("/app/data/sessions/notes.txt", "not a session");
    let mut csv = String::from("run_id,agent,status,duration_ms\n");
    for i in 0..50 {
        csv.push_str(&format!("r{i},researcher,\"ok, done\",{}\n", 900 + i));
    }
    h.put_file("/app/data/runs.csv", csv);
    h
}

fn env(store: Arc<dyn BackupStore>, host: MemoryHost) -> Environment {
    let mut e = Environment::builder("backups").host(host).build();
    let mut b =
        agentlab_ops::config::BackupsConfig::new(agentlab_ops::config::StoreKind::Memory, None);
    b.sample = "all".into();
    e.config.backups = Some(b);
    e.backups = Some(store);
    e
}

async fn take(store: &Arc<dyn BackupStore>, sessions: usize, date: NaiveDate) {
    let e = env(store.clone(), host(sessions));
    let r = take_backup(&e, &TakeOptions::default().date(date)).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
}

/// Eight nightly backups: the previous seven with 10 sessions, today with `today_sessions`.
async fn week(store: &Arc<dyn BackupStore>, today_sessions: usize) {
    for back in (1..=7).rev() {
        take(store, 10, today() - chrono::Duration::days(back)).await;
    }
    take(store, today_sessions, today()).await;
}

async fn verify(store: &Arc<dyn BackupStore>) -> Report {
    let e = env(store.clone(), host(0));
    verify_backups(
        &e,
        &VerifyOptions::default()
            .date(today())
            .sample(Sample::All)
            .run(RunOptions::default()),
    )
    .await
}

fn keys_named(r: &Report) -> Vec<String> {
    r.findings.iter().map(|f| f.subject.clone()).collect()
}

async fn scenarios<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (Arc<dyn BackupStore>, Remove)>,
{
    let s1 = "sessions/20261129/session-001.json".to_string();

    // Intact: every level passes, nothing reported.
    let (store, _) = make().await;
    week(&store, 10).await;
    let r = verify(&store).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let p: VerifyPayload = r.payload_as().unwrap();
    assert_eq!(p.datasets.len(), 2);
    for d in &p.datasets {
        let levels: Vec<_> = d
            .levels
            .iter()
            .map(|l| (l.level.as_str(), l.outcome))
            .collect();
        assert_eq!(
            levels,
            vec![
                ("presence", Outcome::Pass),
                ("completeness", Outcome::Pass),
                ("integrity", Outcome::Pass),
                ("trend", Outcome::Pass)
            ],
            "{}",
            d.dataset
        );
    }
    assert_eq!(p.datasets[0].objects, 10, "notes.txt is not a session");

    // A flipped byte.
    let (store, _) = make().await;
    week(&store, 10).await;
    let mut data = store.get_bytes(&s1).await.unwrap().to_vec();
    data[40] ^= 0x01;
    store.put(&s1, Bytes::from(data)).await.unwrap();
    let r = verify(&store).await;
    assert_eq!(keys_named(&r), vec![s1.clone()], "{:?}", r.findings);
    assert!(r.findings[0].message.contains("SHA-256 mismatch"));
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "backup_corrupt")
    );

    // A truncated JSON.
    let (store, _) = make().await;
    week(&store, 10).await;
    let data = store.get_bytes(&s1).await.unwrap();
    store.put(&s1, data.slice(..data.len() / 2)).await.unwrap();
    let r = verify(&store).await;
    assert!(
        keys_named(&r).iter().all(|k| k == &s1) && !r.findings.is_empty(),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("truncated") || f.message.contains("manifest says"))
    );

    // A missing object.
    let (store, remove) = make().await;
    week(&store, 10).await;
    remove(s1.clone()).await;
    let r = verify(&store).await;
    assert!(keys_named(&r).contains(&s1), "{:?}", r.findings);
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == s1 && f.message.starts_with("missing"))
    );
    assert!(keys_named(&r).iter().all(|k| k == &s1), "{:?}", r.findings);

    // A missing manifest.
    let (store, remove) = make().await;
    week(&store, 10).await;
    let m = manifest_key("telemetry", today());
    remove(m.clone()).await;
    let r = verify(&store).await;
    assert_eq!(keys_named(&r), vec![m], "{:?}", r.findings);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "backup_incomplete" && e.subject == "telemetry")
    );

    // An object the manifest does not list.
    let (store, _) = make().await;
    week(&store, 10).await;
    let extra = "sessions/20261129/zz-extra.json".to_string();
    store.put(&extra, Bytes::from_static(b"{}")).await.unwrap();
    let r = verify(&store).await;
    assert_eq!(keys_named(&r), vec![extra.clone()], "{:?}", r.findings);
    assert!(r.findings[0].message.starts_with("unexpected"));
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "backup_incomplete")
    );

    // A 60% size drop: 4 sessions tonight instead of 10.
    let (store, _) = make().await;
    week(&store, 4).await;
    let r = verify(&store).await;
    assert_eq!(keys_named(&r).len(), 2, "{:?}", r.findings); // size and count
    assert!(r.findings.iter().all(|f| f.subject == "sessions/20261129/"));
    assert!(
        r.findings[0].message.contains("60% below the 7-day median"),
        "{:?}",
        r.findings
    );
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "backup_size_trend")
    );
    assert_eq!(r.verdict.exit_code(), 1);
}

#[tokio::test]
async fn memory_store() {
    scenarios(|| async {
        let s = MemoryBackupStore::new();
        let s2 = s.clone();
        let remove: Remove = Arc::new(move |k| {
            let s = s2.clone();
            Box::pin(async move {
                s.remove(&k);
            })
        });
        (Arc::new(s) as Arc<dyn BackupStore>, remove)
    })
    .await;
}

#[tokio::test]
async fn fs_store() {
    let root = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    scenarios(|| {
        let dir = root.path().join(
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .to_string(),
        );
        async move {
            std::fs::create_dir_all(&dir).unwrap();
            let d2 = dir.clone();
            let remove: Remove = Arc::new(move |k| {
                let p = d2.join(k);
                Box::pin(async move {
                    std::fs::remove_file(p).unwrap();
                })
            });
            (
                Arc::new(FsBackupStore::new(&dir).unwrap()) as Arc<dyn BackupStore>,
                remove,
            )
        }
    })
    .await;
}

#[tokio::test]
async fn s3_store() {
    let Some(s) = common::servers("backups::s3_store") else {
        return;
    };
    scenarios(|| async {
        let store = s.s3_store("verify", "").await;
        let client = store.client().clone();
        let bucket = store.bucket().to_string();
        let remove: Remove = Arc::new(move |k| {
            let (client, bucket) = (client.clone(), bucket.clone());
            Box::pin(async move {
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(k)
                    .send()
                    .await
                    .unwrap();
            })
        });
        (Arc::new(store) as Arc<dyn BackupStore>, remove)
    })
    .await;
}

#[tokio::test]
async fn dry_run_take_writes_nothing() {
    let store = MemoryBackupStore::new();
    let e = env(Arc::new(store.clone()), host(3));
    let r = take_backup(
        &e,
        &TakeOptions::default()
            .date(today())
            .run(RunOptions::default().dry_run(true)),
    )
    .await;
    assert!(store.is_empty());
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "backup:sessions" && c.outcome == Outcome::Planned)
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "list:sessions" && c.summary.starts_with("3 files"))
    );
}

#[tokio::test]
async fn samples_are_reproducible() {
    let store: Arc<dyn BackupStore> = Arc::new(MemoryBackupStore::new());
    week(&store, 10).await;
    let e = env(store.clone(), host(0));
    let run = |seed| {
        let e = &e;
        async move {
            let o = VerifyOptions::default()
                .date(today())
                .sample(Sample::Count(3))
                .seed(seed);
            verify_backups(e, &o).await
        }
    };
    let a = run(7).await;
    let b = run(7).await;
    let summary = |r: &Report| {
        r.checks
            .iter()
            .find(|c| c.name == "integrity:sessions")
            .unwrap()
            .summary
            .clone()
    };
    assert!(summary(&a).starts_with("3 objects read"), "{}", summary(&a));
    assert_eq!(summary(&a), summary(&b));
}

/// With a sample, completeness on the filesystem is its own pass of batched lookups (not the
/// integrity reads): a missing object is still named, an unexpected one too.
#[tokio::test]
async fn fs_completeness_by_lookup_with_a_sample() {
    let root = tempfile::tempdir().unwrap();
    let store: Arc<dyn BackupStore> = Arc::new(FsBackupStore::new(root.path()).unwrap());
    week(&store, 10).await;
    let s1 = "sessions/20261129/session-004.json";
    std::fs::remove_file(root.path().join(s1)).unwrap();
    let extra = "sessions/20261129/zz-extra.json";
    std::fs::write(root.path().join(extra), b"{}").unwrap();
    let e = env(store.clone(), host(0));
    let r = verify_backups(
        &e,
        &VerifyOptions::default()
            .date(today())
            .sample(Sample::Count(1))
            .seed(7),
    )
    .await;
    let completeness = r
        .checks
        .iter()
        .find(|c| c.name == "completeness:sessions")
        .unwrap();
    assert!(
        !completeness.summary.contains("integrity reads"),
        "{}",
        completeness.summary
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == s1 && f.message.starts_with("missing")),
        "{:?}",
        r.findings
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == extra && f.message.starts_with("unexpected")),
        "{:?}",
        r.findings
    );
}
