//! The monthly review on the sandbox: every section filled from its two months of history,
//! the three files written, the disaster-recovery drill restoring into a scratch folder (the
//! live data untouched, by checksum) and failing on a corrupt object; with sources missing
//! the sections say so and the rest renders.

use std::collections::BTreeMap;
use std::path::Path;

use agentlab_ops::runbook::review::{ReviewOptions, ReviewPayload, SectionStatus, monthly_review};
use agentlab_ops::{Environment, RunOptions, Sandbox, Scenario, Verdict};

fn checksums(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.insert(
                    p.display().to_string(),
                    agentlab_ops::backup::manifest::sha256_hex(&data),
                );
            }
        }
    }
    out
}

async fn review(env: &Environment, out: Option<&Path>) -> (agentlab_ops::Report, ReviewPayload) {
    let o = ReviewOptions {
        out: out.map(|p| p.display().to_string()),
        ..Default::default()
    };
    let r = monthly_review(env, &o, &RunOptions::default().without_journal()).await;
    let p: ReviewPayload = r
        .payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)));
    (r, p)
}

#[tokio::test]
async fn on_the_sandbox_every_section_is_filled_and_the_files_written() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let env = sb.environment().await.unwrap();
    let live = std::path::PathBuf::from(&env.config.backups.as_ref().unwrap().data_dir);
    let before = checksums(&live);
    assert!(before.len() >= 6, "live data: {before:?}");
    let out = tempfile::tempdir().unwrap();
    let (r, p) = review(&env, Some(&out.path().join("report.html"))).await;
    let text = r.to_text(false);
    for (name, st) in [
        ("capacity", p.capacity.status),
        ("cost", p.cost.status),
        ("slo", p.slo.status),
        ("performance", p.performance.status),
        ("security", p.security.status),
        ("backups", p.backups.status),
        ("dr", p.dr.status),
        ("usage", p.usage.status),
    ] {
        assert_eq!(st, SectionStatus::Ok, "{name}: {text}");
    }
    assert_eq!(r.verdict, Verdict::Healthy, "{text}");
    assert_sections(&p);
    // Files, and the live data untouched.
    for f in ["report.html", "report.md", "report.json"] {
        assert!(out.path().join(f).metadata().unwrap().len() > 500, "{f}");
    }
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    for remote in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
        assert!(!html.contains(remote), "not self-contained: {remote}");
    }
    assert_eq!(
        html.matches("<svg").count(),
        7,
        "3 capacity, cost, budget, backups, usage"
    );
    let json: ReviewPayload =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json.cost, p.cost);
    assert_eq!(checksums(&live), before, "the drill touched the live data");
}

#[tokio::test]
async fn a_corrupt_object_fails_the_drill_naming_it() {
    let sb = Sandbox::start(Scenario::CorruptObject).await.unwrap();
    let env = sb.environment().await.unwrap();
    let (r, p) = review(&env, None).await;
    assert_eq!(p.dr.status, SectionStatus::Failed, "{}", p.dr.note);
    let d = p.dr.data.as_ref().unwrap();
    assert!(!d.passed);
    assert!(
        d.problems
            .iter()
            .any(|m| m.contains("session-002.json") && m.contains("corrupt")),
        "{:?}",
        d.problems
    );
    assert_eq!(r.verdict, Verdict::Escalate);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "dr_drill_failed")
    );
    assert!(
        p.recommendations
            .iter()
            .any(|m| m.contains("session-002.json"))
    );
}

#[tokio::test]
async fn with_sources_missing_the_sections_say_so_and_the_rest_renders() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let mut env = sb.environment().await.unwrap();
    env.costs = None;
    env.backups = None;
    env.config.review.journals.clear();
    env.journal = None;
    let out = tempfile::tempdir().unwrap();
    let (r, p) = review(&env, Some(&out.path().join("r.html"))).await;
    assert_eq!(
        p.cost.status,
        SectionStatus::NotConfigured,
        "{}",
        p.cost.note
    );
    assert_eq!(p.dr.status, SectionStatus::NotConfigured);
    assert_eq!(p.usage.status, SectionStatus::NoData, "{}", p.usage.note);
    assert_eq!(p.capacity.status, SectionStatus::Ok);
    assert_ne!(r.verdict, Verdict::Failed, "{}", r.to_text(false));
    let html = std::fs::read_to_string(out.path().join("r.html")).unwrap();
    assert!(html.contains("not configured ([cost])") && html.contains("capacity-disk"));
    let md = std::fs::read_to_string(out.path().join("r.md")).unwrap();
    assert!(md.contains("## Cost (not configured)"), "{md}");
}

#[tokio::test]
async fn garbage_history_is_a_failed_section_not_a_panic() {
    let mut sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    sb.config_mut().service.history_path = "/health".into();
    let env = sb.environment().await.unwrap();
    let (_, p) = review(&env, None).await;
    assert_eq!(p.capacity.status, SectionStatus::Failed);
    assert!(
        p.capacity.note.contains("/metrics/history"),
        "{}",
        p.capacity.note
    );
    assert_eq!(
        p.cost.status,
        SectionStatus::Ok,
        "one failing section hides no other"
    );
}

/// Every section's data is what the sandbox's history holds.
fn assert_sections(p: &ReviewPayload) {
    // Capacity: both hosts, all three resources, every day of the month.
    let c = p.capacity.data.as_ref().unwrap();
    assert_eq!(
        c.series.len(),
        6,
        "{:?}",
        c.series
            .iter()
            .map(|s| (&s.subject, &s.resource))
            .collect::<Vec<_>>()
    );
    assert!(
        c.series
            .iter()
            .all(|s| s.points.len() as i64 == p.period.days()),
        "{}",
        p.capacity.note
    );
    // Cost: the sandbox's month before last against last month.
    let cost = p.cost.data.as_ref().unwrap();
    assert!((cost.total - 254.8).abs() < 0.01, "{}", p.cost.note);
    // SLOs from the morning checks: one record per day, the zones add up to the days.
    let slo = p.slo.data.as_ref().unwrap();
    let a = slo.slos.iter().find(|s| s.name == "availability").unwrap();
    assert_eq!(
        a.zones.values().sum::<u32>() as i64,
        p.period.days(),
        "{:?}",
        a.zones
    );
    assert!(a.consumed.unwrap() > 0.5, "{}", p.slo.note);
    // Performance: the endpoints of /metrics/history and the month log's three templates.
    let perf = p.performance.data.as_ref().unwrap();
    assert_eq!(perf.endpoints.as_ref().unwrap()[0].path, "/api/run");
    let errors = perf.errors.as_ref().unwrap();
    assert!(
        errors[0].template.contains("upstream timeout"),
        "{errors:?}"
    );
    assert_eq!(errors[0].hosts.len(), 2);
    // Security: the two monthly reviews differ by one finding each way.
    let s = p.security.data.as_ref().unwrap();
    assert_eq!(
        (s.new.len(), s.resolved.len()),
        (1, 1),
        "{}",
        p.security.note
    );
    // Backups: a night per day, the planted failures among them.
    let b = p.backups.data.as_ref().unwrap();
    assert_eq!(b.nights.len() as i64, p.period.days());
    assert_eq!(b.verified as usize + b.failures.len(), b.nights.len());
    // DR: both datasets restored and valid, under the targets; the scratch folder removed.
    let d = p.dr.data.as_ref().unwrap();
    assert!(d.passed, "{:?}", d.problems);
    assert_eq!(d.datasets.len(), 2);
    assert!(
        d.datasets.iter().any(|x| x.json_ok == 5) && d.datasets.iter().any(|x| x.csv_rows == 40)
    );
    assert!(d.rpo_s < 26 * 3600);
    assert!(
        !Path::new(&d.scratch).exists(),
        "scratch {} left behind",
        d.scratch
    );
    // Usage: the journal's runbooks, time saved, the mid-month config change.
    let u = p.usage.data.as_ref().unwrap();
    assert_eq!(u.runbooks[0].runbook, "backup_verify");
    assert!(u.hours_saved > 10.0, "{}", p.usage.note);
    assert_eq!(u.revisions.len(), 2, "{:?}", u.revisions);
}

#[tokio::test]
async fn a_scratch_folder_inside_the_live_data_is_refused_before_anything_is_made() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let mut env = sb.environment().await.unwrap();
    let live = std::path::PathBuf::from(&env.config.backups.as_ref().unwrap().data_dir);
    let before = checksums(&live);
    env.config.review.scratch_dir = Some(live.join("dr"));
    let (r, p) = review(&env, None).await;
    assert_eq!(p.dr.status, SectionStatus::Failed);
    assert!(
        p.dr.note.contains("inside the live data path"),
        "{}",
        p.dr.note
    );
    assert!(
        !live.join("dr").exists(),
        "a folder was made in the live data"
    );
    assert_eq!(checksums(&live), before);
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "dr_drill_failed")
    );
}
