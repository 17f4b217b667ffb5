//! `incident_evidence`: preserve what each host shows now, in RFC 3227's order — the volatile
//! state first (sessions, processes, network connections), then the logs — each item copied
//! into the evidence store under `evidence/<incident>/<run id>/` with a manifest of SHA-256,
//! size, source host and path, collection time and collector; the manifest's own SHA-256
//! goes into the report and so the journal. Nothing is ever overwritten: each collection is a
//! new set, and the filesystem store leaves every object read-only.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup::BackupStore;
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::Cmd;
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Run, RunOptions};

/// Options of `incident_evidence`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceOptions {
    /// The incident (`INC-42`): the store prefix and the snapshots' tag. Empty: collect now,
    /// name later — `incident-<run id>`.
    pub incident: String,
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Logs to preserve (default: `[access] auth_logs` and the syslog files); absent ones are
    /// listed as absent.
    pub logs: Vec<String>,
    /// Also snapshot the instances' volumes (`[compute]`, when configured; default true).
    pub snapshot: Option<bool>,
}

impl Validate for EvidenceOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.incident.is_empty() {
            return Ok(());
        }
        if !self.incident.chars().all(ok) || self.incident.starts_with('.') {
            return Err(format!(
                "incident: {:?}: letters, digits, '-', '_' and '.' only",
                self.incident
            ));
        }
        Ok(())
    }
}

/// One preserved item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceItem {
    /// The host it came from.
    pub host: String,
    /// `volatile` (a command's output) or `log` (a file).
    pub kind: String,
    /// The command line or the path.
    pub source: String,
    /// Where it is in the store (None when it could not be taken).
    pub key: Option<String>,
    /// SHA-256 of the bytes stored.
    pub sha256: Option<String>,
    /// Bytes stored.
    pub size: u64,
    /// When it was taken.
    pub collected_at: DateTime<Utc>,
    /// Why it is missing (`absent`, or the error).
    pub missing: Option<String>,
}

/// The manifest of one collection, stored beside the items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceManifest {
    /// The incident.
    pub incident: String,
    /// This collection (the run id).
    pub collection: String,
    /// Who collected: `user@machine agentlab-ops <version>`.
    pub collector: String,
    /// When the collection started.
    pub started_at: DateTime<Utc>,
    /// Every item, in the order taken.
    pub items: Vec<EvidenceItem>,
}

/// The payload of `incident_evidence`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidencePayload {
    /// The store prefix of this collection.
    pub prefix: String,
    /// The manifest's key.
    pub manifest_key: Option<String>,
    /// SHA-256 of the manifest as stored.
    pub manifest_sha256: Option<String>,
    /// The manifest.
    pub manifest: EvidenceManifest,
    /// Snapshots taken (the `snapshot` runbook's payload per instance).
    pub snapshots: Vec<serde_json::Value>,
}

/// The volatile state, most volatile first (RFC 3227 §2.1): `(file name, argv)`.
const VOLATILE: &[(&str, &[&str])] = &[
    ("sessions.txt", &["who", "-u"]),
    (
        "processes.txt",
        &["ps", "-eo", "pid,ppid,user,lstart,etime,stat,args", "ww"],
    ),
    ("network.txt", &["ss", "-tanup"]),
];

const SYSLOGS: &[&str] = &["/var/log/syslog", "/var/log/messages"];

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn collector() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!(
        "{user}@{machine} agentlab-ops {}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The name a log gets in the store: its path with `/` as `_`.
fn log_name(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "_")
}

struct Collect<'a> {
    env: &'a Environment,
    run: &'a Run,
    store: Option<&'a dyn BackupStore>,
    prefix: String,
}

impl Collect<'_> {
    /// Store one item (never over an existing object) and describe it.
    async fn keep(
        &self,
        h: &str,
        kind: &str,
        source: String,
        name: &str,
        data: Result<Option<Bytes>>,
    ) -> EvidenceItem {
        let mut item = EvidenceItem {
            host: h.to_string(),
            kind: kind.into(),
            source,
            key: None,
            sha256: None,
            size: 0,
            collected_at: self.env.clock.now(),
            missing: None,
        };
        let data = match data {
            Ok(Some(d)) => d,
            Ok(None) => {
                item.missing = Some("absent".into());
                return item;
            }
            Err(e) => {
                item.missing = Some(e.to_string());
                return item;
            }
        };
        let key = format!("{}/{h}/{name}", self.prefix);
        let step = format!("{kind}:{h}:{name}");
        let plan = format!("{} ({} bytes) → {key}", item.source, data.len());
        let (sha, size) = (hex(&data), data.len() as u64);
        let put = async {
            match self.store {
                Some(s) => s.put_new(&key, data).await,
                None => Err(Error::config(
                    "incident_evidence: no [backups] store to keep evidence in",
                )),
            }
        };
        match self.run.change(&step, plan, put, None).await {
            Ok(Some(())) => {
                item.key = Some(key);
                item.sha256 = Some(sha);
                item.size = size;
            }
            Ok(None) => item.missing = Some("planned (dry-run)".into()),
            Err(e) => item.missing = Some(e.to_string()),
        }
        item
    }

    async fn host(&self, h: &HostEntry, logs: &[String]) -> Vec<EvidenceItem> {
        let name = h.config.name.as_str();
        let host = h.host.as_ref();
        let mut out = Vec::new();
        for (file, argv) in VOLATILE {
            let cmd = Cmd::new(argv[0])
                .args(argv[1..].iter().copied())
                .timeout(std::time::Duration::from_secs(30));
            let data = match host.run(&cmd).await {
                Ok(o) if o.success() => Ok(Some(Bytes::from(o.stdout))),
                Ok(o) => Err(Error::new(
                    ErrorKind::Unexpected,
                    format!(
                        "{} exited {:?}: {}",
                        argv.join(" "),
                        o.status,
                        o.stderr.trim()
                    ),
                )),
                Err(e) => Err(e),
            };
            out.push(
                self.keep(name, "volatile", argv.join(" "), file, data)
                    .await,
            );
        }
        for path in logs {
            let data = match host.read_file(path).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            };
            out.push(
                self.keep(name, "log", path.clone(), &log_name(path), data)
                    .await,
            );
        }
        out
    }
}

async fn store_manifest(
    run: &Run,
    store: Option<&dyn BackupStore>,
    prefix: &str,
    m: &EvidenceManifest,
) -> Result<Option<(String, String)>> {
    let body = Bytes::from(serde_json::to_vec_pretty(m).unwrap_or_default());
    let key = format!("{prefix}/manifest.json");
    let sha = hex(&body);
    let plan = format!("{} items, sha256 {sha} → {key}", m.items.len());
    let put = async {
        match store {
            Some(s) => s.put_new(&key, body).await,
            None => Err(Error::config(
                "incident_evidence: no [backups] store to keep evidence in",
            )),
        }
    };
    Ok(run
        .change("manifest", plan, put, None)
        .await?
        .map(|()| (key, sha)))
}

/// Preserve the evidence of `o.incident` from every host (or `o.hosts`).
pub async fn incident_evidence(env: &Environment, o: &EvidenceOptions, ro: &RunOptions) -> Report {
    env.execute("incident_evidence", ro, |run| async move {
        o.validate()
            .map_err(|e| Error::config(format!("incident_evidence: {e}")))?;
        let hosts = super::pick(env, &o.hosts)?;
        let mut o = o.clone();
        if o.incident.is_empty() {
            o.incident = format!("incident-{}", run.run_id());
        }
        let o = &o;
        let store = env.store().ok();
        let prefix = format!("evidence/{}/{}", o.incident, run.run_id());
        let logs: Vec<String> = if o.logs.is_empty() {
            let mut l = env.config.access.auth_logs.clone();
            l.extend(SYSLOGS.iter().map(|s| s.to_string()));
            l
        } else {
            o.logs.clone()
        };
        let c = Collect {
            env,
            run: &run,
            store: store.as_deref(),
            prefix: prefix.clone(),
        };
        let mut manifest = EvidenceManifest {
            incident: o.incident.clone(),
            collection: run.run_id().to_string(),
            collector: collector(),
            started_at: env.clock.now(),
            items: Vec::new(),
        };
        for h in &hosts {
            manifest.items.extend(c.host(h, &logs).await);
        }
        let snapshots = snapshots(env, &run, o, &hosts).await;
        let stored = store_manifest(&run, store.as_deref(), &prefix, &manifest).await?;
        let failed: Vec<&EvidenceItem> = manifest
            .items
            .iter()
            .filter(|i| {
                i.missing
                    .as_deref()
                    .is_some_and(|m| m != "absent" && !m.starts_with("planned"))
            })
            .collect();
        if !failed.is_empty() {
            let what: Vec<String> = failed
                .iter()
                .map(|i| format!("{}:{}", i.host, i.source))
                .collect();
            run.escalate(
                "evidence_incomplete",
                o.incident.clone(),
                what.join(", "),
                "every item preserved",
                format!("{} items could not be preserved", failed.len()),
            );
        }
        let out = EvidencePayload {
            prefix,
            manifest_key: stored.as_ref().map(|s| s.0.clone()),
            manifest_sha256: stored.map(|s| s.1),
            manifest,
            snapshots,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

/// The instances' volumes, tagged with the incident (when `[compute]` is configured).
async fn snapshots(
    env: &Environment,
    run: &Run,
    o: &EvidenceOptions,
    hosts: &[&HostEntry],
) -> Vec<serde_json::Value> {
    if o.snapshot == Some(false) {
        return Vec::new();
    }
    let Some(c) = env.compute.clone() else {
        let why = "no [compute] configured: no instance snapshots";
        run.record("snapshot", Action::Read, Outcome::Skipped, why);
        return Vec::new();
    };
    let mut out = Vec::new();
    for h in hosts {
        let name = &h.config.name;
        if crate::runbook::scale::resolve(env, name).is_err() {
            run.record(
                &format!("snapshot:{name}"),
                Action::Read,
                Outcome::Skipped,
                "not an instance of [compute] instances",
            );
            continue;
        }
        let so = crate::runbook::scale::SnapshotOptions {
            instances: vec![name.clone()],
            incident: Some(o.incident.clone()),
            wait: false,
        };
        match crate::runbook::scale::snapshot_one(env, run, c.as_ref(), &so, name).await {
            Ok(s) => out.push(serde_json::to_value(s).unwrap_or_default()),
            Err(e) => run.escalate(
                "evidence_incomplete",
                name.clone(),
                e.to_string(),
                "a snapshot of every volume",
                format!("{name}: no snapshot: {e}"),
            ),
        }
    }
    out
}
