//! `agentlab-ops resume RUN_ID | --last | --list`: take over a run that stopped half-way.

use std::sync::Arc;

use agentlab_ops::runbook::resume::{self, ResumeRequest};
use agentlab_ops::{Format, RunOptions};
use clap::Args;

use crate::{Global, fail, print_report, say_note, target};

/// `resume`'s arguments.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to resume (its id, as the report and `--list` show it).
    #[arg(required_unless_present_any = ["last", "list"], conflicts_with_all = ["last", "list"])]
    pub run_id: Option<String>,
    /// The newest unfinished run of the environment.
    #[arg(long)]
    pub last: bool,
    /// List the unfinished runs (newest first) and resume nothing.
    #[arg(long, conflicts_with_all = ["done", "redo"])]
    pub list: bool,
    /// A step in flight when the run stopped that did happen (repeatable).
    #[arg(long = "done", value_name = "STEP")]
    pub done: Vec<String>,
    /// A step in flight when the run stopped to run again (repeatable).
    #[arg(long = "redo", value_name = "STEP")]
    pub redo: Vec<String>,
}

/// Run `resume`.
pub(crate) async fn run(g: &Global, a: &ResumeArgs, run_opts: RunOptions) -> i32 {
    let t = match target(g).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    say_note(&t.note, g.format);
    let env = Arc::new(t.env);
    let code = if a.list {
        list(&env, g.format)
    } else {
        let mut req = match &a.run_id {
            Some(id) => ResumeRequest::run(id),
            None => ResumeRequest::last(),
        };
        req.done = a.done.clone();
        req.redo = a.redo.clone();
        take_over(&env, &req, run_opts, g.format).await
    };
    env.close().await;
    code
}

async fn take_over(
    env: &Arc<agentlab_ops::Environment>,
    req: &ResumeRequest,
    run_opts: RunOptions,
    format: Format,
) -> i32 {
    let rp = match resume::prepare(env, req) {
        Ok(rp) => rp,
        Err(e) => return fail(e),
    };
    eprintln!(
        "resuming {} ({}, attempt {}): {} step(s) done before",
        rp.run_id,
        rp.runbook,
        rp.attempts + 1,
        rp.done_count()
    );
    let r = if resume::is_script(&rp) {
        let opts = agentlab_ops_lua::ScriptOptions {
            signals: true,
            ..Default::default()
        };
        agentlab_ops_lua::resume_script(env.clone(), rp, opts).await
    } else {
        match resume::continue_run(env, rp, run_opts).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        }
    };
    print_report(&r, format)
}

fn list(env: &agentlab_ops::Environment, format: Format) -> i32 {
    let runs = match resume::unfinished(env) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return 0;
    }
    if runs.is_empty() {
        println!("no unfinished run of {}", env.name());
        return 0;
    }
    println!(
        "{:<28} {:<20} {:<20} {:>5} {:>4}  in flight",
        "run", "runbook", "started", "try", "done"
    );
    for u in runs {
        let started = u
            .started_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
            .unwrap_or_default();
        let state = match (u.running, u.failing) {
            (true, _) => " (still running: not resumable)",
            (false, true) => " (failing: undos left)",
            _ => "",
        };
        let in_flight = if u.in_flight.is_empty() {
            "none".to_string()
        } else {
            u.in_flight.join(", ")
        };
        println!(
            "{:<28} {:<20} {:<20} {:>5} {:>4}  {in_flight}{state}",
            u.run_id, u.runbook, started, u.attempts, u.done
        );
    }
    0
}
