//! The spec's **Backup Verification** runbook: a day's backups checked in ordered levels —
//! presence, completeness (the manifest against the store), integrity (a seeded sample
//! streamed through SHA-256 and its format validated), trend (against the previous 7 days),
//! and an optional restore test — each dataset at once, each level with its own outcome.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup::manifest::{self, ManifestEntry, ManifestHeader, manifest_key, sha256_hex};
use crate::backup::{BackupStore, day_prefix};
use crate::config::{DataFormat, DatasetConfig, Sample};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Outcome, Report, Severity};
use crate::runbook::backup::{concurrency, specs, store_of, validate_format};
use crate::runbook::run::{Checked, Progress, Run, RunOptions};

/// Options of [`verify_backups`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Day to verify (default: today, UTC).
    pub date: Option<NaiveDate>,
    /// Integrity sample (default: `[backups] sample`).
    pub sample: Option<Sample>,
    /// Seed of the sample: the same seed picks the same objects.
    pub seed: u64,
    /// Also restore the sample into a scratch directory and validate it there.
    pub restore_test: bool,
    /// Progress counter (objects read).
    pub progress: Option<Progress>,
    /// Run options.
    pub run: RunOptions,
}

impl VerifyOptions {
    /// Verify this day.
    pub fn date(mut self, d: NaiveDate) -> Self {
        self.date = Some(d);
        self
    }
    /// Read this sample.
    pub fn sample(mut self, s: Sample) -> Self {
        self.sample = Some(s);
        self
    }
    /// Seed of the sample.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Restore the sample into a scratch directory too.
    pub fn restore_test(mut self, on: bool) -> Self {
        self.restore_test = on;
        self
    }
    /// Set run options.
    pub fn run(mut self, r: RunOptions) -> Self {
        self.run = r;
        self
    }
}

/// The verdict of one level for one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    /// `presence`, `completeness`, `integrity`, `trend`, `restore`.
    pub level: String,
    /// Outcome.
    pub outcome: Outcome,
    /// One line.
    pub summary: String,
    /// Problems found at this level.
    pub problems: u64,
}

/// One dataset's verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVerification {
    /// Dataset.
    pub dataset: String,
    /// Objects in the manifest.
    pub objects: u64,
    /// Bytes in the manifest.
    pub bytes: u64,
    /// Levels in order.
    pub levels: Vec<LevelResult>,
}

/// The payload of a verification report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyPayload {
    /// `YYYYMMDD`.
    pub date: String,
    /// The store.
    pub store: String,
    /// Per dataset.
    pub datasets: Vec<DatasetVerification>,
}

/// A stable pseudo-random rank of a key under a seed (FNV-1a then a mixer).
fn rank(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Verify one day's backups, level by level.
pub async fn verify_backups(env: &Environment, opts: &VerifyOptions) -> Report {
    let date = opts.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut run_opts = opts.run.clone();
    if run_opts.deadline.is_none() {
        run_opts.deadline = env.config.backups.as_ref().map(|b| b.verify_deadline.0);
    }
    env.execute("backup_verify", &run_opts, |run| async move {
        let store = store_of(env)?;
        let specs = specs(env)?;
        let cfg = env
            .config
            .backups
            .as_ref()
            .ok_or_else(|| Error::config("no [backups]"))?;
        let sample = match opts.sample {
            Some(s) => s,
            None => Sample::parse(&cfg.sample).map_err(Error::config)?,
        };
        // Datasets are independent: verified together (the run's deadline bounds them all).
        // Each dataset's steps are one group of the report, in catalogue order.
        let runs: Vec<Run> = (1..=specs.len() as u64).map(|g| run.group(g)).collect();
        let out =
            futures::future::join_all(specs.iter().zip(&runs).map(|(spec, run)| {
                verify_dataset(env, run, store.as_ref(), spec, date, sample, opts)
            }))
            .await;
        let p = VerifyPayload {
            date: date.format("%Y%m%d").to_string(),
            store: store.describe(),
            datasets: out,
        };
        Ok(serde_json::to_value(p).unwrap_or_default())
    })
    .await
}

fn level(name: &str, outcome: Outcome, summary: impl Into<String>, problems: u64) -> LevelResult {
    LevelResult {
        level: name.into(),
        outcome,
        summary: summary.into(),
        problems,
    }
}

/// Level 1, presence: objects and the manifest exist. The manifest's header and, from a store
/// that counts by key, the object count; None when the later levels cannot run (recorded).
async fn presence_level(
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
async fn presence_probe(c: &DayCtx<'_>) -> Result<Checked<(u64, bool)>> {
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
struct DayCtx<'a> {
    run: &'a Run,
    store: &'a dyn BackupStore,
    ds: String,
    day: String,
    prefix: String,
    mkey: String,
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
async fn integrity_reads(
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
async fn completeness_check(
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

fn record_completeness(c: &DayCtx<'_>, v: &mut DatasetVerification, r: Result<u64>) {
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

fn record_integrity(c: &DayCtx<'_>, v: &mut DatasetVerification, r: Result<(u64, u64)>) {
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
struct Reads<'a> {
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
async fn trend_issues(
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
async fn trend_level(
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

async fn verify_dataset(
    env: &Environment,
    run: &Run,
    store: &dyn BackupStore,
    spec: &DatasetConfig,
    date: NaiveDate,
    sample: Sample,
    opts: &VerifyOptions,
) -> DatasetVerification {
    let ds = spec.name.clone();
    let c = DayCtx {
        run,
        store,
        ds: ds.clone(),
        day: date.format("%Y%m%d").to_string(),
        prefix: day_prefix(&ds, date),
        mkey: manifest_key(&ds, date),
    };
    let mut v = DatasetVerification {
        dataset: ds.clone(),
        objects: 0,
        bytes: 0,
        levels: Vec::new(),
    };
    let Some((header, listed)) = presence_level(&c, &mut v).await else {
        return v;
    };
    v.objects = header.count;
    v.bytes = header.bytes;

    // 2. completeness: merge the sorted manifest with the sorted listing (streaming both).
    // Completeness and integrity are independent once presence passed: run them together
    // (one walks the listing, the other hashes objects), report them in order.
    let scratch = if opts.restore_test {
        tempfile::tempdir().ok()
    } else {
        None
    };
    let (completeness_name, integrity_name) =
        (format!("completeness:{ds}"), format!("integrity:{ds}"));
    // When every object is read anyway from a store that answers by key, completeness comes
    // from the same reads (one pass, as `restic check --read-data`): same findings, half the
    // filesystem calls and one manifest parse instead of two.
    let fused = store.prefers_key_lookups() && sample == Sample::All;
    let tally = Tally::default();
    let completeness = run.check(
        &completeness_name,
        None,
        completeness_check(&c, &header, listed, fused.then_some(&tally)),
    );
    let scratch_path = scratch.as_ref().map(|d| d.path().to_path_buf());
    let tally_ref = fused.then_some(&tally);
    let integrity = run.check(
        &integrity_name,
        None,
        integrity_reads(
            env,
            &c,
            spec,
            &header,
            sample,
            opts,
            scratch_path,
            tally_ref,
        ),
    );
    let (completeness, integrity) = if fused {
        let integrity = integrity.await;
        (completeness.await, integrity)
    } else {
        futures::join!(completeness, integrity)
    };
    record_completeness(&c, &mut v, completeness);
    record_integrity(&c, &mut v, integrity);
    if opts.restore_test {
        let ok = scratch.is_some();
        v.levels.push(level(
            "restore",
            if ok { Outcome::Pass } else { Outcome::Error },
            if ok {
                "sample restored into a scratch directory and validated there"
            } else {
                "no scratch directory"
            },
            0,
        ));
    }

    trend_level(env, &c, &mut v, &header, date).await;
    v
}

/// Pick the sample from the manifest, streaming: every entry, or those whose seeded rank falls
/// under the fraction (memory stays flat in the number of objects); for a count, the `n`
/// lowest ranks kept in a heap. Same seed, same sample. Also returns how many to expect.
async fn choose_sample(
    store: &dyn BackupStore,
    mkey: &str,
    total: u64,
    sample: Sample,
    sample_min: u64,
    seed: u64,
) -> Result<(
    futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    u64,
)> {
    let (_, entries) = manifest::open(store, mkey).await?;
    Ok(match sample {
        Sample::All => (entries, total),
        Sample::Fraction(f) if f <= 0.0 || total == 0 => (stream::empty().boxed(), 0),
        // A fraction of a small dataset is a count, rounded up and at least `sample_min` (all
        // of a smaller dataset): one object at the very least whenever there are objects.
        Sample::Fraction(f) if f < 1.0 && ((total as f64) * f).ceil() <= SAMPLE_HEAP_MAX as f64 => {
            let k = (((total as f64) * f).ceil() as u64)
                .max(sample_min.min(total))
                .max(1);
            if k >= total {
                (entries, total)
            } else {
                lowest_ranks(entries, k, seed).await?
            }
        }
        Sample::Fraction(f) => {
            let limit = (f * u64::MAX as f64) as u64;
            let s = entries
                .try_filter(move |e| futures::future::ready(f >= 1.0 || rank(seed, &e.key) < limit))
                .boxed();
            (s, (total as f64 * f).round() as u64)
        }
        Sample::Count(n) => lowest_ranks(entries, n.min(total), seed).await?,
    })
}

/// Above this many sampled objects a fraction is streamed (a filter on the seeded rank, flat
/// memory) rather than chosen exactly in a heap.
const SAMPLE_HEAP_MAX: u64 = 10_000;

/// What a sampled object that is not in the store reports (the completeness level's finding).
const ABSENT: &str = "\u{0}absent";

/// The `n` entries of lowest seeded rank, kept in a heap; in key order.
async fn lowest_ranks(
    mut entries: futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    n: u64,
    seed: u64,
) -> Result<(
    futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    u64,
)> {
    let n = n as usize;
    let mut heap: BinaryHeap<(u64, String, u64, String)> = BinaryHeap::new();
    while let Some(e) = entries.try_next().await? {
        heap.push((rank(seed, &e.key), e.key, e.size, e.sha256));
        if heap.len() > n {
            heap.pop();
        }
    }
    let mut out: Vec<ManifestEntry> = heap
        .into_iter()
        .map(|(_, key, size, sha256)| ManifestEntry { key, size, sha256 })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let len = out.len() as u64;
    Ok((stream::iter(out.into_iter().map(Ok)).boxed(), len))
}

/// Completeness as a merge of two sorted streams: the manifest and the store's listing (S3's
/// pages keep memory bounded). `only_unexpected`: report objects missing from the manifest only.
async fn completeness_by_merge(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    only_unexpected: bool,
) -> Result<(u64, u64)> {
    let (_, mut entries) = manifest::open(store, mkey).await?;
    let mut listing = store
        .list(prefix)
        .try_filter(|m| futures::future::ready(!m.key.ends_with(manifest::MANIFEST_NAME)))
        .boxed();
    let (mut problems, mut count) = (0u64, 0u64);
    let mut e = entries.try_next().await?;
    let mut l = listing.try_next().await?;
    loop {
        match (&e, &l) {
            (None, None) => break,
            (Some(me), Some(lo)) if me.key == lo.key => {
                if me.size != lo.size && !only_unexpected {
                    problems += 1;
                    run.finding(
                        Severity::Critical,
                        me.key.clone(),
                        format!("size {} but the manifest says {}", lo.size, me.size),
                    );
                }
                count += 1;
                e = entries.try_next().await?;
                l = listing.try_next().await?;
            }
            (Some(me), lo) if lo.as_ref().is_none_or(|lo| me.key < lo.key) => {
                if !only_unexpected {
                    problems += 1;
                    run.finding(
                        Severity::Critical,
                        me.key.clone(),
                        "missing: listed in the manifest, absent from the store",
                    );
                }
                e = entries.try_next().await?;
            }
            (_, Some(lo)) => {
                problems += 1;
                run.finding(
                    Severity::Warning,
                    lo.key.clone(),
                    "unexpected: in the store, not in the manifest",
                );
                l = listing.try_next().await?;
            }
            (Some(_), None) => unreachable!("covered above"),
        }
    }
    Ok((problems, count))
}

/// Completeness by key lookups in manifest order (batched) plus a streamed count of the
/// prefix: memory stays flat for stores whose sorted listing would hold a whole directory.
/// Only when the count shows objects the manifest does not list is the listing merged, to
/// name them.
async fn completeness_by_lookup(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    listed: Option<u64>,
) -> Result<(u64, u64)> {
    let (_, entries) = manifest::open(store, mkey).await?;
    let mut chunks = entries.try_chunks(LOOKUP_BATCH);
    let (mut problems, mut present) = (0u64, 0u64);
    while let Some(chunk) = chunks.try_next().await.map_err(|e| e.1)? {
        let keys: Vec<String> = chunk.iter().map(|e| e.key.clone()).collect();
        for (me, meta) in chunk.iter().zip(store.head_batch(&keys).await) {
            match entry_completeness(me, meta.as_ref().map(|m| m.size)) {
                None => {
                    return Err(meta
                        .err()
                        .unwrap_or_else(|| Error::new(ErrorKind::Unexpected, "lookup failed")));
                }
                Some(EntryState::Present) => present += 1,
                Some(EntryState::Problem { present: p, why }) => {
                    present += u64::from(p);
                    problems += 1;
                    run.finding(Severity::Critical, me.key.clone(), why);
                }
            }
        }
    }
    problems += unexpected_objects(run, store, mkey, prefix, listed, present).await?;
    Ok((problems, present))
}

/// Objects under the prefix the manifest does not list: counted (or the presence level's
/// count reused), and only when there are some, named by a merge with the listing.
async fn unexpected_objects(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    listed: Option<u64>,
    present: u64,
) -> Result<u64> {
    let listed = match listed {
        Some(n) => n,
        None => store.count(prefix).await?,
    }
    .saturating_sub(1); // the manifest itself
    if listed > present {
        let (unexpected, _) = completeness_by_merge(run, store, mkey, prefix, true).await?;
        return Ok(unexpected);
    }
    Ok(0)
}

enum EntryState {
    Present,
    Problem { present: bool, why: String },
}

/// One manifest entry against what the store says of it (its size, or why not); `None` when
/// the store could not answer (an error other than not-found).
fn entry_completeness(
    me: &ManifestEntry,
    got: std::result::Result<u64, &Error>,
) -> Option<EntryState> {
    match got {
        Ok(size) if size == me.size => Some(EntryState::Present),
        Ok(size) => Some(EntryState::Problem {
            present: true,
            why: format!("size {size} but the manifest says {}", me.size),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Some(EntryState::Problem {
            present: false,
            why: "missing: listed in the manifest, absent from the store".into(),
        }),
        Err(_) => None,
    }
}

/// Completeness gathered from the integrity level's reads (when it reads every object).
#[derive(Default)]
struct Tally {
    inner: std::sync::Mutex<TallyInner>,
}

#[derive(Default)]
struct TallyInner {
    present: u64,
    problems: Vec<(String, String)>,
    error: Option<Error>,
}

impl Tally {
    fn add(&self, me: &ManifestEntry, got: std::result::Result<u64, &Error>) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match entry_completeness(me, got) {
            Some(EntryState::Present) => t.present += 1,
            Some(EntryState::Problem { present, why }) => {
                t.present += u64::from(present);
                t.problems.push((me.key.clone(), why));
            }
            None => {
                if let Err(e) = got {
                    t.error
                        .get_or_insert_with(|| Error::new(e.kind(), e.to_string()));
                }
            }
        }
    }

    async fn finish(
        &self,
        run: &Run,
        store: &dyn BackupStore,
        mkey: &str,
        prefix: &str,
        listed: Option<u64>,
    ) -> Result<(u64, u64)> {
        let t = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(e) = t.error {
            return Err(e);
        }
        let mut problems = t.problems.len() as u64;
        for (key, why) in t.problems {
            run.finding(Severity::Critical, key, why);
        }
        problems += unexpected_objects(run, store, mkey, prefix, listed, t.present).await?;
        Ok((problems, t.present))
    }
}

/// Manifest entries looked up per batch.
const LOOKUP_BATCH: usize = 256;

/// Objects per batch in the integrity level.
const BATCH: usize = 64;
/// Objects up to this size are verified in batches (whole in memory).
const BATCH_OBJECT_MAX: u64 = 1024 * 1024;

/// Size, checksum and format of an object held in memory.
fn check_bytes(
    e: &ManifestEntry,
    format: DataFormat,
    data: &[u8],
) -> std::result::Result<(), String> {
    if data.len() as u64 != e.size {
        return Err(format!(
            "size {} but the manifest says {} (truncated?)",
            data.len(),
            e.size
        ));
    }
    let got = sha256_hex(data);
    if got != e.sha256 {
        return Err(format!("SHA-256 mismatch: {got}, manifest {}", e.sha256));
    }
    validate_format(format, data)
}

/// Read one object (streamed into the hasher), check size, checksum and format; optionally
/// write it into `scratch` and validate the restored copy.
async fn check_object(
    store: &dyn BackupStore,
    e: &ManifestEntry,
    format: DataFormat,
    scratch: Option<&std::path::Path>,
) -> std::result::Result<(), Option<String>> {
    let mut body = match store.get(&e.key).await {
        Ok(b) => b,
        Err(err) if err.kind() == ErrorKind::NotFound => return Err(None),
        Err(err) => return Err(Some(format!("cannot read: {err}"))),
    };
    check_body(&mut body, e, format, scratch)
        .await
        .map_err(Some)
}

async fn check_body(
    body: &mut crate::backup::ByteStream,
    e: &ManifestEntry,
    format: DataFormat,
    scratch: Option<&std::path::Path>,
) -> std::result::Result<(), String> {
    let mut hasher = Sha256::new();
    let keep = format != DataFormat::Any || scratch.is_some();
    let mut data = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| format!("reading failed: {err}"))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if keep {
            data.extend_from_slice(&chunk);
        }
    }
    if size != e.size {
        return Err(format!(
            "size {size} but the manifest says {} (truncated?)",
            e.size
        ));
    }
    let got = manifest::hex(&hasher.finalize());
    if got != e.sha256 {
        return Err(format!("SHA-256 mismatch: {got}, manifest {}", e.sha256));
    }
    validate_format(format, &data)?;
    if let Some(dir) = scratch {
        let path = dir.join(e.key.replace('/', "__"));
        tokio::fs::write(&path, &data)
            .await
            .map_err(|err| format!("restore test: cannot write: {err}"))?;
        let back = tokio::fs::read(&path)
            .await
            .map_err(|err| format!("restore test: cannot read back: {err}"))?;
        if sha256_hex(&back) != e.sha256 {
            return Err("restore test: the restored copy differs".into());
        }
        validate_format(format, &back).map_err(|m| format!("restore test: {m}"))?;
    }
    Ok(())
}

/// Options of `backup_verify` in the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyArgs {
    /// Day to verify (default today, UTC).
    #[serde(with = "crate::runbook::registry::date")]
    pub date: Option<NaiveDate>,
    /// Integrity sample (default `[backups] sample`).
    pub sample: Option<Sample>,
    /// Seed of the sample.
    pub seed: u64,
    /// Also restore the sample into a scratch directory.
    pub restore_test: bool,
}

impl crate::runbook::registry::Validate for VerifyArgs {}

/// `backup_verify` in the catalogue.
pub static VERIFY: crate::runbook::registry::Definition = crate::runbook::registry::Definition {
    name: "backup_verify",
    command: "backup verify",
    aliases: &["verify_backups"],
    summary: "verify a day's backups: presence, completeness, integrity (sample), trend",
    changes: false,
    steps: &[
        "presence:<dataset>",
        "completeness:<dataset>",
        "integrity:<dataset>",
        "trend:<dataset>",
    ],
    options: &[
        crate::runbook::registry::OptionDoc {
            name: "date",
            kind: "YYYY-MM-DD",
            help: "day to verify (default today, UTC)",
        },
        crate::runbook::registry::OptionDoc {
            name: "sample",
            kind: "\"all\" | count | \"N%\"",
            help: "integrity sample (default [backups] sample)",
        },
        crate::runbook::registry::OptionDoc {
            name: "seed",
            kind: "integer",
            help: "seed of the sample: the same seed reads the same objects",
        },
        crate::runbook::registry::OptionDoc {
            name: "restore_test",
            kind: "bool",
            help: "also restore the sample into a scratch directory",
        },
    ],
    defaults: crate::runbook::registry::defaults_of::<VerifyArgs>,
    check_options: crate::runbook::registry::check_args::<VerifyArgs>,
    start: |env, v, run| {
        Box::pin(async move {
            let a: VerifyArgs = crate::runbook::registry::parse_args("backup_verify", v)?;
            let progress = run.progress.clone();
            let o = VerifyOptions {
                date: a.date,
                sample: a.sample,
                seed: a.seed,
                restore_test: a.restore_test,
                progress,
                run,
            };
            Ok(verify_backups(env, &o).await)
        })
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_stable_and_seeded() {
        assert_eq!(rank(1, "a"), rank(1, "a"));
        assert_ne!(rank(1, "a"), rank(2, "a"));
    }
}
