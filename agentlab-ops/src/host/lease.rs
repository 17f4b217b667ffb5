//! A dead-man's switch on a host: before a runbook leaves something that must not stay (a
//! maintenance flag), it arms a watchdog *on the host itself* that puts it back (runs an undo
//! command) when its lease runs out. The runner renews the lease while it works and disarms it
//! when it undid the change itself; if the runner is killed (SIGKILL, its machine dies, the
//! network goes), the renewals stop and the host undoes the change on its own.
//!
//! The lease is a file holding its expiry in the host's own clock (epoch seconds), written by
//! the host (`date +%s`), so clock skew between runner and host does not matter. The watchdog is
//! a detached `sh` loop in its own session: it survives the SSH session that started it.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

/// The watchdog: `$1` the lease file, the rest the undo command. It exits when the lease file
/// is gone (disarmed) and runs the undo once the expiry in it has passed.
const WATCHDOG: &str = r#"lease=$1; shift
while :; do
  exp=$(cat "$lease" 2>/dev/null) || exit 0
  [ -n "$exp" ] || exit 0
  if [ "$(date +%s)" -ge "$exp" ]; then rm -f "$lease"; exec "$@"; fi
  sleep 1
done"#;

/// Write the lease (`$1` file, `$2` seconds from now) and start the watchdog detached. `date +%s`
/// truncates, so the expiry gets one second more: a lease always holds for at least its ttl.
const ARM: &str = r#"lease=$1; ttl=$2; watchdog=$3; shift 3
echo $(( $(date +%s) + ttl + 1 )) > "$lease.new" && mv "$lease.new" "$lease" || exit 1
setsid sh -c "$watchdog" watchdog "$lease" "$@" </dev/null >/dev/null 2>&1 &
echo $!"#;

/// Push the expiry out, only while the lease still exists (never re-arm a fired one).
const RENEW: &str = r#"lease=$1; ttl=$2
[ -f "$lease" ] || { echo "lease $lease is gone (expired or disarmed)" >&2; exit 3; }
echo $(( $(date +%s) + ttl + 1 )) > "$lease.new" && mv "$lease.new" "$lease""#;

/// Something that happened to a lease, for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEvent {
    /// `set` (written before the host is touched), `set_failed`, `renew`, `renew_failed`,
    /// `remove`.
    pub action: &'static str,
    /// Host.
    pub host: String,
    /// The lease file.
    pub path: String,
    /// More (the undo command, an error).
    pub detail: String,
}

/// Where lease events go (the runbook wires it to the journal).
pub type LeaseLog = Arc<dyn Fn(&LeaseEvent) + Send + Sync>;

/// An armed dead-man's switch. Dropping it without [`Lease::disarm`] stops the renewals: the
/// host undoes the change when the lease runs out.
pub struct Lease {
    host: Arc<dyn RemoteHost>,
    path: String,
    renewer: tokio::task::JoinHandle<()>,
    log: Option<LeaseLog>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("host", &self.host.name())
            .field("path", &self.path)
            .finish()
    }
}

fn emit(log: &Option<LeaseLog>, action: &'static str, host: &str, path: &str, detail: String) {
    if let Some(l) = log {
        l(&LeaseEvent {
            action,
            host: host.to_string(),
            path: path.to_string(),
            detail,
        });
    }
}

async fn sh(host: &dyn RemoteHost, script: &str, args: &[String]) -> Result<String> {
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args(args.iter().cloned())
        .timeout(Duration::from_secs(20));
    let out = host.run(&cmd).await?;
    if !out.success() {
        return Err(Error::new(
            ErrorKind::Unexpected,
            format!("lease on {}: {}", host.name(), out.stderr.trim()),
        )
        .with_operation("lease"));
    }
    Ok(out.stdout)
}

impl Lease {
    /// Arm a watchdog on `host` that runs `undo` once `ttl` passes without a renewal; renew
    /// every `ttl / 3` from now on.
    pub async fn arm(
        host: Arc<dyn RemoteHost>,
        path: &str,
        ttl: Duration,
        undo: &[String],
        log: Option<LeaseLog>,
    ) -> Result<Lease> {
        if undo.is_empty() {
            return Err(Error::config("a lease needs an undo command"));
        }
        let secs = ttl.as_secs().max(2);
        let mut args = vec![path.to_string(), secs.to_string(), WATCHDOG.to_string()];
        args.extend(undo.iter().cloned());
        // Journaled before the host is touched (write-ahead): a runner killed while arming
        // still leaves the record of a lease that may exist.
        let detail = format!("ttl {secs}s, undo: {}", undo.join(" "));
        emit(&log, "set", host.name(), path, detail);
        let pid = match sh(host.as_ref(), ARM, &args).await {
            Ok(p) => p,
            Err(e) => {
                emit(&log, "set_failed", host.name(), path, e.to_string());
                return Err(e);
            }
        };
        tracing::debug!(host = host.name(), path, pid = pid.trim(), "lease armed");
        let renewer = tokio::spawn(renew_loop(
            host.clone(),
            path.to_string(),
            secs,
            log.clone(),
        ));
        Ok(Lease {
            host,
            path: path.to_string(),
            renewer,
            log,
        })
    }

    /// The lease file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Stop renewing and remove the lease: the watchdog exits without running the undo.
    pub async fn disarm(self) -> Result<()> {
        self.renewer.abort();
        let cmd = Cmd::new("rm").args(["-f", &self.path]);
        let r = self
            .host
            .run(&cmd)
            .await
            .and_then(|o| o.check(self.host.name(), &cmd));
        let detail = match &r {
            Ok(_) => "disarmed".to_string(),
            Err(e) => format!("could not remove the lease: {e}"),
        };
        emit(&self.log, "remove", self.host.name(), &self.path, detail);
        r.map(|_| ())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew_loop(host: Arc<dyn RemoteHost>, path: String, secs: u64, log: Option<LeaseLog>) {
    let every = Duration::from_secs((secs / 3).max(1));
    loop {
        tokio::time::sleep(every).await;
        let args = [path.clone(), secs.to_string()];
        match sh(host.as_ref(), RENEW, &args).await {
            Ok(_) => emit(&log, "renew", host.name(), &path, format!("+{secs}s")),
            Err(e) => emit(&log, "renew_failed", host.name(), &path, e.to_string()),
        }
    }
}
