//! The load generator against a test server with known behaviour: a fixed latency, a planted
//! error rate, a stall at a known time. Percentiles, error rate and achieved rate match the
//! schedule within stated tolerances; the open loop's corrected latency shows the stall that
//! the raw latency hides; refused connections are counted, never a hang; thresholds escalate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentlab_ops::load::{ErrorKind, LoadPlan, Mode, Schedule};
use agentlab_ops::runbook::load_test::{LoadOptions, LoadPayload, load_test};
use agentlab_ops::{Environment, RunOptions, Verdict};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// `/fixed`: 20 ms; `/slower`: 80 ms; `/errors`: every 10th request a 500; `/stall`: every
/// request that arrives between 0.5 s and 1.0 s after the first one waits until 1.0 s;
/// `/metrics`: how many `/fixed` and `/slower` answered, as a Prometheus counter.
pub(crate) async fn server() -> String {
    let n = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let sleep = |ms: u64, served: Arc<AtomicU64>| {
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            served.fetch_add(1, Ordering::SeqCst);
            "ok"
        })
    };
    let count = served.clone();
    let app = axum::Router::new()
        .route("/fixed", sleep(20, served.clone()))
        .route("/slower", sleep(80, served))
        .route(
            "/metrics",
            get(move || {
                let v = count.load(Ordering::SeqCst);
                async move { format!("# TYPE app_served_total counter\napp_served_total {v}\n") }
            }),
        )
        .route(
            "/errors",
            get(move || {
                let n = n.clone();
                async move {
                    if n.fetch_add(1, Ordering::SeqCst) % 10 == 9 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            }),
        )
        .route(
            "/stall",
            get(move || {
                let first = first.clone();
                async move {
                    let t0 = *first.get_or_init(Instant::now);
                    let at = t0.elapsed();
                    let (from, to) = (Duration::from_millis(500), Duration::from_millis(1000));
                    if at >= from && at < to {
                        tokio::time::sleep(to - at).await;
                    }
                    "ok"
                }
            }),
        );
    // On a runtime and a thread of its own: the server's latencies are not the client's
    // scheduling (a test runtime has one thread).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            let _ = axum::serve(l, app).await;
        });
    });
    format!("http://{addr}")
}

fn closed(n: u64, c: usize) -> LoadPlan {
    LoadPlan::new(
        Mode::Closed { requests: Some(n) },
        c,
        Duration::from_secs(30),
    )
}

#[tokio::test]
async fn a_fixed_latency_and_a_planted_error_rate_are_measured() {
    let base = server().await;
    let s = agentlab_ops::load::run(
        closed(200, 10),
        &format!("{base}/fixed"),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!((s.requests, s.failed), (200, 0), "{s:?}");
    assert_eq!(s.statuses["2xx"], 200);
    // 20 ms of server time, plus at most a few ms of loopback and scheduling.
    assert!(
        (20.0..35.0).contains(&s.latency_ms.p50),
        "p50 {}",
        s.latency_ms.p50
    );
    assert!(s.latency_ms.max < 200.0, "{:?}", s.latency_ms);
    // 10 connections each answered in ~20 ms: about 500 requests a second.
    assert!(
        (250.0..520.0).contains(&s.achieved_rate),
        "{}",
        s.achieved_rate
    );
    // Without keep-alive, the connections spread over two threads: the counts stay exact.
    let mut p = closed(500, 5);
    p.keep_alive = false;
    p.threads = 2;
    let s = agentlab_ops::load::run(p, &format!("{base}/errors"), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (s.requests, s.failed),
        (500, 50),
        "every 10th is a 500: {s:?}"
    );
    assert!((s.error_rate - 0.1).abs() < 1e-9);
    assert_eq!(s.statuses["5xx"], 50);
}

#[tokio::test]
async fn the_open_loop_holds_its_rate_and_shows_the_stall_the_raw_latency_hides() {
    let base = server().await;
    let schedule = Schedule::constant(100.0, Duration::from_secs(2)).unwrap();
    let plan = LoadPlan::new(Mode::Open(schedule), 5, Duration::ZERO);
    let s = agentlab_ops::load::run(plan, &format!("{base}/stall"), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(s.requests, 200, "{s:?}");
    assert_eq!(s.intended_rate, Some(100.0));
    assert!(
        (85.0..=101.0).contains(&s.achieved_rate),
        "{}",
        s.achieved_rate
    );
    // A quarter of the requests were meant to start during the 500 ms stall and waited out
    // its rest: P(latency > x) = 0.25 (1 - x / 500 ms), so the corrected p90 is ~300 ms.
    let (c, r) = (s.latency_ms, s.raw_latency_ms);
    assert!((230.0..380.0).contains(&c.p90), "corrected {c:?}");
    assert!(c.max >= 450.0, "corrected {c:?}");
    // Measured from the send, only the 5 requests in flight saw it.
    assert!(r.p90 < 60.0, "raw {r:?}");
    assert!(s.late > 0, "the generator fell behind during the stall");
    assert_eq!(s.timeline.len(), 3, "{:?}", s.timeline);
}

#[tokio::test]
async fn refused_connections_are_counted_and_the_run_ends() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let s = agentlab_ops::load::run(
        closed(50, 5),
        &format!("http://127.0.0.1:{port}/"),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.errors.get(&ErrorKind::Connect).copied(),
        Some(50),
        "{s:?}"
    );
    assert_eq!(s.error_rate, 1.0);
    assert!(started.elapsed() < Duration::from_secs(10));
}

fn env() -> Environment {
    Environment::builder("load")
        .configure(|c| c.journal.disabled = true)
        .build()
}

#[tokio::test]
async fn the_runbook_judges_thresholds_and_guards_production() {
    let base = server().await;
    let o = LoadOptions {
        url: Some(format!("{base}/fixed")),
        requests: Some(100),
        concurrency: 10,
        thresholds: vec!["p99<1ms".into(), "error_rate<1%".into()],
        ..LoadOptions::default()
    };
    let r = load_test(&env(), &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let p: LoadPayload = r.payload_as().unwrap();
    assert_eq!(p.summary.requests, 100);
    let failed: Vec<&str> = p
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.threshold.as_str())
        .collect();
    assert_eq!(failed, ["p99<1ms"]);
    assert_eq!(r.escalations[0].criterion, "load_threshold_failed");
    assert_eq!(r.escalations[0].subject, "p99<1ms");
    // Not loopback, not in [load] targets: refused before any request.
    let o = LoadOptions {
        url: Some("http://203.0.113.9/health".into()),
        ..LoadOptions::default()
    };
    let r = load_test(&env(), &o, &RunOptions::default()).await;
    let m = r.error.map(|e| e.message).unwrap_or_default();
    assert!(m.contains("i_mean_production"), "{m}");
    let o = LoadOptions {
        requests: Some(5),
        rate: Some(10.0),
        ..LoadOptions::default()
    };
    let r = load_test(&env(), &o, &RunOptions::default()).await;
    assert!(r.error.unwrap().message.contains("exclude each other"));
}

#[tokio::test]
async fn each_endpoint_and_each_status_class_has_its_own_latency() {
    let base = server().await;
    let o = LoadOptions {
        url: Some(format!("{base}/fixed")),
        endpoints: vec!["/slower".into(), format!("{base}/errors")],
        requests: Some(600),
        concurrency: 12,
        ..LoadOptions::default()
    };
    let r = load_test(&env(), &o, &RunOptions::default()).await;
    let p: LoadPayload = r.payload_as().expect("a payload");
    let s = &p.summary;
    let by: Vec<(&str, u64)> = s
        .endpoints
        .iter()
        .map(|e| (e.url.rsplit('/').next().unwrap(), e.requests))
        .collect();
    assert_eq!(by, [("fixed", 200), ("slower", 200), ("errors", 200)]);
    let (fixed, slower, errors) = (&s.endpoints[0], &s.endpoints[1], &s.endpoints[2]);
    assert!((19.0..40.0).contains(&fixed.latency_ms.p50), "{fixed:?}");
    assert!((79.0..110.0).contains(&slower.latency_ms.p50), "{slower:?}");
    assert_eq!((fixed.failed, slower.failed, errors.failed), (0, 0, 20));
    assert_eq!(errors.statuses["5xx"], 20);
    assert!((errors.error_rate - 0.1).abs() < 1e-9);
    // The 500s answer at once; the 2xx include the slow endpoints.
    let (ok, err) = (&s.latency_by_status["2xx"], &s.latency_by_status["5xx"]);
    assert!(err.p99 < 15.0 && ok.p90 > 70.0, "2xx {ok:?}, 5xx {err:?}");
    let step = r.checks.iter().find(|s| s.name == "load").unwrap();
    assert!(
        step.summary.contains("3 endpoints, slowest"),
        "{}",
        step.summary
    );
    assert!(step.summary.contains("/slower"), "{}", step.summary);
    // One origin per run: the connections are shared.
    let o = LoadOptions {
        url: Some(format!("{base}/fixed")),
        endpoints: vec!["http://localhost:1/other".into()],
        requests: Some(10),
        ..LoadOptions::default()
    };
    let r = load_test(&env(), &o, &RunOptions::default()).await;
    let m = r.error.map(|e| e.message).unwrap_or_default();
    assert!(
        m.contains("localhost:1/other") && m.contains("one origin"),
        "{m}"
    );
}
