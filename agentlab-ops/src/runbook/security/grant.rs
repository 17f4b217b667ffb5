//! `grant_access` and `revoke_access`: the spec's onboarding "Access Setup" and its reverse,
//! across the fleet. Granting creates the account (key-only: its password field `*`, neither a
//! password nor locked), adds its public key to the account's own `authorized_keys` (0700/0600,
//! owned by it), optionally adds it to the first sudo group, and proves a fresh login with the
//! account's key; a host that fails a step has that host's changes undone. Revoking ends its
//! sessions, removes its keys (a copy kept), takes it out of the sudo groups and locks it (or
//! deletes it, its home kept), then proves the key refused; nothing is undone, every step is
//! tried and each failure reported.

use std::path::PathBuf;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};
use crate::report::{Action, Outcome, Report, Severity};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions, Undo};
use crate::security::accounts::{Account, parse_group, parse_passwd};
use crate::security::authorized::KeysFile;
use crate::security::fingerprint;

/// Options of `grant_access`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrantOptions {
    /// The account (`alice`).
    pub user: String,
    /// Its public key: an `authorized_keys` line, or a path to a `.pub` file here.
    pub key: String,
    /// Also add it to the first of `[access] sudo_groups` that exists on the host.
    pub sudo: bool,
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// The private key of `key`, here: proves a real login (unset: the login is not proven).
    pub identity: Option<String>,
    /// Login shell of a new account.
    pub shell: String,
    /// Who it is (the account's comment: `Alice Martin, SRE`).
    pub label: Option<String>,
}

impl Default for GrantOptions {
    fn default() -> Self {
        GrantOptions {
            user: String::new(),
            key: String::new(),
            sudo: false,
            hosts: Vec::new(),
            identity: None,
            shell: "/bin/bash".into(),
            label: None,
        }
    }
}

/// A POSIX portable user name, as `useradd` takes it.
pub(crate) fn check_user(u: &str) -> std::result::Result<(), String> {
    let ok = !u.is_empty()
        && u.len() <= 32
        && u.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && u.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok {
        return Err(format!(
            "user: {u:?} is not an account name ([a-z_][a-z0-9_-]*, at most 32)"
        ));
    }
    if u == "root" {
        return Err("user: root is not granted or revoked by this runbook".into());
    }
    Ok(())
}

impl Validate for GrantOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        check_user(&self.user)?;
        if self.key.trim().is_empty() {
            return Err("key: a public key line or a .pub file".into());
        }
        if !self.shell.starts_with('/') {
            return Err(format!("shell: {:?}: an absolute path", self.shell));
        }
        Ok(())
    }
}

/// Options of `revoke_access`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevokeOptions {
    /// The account.
    pub user: String,
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Delete the account (`userdel`, its home kept) instead of locking it.
    pub delete: bool,
    /// A private key that must be refused afterwards (the account's old key).
    pub identity: Option<String>,
}

impl Validate for RevokeOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        check_user(&self.user)
    }
}

/// One host's grant or revoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostAccessChange {
    /// The host.
    pub host: String,
    /// Every step passed.
    pub ok: bool,
    /// The account was created by this run (grant).
    pub created: bool,
    /// A real login was tried: accepted (grant) or refused (revoke) as wanted.
    pub login_proven: Option<bool>,
    /// The steps that failed, with why.
    pub failures: Vec<String>,
    /// Whether the undo finished (grant on a failed host).
    pub restored: Option<bool>,
}

/// The payload of `grant_access` and `revoke_access`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessChangePayload {
    /// The account.
    pub user: String,
    /// The key's SHA256 fingerprint (grant).
    pub fingerprint: Option<String>,
    /// Every host.
    pub hosts: Vec<HostAccessChange>,
}

pub(crate) async fn sh(host: &dyn RemoteHost, program: &str, args: &[&str]) -> Result<String> {
    let cmd = Cmd::new(program).args(args.iter().map(|s| s.to_string()));
    let out = host.run(&cmd).await?.check(host.name(), &cmd)?;
    Ok(out.stdout)
}

/// The account as `getent passwd` gives it (`None`: no such account).
pub(crate) async fn account(host: &dyn RemoteHost, user: &str) -> Result<Option<Account>> {
    let cmd = Cmd::new("getent").args(["passwd", user]);
    let out = host.run(&cmd).await?;
    if out.status == Some(2) {
        return Ok(None);
    }
    let out = out.check(host.name(), &cmd)?;
    let (accounts, _) = parse_passwd(&out.stdout);
    match accounts.into_iter().find(|a| a.name == user) {
        Some(a) => Ok(Some(a)),
        None => {
            let m = format!(
                "{}: getent passwd {user} gave {:?}",
                host.name(),
                out.stdout.trim()
            );
            Err(Error::new(ErrorKind::InvalidResponse, m))
        }
    }
}

/// The members of `group` as `getent group` gives them (`None`: no such group).
pub(crate) async fn group_members(
    host: &dyn RemoteHost,
    group: &str,
) -> Result<Option<Vec<String>>> {
    let out = host.run(&Cmd::new("getent").args(["group", group])).await?;
    if !out.success() {
        return Ok(None);
    }
    let (groups, _) = parse_group(&out.stdout);
    Ok(groups
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| g.members))
}

/// The first of `groups` that exists on the host, with its members.
pub(crate) async fn sudo_group(
    host: &dyn RemoteHost,
    groups: &[String],
) -> Result<Option<(String, Vec<String>)>> {
    for g in groups {
        if let Some(members) = group_members(host, g).await? {
            return Ok(Some((g.clone(), members)));
        }
    }
    Ok(None)
}

/// The public key line: given, or read from a `.pub` file here.
async fn public_line(key: &str) -> Result<String> {
    let k = key.trim();
    if k.starts_with("ssh-") || k.starts_with("ecdsa-") || k.starts_with("sk-") {
        return Ok(k.to_string());
    }
    let text = tokio::fs::read_to_string(k)
        .await
        .map_err(|e| Error::from(e).with_context("key", k.to_string()))?;
    Ok(text.trim().to_string())
}

struct Grant<'a> {
    run: &'a Run,
    o: &'a GrantOptions,
    line: String,
    fp: String,
    groups: &'a [String],
}

impl Grant<'_> {
    async fn host(&self, h: &HostEntry) -> HostAccessChange {
        let name = h.config.name.as_str();
        let mut out = HostAccessChange {
            host: name.into(),
            ok: true,
            created: false,
            login_proven: None,
            failures: Vec::new(),
            restored: None,
        };
        if let Err(e) = self.steps(h, &mut out).await {
            out.ok = false;
            out.failures.push(e.to_string());
            let mut ok = true;
            for u in ["unsudo", "unkey", "unaccount"] {
                let n = format!("{u}:{name}:{}", self.o.user);
                if self.run.pending_undos(true).contains(&n) {
                    ok &= self.run.settle(&n).await;
                }
            }
            out.restored = Some(ok);
            self.run.escalate(
                "grant_failed",
                name.to_string(),
                e.to_string(),
                "every step passes",
                format!("{name}: {} was not granted: {e}", self.o.user),
            );
        } else {
            for u in ["unsudo", "unkey", "unaccount"] {
                self.run.forget(&format!("{u}:{name}:{}", self.o.user));
            }
        }
        out
    }

    async fn steps(&self, h: &HostEntry, out: &mut HostAccessChange) -> Result<()> {
        let (host, name, user) = (h.host.clone(), h.config.name.as_str(), self.o.user.as_str());
        let step = |s: &str| format!("{s}:{name}");
        let undo = |s: &str| format!("{s}:{name}:{user}");
        let existing = self
            .run
            .check(&step("account"), None, async {
                let a = account(host.as_ref(), user).await?;
                let s = match &a {
                    Some(a) => format!("{user} exists (home {})", a.home),
                    None => format!("{user} does not exist"),
                };
                Ok(Checked::pass(a, s))
            })
            .await?;
        if existing.is_none() {
            // Withdrawn when useradd itself fails (an account made meanwhile by someone else
            // is not ours to delete); run when a later step fails or the run is stopped.
            let (h2, u2) = (host.clone(), user.to_string());
            let un = Undo::on_failure(undo("unaccount"), move || async move {
                sh(h2.as_ref(), "userdel", &["--remove", &u2])
                    .await
                    .map(|_| ())
            });
            let label =
                self.o.label.clone().unwrap_or_else(|| {
                    format!("granted by agentlab-ops run {}", self.run.run_id())
                });
            let args = [
                "--create-home",
                "--shell",
                self.o.shell.as_str(),
                "--password",
                "*",
                "--comment",
                label.as_str(),
                user,
            ];
            let plan = format!("useradd {}", args.join(" "));
            let made = self
                .run
                .change(
                    &step("create"),
                    plan,
                    sh(host.as_ref(), "useradd", &args),
                    Some(un),
                )
                .await?;
            out.created = made.is_some();
        }
        let acct = match account(host.as_ref(), user).await {
            Ok(Some(a)) => a,
            _ if self.run.is_dry_run() => Account {
                name: user.to_string(),
                uid: 0,
                gid: 0,
                home: format!("/home/{user}"),
                shell: self.o.shell.clone(),
                line: 0,
            },
            Ok(None) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{name}: {user} is missing after useradd"),
                ));
            }
            Err(e) => return Err(e),
        };
        self.add_key(h, &acct).await?;
        if self.o.sudo {
            self.add_sudo(h).await?;
        }
        self.prove(h, out).await
    }

    async fn add_key(&self, h: &HostEntry, a: &Account) -> Result<()> {
        let (host, name, user) = (h.host.clone(), h.config.name.as_str(), self.o.user.as_str());
        let dir = format!("{}/.ssh", a.home);
        let file = format!("{dir}/authorized_keys");
        let (h2, f2, fp2) = (host.clone(), file.clone(), self.fp.clone());
        let un = Undo::always(format!("unkey:{name}:{user}"), move || async move {
            KeysFile {
                host: h2.as_ref(),
                path: &f2,
            }
            .remove(&fp2)
            .await
            .map(|_| ())
        });
        let (gid, owner) = (a.gid.to_string(), format!("{user}:{}", a.gid));
        let go = async {
            sh(
                host.as_ref(),
                "install",
                &["-d", "-m", "0700", "-o", user, "-g", &gid, &dir],
            )
            .await?;
            KeysFile {
                host: host.as_ref(),
                path: &file,
            }
            .add(&self.line)
            .await?;
            sh(host.as_ref(), "chown", &[&owner, &file]).await?;
            sh(host.as_ref(), "chmod", &["0600", &file])
                .await
                .map(|_| ())
        };
        let plan = format!("add {} to {file} (0600, owned by {user})", self.fp);
        self.run
            .change(&format!("key:{name}"), plan, go, Some(un))
            .await
            .map(|_| ())
    }

    async fn add_sudo(&self, h: &HostEntry) -> Result<()> {
        let (host, name, user) = (h.host.clone(), h.config.name.as_str(), self.o.user.as_str());
        let Some((g, members)) = sudo_group(host.as_ref(), self.groups).await? else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{name}: none of the sudo groups {:?} exists", self.groups),
            ));
        };
        if members.iter().any(|m| m == user) {
            let s = format!("{user} is already in {g}");
            self.run
                .record(&format!("sudo:{name}"), Action::Read, Outcome::Pass, s);
            return Ok(());
        }
        let (h2, u2, g2) = (host.clone(), user.to_string(), g.clone());
        let un = Undo::on_failure(format!("unsudo:{name}:{user}"), move || async move {
            sh(h2.as_ref(), "gpasswd", &["-d", &u2, &g2])
                .await
                .map(|_| ())
        });
        let plan = format!("gpasswd -a {user} {g}");
        let go = async { sh(host.as_ref(), "gpasswd", &["-a", user, &g]).await };
        self.run
            .change(&format!("sudo:{name}"), plan, go, Some(un))
            .await
            .map(|_| ())
    }

    async fn prove(&self, h: &HostEntry, out: &mut HostAccessChange) -> Result<()> {
        let name = h.config.name.as_str();
        let step = format!("prove_login:{name}");
        let Some(id) = &self.o.identity else {
            self.run.skip(
                &step,
                Action::Read,
                "no identity given: the login is not proven",
            );
            return Ok(());
        };
        if self.run.is_dry_run() {
            self.run.record(
                &step,
                Action::Read,
                Outcome::Planned,
                format!("a fresh login as {} with only {id}", self.o.user),
            );
            return Ok(());
        }
        let key = PathBuf::from(id);
        let ok = self
            .run
            .check(&step, None, async {
                if !h.host.try_key_login_as(&key, &self.o.user).await? {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("a fresh login as {} with {id} was refused", self.o.user),
                    ));
                }
                Ok(Checked::pass(
                    true,
                    format!("a fresh login as {} with only {id} works", self.o.user),
                ))
            })
            .await?;
        out.login_proven = Some(ok);
        Ok(())
    }
}

/// Grant `o.user` access to every host (or `o.hosts`).
pub async fn grant_access(env: &Environment, o: &GrantOptions, ro: &RunOptions) -> Report {
    env.execute("grant_access", ro, |run| async move {
        o.validate().map_err(Error::config)?;
        let hosts = super::pick(env, &o.hosts)?;
        let line = public_line(&o.key).await?;
        let fp = fingerprint(&line).map_err(|e| Error::config(format!("key: {e}")))?;
        let g = Grant {
            run: &run,
            o,
            line,
            fp: fp.clone(),
            groups: &env.config.access.sudo_groups,
        };
        let per = env.config.fleet.concurrency.max(1);
        let futs: Vec<_> = hosts.iter().map(|h| g.host(h)).collect();
        let done: Vec<_> = futures::stream::iter(futs).buffered(per).collect().await;
        if o.identity.is_none() && !run.is_dry_run() {
            run.finding(
                Severity::Warning,
                "login",
                "no identity given: no host proved a real login with the key",
            );
        }
        let out = AccessChangePayload {
            user: o.user.clone(),
            fingerprint: Some(fp),
            hosts: done,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
