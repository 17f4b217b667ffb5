//! The maintenance flag of one host, guarded by a dead-man's switch: the lease is armed on the
//! host *before* the flag is set, renewed while the runner works, and disarmed when the runner
//! removes the flag itself. Every set, renewal and removal goes to the journal.

use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::host::Cmd;
use crate::host::lease::Lease;
use crate::runbook::run::{Change, Undo};

use super::Ctx;

/// Arm the lease, then set the flag. The flag's undo (always run: it removes the flag and
/// disarms the lease) is registered before the flag is written; its name is returned to settle
/// it when the host is done. None in a dry-run.
pub(super) async fn set(c: &Ctx<'_>) -> std::result::Result<Option<String>, (String, Error)> {
    let flag = c.c.flag.clone();
    let lease_path = format!("{flag}.lease");
    let undo_name = format!("{}:unflag", c.name());
    let ttl = c.c.lease.0;
    let plan = format!(
        "arm a {}s lease on {} (the host runs `rm -f {flag}` if the runner stops renewing it), then touch {flag}",
        ttl.as_secs(),
        c.name()
    );
    if c.run.is_dry_run() {
        let _ = c.change::<(), _>("flag", plan, async { Ok(()) }).await;
        return Ok(None);
    }
    let undo_argv = vec!["rm".to_string(), "-f".to_string(), flag.clone()];
    // A resumed run that already took this flag down arms no new lease for it.
    let lease = match c.run.undone_in_log(&undo_name) {
        true => None,
        false => Some(
            Lease::arm(
                c.h.host.clone(),
                &lease_path,
                ttl,
                &undo_argv,
                crate::runbook::lease_journal(c.env, c.run),
            )
            .await
            .map_err(|e| ("flag".to_string(), e))?,
        ),
    };
    let slot = Arc::new(Mutex::new(lease));
    let (host, f2) = (c.h.host.clone(), flag.clone());
    let undo = Undo::always(undo_name.clone(), move || async move {
        let cmd = Cmd::new("rm").args(["-f", &f2]);
        host.run(&cmd).await?.check(host.name(), &cmd)?;
        let lease = slot.lock().ok().and_then(|mut l| l.take());
        if let Some(l) = lease {
            l.disarm().await?;
        }
        Ok(())
    });
    let h = c.h;
    let touch = async {
        let cmd = Cmd::new("touch").arg(&flag);
        h.host.run(&cmd).await?.check(&h.config.name, &cmd)?;
        Ok(())
    };
    // Set again by a resume (its lease may have removed it while the runner was dead) unless
    // this host's flag was already taken down.
    let change = Change::new(format!("{}:flag", c.name()), plan)
        .undo(Some(undo))
        .redo_on_resume();
    c.run
        .apply(change, touch)
        .await
        .map_err(|e| ("flag".to_string(), e))?;
    Ok(Some(undo_name))
}
