use super::*;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

#[tokio::test]
async fn dry_run_plans_changes_without_running_them() {
    let ran = Arc::new(AtomicU32::new(0));
    let r2 = ran.clone();
    let report = execute(
        "t",
        "env",
        &RunOptions::default().dry_run(true),
        |run| async move {
            let v = run
                .change(
                    "restart",
                    "restart agent-lab on web-1",
                    async move {
                        r2.fetch_add(1, Ordering::SeqCst);
                        Ok(1)
                    },
                    None,
                )
                .await?;
            assert!(v.is_none());
            Ok(serde_json::Value::Null)
        },
    )
    .await;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(report.checks[0].outcome, Outcome::Planned);
    assert_eq!(report.verdict, Verdict::Healthy);
    assert!(report.dry_run);
}

#[tokio::test]
async fn failure_runs_undos_in_reverse_and_always_undos_on_success() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let report = execute("t", "env", &RunOptions::default(), |run| async move {
        for name in ["a", "b"] {
            let l = l.clone();
            run.change(
                name,
                format!("do {name}"),
                async { Ok(()) },
                Some(Undo::on_failure(
                    format!("undo {name}"),
                    move || async move {
                        l.lock().unwrap().push(name);
                        Ok(())
                    },
                )),
            )
            .await?;
        }
        Err::<serde_json::Value, _>(Error::new(ErrorKind::Unexpected, "boom"))
    })
    .await;
    assert_eq!(*log.lock().unwrap(), vec!["b", "a"]);
    assert_eq!(report.verdict, Verdict::Failed);
    let undos: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.action == Action::Undo)
        .collect();
    assert_eq!(undos.len(), 2);

    // On success: on_failure undos do not run, always undos do.
    let log2 = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2) = (log2.clone(), log2.clone());
    let report = execute("t", "env", &RunOptions::default(), |run| async move {
        run.change(
            "flag",
            "set flag",
            async { Ok(()) },
            Some(Undo::always("clear flag", move || async move {
                l1.lock().unwrap().push("clear");
                Ok(())
            })),
        )
        .await?;
        run.change(
            "x",
            "x",
            async { Ok(()) },
            Some(Undo::on_failure("undo x", move || async move {
                l2.lock().unwrap().push("x");
                Ok(())
            })),
        )
        .await?;
        Ok(serde_json::Value::Null)
    })
    .await;
    assert_eq!(*log2.lock().unwrap(), vec!["clear"]);
    assert_eq!(report.verdict, Verdict::Healthy);
}

#[tokio::test]
async fn cancellation_stops_the_body_and_undoes() {
    let token = CancelToken::new();
    let undone = Arc::new(AtomicBool::new(false));
    let u = undone.clone();
    let t2 = token.clone();
    let report = execute(
        "t",
        "env",
        &RunOptions::default().cancel_on(token),
        |run| async move {
            run.change(
                "flag",
                "set",
                async { Ok(()) },
                Some(Undo::always("clear", move || async move {
                    u.store(true, Ordering::SeqCst);
                    Ok(())
                })),
            )
            .await?;
            t2.cancel();
            run.check("slow", None, async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Checked::pass((), "done"))
            })
            .await?;
            Ok(serde_json::Value::Null)
        },
    )
    .await;
    assert!(undone.load(Ordering::SeqCst));
    assert_eq!(report.verdict, Verdict::Failed);
    assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::Cancelled);
    assert!(report.findings.iter().any(|f| f.message.contains("slow")));
}

#[tokio::test]
async fn check_timeout_is_an_error_outcome() {
    let run = Run::new("t", "e", false);
    let r: Result<()> = run
        .check("hang", Some(Duration::from_millis(20)), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Checked::pass((), ""))
        })
        .await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Timeout);
    let rep = run.finish(serde_json::Value::Null, None).await;
    assert_eq!(rep.checks[0].outcome, Outcome::Error);
    assert!(rep.checks[0].summary.contains("20ms"));
}
