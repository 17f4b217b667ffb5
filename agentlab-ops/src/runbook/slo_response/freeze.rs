//! The deploy freeze: one JSON record, kept at `[slo_response] freeze_flag` on every host, that
//! says how far deployments are frozen, since when, by which run, and exactly what the SLO
//! response changed (the workflows it disabled, the page it opened) so that resuming undoes
//! those and nothing else. The deploy runbooks' `deploy_freeze` gate reads it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::config::fill_host;
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::RemoteHost;

/// How far deployments are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeLevel {
    /// Yellow: non-critical deployments paused; a `critical` release passes.
    NonCritical,
    /// Red: every deployment frozen.
    All,
}

impl FreezeLevel {
    /// `non_critical` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeLevel::NonCritical => "non_critical",
            FreezeLevel::All => "all",
        }
    }
}

/// The freeze record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freeze {
    /// How far.
    pub level: FreezeLevel,
    /// The run that set it first.
    pub run_id: String,
    /// When it was set first.
    pub since: DateTime<Utc>,
    /// Why (the SLOs and their zones at the last change).
    pub reason: String,
    /// The workflows the SLO response disabled (and only those: one that was already disabled
    /// is not listed, so resuming leaves it disabled).
    #[serde(default)]
    pub disabled: Vec<String>,
    /// The open page's `dedup_key`.
    #[serde(default)]
    pub page: Option<String>,
    /// The highest level stakeholders were told of.
    #[serde(default)]
    pub notified: Option<FreezeLevel>,
}

/// Where the record lives: the freeze flag on every host. Cheap to clone, so an undo can
/// own one.
#[derive(Debug, Clone)]
pub struct FreezeStore {
    hosts: Vec<(String, String, Arc<dyn RemoteHost>)>,
}

impl FreezeStore {
    /// The freeze flag of every host of `env`.
    pub fn of(env: &Environment) -> Result<FreezeStore> {
        if env.hosts.is_empty() {
            return Err(Error::config(
                "the deploy freeze is kept on the hosts: configure [[hosts]]",
            )
            .with_operation("freeze.read"));
        }
        let flag = &env.config.slo_response.freeze_flag;
        let hosts = env
            .hosts
            .iter()
            .map(|h| {
                (
                    h.config.name.clone(),
                    fill_host(flag, &h.config),
                    h.host.clone(),
                )
            })
            .collect();
        Ok(FreezeStore { hosts })
    }

    /// `web-1:/app/DEPLOY_FREEZE` of the first host.
    pub fn describe(&self) -> String {
        let (n, p, _) = &self.hosts[0];
        let more = self.hosts.len() - 1;
        if more == 0 {
            format!("{n}:{p}")
        } else {
            format!("{n}:{p} and {more} more hosts")
        }
    }

    /// The freeze in force: the record of the first host that has one (they are written to
    /// every host together); `None` when no host has one. A host that cannot be read, or a
    /// record that is not one, is an error naming the host and the path, never "not frozen".
    pub async fn read(&self) -> Result<Option<Freeze>> {
        let reads = join_all(self.hosts.iter().map(|(_, p, h)| h.read_file(p))).await;
        let mut found = None;
        for ((name, path, _), r) in self.hosts.iter().zip(reads) {
            match r {
                Ok(bytes) if found.is_none() => {
                    let f: Freeze = serde_json::from_slice(&bytes).map_err(|e| {
                        Error::new(
                            ErrorKind::InvalidResponse,
                            format!("{name}:{path}: not a deploy freeze record: {e}"),
                        )
                        .with_operation("freeze.read")
                        .with_context("host", name.clone())
                    })?;
                    found = Some(f);
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e
                        .with_operation("freeze.read")
                        .with_context("host", name.clone())
                        .with_context("path", path.clone()));
                }
            }
        }
        Ok(found)
    }

    /// Write the record to every host (each write is atomic on the host).
    pub async fn write(&self, f: &Freeze) -> Result<()> {
        let body = bytes::Bytes::from(serde_json::to_vec_pretty(f).unwrap_or_default());
        let writes = self.hosts.iter().map(|(name, path, h)| {
            let body = body.clone();
            async move {
                h.write_file(path, body)
                    .await
                    .map_err(|e| e.with_context("host", name.clone()))
            }
        });
        first_error(join_all(writes).await, "freeze.write")
    }

    /// Remove the record from every host (absent is fine).
    pub async fn clear(&self) -> Result<()> {
        let removes = self.hosts.iter().map(|(name, path, h)| async move {
            match h.delete_file(path).await {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(e.with_context("host", name.clone()))
                }
                _ => Ok(()),
            }
        });
        first_error(join_all(removes).await, "freeze.clear")
    }

    /// Put back `previous` (the record before a change), or remove it if there was none.
    pub async fn restore(&self, previous: Option<&Freeze>) -> Result<()> {
        match previous {
            Some(f) => self.write(f).await,
            None => self.clear().await,
        }
    }
}

fn first_error(results: Vec<Result<()>>, op: &'static str) -> Result<()> {
    results
        .into_iter()
        .find(|r| r.is_err())
        .unwrap_or(Ok(()))
        .map_err(|e| e.with_operation(op))
}
