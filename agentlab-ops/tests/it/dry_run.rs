//! Dry-run: reads run, changes are planned and not executed — asserted on the doubles' calls.

use agentlab_ops::runbook::{HandoverOptions, HandoverPayload, handover};
use agentlab_ops::{
    Environment, ErrorKind, MemoryNotifier, MemoryProbe, Outcome, RunOptions, Verdict,
};
use serde_json::json;

fn env(notifier: MemoryNotifier, journal: &std::path::Path) -> Environment {
    let probe = MemoryProbe::new();
    probe.respond_json("/health", json!({"status": "ok"}));
    probe.respond_json(
        "/health/detailed",
        json!({"status": "ok", "components": {"db": "ok"}}),
    );
    Environment::builder("dry")
        .probe(probe)
        .notifier(notifier)
        .journal(journal)
        .configure(|c| {
            c.handover.primary = Some("Ada +1-555-0100".into());
            c.handover.backup = Some("Grace +1-555-0101".into());
        })
        .build()
}

#[tokio::test]
async fn dry_run_plans_the_post_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let n = MemoryNotifier::new();
    let e = env(n.clone(), &dir.path().join("j.jsonl"));
    let r = handover(
        &e,
        &HandoverOptions::default()
            .notify(true)
            .run(RunOptions::default().dry_run(true)),
    )
    .await;
    assert!(n.sent.is_empty(), "{:?}", n.sent.all());
    let c = r.check("notify").unwrap();
    assert_eq!(c.outcome, Outcome::Planned);
    assert!(c.summary.contains("post the handover"));
    assert!(r.dry_run);
    let p: HandoverPayload = r.payload_as().unwrap();
    assert!(!p.posted);
    assert!(p.markdown.contains("# Daily Handover"));

    // For real: posted once, with the template.
    let r = handover(&e, &HandoverOptions::default().notify(true)).await;
    assert_eq!(n.sent.len(), 1);
    assert!(n.sent.all()[0].contains("## On-call Contact"));
    assert_eq!(r.check("notify").unwrap().outcome, Outcome::Pass);
}

#[tokio::test]
async fn a_failed_post_that_was_asked_for_fails_the_run_and_keeps_the_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let n = MemoryNotifier::new();
    n.faults
        .fail_always(ErrorKind::Unavailable, "slack is down");
    let e = env(n.clone(), &dir.path().join("j.jsonl"));
    let r = handover(&e, &HandoverOptions::default().notify(true)).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(r.check("notify").unwrap().outcome, Outcome::Error);
    let p: HandoverPayload = r.payload_as().unwrap();
    assert!(!p.posted && p.markdown.contains("# Daily Handover"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("slack is down"))
    );
}

#[tokio::test]
async fn handover_reuses_the_journaled_morning_report() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(MemoryNotifier::new(), &dir.path().join("j.jsonl"));
    let first = handover(&e, &HandoverOptions::default()).await;
    let p1: HandoverPayload = first.payload_as().unwrap();
    let second = handover(&e, &HandoverOptions::default()).await;
    let p2: HandoverPayload = second.payload_as().unwrap();
    // The first ran a fresh morning check (journaled); the second reused it.
    assert_eq!(p1.source_run, p2.source_run);
    assert!(
        second
            .check("morning_report")
            .unwrap()
            .summary
            .starts_with("journaled run")
    );
    let stats = e.journal.as_ref().unwrap().stats(None).unwrap();
    let count = |n: &str| {
        stats
            .runbooks
            .iter()
            .find(|r| r.runbook == n)
            .map_or(0, |r| r.runs)
    };
    assert_eq!((count("morning_check"), count("handover")), (1, 2));
}

/// The runbooks' futures can be spawned (the Python and Lua bindings run them on a shared
/// multi-thread runtime).
#[test]
fn runbook_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let env = Environment::builder("send").build();
    let m = agentlab_ops::runbook::MorningOptions::default();
    let f = agentlab_ops::runbook::morning_check(&env, &m);
    is_send(&f);
    let h = HandoverOptions::default();
    let f = handover(&env, &h);
    is_send(&f);
}

/// Every runbook's future can be spawned (it is `Send` for any lifetime, not only for some).
#[tokio::test]
async fn runbooks_can_be_spawned() {
    use agentlab_ops::runbook::*;
    use std::sync::Arc;
    let env = Arc::new(Environment::builder("spawn").build());
    let e = env.clone();
    let take = tokio::spawn(async move { take_backup(&e, &TakeOptions::default()).await });
    let e = env.clone();
    let recover = tokio::spawn(async move { recover_data(&e, &RecoverOptions::default()).await });
    let e = env.clone();
    let verify = tokio::spawn(async move { verify_backups(&e, &VerifyOptions::default()).await });
    let e = env.clone();
    let deploy = tokio::spawn(async move { standard_deploy(&e, &DeployOptions::default()).await });
    let e = env.clone();
    let bg = tokio::spawn(async move { blue_green_deploy(&e, &BlueGreenOptions::default()).await });
    for r in [take, recover, verify, deploy, bg] {
        // No backups, hosts or deployer configured: each fails cleanly, as a report.
        assert_eq!(r.await.unwrap().verdict, agentlab_ops::Verdict::Failed);
    }
}
