//! The spec's **Backup Verification** runbook: a day's backups checked in ordered levels —
//! presence, completeness (the manifest against the store), integrity (a seeded sample
//! streamed through SHA-256 and its format validated), trend (against the previous 7 days),
//! and an optional restore test — each dataset at once, each level with its own outcome.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::backup::manifest::manifest_key;
use crate::backup::{BackupStore, day_prefix};
use crate::config::{DatasetConfig, Sample};
use crate::environment::Environment;
use crate::error::Error;
use crate::report::{Outcome, Report};
use crate::runbook::backup::{specs, store_of};
use crate::runbook::run::{Progress, Run, RunOptions};

mod completeness;
mod levels;
mod objects;
mod sample;

use completeness::*;
use levels::*;
use objects::*;
use sample::*;

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
    example: "",
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
