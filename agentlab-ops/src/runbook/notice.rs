//! Telling people: a message to the environment's notifier as a change step of its own. A
//! message that does not go out is a warning in the report, never the end of the runbook.

use crate::environment::Environment;
use crate::report::{Action, Severity};
use crate::runbook::run::{Change, Run};

/// Post `text` as the change step `step` (skipped without `[notify]`); returns whether it
/// went out. A failure is a warning: `what` names it (`the emergency notice`).
pub(crate) async fn post(env: &Environment, run: &Run, step: &str, text: &str, what: &str) -> bool {
    let Some(n) = env.notifier() else {
        run.skip(step, Action::Change, "no [notify] configured");
        return false;
    };
    let plan = format!("post to {}: {text}", n.describe());
    // Safe to repeat when a resume finds it in flight: a notice read twice is harmless, one
    // never sent is not.
    let change = Change::new(step, plan).idempotent();
    match run.apply(change, async { n.notify(text).await }).await {
        Ok(sent) => sent.is_some(),
        Err(e) => {
            run.finding(Severity::Warning, step, format!("{what} was not sent: {e}"));
            false
        }
    }
}
