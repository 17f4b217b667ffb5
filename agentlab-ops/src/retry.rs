//! Retry and timeout in one place: every backend calls [`retry`] instead of looping itself.
//!
//! Only temporary errors ([`Error::is_temporary`]) are retried, with exponential backoff and
//! full jitter (the `backon` crate). The per-attempt timeout sits inside the retry, so a hang
//! counts as one failed attempt; the caller's overall deadline sits outside.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::error::{Error, ErrorKind, Result};

/// How to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (1 = no retry).
    pub attempts: u32,
    /// Timeout of each attempt.
    pub attempt_timeout: Duration,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Largest backoff delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            attempt_timeout: Duration::from_secs(5),
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy with `attempts` attempts of at most `timeout` each.
    pub fn new(attempts: u32, timeout: Duration) -> Self {
        RetryPolicy {
            attempts: attempts.max(1),
            attempt_timeout: timeout,
            ..RetryPolicy::default()
        }
    }
}

/// Run `op` under `policy`. The final error carries the number of attempts made.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, operation: &'static str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let timeout = policy.attempt_timeout;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fut = op();
        async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within {}",
                        crate::units::format_duration(timeout)
                    ),
                )),
            }
        }
    })
    .retry(backoff)
    .when(|e: &Error| e.is_temporary())
    .notify(|e: &Error, d: Duration| {
        tracing::debug!(operation, error = %crate::secret::redact(&e.to_string()), delay_ms = d.as_millis() as u64, "retrying");
    })
    .await;
    let n = attempts.load(std::sync::atomic::Ordering::Relaxed);
    result.map_err(|e| {
        let e = e.with_operation(operation);
        if n > 1 {
            e.with_context("attempts", n.to_string())
        } else {
            e
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            attempt_timeout: Duration::from_millis(100),
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    #[tokio::test]
    async fn retries_temporary_then_succeeds() {
        let calls = AtomicU32::new(0);
        let r = retry(&fast(3), "t", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(Error::new(ErrorKind::Unavailable, "down"))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(r, 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let e = retry(&fast(5), "t", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Error::new(ErrorKind::NotFound, "gone")) }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.operation(), "t");
    }

    #[tokio::test]
    async fn hangs_time_out_per_attempt() {
        let calls = AtomicU32::new(0);
        let e = retry(&fast(2), "t", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            }
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(e.to_string().contains("attempts=2"), "{e}");
    }
}
