//! The Alertmanager alert source against Debian's Alertmanager started by `scripts/test.sh`:
//! alerts posted through its own API, silences created and expired, the conformance suite the
//! memory double passes too; a down Alertmanager is an error within its timeout.

use std::time::{Duration, Instant};

use agentlab_ops::alerts::{AlertSource, Alertmanager, MemoryAlertSource};
use agentlab_ops::config::BaseUrl;
use agentlab_ops::retry::RetryPolicy;
use agentlab_ops::testing::alert_source_conformance;
use chrono::Utc;

fn url() -> Option<String> {
    match std::env::var("AGENTLAB_TEST_ALERTMANAGER_URL") {
        Ok(u) => Some(u),
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => None,
        Err(_) => panic!(
            "needs the test Alertmanager: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)"
        ),
    }
}

/// Fire an alert through Alertmanager's own API, as Prometheus does.
pub async fn post_alert(url: &str, name: &str, severity: &str) {
    let body = serde_json::json!([{
        "labels": {"alertname": name, "severity": severity, "service": "agent-lab"},
        "annotations": {"summary": format!("{name} is firing")},
        "startsAt": (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339(),
    }]);
    let r = reqwest::Client::new()
        .post(format!("{url}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

fn am(url: &str) -> Alertmanager {
    Alertmanager::new(
        BaseUrl::parse(url).unwrap(),
        RetryPolicy::new(2, Duration::from_secs(2)),
    )
    .unwrap()
}

#[tokio::test]
async fn alertmanager_passes_the_alert_source_suite() {
    let Some(u) = url() else { return };
    let name = format!("ConformanceAlert{}", std::process::id());
    post_alert(&u, &name, "page").await;
    let a = am(&u);
    let all = a.alerts().await.unwrap();
    let mine = all.iter().find(|x| x.name() == name).unwrap();
    assert_eq!(mine.severity(), "page");
    assert_eq!(mine.annotations["summary"], format!("{name} is firing"));
    alert_source_conformance(&a, &name).await;
}

#[tokio::test]
async fn the_memory_double_passes_the_same_suite() {
    let m = MemoryAlertSource::new();
    m.fire(
        "HighErrorRate",
        "page",
        Utc::now() - chrono::Duration::minutes(5),
    );
    alert_source_conformance(&m, "HighErrorRate").await;
}

#[tokio::test]
async fn a_down_alertmanager_is_an_error_within_its_timeout() {
    let a = am("http://127.0.0.1:9");
    let start = Instant::now();
    let e = a.alerts().await.unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::Unavailable, "{e}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

mod morning {
    use super::*;
    use agentlab_ops::report::Outcome;
    use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
    use agentlab_ops::{Environment, RunOptions, Verdict};

    fn opts() -> MorningOptions {
        MorningOptions::default().run(RunOptions::default().without_journal())
    }

    fn outcome(r: &agentlab_ops::Report, name: &str) -> Outcome {
        r.checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name}: {}", r.to_text(false)))
            .outcome
    }

    #[tokio::test]
    async fn a_paging_alert_escalates_and_a_silenced_one_does_not() {
        let m = MemoryAlertSource::new();
        m.fire(
            "HighErrorRate",
            "page",
            Utc::now() - chrono::Duration::hours(2),
        );
        m.fire(
            "DiskFilling",
            "warning",
            Utc::now() - chrono::Duration::hours(30),
        );
        let env = Environment::builder("prod").alerts(m.clone()).build();
        let r = morning_check(&env, &opts()).await;
        let p: MorningPayload = r.payload_as().unwrap();
        let a = p.alerts.unwrap();
        assert_eq!((a.fired_since, a.firing.len()), (1, 2), "{a:?}");
        assert_eq!(outcome(&r, "alerts"), Outcome::Fail);
        assert!(
            r.escalations
                .iter()
                .any(|e| e.criterion == "alert_firing" && e.subject == "HighErrorRate")
        );
        assert!(!r.escalations.iter().any(|e| e.subject == "DiskFilling"));
        // Silenced, it no longer escalates (it is still listed).
        let mt = [agentlab_ops::alerts::Matcher {
            name: "alertname".into(),
            value: "HighErrorRate".into(),
            is_regex: false,
            is_equal: true,
        }];
        m.silence(&mt, Utc::now() + chrono::Duration::hours(1), "ops", "known")
            .await
            .unwrap();
        let r = morning_check(&env, &opts()).await;
        assert!(
            !r.escalations.iter().any(|e| e.criterion == "alert_firing"),
            "{}",
            r.to_text(false)
        );
        assert_eq!(outcome(&r, "alerts"), Outcome::Warn);
    }

    #[tokio::test]
    async fn without_an_alert_source_the_check_says_not_configured() {
        let env = Environment::builder("prod").build();
        let r = morning_check(&env, &opts()).await;
        let c = r.checks.iter().find(|c| c.name == "alerts").unwrap();
        assert_eq!(c.outcome, Outcome::Skipped);
        assert!(c.summary.contains("not configured"), "{}", c.summary);
    }

    #[tokio::test]
    async fn the_real_alertmanager_and_a_down_one() {
        let Some(u) = url() else { return };
        let name = format!("MorningAlert{}", std::process::id());
        post_alert(&u, &name, "critical").await;
        let env = Environment::builder("prod").alerts(am(&u)).build();
        let r = morning_check(&env, &opts()).await;
        let p: MorningPayload = r.payload_as().unwrap();
        assert!(p.alerts.unwrap().firing.iter().any(|a| a.name == name));
        assert!(
            r.escalations.iter().any(|e| e.subject == name),
            "{}",
            r.to_text(false)
        );
        // Down: the check fails with a reason, everything else is still there.
        let env = Environment::builder("prod")
            .alerts(am("http://127.0.0.1:9"))
            .build();
        let r = morning_check(&env, &opts()).await;
        let c = r.checks.iter().find(|c| c.name == "alerts").unwrap();
        assert_eq!(c.outcome, Outcome::Error, "{}", r.to_text(false));
        assert!(c.summary.contains("Alertmanager at"), "{}", c.summary);
        assert!(r.checks.iter().any(|c| c.name == "health"));
        assert_ne!(r.verdict, Verdict::Failed);
    }
}
