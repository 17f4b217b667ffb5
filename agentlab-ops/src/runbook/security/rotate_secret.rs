//! `rotate_secret`: the spec's "update secrets, follow secret rotation procedures", in the
//! order that never leaves the service without a working credential — check the value in use
//! works, issue a new one, prove it works, keep it (`output`) and put it in place (`install`),
//! and only then revoke the old one and prove it refused. Before the new value is in place,
//! any failure (or Ctrl-C) revokes the new value and puts the old one back; after it, nothing
//! is undone (both values work until the revoke), and a revoke that did not take is escalated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Hook, SecretRotation};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Outcome, Report};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::secret::Secret;
use crate::security::hooks::{HookInput, HookRunner, Verdict, fingerprint, issued, pointer};

/// Options of `rotate_secret`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotateSecretOptions {
    /// Only these `[[secrets]]` (default: every one).
    pub secrets: Vec<String>,
}

impl Validate for RotateSecretOptions {}

/// How one secret's rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOutcome {
    /// The new value is in place and works; the old one is refused.
    Rotated,
    /// The new value is in place and works, but the old one still works too (revoke failed).
    OldStillValid,
    /// A step failed before the new value was in place: the old one stays, the new one was
    /// revoked.
    KeptOld,
    /// Dry-run.
    Planned,
}

/// One secret's rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretResult {
    /// `[[secrets]] name`.
    pub name: String,
    /// How it ended.
    pub outcome: SecretOutcome,
    /// `sha256:` prefix of the old value (never the value).
    pub old_fingerprint: Option<String>,
    /// `sha256:` prefix of the new value.
    pub new_fingerprint: Option<String>,
    /// The step that failed.
    pub failed_step: Option<String>,
    /// Why.
    pub error: Option<String>,
    /// Whether the undo finished (the new value revoked, the old one back in place).
    pub restored: Option<bool>,
}

/// The payload of `rotate_secret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotateSecretPayload {
    /// Every secret.
    pub secrets: Vec<SecretResult>,
    /// Rotated completely.
    pub rotated: usize,
    /// That kept their old value.
    pub kept_old: usize,
}

async fn current(s: &SecretRotation) -> Result<Secret> {
    if let Some(r) = &s.current {
        return r.resolve(&format!("secrets {:?}: current", s.name));
    }
    let Some(p) = &s.current_file else {
        return Err(Error::config(format!(
            "secrets {:?}: no current value",
            s.name
        )));
    };
    let v = tokio::fs::read_to_string(p).await.map_err(|e| {
        Error::from(e).with_context(
            "path",
            format!("secrets {:?}: current_file {}", s.name, p.display()),
        )
    })?;
    let v = v.trim();
    if v.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            format!("{} is empty", p.display()),
        ));
    }
    Ok(Secret::new(v, p.display().to_string()))
}

/// What a step works with.
struct Ctx<'a> {
    run: &'a Run,
    s: &'a SecretRotation,
    hooks: HookRunner,
    /// The step running or last run.
    last: Mutex<String>,
}

impl Ctx<'_> {
    fn input<'b>(
        &'b self,
        subject: &'b Secret,
        new: Option<&'b Secret>,
        old: &'b Secret,
    ) -> HookInput<'b> {
        HookInput {
            name: &self.s.name,
            subject,
            new,
            old: Some(old),
        }
    }
    fn step(&self, what: &str) -> String {
        let s = format!("{what}:{}", self.s.name);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = s.clone();
        s
    }
    fn undo_name(&self, what: &str) -> String {
        format!("{what}:{}", self.s.name)
    }
    fn last(&self) -> String {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Ask `verify` about a value until it says `want` or the timeout passes (a new key can
    /// take seconds to propagate; so can a revocation).
    async fn prove(
        &self,
        step: &str,
        subject: &Secret,
        new: Option<&Secret>,
        old: &Secret,
        want: Verdict,
    ) -> Result<()> {
        // The value in use must work now; a new value or a revocation may take time to spread.
        let limit = if step.starts_with("verify_old") {
            Duration::ZERO
        } else {
            self.s.timeout.0
        };
        let fp = fingerprint(subject);
        let what = if want == Verdict::Works {
            "works"
        } else {
            "is refused"
        };
        let plan = format!("the verify hook says {fp} {what}");
        if self.run.is_dry_run() {
            self.run
                .record(step, crate::report::Action::Read, Outcome::Planned, plan);
            return Ok(());
        }
        let fut = async {
            let start = tokio::time::Instant::now();
            let mut wait = Duration::from_millis(250);
            loop {
                let got = self
                    .hooks
                    .verify(&self.s.verify, self.input(subject, new, old))
                    .await?;
                if got == want {
                    return Ok(Checked::pass((), plan.clone()));
                }
                if start.elapsed() + wait > limit {
                    let saw = if got == Verdict::Works {
                        "still works"
                    } else {
                        "is refused"
                    };
                    let m = format!("{fp} {saw} after {}", crate::units::format_duration(limit));
                    return Err(Error::new(ErrorKind::Conflict, m));
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        };
        self.run
            .check(step, Some(limit + Duration::from_secs(30)), fut)
            .await
    }
}

/// Write `value` to `path` mode 0600, keeping what was there as `path.old-<run>`.
async fn write_output(path: &Path, value: &Secret, run_id: &str) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::OpenOptionsExt;
    let kept = if tokio::fs::try_exists(path).await.unwrap_or(false) {
        let mut k = path.as_os_str().to_owned();
        k.push(format!(".old-{run_id}"));
        let k = PathBuf::from(k);
        tokio::fs::copy(path, &k)
            .await
            .map_err(|e| Error::from(e).with_context("path", path.display().to_string()))?;
        Some(k)
    } else {
        None
    };
    let tmp = path.with_extension(format!("new-{run_id}"));
    let (t, v) = (tmp.clone(), value.expose().to_string());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&t)?;
        f.write_all(v.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?
    .map_err(|e| Error::from(e).with_context("path", tmp.display().to_string()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| Error::from(e).with_context("path", path.display().to_string()))?;
    Ok(kept)
}

/// The steps up to the new value in place, each change with its undo registered first.
async fn put_in_place(
    c: &Ctx<'_>,
    old: &Secret,
    slot: &Arc<Mutex<Option<Secret>>>,
) -> Result<Option<Secret>> {
    let s = c.s;
    // Registered before the issue hook runs: whatever it issued is revoked on any failure.
    let (hooks, revoke, name, slot2) = (
        c.hooks.clone(),
        s.revoke.clone(),
        s.name.clone(),
        slot.clone(),
    );
    let old2 = old.clone();
    let unissue = Undo::always(c.undo_name("revoke_new"), move || async move {
        let new = slot2.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(new) = new else { return Ok(()) };
        let i = HookInput {
            name: &name,
            subject: &new,
            new: Some(&new),
            old: Some(&old2),
        };
        hooks.run_retried("revoke", &revoke, i).await.map(|_| ())
    });
    let issue = async {
        let out = c
            .hooks
            .run("issue", &s.issue, c.input(old, None, old))
            .await?;
        let new = issued(&s.name, &out, pointer(&s.issue))?;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(new.clone());
        Ok(new)
    };
    let Some(new) = c
        .run
        .change_live(&c.step("issue"), "run the issue hook", issue, Some(unissue))
        .await?
    else {
        return Ok(None);
    };
    c.prove(&c.step("verify_new"), &new, Some(&new), old, Verdict::Works)
        .await?;
    if let Some(path) = &s.output {
        let plan = format!(
            "write {} to {} (0600, the old file kept)",
            fingerprint(&new),
            path.display()
        );
        let (p, restore) = (path.clone(), Arc::new(Mutex::new(None::<PathBuf>)));
        let r2 = restore.clone();
        let undo = Undo::always(c.undo_name("unoutput"), move || async move {
            let kept = r2.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match kept {
                Some(k) => tokio::fs::rename(&k, &p).await,
                None => tokio::fs::remove_file(&p).await,
            }
            .map_err(|e| Error::from(e).with_context("path", p.display().to_string()))
        });
        let write = async {
            let kept = write_output(path, &new, c.run.run_id()).await?;
            *restore.lock().unwrap_or_else(|e| e.into_inner()) = kept;
            Ok(())
        };
        c.run
            .change(&c.step("output"), plan, write, Some(undo))
            .await?;
    }
    if let Some(install) = &s.install {
        install_new(c, install, &new, old).await?;
    }
    Ok(Some(new))
}

/// Put the new value in place; its undo puts the old one back with the same hook.
async fn install_new(c: &Ctx<'_>, install: &Hook, new: &Secret, old: &Secret) -> Result<()> {
    let (hooks, h, name, old2, new2) = (
        c.hooks.clone(),
        install.clone(),
        c.s.name.clone(),
        old.clone(),
        new.clone(),
    );
    let undo = Undo::always(c.undo_name("reinstall_old"), move || async move {
        let i = HookInput {
            name: &name,
            subject: &old2,
            new: Some(&new2),
            old: Some(&old2),
        };
        hooks.run_retried("install", &h, i).await.map(|_| ())
    });
    let plan = format!("run the install hook with {}", fingerprint(new));
    let go = c
        .hooks
        .run_retried("install", install, c.input(new, Some(new), old));
    c.run
        .change(&c.step("install"), plan, go, Some(undo))
        .await
        .map(|_| ())
}

fn result(
    name: &str,
    outcome: SecretOutcome,
    old: Option<&Secret>,
    new: Option<&Secret>,
) -> SecretResult {
    SecretResult {
        name: name.to_string(),
        outcome,
        old_fingerprint: old.map(fingerprint),
        new_fingerprint: new.map(fingerprint),
        failed_step: None,
        error: None,
        restored: None,
    }
}

async fn rotate_one(run: &Run, s: &SecretRotation) -> SecretResult {
    let hooks = match HookRunner::new(s.timeout.0) {
        Ok(h) => h,
        Err(e) => {
            return failed(
                run,
                result(&s.name, SecretOutcome::KeptOld, None, None),
                "hooks",
                e,
                Some(true),
            );
        }
    };
    let c = Ctx {
        run,
        s,
        hooks,
        last: Mutex::default(),
    };
    let old = match run
        .check(&c.step("current"), Some(Duration::from_secs(30)), async {
            let v = current(s).await?;
            let fp = fingerprint(&v);
            Ok(Checked::pass(v, format!("the value in use is {fp}")))
        })
        .await
    {
        Ok(v) => v,
        Err(e) => {
            return failed(
                run,
                result(&s.name, SecretOutcome::KeptOld, None, None),
                "current",
                e,
                Some(true),
            );
        }
    };
    let mut out = result(&s.name, SecretOutcome::KeptOld, Some(&old), None);
    // A verify hook that refuses the value in use proves nothing about the new one.
    if let Err(e) = c
        .prove(&c.step("verify_old"), &old, None, &old, Verdict::Works)
        .await
    {
        return failed(run, out, "verify_old", e, Some(true));
    }
    let slot = Arc::new(Mutex::new(None));
    let placed = put_in_place(&c, &old, &slot).await;
    let new = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
    out.new_fingerprint = new.as_ref().map(fingerprint);
    let new = match placed {
        Ok(Some(n)) => n,
        Ok(None) => return plan_rest(&c, &old, out).await,
        Err(e) => {
            let step = c.last();
            let mut ok = true;
            for u in ["reinstall_old", "unoutput", "revoke_new"] {
                let had = run.pending_undos(true).contains(&c.undo_name(u));
                ok &= !had || run.settle(&c.undo_name(u)).await;
            }
            return failed(run, out, &step, e, Some(ok));
        }
    };
    // The new value is in place: from here nothing is undone.
    for u in ["reinstall_old", "unoutput", "revoke_new"] {
        run.forget(&c.undo_name(u));
    }
    revoke_old(&c, &old, &new, out).await
}

async fn revoke_old(
    c: &Ctx<'_>,
    old: &Secret,
    new: &Secret,
    mut out: SecretResult,
) -> SecretResult {
    let go = c
        .hooks
        .run_retried("revoke", &c.s.revoke, c.input(old, Some(new), old));
    let plan = format!("run the revoke hook with {}", fingerprint(old));
    let r = match c.run.change(&c.step("revoke_old"), plan, go, None).await {
        Ok(_) => {
            c.prove(
                &c.step("prove_old_refused"),
                old,
                Some(new),
                old,
                Verdict::Refused,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => {
            out.outcome = SecretOutcome::Rotated;
            out
        }
        Err(e) => {
            out.outcome = SecretOutcome::OldStillValid;
            out.failed_step = Some(c.last());
            out.error = Some(e.to_string());
            c.run.escalate(
                "secret_not_revoked",
                c.s.name.clone(),
                out.failed_step.clone().unwrap_or_default(),
                "the old value refused",
                format!(
                    "{}: the new value {} is in place and works, but the old one {} may still work: {e}",
                    c.s.name,
                    fingerprint(new),
                    fingerprint(old)
                ),
            );
            out
        }
    }
}

fn failed(
    run: &Run,
    mut out: SecretResult,
    step: &str,
    e: Error,
    restored: Option<bool>,
) -> SecretResult {
    out.failed_step = Some(step.to_string());
    out.error = Some(e.to_string());
    out.restored = restored;
    let (criterion, msg) = if restored == Some(false) {
        (
            "secret_undo_failed",
            format!(
                "{}: {e}; putting the old value back did not finish — see the undo steps",
                out.name
            ),
        )
    } else {
        (
            "secret_rotation_failed",
            format!("{} keeps its old value: {e}", out.name),
        )
    };
    run.escalate(
        criterion,
        out.name.clone(),
        step.to_string(),
        "every step passes",
        msg,
    );
    out
}

async fn plan_rest(c: &Ctx<'_>, old: &Secret, mut out: SecretResult) -> SecretResult {
    let _ = c
        .prove(&c.step("verify_new"), old, None, old, Verdict::Works)
        .await;
    let planned = |what: &str, plan: String| {
        c.run.record(
            &c.step(what),
            crate::report::Action::Change,
            Outcome::Planned,
            plan,
        )
    };
    if let Some(p) = &c.s.output {
        planned(
            "output",
            format!(
                "write the new value to {} (0600, the old file kept)",
                p.display()
            ),
        );
    }
    if c.s.install.is_some() {
        planned("install", "run the install hook with the new value".into());
    }
    planned(
        "revoke_old",
        format!("run the revoke hook with {}", fingerprint(old)),
    );
    let _ = c
        .prove(
            &c.step("prove_old_refused"),
            old,
            None,
            old,
            Verdict::Refused,
        )
        .await;
    out.outcome = SecretOutcome::Planned;
    out
}

/// Rotate every `[[secrets]]` entry (or `o.secrets`), one after the other.
pub async fn rotate_secret(env: &Environment, o: &RotateSecretOptions, ro: &RunOptions) -> Report {
    env.execute("rotate_secret", ro, |run| async move {
        if let Some(n) = o
            .secrets
            .iter()
            .find(|n| !env.config.secrets.iter().any(|s| &s.name == *n))
        {
            let known: Vec<&str> = env.config.secrets.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::config(format!(
                "no [[secrets]] named {n:?} (configured: {})",
                known.join(", ")
            )));
        }
        if env.config.secrets.is_empty() {
            return Err(Error::config(
                "no [[secrets]] configured: nothing to rotate",
            ));
        }
        let mut done = Vec::new();
        for s in env
            .config
            .secrets
            .iter()
            .filter(|s| o.secrets.is_empty() || o.secrets.contains(&s.name))
        {
            done.push(rotate_one(&run, s).await);
        }
        let count = |w: SecretOutcome| done.iter().filter(|r| r.outcome == w).count();
        let out = RotateSecretPayload {
            rotated: count(SecretOutcome::Rotated),
            kept_old: count(SecretOutcome::KeptOld),
            secrets: done,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
