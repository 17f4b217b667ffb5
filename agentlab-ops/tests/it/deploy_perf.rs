//! The deployment gate "Performance Test": a load test of staging against the baseline kept in
//! the journal. A candidate four times slower stops the deployment before any change; the same
//! speed lets it through; a baseline that was never kept fails the gate, naming it.

use agentlab_ops::config::PerformanceGate;
use agentlab_ops::runbook::load_test::{LoadOptions, load_test};
use agentlab_ops::runbook::{DeployOptions, standard_deploy};
use agentlab_ops::{Environment, RunOptions, Verdict};

use crate::deploy_lab::*;

fn env(l: &Lab, journal: &std::path::Path, url: &str, baseline: &str) -> Environment {
    let text =
        format!("url = \"{url}\"\nbaseline = \"{baseline}\"\nrequests = 2000\nconcurrency = 50\n");
    let gate: PerformanceGate = toml::from_str(&text).unwrap();
    builder_with(l, slo(0.9, 0.001))
        .journal(journal)
        .configure(move |c| {
            c.deploy.as_mut().expect("[deploy] of the lab").performance = Some(gate);
            c.load.noise = 0.5;
        })
        .build()
}

fn gate(r: &agentlab_ops::Report) -> &agentlab_ops::Check {
    r.checks
        .iter()
        .find(|c| c.name == "gate:performance")
        .expect("the gate ran")
}

#[tokio::test]
async fn a_slower_staging_stops_the_deployment_and_the_same_speed_passes() {
    let base = super::load::server().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let l = lab();
    let fixed = format!("{base}/fixed");
    // The release's baseline, measured and labelled.
    let e = env(&l, &journal, &fixed, "release");
    let o = LoadOptions {
        url: Some(fixed.clone()),
        requests: Some(5000),
        concurrency: 50,
        label: Some("release".into()),
        ..LoadOptions::default()
    };
    assert_eq!(
        load_test(&e, &o, &RunOptions::default()).await.verdict,
        Verdict::Healthy
    );

    let e = env(&l, &journal, &format!("{base}/slower"), "release");
    let r = standard_deploy(&e, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let g = gate(&r);
    assert_eq!(g.outcome.as_str(), "fail", "{}", g.summary);
    assert!(
        g.summary.contains("regressed") && g.summary.contains("p99"),
        "{}",
        g.summary
    );
    assert!(r.checks.iter().any(|c| c.name == "gate:performance:load"));
    assert_eq!(r.escalations.len(), 1, "{:?}", r.escalations);
    assert_eq!(r.escalations[0].subject, "performance");
    assert!(deployer_only_read(&l), "nothing deployed");

    let e = env(&l, &journal, &fixed, "release");
    let r = standard_deploy(&e, &DeployOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(gate(&r).outcome.as_str(), "pass", "{}", gate(&r).summary);
    assert_eq!(l.deployer.dispatched(), vec!["deploy.yml"]);

    let e = env(&l, &journal, &fixed, "never-kept");
    let r = standard_deploy(&e, &DeployOptions::default()).await;
    let g = gate(&r);
    assert_eq!(g.outcome.as_str(), "fail");
    assert!(g.summary.contains("never-kept"), "{}", g.summary);
}
