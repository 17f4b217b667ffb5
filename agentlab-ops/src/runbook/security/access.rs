//! `access_review`: on every host, who is logged in, who may sudo, who has uid 0, which keys
//! may log in as whom, what sshd allows, and who can write the app's paths — each area its own
//! read step, judged into typed findings (with the Lynis test id where one matches) against
//! the `[access]` allow-lists. It only reads.

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::findings::{AccessFinding, judge};
use crate::environment::{Environment, HostEntry};
use crate::report::{Action, Outcome, Report, Severity};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions};
use crate::security::inventory::{
    read_accounts, read_keys, read_paths, read_sessions, read_sudoers,
};
use crate::security::{Inventory, sshd};

/// Options of `access_review`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// Read the files under this root instead of `[access] root` (a fixture tree, a mounted
    /// disk image of a suspect host).
    pub root: Option<String>,
}

impl Validate for AccessOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        match &self.root {
            Some(r) if r.trim().is_empty() => Err("root: must not be empty".into()),
            _ => Ok(()),
        }
    }
}

/// One host's review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostAccess {
    /// The host.
    pub host: String,
    /// What was read.
    pub inventory: Inventory,
    /// What it means.
    pub findings: Vec<AccessFinding>,
}

/// The payload of `access_review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessPayload {
    /// The root the files were read under.
    pub root: String,
    /// Every host.
    pub hosts: Vec<HostAccess>,
    /// Findings by severity, over all hosts.
    pub critical: usize,
    /// Warnings.
    pub warning: usize,
    /// For the record.
    pub info: usize,
}

async fn read<T>(
    run: &Run,
    name: String,
    env: &Environment,
    fut: impl std::future::Future<Output = crate::error::Result<T>>,
    say: impl FnOnce(&T) -> String,
) -> Option<T> {
    let t = Some(env.config.thresholds.check_timeout.0 * 4);
    run.check(&name, t, async {
        let v = fut.await?;
        let s = say(&v);
        Ok(Checked::pass(v, s))
    })
    .await
    .ok()
}

async fn review_host(env: &Environment, run: &Run, h: &HostEntry, root: &str) -> HostAccess {
    let name = h.config.name.clone();
    let host = h.host.as_ref();
    let mut inv = Inventory {
        accounts: read(
            run,
            format!("accounts:{name}"),
            env,
            read_accounts(host, root),
            |a| format!("{} accounts, {} groups", a.accounts.len(), a.groups.len()),
        )
        .await,
        sudoers: read(
            run,
            format!("sudoers:{name}"),
            env,
            read_sudoers(host, root),
            |s| format!("{} files, {} rules", s.files.len(), s.rules.len()),
        )
        .await,
        sshd: read(
            run,
            format!("sshd:{name}"),
            env,
            sshd::read(host, root),
            |s| {
                format!(
                    "PermitRootLogin {}, PasswordAuthentication {}",
                    s.permit_root_login, s.password_authentication
                )
            },
        )
        .await,
        ..Inventory::default()
    };
    match &inv.accounts {
        Some(a) => {
            let sshd = inv.sshd.clone().unwrap_or_default();
            let fut = read_keys(host, root, &a.accounts, &sshd);
            inv.keys = read(run, format!("keys:{name}"), env, fut, |k| {
                let n: usize = k.iter().map(|f| f.keys.len()).sum();
                format!("{n} keys in {} authorized_keys files", k.len())
            })
            .await;
        }
        None => run.skip(&format!("keys:{name}"), Action::Read, "no accounts read"),
    }
    if root.trim_end_matches('/').is_empty() {
        inv.sessions = read(
            run,
            format!("sessions:{name}"),
            env,
            read_sessions(host),
            |s| format!("{} sessions", s.len()),
        )
        .await;
    } else {
        run.skip(
            &format!("sessions:{name}"),
            Action::Read,
            format!("files under {root}: no live sessions"),
        );
    }
    let paths = read(
        run,
        format!("paths:{name}"),
        env,
        read_paths(host, root, &env.config.access.app_paths),
        |(p, m)| format!("{} paths, {} missing", p.len(), m.len()),
    )
    .await;
    if let Some((p, missing)) = paths {
        inv.paths = Some(p);
        inv.missing_paths = missing;
    }
    let live = root.trim_end_matches('/').is_empty();
    let unread: Vec<&str> = [
        ("accounts", inv.accounts.is_none()),
        ("sudoers", inv.sudoers.is_none()),
        ("sshd", inv.sshd.is_none()),
        ("keys", inv.keys.is_none()),
        ("sessions", live && inv.sessions.is_none()),
        ("paths", inv.paths.is_none()),
    ]
    .into_iter()
    .filter_map(|(a, missing)| missing.then_some(a))
    .collect();
    if !unread.is_empty() {
        run.escalate(
            "review_incomplete",
            name.clone(),
            format!("{} not read", unread.join(", ")),
            "every area read",
            format!(
                "the access review of {name} is incomplete: {} could not be read",
                unread.join(", ")
            ),
        );
    }
    let findings = judge(&name, &inv, &env.config.access);
    record(run, &name, &findings);
    HostAccess {
        host: name,
        inventory: inv,
        findings,
    }
}

fn record(run: &Run, host: &str, findings: &[AccessFinding]) {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (c, w, i) = (
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let outcome = match (c, w) {
        (c, _) if c > 0 => Outcome::Fail,
        (_, w) if w > 0 => Outcome::Warn,
        _ => Outcome::Pass,
    };
    run.record(
        &format!("judge:{host}"),
        Action::Read,
        outcome,
        format!("{c} critical, {w} warnings, {i} notes"),
    );
    for f in findings {
        let id = f
            .lynis
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        run.finding(
            f.severity,
            format!("{host}: {}", f.subject),
            format!("{}{id}", f.message),
        );
        if f.severity == Severity::Critical {
            run.escalate(
                "access_unexpected",
                format!("{host}: {}", f.subject),
                format!("{:?}", f.kind),
                "none expected",
                f.message.clone(),
            );
        }
    }
}

/// Review every host (or `o.hosts`).
pub async fn access_review(env: &Environment, o: &AccessOptions, ro: &RunOptions) -> Report {
    env.execute("access_review", ro, |run| async move {
        let hosts = super::pick(env, &o.hosts)?;
        let root = o
            .root
            .clone()
            .unwrap_or_else(|| env.config.access.root.clone());
        let per = env.config.fleet.concurrency.max(1);
        let futs: Vec<_> = hosts
            .iter()
            .map(|h| review_host(env, &run, h, &root))
            .collect();
        let reviewed: Vec<HostAccess> = futures::stream::iter(futs).buffered(per).collect().await;
        let all = || reviewed.iter().flat_map(|h| &h.findings);
        let count = |s: Severity| all().filter(|f| f.severity == s).count();
        let out = AccessPayload {
            root: root.clone(),
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
            hosts: reviewed,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
