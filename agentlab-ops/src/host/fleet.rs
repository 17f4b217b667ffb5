//! Fleet fan-out: one operation on many hosts, with a concurrency limit and a failure budget
//! (like SSM's MaxConcurrency / MaxErrors). An unreachable host is a result for that host,
//! never a crash; once the budget is spent, hosts not yet started are skipped.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::config::FailureBudget;
use crate::error::{Error, ErrorInfo};
use crate::host::HostEntry;

/// How to fan out.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FleetOptions {
    /// Hosts worked on at once.
    pub concurrency: usize,
    /// Stop starting hosts once more than this many failed (None: never stop).
    pub failure_budget: Option<FailureBudget>,
}

impl FleetOptions {
    /// `concurrency` at once, no failure budget.
    pub fn new(concurrency: usize) -> Self {
        FleetOptions {
            concurrency: concurrency.max(1),
            failure_budget: None,
        }
    }
    /// With a failure budget.
    pub fn failure_budget(mut self, b: FailureBudget) -> Self {
        self.failure_budget = Some(b);
        self
    }
}

/// What happened on one host.
#[derive(Debug)]
pub enum HostOutcome<T> {
    /// The operation finished.
    Done(T),
    /// It failed.
    Failed(Error),
    /// It was not started: the failure budget was spent.
    Skipped,
}

/// One host's result, serialisable for reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// Host.
    pub host: String,
    /// `done`, `failed` or `skipped`.
    pub status: String,
    /// The error, when failed.
    pub error: Option<ErrorInfo>,
}

/// Results in host order.
#[derive(Debug)]
pub struct FleetResult<T> {
    /// `(host name, outcome)` in the order the hosts were given.
    pub hosts: Vec<(String, HostOutcome<T>)>,
    /// Failures allowed.
    pub allowed_failures: Option<usize>,
}

impl<T> FleetResult<T> {
    /// Number of failed hosts.
    pub fn failed(&self) -> usize {
        self.hosts
            .iter()
            .filter(|(_, o)| matches!(o, HostOutcome::Failed(_)))
            .count()
    }
    /// Number of skipped hosts.
    pub fn skipped(&self) -> usize {
        self.hosts
            .iter()
            .filter(|(_, o)| matches!(o, HostOutcome::Skipped))
            .count()
    }
    /// Whether failures exceeded the budget.
    pub fn budget_exceeded(&self) -> bool {
        self.allowed_failures.is_some_and(|a| self.failed() > a)
    }
    /// Serialisable per-host summaries.
    pub fn summaries(&self) -> Vec<HostSummary> {
        self.hosts
            .iter()
            .map(|(h, o)| HostSummary {
                host: h.clone(),
                status: match o {
                    HostOutcome::Done(_) => "done",
                    HostOutcome::Failed(_) => "failed",
                    HostOutcome::Skipped => "skipped",
                }
                .into(),
                error: match o {
                    HostOutcome::Failed(e) => Some(ErrorInfo::from(e)),
                    _ => None,
                },
            })
            .collect()
    }
}

/// Run `op` on every host, at most `opts.concurrency` at once.
pub async fn fan_out<'a, T, F, Fut>(
    hosts: &'a [HostEntry],
    opts: FleetOptions,
    op: F,
) -> FleetResult<T>
where
    F: Fn(&'a HostEntry) -> Fut,
    Fut: Future<Output = Result<T, Error>> + 'a,
{
    let allowed = opts.failure_budget.map(|b| b.allowed(hosts.len()));
    let failures = AtomicUsize::new(0);
    // A fair semaphore rather than a stream combinator: hosts start in order, and the
    // future stays `Send` for callers that spawn it.
    let permits = Semaphore::new(opts.concurrency.max(1));
    let (failures, permits, op) = (&failures, &permits, &op);
    let out = join_all(hosts.iter().map(|h| async move {
        let name = h.config.name.clone();
        let Ok(_permit) = permits.acquire().await else {
            return (name, HostOutcome::Skipped);
        };
        if allowed.is_some_and(|a| failures.load(Ordering::SeqCst) > a) {
            return (name, HostOutcome::Skipped);
        }
        match op(h).await {
            Ok(v) => (name, HostOutcome::Done(v)),
            Err(e) => {
                failures.fetch_add(1, Ordering::SeqCst);
                (name, HostOutcome::Failed(e))
            }
        }
    }))
    .await;
    FleetResult {
        hosts: out,
        allowed_failures: allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostAddress, HostConfig};
    use crate::error::ErrorKind;
    use crate::host::MemoryHost;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn hosts(n: usize) -> Vec<HostEntry> {
        (0..n)
            .map(|i| HostEntry {
                config: HostConfig::new(format!("h{i}"), HostAddress::Local),
                host: Arc::new(MemoryHost::new(format!("h{i}"))),
            })
            .collect()
    }

    #[tokio::test]
    async fn concurrency_is_bounded_and_order_kept() {
        let hs = hosts(8);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let start = Instant::now();
        let r = fan_out(&hs, FleetOptions::new(3), |h| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Error>(h.config.name.clone())
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert!(start.elapsed() >= Duration::from_millis(90));
        let names: Vec<_> = r.hosts.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, (0..8).map(|i| format!("h{i}")).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn failure_budget_skips_the_rest() {
        let hs = hosts(10);
        let r = fan_out(
            &hs,
            FleetOptions::new(1).failure_budget(FailureBudget::Count(1)),
            |h| async move {
                if h.config.name == "h0" || h.config.name == "h1" {
                    Err(Error::new(ErrorKind::Unavailable, "down"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(r.failed(), 2);
        assert_eq!(r.skipped(), 8);
        assert!(r.budget_exceeded());
        assert_eq!(r.summaries()[5].status, "skipped");
        // Without a budget every host runs.
        let r = fan_out(&hs, FleetOptions::new(4), |_| async {
            Err::<(), _>(Error::new(ErrorKind::Unavailable, "x"))
        })
        .await;
        assert_eq!((r.failed(), r.skipped()), (10, 0));
        assert_eq!(FailureBudget::Fraction(0.25).allowed(10), 2);
    }
}
