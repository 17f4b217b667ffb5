//! Resuming from a script: a catalogue run whose log was cut where a killed runner leaves it
//! (`ops.unfinished`, `ops.resume`). Scripts' own runs resumed after SIGKILL are tested with
//! the command (agentlab-ops-cli/tests/it/resume_kill.rs).

use std::sync::Arc;

use agentlab_ops::{Environment, MemoryHost, Verdict};
use serde_json::json;

use super::lua;

#[tokio::test]
async fn a_run_that_stopped_half_way_resumes_from_a_script() {
    use agentlab_ops::{ManualClock, MemoryServiceManager};
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let mut b = Environment::builder("lua-resume")
        .clock(ManualClock::starting_now())
        .journal(&journal);
    let svcs: Vec<MemoryServiceManager> = (1..=2)
        .map(|i| MemoryServiceManager::new(format!("web-{i}")))
        .collect();
    for (i, s) in svcs.iter().enumerate() {
        b = b.host_with_service(MemoryHost::new(format!("web-{}", i + 1)), s);
    }
    let env = Arc::new(b.build());
    let r = lua(env.clone(), "return ops.restart{ serial = 1 }.run_id").await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    // Cut its log where a runner killed after web-1 would have left it.
    let runs = dir.path().join("runs");
    let log = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("\"runbook\":\"restart\"")
        });
    let log = log.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let keep = text
        .lines()
        .position(|l| l.contains("scope:host:web-1"))
        .unwrap();
    let cut: Vec<&str> = text.lines().take(keep + 1).collect();
    std::fs::write(&log, cut.join("\n") + "\n").unwrap();
    let pids: Vec<Option<u32>> = svcs.iter().map(|s| s.pid()).collect();
    let r = lua(
        env,
        r#"
        local u = ops.unfinished()
        local r = ops.resume{ run_id = u[1].run_id }
        local again = pcall(ops.resume, {})
        return { n = #u, verdict = r.verdict, first = r.checks[1].outcome,
                 same = r.run_id == u[1].run_id, again = again }
        "#,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let p = &r.payload;
    assert_eq!(
        (p["n"].clone(), p["verdict"].clone()),
        (json!(1), json!("healthy")),
        "{p}"
    );
    assert_eq!(
        (p["first"].clone(), p["same"].clone()),
        (json!("skipped"), json!(true)),
        "{p}"
    );
    assert_eq!(p["again"], false, "nothing is left to resume: {p}");
    assert_eq!(
        svcs[0].pid(),
        pids[0],
        "web-1 finished before the stop: not restarted again"
    );
    assert_ne!(svcs[1].pid(), pids[1], "web-2 was never reached: restarted");
}
