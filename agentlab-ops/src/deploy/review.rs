//! The deployment checklist's "Code Review" and "Security Scan": the release commit's pull
//! request and its reviews, and the repository's open security alerts, as GitHub's REST API
//! gives them (`/commits/{sha}/pulls`, `/pulls/{n}/reviews`, `/code-scanning/alerts`,
//! `/dependabot/alerts`), parsed into plain summaries the gates judge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

pub use crate::config::{ALERT_SOURCES, SEVERITIES};

/// The review state of the pull request a commit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSummary {
    /// The pull request (`None`: the commit came from no pull request).
    pub pull: Option<u64>,
    /// Its page.
    pub url: Option<String>,
    /// Reviewers whose latest review approves.
    pub approved_by: Vec<String>,
    /// Reviewers whose latest review requests changes.
    pub changes_requested_by: Vec<String>,
}

/// An open security alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityAlert {
    /// `code_scanning` or `dependabot`.
    pub source: String,
    /// The alert's number in the repository.
    pub number: u64,
    /// `critical`, `high`...
    pub severity: String,
    /// The rule (`js/sql-injection`) or the advisory and package (`GHSA-… in lodash`).
    pub what: String,
    /// Its page.
    pub url: Option<String>,
}

fn garbage(what: &str, op: &'static str) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("GitHub's answer has no {what}"),
    )
    .with_operation(op)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The pull request of `commit` among GitHub's `/commits/{sha}/pulls`: the merged one whose
/// merge commit it is, else the first merged, else the first.
pub fn pick_pull(v: &Value, commit: &str) -> Result<Option<(u64, Option<String>)>> {
    let pulls = v
        .as_array()
        .ok_or_else(|| garbage("list of pull requests", "deploy.review"))?;
    let merged = |p: &&Value| p.get("merged_at").is_some_and(|m| !m.is_null());
    let pick = pulls
        .iter()
        .find(|p| merged(p) && text(p, &["merge_commit_sha"]) == Some(commit))
        .or_else(|| pulls.iter().find(merged))
        .or_else(|| pulls.first());
    Ok(pick.and_then(|p| {
        let n = p.get("number")?.as_u64()?;
        Some((n, text(p, &["html_url"]).map(str::to_string)))
    }))
}

/// Each reviewer's latest deciding review (comments do not change a decision; a dismissal
/// clears it), as GitHub's branch protection counts them.
pub fn tally_reviews(v: &Value, pull: u64, url: Option<String>) -> Result<ReviewSummary> {
    let reviews = v
        .as_array()
        .ok_or_else(|| garbage("list of reviews", "deploy.review"))?;
    let mut latest: BTreeMap<String, &str> = BTreeMap::new();
    for r in reviews {
        let (Some(who), Some(state)) = (text(r, &["user", "login"]), text(r, &["state"])) else {
            continue;
        };
        match state {
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED" => {
                latest.insert(who.to_string(), state);
            }
            _ => {}
        }
    }
    let with = |s: &str| -> Vec<String> {
        latest
            .iter()
            .filter(|(_, st)| **st == s)
            .map(|(w, _)| w.clone())
            .collect()
    };
    Ok(ReviewSummary {
        pull: Some(pull),
        url,
        approved_by: with("APPROVED"),
        changes_requested_by: with("CHANGES_REQUESTED"),
    })
}

/// Open alerts of `severities` from one page of `/code-scanning/alerts` or
/// `/dependabot/alerts` (filtered here too: a server that ignores the query filter does not
/// let a low alert block, nor hide a critical one behind others).
pub fn parse_alerts(v: &Value, source: &str, severities: &[String]) -> Result<Vec<SecurityAlert>> {
    let alerts = v
        .as_array()
        .ok_or_else(|| garbage(&format!("list of {source} alerts"), "deploy.security"))?;
    let mut out = Vec::new();
    for a in alerts {
        if text(a, &["state"]).is_some_and(|s| s != "open") {
            continue;
        }
        let (severity, what) = if source == "dependabot" {
            let sev = text(a, &["security_advisory", "severity"])
                .or_else(|| text(a, &["security_vulnerability", "severity"]));
            let ghsa = text(a, &["security_advisory", "ghsa_id"]).unwrap_or("advisory");
            let pkg = text(a, &["dependency", "package", "name"])
                .or_else(|| text(a, &["security_vulnerability", "package", "name"]))
                .unwrap_or("?");
            (sev, format!("{ghsa} in {pkg}"))
        } else {
            let sev = text(a, &["rule", "security_severity_level"])
                .or_else(|| text(a, &["rule", "severity"]));
            let rule = text(a, &["rule", "id"]).unwrap_or("?");
            (sev, rule.to_string())
        };
        let severity = severity.unwrap_or("unknown").to_ascii_lowercase();
        if !severities.contains(&severity) {
            continue;
        }
        out.push(SecurityAlert {
            source: source.to_string(),
            number: a.get("number").and_then(Value::as_u64).unwrap_or(0),
            severity,
            what,
            url: text(a, &["html_url"]).map(str::to_string),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_later_approval_replaces_a_change_request_and_a_dismissal_clears() {
        let v = json!([
            {"user": {"login": "bob"}, "state": "CHANGES_REQUESTED"},
            {"user": {"login": "bob"}, "state": "COMMENTED"},
            {"user": {"login": "ann"}, "state": "APPROVED"},
            {"user": {"login": "cy"}, "state": "CHANGES_REQUESTED"},
            {"user": {"login": "bob"}, "state": "APPROVED"},
            {"user": {"login": "ann"}, "state": "DISMISSED"},
            {"state": "APPROVED"}
        ]);
        let s = tally_reviews(&v, 7, None).unwrap();
        assert_eq!(s.approved_by, vec!["bob"]);
        assert_eq!(s.changes_requested_by, vec!["cy"]);
        assert!(tally_reviews(&json!({"x": 1}), 7, None).is_err());
    }

    #[test]
    fn alerts_are_filtered_by_severity_and_state_here_too() {
        let v = json!([
            {"number": 1, "state": "open", "rule": {"id": "js/xss", "security_severity_level": "critical"}},
            {"number": 2, "state": "open", "rule": {"id": "js/low", "security_severity_level": "low"}},
            {"number": 3, "state": "dismissed", "rule": {"id": "js/x", "security_severity_level": "critical"}}
        ]);
        let a = parse_alerts(&v, "code_scanning", &["critical".into()]).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].number, a[0].what.as_str()), (1, "js/xss"));
        let d = json!([{"number": 9, "state": "open",
            "security_advisory": {"ghsa_id": "GHSA-1", "severity": "critical"},
            "dependency": {"package": {"name": "lodash"}}}]);
        let a = parse_alerts(&d, "dependabot", &["critical".into()]).unwrap();
        assert_eq!(a[0].what, "GHSA-1 in lodash");
    }
}
