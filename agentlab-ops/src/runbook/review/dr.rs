//! The disaster-recovery drill: restore the latest complete backup of every dataset into a
//! fresh scratch folder (never the live data path), validate it — every object's size and
//! SHA-256 against the manifest, every JSON file parses, every CSV row has the header's
//! columns, the counts match the manifest header — and measure RTO (restore and validation)
//! and RPO (the age of the newest restorable backup) against `[review]`'s targets.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::backup::BackupStore;
use crate::backup::manifest::{ManifestEntry, manifest_key, open, sha256_hex};
use crate::environment::Environment;
use crate::error::{Error, Result};

/// Days back the drill looks for a complete backup.
const LOOKBACK_DAYS: i64 = 45;

/// One dataset restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrDataset {
    /// Dataset.
    pub dataset: String,
    /// The backup's day.
    pub date: NaiveDate,
    /// When that backup finished (its manifest's `created_at`).
    pub created_at: DateTime<Utc>,
    /// Objects restored.
    pub objects: u64,
    /// Bytes restored.
    pub bytes: u64,
    /// JSON documents that parsed.
    pub json_ok: u64,
    /// CSV data rows checked.
    pub csv_rows: u64,
    /// What is wrong, each naming the key.
    pub problems: Vec<String>,
}

/// The drill's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrDrill {
    /// Where it restored (removed after).
    pub scratch: String,
    /// Per dataset.
    pub datasets: Vec<DrDataset>,
    /// Restore and validation, measured.
    pub rto_ms: u64,
    /// `[review] rto_target`.
    pub rto_target_ms: u64,
    /// Age of the newest restorable backup at the drill (the oldest of the datasets').
    pub rpo_s: u64,
    /// `[review] rpo_target`.
    pub rpo_target_s: u64,
    /// Everything restored, valid, within both targets.
    pub passed: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
}

/// The latest day with a manifest (a complete backup), looking back from `today`; a store
/// that fails otherwise than "not found" is an error (never taken for a missing backup).
async fn latest_complete(
    store: &dyn BackupStore,
    dataset: &str,
    today: NaiveDate,
) -> Result<Option<NaiveDate>> {
    for back in 0..LOOKBACK_DAYS {
        let d = today - chrono::Duration::days(back);
        match store.head(&manifest_key(dataset, d)).await {
            Ok(_) => return Ok(Some(d)),
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Whether `inner` is `outer` or inside it (after resolving what exists of both).
fn inside(inner: &Path, outer: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(inner).starts_with(canon(outer))
}

/// A fresh scratch folder, refused when it is (or is under) the live data path.
fn scratch(env: &Environment) -> Result<tempfile::TempDir> {
    let base = env
        .config
        .review
        .scratch_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    // Checked before anything is created: never a folder inside the live data.
    if let Some(b) = env.config.backups.as_ref() {
        let live = PathBuf::from(&b.data_dir);
        if !b.data_dir.is_empty() && inside(&base, &live) {
            return Err(Error::config(format!(
                "review.scratch_dir {} is inside the live data path {}: the drill never restores there",
                base.display(),
                live.display()
            )));
        }
    }
    std::fs::create_dir_all(&base)
        .map_err(|e| Error::from(e).with_context("path", base.display().to_string()))?;
    Ok(tempfile::Builder::new()
        .prefix("agentlab-dr-")
        .tempdir_in(&base)?)
}

/// Check one restored object's content by its kind.
fn validate(e: &ManifestEntry, data: &[u8], d: &mut DrDataset) {
    if e.size != data.len() as u64 || e.sha256 != sha256_hex(data) {
        d.problems.push(format!(
            "{}: size or SHA-256 differs from the manifest (corrupt)",
            e.key
        ));
        return;
    }
    if e.key.ends_with(".json") {
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(_) => d.json_ok += 1,
            Err(err) => d.problems.push(format!("{}: not valid JSON: {err}", e.key)),
        }
    } else if e.key.ends_with(".csv") {
        let text = String::from_utf8_lossy(data);
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let cols = lines.next().map_or(0, |h| h.split(',').count());
        for (i, l) in lines.enumerate() {
            let n = l.split(',').count();
            if n != cols {
                d.problems.push(format!(
                    "{}: row {} has {n} columns, the header {cols}",
                    e.key,
                    i + 2
                ));
                return;
            }
            d.csv_rows += 1;
        }
    }
}

/// Restore one dataset's backup of `date` into `dir` and validate it.
async fn restore_one(
    store: &dyn BackupStore,
    dataset: &str,
    date: NaiveDate,
    dir: &Path,
) -> Result<DrDataset> {
    let (header, entries) = open(store, &manifest_key(dataset, date)).await?;
    let entries: Vec<ManifestEntry> = entries.try_collect().await?;
    let mut d = DrDataset {
        dataset: dataset.into(),
        date,
        created_at: header.created_at,
        objects: 0,
        bytes: 0,
        json_ok: 0,
        csv_rows: 0,
        problems: Vec::new(),
    };
    let prefix = crate::backup::day_prefix(dataset, date);
    for chunk in entries.chunks(64) {
        let keys: Vec<String> = chunk.iter().map(|e| e.key.clone()).collect();
        for (e, got) in chunk.iter().zip(store.get_batch(&keys).await) {
            let data = match got {
                Ok(b) => b,
                Err(err) => {
                    d.problems.push(format!("{}: cannot be read: {err}", e.key));
                    continue;
                }
            };
            let rel = e.key.strip_prefix(&prefix).unwrap_or(&e.key);
            let path = dir.join(dataset).join(rel);
            if let Some(p) = path.parent() {
                tokio::fs::create_dir_all(p).await?;
            }
            tokio::fs::write(&path, &data).await?;
            d.objects += 1;
            d.bytes += data.len() as u64;
            validate(e, &data, &mut d);
        }
    }
    if d.objects != header.count || d.bytes != header.bytes {
        d.problems.push(format!(
            "{dataset} {date}: restored {} objects ({} bytes), the manifest says {} ({} bytes)",
            d.objects, d.bytes, header.count, header.bytes
        ));
    }
    Ok(d)
}

/// Run the drill.
pub async fn drill(env: &Environment) -> Result<DrDrill> {
    let store = env.store()?;
    let datasets = env.datasets();
    if datasets.is_empty() {
        return Err(Error::config("no [backups] datasets to restore"));
    }
    let dir = scratch(env)?;
    let started = Instant::now();
    let now = env.clock.now();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for ds in &datasets {
        match latest_complete(store.as_ref(), ds, now.date_naive()).await {
            Err(e) => problems.push(format!("{ds}: the store failed: {e}")),
            Ok(None) => problems.push(format!(
                "{ds}: no complete backup in the last {LOOKBACK_DAYS} days"
            )),
            Ok(Some(date)) => match restore_one(store.as_ref(), ds, date, dir.path()).await {
                Ok(d) => {
                    problems.extend(d.problems.iter().cloned());
                    out.push(d);
                }
                Err(e) => problems.push(format!("{ds} {date}: {e}")),
            },
        }
    }
    let rto = started.elapsed();
    let c = &env.config.review;
    let rpo = out
        .iter()
        .map(|d| (now - d.created_at).to_std().unwrap_or(Duration::ZERO))
        .max()
        .unwrap_or(Duration::MAX);
    if rto > c.rto_target.0 {
        problems.push(format!(
            "RTO {} over the target {}",
            crate::config::format_duration(rto),
            crate::config::format_duration(c.rto_target.0)
        ));
    }
    if out.len() == datasets.len() && rpo > c.rpo_target.0 {
        problems.push(format!(
            "RPO {} over the target {}",
            crate::config::format_duration(rpo),
            crate::config::format_duration(c.rpo_target.0)
        ));
    }
    Ok(DrDrill {
        scratch: dir.path().display().to_string(),
        datasets: out,
        rto_ms: rto.as_millis() as u64,
        rto_target_ms: c.rto_target.0.as_millis() as u64,
        rpo_s: rpo.as_secs().min(u64::from(u32::MAX)),
        rpo_target_s: c.rpo_target.0.as_secs(),
        passed: problems.is_empty(),
        problems,
    })
}
