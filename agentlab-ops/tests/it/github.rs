//! The GitHub Actions deployer against a wiremock GitHub: dispatch and discovery, retries,
//! rate limits, the deployer conformance suite, and deployments that fail or never end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agentlab_ops::deploy::{Conclusion, GitHubActions, GitHubOptions, run_workflow};
use agentlab_ops::retry::RetryPolicy;
use agentlab_ops::runbook::{DeployOptions, standard_deploy};
use agentlab_ops::{Clock, Environment, ManualClock, MemoryRepo, Outcome, Secret, Verdict};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common;
use crate::deploy_lab;
use deploy_lab::*;

// --- GitHub Actions against wiremock -------------------------------------------------------

fn gh(server: &MockServer, clock: ManualClock) -> GitHubActions {
    GitHubActions::new(
        GitHubOptions {
            api_url: server.uri(),
            repository: "acme/agent-lab".into(),
            git_ref: "main".into(),
            token: Secret::new("ghp_test_token_value", "test").into(),
            policy: RetryPolicy {
                attempts: 3,
                attempt_timeout: Duration::from_secs(5),
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
            max_rate_wait: Duration::from_secs(900),
            discovery_timeout: Duration::from_secs(60),
        },
        Arc::new(clock),
    )
    .unwrap()
}

const RUNS: &str = "/repos/acme/agent-lab/actions/workflows/deploy.yml/runs";
const DISPATCH: &str = "/repos/acme/agent-lab/actions/workflows/deploy.yml/dispatches";

async fn mount_discovery(server: &MockServer, wf: &str, id: u64) {
    let runs = format!("/repos/acme/agent-lab/actions/workflows/{wf}/runs");
    // Before the dispatch: an old run. After: the new one too.
    Mock::given(method("GET"))
        .and(path(runs.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total_count": 1, "workflow_runs": [{"id": 7, "html_url": "https://gh/runs/7"}]}),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(runs))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total_count": 2, "workflow_runs": [
            {"id": id, "html_url": format!("https://gh/runs/{id}")},
            {"id": 7, "html_url": "https://gh/runs/7"}]}),
        ))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "/repos/acme/agent-lab/actions/workflows/{wf}/dispatches"
        )))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(server)
        .await;
}

fn run_json(status: &str, conclusion: Option<&str>, id: u64) -> serde_json::Value {
    json!({"id": id, "status": status, "conclusion": conclusion, "html_url": format!("https://gh/runs/{id}")})
}

#[tokio::test]
async fn github_dispatch_discovery_and_success() {
    let server = MockServer::start().await;
    mount_discovery(&server, "deploy.yml", 42).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json("in_progress", None, 42)))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json(
            "completed",
            Some("success"),
            42,
        )))
        .with_priority(2)
        .mount(&server)
        .await;
    let clock = ManualClock::starting_now();
    let d = gh(&server, clock.clone());
    let inputs = BTreeMap::from([("environment".to_string(), "production".to_string())]);
    let r = run_workflow(
        &d,
        &clock,
        "deploy.yml",
        &inputs,
        Duration::from_secs(10),
        Duration::from_secs(1800),
    )
    .await
    .unwrap();
    assert_eq!(r.conclusion, Conclusion::Success);
    assert_eq!(r.run.id, "42");
    assert_eq!(r.run.url.as_deref(), Some("https://gh/runs/42"));
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(10), Duration::from_secs(15)]
    );
    let reqs = server.received_requests().await.unwrap();
    let dispatch = reqs.iter().find(|r| r.url.path() == DISPATCH).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&dispatch.body).unwrap();
    assert_eq!(body["ref"], "main");
    assert_eq!(body["inputs"]["environment"], "production");
    assert_eq!(
        dispatch.headers.get("authorization").unwrap(),
        "Bearer ghp_test_token_value"
    );
}

#[tokio::test]
async fn github_dispatch_with_run_details_needs_no_discovery() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"workflow_runs": []})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(DISPATCH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"workflow_run_id": 99, "html_url": "https://gh/runs/99"})),
        )
        .mount(&server)
        .await;
    let d = gh(&server, ManualClock::starting_now());
    let h = agentlab_ops::Deployer::dispatch(&d, "deploy.yml", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        (h.id.as_str(), h.url.as_deref()),
        ("99", Some("https://gh/runs/99"))
    );
}

#[tokio::test]
async fn github_5xx_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(DISPATCH))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_discovery(&server, "deploy.yml", 42).await;
    let d = gh(&server, ManualClock::starting_now());
    let h = agentlab_ops::Deployer::dispatch(&d, "deploy.yml", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(h.id, "42");
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == DISPATCH)
        .count();
    assert_eq!(posts, 3);
}

#[tokio::test]
async fn github_rate_limit_waits_until_the_reset() {
    let server = MockServer::start().await;
    let clock = ManualClock::starting_now();
    let reset = clock.now().timestamp() + 120;
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/42"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json(
            "completed",
            Some("success"),
            42,
        )))
        .with_priority(2)
        .mount(&server)
        .await;
    let d = gh(&server, clock.clone());
    let run = agentlab_ops::deploy::RunHandle {
        workflow: "deploy.yml".into(),
        id: "42".into(),
        url: None,
    };
    let s = agentlab_ops::Deployer::status(&d, &run).await.unwrap();
    assert_eq!(s.conclusion, Some(Conclusion::Success));
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(121)]);

    // A reset further away than allowed is an error, not a wait.
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/43"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .set_body_json(json!({"message": "slow down"})),
        )
        .mount(&server)
        .await;
    let run = agentlab_ops::deploy::RunHandle {
        workflow: "deploy.yml".into(),
        id: "43".into(),
        url: None,
    };
    let e = agentlab_ops::Deployer::status(&d, &run).await.unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::RateLimited);
}

/// A GitHub whose deploy runs end with `deploy` (or never end), whose rollback runs succeed.
pub(crate) async fn github_env(
    deploy: Option<&str>,
    review: crate::github_review::Fixture,
) -> (MockServer, Environment, ManualClock) {
    let server = MockServer::start().await;
    crate::github_review::mount_review(&server, review).await;
    mount_discovery(&server, "deploy.yml", 42).await;
    mount_discovery(&server, "rollback.yml", 43).await;
    let deploy_run = match deploy {
        Some(c) => run_json("completed", Some(c), 42),
        None => run_json("in_progress", None, 42),
    };
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(deploy_run))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/agent-lab/actions/runs/43"))
        .respond_with(ResponseTemplate::new(200).set_body_json(run_json(
            "completed",
            Some("success"),
            43,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/agent-lab/commits/.+/check-runs$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total_count": 2, "check_runs": [
            {"name": "tests", "status": "completed", "conclusion": "success"},
            {"name": "lint", "status": "completed", "conclusion": "skipped"}]}),
        ))
        .mount(&server)
        .await;
    let clock = ManualClock::starting_now();
    let env = Environment::builder("gh")
        .probe(healthy_probe())
        .slo_source(slo(0.9, 0.001))
        .slo("availability", 0.999)
        .deployer(gh(&server, clock.clone()))
        .repo(MemoryRepo::new("1.5.0", &["v1.4.2"]))
        .clock(clock.clone())
        .build();
    (server, env, clock)
}

fn dispatched(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| {
            r.url
                .path()
                .split('/')
                .nth(6)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn github_failed_deploy_runs_the_rollback_workflow() {
    let (server, env, _) = github_env(Some("failure"), Default::default()).await;
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "gate:ci_checks" && c.outcome == Outcome::Pass)
    );
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "deploy_failed")
        .unwrap();
    assert!(
        e.observed.contains("https://gh/runs/42") && e.observed.contains("failure"),
        "{e:?}"
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(dispatched(&reqs), vec!["deploy.yml", "rollback.yml"]);
    let rb = reqs
        .iter()
        .find(|r| r.url.path().contains("rollback.yml/dispatches"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&rb.body).unwrap();
    assert_eq!(body["inputs"]["version"], "v1.4.2");
    assert!(
        body["inputs"]["reason"]
            .as_str()
            .unwrap()
            .contains("deploy.yml workflow failed")
    );
    assert!(!r.to_json().contains("ghp_test_token_value"));
}

#[tokio::test]
async fn github_run_that_never_completes_times_out_and_rolls_back() {
    let (server, env, clock) = github_env(None, Default::default()).await;
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "deploy_failed")
        .unwrap();
    assert!(e.observed.contains("still in progress after 30m"), "{e:?}");
    assert_eq!(
        dispatched(&server.received_requests().await.unwrap()),
        vec!["deploy.yml", "rollback.yml"]
    );
    let waited: Duration = clock.sleeps().iter().sum();
    assert!(waited >= Duration::from_secs(1800), "{waited:?}");
}

/// The deployer conformance suite against the wiremock GitHub: `deploy.yml` runs succeed,
/// `broken.yml` runs fail, any other workflow is a 404, as is any other run.
#[tokio::test]
async fn github_passes_the_deployer_conformance_suite() {
    use agentlab_ops::testing::{DeployerFixture, deployer_conformance};
    let server = MockServer::start().await;
    for (wf, first) in [("deploy.yml", 100u64), ("broken.yml", 200)] {
        let runs = format!("/repos/acme/agent-lab/actions/workflows/{wf}/runs");
        // Each dispatch returns the next run id, as GitHub's newer API does.
        let next = std::sync::atomic::AtomicU64::new(first);
        Mock::given(method("POST"))
            .and(path(format!(
                "/repos/acme/agent-lab/actions/workflows/{wf}/dispatches"
            )))
            .respond_with(move |_: &Request| {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                ResponseTemplate::new(200).set_body_json(json!({
                    "workflow_run_id": id,
                    "html_url": format!("https://gh/runs/{id}"),
                }))
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(runs))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": 0, "workflow_runs": []})),
            )
            .mount(&server)
            .await;
    }
    for (range, conclusion) in [(100..110u64, "success"), (200..210, "failure")] {
        for id in range {
            Mock::given(method("GET"))
                .and(path(format!("/repos/acme/agent-lab/actions/runs/{id}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(run_json(
                    "completed",
                    Some(conclusion),
                    id,
                )))
                .mount(&server)
                .await;
        }
    }
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/repos/acme/agent-lab/actions/workflows/.+/dispatches$",
        ))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/repos/acme/agent-lab/actions/runs/\d+$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .with_priority(10)
        .mount(&server)
        .await;
    let states = common::mocks::github_workflows(&server, &["deploy.yml", "broken.yml"]).await;
    crate::github_review::mount_review(&server, Default::default()).await;
    let clock = ManualClock::starting_now();
    let d = gh(&server, clock.clone());
    let fixture = DeployerFixture {
        succeeds: "deploy.yml",
        fails: "broken.yml",
        unknown: "no-such-workflow.yml",
    };
    deployer_conformance(&d, &clock, fixture).await;
    // The suite disabled and enabled deploy.yml through the API: it is active again.
    assert_eq!(states.lock().unwrap()["deploy.yml"], "active");
}
