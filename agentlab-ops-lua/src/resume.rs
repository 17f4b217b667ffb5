//! Resuming a script's run: the run log keeps the script's path, arguments and a hash of its
//! text; [`resume_script`] runs the script again under the same run id, and its `ops.step`
//! changes replay as a catalogue runbook's steps do (done: their value comes back from the
//! log; in flight: repeated only when the operator says so with `--redo`, or skipped with
//! `--done`). The runbooks the script calls are runs of their own, resumed on their own.

use std::path::PathBuf;
use std::sync::Arc;

use agentlab_ops::runbook::run::Replay;
use agentlab_ops::{Environment, Error, ErrorKind, Report, Severity};

use crate::ScriptOptions;

/// What the run log keeps of a script's run.
pub(crate) fn invocation(chunk: &str, source: &str, opts: &ScriptOptions) -> serde_json::Value {
    // The script's absolute path: a resume may start from another directory.
    let script = std::fs::canonicalize(chunk)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| chunk.to_string());
    serde_json::json!({
        "script": script,
        "sha256": agentlab_ops::backup::manifest::sha256_hex(source.as_bytes()),
        "args": opts.args,
        "allow_unsafe": opts.allow_unsafe,
        "timeout_ms": opts.timeout.map(|t| t.as_millis() as u64),
    })
}

/// Resume the script run `rp` (read by `agentlab_ops::runbook::resume::prepare`): the script
/// file it ran, with its arguments. A script changed since is run as it is now, with a
/// warning in the report (its steps may no longer line up with the log).
pub async fn resume_script(env: Arc<Environment>, rp: Replay, mut opts: ScriptOptions) -> Report {
    let inv = rp.options.clone().unwrap_or_default();
    let path = inv["script"].as_str().map(PathBuf::from);
    let Some(path) = path.filter(|p| p.is_file()) else {
        let msg = format!(
            "run {}: the script {} it ran is not a file here: it cannot be resumed",
            rp.run_id, inv["script"]
        );
        let e = Error::new(ErrorKind::NotFound, msg).with_operation("resume");
        return fail(&env, &rp.runbook, e).await;
    };
    opts.args = inv["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    opts.allow_unsafe = inv["allow_unsafe"].as_bool().unwrap_or(false);
    if opts.timeout.is_none() {
        opts.timeout = inv["timeout_ms"]
            .as_u64()
            .map(std::time::Duration::from_millis);
    }
    let was = inv["sha256"].as_str().unwrap_or_default().to_string();
    opts.dry_run = false;
    opts.resume = Some(Arc::new(rp));
    let mut r = crate::run_script(env, &path, &opts).await;
    let now = std::fs::read(&path)
        .map(|b| agentlab_ops::backup::manifest::sha256_hex(&b))
        .unwrap_or_default();
    if now != was {
        r.findings.push(agentlab_ops::report::Finding {
            severity: Severity::Warning,
            subject: "script".into(),
            message: format!(
                "{} changed since the run started: its steps may not line up with the run log",
                path.display()
            ),
        });
    }
    r
}

async fn fail(env: &Environment, name: &str, e: Error) -> Report {
    let o = agentlab_ops::RunOptions::default().without_journal();
    env.execute(name, &o, |_| async move { Err(e) }).await
}
