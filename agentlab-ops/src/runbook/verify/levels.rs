//! The levels of a dataset's verification: presence, completeness, integrity, trend.

use super::*;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::backup::BackupStore;
use crate::backup::manifest::{self, ManifestEntry, ManifestHeader, manifest_key};
use crate::config::{DataFormat, DatasetConfig, Sample};
use crate::environment::Environment;
use crate::error::{ErrorKind, Result};
use crate::report::{Outcome, Severity};
use crate::runbook::backup::concurrency;
use crate::runbook::run::{Checked, Progress, Run};

/// Level 1, presence: objects and the manifest exist. The manifest's header and, from a store
/// that counts by key, the object count; None when the later levels cannot run (recorded).
pub(super) async fn presence_level(
    c: &DayCtx<'_>,
    v: &mut DatasetVerification,
) -> Option<(ManifestHeader, Option<u64>)> {
    let (run, store) = (c.run, c.store);
    let (ds, day, prefix, mkey) = (&c.ds, &c.day, &c.prefix, &c.mkey);
    let presence = run
        .check(&format!("presence:{ds}"), None, presence_probe(c))
        .await;
    let listed = match &presence {
        Ok((n, _)) if store.prefers_key_lookups() => Some(*n),
        _ => None,
    };
    let why = match presence {
        Err(e) => {
            let what = format!("backups of {ds} could not be listed");
            c.escalate(
                "backup_check_failed",
                e.to_string(),
                "a readable store",
                what,
            );
            v.levels
                .push(level("presence", Outcome::Error, e.to_string(), 1));
            "presence could not be checked"
        }
        Ok((0, _)) => {
            let observed = format!("0 objects under {prefix}");
            let what = format!("no {ds} backup for {day}");
            c.escalate(
                "backup_missing",
                observed,
                "a backup with its manifest",
                what,
            );
            v.levels
                .push(level("presence", Outcome::Fail, "no backup", 1));
            "no backup"
        }
        Ok((_, false)) => {
            // Presence only looked for a first object: say how many there are.
            let n = store
                .count(prefix)
                .await
                .map_or("some".into(), |n| n.to_string());
            let what = "manifest missing: the backup is incomplete by definition";
            run.finding(Severity::Critical, mkey.clone(), what);
            let what = format!("{ds} backup for {day} has no manifest");
            c.escalate(
                "backup_incomplete",
                format!("{n} objects, no manifest"),
                "a manifest",
                what,
            );
            v.levels
                .push(level("presence", Outcome::Fail, "no manifest", 1));
            "no manifest"
        }
        Ok(_) => {
            let pass = level("presence", Outcome::Pass, "backup and manifest present", 0);
            v.levels.push(pass);
            match manifest::open(store, mkey).await {
                Ok((h, _)) => return Some((h, listed)),
                Err(e) => {
                    run.finding(
                        Severity::Critical,
                        mkey.clone(),
                        format!("manifest unreadable: {e}"),
                    );
                    let what = format!("{ds} manifest for {day} is unreadable");
                    c.escalate(
                        "backup_incomplete",
                        "unreadable manifest",
                        "a valid manifest",
                        what,
                    );
                    "manifest unreadable"
                }
            }
        }
    };
    c.skip_rest(v, &["completeness", "integrity", "trend"], why);
    None
}

/// Objects and the manifest exist (existence only: the full listing is the completeness
/// level's job; a count where a sorted listing would hold the whole directory).
pub(super) async fn presence_probe(c: &DayCtx<'_>) -> Result<Checked<(u64, bool)>> {
    let (store, prefix) = (c.store, &c.prefix);
    let objects = if store.prefers_key_lookups() {
        store.count(prefix).await?
    } else {
        store
            .list(prefix)
            .take(2)
            .try_collect::<Vec<_>>()
            .await?
            .len() as u64
    };
    let manifest = match store.head(&c.mkey).await {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let (outcome, s) = match (objects, manifest) {
        (0, _) => (Outcome::Fail, format!("no backup under {prefix}")),
        (_, false) => (
            Outcome::Fail,
            format!(
                "objects under {prefix} but no {}: incomplete",
                manifest::MANIFEST_NAME
            ),
        ),
        (_, true) => (
            Outcome::Pass,
            format!("objects and the manifest under {prefix}"),
        ),
    };
    Ok(Checked::with((objects, manifest), outcome, s))
}

/// One dataset's day: what every level of the verification needs.
pub(super) struct DayCtx<'a> {
    pub(super) run: &'a Run,
    pub(super) store: &'a dyn BackupStore,
    pub(super) ds: String,
    pub(super) day: String,
    pub(super) prefix: String,
    pub(super) mkey: String,
}

impl DayCtx<'_> {
    /// Escalate about this dataset.
    fn escalate(
        &self,
        criterion: &str,
        observed: impl Into<String>,
        threshold: &str,
        message: String,
    ) {
        self.run
            .escalate(criterion, self.ds.clone(), observed, threshold, message);
    }

    /// Record the levels in `from` as skipped, with the reason.
    fn skip_rest(&self, v: &mut DatasetVerification, from: &[&str], why: &str) {
        for l in from {
            self.run.skip(
                &format!("{l}:{}", self.ds),
                crate::report::Action::Read,
                why,
            );
            v.levels.push(level(l, Outcome::Skipped, why, 0));
        }
    }
}

/// Level 3, integrity: the seeded sample streamed through SHA-256 and its format validated
/// (in batches for small objects); `(bad, read)`. With `tally`, completeness is counted from the
/// same reads.
#[allow(clippy::too_many_arguments)]
pub(super) async fn integrity_reads(
    env: &Environment,
    c: &DayCtx<'_>,
    spec: &DatasetConfig,
    header: &ManifestHeader,
    sample: Sample,
    opts: &VerifyOptions,
    scratch_path: Option<std::path::PathBuf>,
    tally: Option<&Tally>,
) -> Result<Checked<(u64, u64)>> {
    let (run, store, mkey) = (c.run, c.store, c.mkey.clone());
    let sample_min = env.config.backups.as_ref().map_or(20, |b| b.sample_min);
    let (chosen, expected) =
        choose_sample(store, &mkey, header.count, sample, sample_min, opts.seed).await?;
    if let Some(p) = &opts.progress {
        p.total.fetch_add(expected, Ordering::Relaxed);
    }
    let read = AtomicU64::new(0);
    // Small objects go in batches: one bulk read from the store, then hashing and
    // parsing of the whole batch on a blocking thread (both cores busy, few wake-ups).
    // Large objects, and restore tests, are streamed one by one.
    let batched = scratch_path.is_none();
    let problems: Vec<(String, String)> = chosen
        .try_chunks(BATCH)
        .map(|batch| {
            let scratch_path = scratch_path.clone();
            let (read, mkey, tally) = (&read, &mkey, tally);
            async move {
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        return vec![(mkey.clone(), format!("manifest unreadable: {}", e.1))];
                    }
                };
                let reads = Reads {
                    store,
                    format: spec.format,
                    scratch: scratch_path.as_deref(),
                    tally,
                    read,
                    progress: opts.progress.as_ref(),
                    mkey,
                };
                let (small, large): (Vec<ManifestEntry>, Vec<ManifestEntry>) = batch
                    .into_iter()
                    .partition(|e| batched && e.size <= BATCH_OBJECT_MAX);
                let mut problems = reads.small_batch(small).await;
                problems.extend(reads.one_by_one(large).await);
                problems
            }
        })
        .buffer_unordered((concurrency(env) / 4).max(2))
        .flat_map(stream::iter)
        .collect()
        .await;
    let (absent, problems): (Vec<_>, Vec<_>) =
        problems.into_iter().partition(|(_, why)| why == ABSENT);
    let n = read.load(Ordering::Relaxed) - absent.len() as u64;
    for (key, why) in &problems {
        run.finding(Severity::Critical, key.clone(), why.clone());
    }
    let bad = problems.len() as u64;
    let absent_note = if absent.is_empty() {
        String::new()
    } else {
        format!(
            " ({} sampled objects absent: see completeness)",
            absent.len()
        )
    };
    let (outcome, summary) = if n == 0 && bad == 0 {
        // A level that inspected nothing never passes.
        (
            Outcome::Skipped,
            format!(
                "no object read (sample {sample} of {}){absent_note}",
                header.count
            ),
        )
    } else {
        (
            if bad == 0 {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            format!(
                "{n} objects read (sample {sample}, seed {}), {bad} bad{absent_note}",
                opts.seed
            ),
        )
    };
    Ok(Checked::with((bad, n), outcome, summary))
}

/// Level 2, completeness: the manifest against the store (a merge of two sorted streams, key
/// lookups, or, with `tally`, the integrity reads themselves); the number of problems.
pub(super) async fn completeness_check(
    c: &DayCtx<'_>,
    header: &ManifestHeader,
    listed: Option<u64>,
    tally: Option<&Tally>,
) -> Result<Checked<u64>> {
    let (run, store, mkey, prefix) = (c.run, c.store, &c.mkey, &c.prefix);
    let fused = tally.is_some();
    let (problems, count) = if let Some(t) = tally {
        t.finish(run, store, mkey, prefix, listed).await?
    } else if store.prefers_key_lookups() {
        completeness_by_lookup(run, store, mkey, prefix, listed).await?
    } else {
        completeness_by_merge(run, store, mkey, prefix, false).await?
    };
    let outcome = if problems == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Ok(Checked::with(
        problems,
        outcome,
        format!(
            "{count} of {} manifest entries present with their sizes{}; {problems} problems",
            header.count,
            if fused {
                " (from the integrity reads)"
            } else {
                ""
            }
        ),
    ))
}

pub(super) fn record_completeness(c: &DayCtx<'_>, v: &mut DatasetVerification, r: Result<u64>) {
    let (run, ds, day) = (c.run, &c.ds, &c.day);
    match r {
        Ok(0) => v.levels.push(level(
            "completeness",
            Outcome::Pass,
            "every manifest entry present",
            0,
        )),
        Ok(n) => {
            run.escalate(
                "backup_incomplete",
                ds.clone(),
                format!("{n} objects missing or wrong"),
                "0",
                format!("{ds} backup for {day} is incomplete"),
            );
            v.levels.push(level(
                "completeness",
                Outcome::Fail,
                format!("{n} problems"),
                n,
            ));
        }
        Err(e) => v
            .levels
            .push(level("completeness", Outcome::Error, e.to_string(), 1)),
    }
}

pub(super) fn record_integrity(c: &DayCtx<'_>, v: &mut DatasetVerification, r: Result<(u64, u64)>) {
    let (run, ds, day) = (c.run, &c.ds, &c.day);
    // 3. integrity: a seeded sample, checksums and formats.
    match r {
        Ok((0, 0)) => v.levels.push(level(
            "integrity",
            Outcome::Skipped,
            "no object read: nothing to judge",
            0,
        )),
        Ok((0, _)) => v
            .levels
            .push(level("integrity", Outcome::Pass, "sample intact", 0)),
        Ok((n, _)) => {
            run.escalate(
                "backup_corrupt",
                ds.clone(),
                format!("{n} bad objects"),
                "0",
                format!("{ds} backup for {day} has corrupt objects"),
            );
            v.levels.push(level(
                "integrity",
                Outcome::Fail,
                format!("{n} bad objects"),
                n,
            ));
        }
        Err(e) => v
            .levels
            .push(level("integrity", Outcome::Error, e.to_string(), 1)),
    }
}

/// What the integrity reads of one batch share.
pub(super) struct Reads<'a> {
    store: &'a dyn BackupStore,
    format: DataFormat,
    scratch: Option<&'a std::path::Path>,
    tally: Option<&'a Tally>,
    read: &'a AtomicU64,
    progress: Option<&'a Progress>,
    mkey: &'a String,
}

impl Reads<'_> {
    /// Small objects: one bulk read from the store, then hashing and parsing of the whole
    /// batch on a blocking thread (both cores busy, few wake-ups).
    async fn small_batch(&self, small: Vec<ManifestEntry>) -> Vec<(String, String)> {
        if small.is_empty() {
            return Vec::new();
        }
        let (store, tally, mkey) = (self.store, self.tally, self.mkey);
        let mut problems = Vec::new();
        let keys: Vec<String> = small.iter().map(|e| e.key.clone()).collect();
        let bodies = store.get_batch(&keys).await;
        if let Some(t) = tally {
            for (e, b) in small.iter().zip(&bodies) {
                t.add(e, b.as_ref().map(|d| d.len() as u64));
            }
        }
        let format = self.format;
        let checked = tokio::task::spawn_blocking(move || {
            small
                .into_iter()
                .zip(bodies)
                .filter_map(|(e, b)| {
                    let why = match b {
                        Ok(data) => check_bytes(&e, format, &data).err(),
                        // Absent: the completeness level's finding, not a
                        // corrupt object (and nothing was read).
                        Err(err) if err.kind() == ErrorKind::NotFound => Some(ABSENT.to_string()),
                        Err(err) => Some(format!("cannot read: {err}")),
                    };
                    why.map(|w| (e.key, w))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| vec![(mkey.clone(), format!("verification task failed: {e}"))]);
        problems.extend(checked);
        self.read.fetch_add(keys.len() as u64, Ordering::Relaxed);
        if let Some(p) = self.progress {
            p.done.fetch_add(keys.len() as u64, Ordering::Relaxed);
        }
        problems
    }

    /// Large objects (and restore tests): streamed one by one.
    async fn one_by_one(&self, large: Vec<ManifestEntry>) -> Vec<(String, String)> {
        let (store, tally) = (self.store, self.tally);
        let mut problems = Vec::new();
        for entry in large {
            if let Some(t) = tally {
                t.add(
                    &entry,
                    store.head(&entry.key).await.as_ref().map(|m| m.size),
                );
            }
            if let Err(why) = check_object(store, &entry, self.format, self.scratch).await {
                problems.push((entry.key.clone(), why.unwrap_or_else(|| ABSENT.into())));
            }
            self.read.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = self.progress {
                p.done.fetch_add(1, Ordering::Relaxed);
            }
        }
        problems
    }
}

/// The trend's findings: the day's bytes and count beyond the bounds of the previous 7 days'
/// median (inconclusive with fewer than 3 earlier days).
pub(super) async fn trend_issues(
    c: &DayCtx<'_>,
    header: &ManifestHeader,
    date: NaiveDate,
    drop_max: f64,
    spike_max: f64,
) -> Result<Checked<Vec<String>>> {
    let (store, ds) = (c.store, &c.ds);
    let mut sizes = Vec::new();
    let mut counts = Vec::new();
    for back in 1..=7 {
        let d = date - chrono::Duration::days(back);
        if let Ok((h, _)) = manifest::open(store, &manifest_key(ds, d)).await {
            sizes.push(h.bytes);
            counts.push(h.count);
        }
    }
    if sizes.len() < 3 {
        let n = sizes.len();
        return Ok(Checked::with(
            Vec::new(),
            Outcome::Inconclusive,
            format!("only {n} earlier backups with manifests in the last 7 days (3 needed)"),
        ));
    }
    let (ms, mc) = (
        crate::journal::median(&mut sizes),
        crate::journal::median(&mut counts),
    );
    let mut issues = Vec::new();
    for (what, today, med) in [
        ("size", header.bytes, ms),
        ("object count", header.count, mc),
    ] {
        if med == 0 {
            continue;
        }
        let change = today as f64 / med as f64 - 1.0;
        if change < -drop_max {
            issues.push(format!(
                "{what} {today} is {:.0}% below the 7-day median {med} (bound {:.0}%)",
                -change * 100.0,
                drop_max * 100.0
            ));
        } else if change > spike_max {
            issues.push(format!(
                "{what} {today} is {:.0}% above the 7-day median {med} (bound {:.0}%)",
                change * 100.0,
                spike_max * 100.0
            ));
        }
    }
    let outcome = if issues.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    Ok(Checked::with(
        issues,
        outcome,
        format!(
            "{} bytes, {} objects; 7-day median {ms} bytes, {mc} objects",
            header.bytes, header.count
        ),
    ))
}

/// Level 4, trend: the day's bytes and object count against the median of the previous 7
/// days' manifests (fewer than 3 earlier days: inconclusive).
pub(super) async fn trend_level(
    env: &Environment,
    c: &DayCtx<'_>,
    v: &mut DatasetVerification,
    header: &ManifestHeader,
    date: NaiveDate,
) {
    let run = c.run;
    let (ds, day, prefix) = (&c.ds, &c.day, &c.prefix);
    // today's size and count against the median of the previous 7 days.
    let cfg = env.config.backups.as_ref();
    let drop_max = cfg.map_or(0.3, |c| c.trend_drop_max.0);
    let spike_max = cfg.map_or(1.0, |c| c.trend_spike_max);
    let trend = run
        .check(
            &format!("trend:{ds}"),
            None,
            trend_issues(c, header, date, drop_max, spike_max),
        )
        .await;
    match trend {
        Ok(issues) if issues.is_empty() => {
            v.levels
                .push(level("trend", Outcome::Pass, "within bounds", 0))
        }
        Ok(issues) => {
            for i in &issues {
                run.finding(Severity::Warning, prefix.clone(), i.clone());
            }
            run.escalate(
                "backup_size_trend",
                ds.clone(),
                issues.join("; "),
                format!(
                    "within -{:.0}% / +{:.0}% of the 7-day median",
                    drop_max * 100.0,
                    spike_max * 100.0
                ),
                format!("{ds} backup for {day} is off its size trend"),
            );
            v.levels.push(level(
                "trend",
                Outcome::Fail,
                issues.join("; "),
                issues.len() as u64,
            ));
        }
        Err(e) => v
            .levels
            .push(level("trend", Outcome::Error, e.to_string(), 1)),
    }
}
