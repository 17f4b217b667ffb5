//! Fault injection shared by the in-memory doubles: tell a double to fail or to be slow.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Default)]
struct FaultState {
    next: VecDeque<(ErrorKind, String, bool)>,
    always: Option<(ErrorKind, String, bool)>,
    delay: Duration,
}

/// Failures and delays to inject into a memory double. Clones share state.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

impl Faults {
    fn st(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// The next call fails with this error (calls queue up: call it twice to fail twice).
    pub fn fail_next(&self, kind: ErrorKind, message: impl Into<String>) {
        self.st()
            .next
            .push_back((kind, message.into(), kind.default_temporary()));
    }
    /// Every call fails with this error until [`Faults::clear`].
    pub fn fail_always(&self, kind: ErrorKind, message: impl Into<String>) {
        self.st().always = Some((kind, message.into(), kind.default_temporary()));
    }
    /// Every call waits this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.st().delay = delay;
    }
    /// Remove all injected failures and delays.
    pub fn clear(&self) {
        *self.st() = FaultState::default();
    }
    /// Apply to one call of `operation`: wait, then maybe fail.
    pub async fn apply(&self, operation: &'static str) -> Result<()> {
        let (delay, fail) = {
            let mut st = self.st();
            let fail = st.next.pop_front().or_else(|| st.always.clone());
            (st.delay, fail)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fail {
            Some((kind, msg, temp)) => Err(Error::new(kind, msg)
                .set_temporary(temp)
                .with_operation(operation)),
            None => Ok(()),
        }
    }
}

/// A log of calls made to a double.
#[derive(Debug, Clone)]
pub struct CallLog<T> {
    inner: Arc<Mutex<Vec<T>>>,
}

impl<T> Default for CallLog<T> {
    fn default() -> Self {
        CallLog {
            inner: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Clone> CallLog<T> {
    /// Record a call.
    pub fn push(&self, call: T) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }
    /// All calls so far.
    pub fn all(&self) -> Vec<T> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Number of calls.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    /// Whether no call was made.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
