//! The conformance suite of [`Deployer`]: GitHub Actions, the command deployer, the memory
//! double.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::Clock;
use crate::deploy::{Conclusion, Deployer, RunHandle, run_workflow};
use crate::error::ErrorKind;

/// The workflows a deployer under test knows: one that succeeds, one that fails, and a name
/// it does not know.
#[derive(Debug, Clone, Copy)]
pub struct DeployerFixture<'a> {
    /// A workflow whose runs succeed.
    pub succeeds: &'a str,
    /// A workflow whose runs fail.
    pub fails: &'a str,
    /// A workflow the deployer does not know.
    pub unknown: &'a str,
}

fn inputs() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("environment".to_string(), "conformance".to_string()),
        ("version".to_string(), "1.2.3".to_string()),
    ])
}

async fn follow(d: &dyn Deployer, clock: &dyn Clock, wf: &str) -> crate::deploy::RunResult {
    let (poll, limit) = (Duration::from_millis(10), Duration::from_secs(120));
    run_workflow(d, clock, wf, &inputs(), poll, limit)
        .await
        .unwrap_or_else(|e| panic!("{}: following {wf}: {e}", d.describe()))
}

/// Run every deployer check.
pub async fn deployer_conformance(d: &dyn Deployer, clock: &dyn Clock, f: DeployerFixture<'_>) {
    assert!(!d.describe().is_empty(), "describe() names the deployer");
    deployer_runs_to_success(d, clock, f).await;
    deployer_reports_failure(d, clock, f).await;
    deployer_refuses_an_unknown_workflow(d, f).await;
    deployer_does_not_know_a_made_up_run(d).await;
    deployer_disables_and_enables_workflows(d, f).await;
    deployer_reviews_and_alerts_are_consistent(d).await;
}

/// Reviews and alerts are unsupported, or consistent: a review names its pull request and no
/// reviewer both approves and requests changes; alerts come from the source asked, with a
/// severity asked for.
pub async fn deployer_reviews_and_alerts_are_consistent(d: &dyn Deployer) {
    let who = d.describe();
    match d.commit_review("0123abcd").await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unsupported, "{who}: review: {e}"),
        Ok(r) => {
            assert!(r.pull.is_some() || r.approved_by.is_empty(), "{who}: {r:?}");
            let both = r
                .approved_by
                .iter()
                .find(|a| r.changes_requested_by.contains(a));
            assert!(both.is_none(), "{who}: {r:?}");
        }
    }
    for source in crate::deploy::ALERT_SOURCES {
        let asked = vec!["critical".to_string(), "high".to_string()];
        match d.security_alerts(source, &asked).await {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Unsupported, "{who}: {source}: {e}"),
            Ok(alerts) => {
                for a in alerts {
                    assert!(
                        a.source == *source && asked.contains(&a.severity),
                        "{who}: {a:?}"
                    );
                }
            }
        }
    }
}

/// A succeeding workflow is followed to `success`, under the workflow's name; two runs are
/// two distinct handles.
pub async fn deployer_runs_to_success(d: &dyn Deployer, clock: &dyn Clock, f: DeployerFixture<'_>) {
    let a = follow(d, clock, f.succeeds).await;
    assert_eq!(a.conclusion, Conclusion::Success, "{}: {a:?}", d.describe());
    assert_eq!(a.run.workflow, f.succeeds);
    let b = follow(d, clock, f.succeeds).await;
    assert_ne!(a.run.id, b.run.id, "{}: two runs, one id", d.describe());
}

/// A failing workflow completes with a conclusion that is not `success`.
pub async fn deployer_reports_failure(d: &dyn Deployer, clock: &dyn Clock, f: DeployerFixture<'_>) {
    let r = follow(d, clock, f.fails).await;
    assert_ne!(r.conclusion, Conclusion::Success, "{}: {r:?}", d.describe());
}

/// Dispatching a workflow the deployer does not know is an error that names it, never a run
/// that silently does nothing.
pub async fn deployer_refuses_an_unknown_workflow(d: &dyn Deployer, f: DeployerFixture<'_>) {
    let e = d
        .dispatch(f.unknown, &inputs())
        .await
        .expect_err("dispatching an unknown workflow must fail");
    assert!(
        matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConfigInvalid),
        "{}: {e} ({})",
        d.describe(),
        e.kind()
    );
    assert!(e.to_string().contains(f.unknown), "the error names it: {e}");
}

/// The status of a run the deployer never started is `not_found`.
pub async fn deployer_does_not_know_a_made_up_run(d: &dyn Deployer) {
    let made_up = RunHandle {
        workflow: "deploy.yml".into(),
        id: "999999999".into(),
        url: None,
    };
    let e = d
        .status(&made_up)
        .await
        .expect_err("a made-up run has no status");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{}: {e}", d.describe());
}

/// Where workflows can be disabled: disabling is seen by `workflow_enabled`, is idempotent,
/// and enabling puts it back; an unknown workflow is `not_found` naming it. A provider without
/// the feature answers `unsupported` to both calls, never a silent success.
pub async fn deployer_disables_and_enables_workflows(d: &dyn Deployer, f: DeployerFixture<'_>) {
    let who = d.describe();
    match d.workflow_enabled(f.succeeds).await {
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            let e2 = d
                .set_workflow_enabled(f.succeeds, false)
                .await
                .expect_err("a provider that cannot read the state cannot disable either");
            assert_eq!(e2.kind(), ErrorKind::Unsupported, "{who}: {e2}");
            return;
        }
        Err(e) => panic!("{who}: reading the state of {}: {e}", f.succeeds),
        Ok(on) => assert!(on, "{who}: {} starts enabled", f.succeeds),
    }
    for _ in 0..2 {
        d.set_workflow_enabled(f.succeeds, false)
            .await
            .unwrap_or_else(|e| panic!("{who}: disabling: {e}"));
        assert!(
            !d.workflow_enabled(f.succeeds)
                .await
                .expect("the workflow's state"),
            "{who}: still enabled"
        );
    }
    d.set_workflow_enabled(f.succeeds, true)
        .await
        .unwrap_or_else(|e| panic!("{who}: enabling: {e}"));
    assert!(
        d.workflow_enabled(f.succeeds)
            .await
            .expect("the workflow's state"),
        "{who}: still disabled"
    );
    let e = d
        .workflow_enabled(f.unknown)
        .await
        .expect_err("an unknown workflow has no state");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{who}: {e}");
    let named = e.to_string().contains(f.unknown)
        || e.context()
            .iter()
            .any(|(k, v)| *k == "workflow" && v == f.unknown);
    assert!(named, "{who}: the error names it: {e}");
}
