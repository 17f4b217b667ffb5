//! Resuming a run from its run log: a run is cut where a killed runner would have left it
//! (the log truncated after a given record), then resumed; each step must run exactly as
//! often as the semantics say (done: never again; in flight: checked, repeated when
//! idempotent, else the operator decides), and a failing run finishes only its missing undos.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use agentlab_ops::runbook::resume::{ResumeRequest, prepare, unfinished};
use agentlab_ops::runbook::run::RunLog;
use agentlab_ops::runbook::{Change, Run, RunOptions, Undo};
use agentlab_ops::{Environment, Error, ErrorKind, Verdict};
use serde_json::json;

/// What each step and undo did, in order.
#[derive(Default, Clone)]
struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    fn push(&self, s: &str) {
        self.0.lock().unwrap().push(s.to_string());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fx {
    _dir: tempfile::TempDir,
    journal: PathBuf,
    env: Environment,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let env = Environment::builder("resume-test")
        .journal(&journal)
        .build();
    Fx {
        _dir: dir,
        journal,
        env,
    }
}

/// How the body behaves: step `c` fails when `fail_c`; `b` says it was applied on check.
#[derive(Clone, Default)]
struct Plan {
    fail_c: bool,
    b_applied: bool,
    checked: Arc<AtomicUsize>,
}

fn undo(t: &Trace, name: &str) -> Option<Undo> {
    let (t, n) = (t.clone(), name.to_string());
    Some(Undo::on_failure(
        format!("undo {name}"),
        move || async move {
            t.push(&format!("undo {n}"));
            Ok(())
        },
    ))
}

/// Three changes: `a:h1` idempotent, `b:h1` verifiable (witness 41), `c:h1` neither (it
/// returns nothing, so an operator's `--done` is all a resume needs of it).
async fn body(run: Run, t: Trace, p: Plan) -> agentlab_ops::Result<serde_json::Value> {
    let ta = t.clone();
    let a = run
        .apply(
            Change::new("a:h1", "touch a")
                .idempotent()
                .undo(undo(&t, "a")),
            async move {
                ta.push("a");
                Ok(1u32)
            },
        )
        .await?;
    let (tb, checked, applied) = (t.clone(), p.checked.clone(), p.b_applied);
    let b = run
        .apply(
            Change::new("b:h1", "restart b").undo(undo(&t, "b")).verify(
                json!(41),
                move |w| async move {
                    assert_eq!(w, Some(json!(41)), "the witness comes back from the log");
                    checked.fetch_add(1, Ordering::SeqCst);
                    Ok(applied.then_some(2u32))
                },
            ),
            async move {
                tb.push("b");
                Ok(2u32)
            },
        )
        .await?;
    let tc = t.clone();
    let c = run
        .apply(
            Change::new("c:h1", "send c").undo(undo(&t, "c")),
            async move {
                tc.push("c");
                if p.fail_c {
                    return Err(Error::new(ErrorKind::Unexpected, "c broke"));
                }
                Ok(())
            },
        )
        .await?;
    Ok(json!({ "a": a, "b": b, "c": c }))
}

async fn start(f: &Fx, t: &Trace, p: &Plan) -> agentlab_ops::Report {
    let mut o = RunOptions::default();
    o.invocation = Some(json!({}));
    let (t, p) = (t.clone(), p.clone());
    f.env
        .execute("durable-test", &o, |run| body(run, t, p))
        .await
}

/// Keep the log up to and including the `keep`-th line (1-based), as a kill would.
fn cut(f: &Fx, run_id: &str, keep: usize) -> PathBuf {
    let path = RunLog::path_of(&f.journal, run_id);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().take(keep).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn kinds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match v.get("step").or(v.get("name")) {
                Some(s) => format!("{} {}", v["t"].as_str().unwrap(), s.as_str().unwrap()),
                None => v["t"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

async fn resume(f: &Fx, t: &Trace, p: &Plan, req: ResumeRequest) -> agentlab_ops::Report {
    let rp = prepare(&f.env, &req).unwrap();
    let mut o = RunOptions::default();
    o.resume = Some(Arc::new(rp));
    let (t, p) = (t.clone(), p.clone());
    f.env
        .execute("durable-test", &o, |run| body(run, t, p))
        .await
}

#[tokio::test]
async fn a_run_logs_each_change_before_and_after_it_acts() {
    let (f, t, p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let log = RunLog::path_of(&f.journal, &r.run_id);
    assert_eq!(
        kinds(&log),
        [
            "start",
            "begin a:h1",
            "done a:h1",
            "begin b:h1",
            "done b:h1",
            "begin c:h1",
            "done c:h1",
            "end"
        ]
    );
    // An ended run is not resumable, and says so.
    assert!(unfinished(&f.env).unwrap().is_empty());
    let e = prepare(&f.env, &ResumeRequest::run(&r.run_id)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("already ended"), "{e}");
}

#[tokio::test]
async fn finished_steps_are_not_run_again_and_an_in_flight_one_is_checked() {
    let (f, t, mut p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    t.take();
    // Killed while `b` was in flight (after its begin): `a` is done, `b` unknown.
    let log = cut(&f, &r.run_id, 4);
    let list = unfinished(&f.env).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].done, list[0].in_flight.clone()),
        (1, vec!["b:h1".to_string()])
    );
    // `b` checks itself: it had been applied, so it is kept, not repeated.
    p.b_applied = true;
    let again = resume(&f, &t, &p, ResumeRequest::last()).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert_eq!(again.run_id, r.run_id, "the same run goes on");
    assert_eq!(t.take(), ["c"], "a was done, b was applied: only c runs");
    assert_eq!(p.checked.load(Ordering::SeqCst), 1);
    assert_eq!(
        again.payload,
        json!({"a": 1, "b": 2, "c": null}),
        "a's value comes from the log"
    );
    let k = kinds(&log);
    assert_eq!(k[4], "resume");
    assert_eq!(k.last().unwrap(), "end");
    assert!(again.findings.iter().any(|f| f.subject == "resume"));
    assert!(unfinished(&f.env).unwrap().is_empty());
}

#[tokio::test]
async fn an_in_flight_step_that_did_not_happen_runs_and_an_idempotent_one_repeats() {
    let (f, t, p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    t.take();
    // `b` in flight, and its check says it did not happen: it runs.
    cut(&f, &r.run_id, 4);
    let again = resume(&f, &t, &p, ResumeRequest::run(&r.run_id)).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert_eq!(t.take(), ["b", "c"]);
    // `a` in flight (idempotent): it runs again.
    let r = start(&f, &t, &p).await;
    t.take();
    cut(&f, &r.run_id, 2);
    let again = resume(&f, &t, &p, ResumeRequest::run(&r.run_id)).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert_eq!(t.take(), ["a", "b", "c"]);
}

#[tokio::test]
async fn a_step_that_can_neither_repeat_nor_check_is_left_to_the_operator() {
    let (f, t, p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    t.take();
    cut(&f, &r.run_id, 6);
    let e = prepare(&f.env, &ResumeRequest::run(&r.run_id)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        e.to_string().contains("c:h1") && e.to_string().contains("--done"),
        "{e}"
    );
    // A step that was not in flight cannot be declared done.
    let mut req = ResumeRequest::run(&r.run_id);
    req.done = vec!["a:h1".into()];
    let e = prepare(&f.env, &req).unwrap_err();
    assert!(e.to_string().contains("not in flight"), "{e}");
    // The operator says it happened: nothing runs again.
    req.done = vec!["c:h1".into()];
    let again = resume(&f, &t, &p, req).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert!(t.take().is_empty());
    // Or that it did not: it runs.
    let r = start(&f, &t, &p).await;
    t.take();
    cut(&f, &r.run_id, 6);
    let mut req = ResumeRequest::run(&r.run_id);
    req.redo = vec!["c:h1".into()];
    let again = resume(&f, &t, &p, req).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert_eq!(t.take(), ["c"]);
}

#[tokio::test]
async fn a_failing_run_killed_during_its_undos_finishes_only_the_missing_ones() {
    let (f, t, mut p) = (fx(), Trace::default(), Plan::default());
    p.fail_c = true;
    let r = start(&f, &t, &p).await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert_eq!(t.take(), ["a", "b", "c", "undo b", "undo a"]);
    let log = RunLog::path_of(&f.journal, &r.run_id);
    let k = kinds(&log);
    let at = k.iter().position(|s| s == "undone undo b").unwrap();
    assert_eq!(k[at - 1], "failing");
    // Killed after `undo b` was done: only `undo a` is left, and no step runs.
    cut(&f, &r.run_id, at + 1);
    p.fail_c = false;
    let again = resume(&f, &t, &p, ResumeRequest::last()).await;
    assert_eq!(t.take(), ["undo a"], "{}", again.to_text(false));
    assert_eq!(again.verdict, Verdict::Failed, "a failing run ends failed");
    assert!(unfinished(&f.env).unwrap().is_empty());
}

#[tokio::test]
async fn an_always_undo_of_a_finished_step_runs_once_after_a_resume() {
    let (f, t) = (fx(), Trace::default());
    let flag = |t: &Trace| {
        let t = t.clone();
        Undo::always("unflag", move || async move {
            t.push("unflag");
            Ok(())
        })
    };
    let go = |o: RunOptions, t: Trace| {
        let env = &f.env;
        async move {
            env.execute("flagged", &o, |run| async move {
                let tf = t.clone();
                run.apply(
                    Change::new("flag", "flag")
                        .redo_on_resume()
                        .undo(Some(flag(&t))),
                    async move {
                        tf.push("flag");
                        Ok(())
                    },
                )
                .await?;
                let tw = t.clone();
                run.apply(Change::new("work", "work").idempotent(), async move {
                    tw.push("work");
                    Ok(())
                })
                .await?;
                Ok(json!({}))
            })
            .await
        }
    };
    let mut o = RunOptions::default();
    o.invocation = Some(json!({}));
    let r = go(o, t.clone()).await;
    assert_eq!(t.take(), ["flag", "work", "unflag"]);
    // Killed while working: the flag (whose lease may have run out) is set again, work
    // repeats, and the flag comes down once.
    cut(&f, &r.run_id, 4);
    let mut o = RunOptions::default();
    o.resume = Some(Arc::new(prepare(&f.env, &ResumeRequest::last()).unwrap()));
    let again = go(o, t.clone()).await;
    assert_eq!(again.verdict, Verdict::Healthy, "{}", again.to_text(false));
    assert_eq!(t.take(), ["flag", "work", "unflag"]);
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_and_a_garbled_one_named() {
    let (f, t, p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    let log = cut(&f, &r.run_id, 4);
    // A kill mid-write leaves half a line at the end: skipped.
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"t\":\"done\",\"step\":\"b:h");
    std::fs::write(&log, &text).unwrap();
    let rp = RunLog::read(&log).unwrap();
    assert_eq!(rp.in_flight().len(), 1);
    // Garbage before the end is corruption: the error names the file and line.
    let lines: Vec<&str> = text.lines().collect();
    let bad = format!(
        "{}\nnot json\n{}\n",
        lines[..2].join("\n"),
        lines[2..4].join("\n")
    );
    std::fs::write(&log, bad).unwrap();
    let e = RunLog::read(&log).unwrap_err();
    let msg = format!("{e} {:?}", e.context());
    assert!(msg.contains("line 3") || msg.contains("\"3\""), "{msg}");
    assert!(msg.contains(&r.run_id), "{msg}");
}

#[tokio::test]
async fn secrets_never_reach_the_run_log() {
    let (f, t) = (fx(), Trace::default());
    let s = agentlab_ops::Secret::new("resume-s3cr3t-value-77", "test");
    let mut o = RunOptions::default();
    o.invocation = Some(json!({}));
    let r = f
        .env
        .execute("secretive", &o, |run| async move {
            let plan = format!("login with {}", s.expose());
            let err = run
                .apply(Change::<()>::new("login", plan), async move {
                    Err(Error::new(
                        ErrorKind::Unexpected,
                        format!("{} refused", s.expose()),
                    ))
                })
                .await;
            t.push("login");
            err.map(|_| json!({}))
        })
        .await;
    assert_eq!(r.verdict, Verdict::Failed);
    let log = std::fs::read_to_string(RunLog::path_of(&f.journal, &r.run_id)).unwrap();
    assert!(
        log.contains("refused") && log.contains("[REDACTED]"),
        "{log}"
    );
    assert!(!log.contains("resume-s3cr3t-value-77"), "{log}");
}

#[tokio::test]
async fn a_run_still_going_is_never_taken_over() {
    let (f, t, p) = (fx(), Trace::default(), Plan::default());
    let r = start(&f, &t, &p).await;
    let log = cut(&f, &r.run_id, 4);
    // A live runner holds its log (flock, released when its process dies, SIGKILL included).
    let live = RunLog::open(log.clone()).unwrap();
    let list = unfinished(&f.env).unwrap();
    assert!(list[0].running, "{list:?}");
    let e = prepare(&f.env, &ResumeRequest::run(&r.run_id)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("still going"), "{e}");
    let e = prepare(&f.env, &ResumeRequest::last()).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "--last skips a live run: {e}"
    );
    // A resume prepared just before the runner took the log back stops without acting.
    drop(live);
    let rp = prepare(&f.env, &ResumeRequest::last()).unwrap();
    let _again = RunLog::open(log).unwrap();
    t.take();
    let mut o = RunOptions::default();
    o.resume = Some(Arc::new(rp));
    let (t2, p2) = (t.clone(), p.clone());
    let r = f
        .env
        .execute("durable-test", &o, |run| body(run, t2, p2))
        .await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(t.take().is_empty(), "nothing ran without the log");
    assert!(r.error.unwrap().message.contains("still going"));
}
