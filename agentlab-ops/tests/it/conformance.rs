//! The shared conformance suites, run on every backend that needs no external server.

use agentlab_ops::testing::{backup_store_conformance, remote_host_conformance};
use agentlab_ops::{FsBackupStore, LocalHost, MemoryBackupStore, MemoryHost};

#[tokio::test]
async fn memory_backup_store() {
    backup_store_conformance(&MemoryBackupStore::new(), "")
        .await
        .unwrap();
    // Under a prefix too, as the S3 suite runs.
    backup_store_conformance(&MemoryBackupStore::new(), "run-1/")
        .await
        .unwrap();
}

#[tokio::test]
async fn fs_backup_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBackupStore::new(dir.path()).unwrap();
    backup_store_conformance(&store, "").await.unwrap();
    backup_store_conformance(&store, "nested/run/")
        .await
        .unwrap();
    // Nothing escaped the root.
    assert!(!dir.path().parent().unwrap().join("escape").exists());
}

#[tokio::test]
async fn memory_host() {
    remote_host_conformance(&MemoryHost::new("mem-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn local_host() {
    remote_host_conformance(&LocalHost::new("local-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn local_host_captures_stderr_and_env() {
    use agentlab_ops::{Cmd, RemoteHost};
    let h = LocalHost::new("l").with_env([("AGENTLAB_X".to_string(), "42".to_string())].into());
    let o = h
        .run(&Cmd::new("sh").args(["-c", "echo \"x=$AGENTLAB_X\"; echo oops >&2; exit 3"]))
        .await
        .unwrap();
    assert_eq!(o.status, Some(3));
    assert_eq!(o.stdout, "x=42\n");
    assert_eq!(o.stderr, "oops\n");
}

#[tokio::test]
async fn local_host_reads_files_byte_for_byte() {
    use agentlab_ops::RemoteHost;
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..=255u8).collect();
    std::fs::write(dir.path().join("x.bin"), &data).unwrap();
    std::fs::write(dir.path().join("a.json"), "{}").unwrap();
    let h = LocalHost::new("l");
    let d = dir.path().display().to_string();
    assert_eq!(
        h.read_file(&format!("{d}/x.bin")).await.unwrap().to_vec(),
        data
    );
    assert_eq!(
        h.list_files(&d, "*.json").await.unwrap(),
        vec![format!("{d}/a.json")]
    );
}

mod deployers {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use agentlab_ops::deploy::{CommandDeployer, Conclusion, Script};
    use agentlab_ops::testing::{DeployerFixture, deployer_conformance};
    use agentlab_ops::{LocalHost, ManualClock, MemoryDeployer};

    const FIXTURE: DeployerFixture<'static> = DeployerFixture {
        succeeds: "deploy.yml",
        fails: "broken.yml",
        unknown: "no-such-workflow.yml",
    };

    #[tokio::test]
    async fn memory_deployer() {
        let d = MemoryDeployer::new();
        d.known_workflows(&["deploy.yml", "broken.yml"]);
        d.script(
            "deploy.yml",
            Script::Completes {
                conclusion: Conclusion::Success,
                polls: 2,
            },
        );
        d.script(
            "broken.yml",
            Script::Completes {
                conclusion: Conclusion::Failure,
                polls: 1,
            },
        );
        deployer_conformance(&d, &ManualClock::starting_now(), FIXTURE).await;
    }

    #[tokio::test]
    async fn command_deployer_on_a_local_host() {
        let commands = BTreeMap::from([
            (
                "deploy.yml".to_string(),
                vec!["sh".into(), "-c".into(), "test {version} = 1.2.3".into()],
            ),
            (
                "broken.yml".to_string(),
                vec!["sh".into(), "-c".into(), "echo boom >&2; exit 3".into()],
            ),
        ]);
        let host = Arc::new(LocalHost::new("local-1"));
        let d = CommandDeployer::new(host, commands, Duration::from_secs(10));
        deployer_conformance(&d, &ManualClock::starting_now(), FIXTURE).await;
    }
}

mod services {
    use agentlab_ops::MemoryServiceManager;
    use agentlab_ops::testing::service_manager_conformance;

    #[tokio::test]
    async fn memory_service_manager() {
        service_manager_conformance(&MemoryServiceManager::new("web-1")).await;
    }
}
