//! Every sandbox scenario exercises its own escalation path, through the real backends
//! (HTTP probe, filesystem store, local processes).

use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
use agentlab_ops::{Outcome, RunOptions, Sandbox, Scenario, Verdict, Zone};

async fn check(s: Scenario) -> agentlab_ops::Report {
    let sb = Sandbox::start(s).await.unwrap();
    let env = sb.environment().await.unwrap();
    morning_check(
        &env,
        &MorningOptions::default().run(RunOptions::default().without_journal()),
    )
    .await
}

fn criteria(r: &agentlab_ops::Report) -> Vec<(String, String)> {
    r.escalations
        .iter()
        .map(|e| (e.criterion.clone(), e.subject.clone()))
        .collect()
}

#[tokio::test]
async fn healthy_has_no_escalation() {
    let r = check(Scenario::Healthy).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(r.checks.iter().all(|c| c.outcome == Outcome::Pass));
    let p: MorningPayload = r.payload_as().unwrap();
    assert_eq!(p.hosts.len(), 2);
    assert_eq!(p.backups.len(), 2);
    assert!(p.backups.iter().all(|b| b.present));
    assert!(p.slos.iter().all(|s| s.zone == Zone::Green));
}

#[tokio::test]
async fn degraded_escalates_component_and_budget() {
    let r = check(Scenario::Degraded).await;
    let c = criteria(&r);
    assert!(
        c.contains(&("component_unhealthy".into(), "openrouter".into())),
        "{c:?}"
    );
    let b = r
        .escalations
        .iter()
        .find(|e| e.criterion == "error_budget_low")
        .unwrap();
    assert_eq!(
        (b.observed.as_str(), b.threshold.as_str()),
        ("40.0%", "50.0%")
    );
    assert_eq!(r.verdict, Verdict::Escalate);
    assert_eq!(r.check("slo").unwrap().outcome, Outcome::Warn);
}

#[tokio::test]
async fn budget_exhausted_is_red() {
    let r = check(Scenario::BudgetExhausted).await;
    let c = criteria(&r);
    assert!(
        c.contains(&("slo_red".into(), "availability".into())),
        "{c:?}"
    );
    let p: MorningPayload = r.payload_as().unwrap();
    let a = p.slos.iter().find(|s| s.name == "availability").unwrap();
    assert!(a.alerts.iter().any(|x| x.firing && x.threshold == 14.4));
    assert_eq!(
        p.active_alerts,
        a.alerts.iter().filter(|x| x.firing).count()
    );
}

#[tokio::test]
async fn backups_missing_names_the_dataset() {
    let r = check(Scenario::BackupsMissing).await;
    assert_eq!(
        criteria(&r),
        vec![("backup_missing".to_string(), "sessions".to_string())]
    );
    assert_eq!(r.check("backups").unwrap().outcome, Outcome::Fail);
}

#[tokio::test]
async fn disk_full_names_host_and_mount() {
    let r = check(Scenario::DiskFull).await;
    let e = &r.escalations;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].subject, "web-2:/app");
    assert_eq!(
        (e[0].observed.as_str(), e[0].threshold.as_str()),
        ("96.0%", "90.0%")
    );
}

#[tokio::test]
async fn a_stopped_sandbox_is_reported_not_crashed() {
    let mut sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let mut cfg = sb.config().clone();
    cfg.service.attempts = 1;
    sb.stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let env = agentlab_ops::Environment::from_config(cfg).await.unwrap();
    let r = morning_check(
        &env,
        &MorningOptions::default().run(RunOptions::default().without_journal()),
    )
    .await;
    assert_eq!(r.check("health").unwrap().outcome, Outcome::Error);
    assert_eq!(r.check("backups").unwrap().outcome, Outcome::Pass);
    assert_eq!(r.check("resources:web-1").unwrap().outcome, Outcome::Pass);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "service_unreachable")
    );
    assert_eq!(r.verdict, Verdict::Escalate);
}

#[tokio::test]
async fn missing_manifest_is_an_incomplete_backup() {
    let r = check(Scenario::MissingManifest).await;
    assert_eq!(
        criteria(&r),
        vec![("backup_incomplete".to_string(), "sessions".to_string())]
    );
}

/// Presence is all the morning check looks at: corrupt objects and a size drop need the full
/// verification, which finds them.
#[tokio::test]
async fn verification_finds_what_presence_cannot() {
    use agentlab_ops::runbook::{Sample, VerifyOptions, verify_backups};
    for (s, criterion, subject) in [
        (Scenario::CorruptObject, "backup_corrupt", "sessions/"),
        (Scenario::SizeDrop, "backup_size_trend", "sessions/"),
        (Scenario::MissingManifest, "backup_incomplete", "sessions/"),
    ] {
        let r = check(s).await;
        if s != Scenario::MissingManifest {
            assert_eq!(r.verdict, Verdict::Healthy, "{s}: {}", r.to_text(false));
        }
        let sb = Sandbox::start(s).await.unwrap();
        let env = sb.environment().await.unwrap();
        let v = verify_backups(
            &env,
            &VerifyOptions::default()
                .sample(Sample::All)
                .run(RunOptions::default().without_journal()),
        )
        .await;
        assert!(
            v.escalations.iter().any(|e| e.criterion == criterion),
            "{s}: {}",
            v.to_text(false)
        );
        assert!(
            !v.findings.is_empty() && v.findings.iter().all(|f| f.subject.starts_with(subject)),
            "{s}: {:?}",
            v.findings
        );
    }
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let env = sb.environment().await.unwrap();
    let v = verify_backups(
        &env,
        &VerifyOptions::default()
            .sample(Sample::All)
            .run(RunOptions::default().without_journal()),
    )
    .await;
    assert_eq!(v.verdict, Verdict::Healthy, "{}", v.to_text(false));
}
