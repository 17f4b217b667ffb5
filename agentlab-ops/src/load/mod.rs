//! HTTP load generation: closed loop (`-n`/`-c`, like `ab`) or open loop at a target rate with
//! latencies corrected for coordinated omission, statistics in bounded memory, and thresholds
//! that fail a run (like k6's).

pub mod baseline;
mod engine;
mod h1;
mod schedule;
pub mod stats;
mod threshold;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
pub use schedule::{Schedule, Stage};
pub use stats::{EndpointStats, ErrorKind, Second, Stats};
pub use threshold::{Threshold, ThresholdResult, judge};

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Each connection sends its next request when the last one answered; at most `requests`
    /// in all (`ab -n`), none after the duration.
    Closed {
        /// Total requests (`None`: until the duration ends).
        requests: Option<u64>,
    },
    /// Requests start on the schedule (a rate, ramps, steps), each at its intended time,
    /// whatever the server does; the run lasts the schedule's duration.
    Open(Schedule),
}

/// A load test to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Pacing.
    pub mode: Mode,
    /// Connections (`ab -c`).
    pub concurrency: usize,
    /// The longest the run lasts (an open loop: its schedule's duration).
    pub duration: Duration,
    /// Per request (connect included).
    pub timeout: Duration,
    /// HTTP/1.1 keep-alive (`ab -k`); without, one connection per request as `ab` does.
    pub keep_alive: bool,
    /// An open-loop request sent later than this after its intended start counts as late.
    pub late_after: Duration,
    /// HTTP/2 with prior knowledge (h2c): `concurrency` streams over `connections`.
    pub http2: bool,
    /// HTTP/2 connections the streams share (HTTP/1.1: one per worker, this is not used).
    pub connections: usize,
    /// Counts the requests done, for a progress line.
    pub progress: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// OS threads the connections are spread over, each with a single-threaded runtime
    /// (`wrk -t`).
    pub threads: usize,
}

impl LoadPlan {
    /// `concurrency` HTTP/1.1 keep-alive connections, 5 s per request, for `duration`.
    pub fn new(mode: Mode, concurrency: usize, duration: Duration) -> LoadPlan {
        let duration = match &mode {
            Mode::Open(s) => s.duration(),
            Mode::Closed { .. } => duration,
        };
        LoadPlan {
            mode,
            concurrency,
            duration,
            timeout: Duration::from_secs(5),
            keep_alive: true,
            late_after: Duration::from_millis(10),
            http2: false,
            connections: 1,
            progress: None,
            threads: 1,
        }
    }
}

impl LoadPlan {
    fn max_requests(&self) -> u64 {
        match self.mode {
            Mode::Closed { requests } => requests.unwrap_or(u64::MAX),
            Mode::Open(ref s) => s.total(),
        }
    }
    fn seconds(&self) -> usize {
        self.duration.as_secs() as usize + 1
    }
    /// Requests per second intended (open loop), on average.
    pub fn intended_rate(&self) -> Option<f64> {
        match &self.mode {
            Mode::Open(s) => Some(s.mean_rate()),
            Mode::Closed { .. } => None,
        }
    }
    /// Requests planned (closed loop: the count given, if any).
    pub fn planned(&self) -> Option<u64> {
        match &self.mode {
            Mode::Open(s) => Some(s.total()),
            Mode::Closed { requests } => *requests,
        }
    }
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th.
    pub p90: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Of a histogram in µs.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        let ms = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// A load test's summary: what reports and thresholds read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    /// The URL (its query and user info removed).
    pub url: String,
    /// Requests made.
    pub requests: u64,
    /// Of them, 5xx or no answer.
    pub failed: u64,
    /// `failed / requests`.
    pub error_rate: f64,
    /// Responses by status class.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// Requests without an answer, by kind.
    pub errors: std::collections::BTreeMap<ErrorKind, u64>,
    /// Requests per second achieved.
    pub achieved_rate: f64,
    /// Requests per second intended (open loop).
    pub intended_rate: Option<f64>,
    /// Requests sent late (the generator fell behind).
    pub late: u64,
    /// Latency from the intended start (open loop; the same as `raw` closed loop).
    pub latency_ms: Percentiles,
    /// Latency from the send (what a closed-loop tool reports).
    pub raw_latency_ms: Percentiles,
    /// Seconds the run took.
    pub seconds: f64,
    /// Stopped before its end.
    pub cancelled: bool,
    /// One line per second.
    pub timeline: Vec<Second>,
    /// The latency histograms, compressed: what a later run is compared with.
    #[serde(default)]
    pub histograms: Histograms,
    /// Latency (corrected) of the responses of each status class (`2xx`, `5xx`...).
    #[serde(default)]
    pub latency_by_status: std::collections::BTreeMap<String, Percentiles>,
    /// Each endpoint's own figures (one entry for a run of one URL).
    #[serde(default)]
    pub endpoints: Vec<EndpointSummary>,
}

/// One endpoint of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSummary {
    /// Its URL (query and user info removed).
    pub url: String,
    /// Requests made to it.
    pub requests: u64,
    /// Of them, 5xx or no answer.
    pub failed: u64,
    /// `failed / requests`.
    pub error_rate: f64,
    /// Responses by status class.
    pub statuses: std::collections::BTreeMap<String, u64>,
    /// Requests without an answer, by kind.
    pub errors: std::collections::BTreeMap<ErrorKind, u64>,
    /// Latency of its answered requests (corrected, as the run's `latency_ms`).
    pub latency_ms: Percentiles,
}

impl EndpointSummary {
    fn of(
        url: &str,
        h: &hdrhistogram::Histogram<u64>,
        classes: &[u64; 6],
        errors: &Errors,
    ) -> Self {
        let errs: u64 = errors.values().sum();
        let requests = classes.iter().sum::<u64>() + errs;
        let failed = classes[5] + errs;
        EndpointSummary {
            url: crate::secret::redact_url(url),
            requests,
            failed,
            error_rate: ratio(failed, requests),
            statuses: stats::statuses(classes),
            errors: errors.clone(),
            latency_ms: Percentiles::of(h),
        }
    }
}

type Errors = std::collections::BTreeMap<ErrorKind, u64>;

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// A run's histograms as compressed HDR, base64 ([`baseline::encode`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Latency from the intended start (closed loop: from the send), µs.
    pub corrected: String,
    /// Latency from the send, µs.
    pub raw: String,
}

/// Run `plan` against `url` (http only; the engine speaks HTTP/1.1 or h2c on plain TCP).
pub async fn run(plan: LoadPlan, url: &str, cancel: CancellationToken) -> Result<LoadSummary> {
    run_endpoints(plan, &[url.to_string()], cancel).await
}

/// The URLs of a run: http, one origin (the connections are shared), at most 256.
fn endpoints(urls: &[String]) -> Result<Vec<reqwest::Url>> {
    if urls.is_empty() || urls.len() > 256 {
        let m = format!("endpoints: {}: 1 to 256 URLs", urls.len());
        return Err(Error::config(m));
    }
    let origin = |u: &reqwest::Url| (u.host_str().map(str::to_string), u.port_or_known_default());
    let mut parsed: Vec<reqwest::Url> = Vec::with_capacity(urls.len());
    for url in urls {
        let shown = crate::secret::redact_url(url);
        let u =
            reqwest::Url::parse(url).map_err(|e| Error::config(format!("url: {shown:?}: {e}")))?;
        if u.scheme() != "http" {
            return Err(Error::config(format!(
                "url: {shown:?}: only http:// targets (put the load generator beside the TLS terminator)"
            )));
        }
        if let Some(first) = parsed.first()
            && origin(first) != origin(&u)
        {
            let m = format!(
                "url: {shown:?}: not on the first endpoint's host and port ({}): one run loads one origin",
                crate::secret::redact_url(first.as_str())
            );
            return Err(Error::config(m));
        }
        parsed.push(u);
    }
    Ok(parsed)
}

/// Run `plan` over several endpoints of one origin, request `i` to `urls[i % len]`, each
/// endpoint with its own figures in [`LoadSummary::endpoints`].
pub async fn run_endpoints(
    plan: LoadPlan,
    urls: &[String],
    cancel: CancellationToken,
) -> Result<LoadSummary> {
    let parsed = endpoints(urls)?;
    if plan.concurrency == 0 {
        return Err(Error::config("concurrency: at least 1"));
    }
    if plan.http2 && !plan.keep_alive {
        return Err(Error::config(
            "http2: its connections are kept alive (keep_alive = true)",
        ));
    }
    if let Mode::Open(s) = &plan.mode
        && s.duration() != plan.duration
    {
        let m = "duration: an open loop lasts its schedule's duration";
        return Err(Error::config(m));
    }
    let intended_rate = plan.intended_rate();
    let s = engine::run(plan, &parsed, cancel).await;
    Ok(summarise(&s, urls, intended_rate))
}

fn summarise(s: &Stats, urls: &[String], intended_rate: Option<f64>) -> LoadSummary {
    let url = &urls[0];
    let requests = s.total();
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let raw = Percentiles::of(&s.raw);
    let corrected = Percentiles::of(&s.corrected);
    // Closed loop: no intended starts, the raw latency is the one reported.
    let corrected_h = if intended_rate.is_some() {
        &s.corrected
    } else {
        &s.raw
    };
    let endpoints = if s.endpoints.is_empty() {
        vec![EndpointSummary::of(url, corrected_h, &s.classes, &s.errors)]
    } else {
        urls.iter()
            .zip(&s.endpoints)
            .map(|(u, e)| EndpointSummary::of(u, &e.latency, &e.classes, &e.errors))
            .collect()
    };
    let latency_by_status = (0..6)
        .filter_map(|i| {
            Some((
                stats::class_name(i),
                Percentiles::of(s.by_class[i].as_deref()?),
            ))
        })
        .collect();
    LoadSummary {
        url: crate::secret::redact_url(url),
        requests,
        failed: s.failed(),
        error_rate: ratio(s.failed(), requests),
        statuses: s.statuses(),
        errors: s.errors.clone(),
        achieved_rate: requests as f64 / secs,
        intended_rate,
        late: s.late,
        latency_ms: if intended_rate.is_some() {
            corrected
        } else {
            raw
        },
        raw_latency_ms: raw,
        seconds: secs,
        cancelled: s.cancelled,
        timeline: s.timeline.clone(),
        histograms: Histograms {
            corrected: baseline::encode(corrected_h),
            raw: baseline::encode(&s.raw),
        },
        latency_by_status,
        endpoints,
    }
}
