//! Data recovery: take a backup, damage the live data, recover; the data equals the backup byte
//! for byte, the pre-restore copy equals the damaged data, the read-only flag is gone. On the
//! memory host and on real local files (where the swap is a real renameat2 exchange).

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use agentlab_ops::runbook::{
    RecoverOptions, RecoverPayload, RecoveryPoint, TakeOptions, recover_data, take_backup,
};
use agentlab_ops::{
    BackupStore, Environment, LocalHost, MemoryBackupStore, MemoryHost, Outcome, RemoteHost,
    RunOptions, Verdict,
};
use chrono::NaiveDate;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn env(host: Arc<dyn RemoteHost>, store: Arc<dyn BackupStore>, data_dir: &str) -> Environment {
    let mut e = Environment::builder("recover").build();
    e.hosts.push(agentlab_ops::HostEntry {
        config: agentlab_ops::config::HostConfig::new(
            host.name(),
            agentlab_ops::config::HostAddress::Local,
        ),
        host,
    });
    let mut b =
        agentlab_ops::config::BackupsConfig::new(agentlab_ops::config::StoreKind::Memory, None);
    b.data_dir = data_dir.to_string();
    e.config.backups = Some(b);
    e.backups = Some(store);
    e
}

fn originals() -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..6 {
        m.insert(
            format!("sessions/session-{i:03}.json"),
            format!("{{\"session_id\": \"s-{i}\", \"n\": {i}}}").into_bytes(),
        );
    }
    m.insert(
        "runs.csv".into(),
        b"run_id,status\nr1,ok\nr2,ok\nr3,\"ok, late\"\n".to_vec(),
    );
    m
}

async fn snapshot(h: &dyn RemoteHost, dir: &str) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for f in h.list_files(&format!("{dir}/sessions"), "*").await.unwrap() {
        m.insert(
            f[dir.len() + 1..].to_string(),
            h.read_file(&f).await.unwrap().to_vec(),
        );
    }
    for f in h.list_files(&format!("{dir}/runs.csv"), "*").await.unwrap() {
        m.insert("runs.csv".into(), h.read_file(&f).await.unwrap().to_vec());
    }
    m
}

async fn cycle(host: Arc<dyn RemoteHost>, dir: &str) {
    for (k, v) in originals() {
        host.write_file(&format!("{dir}/{k}"), v.into())
            .await
            .unwrap();
    }
    let store: Arc<dyn BackupStore> = Arc::new(MemoryBackupStore::new());
    let e = env(host.clone(), store.clone(), dir);
    let r = take_backup(&e, &TakeOptions::default().date(day())).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));

    // Damage: one session changed, one deleted, runs.csv truncated.
    host.write_file(
        &format!("{dir}/sessions/session-001.json"),
        "{\"damaged\": tr".into(),
    )
    .await
    .unwrap();
    host.delete_file(&format!("{dir}/sessions/session-004.json"))
        .await
        .unwrap();
    host.write_file(&format!("{dir}/runs.csv"), "run_id,status\nr1,o".into())
        .await
        .unwrap();
    let damaged = snapshot(host.as_ref(), dir).await;

    // Dry-run: the plan, and nothing changes.
    let r = recover_data(
        &e,
        &RecoverOptions::default()
            .point(RecoveryPoint::Date(day()))
            .run(RunOptions::default().dry_run(true)),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(
        r.checks
            .iter()
            .filter(|c| c.name.starts_with("restore:"))
            .all(|c| c.outcome == Outcome::Planned)
    );
    assert_eq!(snapshot(host.as_ref(), dir).await, damaged);
    assert!(
        host.list_files(dir, "READ_ONLY_MODE")
            .await
            .unwrap()
            .is_empty()
    );

    // For real.
    let r = recover_data(
        &e,
        &RecoverOptions::default().point(RecoveryPoint::OnOrBefore(day())),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(
        snapshot(host.as_ref(), dir).await,
        originals(),
        "live data equals the backup"
    );
    let p: RecoverPayload = r.payload_as().unwrap();
    assert_eq!(p.date, "20261128");
    for d in &p.datasets {
        let kept = d.kept_as.as_ref().expect("previous data kept");
        let name = if d.dataset == "sessions" {
            "sessions"
        } else {
            "runs.csv"
        };
        assert!(
            kept.starts_with(&format!("{dir}/{name}.pre-restore-")),
            "{kept}"
        );
    }
    // The pre-restore copies equal the damaged data.
    let kept_sessions = &p.datasets[0].kept_as.clone().unwrap();
    let mut pre = BTreeMap::new();
    for f in host.list_files(kept_sessions, "*").await.unwrap() {
        pre.insert(
            format!("sessions/{}", f.rsplit('/').next().unwrap()),
            host.read_file(&f).await.unwrap().to_vec(),
        );
    }
    pre.insert(
        "runs.csv".into(),
        host.read_file(p.datasets[1].kept_as.as_ref().unwrap())
            .await
            .unwrap()
            .to_vec(),
    );
    assert_eq!(pre, damaged);
    // The read-only flag was set during the run and is gone now.
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "read_only_flag" && c.outcome == Outcome::Pass)
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "clear read_only_flag" && c.outcome == Outcome::Pass)
    );
    let parent = std::path::Path::new(dir)
        .parent()
        .unwrap()
        .display()
        .to_string();
    assert!(
        host.list_files(&parent, "READ_ONLY_MODE")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn recovery_on_the_memory_host() {
    cycle(Arc::new(MemoryHost::new("mem")), "/srv/app/data").await;
}

#[tokio::test]
async fn recovery_on_local_files() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("app/data");
    cycle(
        Arc::new(LocalHost::new("local")),
        &dir.display().to_string(),
    )
    .await;
}

#[tokio::test]
async fn a_failing_dataset_swaps_the_others_back_and_clears_the_flag() {
    let host = Arc::new(MemoryHost::new("mem"));
    let dir = "/srv/app/data";
    for (k, v) in originals() {
        host.put_file(&format!("{dir}/{k}"), v);
    }
    let store = MemoryBackupStore::new();
    let e = env(host.clone(), Arc::new(store.clone()), dir);
    take_backup(&e, &TakeOptions::default().date(day())).await;
    // The telemetry object in the backup is damaged: its restore must fail.
    store.insert("telemetry/20261128/runs.csv", "garbage");
    host.put_file(&format!("{dir}/sessions/session-000.json"), "{\"live\": 1}");
    let before = snapshot(host.as_ref(), dir).await;
    let r = recover_data(
        &e,
        &RecoverOptions::default().point(RecoveryPoint::Date(day())),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .contains("checksum mismatch"),
        "{:?}",
        r.error
    );
    assert_eq!(
        snapshot(host.as_ref(), dir).await,
        before,
        "sessions swapped back"
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "undo restore:sessions" && c.outcome == Outcome::Pass)
    );
    assert!(
        host.file("/srv/app/READ_ONLY_MODE").is_none(),
        "flag cleared"
    );
    let staged: Vec<String> = host
        .paths()
        .into_iter()
        .filter(|p| p.contains(".restore-"))
        .collect();
    assert!(staged.is_empty(), "staging data left behind: {staged:?}");
}

#[tokio::test]
async fn no_complete_backup_is_a_clear_failure() {
    let host = Arc::new(MemoryHost::new("mem"));
    let e = env(
        host.clone(),
        Arc::new(MemoryBackupStore::new()),
        "/srv/app/data",
    );
    let r = recover_data(&e, &RecoverOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(
        r.error
            .as_ref()
            .unwrap()
            .message
            .contains("no complete backup"),
        "{:?}",
        r.error
    );
    assert!(host.file("/srv/app/READ_ONLY_MODE").is_none());
}

#[tokio::test]
async fn recovery_over_ssh() {
    let Some(s) = common::servers("recovery_over_ssh") else {
        return;
    };
    let cd = common::control_dir();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("app/data");
    let host = Arc::new(s.ssh_host("ssh-recover", s.ssh_ports[0], cd.path()));
    cycle(host.clone(), &dir.display().to_string()).await;
    host.close().await.unwrap();
}

/// Every session lost, another file left in the directory: the directory still exists, so the
/// restore swaps it (keeping the leftover) instead of failing on a non-empty target.
#[tokio::test]
async fn recovery_when_every_session_is_gone() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("app/data").display().to_string();
    let host: Arc<dyn RemoteHost> = Arc::new(LocalHost::new("local"));
    for (k, v) in originals() {
        host.write_file(&format!("{dir}/{k}"), v.into())
            .await
            .unwrap();
    }
    let store: Arc<dyn BackupStore> = Arc::new(MemoryBackupStore::new());
    let e = env(host.clone(), store, &dir);
    take_backup(&e, &TakeOptions::default().date(day())).await;
    for f in host
        .list_files(&format!("{dir}/sessions"), "*.json")
        .await
        .unwrap()
    {
        host.delete_file(&f).await.unwrap();
    }
    host.write_file(&format!("{dir}/sessions/README.txt"), "left over".into())
        .await
        .unwrap();
    let r = recover_data(
        &e,
        &RecoverOptions::default().point(RecoveryPoint::Date(day())),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: RecoverPayload = r.payload_as().unwrap();
    let kept = p.datasets[0].kept_as.clone().expect("kept");
    assert_eq!(
        host.read_file(&format!("{kept}/README.txt")).await.unwrap(),
        "left over"
    );
    assert_eq!(snapshot(host.as_ref(), &dir).await, originals());
}
