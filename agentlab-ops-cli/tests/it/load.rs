//! `agentlab-ops load URL -n N -c C`, as `ab` takes it: a report with the percentiles, exit 0;
//! a failed threshold exits 1 and names it; a labelled run is the baseline of the next.

use crate::common;
use common::{bin, text};

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A server answering 200 to every GET, and a config directory whose journal is its own.
fn setup() -> (tokio::runtime::Runtime, MockServer, tempfile::TempDir) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&s)
            .await;
        s
    });
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("agentlab-ops.toml"),
        "environment = \"cli-load\"\n[service]\nbase_url = \"http://127.0.0.1:9\"\n\
         [investigation]\nmetrics_path = \"\"\n[journal]\npath = \"journal.jsonl\"\n",
    )
    .unwrap();
    (rt, server, d)
}

#[test]
fn ab_style_flags_run_the_load_test_and_a_failed_threshold_exits_1() {
    let (_rt, server, d) = setup();
    let url = format!("{}/health", server.uri());
    let o = bin(d.path())
        .args([
            "--format", "json", "load", &url, "-n", "300", "-c", "10", "-k",
        ])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &r["payload"]["summary"];
    assert_eq!(s["requests"], 300, "{out}");
    assert_eq!(s["statuses"]["2xx"], 300);
    assert!(s["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    let o = bin(d.path())
        .args([
            "load",
            &url,
            "-n",
            "50",
            "--threshold",
            "rate>100000000",
            "--threshold",
            "p99<10s",
        ])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("rate>100000000"), "{all}");
    assert!(!all.contains("p99<10s failed"), "{all}");
    drop(server);
}

#[test]
fn a_labelled_run_is_the_baseline_of_the_next_and_a_missing_one_exits_2() {
    let (rt, server, d) = setup();
    let url = format!("{}/health", server.uri());
    // A labelled run, then a rerun compared with it: `pass`, exit 0.
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--format",
            "json",
            "load",
            url.as_str(),
            "-n",
            "2000",
            "-c",
            "10",
        ];
        args.extend(extra);
        let o = bin(d.path()).args(&args).output().unwrap();
        let out = text(&o.stdout);
        (
            o.status.code(),
            serde_json::from_str::<serde_json::Value>(&out).unwrap_or_default(),
            out,
        )
    };
    let (code, first, out) = run(&["--label", "v1"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, again, out) = run(&["--baseline", "v1"]);
    let c = &again["payload"]["comparison"];
    assert_eq!(c["baseline_run"], first["run_id"], "{out}");
    // The verdict itself is the core's (tested there against a server of its own thread);
    // here, on a mock server sharing two busy cores, p99 may move: the exit code follows it.
    let expected = match c["verdict"].as_str() {
        Some("pass" | "inconclusive") => Some(0),
        Some("regressed") => Some(1),
        v => panic!("verdict {v:?}: {out}"),
    };
    assert_eq!(code, expected, "{out}");
    let (code, _, out) = run(&["--baseline", "nope"]);
    assert_eq!(code, Some(2), "{out}");
    drop(server);
    drop(rt);
}
