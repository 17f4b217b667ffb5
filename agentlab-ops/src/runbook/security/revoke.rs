//! `revoke_access`: end an account's sessions, remove its keys (a copy kept), take it out of
//! the sudo groups, lock it (or delete it, its home kept), and prove its key refused. A revoke
//! is never undone: each step is tried even when one before failed, and a host with a failed
//! step is escalated (`revoke_incomplete`).

use std::path::PathBuf;

use futures::StreamExt;

use super::grant::{
    AccessChangePayload, HostAccessChange, RevokeOptions, account, group_members, sh,
};
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::host::Cmd;
use crate::report::{Action, Outcome, Report};
use crate::runbook::run::{Checked, Run, RunOptions};
use crate::security::authorized::KeysFile;

async fn step(
    run: &Run,
    out: &mut HostAccessChange,
    name: &str,
    plan: String,
    fut: impl Future<Output = Result<()>>,
) {
    if let Err(e) = run.change(name, plan, fut, None).await {
        out.failures.push(format!("{name}: {e}"));
    }
}

async fn revoke_host(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    o: &RevokeOptions,
) -> HostAccessChange {
    let (host, name, user) = (h.host.clone(), h.config.name.as_str(), o.user.as_str());
    let mut out = HostAccessChange {
        host: name.into(),
        ok: true,
        created: false,
        login_proven: None,
        failures: Vec::new(),
        restored: None,
    };
    let acct = run
        .check(&format!("account:{name}"), None, async {
            let a = account(host.as_ref(), user).await?;
            let s = match &a {
                Some(a) => format!("{user} exists (home {})", a.home),
                None => format!("no account {user}: nothing to revoke"),
            };
            Ok(Checked::pass(a, s))
        })
        .await;
    let acct = match acct {
        Ok(Some(a)) => a,
        Ok(None) => return out,
        Err(e) => {
            out.ok = false;
            out.failures.push(e.to_string());
            return out;
        }
    };
    take_away(env, run, h, o, &acct, &mut out).await;
    prove_refused(run, h, o, &mut out).await;
    out.ok = out.failures.is_empty();
    if !out.ok {
        run.escalate(
            "revoke_incomplete",
            name.to_string(),
            out.failures.join("; "),
            "every step passes",
            format!(
                "{name}: {user} may still have access: {}",
                out.failures.join("; ")
            ),
        );
    }
    out
}

/// Sessions, keys, sudo groups, then lock or delete: each tried, each failure kept.
async fn take_away(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    o: &RevokeOptions,
    acct: &crate::security::accounts::Account,
    out: &mut HostAccessChange,
) {
    let (host, name, user) = (h.host.clone(), h.config.name.as_str(), o.user.as_str());
    let kill = async {
        let out = host
            .run(&Cmd::new("pkill").args(["-KILL", "-u", user]))
            .await?;
        match out.status {
            Some(0 | 1) => Ok(()),
            _ => Err(Error::new(
                ErrorKind::Unexpected,
                format!("pkill -u {user}: {}", out.stderr.trim()),
            )),
        }
    };
    step(
        run,
        out,
        &format!("sessions:{name}"),
        format!("pkill -KILL -u {user}"),
        kill,
    )
    .await;
    let file = format!("{}/.ssh/authorized_keys", acct.home);
    let suffix = format!("agentlab-{}", run.run_id());
    let keys = async {
        let f = KeysFile {
            host: host.as_ref(),
            path: &file,
        };
        if f.read().await?.trim().is_empty() {
            return Ok(());
        }
        f.keep_copy(&suffix).await?;
        f.replace("").await
    };
    let plan = format!("empty {file} (a copy kept as {file}.{suffix})");
    step(run, out, &format!("keys:{name}"), plan, keys).await;
    leave_groups_and_lock(env, run, h, o, out).await;
}

/// Out of every sudo group it is in, then locked (or deleted).
async fn leave_groups_and_lock(
    env: &Environment,
    run: &Run,
    h: &HostEntry,
    o: &RevokeOptions,
    out: &mut HostAccessChange,
) {
    let (host, name, user) = (h.host.clone(), h.config.name.as_str(), o.user.as_str());
    for g in &env.config.access.sudo_groups {
        let Ok(Some(members)) = group_members(host.as_ref(), g).await else {
            continue;
        };
        if members.iter().any(|m| m == user) {
            let go = async {
                sh(host.as_ref(), "gpasswd", &["-d", user, g])
                    .await
                    .map(|_| ())
            };
            step(
                run,
                out,
                &format!("sudo:{name}:{g}"),
                format!("gpasswd -d {user} {g}"),
                go,
            )
            .await;
        }
    }
    if o.delete {
        let go = async { sh(host.as_ref(), "userdel", &[user]).await.map(|_| ()) };
        step(
            run,
            out,
            &format!("delete:{name}"),
            format!("userdel {user} (its home kept)"),
            go,
        )
        .await;
    } else {
        let go = async {
            sh(
                host.as_ref(),
                "usermod",
                &["--lock", "--expiredate", "1", user],
            )
            .await
            .map(|_| ())
        };
        step(
            run,
            out,
            &format!("lock:{name}"),
            format!("usermod --lock --expiredate 1 {user}"),
            go,
        )
        .await;
    }
}

async fn prove_refused(run: &Run, h: &HostEntry, o: &RevokeOptions, out: &mut HostAccessChange) {
    let name = h.config.name.as_str();
    let step = format!("prove_refused:{name}");
    let Some(id) = &o.identity else {
        run.skip(
            &step,
            Action::Read,
            "no identity given: the refusal is not proven",
        );
        return;
    };
    if run.is_dry_run() {
        run.record(
            &step,
            Action::Read,
            Outcome::Planned,
            format!("a fresh login as {} with only {id} is refused", o.user),
        );
        return;
    }
    let key = PathBuf::from(id);
    let r = run
        .check(&step, None, async {
            if h.host.try_key_login_as(&key, &o.user).await? {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("a fresh login as {} with {id} still works", o.user),
                ));
            }
            Ok(Checked::pass(
                true,
                format!("a fresh login as {} with only {id} is refused", o.user),
            ))
        })
        .await;
    match r {
        Ok(v) => out.login_proven = Some(v),
        Err(e) => {
            out.login_proven = Some(false);
            out.failures.push(format!("{step}: {e}"));
        }
    }
}

/// Revoke `o.user`'s access on every host (or `o.hosts`).
pub async fn revoke_access(env: &Environment, o: &RevokeOptions, ro: &RunOptions) -> Report {
    env.execute("revoke_access", ro, |run| async move {
        crate::runbook::registry::Validate::validate(o).map_err(Error::config)?;
        let hosts = super::pick(env, &o.hosts)?;
        let per = env.config.fleet.concurrency.max(1);
        let futs: Vec<_> = hosts.iter().map(|h| revoke_host(env, &run, h, o)).collect();
        let done: Vec<_> = futures::stream::iter(futs).buffered(per).collect().await;
        let out = AccessChangePayload {
            user: o.user.clone(),
            fingerprint: None,
            hosts: done,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
