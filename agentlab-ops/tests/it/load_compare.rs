//! The load test's baseline verdict (a rerun of the same server passes, a slower one is
//! found regressed, a baseline that is not there is a clear error), the service's `/metrics`
//! before and after, the open loop's stages, and HTTP/2 against the real nginx.

use std::time::Duration;

use agentlab_ops::load::baseline::Verdict as Cmp;
use agentlab_ops::load::{ErrorKind, LoadPlan, Mode, Schedule};
use agentlab_ops::runbook::load_test::{LoadOptions, LoadPayload, load_test};
use agentlab_ops::{Environment, RunOptions, Verdict};
use tokio_util::sync::CancellationToken;

use super::load::server;

fn env(base: &str, journal: &std::path::Path) -> Environment {
    let url = agentlab_ops::config::BaseUrl::parse(base).unwrap();
    let policy = agentlab_ops::retry::RetryPolicy::default();
    let probe = agentlab_ops::probe::HttpProbe::new(url.clone(), policy).unwrap();
    Environment::builder("load")
        .probe(probe)
        .configure(move |c| {
            c.service.base_url = url;
            // Generous bands: the test asserts the verdicts, not this machine's jitter.
            c.load.noise = 0.5;
            c.load.latency_floor = agentlab_ops::config::Dur(Duration::from_millis(5));
        })
        .journal(journal)
        .build()
}

fn opts(url: String, label: Option<&str>, baseline: Option<&str>) -> LoadOptions {
    LoadOptions {
        url: Some(url),
        requests: Some(5000),
        concurrency: 50,
        label: label.map(str::to_string),
        baseline: baseline.map(str::to_string),
        ..LoadOptions::default()
    }
}

#[tokio::test]
async fn a_rerun_passes_a_slower_server_regresses_and_metrics_are_captured_around_the_run() {
    let base = server().await;
    let dir = tempfile::tempdir().unwrap();
    let env = env(&base, &dir.path().join("journal.jsonl"));
    let ro = RunOptions::default();
    let fixed = format!("{base}/fixed");
    let first = load_test(&env, &opts(fixed.clone(), Some("v1"), None), &ro).await;
    assert_eq!(first.verdict, Verdict::Healthy, "{}", first.to_text(false));
    let p: LoadPayload = first.payload_as().unwrap();
    assert!(p.summary.histograms.corrected.len() > 100);
    // /metrics before and after: the counter moved by exactly the requests made.
    let served = p
        .metrics
        .iter()
        .find(|m| m.metric == "app_served_total")
        .unwrap();
    assert_eq!(
        served.after.unwrap() - served.before.unwrap(),
        5000.0,
        "{:?}",
        p.metrics
    );

    let again = load_test(&env, &opts(fixed.clone(), None, Some("v1")), &ro).await;
    let p: LoadPayload = again.payload_as().unwrap();
    let c = p.comparison.expect("compared");
    assert_eq!(c.verdict, Cmp::Pass, "{c:#?}");
    assert_eq!(c.baseline_run, first.run_id);
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));

    // The same label on a server four times slower: p50 and p99 regressed, escalated.
    // 2000 requests are enough for p99's interval (20 beyond it).
    let mut o = opts(format!("{base}/slower"), None, Some("v1"));
    o.requests = Some(2000);
    let slow = load_test(&env, &o, &ro).await;
    assert_eq!(slow.verdict, Verdict::Escalate, "{}", slow.to_text(false));
    let p: LoadPayload = slow.payload_as().unwrap();
    let c = p.comparison.unwrap();
    assert_eq!(c.verdict, Cmp::Regressed, "{c:#?}");
    let regressed: Vec<&str> = c
        .metrics
        .iter()
        .filter(|m| m.verdict == Cmp::Regressed)
        .map(|m| m.metric.as_str())
        .collect();
    assert_eq!(regressed, ["p50", "p99"], "{c:#?}");
    assert!(
        slow.escalations
            .iter()
            .all(|e| e.criterion == "load_regressed")
    );
    assert_eq!(slow.escalations.len(), 2);

    // `last`: the newest run on the same URL — the rerun, not the slow one.
    let last = load_test(&env, &opts(fixed.clone(), None, Some("last")), &ro).await;
    let c = last
        .payload_as::<LoadPayload>()
        .unwrap()
        .comparison
        .unwrap();
    assert_eq!(c.baseline_run, again.run_id);

    // A baseline that is not there fails before any request, naming it and the journal.
    let r = load_test(&env, &opts(fixed, None, Some("v9")), &ro).await;
    let e = r.error.expect("an error");
    assert!(
        e.message.contains("\"v9\"") && e.message.contains("journal.jsonl"),
        "{}",
        e.message
    );
    assert!(r.checks.iter().all(|c| c.name != "load"));
}

#[tokio::test]
async fn too_few_requests_are_inconclusive_not_a_pass() {
    let base = server().await;
    let dir = tempfile::tempdir().unwrap();
    let env = env(&base, &dir.path().join("journal.jsonl"));
    let ro = RunOptions::default();
    let url = format!("{base}/fixed");
    let mut o = opts(url, Some("small"), None);
    o.requests = Some(50);
    load_test(&env, &o, &ro).await;
    o.label = None;
    o.baseline = Some("small".into());
    let r = load_test(&env, &o, &ro).await;
    let c = r.payload_as::<LoadPayload>().unwrap().comparison.unwrap();
    assert_eq!(c.verdict, Cmp::Inconclusive, "{c:#?}");
    let step = r.checks.iter().find(|c| c.name == "baseline").unwrap();
    assert_eq!(step.outcome.as_str(), "warn");
    assert!(step.summary.contains("at least 1000"), "{}", step.summary);
}

#[tokio::test]
async fn stages_ramp_and_hold_the_rate_second_by_second() {
    let base = server().await;
    // 0 → 200/s over a second (100 requests), then 200/s for a second.
    let schedule = Schedule::parse(0.0, &["1s:200".into(), "1s@200".into()]).unwrap();
    let plan = LoadPlan::new(Mode::Open(schedule), 20, Duration::ZERO);
    assert_eq!(plan.duration, Duration::from_secs(2));
    let s = agentlab_ops::load::run(plan, &format!("{base}/fixed"), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.requests, 300, "{s:?}");
    assert_eq!(s.intended_rate, Some(150.0));
    let per_second: Vec<u64> = s.timeline.iter().map(|t| t.ok).collect();
    // Answers land 20 ms after their start: a few of a second's requests fall into the next.
    assert!((85..=105).contains(&per_second[0]), "{per_second:?}");
    assert!((185..=210).contains(&per_second[1]), "{per_second:?}");
    assert!(s.latency_ms.p99 < 80.0, "{:?}", s.latency_ms);
}

#[tokio::test]
async fn http2_streams_share_the_connections_asked_for_on_the_real_nginx() {
    if super::common::servers("http2").is_none() {
        return;
    }
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k}: set by scripts/test-servers.sh"))
    };
    let url = format!("http://127.0.0.1:{}/h2", var("AGENTLAB_TEST_NGINX_H2_PORT"));
    let log = std::path::Path::new(&var("AGENTLAB_TEST_NGINX_DIR")).join("logs/h2.log");
    let before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    let mut plan = LoadPlan::new(
        Mode::Closed {
            requests: Some(1000),
        },
        20,
        Duration::from_secs(30),
    );
    plan.http2 = true;
    plan.connections = 2;
    let s = agentlab_ops::load::run(plan, &url, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((s.requests, s.failed), (1000, 0), "{s:?}");
    // nginx logs each request's protocol and connection serial number.
    let mut lines = String::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log).unwrap_or_default();
        if lines.lines().count() >= before + 1000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours: Vec<&str> = lines.lines().skip(before).collect();
    assert_eq!(ours.len(), 1000);
    assert!(
        ours.iter().all(|l| l.starts_with("HTTP/2.0 ")),
        "{:?}",
        &ours[..3]
    );
    let conns: std::collections::BTreeSet<&str> =
        ours.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(conns.len(), 2, "{conns:?}");
    // HTTP/2 keeps its connections: asked to close each, the plan is refused.
    let mut plan = LoadPlan::new(
        Mode::Closed { requests: Some(50) },
        5,
        Duration::from_secs(30),
    );
    plan.keep_alive = false;
    plan.http2 = true;
    let e = agentlab_ops::load::run(plan, &url, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("kept alive"), "{e}");
}

/// A raw server that reads each request and closes the connection without an answer.
async fn closing_server() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test]
async fn timeouts_resets_and_a_server_that_stops_are_counted_by_kind_never_a_hang() {
    let started = std::time::Instant::now();
    // A server that never answers: every request times out after 300 ms.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", hang.local_addr().unwrap());
    let mut plan = LoadPlan::new(
        Mode::Closed { requests: Some(6) },
        3,
        Duration::from_secs(30),
    );
    plan.timeout = Duration::from_millis(300);
    let s = agentlab_ops::load::run(plan, &url, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.errors.get(&ErrorKind::Timeout), Some(&6), "{s:?}");
    drop(hang);
    // Closed without an answer: resets.
    let plan = LoadPlan::new(
        Mode::Closed { requests: Some(20) },
        2,
        Duration::from_secs(30),
    );
    let s = agentlab_ops::load::run(plan, &closing_server().await, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.errors.get(&ErrorKind::Reset), Some(&20), "{s:?}");
    // A server that stops mid-run: answers, then resets and refused connections, all counted.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(l, app).await;
    });
    let schedule = Schedule::constant(200.0, Duration::from_secs(2)).unwrap();
    let plan = LoadPlan::new(Mode::Open(schedule), 4, Duration::ZERO);
    let run =
        tokio::spawn(
            async move { agentlab_ops::load::run(plan, &url, CancellationToken::new()).await },
        );
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.abort();
    let s = run.await.unwrap().unwrap();
    assert_eq!(
        s.requests, 400,
        "every planned request is accounted for: {s:?}"
    );
    let ok = s.statuses.get("2xx").copied().unwrap_or(0);
    let errors: u64 = s.errors.values().sum();
    assert!(
        ok > 50 && errors > 100 && ok + errors == 400,
        "{ok} ok, {:?}",
        s.errors
    );
    assert!(s.errors.contains_key(&ErrorKind::Connect), "{:?}", s.errors);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
