//! The backup the spec's **Backup Verification** runbook verifies (verification itself:
//! [`crate::runbook::verify`]).
//!
//! [`take_backup`] copies each dataset from a host to the store under `<dataset>/<YYYYMMDD>/`,
//! with bounded concurrency, then writes the manifest (every key, size and SHA-256) last. The
//! format checks shared with verification and recovery are here ([`validate_format`]).

use std::sync::Arc;

use chrono::NaiveDate;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::backup::manifest::{self, ManifestEntry, ManifestHeader, manifest_key, sha256_hex};
use crate::backup::{BackupStore, day_prefix};
use crate::config::{DataFormat, DatasetConfig};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::host::RemoteHost;
use crate::report::{Outcome, Report, Severity};
use crate::runbook::run::{Checked, RunOptions};

pub use crate::config::Sample;
pub use crate::runbook::run::Progress;
pub use crate::runbook::verify::{
    DatasetVerification, LevelResult, VERIFY, VerifyArgs, VerifyOptions, VerifyPayload,
    verify_backups,
};

/// Options of [`take_backup`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TakeOptions {
    /// Date of the backup (default: today, UTC).
    pub date: Option<NaiveDate>,
    /// Host to read from (default: `[backups] source_host`, else the first host).
    pub host: Option<String>,
    /// Run options.
    pub run: RunOptions,
}

impl TakeOptions {
    /// Back up as of this date.
    pub fn date(mut self, d: NaiveDate) -> Self {
        self.date = Some(d);
        self
    }
    /// Read from this host.
    pub fn host(mut self, h: impl Into<String>) -> Self {
        self.host = Some(h.into());
        self
    }
    /// Set run options.
    pub fn run(mut self, r: RunOptions) -> Self {
        self.run = r;
        self
    }
}

/// The payload of `backup_take`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakePayload {
    /// The day, `YYYYMMDD`.
    pub date: String,
    /// The store written to.
    pub store: String,
    /// Per dataset.
    pub datasets: Vec<TakenDataset>,
}

/// One dataset's backup, as taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakenDataset {
    /// Dataset.
    pub dataset: String,
    /// Objects written.
    pub objects: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The manifest's key.
    pub manifest: String,
}

pub(crate) fn store_of(env: &Environment) -> Result<Arc<dyn BackupStore>> {
    env.backups
        .clone()
        .ok_or_else(|| Error::config("no [backups] configured").with_operation("backup"))
}

pub(crate) fn specs(env: &Environment) -> Result<Vec<DatasetConfig>> {
    match &env.config.backups {
        None => Err(Error::config("no [backups] configured").with_operation("backup")),
        Some(b) => b
            .dataset_specs()
            .map_err(|m| Error::config(format!("backups.datasets: {m}"))),
    }
}

pub(crate) fn concurrency(env: &Environment) -> usize {
    env.config
        .backups
        .as_ref()
        .map_or(16, |b| b.concurrency.max(1))
}

/// Copy every dataset from a host into the store, manifest last.
pub async fn take_backup(env: &Environment, opts: &TakeOptions) -> Report {
    let date = opts.date.unwrap_or_else(|| chrono::Utc::now().date_naive());
    env.execute("backup_take", &opts.run, |run| async move {
        let store = store_of(env)?;
        let specs = specs(env)?;
        let cfg = env
            .config
            .backups
            .as_ref()
            .ok_or_else(|| Error::config("no [backups]"))?;
        let wanted = opts.host.clone().or_else(|| cfg.source_host.clone());
        let host = env.host_or_first(wanted.as_deref(), "backups.source_host")?;
        let mut taken = Vec::new();
        for spec in &specs {
            let path = if spec.path.starts_with('/') {
                spec.path.clone()
            } else {
                format!("{}/{}", cfg.data_dir.trim_end_matches('/'), spec.path)
            };
            let files = run
                .check(&format!("list:{}", spec.name), None, async {
                    let f = host.host.list_files(&path, &spec.pattern).await?;
                    let n = f.len();
                    Ok(Checked::with(
                        f,
                        if n == 0 { Outcome::Warn } else { Outcome::Pass },
                        format!("{n} files in {}:{path}", host.config.name),
                    ))
                })
                .await?;
            if files.is_empty() {
                run.finding(
                    Severity::Warning,
                    spec.name.clone(),
                    format!("no files match {path}/{}", spec.pattern),
                );
            }
            let prefix = day_prefix(&spec.name, date);
            let plan = format!(
                "copy {} files from {}:{path} to {}{prefix}, then write the manifest",
                files.len(),
                host.config.name,
                store.describe()
            );
            let source = format!("{}:{path}", host.config.name);
            let r = run
                .change(
                    &format!("backup:{}", spec.name),
                    plan,
                    copy_dataset(
                        host.host.as_ref(),
                        store.as_ref(),
                        spec,
                        &files,
                        &prefix,
                        &source,
                        date,
                        concurrency(env),
                    ),
                    None,
                )
                .await?;
            if let Some(t) = r {
                taken.push(t);
            }
        }
        let p = TakePayload {
            date: date.format("%Y%m%d").to_string(),
            store: store.describe(),
            datasets: taken,
        };
        Ok(serde_json::to_value(p).unwrap_or_default())
    })
    .await
}

#[allow(clippy::too_many_arguments)]
async fn copy_dataset(
    host: &dyn RemoteHost,
    store: &dyn BackupStore,
    spec: &DatasetConfig,
    files: &[String],
    prefix: &str,
    source: &str,
    date: NaiveDate,
    concurrency: usize,
) -> Result<TakenDataset> {
    // Owned items (not `&String`): a closure over borrowed items makes the runbook's future
    // not `Send` for every lifetime, and then it cannot be spawned.
    let mut entries: Vec<ManifestEntry> = stream::iter(files.iter().cloned())
        .map(|path: String| async move {
            let data = host.read_file(&path).await?;
            let name = path.rsplit('/').next().unwrap_or(&path);
            let key = format!("{prefix}{name}");
            let entry = ManifestEntry {
                key: key.clone(),
                size: data.len() as u64,
                sha256: sha256_hex(&data),
            };
            store.put(&key, data).await?;
            Ok::<_, Error>(entry)
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let header = ManifestHeader {
        manifest_version: 1,
        dataset: spec.name.clone(),
        date: date.format("%Y%m%d").to_string(),
        created_at: chrono::Utc::now(),
        source: source.to_string(),
        count: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size).sum(),
    };
    let key = manifest_key(&spec.name, date);
    store
        .put(&key, manifest::render(&header, &mut entries))
        .await?;
    Ok(TakenDataset {
        dataset: spec.name.clone(),
        objects: header.count,
        bytes: header.bytes,
        manifest: key,
    })
}

/// Why an object's content is wrong, if it is.
pub fn validate_format(format: DataFormat, data: &[u8]) -> std::result::Result<(), String> {
    match format {
        DataFormat::Any => Ok(()),
        DataFormat::Json => serde_json::from_slice::<serde::de::IgnoredAny>(data)
            .map(|_| ())
            .map_err(|e| format!("invalid JSON: {e}")),
        DataFormat::Csv => validate_csv(data),
    }
}

/// A header, then every row with as many columns (quotes understood).
fn validate_csv(data: &[u8]) -> std::result::Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("CSV is not UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Err("CSV is empty".into());
    }
    let (mut cols, mut in_quotes, mut row, mut header_cols) = (1usize, false, 1usize, None);
    let mut chars = text.chars().peekable();
    let mut line_has_content = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => cols += 1,
            '\n' if !in_quotes => {
                if line_has_content {
                    match header_cols {
                        None => header_cols = Some(cols),
                        Some(h) if h != cols => {
                            return Err(format!(
                                "row {row} has {cols} columns, the header has {h}"
                            ));
                        }
                        _ => {}
                    }
                }
                row += 1;
                cols = 1;
                line_has_content = false;
            }
            '\r' if !in_quotes => {}
            _ => line_has_content = true,
        }
        if c == ',' || c == '"' {
            line_has_content = true;
        }
    }
    if in_quotes {
        return Err("unterminated quoted field at the end (truncated?)".into());
    }
    if line_has_content {
        if let Some(h) = header_cols {
            if h != cols {
                return Err(format!(
                    "row {row} has {cols} columns, the header has {h} (truncated?)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse() {
        assert_eq!(Sample::parse("all").unwrap(), Sample::All);
        assert_eq!(Sample::parse("25").unwrap(), Sample::Count(25));
        assert_eq!(Sample::parse("10%").unwrap(), Sample::Fraction(0.1));
        assert!(Sample::parse("lots").is_err());
        assert!(Sample::parse("150%").is_err());
    }

    #[test]
    fn formats() {
        assert!(validate_format(DataFormat::Json, br#"{"a": [1, 2]}"#).is_ok());
        assert!(
            validate_format(DataFormat::Json, br#"{"a": [1, 2"#)
                .unwrap_err()
                .contains("invalid JSON")
        );
        assert!(validate_format(DataFormat::Csv, b"a,b,c\n1,2,3\n\"x,y\",2,3\n").is_ok());
        assert!(
            validate_format(DataFormat::Csv, b"a,b,c\n1,2\n")
                .unwrap_err()
                .contains("row 2 has 2 columns")
        );
        assert!(validate_format(DataFormat::Csv, b"a,b\n1,\"unterminated\n").is_err());
        assert!(validate_format(DataFormat::Any, b"\xff").is_ok());
    }
}

/// Options of `backup_take` in the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TakeArgs {
    /// Date of the backup (default today, UTC).
    #[serde(with = "crate::runbook::registry::date")]
    pub date: Option<NaiveDate>,
    /// Host to read from.
    pub host: Option<String>,
}

impl crate::runbook::registry::Validate for TakeArgs {}

/// `backup_take` in the catalogue.
pub static TAKE: crate::runbook::registry::Definition = crate::runbook::registry::Definition {
    name: "backup_take",
    command: "backup take",
    aliases: &["take_backup"],
    summary: "copy every dataset from a host into the backup store, manifest last",
    changes: true,
    steps: &["copy:<dataset> (objects, then MANIFEST.jsonl)"],
    options: &[
        crate::runbook::registry::OptionDoc {
            name: "date",
            kind: "YYYY-MM-DD",
            help: "date of the backup (default today, UTC)",
        },
        crate::runbook::registry::OptionDoc {
            name: "host",
            kind: "host name",
            help: "host to read from (default [backups] source_host, else the first)",
        },
    ],
    defaults: crate::runbook::registry::defaults_of::<TakeArgs>,
    check_options: crate::runbook::registry::check_args::<TakeArgs>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let a: TakeArgs = crate::runbook::registry::parse_args("backup_take", v)?;
            let o = TakeOptions {
                date: a.date,
                host: a.host,
                run,
            };
            Ok(take_backup(env, &o).await)
        })
    },
};
