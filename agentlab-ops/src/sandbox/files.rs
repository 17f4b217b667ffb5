//! The sandbox's files: the hosts' canned `uptime`/`free`/`df` outputs and scripts, a month of
//! backups per scenario, the live data a recovery restores.

use super::*;
use crate::error::Result;
use serde_json::json;
use std::path::{Path, PathBuf};

pub(super) fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, text)?;
    Ok(())
}

pub(super) fn host_outputs(
    dir: &Path,
    host: &str,
    mem_used: f64,
    disks: &[(&str, f64)],
) -> Result<PathBuf> {
    let out = dir.join("hosts").join(host);
    write(
        &out.join("uptime"),
        " 09:00:01 up 41 days,  2:17,  1 user,  load average: 0.42, 0.38, 0.35\n",
    )?;
    let total: u64 = 8 * 1024 * 1024 * 1024;
    let avail = (total as f64 * (1.0 - mem_used)) as u64;
    write(
        &out.join("free"),
        &format!(
            "               total        used        free      shared  buff/cache   available\nMem:      {total}  {}  {}     1048576  {}  {avail}\nSwap:              0           0           0\n",
            total - avail,
            avail / 2,
            avail / 2
        ),
    )?;
    let mut df =
        String::from("Filesystem     1-blocks        Used   Available Capacity Mounted on\n");
    df.push_str("tmpfs          838860800      1048576   837812224       1% /run\n");
    for (i, (m, f)) in disks.iter().enumerate() {
        let size: u64 = 50 * 1024 * 1024 * 1024;
        let used = (size as f64 * f) as u64;
        df.push_str(&format!(
            "/dev/nvme0n1p{} {size} {used} {} {:.0}% {m}\n",
            i + 1,
            size - used,
            f * 100.0
        ));
    }
    write(&out.join("df"), &df)?;
    write(&out.join("nproc"), "2\n")?;
    Ok(out)
}

#[cfg(unix)]
pub(super) fn make_bin(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    // The deploy workflow's stand-in: says what it deploys, succeeds.
    let deploy = bin.join("deploy");
    write(&deploy, "#!/bin/sh\necho \"deploying $2 to $1\"\n")?;
    std::fs::set_permissions(&deploy, std::fs::Permissions::from_mode(0o755))?;
    for prog in ["uptime", "free", "df", "nproc"] {
        let p = bin.join(prog);
        write(
            &p,
            // AGENTLAB_SANDBOX_DELAY (seconds) makes the host slow, for failure tests.
            &format!(
                "#!/bin/sh\n[ -n \"$AGENTLAB_SANDBOX_DELAY\" ] && sleep \"$AGENTLAB_SANDBOX_DELAY\"\nexec cat \"$AGENTLAB_SANDBOX_HOST/{prog}\"\n"
            ),
        )?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(bin)
}

#[cfg(not(unix))]
pub(super) fn make_bin(_dir: &Path) -> Result<PathBuf> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "the sandbox needs a Unix system",
    ))
}

/// Write one day's backup of a dataset, with its manifest unless told not to.
pub(super) fn write_day(
    root: &Path,
    dataset: &str,
    day: chrono::NaiveDate,
    files: &[(String, Vec<u8>)],
    with_manifest: bool,
) -> Result<()> {
    use crate::backup::manifest::{
        ManifestEntry, ManifestHeader, manifest_key, render, sha256_hex,
    };
    let prefix = crate::backup::day_prefix(dataset, day);
    let mut entries = Vec::new();
    for (name, data) in files {
        let key = format!("{prefix}{name}");
        let p = root.join(&key);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, data)?;
        entries.push(ManifestEntry {
            key,
            size: data.len() as u64,
            sha256: sha256_hex(data),
        });
    }
    if with_manifest {
        let header = ManifestHeader {
            manifest_version: 1,
            dataset: dataset.to_string(),
            date: day.format("%Y%m%d").to_string(),
            // The nightly job finishes at 02:00 (now, for a backup taken before that today).
            created_at: day
                .and_hms_opt(2, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or_default()
                .min(chrono::Utc::now()),
            source: format!("web-1:/app/data/{dataset}"),
            count: entries.len() as u64,
            bytes: entries.iter().map(|e| e.size).sum(),
        };
        std::fs::write(
            root.join(manifest_key(dataset, day)),
            render(&header, &mut entries),
        )?;
    }
    Ok(())
}

/// Nights of backups laid out (a month and a few days: the review's drill and trends).
pub(super) const BACKUP_DAYS: i64 = 35;

pub(super) fn backups(dir: &Path, s: Scenario) -> Result<PathBuf> {
    let root = dir.join("backups");
    std::fs::create_dir_all(&root)?;
    let today = chrono::Utc::now().date_naive();
    for back in 0..BACKUP_DAYS {
        let d = today - chrono::Duration::days(back);
        let day = d.format("%Y%m%d").to_string();
        let tonight = back == 0;
        let n = if tonight && s == Scenario::SizeDrop {
            2
        } else {
            5
        };
        let mut sessions: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| {
                let body = json!({"session_id": format!("s-{day}-{i}"), "agent": "researcher",
                    "messages": [{"role": "user", "content": "hello"}], "created": d.to_string()});
                (
                    format!("session-{i:03}.json"),
                    body.to_string().into_bytes(),
                )
            })
            .collect();
        if !(s == Scenario::BackupsMissing && tonight) {
            write_day(
                &root,
                "sessions",
                d,
                &sessions,
                !(s == Scenario::MissingManifest && tonight),
            )?;
        }
        if s == Scenario::CorruptObject && tonight {
            // Flip one byte after the manifest recorded the good checksum.
            let (name, data) = &mut sessions[2];
            data[10] ^= 0x20;
            std::fs::write(root.join(format!("sessions/{day}/{name}")), &data)?;
        }
        let mut csv = String::from("run_id,started_at,agent,status,duration_ms\n");
        for i in 0..40 {
            csv.push_str(&format!(
                "r-{day}-{i},{d}T0{}:00:00Z,researcher,ok,{}\n",
                i % 10,
                900 + i * 7
            ));
        }
        write_day(
            &root,
            "telemetry",
            d,
            &[("runs.csv".to_string(), csv.into_bytes())],
            true,
        )?;
    }
    Ok(root)
}

/// The service's live data (what `backup take` copies): `data/sessions/*.json`, `data/runs.csv`.
pub(super) fn live_data(dir: &Path) -> Result<PathBuf> {
    let data = dir.join("data");
    for i in 0..5 {
        let body =
            json!({"session_id": format!("live-{i}"), "agent": "researcher", "messages": []});
        write(
            &data.join(format!("sessions/session-{i:03}.json")),
            &body.to_string(),
        )?;
    }
    let mut csv = String::from("run_id,started_at,agent,status,duration_ms\n");
    for i in 0..40 {
        csv.push_str(&format!(
            "r-live-{i},2026-11-29T0{}:00:00Z,researcher,ok,{}\n",
            i % 10,
            900 + i * 7
        ));
    }
    write(&data.join("runs.csv"), &csv)?;
    Ok(data)
}

/// A credential the sandbox can rotate with `rotate_secret`: an "issuer" that is a folder of
/// valid keys, the value in use in a file — all inside the sandbox.
pub(super) fn secret(dir: &Path) -> Result<crate::config::SecretRotation> {
    let store = dir.join("secrets").join("valid");
    std::fs::create_dir_all(&store)?;
    let initial = "sk-sandbox-initial-0001";
    std::fs::write(store.join(initial), "")?;
    let current = dir.join("secrets").join("llm_api_key");
    std::fs::write(&current, initial)?;
    let s = store.display();
    serde_json::from_value(json!({
        "name": "llm_api_key",
        "current_file": current,
        "issue": {"command": ["sh", "-c", format!("k=sk-sandbox-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'); touch {s}/$k; echo \"$k\"")]},
        "verify": {"command": ["sh", "-c", format!("test -e \"{s}/$AGENTLAB_SECRET\"")]},
        "revoke": {"command": ["sh", "-c", format!("rm -f \"{s}/$AGENTLAB_SECRET\"")]},
        "output": current,
    }))
    .map_err(|e| Error::config(format!("sandbox secret: {e}")))
}
