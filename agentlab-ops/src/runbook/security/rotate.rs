//! `rotate_ssh_key`: replace the key the runner logs in to each host with, in an order that
//! keeps a working key at every step — generate, add, prove the new one logs in, remove the
//! old one, prove it is refused — over the open multiplexed connection, which stays the
//! break-glass path while the keys change. A host that fails a step gets its old key back and
//! loses the new one; no step ever leaves a host with neither.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::RemoteHost;
use crate::host::ssh_login::public_key_of;
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::security::authorized::{KeysFile, NewKey, generate};
use crate::security::fingerprint;

/// Options of `rotate_ssh_key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotateOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Where the new private keys go (default: beside each host's current key).
    pub key_dir: Option<String>,
    /// The `authorized_keys` file to edit on each host (relative: from the login's home).
    pub authorized_keys: String,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            hosts: Vec::new(),
            key_dir: None,
            authorized_keys: ".ssh/authorized_keys".into(),
        }
    }
}

impl Validate for RotateOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.authorized_keys.trim().is_empty() {
            return Err("authorized_keys: must not be empty".into());
        }
        Ok(())
    }
}

/// How one host's rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    /// The new key logs in, the old one is refused.
    Rotated,
    /// A step failed: the old key was put back and the new one removed.
    KeptOld,
    /// Dry-run: nothing changed.
    Planned,
}

/// One host's rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRotation {
    /// The host.
    pub host: String,
    /// How it ended.
    pub outcome: Rotation,
    /// The key it was reached with, and its fingerprint.
    pub old_identity: Option<String>,
    /// SHA-256 fingerprint of the old key.
    pub old_fingerprint: Option<String>,
    /// The new private key (on this machine).
    pub new_identity: Option<String>,
    /// SHA-256 fingerprint of the new key.
    pub new_fingerprint: Option<String>,
    /// The step that failed, and why.
    pub failed_step: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the undo put the host back as it was (old key in, new key out).
    pub restored: Option<bool>,
    /// The configuration change to make (`identity_file` of the host).
    pub config_change: Option<String>,
}

/// The payload of `rotate_ssh_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotatePayload {
    /// Every host.
    pub hosts: Vec<HostRotation>,
    /// Hosts rotated.
    pub rotated: usize,
    /// Hosts that kept their old key.
    pub kept_old: usize,
}

/// The old key of a host: its private file, public line and fingerprint.
struct OldKey {
    path: PathBuf,
    public: String,
    fingerprint: String,
}

async fn old_key(host: &dyn RemoteHost) -> Result<OldKey> {
    let path = host.identity_file().ok_or_else(|| {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "{}: no identity_file: set [[hosts]] identity_file (or [ssh] identity_file) to the key to rotate",
                host.name()
            ),
        )
    })?;
    let public = public_key_of(&path).await?;
    let fingerprint =
        fingerprint(&public).map_err(|e| Error::new(ErrorKind::InvalidResponse, e))?;
    Ok(OldKey {
        path,
        public,
        fingerprint,
    })
}

fn new_key_path(o: &RotateOptions, old: &Path, host: &str, run: &Run) -> PathBuf {
    let dir = o
        .key_dir
        .as_ref()
        .map(PathBuf::from)
        .or_else(|| old.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    dir.join(format!("{host}-ed25519-{}", run.run_id()))
}

/// Prove a login with `key` is accepted (`want` true) or refused (`want` false).
async fn prove(run: &Run, step: &str, host: &dyn RemoteHost, key: &Path, want: bool) -> Result<()> {
    let what = if want { "logs in" } else { "is refused" };
    let plan = format!("a fresh login with only {} {what}", key.display());
    if run.is_dry_run() {
        run.record(step, Action::Read, Outcome::Planned, plan);
        return Ok(());
    }
    let fut = async {
        let got = host.try_key_login(key).await?;
        if got != want {
            let msg = if want {
                format!(
                    "the new key {} was refused: it is not in the file sshd reads",
                    key.display()
                )
            } else {
                format!(
                    "the old key {} still logs in: it is authorized elsewhere than the file edited (another AuthorizedKeysFile, or a certificate)",
                    key.display()
                )
            };
            return Err(
                Error::new(ErrorKind::Conflict, msg).with_context("host", host.name().to_string())
            );
        }
        Ok(Checked::pass((), plan.clone()))
    };
    run.check(step, Some(std::time::Duration::from_secs(60)), fut)
        .await
}

/// What a host's rotation got to before it stopped.
#[derive(Default)]
struct Progress {
    old: Option<OldKey>,
    new: Option<(PathBuf, String)>,
    /// The step running or last run.
    step: String,
    /// Undos registered: `unkey` (the new key out), `rekey` (the old key back in).
    unkey: bool,
    rekey: bool,
}

async fn steps(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    o: &RotateOptions,
    p: &mut Progress,
) -> Result<()> {
    let host = h.host.as_ref();
    let name = h.config.name.as_str();
    let secs = |n| Some(std::time::Duration::from_secs(n));
    p.step = format!("identity:{name}");
    let old = run
        .check(&p.step, secs(30), async {
            let k = old_key(host).await?;
            let s = format!("{} ({})", k.path.display(), k.fingerprint);
            Ok(Checked::pass(k, s))
        })
        .await?;
    // Before anything changes: the old key must be in the file edited, or it cannot go.
    p.step = format!("locate_old:{name}");
    let (file, fp) = (o.authorized_keys.as_str(), old.fingerprint.as_str());
    run.check(&p.step, secs(30), async {
        let f = KeysFile { host, path: file };
        if !crate::security::authorized::has_key(&f.read().await?, fp) {
            let m = format!("the old key {fp} is not in {file}: it is authorized elsewhere, so it cannot be removed here");
            return Err(Error::new(ErrorKind::NotFound, m));
        }
        Ok(Checked::pass((), format!("{fp} is in {file}")))
    })
    .await?;
    let new_path = new_key_path(o, &old.path, name, run);
    let day = env.clock.now().format("%Y-%m-%d");
    let comment = format!("rotate_ssh_key:{}:{day}", run.run_id());
    let plan = format!(
        "ssh-keygen -t ed25519 -a 100 -C {comment} -f {}",
        new_path.display()
    );
    p.step = format!("generate:{name}");
    let keygen = async { generate(&new_path, &comment).await };
    let generated = run.change_live(&p.step, plan, keygen, None).await;
    let old_path = old.path.clone();
    p.old = Some(old);
    let Some(new) = generated? else {
        return plan_rest(run, name, o, &new_path, &old_path).await;
    };
    p.new = Some((new_path.clone(), new.fingerprint.clone()));
    swap(run, h, o, p, &new, &new_path).await
}

/// Add the new key, prove it, remove the old one, prove it refused — each change with its
/// undo registered first.
async fn swap(
    run: &Run,
    h: &HostEntry,
    o: &RotateOptions,
    p: &mut Progress,
    new: &NewKey,
    new_path: &Path,
) -> Result<()> {
    let (host, name, file) = (&h.host, h.config.name.as_str(), o.authorized_keys.as_str());
    let Some(old) = &p.old else {
        return Err(Error::new(ErrorKind::Unexpected, "no old key"));
    };
    let (old_path, old_fp, old_line) = (
        old.path.clone(),
        old.fingerprint.clone(),
        old.public.clone(),
    );
    // Undos run newest first: the old key back in, then the new key out — and the new key
    // goes only once the old one is proven to log in again.
    let unkey = unkey_undo(
        host.clone(),
        name,
        file,
        &new.fingerprint,
        new_path,
        &old_path,
    );
    let suffix = format!("agentlab-{}", run.run_id());
    let add = async {
        let f = KeysFile {
            host: host.as_ref(),
            path: file,
        };
        f.keep_copy(&suffix).await?;
        f.add(&new.public).await
    };
    p.step = format!("add:{name}");
    p.unkey = true;
    let plan = format!("add {} to {file}", new.fingerprint);
    run.change(&p.step, plan, add, Some(unkey)).await?;
    p.step = format!("prove_new:{name}");
    prove(run, &p.step, host.as_ref(), new_path, true).await?;
    let (h3, f3) = (host.clone(), file.to_string());
    let rekey = Undo::always(format!("rekey:{name}"), move || async move {
        let f = KeysFile {
            host: h3.as_ref(),
            path: &f3,
        };
        f.add(&old_line).await.map(|_| ())
    });
    let remove = async {
        KeysFile {
            host: host.as_ref(),
            path: file,
        }
        .remove(&old_fp)
        .await
    };
    p.step = format!("remove_old:{name}");
    p.rekey = true;
    let plan = format!("remove {old_fp} from {file}");
    run.change(&p.step, plan, remove, Some(rekey)).await?;
    p.step = format!("prove_old_refused:{name}");
    prove(run, &p.step, host.as_ref(), &old_path, false).await
}

/// Take the new key out again and delete it here, once the old key is proven to log in: a
/// host is never left without a working key, even when putting the old one back failed.
fn unkey_undo(
    host: Arc<dyn RemoteHost>,
    name: &str,
    file: &str,
    new_fp: &str,
    new: &Path,
    old: &Path,
) -> Undo {
    let (file, fp, new, old) = (
        file.to_string(),
        new_fp.to_string(),
        new.to_path_buf(),
        old.to_path_buf(),
    );
    Undo::always(format!("unkey:{name}"), move || async move {
        let f = KeysFile {
            host: host.as_ref(),
            path: &file,
        };
        if crate::security::authorized::has_key(&f.read().await?, &fp) {
            if !host.try_key_login(&old).await? {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("the old key {} is refused, so the new key {} stays in {file} as the working key", old.display(), new.display()),
                )
                .with_context("host", host.name().to_string()));
            }
            f.remove(&fp).await?;
        }
        let _ = tokio::fs::remove_file(&new).await;
        let mut public = new.into_os_string();
        public.push(".pub");
        let _ = tokio::fs::remove_file(public).await;
        Ok(())
    })
}

/// Under dry-run: the steps after `generate`, planned.
async fn plan_rest(run: &Run, name: &str, o: &RotateOptions, new: &Path, old: &Path) -> Result<()> {
    let f = &o.authorized_keys;
    run.change(
        &format!("add:{name}"),
        format!("add the new key to {f} (a copy of {f} kept first)"),
        async { Ok(()) },
        None,
    )
    .await?;
    prove(run, &format!("prove_new:{name}"), &NoHost, new, true).await?;
    run.change(
        &format!("remove_old:{name}"),
        format!("remove the old key from {f}"),
        async { Ok(()) },
        None,
    )
    .await?;
    prove(
        run,
        &format!("prove_old_refused:{name}"),
        &NoHost,
        old,
        false,
    )
    .await
}

/// Stands for the host in planned steps, which never call it.
#[derive(Debug)]
struct NoHost;

#[async_trait::async_trait]
impl RemoteHost for NoHost {
    fn name(&self) -> &str {
        "planned"
    }
    fn address(&self) -> String {
        "planned".into()
    }
    async fn run(&self, _: &crate::host::Cmd) -> Result<crate::host::CmdOutput> {
        Err(Error::new(ErrorKind::Unsupported, "planned"))
    }
    async fn read_file(&self, _: &str) -> Result<bytes::Bytes> {
        Err(Error::new(ErrorKind::Unsupported, "planned"))
    }
    async fn write_file(&self, _: &str, _: bytes::Bytes) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported, "planned"))
    }
}

async fn rotate_host(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    o: &RotateOptions,
) -> HostRotation {
    let name = h.config.name.clone();
    let mut p = Progress::default();
    let result = steps(env, run, h, o, &mut p).await;
    let mut out = HostRotation {
        host: name.clone(),
        outcome: Rotation::Rotated,
        old_identity: p.old.as_ref().map(|k| k.path.display().to_string()),
        old_fingerprint: p.old.as_ref().map(|k| k.fingerprint.clone()),
        new_identity: p.new.as_ref().map(|k| k.0.display().to_string()),
        new_fingerprint: p.new.as_ref().map(|k| k.1.clone()),
        failed_step: None,
        error: None,
        restored: None,
        config_change: None,
    };
    match result {
        Ok(()) if run.is_dry_run() => out.outcome = Rotation::Planned,
        Ok(()) => {
            run.forget(&format!("rekey:{name}"));
            run.forget(&format!("unkey:{name}"));
            let change = format!(
                "[[hosts]] name = {name:?}: identity_file = {:?}",
                out.new_identity.clone().unwrap_or_default()
            );
            run.record(
                &format!("switch:{name}"),
                Action::Read,
                Outcome::Pass,
                format!("set {change} (the old key is refused now)"),
            );
            out.config_change = Some(change);
        }
        Err(e) => {
            let rekey = run.settle(&format!("rekey:{name}")).await;
            let unkey = run.settle(&format!("unkey:{name}")).await;
            out.outcome = Rotation::KeptOld;
            out.failed_step = Some(p.step.clone());
            out.error = Some(e.to_string());
            out.restored = Some((!p.rekey || rekey) && (!p.unkey || unkey));
            let (criterion, message) = if out.restored == Some(true) {
                ("rotation_failed", format!("{name} keeps its old key: {e}"))
            } else {
                (
                    "rotation_undo_failed",
                    format!(
                        "{name}: {e}; putting the old key back did not finish — the host is reachable with the key named in the undo's error"
                    ),
                )
            };
            run.escalate(
                criterion,
                name.clone(),
                out.failed_step.clone().unwrap_or_default(),
                "every step passes",
                message,
            );
        }
    }
    out
}

/// Rotate the SSH key of every host (or `o.hosts`).
pub async fn rotate_ssh_key(env: &Environment, o: &RotateOptions, ro: &RunOptions) -> Report {
    env.execute("rotate_ssh_key", ro, |run| async move {
        let hosts = super::pick(env, &o.hosts)?;
        let per = env.config.fleet.concurrency.max(1);
        let futs: Vec<_> = hosts.iter().map(|h| rotate_host(env, &run, h, o)).collect();
        let done: Vec<HostRotation> = futures::stream::iter(futs).buffered(per).collect().await;
        let count = |r: Rotation| done.iter().filter(|h| h.outcome == r).count();
        let out = RotatePayload {
            rotated: count(Rotation::Rotated),
            kept_old: count(Rotation::KeptOld),
            hosts: done,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
