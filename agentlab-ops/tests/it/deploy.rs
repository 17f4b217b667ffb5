//! Deployments: gates, monitoring with a virtual clock, rollbacks, dry-run, and blue-green against the sandbox.

use std::collections::BTreeMap;
use std::time::Duration;

use agentlab_ops::deploy::{CheckSummary, Conclusion, Script};
use agentlab_ops::runbook::{
    BlueGreenOptions, DeployOptions, RollbackOptions, blue_green_deploy, rollback, standard_deploy,
};
use agentlab_ops::slo::{SliData, SloSource};
use agentlab_ops::{
    Clock, Environment, ManualClock, MemoryHost, MemoryProbe, Outcome, RunOptions, Sandbox,
    Scenario, Verdict,
};
use serde_json::json;

use crate::deploy_lab;
use deploy_lab::*;

#[tokio::test]
async fn a_failed_gate_means_no_change_anywhere() {
    let l = lab();
    let env = env_with(&l, slo(0.30, 0.0));
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let e = &r.escalations[0];
    assert_eq!(
        (e.criterion.as_str(), e.subject.as_str()),
        ("deploy_gate_failed", "error_budget")
    );
    assert!(e.observed.contains("30.0"), "{}", e.observed);
    // The deployer was only read (CI checks of the commit), never asked to deploy.
    assert!(deployer_only_read(&l), "{:?}", l.deployer.calls.all());
    assert!(l.repo.calls.is_empty(), "{:?}", l.repo.calls.all());
    assert!(l.router.calls.is_empty());
    assert!(!payload(&r).deployed);

    // Forced with a reason: it deploys, and the report says so.
    let mut o = DeployOptions::default();
    o.force = Some("hotfix for INC-42".into());
    o.version = Some("1.5.0".into());
    let r = standard_deploy(&env, &o).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("hotfix for INC-42") && f.message.contains("error_budget"))
    );
    assert_eq!(payload(&r).forced.as_deref(), Some("hotfix for INC-42"));
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml"]);
}

#[tokio::test]
async fn a_good_release_is_tagged_deployed_checked_and_watched() {
    let l = lab();
    let env = env_with(&l, slo(0.9, 0.001));
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p = payload(&r);
    assert_eq!(p.tag.as_deref(), Some("v1.5.0"));
    assert_eq!(p.previous.as_deref(), Some("v1.4.2"));
    assert_eq!(l.repo.pushed(), vec!["v1.5.0"]);
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml"]);
    // 30 minutes watched every 5 minutes, on the virtual clock.
    assert_eq!(
        p.monitoring.iter().map(|m| m.minute).collect::<Vec<_>>(),
        vec![5, 10, 15, 20, 25, 30]
    );
    assert!(!p.rolled_back);
}

/// An SLI source whose 5-minute error rate is `before` until `at` minutes after `start`, then
/// `after`: the incident the monitoring must see.
#[derive(Debug)]
struct Rising {
    clock: ManualClock,
    start: chrono::DateTime<chrono::Utc>,
    at: i64,
    before: f64,
    after: f64,
}

#[async_trait::async_trait]
impl SloSource for Rising {
    async fn fetch(&self) -> agentlab_ops::Result<Vec<SliData>> {
        let minutes = (self.clock.now() - self.start).num_minutes();
        let rate = if minutes >= self.at {
            self.after
        } else {
            self.before
        };
        let mut windows = BTreeMap::new();
        let bad = (rate * 10_000.0).round() as u64;
        windows.insert(
            Duration::from_secs(300),
            agentlab_ops::slo::Counts {
                good: 10_000 - bad,
                total: 10_000,
            },
        );
        windows.insert(
            30 * DAY,
            agentlab_ops::slo::Counts {
                good: 9_999_000,
                total: 10_000_000,
            },
        );
        Ok(vec![SliData {
            name: "availability".into(),
            target: Some(0.999),
            windows,
            recorded: None,
        }])
    }
}

async fn watch(factor: f64) -> (agentlab_ops::Report, Lab) {
    let l = lab();
    // Baseline 0.4%; from minute 12 after the start, `factor` times that.
    let src = Rising {
        clock: l.clock.clone(),
        start: l.clock.now(),
        at: 12,
        before: 0.004,
        after: 0.004 * factor,
    };
    let env = env_with(&l, src);
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    (r, l)
}

#[tokio::test]
async fn an_error_rate_at_2_5x_baseline_rolls_back_at_the_next_check() {
    let (r, l) = watch(2.5).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let p = payload(&r);
    assert!(p.rolled_back);
    let last = p.monitoring.last().unwrap();
    assert_eq!(last.outcome, Outcome::Fail);
    assert_eq!(last.minute, 15, "{:?}", p.monitoring); // the first check after minute 12
    assert!((last.error_rate.unwrap() - 0.01).abs() < 1e-9);
    assert!((last.limit - 0.008).abs() < 1e-9);
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "error_rate_high")
        .unwrap();
    assert!(
        e.observed.contains("1.00%") && e.threshold.contains("0.80%"),
        "{e:?}"
    );
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml", "rollback.yml"]);
    let rb = r
        .checks
        .iter()
        .find(|c| c.name.starts_with("rollback to v1.4.2"))
        .unwrap();
    assert_eq!(rb.outcome, Outcome::Pass);
}

#[tokio::test]
async fn an_error_rate_at_1_5x_baseline_does_not() {
    let (r, l) = watch(1.5).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(payload(&r).monitoring.len(), 6);
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml"]);
}

#[tokio::test]
async fn a_failing_rollback_workflow_falls_back_to_ssh() {
    let l = lab();
    l.deployer.script(
        "deploy.yml",
        Script::Completes {
            conclusion: Conclusion::Failure,
            polls: 1,
        },
    );
    l.deployer.script("rollback.yml", Script::Hangs);
    let env = env_with(&l, slo(0.9, 0.001));
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert!(r.escalations.iter().any(|e| e.criterion == "deploy_failed"));
    let calls: Vec<Vec<String>> = l
        .host
        .calls
        .all()
        .into_iter()
        .map(|c| std::iter::once(c.program).chain(c.args).collect())
        .collect();
    assert!(
        calls.contains(&vec![
            "git".into(),
            "-C".into(),
            "/app".into(),
            "checkout".into(),
            "v1.4.2".into()
        ]),
        "{calls:?}"
    );
    assert!(calls.contains(&vec![
        "systemctl".into(),
        "restart".into(),
        "agent-lab".into()
    ]));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("rolling back by hand"))
    );
}

#[tokio::test]
async fn dry_run_changes_nothing_anywhere() {
    let l = lab();
    let env = env_with(&l, slo(0.9, 0.001));
    let mut o = DeployOptions::default();
    o.run = RunOptions::default().dry_run(true);
    let r = standard_deploy(&env, &o).await;
    assert_ne!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    let planned: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Planned)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(planned, vec!["tag", "deploy"]);
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "gate:error_budget" && c.outcome == Outcome::Pass)
    );
    let mut bg = BlueGreenOptions::default();
    bg.version = Some("1.5.0".into());
    bg.run = RunOptions::default().dry_run(true);
    let r = blue_green_deploy(&env, &bg).await;
    assert_ne!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    let mut rb = RollbackOptions::default();
    rb.run = RunOptions::default().dry_run(true);
    let r = rollback(&env, &rb).await;
    assert_eq!(r.checks[0].outcome, Outcome::Planned);
    assert!(l.deployer.dispatched().is_empty());
    assert!(l.repo.calls.is_empty());
    assert!(l.router.calls.is_empty());
    // The host was only read (the gates look for flags), never told to do anything.
    assert!(
        l.host.calls.all().iter().all(|c| c.program == "cat"),
        "{:?}",
        l.host.calls.all()
    );
}

#[tokio::test]
async fn blue_green_with_unreadable_metrics_never_passes() {
    let l = lab();
    let env = env_with(&l, slo(0.9, 0.0));
    let mut o = BlueGreenOptions::default();
    o.version = Some("1.5.0".into());
    let r = blue_green_deploy(&env, &o).await;
    // The memory probes serve no metrics: every analysis errors, which must never pass.
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert_eq!(l.router.calls.all(), vec![10, 0]);
    let p = payload(&r);
    assert!(p.rolled_back);
    assert!(
        p.rollback_reason.unwrap().contains("measurement error"),
        "errored measurements count as failures"
    );
}

// --- Blue-green against the sandbox --------------------------------------------------------

async fn sandbox_rollout(s: Scenario) -> (agentlab_ops::Report, u8) {
    let sb = Sandbox::start(s).await.unwrap();
    let env = sb.environment().await.unwrap();
    let mut o = BlueGreenOptions::default();
    o.version = Some("1.5.0".into());
    o.run = RunOptions::default().without_journal();
    let r = blue_green_deploy(&env, &o).await;
    let share = env.router.as_ref().unwrap().green().await.unwrap();
    (r, share)
}

#[tokio::test]
async fn sandbox_green_fails_at_50_stops_and_returns_to_blue() {
    let (r, share) = sandbox_rollout(Scenario::GreenFailsAt50).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert_eq!(share, 0, "all traffic back on blue");
    let e = r
        .escalations
        .iter()
        .find(|e| e.criterion == "rollout_aborted")
        .unwrap();
    assert_eq!(e.subject, "traffic:50%");
    assert!(
        e.observed.contains("error_rate: green 8.00%") && e.observed.contains("blue 0.00%"),
        "{e:?}"
    );
    let steps: Vec<(&str, Outcome)> = r
        .checks
        .iter()
        .filter(|c| c.name.starts_with("traffic") || c.name.starts_with("analysis"))
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("traffic:10%", Outcome::Pass),
            ("analysis:traffic:10%", Outcome::Pass),
            ("traffic:25%", Outcome::Pass),
            ("analysis:traffic:25%", Outcome::Pass),
            ("traffic:50%", Outcome::Pass),
            ("analysis:traffic:50%", Outcome::Fail),
            ("traffic: 100% blue", Outcome::Pass),
        ]
    );
}

#[tokio::test]
async fn sandbox_green_healthy_reaches_100_percent() {
    let (r, share) = sandbox_rollout(Scenario::GreenHealthy).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(share, 100);
    assert_eq!(payload(&r).green_percent, Some(100));
}

#[tokio::test]
async fn pause_and_resume() {
    let sb = Sandbox::start(Scenario::GreenHealthy).await.unwrap();
    let env = sb.environment().await.unwrap();
    let mut o = BlueGreenOptions::default();
    o.version = Some("1.5.0".into());
    o.run = RunOptions::default().without_journal();
    let control = o.control.clone();
    control.pause();
    let router = env.router.clone().unwrap();
    let resumer = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Paused before the first step: nothing shifted yet.
        let before = router.green().await.unwrap();
        control.resume();
        before
    };
    let (r, before) = tokio::join!(blue_green_deploy(&env, &o), resumer);
    assert_eq!(before, 0);
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));

    let mut o = BlueGreenOptions::default();
    o.version = Some("1.5.0".into());
    o.run = RunOptions::default().without_journal();
    o.control.abort("operator said stop");
    let r = blue_green_deploy(&env, &o).await;
    assert_eq!(r.verdict, Verdict::Escalate);
    assert!(r.escalations[0].observed.contains("operator said stop"));
}

#[tokio::test]
async fn ci_checks_gate_reads_the_commit() {
    let l = lab();
    l.deployer.set_checks(CheckSummary {
        total: 3,
        failed: vec!["tests".into()],
        pending: vec!["e2e".into()],
    });
    let env = env_with(&l, slo(0.9, 0.0));
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    let e = r
        .escalations
        .iter()
        .find(|e| e.subject == "ci_checks")
        .unwrap();
    assert!(e.observed.contains("failed [tests]") && e.observed.contains("pending [e2e]"));
    assert!(l.deployer.dispatched().is_empty());
}

#[tokio::test]
async fn flags_and_windows_are_gates() {
    let l = lab();
    l.host.put_file("/app/MAINTENANCE_MODE", "");
    let env = env_with(&l, slo(0.9, 0.0));
    let mut o = DeployOptions::default();
    o.high_risk = true;
    let r = standard_deploy(&env, &o).await;
    let failed: Vec<&str> = r.escalations.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(
        failed,
        vec!["no_incident_or_maintenance", "maintenance_window"]
    );
    assert!(
        r.escalations[0]
            .observed
            .contains("web-1:/app/MAINTENANCE_MODE")
    );
}

#[tokio::test]
async fn deployments_are_announced_and_a_failed_notification_is_only_a_warning() {
    let l = lab();
    let slack = agentlab_ops::MemoryNotifier::new();
    let env = Environment::builder("deploy")
        .probe(healthy_probe())
        .slo_source(slo(0.9, 0.001))
        .slo("availability", 0.999)
        .deployer(l.deployer.clone())
        .repo(l.repo.clone())
        .notifier(slack.clone())
        .clock(l.clock.clone())
        .build();
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(
        slack.sent.all(),
        vec![":white_check_mark: v1.5.0 deployed to production"]
    );

    slack
        .faults
        .fail_always(agentlab_ops::ErrorKind::Unavailable, "Slack is down");
    let mut o = DeployOptions::default();
    o.version = Some("1.5.1".into());
    let r = standard_deploy(&env, &o).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(
        r.findings
            .iter()
            .any(|f| f.severity == agentlab_ops::Severity::Warning
                && f.message.contains("notification was not sent")
                && f.message.contains("Slack is down"))
    );
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml", "deploy.yml"]);
}

/// A service whose health lives on `/healthz` (configured) turns healthy during a deployment:
/// the runbooks probe the configured paths, never a hard-coded `/health`.
#[tokio::test]
async fn deployments_probe_the_configured_health_paths() {
    let l = lab();
    let p = MemoryProbe::new();
    p.respond_json("/healthz", json!({"status": "ok"}));
    p.respond_json(
        "/healthz/full",
        json!({"status": "ok", "components": {"app": {"status": "ok"}}}),
    );
    let mut env = Environment::builder("deploy")
        .probe(p.clone())
        .slo_source(slo(0.9, 0.001))
        .slo("availability", 0.999)
        .host(l.host.clone())
        .deployer(l.deployer.clone())
        .repo(l.repo.clone())
        .clock(l.clock.clone())
        .build();
    env.config.service.health_path = "/healthz".into();
    env.config.service.detailed_health_path = "/healthz/full".into();
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let health = r
        .checks
        .iter()
        .find(|c| c.summary.contains("healthy after"))
        .unwrap();
    assert!(
        health
            .summary
            .starts_with("/healthz and /healthz/full healthy"),
        "{}",
        health.summary
    );
}

/// `[fleet] failure_budget` governs the manual rollback across hosts: once more hosts than it
/// allows have failed, the hosts not started are skipped, and the report names them.
#[tokio::test]
async fn the_fleet_failure_budget_stops_a_manual_rollback() {
    let l = lab();
    l.deployer.script(
        "deploy.yml",
        Script::Completes {
            conclusion: Conclusion::Failure,
            polls: 1,
        },
    );
    l.deployer.script("rollback.yml", Script::Hangs);
    let broken = MemoryHost::new("web-0");
    broken.respond_any("git", 1, "");
    let others: Vec<MemoryHost> = (1..4)
        .map(|i| {
            let h = MemoryHost::new(format!("web-{i}"));
            h.respond_any("git", 0, "");
            h.respond_any("systemctl", 0, "");
            h
        })
        .collect();
    let mut b = Environment::builder("deploy")
        .probe(healthy_probe())
        .slo_source(slo(0.9, 0.001))
        .slo("availability", 0.999)
        .host(broken.clone());
    for h in &others {
        b = b.host(h.clone());
    }
    let mut env = b
        .deployer(l.deployer.clone())
        .repo(l.repo.clone())
        .clock(l.clock.clone())
        .build();
    env.config.fleet.concurrency = 1;
    env.config.fleet.failure_budget = Some(agentlab_ops::config::FailureBudget::Count(0));
    let r = standard_deploy(&env, &DeployOptions::default()).await;
    let undo = r
        .findings
        .iter()
        .find(|f| f.message.contains("manual rollback failed"))
        .unwrap_or_else(|| panic!("{}", r.to_text(false)));
    assert!(
        undo.message.contains("failed on 1 of 4 hosts (3 skipped)"),
        "{}",
        undo.message
    );
    assert!(
        undo.message
            .contains("web-3: skipped (failure budget spent)"),
        "{}",
        undo.message
    );
    for h in &others {
        assert!(
            h.calls.all().iter().all(|c| c.program != "git"),
            "a host past the budget was touched"
        );
    }
}
