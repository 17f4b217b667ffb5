//! Telling people: a message to the environment's notifier as a change step of its own. A
//! message that does not go out is a warning in the report, never the end of the runbook.

use crate::environment::Environment;
use crate::report::{Action, Severity};
use crate::runbook::run::Run;

/// Post `text` as the change step `step` (skipped without `[notify]`); returns whether it
/// went out. A failure is a warning: `what` names it (`the emergency notice`).
pub(crate) async fn post(env: &Environment, run: &Run, step: &str, text: &str, what: &str) -> bool {
    let Some(n) = env.notifier() else {
        run.skip(step, Action::Change, "no [notify] configured");
        return false;
    };
    let plan = format!("post to {}: {text}", n.describe());
    match run
        .change(step, plan, async { n.notify(text).await }, None)
        .await
    {
        Ok(sent) => sent.is_some(),
        Err(e) => {
            run.finding(Severity::Warning, step, format!("{what} was not sent: {e}"));
            false
        }
    }
}
