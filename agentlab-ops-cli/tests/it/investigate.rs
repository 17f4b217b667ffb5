//! `agentlab-ops investigate` end to end: the service and two dependencies on wiremock (one
//! answering only with the right bearer token, read from `${OPENROUTER_API_KEY}`, the other
//! failing), the metrics snapshot from the test Prometheus as well as `/metrics`, the log of
//! a local host with an incident planted 10 minutes ago, PagerDuty's Events API. No known
//! issue matches: it escalates, pages once with the run id; dry-run pages nobody; the token
//! never appears in the output or the journal.

use crate::common;
use common::{bin, text};

#[allow(dead_code)]
use crate::mocks;

use std::path::Path;

use agentlab_ops::testing::{FLOODER, LogFixture, write_log};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "sk-or-v1-investigate-0123456789";

fn prometheus() -> Option<(String, i64)> {
    match std::env::var("AGENTLAB_TEST_PROM_URL") {
        Ok(u) => {
            let dir = std::env::var("AGENTLAB_TEST_PROM_DIR").unwrap();
            let v: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(format!("{dir}/expected.json")).unwrap(),
            )
            .unwrap();
            Some((u, v["end"].as_i64().unwrap()))
        }
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => None,
        Err(_) => panic!("needs the test Prometheus: run ./scripts/test.sh"),
    }
}

async fn service(s: &MockServer) {
    let ok = |b: &str| ResponseTemplate::new(200).set_body_string(b.to_string());
    Mock::given(path("/health/detailed"))
        .respond_with(ok(
            r#"{"status":"ok","components":{"app":{"status":"ok"}}}"#,
        ))
        .mount(s)
        .await;
    Mock::given(path("/metrics"))
        .respond_with(ok(
            "# TYPE http_requests_total counter\nhttp_requests_total{code=\"500\"} 77\n",
        ))
        .mount(s)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/models"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(r#"{"data":[]}"#))
        .mount(s)
        .await;
    Mock::given(path("/api/v1/models"))
        .respond_with(ResponseTemplate::new(401))
        .mount(s)
        .await;
    Mock::given(path("/vectors/health"))
        .respond_with(ResponseTemplate::new(500).set_body_string("index offline"))
        .mount(s)
        .await;
}

fn config(d: &Path, svc: &str, pd: &str, prom: &(String, i64)) -> String {
    format!(
        r#"environment = "prod"
[service]
base_url = "{svc}"
[prometheus]
url = "{}"
time = "{}"
[pagerduty]
api_url = "{pd}"
events_url = "{pd}"
routing_key = "${{PD_ROUTING_KEY}}"
[investigation]
log_file = "{}/{{host}}.log"
[investigation.queries]
requests_5m = 'sum(increase(http_requests_total[5m]))'
[[investigation.dependencies]]
name = "openrouter"
url = "{svc}/api/v1/models"
token = "${{OPENROUTER_API_KEY}}"
[[investigation.dependencies]]
name = "vectors"
url = "{svc}/vectors/health"
[[hosts]]
name = "web-1"
"#,
        prom.0,
        prom.1,
        d.display()
    )
}

fn run(d: &Path, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let o = bin(d)
        .env("OPENROUTER_API_KEY", TOKEN)
        .env("PD_ROUTING_KEY", "R0UT1NGKEYINV")
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    assert!(!text(&o.stdout).contains(TOKEN) && !text(&o.stderr).contains(TOKEN));
    (o, v)
}

#[test]
fn investigate_isolates_escalates_and_pages_once_without_leaking_the_token() {
    let Some(prom) = prometheus() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (svc, pd, events) = rt.block_on(async {
        let (svc, pd) = (MockServer::start().await, MockServer::start().await);
        service(&svc).await;
        let events = mocks::pagerduty_events(&pd).await;
        (svc, pd, events)
    });
    let d = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let f = LogFixture {
        start: now - 50 * 60,
        minutes: 50,
        lines_per_minute: 40,
        incident_minute: Some(40),
    };
    let mut w = std::fs::File::create(d.path().join("web-1.log")).unwrap();
    write_log(&mut w, f).unwrap();
    let cfg = config(d.path(), &svc.uri(), &pd.uri(), &prom);
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();

    let args = [
        "investigate",
        "--alert",
        "HighErrorRate",
        "--since",
        "1h",
        "--host",
        "web-1",
    ];
    let (o, v) = run(d.path(), &[&["--dry-run"], &args[..]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(events.lock().unwrap().is_empty(), "dry-run pages nobody");

    let (o, v2) = run(d.path(), &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    for v in [&v, &v2] {
        let p = &v["payload"];
        let deps: Vec<(&str, bool)> = p["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == "dependency")
            .map(|c| (c["name"].as_str().unwrap(), c["healthy"].as_bool().unwrap()))
            .collect();
        assert_eq!(deps, [("openrouter", true), ("vectors", false)], "{p:#}");
        let logs = &p["logs"][0];
        assert_eq!(
            logs["burst_start"].as_str().map(|t| t.len() > 10),
            Some(true),
            "{logs:#}"
        );
        assert_eq!(logs["top"][0]["key"], FLOODER);
        let names: Vec<&str> = p["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"http_requests_total") && names.contains(&"requests_5m"),
            "{names:?}"
        );
        assert_eq!(p["decision"]["kind"], "escalate");
        let reason = p["decision"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("dependency vectors is HTTP 500") && reason.contains("KeyError"),
            "{reason}"
        );
    }
    let run_id = v2["run_id"].as_str().unwrap();
    assert_eq!(v2["payload"]["decision"]["paged"], run_id);
    let sent = events.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            sent[0]["event_action"].as_str(),
            sent[0]["dedup_key"].as_str()
        ),
        (Some("trigger"), Some(run_id))
    );
    let journal = std::fs::read_to_string(d.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains(run_id) && !journal.contains(TOKEN));
    drop((svc, pd));
}
