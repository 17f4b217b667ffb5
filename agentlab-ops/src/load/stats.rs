//! Load-test statistics in bounded memory: HDR histograms with fixed bounds (1 µs to one hour,
//! 3 significant digits: ~200 KiB each, whatever the run's length), corrected (from the
//! intended start) and raw (from the send), counts by status class and error kind, a latency
//! histogram per status class and per endpoint (made when first needed), and one line per
//! second for the timeline.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Why a request got no status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The connection could not be made (refused, unreachable).
    Connect,
    /// No answer within the timeout.
    Timeout,
    /// The server closed or reset the connection mid-request.
    Reset,
    /// Anything else (a malformed answer).
    Other,
}

const HIGHEST_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds that are valid constants: construction cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| unreachable!())
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Second {
    /// Requests answered with a status below 500.
    pub ok: u64,
    /// Requests answered 5xx, or with no answer.
    pub failed: u64,
    /// The slowest corrected latency, µs.
    pub max_us: u64,
}

/// What one endpoint of a run with several got.
#[derive(Debug, Clone)]
pub struct EndpointStats {
    /// Latency of its answered requests (corrected, as [`Stats::corrected`]), µs.
    pub latency: Histogram<u64>,
    /// Its responses by status class (as [`Stats::classes`]).
    pub classes: [u64; 6],
    /// Its requests without a response, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl EndpointStats {
    fn new() -> EndpointStats {
        EndpointStats {
            latency: histogram(),
            classes: [0; 6],
            errors: BTreeMap::new(),
        }
    }
    fn merge(&mut self, o: &EndpointStats) {
        let _ = self.latency.add(&o.latency);
        merge_counts(&mut self.classes, &mut self.errors, &o.classes, &o.errors);
    }
}

fn merge_counts(
    classes: &mut [u64; 6],
    errors: &mut BTreeMap<ErrorKind, u64>,
    oc: &[u64; 6],
    oe: &BTreeMap<ErrorKind, u64>,
) {
    for (a, b) in classes.iter_mut().zip(oc) {
        *a += b;
    }
    for (k, v) in oe {
        *errors.entry(*k).or_default() += v;
    }
}

/// The index of a status's class: 1 for `1xx` ... 5 for `5xx`, 0 anything else.
fn class(status: u16) -> usize {
    let c = usize::from(status / 100);
    if (1..6).contains(&c) { c } else { 0 }
}

/// The name of a class index (`2xx`; `other`).
pub fn class_name(i: usize) -> String {
    if i == 0 {
        "other".to_string()
    } else {
        format!("{i}xx")
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency from the intended start (open loop) or the send (closed loop), µs.
    pub corrected: Histogram<u64>,
    /// Latency from the send, µs.
    pub raw: Histogram<u64>,
    /// Responses by status class: index 1 is `1xx` ... 5 is `5xx`, 0 anything else.
    pub classes: [u64; 6],
    /// Requests without a response, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Corrected latency per status class (indexed as `classes`), made at its first response.
    pub by_class: [Option<Box<Histogram<u64>>>; 6],
    /// Per endpoint, when a run has more than one (one: the totals are its statistics).
    pub endpoints: Vec<EndpointStats>,
    /// Requests sent later than planned (the generator could not keep the rate).
    pub late: u64,
    /// One entry per second.
    pub timeline: Vec<Second>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Stopped early (Ctrl-C, the deadline of the runbook).
    pub cancelled: bool,
}

impl Stats {
    /// Empty, with room for `seconds` of timeline (more grows it, bounded by the run).
    pub fn new(seconds: usize) -> Stats {
        Stats::with_endpoints(seconds, 1)
    }

    /// Empty, for a run over `endpoints` endpoints.
    pub fn with_endpoints(seconds: usize, endpoints: usize) -> Stats {
        let per = if endpoints > 1 { endpoints } else { 0 };
        Stats {
            corrected: histogram(),
            raw: histogram(),
            classes: [0; 6],
            errors: BTreeMap::new(),
            by_class: Default::default(),
            endpoints: (0..per).map(|_| EndpointStats::new()).collect(),
            late: 0,
            timeline: vec![Second::default(); seconds.min(86_400)],
            elapsed: Duration::ZERO,
            cancelled: false,
        }
    }

    /// One request to `endpoint` (an index into the run's endpoints): its status or error,
    /// at `second`, with both latencies.
    pub fn record(
        &mut self,
        second: u64,
        endpoint: usize,
        result: Result<u16, ErrorKind>,
        corrected: Duration,
        raw: Duration,
    ) {
        let us = |d: Duration| (d.as_micros() as u64).clamp(1, HIGHEST_US);
        let per = self.endpoints.get_mut(endpoint);
        let failed = match result {
            Ok(status) => {
                // No allocation per request: the class is an index, its histogram made once.
                let c = class(status);
                self.classes[c] += 1;
                self.corrected.saturating_record(us(corrected));
                self.raw.saturating_record(us(raw));
                let h = self.by_class[c].get_or_insert_with(|| Box::new(histogram()));
                h.saturating_record(us(corrected));
                if let Some(e) = per {
                    e.classes[c] += 1;
                    e.latency.saturating_record(us(corrected));
                }
                status >= 500
            }
            Err(k) => {
                *self.errors.entry(k).or_default() += 1;
                if let Some(e) = per {
                    *e.errors.entry(k).or_default() += 1;
                }
                true
            }
        };
        let s = second as usize;
        if s < 86_400 {
            if self.timeline.len() <= s {
                self.timeline.resize(s + 1, Second::default());
            }
            let t = &mut self.timeline[s];
            if failed {
                t.failed += 1;
            } else {
                t.ok += 1;
            }
            t.max_us = t.max_us.max(us(corrected));
        }
    }

    /// Add another worker's statistics.
    pub fn merge(&mut self, o: &Stats) {
        let _ = self.corrected.add(&o.corrected);
        let _ = self.raw.add(&o.raw);
        merge_counts(&mut self.classes, &mut self.errors, &o.classes, &o.errors);
        for (a, b) in self.by_class.iter_mut().zip(&o.by_class) {
            match (a.as_mut(), b) {
                (Some(a), Some(b)) => {
                    let _ = a.add(&**b);
                }
                (None, Some(b)) => *a = Some(b.clone()),
                _ => {}
            }
        }
        if self.endpoints.len() < o.endpoints.len() {
            self.endpoints
                .resize_with(o.endpoints.len(), EndpointStats::new);
        }
        for (a, b) in self.endpoints.iter_mut().zip(&o.endpoints) {
            a.merge(b);
        }
        self.late += o.late;
        if self.timeline.len() < o.timeline.len() {
            self.timeline.resize(o.timeline.len(), Second::default());
        }
        for (a, b) in self.timeline.iter_mut().zip(&o.timeline) {
            a.ok += b.ok;
            a.failed += b.failed;
            a.max_us = a.max_us.max(b.max_us);
        }
    }

    /// Responses by status class (`2xx`...; `other` for a status outside 100–599).
    pub fn statuses(&self) -> BTreeMap<String, u64> {
        statuses(&self.classes)
    }
    /// Requests that got a response.
    pub fn answered(&self) -> u64 {
        self.classes.iter().sum()
    }
    /// Requests with 5xx or no response.
    pub fn failed(&self) -> u64 {
        self.classes[5] + self.errors.values().sum::<u64>()
    }
    /// Every request made.
    pub fn total(&self) -> u64 {
        self.answered() + self.errors.values().sum::<u64>()
    }
}

/// Counts by class name, the classes seen only.
pub fn statuses(classes: &[u64; 6]) -> BTreeMap<String, u64> {
    (0..6)
        .filter(|&i| classes[i] > 0)
        .map(|i| (class_name(i), classes[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_histograms_merge_and_errors_count_by_kind() {
        let mut a = Stats::new(2);
        let ms = Duration::from_millis;
        for i in 0..100 {
            a.record(i % 2, 0, Ok(200), ms(10), ms(5));
        }
        a.record(0, 0, Ok(503), ms(20), ms(20));
        let mut b = Stats::new(3);
        b.record(2, 0, Err(ErrorKind::Timeout), ms(1000), ms(1000));
        b.record(2, 0, Ok(200), Duration::from_secs(7200), ms(1));
        a.merge(&b);
        assert_eq!((a.total(), a.failed(), a.answered()), (103, 2, 102));
        assert_eq!(a.errors[&ErrorKind::Timeout], 1);
        assert_eq!(a.timeline.len(), 3);
        assert_eq!(
            a.timeline[2],
            Second {
                ok: 1,
                failed: 1,
                max_us: HIGHEST_US
            }
        );
        let p50 = a.corrected.value_at_quantile(0.5);
        assert!((9_990..=10_010).contains(&p50), "{p50}");
        assert_eq!(
            a.corrected.max(),
            a.corrected.highest_equivalent(HIGHEST_US)
        );
    }

    #[test]
    fn latency_per_status_class_and_per_endpoint() {
        let ms = Duration::from_millis;
        let mut a = Stats::with_endpoints(1, 2);
        for _ in 0..10 {
            a.record(0, 0, Ok(200), ms(10), ms(10));
            a.record(0, 1, Ok(503), ms(100), ms(100));
        }
        let mut b = Stats::with_endpoints(1, 2);
        b.record(0, 1, Err(ErrorKind::Reset), ms(5), ms(5));
        b.record(0, 1, Ok(999), ms(1), ms(1));
        a.merge(&b);
        let p = |h: &Histogram<u64>| h.value_at_quantile(0.5) / 1000;
        assert_eq!(p(a.by_class[2].as_deref().unwrap()), 10);
        assert_eq!(p(a.by_class[5].as_deref().unwrap()), 100);
        assert_eq!(a.by_class[0].as_deref().map(|h| h.len()), Some(1));
        assert!(a.by_class[4].is_none(), "no 4xx: no histogram made");
        let (e0, e1) = (&a.endpoints[0], &a.endpoints[1]);
        assert_eq!(
            (e0.latency.len(), p(&e0.latency), e0.classes[2]),
            (10, 10, 10)
        );
        assert_eq!(
            (e1.classes[5], e1.classes[0], e1.errors[&ErrorKind::Reset]),
            (10, 1, 1)
        );
        assert!(e0.errors.is_empty());
        assert!(
            Stats::new(1).endpoints.is_empty(),
            "one endpoint: the totals"
        );
    }
}
