//! PagerDuty against a wiremock server answering like its API reference: open incidents over
//! every page with the window always sent, events with the run's dedup key, secrets kept out of
//! errors; the memory double; the morning check's Incident Review.

use std::time::Duration;

use agentlab_ops::alerts::{IncidentSource, MemoryIncidentSource, PagerDuty};
use agentlab_ops::config::BaseUrl;
use agentlab_ops::report::Outcome;
use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
use agentlab_ops::{Environment, RunOptions, Secret};
use chrono::Utc;
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn incident(id: &str, urgency: &str, hours_ago: i64) -> serde_json::Value {
    json!({"id": id, "title": format!("{id} down"), "status": "triggered", "urgency": urgency,
           "created_at": (Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339(),
           "html_url": format!("https://acme.pagerduty.com/incidents/{id}"), "service": {"summary": "agent-lab"}})
}

fn pd(server: &MockServer) -> PagerDuty {
    let u = BaseUrl::parse(&server.uri()).unwrap();
    PagerDuty::new(
        u.clone(),
        u,
        Some(Secret::new("pd-token-abc123", "test")),
        Some(Secret::new("routingkey987", "test")),
        Duration::from_secs(2),
    )
    .unwrap()
}

async fn two_pages(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .and(query_param("offset", "0"))
        .and(header("authorization", "Token token=pd-token-abc123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"incidents": [incident("PA", "high", 3), incident("PB", "low", 40)], "limit": 2, "offset": 0, "more": true})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"incidents": [incident("PC", "high", 1)], "limit": 2, "offset": 2, "more": false})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn incidents_come_from_every_page_with_the_window_sent() {
    let server = MockServer::start().await;
    two_pages(&server).await;
    let now = Utc::now();
    let got = pd(&server)
        .incidents(now - chrono::Duration::days(30), now)
        .await
        .unwrap();
    let ids: Vec<&str> = got.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["PA", "PB", "PC"]);
    assert_eq!(got[0].service.as_deref(), Some("agent-lab"));
    for r in server.received_requests().await.unwrap() {
        let q = r.url.query().unwrap_or_default().to_string();
        assert!(q.contains("since=") && q.contains("until="), "{q}");
        assert!(
            q.contains("statuses%5B%5D=triggered") && q.contains("statuses%5B%5D=acknowledged"),
            "{q}"
        );
    }
}

#[tokio::test]
async fn events_carry_the_dedup_key_and_errors_no_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(body_partial_json(json!({"event_action": "trigger", "dedup_key": "run-42", "routing_key": "routingkey987"})))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success", "dedup_key": "run-42"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .and(body_partial_json(
            json!({"event_action": "resolve", "dedup_key": "run-42"}),
        ))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let p = pd(&server);
    p.trigger("run-42", "SLO availability is red", "critical")
        .await
        .unwrap();
    p.resolve("run-42").await.unwrap();
    // A refused token: the error names the status, never the token.
    let s2 = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&s2)
        .await;
    let e = pd(&s2)
        .incidents(Utc::now() - chrono::Duration::days(1), Utc::now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::Unauthenticated);
    assert!(!format!("{e:?}").contains("pd-token-abc123"), "{e:?}");
}

#[tokio::test]
async fn the_memory_double_dedups_triggers_and_resolves() {
    let m = MemoryIncidentSource::new();
    m.trigger("run-1", "red", "critical").await.unwrap();
    m.trigger("run-1", "red again", "critical").await.unwrap();
    let now = Utc::now();
    let open = m
        .incidents(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].urgency, "high");
    m.resolve("run-1").await.unwrap();
    assert!(
        m.incidents(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::seconds(1)
        )
        .await
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn the_morning_check_reviews_open_incidents() {
    let server = MockServer::start().await;
    two_pages(&server).await;
    let env = Environment::builder("prod").incidents(pd(&server)).build();
    let r = morning_check(
        &env,
        &MorningOptions::default().run(RunOptions::default().without_journal()),
    )
    .await;
    let p: MorningPayload = r.payload_as().unwrap();
    assert_eq!(p.incidents.unwrap().len(), 3);
    let c = r.checks.iter().find(|c| c.name == "incidents").unwrap();
    assert_eq!(c.outcome, Outcome::Fail, "{}", c.summary);
    let esc: Vec<&str> = r
        .escalations
        .iter()
        .filter(|e| e.criterion == "incident_open")
        .map(|e| e.subject.as_str())
        .collect();
    assert_eq!(esc, ["PA", "PC"]);
    // Not configured: said so.
    let r = morning_check(
        &Environment::builder("prod").build(),
        &MorningOptions::default(),
    )
    .await;
    let c = r.checks.iter().find(|c| c.name == "incidents").unwrap();
    assert_eq!(c.outcome, Outcome::Skipped);
    assert!(c.summary.contains("not configured"));
}

#[tokio::test]
async fn the_handover_lists_ongoing_incidents_and_alertmanager_alerts() {
    use agentlab_ops::MemoryAlertSource;
    use agentlab_ops::runbook::{HandoverOptions, HandoverPayload, handover};
    let inc = MemoryIncidentSource::new();
    inc.open(
        "checkout latency",
        "high",
        Utc::now() - chrono::Duration::hours(2),
    );
    let al = MemoryAlertSource::new();
    al.fire(
        "HighErrorRate",
        "page",
        Utc::now() - chrono::Duration::hours(1),
    );
    let env = Environment::builder("prod")
        .incidents(inc.clone())
        .alerts(al.clone())
        .build();
    let r = handover(&env, &HandoverOptions::default()).await;
    let loud: HandoverPayload = r.payload_as().unwrap();
    assert!(
        loud.markdown
            .contains("**Ongoing Incidents**: P000001 (high urgency, triggered): checkout latency"),
        "{}",
        loud.markdown
    );
    // Silenced, the alert is neither counted nor escalated: two fewer active alerts.
    let m = [agentlab_ops::alerts::Matcher {
        name: "alertname".into(),
        value: "HighErrorRate".into(),
        is_regex: false,
        is_equal: true,
    }];
    agentlab_ops::AlertSource::silence(
        &al,
        &m,
        Utc::now() + chrono::Duration::hours(1),
        "ops",
        "known",
    )
    .await
    .unwrap();
    let r = handover(&env, &HandoverOptions::default()).await;
    let quiet: HandoverPayload = r.payload_as().unwrap();
    assert_eq!(
        loud.active_alerts,
        quiet.active_alerts + 2,
        "{}\n{}",
        loud.markdown,
        quiet.markdown
    );
    let none = handover(
        &Environment::builder("prod").build(),
        &HandoverOptions::default(),
    )
    .await;
    let p: HandoverPayload = none.payload_as().unwrap();
    assert!(
        p.markdown.contains("**Ongoing Incidents**: not configured"),
        "{}",
        p.markdown
    );
}
