//! `incident_evidence` from the local host and a host over the real sshd, into the
//! filesystem store and moto's S3: volatile state first, then logs; a manifest whose hashes
//! match the stored bytes; read-only objects; a second collection is a new set.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use agentlab_ops::backup::{BackupStore, BackupStoreExt, FsBackupStore};
use agentlab_ops::runbook::{EvidenceOptions, EvidencePayload, incident_evidence};
use agentlab_ops::{Environment, LocalHost, MemoryBackupStore, RunOptions, Verdict};
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn payload(r: &agentlab_ops::Report) -> EvidencePayload {
    serde_json::from_value(r.payload.clone()).unwrap_or_else(|e| panic!("{e}: {}", r.to_text(true)))
}

fn logs(dir: &std::path::Path) -> Vec<String> {
    std::fs::write(
        dir.join("auth.log"),
        "Dec  3 07:00:01 h sshd[1]: Accepted publickey for ops\n",
    )
    .unwrap();
    vec![
        dir.join("auth.log").display().to_string(),
        dir.join("absent.log").display().to_string(),
    ]
}

async fn check_stored(store: &dyn BackupStore, p: &EvidencePayload) {
    let m = store
        .get_bytes(p.manifest_key.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        Some(hex(&m)),
        p.manifest_sha256,
        "the manifest's hash is the one reported"
    );
    for i in p.manifest.items.iter().filter(|i| i.key.is_some()) {
        let b = store.get_bytes(i.key.as_deref().unwrap()).await.unwrap();
        assert_eq!(
            (Some(hex(&b)), b.len() as u64),
            (i.sha256.clone(), i.size),
            "{}",
            i.source
        );
    }
}

#[tokio::test]
async fn volatile_first_then_logs_hashed_read_only_and_never_overwritten() {
    let Some(s) = common::servers("evidence") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(FsBackupStore::new(store_dir.path()).unwrap());
    let control = common::control_dir();
    let env = Environment::builder("evidence")
        .host(LocalHost::new("local"))
        .host(s.ssh_host("remote", s.ssh_ports[0], control.path()))
        .backups(store.clone(), &[])
        .configure(|c| c.journal.disabled = true)
        .build();
    let o = EvidenceOptions {
        incident: "INC-42".into(),
        logs: logs(dir.path()),
        ..EvidenceOptions::default()
    };
    let r = incident_evidence(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    assert_eq!(p.prefix, format!("evidence/INC-42/{}", r.run_id));
    for host in ["local", "remote"] {
        let items: Vec<_> = p.manifest.items.iter().filter(|i| i.host == host).collect();
        let order: Vec<(&str, &str)> = items
            .iter()
            .map(|i| (i.kind.as_str(), i.source.split(' ').next().unwrap()))
            .collect();
        assert_eq!(
            order[..3],
            [("volatile", "who"), ("volatile", "ps"), ("volatile", "ss")],
            "{host}: RFC 3227 order"
        );
        assert_eq!(order[3].0, "log");
        let ps = items[1];
        assert!(ps.size > 0 && ps.sha256.is_some(), "{ps:?}");
        assert_eq!(items[3].missing, None, "{:?}", items[3]);
        assert_eq!(items[4].missing.as_deref(), Some("absent"));
    }
    assert!(
        p.manifest.collector.contains("agentlab-ops"),
        "{}",
        p.manifest.collector
    );
    check_stored(&store, &p).await;
    // Read-only on disk; writing the same key again is refused; a new run is a new set.
    let log_key = p
        .manifest
        .items
        .iter()
        .find(|i| i.kind == "log" && i.key.is_some())
        .unwrap()
        .key
        .clone()
        .unwrap();
    let mode = std::fs::metadata(store_dir.path().join(&log_key))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o444);
    let again = store
        .put_new(&log_key, bytes::Bytes::from_static(b"tampered"))
        .await
        .unwrap_err();
    assert_eq!(again.kind(), agentlab_ops::ErrorKind::Conflict);
    assert_eq!(
        store.get_bytes(&log_key).await.unwrap().as_ref(),
        std::fs::read(dir.path().join("auth.log")).unwrap()
    );
    let r2 = incident_evidence(&env, &o, &RunOptions::default()).await;
    let p2 = payload(&r2);
    assert_ne!(p2.prefix, p.prefix);
    check_stored(&store, &p).await;
    assert_eq!(
        store.count("evidence/INC-42/").await.unwrap(),
        2 * (2 * 4 + 1)
    );
}

#[tokio::test]
async fn into_s3_and_dry_run_stores_nothing() {
    let Some(s) = common::servers("evidence") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = s.s3_store("evidence", "ev").await;
    let env = Environment::builder("evidence")
        .host(LocalHost::new("local"))
        .backups(store.clone(), &[])
        .configure(|c| c.journal.disabled = true)
        .build();
    let o = EvidenceOptions {
        incident: "INC-7".into(),
        logs: logs(dir.path()),
        ..EvidenceOptions::default()
    };
    let planned = incident_evidence(&env, &o, &RunOptions::default().dry_run(true)).await;
    assert_eq!(
        planned.verdict,
        Verdict::Healthy,
        "{}",
        planned.to_text(true)
    );
    assert_eq!(store.count("evidence/").await.unwrap(), 0);
    let r = incident_evidence(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    check_stored(&store, &p).await;
    let key = p.manifest_key.clone().unwrap();
    let e = store
        .put_new(&key, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::Conflict);
}

#[tokio::test]
async fn an_item_that_cannot_be_taken_escalates_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let unreadable = dir.path().join("dir.log");
    std::fs::create_dir(&unreadable).unwrap();
    let store = MemoryBackupStore::new();
    let env = Environment::builder("evidence")
        .host(LocalHost::new("local"))
        .backups(store.clone(), &[])
        .configure(|c| c.journal.disabled = true)
        .build();
    let mut logs = logs(dir.path());
    logs.push(unreadable.display().to_string());
    let o = EvidenceOptions {
        incident: "INC-8".into(),
        logs,
        ..EvidenceOptions::default()
    };
    let r = incident_evidence(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(true));
    assert_eq!(r.escalations[0].criterion, "evidence_incomplete");
    let p = payload(&r);
    assert!(p.manifest.items.iter().filter(|i| i.key.is_some()).count() >= 4);
    check_stored(&store, &p).await;
    let bad = EvidenceOptions {
        incident: "../x".into(),
        ..EvidenceOptions::default()
    };
    let r = incident_evidence(&env, &bad, &RunOptions::default()).await;
    assert!(
        r.to_text(false).contains("incident"),
        "{}",
        r.to_text(false)
    );
}

/// With `[compute]`, every volume of each host's instance is snapshotted and tagged with the
/// incident (the same snapshot code is run against moto's EC2 in `cloud.rs`); a host that is
/// no instance is skipped and said so.
#[tokio::test]
async fn instance_volumes_are_snapshotted_and_tagged_with_the_incident() {
    use agentlab_ops::compute::{Compute, MemoryCompute};
    let dir = tempfile::tempdir().unwrap();
    let clock = agentlab_ops::ManualClock::starting_now();
    let compute = MemoryCompute::new(std::sync::Arc::new(clock.clone()));
    compute.add("i-0web1", "t3.small", &["/dev/xvda", "/dev/xvdf"]);
    let env = Environment::builder("evidence-ec2")
        .host(LocalHost::new("web-1"))
        .host(LocalHost::new("bastion"))
        .backups(std::sync::Arc::new(MemoryBackupStore::new()), &[])
        .compute(compute.clone(), &[("web-1", "i-0web1")])
        .clock(clock)
        .configure(|c| c.journal.disabled = true)
        .build();
    let o = EvidenceOptions {
        incident: "INC-77".into(),
        logs: logs(dir.path()),
        ..EvidenceOptions::default()
    };
    let r = incident_evidence(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(true));
    let p = payload(&r);
    let snaps = p.snapshots[0]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{:?}", p.snapshots);
    let ids: Vec<String> = snaps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    for s in compute.snapshots(&ids).await.unwrap() {
        assert_eq!(
            s.tags.get("agentlab-ops:incident").map(String::as_str),
            Some("INC-77"),
            "{s:?}"
        );
    }
    let skipped = r
        .checks
        .iter()
        .find(|c| c.name == "snapshot:bastion")
        .unwrap();
    assert_eq!(skipped.outcome, agentlab_ops::Outcome::Skipped);
}
