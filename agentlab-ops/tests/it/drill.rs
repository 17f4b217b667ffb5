//! `drill`: every runbook/scenario pair of the catalogue passes on the sandbox; a runbook that
//! no longer reacts (here, a morning check that sees nothing) fails the drill with the pair
//! named; a runbook no pair covers fails it too.

use agentlab_ops::drill::{self, CASES};
use agentlab_ops::runbook::registry::{self, Definition};

#[tokio::test]
async fn every_runbook_and_scenario_pair_passes() {
    let r = drill::run(&[]).await;
    assert!(r.passed, "{}", r.to_text());
    assert!(r.uncovered.is_empty());
    // Every runbook of the catalogue is drilled, most against more than the healthy scenario.
    for d in registry::all() {
        assert!(
            r.cases.iter().any(|c| c.runbook == d.name),
            "{} not drilled",
            d.name
        );
    }
    assert!(r.cases.iter().filter(|c| c.scenario != "healthy").count() >= 14);
}

/// A morning check that checks nothing: healthy whatever the sandbox serves.
static BLIND: Definition = Definition {
    start: |env, _v, run| {
        Box::pin(async move {
            Ok(env
                .execute("morning_check", &run, |_r| async {
                    Ok(serde_json::Value::Null)
                })
                .await)
        })
    },
    ..agentlab_ops::runbook::morning::DEFINITION
};

fn broken(name: &str) -> Option<&'static Definition> {
    if name == "morning_check" {
        Some(&BLIND)
    } else {
        registry::find(name)
    }
}

#[tokio::test]
async fn a_broken_runbook_fails_the_drill_with_the_pair_named() {
    let cases: Vec<_> = CASES
        .iter()
        .filter(|c| c.runbook == "morning_check")
        .copied()
        .collect();
    let catalogue = [registry::find("morning_check").unwrap()];
    let r = drill::run_with(&cases, broken, &catalogue).await;
    assert!(!r.passed);
    let failed: Vec<(&str, &str)> = r
        .cases
        .iter()
        .filter(|c| !c.passed)
        .map(|c| (c.runbook.as_str(), c.scenario.as_str()))
        .collect();
    assert!(
        failed.contains(&("morning_check", "disk-full")),
        "{}",
        r.to_text()
    );
    assert!(failed.contains(&("morning_check", "degraded")));
    assert!(
        !failed.contains(&("morning_check", "healthy")),
        "the healthy pair still passes"
    );
    let table = r.to_text();
    let line = table.lines().find(|l| l.contains("disk-full")).unwrap();
    assert!(
        line.starts_with("FAIL")
            && line.contains("morning_check")
            && line.contains("resource_high"),
        "{line}"
    );
}

#[tokio::test]
async fn a_runbook_without_a_pair_is_a_drill_gap() {
    let r = drill::run_with(
        &[],
        registry::find,
        &[registry::find("cost_report").unwrap()],
    )
    .await;
    assert!(!r.passed);
    assert_eq!(r.uncovered, ["cost_report"]);
    assert!(r.to_text().contains("no drill covers this runbook"));
}
