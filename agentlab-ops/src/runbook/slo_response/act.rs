//! Step 3 of the SLO Violation Response: put the zone's measures in place (freeze, pause
//! workflows, page, tell stakeholders) or take exactly those measures back.
//!
//! Raising writes the freeze record first (write-ahead), then each change with its undo; when
//! one fails (or the run is stopped), the undos put everything back as it was before this run.
//! Once every change of the round is done they are committed (their undos forgotten): a later
//! Ctrl-C of watch mode does not thaw a freeze that was set on purpose. Resuming enables only
//! the workflows the record lists and resolves only the page it holds; what it could not undo
//! stays in the record, so running it again finishes the job.

use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::report::Severity;
use crate::runbook::run::{Run, Undo};

use super::freeze::{Freeze, FreezeLevel, FreezeStore};

/// What one round changed (or planned, under dry-run).
#[derive(Debug, Default)]
pub struct Acted {
    /// Lines for the payload.
    pub actions: Vec<String>,
    /// The record after the round.
    pub freeze: Option<Freeze>,
}

/// The workflows a level pauses.
fn workflows_for(env: &Environment, level: FreezeLevel) -> Vec<String> {
    let c = &env.config.slo_response;
    let mut w = c.workflows.clone();
    if level == FreezeLevel::All {
        w.extend(c.red_workflows.iter().cloned());
    }
    w
}

/// Freeze at least as far as `level`: only what is not in place yet is done. The round is
/// all or nothing: when a change fails, the round's earlier changes are undone at once (in
/// watch mode too, where the run goes on); when all are done they are committed.
pub async fn raise(
    env: &Environment,
    run: &Run,
    store: &FreezeStore,
    current: Option<Freeze>,
    level: FreezeLevel,
    reason: &str,
) -> Result<Acted> {
    let mut undos = Vec::new();
    match raise_steps(env, run, store, current, level, reason, &mut undos).await {
        Ok(out) => {
            for u in &undos {
                run.forget(u);
            }
            Ok(out)
        }
        Err(e) => {
            for u in undos.iter().rev() {
                run.settle(u).await;
            }
            Err(e)
        }
    }
}

async fn raise_steps(
    env: &Environment,
    run: &Run,
    store: &FreezeStore,
    current: Option<Freeze>,
    level: FreezeLevel,
    reason: &str,
    undos: &mut Vec<String>,
) -> Result<Acted> {
    let mut out = Acted::default();
    let previous = current.clone();
    let mut f = current.unwrap_or_else(|| Freeze {
        level,
        run_id: run.run_id().to_string(),
        since: env.clock.now(),
        reason: reason.to_string(),
        disabled: Vec::new(),
        page: None,
        notified: None,
    });
    let was = previous.as_ref().map(|p| p.level);
    f.level = f.level.max(level);
    if was != Some(f.level) {
        f.reason = reason.to_string();
        let plan = format!(
            "freeze deployments ({}) at {}",
            f.level.as_str(),
            store.describe()
        );
        let (s, prev) = (store.clone(), previous.clone());
        let undo = Undo::on_failure("freeze:set", move || async move {
            s.restore(prev.as_ref()).await
        });
        run.change("freeze:set", plan.clone(), store.write(&f), Some(undo))
            .await?;
        undos.push("freeze:set".to_string());
        out.actions.push(plan);
    }
    pause_workflows(env, run, &mut f, &mut out, undos).await?;
    if f.level == FreezeLevel::All {
        page(env, run, &mut f, &mut out, undos, reason).await?;
    }
    if f.notified < Some(f.level) && tell(env, run, &f, reason, true).await {
        f.notified = Some(f.level);
    }
    if Some(&f) != previous.as_ref() {
        let plan = format!("record the freeze at {}", store.describe());
        run.change("freeze:record", plan, store.write(&f), None)
            .await?;
    }
    out.freeze = Some(f);
    Ok(out)
}

async fn pause_workflows(
    env: &Environment,
    run: &Run,
    f: &mut Freeze,
    out: &mut Acted,
    undos: &mut Vec<String>,
) -> Result<()> {
    let todo: Vec<String> = workflows_for(env, f.level)
        .into_iter()
        .filter(|w| !f.disabled.contains(w))
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let Some(d) = env.deployer.clone() else {
        run.escalate(
            "workflows_not_paused",
            todo.join(", "),
            "no [deploy] configured",
            "the workflows disabled",
            "the deployment workflows could not be paused: disable them by hand",
        );
        return Ok(());
    };
    for wf in todo {
        let step = format!("workflow:{wf}");
        let on = run
            .check(&step, None, async {
                let on = d.workflow_enabled(&wf).await?;
                let s = if on { "enabled" } else { "already disabled" };
                Ok(crate::runbook::run::Checked::pass(on, format!("{wf} {s}")))
            })
            .await?;
        if !on {
            let msg = format!("{wf} was already disabled: left as it is, and not ours to enable");
            run.finding(Severity::Info, wf.clone(), msg);
            continue;
        }
        let name = format!("workflow:disable:{wf}");
        let plan = format!("disable {wf} on {}", d.describe());
        let (d2, w2) = (d.clone(), wf.clone());
        let undo = Undo::on_failure(name.clone(), move || async move {
            d2.set_workflow_enabled(&w2, true).await
        });
        let done = run
            .change(
                &name,
                plan.clone(),
                d.set_workflow_enabled(&wf, false),
                Some(undo),
            )
            .await?;
        undos.push(name);
        out.actions.push(plan);
        if done.is_some() || run.is_dry_run() {
            f.disabled.push(wf);
        }
    }
    Ok(())
}

/// Page once: the page's key is the run id of the run that paged, kept in the record.
async fn page(
    env: &Environment,
    run: &Run,
    f: &mut Freeze,
    out: &mut Acted,
    undos: &mut Vec<String>,
    reason: &str,
) -> Result<()> {
    if f.page.is_some() || !env.config.slo_response.page {
        return Ok(());
    }
    let Some(pd) = env.incidents.clone() else {
        run.escalate(
            "not_paged",
            "pagerduty",
            "no [pagerduty] configured",
            "the on-call paged",
            "the SLO is red and nobody was paged: page the on-call by hand",
        );
        return Ok(());
    };
    let key = run.run_id().to_string();
    let summary = format!("SLO red on {}: {reason}", env.name());
    let sev = env.config.slo_response.page_severity.clone();
    let plan = format!("page through {} (dedup key {key})", pd.describe());
    let (p2, k2) = (pd.clone(), key.clone());
    let undo = Undo::on_failure("page", move || async move { p2.resolve(&k2).await });
    let r = run
        .change(
            "page",
            plan.clone(),
            pd.trigger(&key, &summary, &sev),
            Some(undo),
        )
        .await;
    match r {
        Ok(_) => {
            undos.push("page".into());
            out.actions.push(plan);
            f.page = Some(key);
        }
        // A page that did not go out is no reason to thaw the freeze; it is escalated.
        Err(e) => run.escalate(
            "not_paged",
            pd.describe(),
            e.to_string(),
            "the on-call paged",
            "the page failed: page the on-call by hand (the next run tries again)",
        ),
    }
    Ok(())
}

/// Tell stakeholders (a failure is a warning); returns whether the message went out.
async fn tell(env: &Environment, run: &Run, f: &Freeze, reason: &str, raising: bool) -> bool {
    if !env.config.slo_response.notify {
        return false;
    }
    let text = if !raising {
        let again = if f.disabled.is_empty() {
            String::new()
        } else {
            format!(" ({} enabled again)", f.disabled.join(", "))
        };
        format!(
            ":white_check_mark: SLOs of {} back to normal: deployments resumed{again}",
            env.name()
        )
    } else if f.level == FreezeLevel::All {
        format!(
            ":rotating_light: SLO red on {}: {reason}. Every deployment is frozen and the on-call is paged.",
            env.name()
        )
    } else {
        format!(
            ":warning: SLO yellow on {}: {reason}. Non-critical deployments are paused ({}).",
            env.name(),
            f.disabled.join(", ")
        )
    };
    crate::runbook::notice::post(env, run, "notify", &text, "the message to stakeholders").await
}

/// Take back exactly what the record lists, then remove it. What could not be taken back
/// stays in the record and fails the run.
pub async fn resume(env: &Environment, run: &Run, store: &FreezeStore, f: Freeze) -> Result<Acted> {
    let mut out = Acted::default();
    let mut left = f.clone();
    let mut failed = Vec::new();
    for wf in &f.disabled {
        let Some(d) = env.deployer.clone() else {
            failed.push(format!("{wf}: no [deploy] configured"));
            continue;
        };
        let plan = format!("enable {wf} on {}", d.describe());
        match run
            .change(
                &format!("workflow:enable:{wf}"),
                plan.clone(),
                d.set_workflow_enabled(wf, true),
                None,
            )
            .await
        {
            Ok(_) => {
                left.disabled.retain(|w| w != wf);
                out.actions.push(plan);
            }
            Err(e) => failed.push(format!("{wf}: {e}")),
        }
    }
    if let Some(key) = &f.page {
        match env.incidents.clone() {
            None => failed.push(format!("page {key}: no [pagerduty] configured")),
            Some(pd) => {
                let plan = format!("resolve the page {key} on {}", pd.describe());
                match run
                    .change("page:resolve", plan.clone(), pd.resolve(key), None)
                    .await
                {
                    Ok(_) => {
                        left.page = None;
                        out.actions.push(plan);
                    }
                    Err(e) => failed.push(format!("page {key}: {e}")),
                }
            }
        }
    }
    if !failed.is_empty() {
        let plan = format!("keep what is left in the freeze at {}", store.describe());
        run.change("freeze:record", plan, store.write(&left), None)
            .await?;
        out.freeze = Some(left);
        return Err(Error::new(
            crate::error::ErrorKind::Unavailable,
            format!("resume incomplete, run it again: {}", failed.join("; ")),
        )
        .with_operation("slo_response.resume"));
    }
    tell(env, run, &f, "", false).await;
    let plan = format!("lift the freeze at {}", store.describe());
    run.change("freeze:clear", plan.clone(), store.clear(), None)
        .await?;
    out.actions.push(plan);
    Ok(out)
}
