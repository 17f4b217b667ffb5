//! What stops a run from outside: a cancellation token, and the process's stop signals.
//!
//! With [`super::RunOptions::signals`] a run owns SIGINT (Ctrl-C), SIGTERM (what `timeout`,
//! systemd, Kubernetes and cron send) and SIGHUP (a closed terminal): the first one stops the
//! body and runs the undo steps; a second one while undos run says on stderr which undos are
//! left and lets them finish; a third abandons them, and the report names each one left undone.

/// A cancellation token shared between a caller and a run (`tokio-util`'s): cancelling it stops
/// the run at once and runs its undos.
pub use tokio_util::sync::CancellationToken as CancelToken;

/// The stop signals of the process, registered for the whole life of this value.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Take over SIGINT, SIGTERM and SIGHUP (None when they cannot be registered).
    pub fn new() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Some(StopSignals {
                int: signal(SignalKind::interrupt()).ok()?,
                term: signal(SignalKind::terminate()).ok()?,
                hup: signal(SignalKind::hangup()).ok()?,
            })
        }
        #[cfg(not(unix))]
        {
            Some(StopSignals {})
        }
    }

    /// The next stop signal, by name.
    pub async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
                _ = self.hup.recv() => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                futures::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Why a run was stopped from outside, for its error message.
pub(crate) async fn stopped(
    cancel: Option<&CancelToken>,
    signals: Option<&mut tokio::sync::mpsc::UnboundedReceiver<&'static str>>,
) -> String {
    let token = async {
        match cancel {
            Some(t) => t.cancelled().await,
            None => futures::future::pending().await,
        }
    };
    let signal = async {
        match signals {
            Some(s) => match s.recv().await {
                Some(name) => name,
                None => futures::future::pending().await,
            },
            None => futures::future::pending().await,
        }
    };
    // `biased`: a signal also cancels the token; name the signal, not "cancelled".
    tokio::select! {
        biased;
        name = signal => format!("interrupted ({name})"),
        _ = token => "cancelled".to_string(),
    }
}
