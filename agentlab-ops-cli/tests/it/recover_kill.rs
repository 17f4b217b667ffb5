//! `backup recover` through the command, killed with SIGKILL at many moments: the live data is
//! always wholly the old version or wholly the restored one.

use crate::common;
use common::{bin, text};

use std::path::Path;
use std::process::Output;

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().expect("run agentlab-ops")
}

fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("sessions")) {
        for e in rd.flatten() {
            m.insert(
                format!("sessions/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    if let Ok(b) = std::fs::read(dir.join("runs.csv")) {
        m.insert("runs.csv".into(), b);
    }
    m
}

/// `backup recover` killed (SIGKILL) at many points leaves each dataset's live data either
/// wholly the old (damaged) version or wholly the restored one — never a mix, never missing.
#[test]
fn recovery_killed_at_any_moment_leaves_old_or_new() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("app/data");
    let store = d.path().join("backups");
    std::fs::create_dir_all(data.join("sessions")).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    for i in 0..300 {
        std::fs::write(
            data.join(format!("sessions/session-{i:04}.json")),
            format!(
                "{{\"session_id\": \"s-{i}\", \"pad\": \"{}\"}}",
                "x".repeat(1500)
            ),
        )
        .unwrap();
    }
    std::fs::write(data.join("runs.csv"), "run_id,status\nr1,ok\n").unwrap();
    let cfg = format!(
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n[backups]\nstore = \"fs\"\npath = \"{}\"\ndata_dir = \"{}\"\n[[hosts]]\nname = \"local\"\naddress = \"local\"\n",
        store.display(),
        data.display()
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    let o = run(d.path(), &["backup", "take", "--date", "2026-11-28"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let new = tree(&data);

    // How long a whole recovery takes here, to spread the kills over it.
    let start = std::time::Instant::now();
    let o = run(d.path(), &["backup", "recover", "--date", "2026-11-28"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let full = start.elapsed();

    // Damage, then interrupt recoveries at growing delays.
    let damage = || {
        std::fs::write(data.join("sessions/session-0007.json"), "{\"damaged\": ").unwrap();
        let _ = std::fs::remove_file(data.join("sessions/session-0100.json"));
        std::fs::write(data.join("runs.csv"), "run_id,status\nr1,o").unwrap();
    };
    damage();
    let old = tree(&data);
    let (mut saw_old, mut saw_new) = (false, false);
    // Kills spread over one run; then longer delays until a kill also lands after the swap
    // (a loaded machine may run slower than the measured run).
    for k in 0..=70u32 {
        if k > 16 && saw_old && saw_new {
            break;
        }
        let delay = full * k / 14;
        let mut child = bin(d.path())
            .args(["backup", "recover", "--date", "2026-11-28"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = tree(&data);
        let sessions = |t: &std::collections::BTreeMap<String, Vec<u8>>| {
            t.iter()
                .filter(|(k, _)| k.starts_with("sessions/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        assert!(
            sessions(&now) == sessions(&old) || sessions(&now) == sessions(&new),
            "sessions mixed after a kill at {delay:?}"
        );
        assert!(
            now.get("runs.csv") == old.get("runs.csv")
                || now.get("runs.csv") == new.get("runs.csv"),
            "runs.csv torn after a kill at {delay:?}"
        );
        if now == new {
            saw_new = true;
            damage();
        } else {
            saw_old |= sessions(&now) == sessions(&old);
        }
    }
    assert!(
        saw_old && saw_new,
        "the kills should land both before and after the swap (old {saw_old}, new {saw_new})"
    );
    // A full run completes and clears the flag.
    let o = run(d.path(), &["backup", "recover", "--date", "2026-11-28"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert_eq!(tree(&data), new);
    assert!(!d.path().join("app/READ_ONLY_MODE").exists());
}
