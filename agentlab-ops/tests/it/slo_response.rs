//! The SLO Violation Response on the memory doubles: yellow pauses exactly the configured
//! workflows and sets a deploy freeze the deploy runbooks stop at; red freezes everything and
//! pages once; green takes back exactly what was done; dry-run changes nothing; a failure half
//! way puts everything back; watch mode follows the zone as it moves.

use std::sync::Mutex;
use std::time::Duration;

use agentlab_ops::alerts::MemoryIncidentSource;
use agentlab_ops::deploy::DeployCall;
use agentlab_ops::runbook::slo_response::{Freeze, FreezeLevel};
use agentlab_ops::runbook::{
    DeployOptions, RunOptions, SloResponseOptions, SloResponsePayload, slo_response,
    standard_deploy,
};
use agentlab_ops::slo::{SliData, SloSource};
use agentlab_ops::{
    Environment, ErrorKind, ManualClock, MemoryDeployer, MemoryHost, MemoryNotifier, MemoryProbe,
    MemoryRepo, MemorySloSource, Outcome, Verdict, Zone,
};
use serde_json::json;

use crate::deploy_lab;
use deploy_lab::{DAY, slo};

const FREEZE: &str = "/app/DEPLOY_FREEZE";

struct Lab {
    deployer: MemoryDeployer,
    pager: MemoryIncidentSource,
    slack: MemoryNotifier,
    hosts: [MemoryHost; 2],
    clock: ManualClock,
}

fn lab() -> Lab {
    let deployer = MemoryDeployer::new();
    deployer.known_workflows(&["deploy.yml", "nightly.yml", "hotfix.yml", "docs.yml"]);
    let hosts = [MemoryHost::new("web-1"), MemoryHost::new("web-2")];
    for h in &hosts {
        h.respond_any("git", 0, "");
        h.respond_any("systemctl", 0, "");
    }
    Lab {
        deployer,
        pager: MemoryIncidentSource::new(),
        slack: MemoryNotifier::new(),
        hosts,
        clock: ManualClock::starting_now(),
    }
}

fn env(l: &Lab, source: impl SloSource + 'static) -> Environment {
    let probe = MemoryProbe::new();
    probe.respond_json("/health", json!({"status": "ok"}));
    probe.respond_json(
        "/health/detailed",
        json!({"status": "ok", "components": {}}),
    );
    Environment::builder("prod")
        .probe(probe)
        .slo_source(source)
        .slo("availability", 0.999)
        .host(l.hosts[0].clone())
        .host(l.hosts[1].clone())
        .deployer(l.deployer.clone())
        .repo(MemoryRepo::new("1.5.0", &["v1.4.2"]))
        .incidents(l.pager.clone())
        .notifier(l.slack.clone())
        .clock(l.clock.clone())
        .configure(|c| {
            c.slo_response.workflows = vec!["deploy.yml".into(), "nightly.yml".into()];
            c.slo_response.red_workflows = vec!["hotfix.yml".into()];
        })
        .build()
}

fn deploy_opts(run: RunOptions, critical: bool) -> DeployOptions {
    let mut o = DeployOptions::default();
    o.run = run;
    o.critical = critical;
    o
}

fn quiet() -> RunOptions {
    RunOptions::default().without_journal()
}

async fn respond(
    e: &Environment,
    o: SloResponseOptions,
) -> (agentlab_ops::Report, SloResponsePayload) {
    let r = slo_response(e, &o, &quiet()).await;
    let p: SloResponsePayload = r
        .payload_as()
        .unwrap_or_else(|e| panic!("no payload ({e}): {}", r.to_text(false)));
    (r, p)
}

fn toggles(d: &MemoryDeployer) -> Vec<(String, bool)> {
    d.calls
        .all()
        .into_iter()
        .filter_map(|c| match c {
            DeployCall::SetEnabled(w, on) => Some((w, on)),
            _ => None,
        })
        .collect()
}

fn freeze_on(h: &MemoryHost) -> Option<Freeze> {
    h.file(FREEZE).map(|b| serde_json::from_slice(&b).unwrap())
}

fn triggers(p: &MemoryIncidentSource) -> usize {
    p.calls
        .all()
        .iter()
        .filter(|c| matches!(c, agentlab_ops::alerts::IncidentCall::Trigger(_)))
        .count()
}

#[tokio::test]
async fn yellow_pauses_exactly_the_configured_workflows_and_freezes_non_critical_deploys() {
    let l = lab();
    let e = env(&l, slo(0.3, 0.0));
    let (r, p) = respond(&e, SloResponseOptions::default()).await;
    assert_eq!(p.zone, Zone::Yellow, "{}", r.to_text(false));
    assert_eq!(
        toggles(&l.deployer),
        [
            ("deploy.yml".to_string(), false),
            ("nightly.yml".to_string(), false)
        ]
    );
    assert_eq!(l.deployer.disabled(), ["deploy.yml", "nightly.yml"]);
    for h in &l.hosts {
        let f = freeze_on(h).expect("the freeze is on every host");
        assert_eq!(f.level, FreezeLevel::NonCritical);
        assert_eq!(f.disabled, ["deploy.yml", "nightly.yml"]);
        assert_eq!(f.page, None, "yellow does not page");
    }
    assert_eq!(triggers(&l.pager), 0);
    assert_eq!(l.slack.sent.len(), 1, "stakeholders told once");
    // The budget and its time to exhaustion are in the assessment.
    let a = &p.slos[0];
    assert!(
        (a.status.budget_remaining.unwrap() - 0.3).abs() < 1e-6,
        "{a:?}"
    );

    // Running it again changes nothing and tells nobody again.
    let (_, p2) = respond(&e, SloResponseOptions::default()).await;
    assert_eq!(toggles(&l.deployer).len(), 2, "no second disable");
    assert_eq!(l.slack.sent.len(), 1);
    assert!(p2.actions.is_empty(), "{:?}", p2.actions);

    // A later standard deployment stops at the freeze gate; a critical one passes it.
    let d = standard_deploy(&e, &deploy_opts(quiet(), false)).await;
    assert_eq!(d.verdict, Verdict::Escalate, "{}", d.to_text(false));
    let gate = d
        .checks
        .iter()
        .find(|c| c.name == "gate:deploy_freeze")
        .unwrap();
    assert_eq!(gate.outcome, Outcome::Fail, "{}", gate.summary);
    assert!(gate.summary.contains("non_critical"), "{}", gate.summary);
    assert!(l.deployer.dispatched().is_empty(), "nothing deployed");
    let crit = deploy_opts(quiet().dry_run(true), true);
    let d = standard_deploy(&e, &crit).await;
    let gate = d
        .checks
        .iter()
        .find(|c| c.name == "gate:deploy_freeze")
        .unwrap();
    assert_eq!(gate.outcome, Outcome::Pass, "{}", gate.summary);
}

#[tokio::test]
async fn red_freezes_everything_and_pages_once_then_green_takes_back_exactly_that() {
    let l = lab();
    // Someone disabled docs.yml by hand before: not ours to enable.
    l.deployer.disable("docs.yml");
    let src = slo(0.3, 0.0);
    let e = env(&l, src.clone());
    respond(&e, SloResponseOptions::default()).await;
    // Red: the budget is gone.
    src.set_counts("availability", 30 * DAY, 9_980_000, 10_000_000);
    let (r, p) = respond(&e, SloResponseOptions::default()).await;
    assert_eq!(p.zone, Zone::Red, "{}", r.to_text(false));
    assert_eq!(r.verdict, Verdict::Escalate);
    let f = freeze_on(&l.hosts[1]).unwrap();
    assert_eq!(f.level, FreezeLevel::All);
    assert_eq!(f.disabled, ["deploy.yml", "nightly.yml", "hotfix.yml"]);
    assert_eq!(triggers(&l.pager), 1);
    let key = f.page.clone().expect("the page's key is kept");
    // A second red run pages no one again.
    respond(&e, SloResponseOptions::default()).await;
    assert_eq!(
        triggers(&l.pager),
        1,
        "a second run sends no second trigger"
    );
    assert_eq!(l.slack.sent.len(), 2, "yellow once, red once");
    // A critical release does not pass a red freeze.
    let crit = deploy_opts(quiet().dry_run(true), true);
    let d = standard_deploy(&e, &crit).await;
    let gate = d
        .checks
        .iter()
        .find(|c| c.name == "gate:deploy_freeze")
        .unwrap();
    assert_eq!(gate.outcome, Outcome::Fail, "{}", gate.summary);

    // Back to green: exactly what was disabled is enabled, the page resolved, the freeze gone.
    src.set_counts("availability", 30 * DAY, 9_999_000, 10_000_000);
    let (r, p) = respond(&e, SloResponseOptions::default()).await;
    assert_eq!(p.zone, Zone::Green, "{}", r.to_text(false));
    assert_eq!(
        l.deployer.disabled(),
        ["docs.yml"],
        "the hand-disabled one stays"
    );
    assert!(
        l.pager
            .calls
            .all()
            .contains(&agentlab_ops::alerts::IncidentCall::Resolve(key))
    );
    assert!(l.hosts.iter().all(|h| h.file(FREEZE).is_none()));
    assert!(
        l.slack.sent.all()[2].contains("back to normal"),
        "{:?}",
        l.slack.sent.all()
    );
    let d = standard_deploy(&e, &deploy_opts(quiet(), false)).await;
    assert_eq!(d.verdict, Verdict::Healthy, "{}", d.to_text(false));
}

#[tokio::test]
async fn dry_run_changes_nothing_anywhere() {
    let l = lab();
    let src = slo(0.3, 0.0);
    src.set_counts("availability", 30 * DAY, 9_980_000, 10_000_000);
    let e = env(&l, src);
    let r = slo_response(&e, &SloResponseOptions::default(), &quiet().dry_run(true)).await;
    assert!(toggles(&l.deployer).is_empty());
    assert_eq!(triggers(&l.pager), 0);
    assert!(l.slack.sent.is_empty());
    assert!(l.hosts.iter().all(|h| h.file(FREEZE).is_none()));
    let planned: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Planned)
        .map(|c| c.name.as_str())
        .collect();
    for step in [
        "freeze:set",
        "workflow:disable:deploy.yml",
        "workflow:disable:hotfix.yml",
        "page",
    ] {
        assert!(planned.contains(&step), "{step} planned: {planned:?}");
    }
}

#[tokio::test]
async fn a_failure_half_way_puts_everything_back() {
    let l = lab();
    // nightly.yml does not exist: reading its state fails after deploy.yml was disabled.
    l.deployer.known_workflows(&["deploy.yml"]);
    let e = env(&l, slo(0.3, 0.0));
    let r = slo_response(&e, &SloResponseOptions::default(), &quiet()).await;
    println!("{}", r.to_text(false));
    assert_eq!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    let err = r.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err:?}");
    assert_eq!(
        toggles(&l.deployer),
        [
            ("deploy.yml".to_string(), false),
            ("deploy.yml".to_string(), true)
        ],
        "disabled, then enabled again by the undo"
    );
    assert!(l.deployer.disabled().is_empty());
    assert!(
        l.hosts.iter().all(|h| h.file(FREEZE).is_none()),
        "no freeze left"
    );
}

#[tokio::test]
async fn no_data_changes_nothing_and_says_so() {
    let l = lab();
    let e = env(&l, MemorySloSource::new());
    let (r, p) = respond(&e, SloResponseOptions::default()).await;
    assert_eq!(p.zone, Zone::Inconclusive);
    assert!(toggles(&l.deployer).is_empty());
    assert!(
        r.escalations
            .iter()
            .any(|x| x.criterion == "slo_inconclusive")
    );
}

#[tokio::test]
async fn resume_normal_takes_everything_back_even_when_not_green_and_says_so() {
    let l = lab();
    let src = slo(0.3, 0.0);
    let e = env(&l, src);
    respond(&e, SloResponseOptions::default()).await;
    let o = SloResponseOptions {
        resume_normal: true,
        ..Default::default()
    };
    let (r, _) = respond(&e, o).await;
    assert!(l.deployer.disabled().is_empty());
    assert!(l.hosts.iter().all(|h| h.file(FREEZE).is_none()));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("while the zone is yellow"))
    );
}

/// Watch mode, every `interval` seconds for `total` seconds.
fn watching(interval: u64, total: u64) -> SloResponseOptions {
    SloResponseOptions {
        watch: true,
        watch_interval: Some(agentlab_ops::config::Dur(Duration::from_secs(interval))),
        watch_for: Some(agentlab_ops::config::Dur(Duration::from_secs(total))),
        ..Default::default()
    }
}

/// A source whose data changes at every fetch: yellow, red, then green.
#[derive(Debug)]
struct Moving(Mutex<Vec<Vec<SliData>>>);

#[async_trait::async_trait]
impl SloSource for Moving {
    async fn fetch(&self) -> agentlab_ops::Result<Vec<SliData>> {
        let mut v = self.0.lock().unwrap();
        Ok(if v.len() > 1 {
            v.remove(0)
        } else {
            v[0].clone()
        })
    }
}

async fn data(s: &MemorySloSource) -> Vec<SliData> {
    s.fetch().await.unwrap()
}

#[tokio::test]
async fn watch_mode_follows_the_zone_up_and_back_down() {
    let l = lab();
    let red = slo(0.3, 0.0);
    red.set_counts("availability", 30 * DAY, 9_980_000, 10_000_000);
    let rounds = vec![
        data(&slo(0.3, 0.0)).await,
        data(&red).await,
        data(&slo(0.9, 0.0)).await,
    ];
    let e = env(&l, Moving(Mutex::new(rounds)));
    let o = watching(300, 600);
    let (r, p) = respond(&e, o).await;
    assert_eq!(p.evaluations, 3, "{}", r.to_text(false));
    assert_eq!(p.zone, Zone::Green);
    assert_eq!(triggers(&l.pager), 1, "paged in the red round");
    assert!(
        l.deployer.disabled().is_empty(),
        "all enabled again at green"
    );
    assert!(p.freeze.is_none());
    assert_eq!(l.clock.sleeps(), [Duration::from_secs(300); 2]);
}

/// In watch mode a round that fails half way is undone at once, and the watch goes on.
#[tokio::test]
async fn watch_mode_undoes_a_round_that_fails_half_way_and_goes_on() {
    let l = lab();
    l.deployer.known_workflows(&["deploy.yml"]); // nightly.yml is missing
    let rounds = vec![
        data(&slo(0.9, 0.0)).await,
        data(&slo(0.3, 0.0)).await,
        data(&slo(0.9, 0.0)).await,
    ];
    let e = env(&l, Moving(Mutex::new(rounds)));
    let o = watching(60, 120);
    let (r, p) = respond(&e, o).await;
    assert_eq!(p.evaluations, 3, "{}", r.to_text(false));
    assert_eq!(
        toggles(&l.deployer),
        [
            ("deploy.yml".to_string(), false),
            ("deploy.yml".to_string(), true)
        ],
        "disabled, then enabled again when the round failed"
    );
    assert!(
        l.hosts.iter().all(|h| h.file(FREEZE).is_none()),
        "no freeze left"
    );
    assert!(
        r.findings.iter().any(|f| f.subject == "round 2"),
        "{:?}",
        r.findings
    );
}
