//! `alert_investigation` against the sandbox's `incident` scenario (real HTTP service, real
//! local hosts and log files, the sandbox's Alertmanager API and journal): the timeline puts
//! the deploy before the burst and the burst before the alert, the failing dependency is
//! isolated, the known issue matches; without the catalogue it escalates naming what it
//! found and pages once; a healthy sandbox has nothing to say.

use std::sync::Arc;

use agentlab_ops::alerts::{IncidentCall, MemoryIncidentSource};
use agentlab_ops::runbook::investigate::{DecisionKind, EventKind, IsolatedKind};
use agentlab_ops::runbook::{InvestigateOptions, Triage, alert_investigation};
use agentlab_ops::{Outcome, RunOptions, Sandbox, Scenario, Verdict};

async fn investigate(sb: &Sandbox, o: InvestigateOptions) -> (agentlab_ops::Report, Triage) {
    let env = sb.environment().await.unwrap();
    let r = alert_investigation(&env, &o, &RunOptions::default().without_journal()).await;
    let t: Triage = r
        .payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
    (r, t)
}

fn first(t: &Triage, kind: EventKind) -> &agentlab_ops::runbook::investigate::TimelineEvent {
    let e = t.timeline.iter().find(|e| e.kind == kind);
    e.unwrap_or_else(|| panic!("no {kind:?} in {:#?}", t.timeline))
}

#[tokio::test]
async fn the_incident_is_placed_isolated_and_known() {
    let sb = Sandbox::start(Scenario::Incident).await.unwrap();
    let (r, t) = investigate(&sb, InvestigateOptions::default()).await;
    let alert = t
        .alert
        .as_ref()
        .expect("HighErrorRate picked from Alertmanager");
    assert_eq!(
        (alert.name.as_str(), alert.severity.as_str()),
        ("HighErrorRate", "critical")
    );
    assert_eq!(Some(t.anchor), alert.starts_at);

    // deploy (-10m) < burst (-3m) < alert (0), the burst at the planted minute.
    let (deploy, spike, fired) = (
        first(&t, EventKind::Deploy),
        first(&t, EventKind::Spike),
        first(&t, EventKind::Alert),
    );
    assert!(deploy.what.contains("1.5.0"), "{}", deploy.what);
    assert!(
        deploy.at < spike.at && spike.at < fired.at,
        "{:#?}",
        t.timeline
    );
    assert_eq!(
        (deploy.offset_s, spike.offset_s, fired.offset_s),
        (-600, -180, 0)
    );
    assert_eq!(spike.host.as_deref(), Some("web-1"));
    let new = first(&t, EventKind::NewTemplate);
    assert!(new.what.contains("KeyError: 'session_id'"), "{}", new.what);

    // The dependency asked directly is down; the quiet host has no burst.
    let dep = t
        .failing()
        .find(|c| c.kind == IsolatedKind::Dependency)
        .expect("a dependency down");
    assert_eq!(
        (dep.name.as_str(), dep.status.as_str()),
        ("openrouter", "HTTP 503")
    );
    assert_eq!(
        r.check("isolate:openrouter").unwrap().outcome,
        Outcome::Fail
    );
    let web1 = &t.logs[0];
    assert_eq!(web1.top[0].key, agentlab_ops::testing::FLOODER);
    assert!(t.logs[1].burst_start.is_none() && t.logs[1].new_templates.is_empty());
    assert!(
        t.metrics
            .iter()
            .any(|m| m.name == "http_requests_total" && m.value == Some(4212.0))
    );

    // The known issue matches; its fix is to be applied by a human (or --apply-fix).
    assert_eq!(t.decision.kind, DecisionKind::KnownIssue);
    assert_eq!(
        t.decision.known_issue.as_deref(),
        Some("session-id-keyerror")
    );
    assert_eq!(t.decision.runbook.as_deref(), Some("deploy_rollback"));
    assert_eq!(r.verdict, Verdict::Escalate);
    assert_eq!(r.escalations[0].criterion, "known_issue");
    assert!(r.escalations[0].message.contains("roll back"));
}

#[tokio::test]
async fn an_unknown_issue_escalates_naming_the_findings_and_pages_once() {
    let mut sb = Sandbox::start(Scenario::Incident).await.unwrap();
    sb.config_mut().investigation.known_issues.clear();
    let mut env = sb.environment().await.unwrap();
    let pd = MemoryIncidentSource::new();
    env.incidents = Some(Arc::new(pd.clone()));
    let ro = RunOptions::default().without_journal();
    let r = alert_investigation(&env, &InvestigateOptions::default(), &ro).await;
    let t: Triage = r.payload_as().unwrap();
    assert_eq!(t.decision.kind, DecisionKind::Escalate);
    let e = &r.escalations[0];
    assert_eq!(
        (e.criterion.as_str(), e.subject.as_str()),
        ("unknown_issue", "HighErrorRate")
    );
    for found in [
        "openrouter",
        "KeyError: 'session_id'",
        "errors spike from",
        "10.66.6.66",
        "deploy_standard 1.5.0",
    ] {
        assert!(
            e.observed.contains(found),
            "{found:?} not in {:?}",
            e.observed
        );
    }
    assert_eq!(t.decision.paged.as_deref(), Some(r.run_id.as_str()));
    let pages: Vec<_> = pd
        .calls
        .all()
        .into_iter()
        .filter(|c| matches!(c, IncidentCall::Trigger(_)))
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
}

#[tokio::test]
async fn dry_run_plans_the_page_and_the_fix_without_making_them() {
    let sb = Sandbox::start(Scenario::Incident).await.unwrap();
    let mut env = sb.environment().await.unwrap();
    let pd = MemoryIncidentSource::new();
    env.incidents = Some(Arc::new(pd.clone()));
    let o = InvestigateOptions {
        apply_fix: true,
        ..InvestigateOptions::default()
    };
    let ro = RunOptions::default().without_journal().dry_run(true);
    let r = alert_investigation(&env, &o, &ro).await;
    let t: Triage = r.payload_as().unwrap();
    assert_eq!(t.decision.kind, DecisionKind::KnownIssue);
    // The rollback ran as a dry run of its own: its verdict is recorded, nothing deployed.
    let apply = r.check("resolve:apply").expect("the fix's run recorded");
    assert!(
        apply.summary.starts_with("deploy_rollback (run "),
        "{}",
        apply.summary
    );
    assert!(t.decision.applied.is_some());
    assert!(
        !pd.calls
            .all()
            .iter()
            .any(|c| matches!(c, IncidentCall::Trigger(_)))
    );
}

#[tokio::test]
async fn a_healthy_sandbox_has_nothing_to_report() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let (r, t) = investigate(&sb, InvestigateOptions::default()).await;
    assert!(t.alert.is_none());
    assert!(t.failing().next().is_none(), "{:?}", t.components);
    assert_eq!(
        t.decision.kind,
        DecisionKind::NothingFound,
        "{:?}",
        t.decision
    );
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(
        t.logs
            .iter()
            .all(|l| l.lines > 3000 && l.burst_start.is_none())
    );
}

#[tokio::test]
async fn an_alert_named_that_is_not_firing_is_investigated_from_now() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let o = InvestigateOptions {
        alert: Some("DiskAlmostFull".into()),
        ..InvestigateOptions::default()
    };
    let (r, t) = investigate(&sb, o).await;
    assert_eq!(r.check("triage:alert").unwrap().outcome, Outcome::Warn);
    let a = t.alert.unwrap();
    assert_eq!(
        (a.name.as_str(), a.source.as_str(), a.starts_at),
        ("DiskAlmostFull", "command line", None)
    );
    // An alert with no cause found is still a human's to look at.
    assert_eq!(t.decision.kind, DecisionKind::Escalate);
    assert!(
        t.decision.reason.contains("unknown"),
        "{}",
        t.decision.reason
    );
}

#[tokio::test]
async fn bad_options_and_an_unknown_host_are_clear_errors() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let env = sb.environment().await.unwrap();
    let def = agentlab_ops::runbook::registry::get("investigate").unwrap();
    let e = def.check(&serde_json::json!({"since": "0s"})).unwrap_err();
    assert!(
        e.to_string()
            .contains("alert_investigation: since: must be above 0"),
        "{e}"
    );
    let e = def.check(&serde_json::json!({"sinse": "1h"})).unwrap_err();
    assert!(e.to_string().contains("sinse"), "{e}");
    let o = InvestigateOptions {
        host: Some("web-9".into()),
        ..InvestigateOptions::default()
    };
    let r = alert_investigation(&env, &o, &RunOptions::default().without_journal()).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(r.error.unwrap().message.contains("web-9"));
}

#[tokio::test]
async fn commits_are_placed_and_a_known_alert_is_silenced_on_the_doubles() {
    use agentlab_ops::alerts::AlertCall;
    use agentlab_ops::config::{Dur, KnownIssue};
    use agentlab_ops::{Environment, MemoryAlertSource, MemoryRepo};
    let now = chrono::Utc::now();
    let alerts = MemoryAlertSource::new();
    alerts.fire(
        "DiskAlmostFull",
        "warning",
        now - chrono::Duration::minutes(5),
    );
    let repo = MemoryRepo::new("1.5.0", &[]);
    repo.commit("bump deps", "ann", now - chrono::Duration::minutes(30))
        .commit("cache sessions", "bob", now - chrono::Duration::minutes(10));
    let env = Environment::builder("mem")
        .alerts(alerts.clone())
        .repo(repo)
        .configure(|c| {
            let mut k = KnownIssue::new("disk", None, "rotate the logs");
            k.alert = Some("DiskAlmostFull".into());
            c.investigation.known_issues = vec![k];
            c.investigation.metrics_path = String::new();
        })
        .build();
    let o = InvestigateOptions {
        silence: Some(Dur(std::time::Duration::from_secs(7200))),
        ..InvestigateOptions::default()
    };
    let r = alert_investigation(&env, &o, &RunOptions::default()).await;
    let t: Triage = r.payload_as().unwrap();
    let commits: Vec<(i64, &str)> = t
        .timeline
        .iter()
        .filter(|e| e.kind == EventKind::Commit)
        .map(|e| (e.offset_s, e.what.as_str()))
        .collect();
    assert_eq!(commits.len(), 2, "{:#?}", t.timeline);
    assert_eq!(commits[0].0, -1500);
    assert!(commits[1].1.contains("cache sessions (bob)"), "{commits:?}");
    assert_eq!(t.decision.known_issue.as_deref(), Some("disk"));
    let comment = alerts.calls.all().into_iter().find_map(|c| match c {
        AlertCall::Silence(c) => Some(c),
        _ => None,
    });
    let comment = comment.expect("silenced");
    assert!(comment.contains("known issue disk: rotate the logs") && comment.contains(&r.run_id));
    assert!(t.decision.silence.is_some());
}
