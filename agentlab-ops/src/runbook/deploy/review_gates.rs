//! The checklist's "Code Review" and "Security Scan" gates: the release commit's pull request
//! has the required approvals and no changes requested; no open alert of a blocking severity
//! in the configured sources.

use crate::config::DeployConfig;
use crate::environment::Environment;
use crate::error::ErrorKind;
use crate::report::Outcome;

use super::Gate;
use super::gates::gate;

/// The commit being released: the repository's head, else the configured ref.
pub(super) async fn release_commit(env: &Environment, cfg: &DeployConfig) -> String {
    match &env.repo {
        Some(r) => r.head().await.unwrap_or_else(|_| cfg.git_ref.clone()),
        None => cfg.git_ref.clone(),
    }
}

/// "Code Review: approved by required reviewers".
pub(super) async fn code_review(env: &Environment, cfg: &DeployConfig) -> Gate {
    let need = format!(
        "{} approving review{} and no changes requested",
        cfg.required_approvals,
        if cfg.required_approvals == 1 { "" } else { "s" }
    );
    let Some(d) = env.deployer.clone() else {
        return gate("code_review", Outcome::Skipped, "no deployer".into(), need);
    };
    let commit = release_commit(env, cfg).await;
    let short: String = commit.chars().take(12).collect();
    let r = match d.commit_review(&commit).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            let m = format!("{}: no reviews to read", d.describe());
            return gate("code_review", Outcome::Skipped, m, need);
        }
        Err(e) => {
            let m = format!("reviews of {short} unreadable: {e}");
            return gate("code_review", Outcome::Fail, m, need);
        }
        Ok(r) => r,
    };
    let Some(pull) = r.pull else {
        let m = format!("{short} came from no pull request: nobody reviewed it");
        return gate("code_review", Outcome::Fail, m, need);
    };
    let at = r.url.clone().unwrap_or_else(|| format!("#{pull}"));
    if !r.changes_requested_by.is_empty() {
        let m = format!(
            "{at}: changes requested by {}",
            r.changes_requested_by.join(", ")
        );
        return gate("code_review", Outcome::Fail, m, need);
    }
    let n = r.approved_by.len();
    let by = if n == 0 {
        "no approval".to_string()
    } else {
        format!("approved by {}", r.approved_by.join(", "))
    };
    let o = if n >= cfg.required_approvals as usize {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    gate(
        "code_review",
        o,
        format!("{at}: {by} ({n} of {})", cfg.required_approvals),
        need,
    )
}

/// "Security Scan: no critical vulnerabilities": each configured source read; an unreadable
/// one fails (a scan nobody can read proves nothing), a provider without one skips it.
pub(super) async fn security_scan(env: &Environment, cfg: &DeployConfig) -> Gate {
    let sev = cfg.blocking_severities.join("/");
    let need = format!("no open {sev} alert in {}", cfg.security_scan.join(", "));
    let Some(d) = env.deployer.clone() else {
        return gate(
            "security_scan",
            Outcome::Skipped,
            "no deployer".into(),
            need,
        );
    };
    let (mut read, mut problems, mut alerts) = (Vec::new(), Vec::new(), Vec::new());
    for source in &cfg.security_scan {
        match d.security_alerts(source, &cfg.blocking_severities).await {
            Err(e) if e.kind() == ErrorKind::Unsupported => {}
            Err(e) => problems.push(format!("{source} alerts unreadable: {e}")),
            Ok(a) => {
                read.push(source.clone());
                alerts.extend(a);
            }
        }
    }
    if read.is_empty() && problems.is_empty() {
        let m = format!("{}: no security alerts to read", d.describe());
        return gate("security_scan", Outcome::Skipped, m, need);
    }
    if !alerts.is_empty() {
        let shown: Vec<String> = alerts
            .iter()
            .take(5)
            .map(|a| format!("{} #{} {} {}", a.source, a.number, a.severity, a.what))
            .collect();
        let more = alerts.len().saturating_sub(5);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        problems.insert(
            0,
            format!("{} open: {}{tail}", alerts.len(), shown.join(", ")),
        );
    }
    if problems.is_empty() {
        let m = format!("no open {sev} alert in {}", read.join(", "));
        return gate("security_scan", Outcome::Pass, m, need);
    }
    gate("security_scan", Outcome::Fail, problems.join("; "), need)
}
