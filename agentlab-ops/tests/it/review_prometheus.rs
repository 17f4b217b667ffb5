//! The monthly review against the real Prometheus (the test fixture's 30 days of node_exporter
//! series and a request-duration histogram, backfilled with promtool): capacity per instance
//! day by day, the trend's crossing date, and the slowest endpoints by p95.

use agentlab_ops::config::PrometheusConfig;
use agentlab_ops::runbook::review::{ReviewOptions, ReviewPayload, SectionStatus, monthly_review};
use agentlab_ops::{RunOptions, Sandbox, Scenario};
use chrono::NaiveDate;

/// The fixture's shares (scripts/prometheus-fixture.py `use`).
fn share(host: &str, resource: &str, day: f64) -> f64 {
    match (host, resource) {
        ("web-1:9100", "cpu") => 0.30 + 0.002 * day,
        ("web-2:9100", "cpu") => 0.40 + 0.004 * day,
        ("web-1:9100", "memory") => 0.50,
        ("web-2:9100", "memory") => 0.55 + 0.01 * day,
        ("web-1:9100", "disk") => 0.40,
        ("web-2:9100", "disk") => 0.62,
        _ => panic!("{host} {resource}"),
    }
}

#[tokio::test]
async fn capacity_and_slowest_endpoints_come_from_prometheus() {
    let url = match std::env::var("AGENTLAB_TEST_PROM_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => return,
        Err(_) => panic!("needs the test Prometheus: run ./scripts/test.sh"),
    };
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let mut env = sb.environment().await.unwrap();
    let p: PrometheusConfig = toml::from_str(&format!("url = \"{url}\"")).unwrap();
    env.config.prometheus = Some(p);
    let o = ReviewOptions {
        month: Some("2026-11".into()),
        drill: false,
        ..Default::default()
    };
    let r = monthly_review(&env, &o, &RunOptions::default().without_journal()).await;
    let p: ReviewPayload = r.payload_as().unwrap();
    assert_eq!(p.capacity.status, SectionStatus::Ok, "{}", p.capacity.note);
    let c = p.capacity.data.as_ref().unwrap();
    assert!(c.source.starts_with("prometheus"), "{}", c.source);
    assert_eq!(
        c.series.len(),
        6,
        "{:?}",
        c.series
            .iter()
            .map(|s| (&s.subject, &s.resource))
            .collect::<Vec<_>>()
    );
    let nov1 = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    for s in &c.series {
        assert_eq!(s.points.len(), 30, "{} {}", s.subject, s.resource);
        for (d, v) in &s.points {
            let day = (*d - nov1).num_days() as f64;
            let want = share(&s.subject, &s.resource, day);
            // Prometheus 2.x's range is closed: a gauge's day average holds the day before's
            // last sample too (1 of 25); a rate is exact.
            assert!(
                (v - want).abs() < 5e-4,
                "{} {} {d}: {v} != {want}",
                s.subject,
                s.resource
            );
        }
    }
    // web-2's memory: 84% on Nov 30, a point a day: the threshold about 6 points later (a day
    // more with the closed window's slight lag).
    let m = c
        .series
        .iter()
        .find(|s| s.subject == "web-2:9100" && s.resource == "memory")
        .unwrap();
    assert!((m.slope_per_day - 0.01).abs() < 2e-4, "{}", m.slope_per_day);
    let days = ((c.threshold - 0.84) / 0.01 - 1e-6).ceil() as i64;
    let on = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap() + chrono::Duration::days(days);
    let got = m.crosses_on.unwrap();
    assert!(
        got >= on && got <= on + chrono::Duration::days(1),
        "{got} vs {on}"
    );
    assert!(
        r.findings.iter().any(|f| f.subject == "web-2:9100:memory"),
        "{:?}",
        r.findings
    );
    // Slowest endpoints: p95 of the histogram, interpolated in its bucket as Prometheus does.
    let perf = p.performance.data.as_ref().unwrap();
    let e = perf.endpoints.as_ref().unwrap();
    assert_eq!(e[0].path, "/api/run");
    assert!((e[0].p95_ms - 2406.25).abs() < 0.01, "{e:?}");
    assert!((e[1].p95_ms - 241.89).abs() < 0.01, "{e:?}");
    assert!(perf.endpoints_source.starts_with("prometheus"));
}
