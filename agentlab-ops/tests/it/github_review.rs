//! The checklist's "Code Review" and "Security Scan" gates against a wiremock GitHub shaped
//! like GitHub's REST API (`/commits/{sha}/pulls`, `/pulls/{n}/reviews`,
//! `/code-scanning/alerts`, `/dependabot/alerts`), and against the memory deployer in a
//! blue-green deployment.

use agentlab_ops::deploy::SecurityAlert;
use agentlab_ops::runbook::{BlueGreenOptions, DeployOptions, blue_green_deploy, standard_deploy};
use agentlab_ops::{Outcome, Report, Severity, Verdict};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::deploy_lab::*;
use crate::github::github_env;

/// What the fixture GitHub answers for the review and alert endpoints.
pub struct Fixture {
    pub pulls: Value,
    pub reviews: Value,
    pub code_scanning: ResponseTemplate,
    pub dependabot: Value,
}

fn pull(n: u64) -> Value {
    json!({"number": n, "state": "closed", "html_url": format!("https://github.com/acme/agent-lab/pull/{n}"),
        "merged_at": "2026-11-30T10:00:00Z", "merge_commit_sha": "0123abcd", "user": {"login": "dev"}})
}

fn review(who: &str, state: &str) -> Value {
    json!({"id": 1, "user": {"login": who}, "state": state, "commit_id": "0123abcd",
        "submitted_at": "2026-11-30T09:00:00Z", "body": ""})
}

fn dependabot_alert(n: u64, severity: &str, pkg: &str) -> Value {
    json!({"number": n, "state": "open", "html_url": format!("https://github.com/acme/agent-lab/security/dependabot/{n}"),
        "dependency": {"package": {"ecosystem": "pip", "name": pkg}, "manifest_path": "requirements.txt"},
        "security_advisory": {"ghsa_id": format!("GHSA-{n}{n}{n}{n}-abcd-efgh"), "severity": severity},
        "security_vulnerability": {"package": {"ecosystem": "pip", "name": pkg}, "severity": severity}})
}

impl Default for Fixture {
    /// A merged pull request approved by ann; no open alert.
    fn default() -> Self {
        Fixture {
            pulls: json!([pull(128)]),
            reviews: json!([review("bob", "COMMENTED"), review("ann", "APPROVED")]),
            code_scanning: ResponseTemplate::new(200).set_body_json(json!([])),
            dependabot: json!([]),
        }
    }
}

pub async fn mount_review(server: &MockServer, f: Fixture) {
    let at = |p: &str| format!("/repos/acme/agent-lab{p}");
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/agent-lab/commits/[^/]+/pulls$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(f.pulls))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/agent-lab/pulls/\d+/reviews$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(f.reviews))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(at("/code-scanning/alerts")))
        .respond_with(f.code_scanning)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(at("/dependabot/alerts")))
        .respond_with(ResponseTemplate::new(200).set_body_json(f.dependabot))
        .mount(server)
        .await;
}

fn gate<'a>(r: &'a Report, name: &str) -> &'a agentlab_ops::report::Check {
    let step = format!("gate:{name}");
    r.checks
        .iter()
        .find(|c| c.name == step)
        .unwrap_or_else(|| panic!("no {step} in {}", r.to_text(false)))
}

async fn deploy_with(f: Fixture, force: Option<&str>) -> (Report, MockServer) {
    let (server, env, _) = github_env(Some("success"), f).await;
    let mut o = DeployOptions::default();
    o.force = force.map(str::to_string);
    (standard_deploy(&env, &o).await, server)
}

async fn dispatches(server: &MockServer) -> usize {
    let reqs = server.received_requests().await.unwrap();
    reqs.iter().filter(|r| r.method.as_str() == "POST").count()
}

#[tokio::test]
async fn an_approved_pull_request_and_no_critical_alert_pass_both_gates() {
    let (r, server) = deploy_with(Fixture::default(), None).await;
    let g = gate(&r, "code_review");
    assert_eq!(g.outcome, Outcome::Pass, "{}", r.to_text(false));
    assert!(g.summary.contains("pull/128") && g.summary.contains("approved by ann"));
    assert!(
        !g.summary.contains("bob"),
        "a comment is no approval: {}",
        g.summary
    );
    let s = gate(&r, "security_scan");
    assert_eq!(s.outcome, Outcome::Pass, "{}", s.summary);
    assert!(
        s.summary.contains("code_scanning, dependabot"),
        "{}",
        s.summary
    );
    // The alert lists were asked for open critical alerts only.
    let reqs = server.received_requests().await.unwrap();
    let q: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/alerts"))
        .map(|r| r.url.query().unwrap_or("").to_string())
        .collect();
    assert_eq!(q.len(), 2);
    assert!(
        q.iter()
            .all(|q| q.contains("state=open") && q.contains("severity=critical"))
    );
    assert_eq!(dispatches(&server).await, 1, "{}", r.to_text(false));
}

#[tokio::test]
async fn changes_requested_stop_the_deployment_before_any_change() {
    let f = Fixture {
        reviews: json!([review("ann", "APPROVED"), review("cy", "CHANGES_REQUESTED")]),
        ..Fixture::default()
    };
    let (r, server) = deploy_with(f, None).await;
    assert_eq!(r.verdict, Verdict::Escalate);
    let g = gate(&r, "code_review");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(
        g.summary.contains("changes requested by cy"),
        "{}",
        g.summary
    );
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "deploy_gate_failed")
        .unwrap();
    assert_eq!(e.subject, "code_review");
    assert_eq!(dispatches(&server).await, 0);
}

#[tokio::test]
async fn a_commit_without_a_pull_request_or_approval_fails_the_review() {
    let f = Fixture {
        pulls: json!([]),
        ..Fixture::default()
    };
    let (r, _) = deploy_with(f, None).await;
    let g = gate(&r, "code_review");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(g.summary.contains("no pull request"), "{}", g.summary);
    let f = Fixture {
        reviews: json!([review("ann", "APPROVED"), review("ann", "DISMISSED")]),
        ..Fixture::default()
    };
    let (r, _) = deploy_with(f, None).await;
    let g = gate(&r, "code_review");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(g.summary.contains("no approval (0 of 1)"), "{}", g.summary);
}

#[tokio::test]
async fn a_critical_alert_blocks_unless_forced_with_a_reason() {
    let f = || Fixture {
        dependabot: json!([
            dependabot_alert(5, "critical", "jinja2"),
            dependabot_alert(6, "low", "six")
        ]),
        ..Fixture::default()
    };
    let (r, server) = deploy_with(f(), None).await;
    let g = gate(&r, "security_scan");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(
        g.summary
            .contains("1 open: dependabot #5 critical GHSA-5555-abcd-efgh in jinja2"),
        "{}",
        g.summary
    );
    assert!(
        !g.summary.contains("six"),
        "a low alert does not block: {}",
        g.summary
    );
    assert_eq!(dispatches(&server).await, 0);
    let (r, server) = deploy_with(f(), Some("hotfix for INC-7, CVE accepted by security")).await;
    assert_eq!(gate(&r, "security_scan").outcome, Outcome::Fail);
    let w = r.findings.iter().find(|f| f.subject == "gates").unwrap();
    assert_eq!(w.severity, Severity::Warning);
    assert!(
        w.message.contains("security_scan") && w.message.contains("INC-7"),
        "{}",
        w.message
    );
    assert_eq!(dispatches(&server).await, 1);
}

#[tokio::test]
async fn an_unreadable_scan_fails_the_gate_and_says_why() {
    let f = Fixture {
        code_scanning: ResponseTemplate::new(403).set_body_json(json!({
            "message": "Advanced Security must be enabled for this repository to use code scanning.",
            "documentation_url": "https://docs.github.com/rest"})),
        ..Fixture::default()
    };
    let (r, server) = deploy_with(f, None).await;
    let g = gate(&r, "security_scan");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(
        g.summary.contains("code_scanning alerts unreadable")
            && g.summary.contains("Advanced Security"),
        "{}",
        g.summary
    );
    assert!(!r.to_json().to_string().contains("ghp_test_token_value"));
    assert_eq!(dispatches(&server).await, 0);
    let f = Fixture {
        code_scanning: ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        ..Fixture::default()
    };
    let (r, _) = deploy_with(f, None).await;
    assert_eq!(gate(&r, "security_scan").outcome, Outcome::Fail);
}

#[tokio::test]
async fn blue_green_has_the_same_gates_on_the_memory_deployer() {
    let l = lab();
    let env = env_with(&l, slo(0.9, 0.001));
    l.deployer.set_alerts(vec![SecurityAlert {
        source: "code_scanning".into(),
        number: 3,
        severity: "critical".into(),
        what: "py/sql-injection".into(),
        url: None,
    }]);
    let mut o = BlueGreenOptions::default();
    o.version = Some("1.5.0".into());
    let r = blue_green_deploy(&env, &o).await;
    assert_eq!(gate(&r, "code_review").outcome, Outcome::Pass);
    let g = gate(&r, "security_scan");
    assert_eq!(g.outcome, Outcome::Fail);
    assert!(g.summary.contains("py/sql-injection"), "{}", g.summary);
    assert_eq!(r.verdict, Verdict::Escalate);
    assert!(l.router.calls.is_empty() && l.deployer.dispatched().is_empty());
}
