//! `agentlab-ops slo respond` end to end against the real servers: SLO data from the test
//! Prometheus (the fixture's planted spike makes it red), GitHub's workflow API and PagerDuty's
//! Events API on wiremock servers that keep their state, Slack on a wiremock webhook, the freeze
//! on two local hosts. Red disables exactly the configured workflows and pages once; a second
//! run sends nothing; dry-run changes nothing on any server; `--resume-normal` enables what was
//! disabled and resolves the same page; a later deployment stops at the freeze gate.

use crate::common;
use common::{bin, text};

use crate::mocks;

use std::path::Path;
use std::process::Output;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn prometheus() -> Option<(String, i64)> {
    let url = match std::env::var("AGENTLAB_TEST_PROM_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => return None,
        Err(_) => {
            panic!("needs the test Prometheus: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)")
        }
    };
    let dir = std::env::var("AGENTLAB_TEST_PROM_DIR").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/expected.json")).unwrap())
            .unwrap();
    Some((url, v["end"].as_i64().unwrap()))
}

fn config(d: &Path, prom: &(String, i64), gh: &str, pd: &str) -> String {
    format!(
        r#"environment = "prod"
[service]
base_url = "http://127.0.0.1:9"
[prometheus]
url = "{}"
time = "{}"
[[slo]]
name = "availability"
target = 0.999
source = "prometheus"
good = 'sum(increase(http_requests_total{{code!~"5.."}}[$window]))'
total = 'sum(increase(http_requests_total[$window]))'
[deploy]
provider = "github"
repository = "acme/agent-lab"
token = "${{GH_TOKEN}}"
api_url = "{gh}"
[pagerduty]
api_url = "{pd}"
events_url = "{pd}"
routing_key = "${{PD_ROUTING_KEY}}"
[notify]
slack_webhook_url = "${{SLACK_WEBHOOK_URL}}"
[slo_response]
workflows = ["deploy.yml"]
red_workflows = ["hotfix.yml"]
freeze_flag = "{}/DEPLOY_FREEZE.{{host}}"
[[hosts]]
name = "web-1"
[[hosts]]
name = "web-2"
"#,
        prom.0,
        prom.1,
        d.display()
    )
}

/// `agentlab-ops --format json [global] slo respond [options]`.
fn run(d: &Path, slack: &str, global: &[&str], args: &[&str]) -> (Output, serde_json::Value) {
    let o = bin(d)
        .env("GH_TOKEN", "ghp_slo_response_test")
        .env("PD_ROUTING_KEY", "R0UT1NGKEYSLO")
        .env("SLACK_WEBHOOK_URL", slack)
        .args(["--format", "json"])
        .args(global)
        .args(["slo", "respond"])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    (o, v)
}

#[test]
fn red_pages_once_dry_run_touches_nothing_and_resume_takes_back_exactly_that() {
    let Some(prom) = prometheus() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (gh, pd, slack, states, events) = rt.block_on(async {
        let (gh, pd, slack) = (
            MockServer::start().await,
            MockServer::start().await,
            MockServer::start().await,
        );
        let states = mocks::github_workflows(&gh, &["deploy.yml", "hotfix.yml", "docs.yml"]).await;
        let events = mocks::pagerduty_events(&pd).await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        (gh, pd, slack, states, events)
    });
    let hook = format!("{}/hook", slack.uri());
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), &prom, &gh.uri(), &pd.uri());
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    let changes = |s: &MockServer| {
        rt.block_on(s.received_requests())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method != wiremock::http::Method::GET)
            .count()
    };

    // Dry-run: every read, no change on any server, no freeze.
    let (o, v) = run(d.path(), &hook, &["--dry-run"], &[]);
    assert_eq!(v["payload"]["zone"], "red", "{}", text(&o.stderr));
    assert_eq!((changes(&gh), changes(&pd), changes(&slack)), (0, 0, 0));
    assert!(!d.path().join("DEPLOY_FREEZE.web-1").exists());

    // Red: both workflows disabled, one page, one message; docs.yml untouched.
    let (o, v) = run(d.path(), &hook, &[], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "red escalates: {}",
        text(&o.stderr)
    );
    let run_id = v["run_id"].as_str().unwrap().to_string();
    {
        let st = states.lock().unwrap();
        assert_eq!(st["deploy.yml"], "disabled_manually");
        assert_eq!(st["hotfix.yml"], "disabled_manually");
        assert_eq!(st["docs.yml"], "active");
    }
    {
        let ev = events.lock().unwrap();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["event_action"], "trigger");
        assert_eq!(
            ev[0]["dedup_key"],
            run_id.as_str(),
            "the page's key is the run id"
        );
    }
    assert_eq!(changes(&slack), 1);
    for h in ["web-1", "web-2"] {
        let f = std::fs::read_to_string(d.path().join(format!("DEPLOY_FREEZE.{h}"))).unwrap();
        assert!(f.contains("\"all\""), "{f}");
        assert!(
            !f.contains("R0UT1NGKEYSLO") && !f.contains("ghp_"),
            "no secret: {f}"
        );
    }
    let out = text(&o.stdout) + &text(&o.stderr);
    assert!(
        !out.contains("R0UT1NGKEYSLO") && !out.contains("ghp_slo"),
        "{out}"
    );

    // Again: nothing more is sent anywhere.
    let before = (changes(&gh), changes(&pd), changes(&slack));
    run(d.path(), &hook, &[], &[]);
    assert_eq!(
        (changes(&gh), changes(&pd), changes(&slack)),
        before,
        "idempotent"
    );

    // A deployment stops at the freeze gate (dry-run: gates only).
    let o = bin(d.path())
        .env("GH_TOKEN", "ghp_slo_response_test")
        .args([
            "deploy",
            "standard",
            "--dry-run",
            "--format",
            "json",
            "--critical",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    let gate = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gate:deploy_freeze")
        .cloned()
        .unwrap_or_else(|| panic!("{}", text(&o.stdout)));
    assert_eq!(gate["outcome"], "fail", "{gate}");

    // Resume: exactly what was disabled is enabled, the same page resolved, the freeze gone.
    states
        .lock()
        .unwrap()
        .insert("docs.yml".into(), "disabled_manually".into());
    let (o, _) = run(d.path(), &hook, &[], &["--resume-normal"]);
    assert!(
        o.status.code() == Some(1),
        "still red, so escalated: {}",
        text(&o.stderr)
    );
    {
        let st = states.lock().unwrap();
        assert_eq!(st["deploy.yml"], "active");
        assert_eq!(st["hotfix.yml"], "active");
        assert_eq!(
            st["docs.yml"], "disabled_manually",
            "not ours: left as it is"
        );
    }
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["event_action"], "resolve");
    assert_eq!(ev[1]["dedup_key"], run_id.as_str());
    assert!(!d.path().join("DEPLOY_FREEZE.web-1").exists());
    assert!(!d.path().join("DEPLOY_FREEZE.web-2").exists());
}
