//! The spec's **Data Recovery** runbook: assess, choose the recovery point, set the read-only
//! flag (always cleared at the end), restore each dataset into a staging path, validate it, and
//! swap it into place atomically (`renameat2(RENAME_EXCHANGE)`), keeping the previous data as
//! `<path>.pre-restore-<timestamp>`. Nothing is overwritten: the old data is always kept. If a
//! later dataset fails, the datasets already swapped are swapped back.

use std::sync::Arc;

use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::backup::manifest::{self, manifest_key, sha256_hex};
use crate::backup::{BackupStore, BackupStoreExt};
use crate::config::DatasetConfig;
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::RemoteHost;
use crate::report::Report;
use crate::runbook::backup::validate_format;
use crate::runbook::run::{Checked, RunOptions, Undo};

/// Which backup to recover from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryPoint {
    /// The latest complete backup (every dataset has its manifest).
    #[default]
    Latest,
    /// The latest complete backup on or before this day.
    OnOrBefore(NaiveDate),
    /// Exactly this day's backup.
    Date(NaiveDate),
}

/// Options of [`recover_data`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoverOptions {
    /// The recovery point.
    pub point: RecoveryPoint,
    /// Host to restore on (default: `[backups] source_host`, else the first host).
    pub host: Option<String>,
    /// Run options (dry-run prints the plan and changes nothing).
    pub run: RunOptions,
}

impl RecoverOptions {
    /// Recover from this point.
    pub fn point(mut self, p: RecoveryPoint) -> Self {
        self.point = p;
        self
    }
    /// Set run options.
    pub fn run(mut self, r: RunOptions) -> Self {
        self.run = r;
        self
    }
}

/// One dataset's recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveredDataset {
    /// Dataset.
    pub dataset: String,
    /// Live path on the host.
    pub path: String,
    /// Live files before (what `find | wc -l` said).
    pub live_files_before: u64,
    /// Objects in the backup.
    pub backup_objects: u64,
    /// Where the previous data was kept.
    pub kept_as: Option<String>,
}

/// The payload of a recovery report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoverPayload {
    /// The backup day used.
    pub date: String,
    /// Host restored on.
    pub host: String,
    /// Per dataset.
    pub datasets: Vec<RecoveredDataset>,
}

fn live_path(data_dir: &str, spec: &DatasetConfig) -> String {
    if spec.path.starts_with('/') {
        spec.path.clone()
    } else {
        format!("{}/{}", data_dir.trim_end_matches('/'), spec.path)
    }
}

/// A dataset whose path is one file (`runs.csv`) rather than a directory of files.
fn is_single_file(spec: &DatasetConfig) -> bool {
    spec.pattern == "*"
        && spec
            .path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.contains('.'))
}

/// Restore data from a backup.
pub async fn recover_data(env: &Environment, opts: &RecoverOptions) -> Report {
    env.execute("backup_recover", &opts.run, |run| async move {
        let store: Arc<dyn BackupStore> = env.store()?;
        let cfg = env.config.backups.as_ref().ok_or_else(|| Error::config("no [backups] configured"))?;
        let specs = cfg.dataset_specs().map_err(|m| Error::config(format!("backups.datasets: {m}")))?;
        let wanted = opts.host.clone().or_else(|| cfg.source_host.clone());
        let host: &HostEntry = env.host_or_first(wanted.as_deref(), "recovery")?;
        let h = host.host.clone();

        // 1. Choose the recovery point: the latest day at or before the asked one where every
        //    dataset has a manifest (a backup without one is incomplete).
        let date = run
            .check("recovery_point", None, async {
                let (start, exact) = match opts.point {
                    RecoveryPoint::Latest => (chrono::Utc::now().date_naive(), false),
                    RecoveryPoint::OnOrBefore(d) => (d, false),
                    RecoveryPoint::Date(d) => (d, true),
                };
                let days = if exact { 1 } else { 31 };
                for back in 0..days {
                    let d = start - chrono::Duration::days(back);
                    let mut complete = true;
                    for s in &specs {
                        match store.head(&manifest_key(&s.name, d)).await {
                            Ok(_) => {}
                            Err(e) if e.kind() == ErrorKind::NotFound => {
                                complete = false;
                                break;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if complete {
                        return Ok(Checked::pass(d, format!("complete backup of {}", d.format("%Y%m%d"))));
                    }
                }
                Err(Error::new(ErrorKind::NotFound, format!("no complete backup at or before {} (within {days} days)", start.format("%Y%m%d"))))
            })
            .await?;
        let day = date.format("%Y%m%d").to_string();

        // 2. Assess: live files against the backup.
        let mut assessed = Vec::new();
        for s in &specs {
            let path = live_path(&cfg.data_dir, s);
            let (header, _) = manifest::open(store.as_ref(), &manifest_key(&s.name, date)).await?;
            let live = h.list_files(&path, &s.pattern).await?.len() as u64;
            let lines = if is_single_file(s) && live > 0 {
                h.read_file(&path).await.map(|b| b.iter().filter(|c| **c == b'\n').count()).ok()
            } else {
                None
            };
            let summary = match lines {
                Some(l) => format!("{path}: {l} lines live; backup {day}: {} bytes", header.bytes),
                None => format!("{path}: {live} files live; backup {day}: {} objects", header.count),
            };
            run.check(&format!("assess:{}", s.name), None, async { Ok(Checked::pass((), summary)) }).await?;
            assessed.push((s.clone(), path, live, header.count));
        }

        // 3. The read-only flag, cleared at the end whatever happens.
        let flag = cfg.read_only_flag.clone().unwrap_or_else(|| {
            let d = cfg.data_dir.trim_end_matches('/');
            let parent = d.rsplit_once('/').map_or(".", |(p, _)| if p.is_empty() { "/" } else { p });
            format!("{}/READ_ONLY_MODE", parent.trim_end_matches('/'))
        });
        let (h2, f2) = (h.clone(), flag.clone());
        run.change(
            "read_only_flag",
            format!("set {}:{flag} (removed at the end, failure or not)", host.config.name),
            async { h.write_file(&flag, bytes::Bytes::from_static(b"recovery in progress\n")).await },
            Some(Undo::always("clear read_only_flag", move || async move { h2.delete_file(&f2).await })),
        )
        .await?;

        // 4. Each dataset: stage, validate, swap.
        // The run id: a timestamp plus a random part, unique even for runs in the same second.
        let ts = run.run_id().to_string();
        let mut out = Vec::new();
        for (s, path, live, objects) in assessed {
            let staging = format!("{path}.restore-{ts}");
            let kept = format!("{path}.pre-restore-{ts}");
            let plan = format!(
                "restore {objects} objects of {} {day} into {staging}, validate, swap into {path} (previous data kept as {kept})",
                s.name
            );
            let (hh, st) = (h.clone(), store.clone());
            let spec = s.clone();
            let conc = cfg.concurrency.max(1);
            let phase = Arc::new(std::sync::Mutex::new(Phase::Staging));
            // Registered before anything is written, so an error, Ctrl-C or SIGTERM at any
            // moment leaves neither staging data nor a half-done swap behind.
            let paths = Paths { staging: staging.clone(), live: path.clone(), kept: kept.clone() };
            run.push_undo(undo_restore(&s.name, h.clone(), paths.clone(), phase.clone()));
            let swapped = run
                .change(
                    &format!("restore:{}", s.name),
                    plan,
                    restore_one(hh, st, spec, date, paths, live > 0, conc, phase),
                    None,
                )
                .await?;
            out.push(RecoveredDataset {
                dataset: s.name.clone(),
                path,
                live_files_before: live,
                backup_objects: objects,
                kept_as: swapped.flatten(),
            });
        }
        let p = RecoverPayload { date: day, host: host.config.name.clone(), datasets: out };
        Ok(serde_json::to_value(p).unwrap_or_default())
    })
    .await
}

/// Stage, validate and swap one dataset; returns where the previous data was kept.
#[allow(clippy::too_many_arguments)]
async fn restore_one(
    h: Arc<dyn RemoteHost>,
    store: Arc<dyn BackupStore>,
    spec: DatasetConfig,
    date: NaiveDate,
    paths: Paths,
    live_exists: bool,
    concurrency: usize,
    phase: Arc<std::sync::Mutex<Phase>>,
) -> Result<Option<String>> {
    let staging = paths.staging.clone();
    let (_, entries) = manifest::open(store.as_ref(), &manifest_key(&spec.name, date)).await?;
    let single = is_single_file(&spec);
    let (hr, sr, specr, stg) = (&h, &store, &spec, &staging);
    let written: Vec<u64> = entries
        .map_ok(|e| async move {
            let data = sr.get_bytes(&e.key).await?;
            if data.len() as u64 != e.size || sha256_hex(&data) != e.sha256 {
                return Err(Error::new(
                    ErrorKind::InvalidResponse,
                    "checksum mismatch: the backup object is damaged",
                )
                .with_context("key", e.key.clone()));
            }
            validate_format(specr.format, &data).map_err(|m| {
                Error::new(ErrorKind::InvalidResponse, m).with_context("key", e.key.clone())
            })?;
            let target = if single {
                stg.clone()
            } else {
                format!("{stg}/{}", e.key.rsplit('/').next().unwrap_or(&e.key))
            };
            hr.write_file(&target, data).await?;
            Ok(1u64)
        })
        .try_buffer_unordered(concurrency)
        .try_collect()
        .await?;
    // Validate the staged copy as the service will see it.
    let staged = if single {
        h.list_files(&staging, "*").await?
    } else {
        h.list_files(&staging, &spec.pattern).await?
    };
    if staged.len() as u64 != written.len() as u64 {
        return Err(Error::new(
            ErrorKind::Unexpected,
            format!(
                "staging {staging} holds {} files, {} were written",
                staged.len(),
                written.len()
            ),
        ));
    }
    let _ = stream::iter(staged.iter().cloned())
        .map(|p: String| async move {
            let b = hr.read_file(&p).await?;
            validate_format(specr.format, &b)
                .map_err(|m| Error::new(ErrorKind::InvalidResponse, format!("staged {p}: {m}")))
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    // The swap runs as its own task: a run stopped now (Ctrl-C, SIGTERM) does not cut it in
    // half; the undo waits for it and then knows exactly what to put back.
    set_phase(&phase, Phase::Swapping);
    let task = tokio::spawn(swap(h, paths, live_exists, phase));
    task.await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("swap task failed: {e}")))?
}

/// The paths of one dataset's restore.
#[derive(Debug, Clone)]
struct Paths {
    staging: String,
    live: String,
    kept: String,
}

/// How far a dataset's restore got: what its undo must put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Restored data only in the staging path (or not even that).
    Staging,
    /// The swap is running.
    Swapping,
    /// Exchanged: the live path holds the restored data, the staging path the previous data.
    Exchanged,
    /// Done: the previous data is kept under the kept path.
    Kept,
    /// Done, and there was no previous data: the staging path was renamed into place.
    Moved,
}

fn set_phase(phase: &std::sync::Mutex<Phase>, p: Phase) {
    *phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
}

fn get_phase(phase: &std::sync::Mutex<Phase>) -> Phase {
    *phase.lock().unwrap_or_else(|e| e.into_inner())
}

/// One atomic step: the live path is the old data or the new, never missing. The live path
/// may hold no matching file and still exist (all sessions lost, other files left): always try
/// the exchange first, and fall back to a rename only when there is nothing there.
async fn swap(
    h: Arc<dyn RemoteHost>,
    p: Paths,
    live_exists: bool,
    phase: Arc<std::sync::Mutex<Phase>>,
) -> Result<Option<String>> {
    match h.exchange(&p.staging, &p.live).await {
        Ok(()) => {
            set_phase(&phase, Phase::Exchanged);
            h.rename(&p.staging, &p.kept).await?;
            set_phase(&phase, Phase::Kept);
            Ok(Some(p.kept))
        }
        Err(e)
            if !live_exists
                && (e.kind() == ErrorKind::NotFound || e.to_string().contains("No such file")) =>
        {
            set_phase(&phase, Phase::Staging);
            h.rename(&p.staging, &p.live).await?;
            set_phase(&phase, Phase::Moved);
            Ok(None)
        }
        Err(e) => {
            set_phase(&phase, Phase::Staging);
            Err(e)
        }
    }
}

/// The undo of one dataset's restore, whatever point it reached: staging data removed, a swap
/// reverted (the restored data set aside, the previous data back in place).
fn undo_restore(
    dataset: &str,
    h: Arc<dyn RemoteHost>,
    p: Paths,
    phase: Arc<std::sync::Mutex<Phase>>,
) -> Undo {
    Undo::on_failure(format!("undo restore:{dataset}"), move || async move {
        // A swap in flight finishes first (it is a task of its own; the undo is bounded).
        while get_phase(&phase) == Phase::Swapping {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        match get_phase(&phase) {
            Phase::Staging | Phase::Swapping => remove_staging(h.as_ref(), &p.staging).await,
            Phase::Exchanged => {
                // The previous data is in the staging path: put it back, drop the restored.
                h.exchange(&p.live, &p.staging).await?;
                remove_staging(h.as_ref(), &p.staging).await
            }
            // The restored data goes aside under the kept name, the previous data back.
            Phase::Kept => h.exchange(&p.live, &p.kept).await,
            // Nothing was there before: the restored data is set aside, not deleted.
            Phase::Moved => {
                h.rename(&p.live, &p.staging.replace(".restore-", ".restored-"))
                    .await
            }
        }
    })
}

/// Remove a staging path and make sure it stays gone: writes of the interrupted run that were
/// already on their way to the host (a remote `mkdir -p && cat >`) may land just after.
async fn remove_staging(h: &dyn RemoteHost, staging: &str) -> Result<()> {
    for _ in 0..10 {
        h.remove_tree(staging).await?;
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        if !h.exists(staging).await? {
            return Ok(());
        }
    }
    Err(Error::new(
        ErrorKind::Unexpected,
        format!("{staging} keeps reappearing; remove it by hand"),
    ))
}

/// Options of `backup_recover` in the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverArgs {
    /// Exactly this day's backup.
    #[serde(with = "crate::runbook::registry::date")]
    pub date: Option<NaiveDate>,
    /// The latest complete backup on or before this day (default today).
    #[serde(with = "crate::runbook::registry::date")]
    pub before: Option<NaiveDate>,
    /// Host to restore on.
    pub host: Option<String>,
}

impl crate::runbook::registry::Validate for RecoverArgs {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.date.is_some() && self.before.is_some() {
            return Err("date and before exclude each other: give one".into());
        }
        Ok(())
    }
}

/// `backup_recover` in the catalogue.
pub static DEFINITION: crate::runbook::registry::Definition =
    crate::runbook::registry::Definition {
        name: "backup_recover",
        command: "backup recover",
        aliases: &["recover_data"],
        summary: "restore the live data from the latest complete backup (old data kept)",
        changes: true,
        steps: &[
            "recovery_point",
            "assess:<dataset>",
            "read_only_flag (always cleared)",
            "restore:<dataset> (stage, validate, swap)",
        ],
        options: &[
            crate::runbook::registry::OptionDoc {
                name: "date",
                kind: "YYYY-MM-DD",
                help: "use exactly this day's backup",
            },
            crate::runbook::registry::OptionDoc {
                name: "before",
                kind: "YYYY-MM-DD",
                help: "the latest complete backup on or before this day",
            },
            crate::runbook::registry::OptionDoc {
                name: "host",
                kind: "host name",
                help: "host to restore on",
            },
        ],
        defaults: crate::runbook::registry::defaults_of::<RecoverArgs>,
        check_options: crate::runbook::registry::check_args::<RecoverArgs>,
        example: "",
        start: |env, v, run| {
            Box::pin(async move {
                let a: RecoverArgs = crate::runbook::registry::parse_args("backup_recover", v)?;
                let point = match (a.date, a.before) {
                    (Some(d), _) => RecoveryPoint::Date(d),
                    (None, Some(b)) => RecoveryPoint::OnOrBefore(b),
                    (None, None) => RecoveryPoint::Latest,
                };
                let o = RecoverOptions {
                    point,
                    host: a.host,
                    run,
                };
                Ok(recover_data(env, &o).await)
            })
        },
    };
