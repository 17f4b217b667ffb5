//! The morning check against a real HTTP server (wiremock): every way a health endpoint can
//! misbehave gives the right check outcome within its timeout, and the other checks still report.

use std::time::{Duration, Instant};

use agentlab_ops::config::{BaseUrl, Thresholds};
use agentlab_ops::probe::HttpProbe;
use agentlab_ops::retry::RetryPolicy;
use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
use agentlab_ops::slo::HttpSloSource;
use agentlab_ops::{
    Environment, ErrorKind, MemoryBackupStore, MemoryHost, Outcome, Report, Verdict,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SLO: &str = r#"{"slos":[{"name":"availability","target":0.999,"windows":{"5m":{"good":1000,"total":1000},"30m":{"good":6000,"total":6000},"1h":{"good":12000,"total":12000},"6h":{"good":72000,"total":72000},"3d":{"good":864000,"total":864000},"30d":{"good":8638272,"total":8640000}}}]}"#;

fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        attempt_timeout: Duration::from_millis(300),
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

async fn server(health: ResponseTemplate) -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(health)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/health/detailed"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status":"ok","components":{"db":{"status":"ok"}}})),
        )
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/metrics/slo"))
        .respond_with(ResponseTemplate::new(200).set_body_string(SLO))
        .mount(&s)
        .await;
    s
}

async fn run(s: &MockServer) -> (Report, Duration) {
    let probe = HttpProbe::new(BaseUrl::parse(&s.uri()).unwrap(), policy()).unwrap();
    let probe = std::sync::Arc::new(probe);
    let store = MemoryBackupStore::new();
    let today = chrono::Utc::now().date_naive().format("%Y%m%d").to_string();
    store.insert(&format!("sessions/{today}/a.json"), "{}");
    store.insert(&format!("sessions/{today}/MANIFEST.jsonl"), "{}");
    let mut th = Thresholds::default();
    th.check_timeout = agentlab_ops::config::Dur(Duration::from_secs(5));
    let env = Environment::builder("wiremock")
        .probe(probe.clone())
        .slo_source(HttpSloSource::new(probe, "/metrics/slo"))
        .slo("availability", 0.999)
        .backups(store, &["sessions"])
        .host(MemoryHost::new("web-1").with_resources(0.2, 0.4, &[("/", 0.3)]))
        .thresholds(th)
        .build();
    let start = Instant::now();
    let r = morning_check(&env, &MorningOptions::default()).await;
    (r, start.elapsed())
}

fn assert_others_report(r: &Report) {
    for name in ["health_detailed", "slo", "backups", "resources:web-1"] {
        let c = r
            .check(name)
            .unwrap_or_else(|| panic!("check {name} missing: {r:#?}"));
        assert_eq!(c.outcome, Outcome::Pass, "{name}: {}", c.summary);
    }
}

#[tokio::test]
async fn healthy_200() {
    let s = server(ResponseTemplate::new(200).set_body_json(json!({"status":"ok"}))).await;
    let (r, _) = run(&s).await;
    assert_eq!(r.check("health").unwrap().outcome, Outcome::Pass);
    assert_others_report(&r);
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p: MorningPayload = r.payload_as().unwrap();
    assert_eq!(p.hosts[0].usage.as_ref().unwrap().disks[0].mount, "/");
}

#[tokio::test]
async fn a_500_then_200_is_retried_and_passes() {
    let s = server(ResponseTemplate::new(200).set_body_json(json!({"status":"ok"}))).await;
    // In front of the healthy answer: one 500.
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    let (r, _) = run(&s).await;
    let h = r.check("health").unwrap();
    assert_eq!(h.outcome, Outcome::Pass, "{}", h.summary);
    assert!(h.summary.contains("after 2 attempts"), "{}", h.summary);
    assert_eq!(r.verdict, Verdict::Healthy);
}

#[tokio::test]
async fn persistent_503_fails_after_retries() {
    let s = server(ResponseTemplate::new(503)).await;
    let (r, took) = run(&s).await;
    let h = r.check("health").unwrap();
    assert_eq!(h.outcome, Outcome::Fail);
    assert!(
        h.summary.contains("HTTP 503 after 3 attempts"),
        "{}",
        h.summary
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_others_report(&r);
    assert_eq!(r.verdict, Verdict::Escalate);
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "service_unhealthy")
        .unwrap();
    assert!(e.observed.contains("503"));
    let hits = s
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|q| q.url.path() == "/health")
        .count();
    assert_eq!(hits, 3);
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_an_error_within_bounds() {
    let s = server(
        ResponseTemplate::new(200)
            .set_body_json(json!({"status":"ok"}))
            .set_delay(Duration::from_secs(20)),
    )
    .await;
    let (r, took) = run(&s).await;
    let h = r.check("health").unwrap();
    assert_eq!(h.outcome, Outcome::Error, "{}", h.summary);
    assert_eq!(h.error.as_ref().unwrap().kind, ErrorKind::Timeout);
    // 3 attempts × 300 ms + backoff, far below the hang.
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_others_report(&r);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "service_unreachable")
    );
}

#[tokio::test]
async fn a_non_json_body_fails_the_check() {
    let s =
        server(ResponseTemplate::new(200).set_body_string("<html>502 Bad Gateway</html>")).await;
    let (r, _) = run(&s).await;
    let h = r.check("health").unwrap();
    assert_eq!(h.outcome, Outcome::Fail);
    assert!(h.summary.contains("not JSON"), "{}", h.summary);
    assert_others_report(&r);
}

#[tokio::test]
async fn json_missing_fields_fails_the_check() {
    let s = server(ResponseTemplate::new(200).set_body_json(json!({"uptime": 12}))).await;
    let (r, _) = run(&s).await;
    let h = r.check("health").unwrap();
    assert_eq!(h.outcome, Outcome::Fail);
    assert!(h.summary.contains("no \"status\" field"), "{}", h.summary);
    assert_others_report(&r);
    assert_eq!(r.verdict, Verdict::Escalate);
}

#[tokio::test]
async fn garbage_slo_json_is_an_error_not_a_panic() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status":"ok"})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/health/detailed"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status":"ok","checks":[]})))
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(path("/metrics/slo"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"slos\": 3}"))
        .mount(&s)
        .await;
    let (r, _) = run(&s).await;
    let c = r.check("slo").unwrap();
    assert_eq!(c.outcome, Outcome::Error);
    assert_eq!(c.error.as_ref().unwrap().kind, ErrorKind::InvalidResponse);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "slo_unavailable")
    );
    assert_eq!(r.check("health").unwrap().outcome, Outcome::Pass);
}
