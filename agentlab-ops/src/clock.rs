//! Time as a backend: runbooks that wait (deployment monitoring, polling a workflow, analysis
//! between traffic steps) ask a [`Clock`], so tests run a 30-minute watch in microseconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Now, and waiting.
///
/// Contract: `now` never goes backwards; `sleep(d)` returns once `now` has advanced by at least
/// `d` (the virtual clock advances instantly, so tests of 30-minute monitoring run in
/// milliseconds); every wait of a runbook goes through it.
#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Wait this long.
    async fn sleep(&self, d: Duration);
}

/// The wall clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// A virtual clock for tests: `sleep` returns at once after moving time forward, so a
/// runbook's waits are instantaneous and every instant it saw is known. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    sleeps: Arc<Mutex<Vec<Duration>>>,
}

impl ManualClock {
    /// A clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
            sleeps: Arc::default(),
        }
    }
    /// A clock starting at the real current time.
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }
    /// Move time forward.
    pub fn advance(&self, d: Duration) {
        let mut n = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *n += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    }
    /// Every sleep asked, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
    async fn sleep(&self, d: Duration) {
        self.sleeps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(d);
        self.advance(d);
        tokio::task::yield_now().await;
    }
}
