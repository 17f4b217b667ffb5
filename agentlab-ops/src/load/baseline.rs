//! Comparing a load test with a baseline run: both runs' histograms are kept in their reports
//! (so in the journal) as compressed HDR (V2 + deflate, base64), and a candidate is judged
//! against the baseline metric by metric — p50 and p99 of the latency, the error rate — with
//! a confidence interval on each side and a noise band, as `pass` (no material regression is
//! possible within the intervals), `regressed` (worse beyond the band, and the intervals do not
//! overlap) or `inconclusive` (too few requests, or intervals too wide to tell).

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// 95% two-sided.
const Z: f64 = 1.96;
/// The fewest requests beyond a percentile for its interval to mean anything.
const MIN_TAIL: f64 = 10.0;

/// A histogram as compressed HDR, base64 (a few KiB).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail for a histogram the engine built.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The histogram of [`encode`]; the reason when `s` is not one.
pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not a compressed HDR histogram: {e:?}"))
}

/// How different two runs may be before it matters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    /// Relative band: a latency or error rate this much worse is material (0.1: 10%).
    pub relative: f64,
    /// Latencies closer than this, ms, are the same (loopback jitter).
    pub latency_floor_ms: f64,
    /// Error rates closer than this (0.005: half a percentage point) are the same.
    pub error_rate_floor: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Noise {
            relative: 0.10,
            latency_floor_ms: 1.0,
            error_rate_floor: 0.005,
        }
    }
}

/// The verdict of a comparison, or of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No material regression is possible within the intervals.
    Pass,
    /// The intervals cannot tell.
    Inconclusive,
    /// Worse beyond the band, and the intervals do not overlap.
    Regressed,
}

impl Verdict {
    /// `pass`, `inconclusive`, `regressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Regressed => "regressed",
        }
    }
}

/// One metric compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// `p50`, `p99`, `error_rate`.
    pub metric: String,
    /// The baseline's value (ms, or a fraction).
    pub baseline: f64,
    /// The candidate's.
    pub candidate: f64,
    /// 95% interval of the baseline's value.
    pub baseline_interval: (f64, f64),
    /// 95% interval of the candidate's.
    pub candidate_interval: (f64, f64),
    /// `candidate - baseline`.
    pub delta: f64,
    /// The smallest worsening that counts.
    pub band: f64,
    /// This metric's verdict.
    pub verdict: Verdict,
    /// Why, in a few words.
    pub why: String,
}

/// What a comparison needs of one run.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    /// Latency (corrected), µs.
    pub latency: &'a Histogram<u64>,
    /// Requests made.
    pub requests: u64,
    /// Of them failed.
    pub failed: u64,
}

/// A candidate against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's run id.
    pub baseline_run: String,
    /// The worst of the metrics' verdicts.
    pub verdict: Verdict,
    /// Each metric.
    pub metrics: Vec<MetricComparison>,
}

/// Compare `candidate` with `base` (the run `baseline_run`).
pub fn compare(baseline_run: &str, base: &Sample, cand: &Sample, noise: Noise) -> Comparison {
    let mut metrics: Vec<MetricComparison> = [("p50", 0.5), ("p99", 0.99)]
        .into_iter()
        .map(|(name, q)| quantile(name, q, base.latency, cand.latency, noise))
        .collect();
    metrics.push(error_rate(base, cand, noise));
    Comparison {
        baseline_run: baseline_run.to_string(),
        verdict: metrics
            .iter()
            .map(|m| m.verdict)
            .max()
            .unwrap_or(Verdict::Inconclusive),
        metrics,
    }
}

/// The q-quantile's 95% interval from the order statistics (distribution-free): the values at
/// ranks `n·q ± z·√(n·q·(1-q))`.
fn quantile_interval(h: &Histogram<u64>, q: f64) -> (f64, f64) {
    let n = h.len() as f64;
    let half = Z * (q * (1.0 - q) / n.max(1.0)).sqrt();
    let at = |q: f64| h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1000.0;
    (at(q - half), at(q + half))
}

fn quantile(
    name: &str,
    q: f64,
    base: &Histogram<u64>,
    cand: &Histogram<u64>,
    noise: Noise,
) -> MetricComparison {
    let ms = |h: &Histogram<u64>| h.value_at_quantile(q) as f64 / 1000.0;
    let (b, c) = (ms(base), ms(cand));
    let band = (b * noise.relative).max(noise.latency_floor_ms);
    let (bi, ci) = (quantile_interval(base, q), quantile_interval(cand, q));
    let tail = |h: &Histogram<u64>| h.len() as f64 * (1.0 - q);
    let too_few = (tail(base) < MIN_TAIL || tail(cand) < MIN_TAIL).then(|| {
        let need = (MIN_TAIL / (1.0 - q)).ceil();
        format!("{name} needs at least {need} answered requests in each run")
    });
    metric(name, (b, c), (bi, ci), band, too_few)
}

/// A metric's comparison: `inconclusive` for the reason given, else judged.
fn metric(
    name: &str,
    (b, c): (f64, f64),
    (bi, ci): ((f64, f64), (f64, f64)),
    band: f64,
    inconclusive: Option<String>,
) -> MetricComparison {
    let (verdict, why) = match inconclusive {
        Some(m) => (Verdict::Inconclusive, m),
        None => judge_worse(b, c, bi, ci, band),
    };
    MetricComparison {
        metric: name.to_string(),
        baseline: b,
        candidate: c,
        baseline_interval: bi,
        candidate_interval: ci,
        delta: c - b,
        band,
        verdict,
        why,
    }
}

/// Lower is better: regressed when worse by more than `band` and the intervals are apart;
/// pass when worse by at most `band` and even the candidate's upper bound stays within the
/// band of the baseline's; else the intervals cannot tell.
fn judge_worse(b: f64, c: f64, bi: (f64, f64), ci: (f64, f64), band: f64) -> (Verdict, String) {
    if c - b > band && ci.0 > bi.1 {
        let why = format!("worse by {:.3} (band {band:.3}), intervals apart", c - b);
        (Verdict::Regressed, why)
    } else if c - b <= band && ci.1 <= bi.1 + band {
        (Verdict::Pass, format!("within the band {band:.3}"))
    } else {
        let why = format!(
            "worse by {:.3}: the intervals cannot tell whether by more than {band:.3}",
            c - b
        );
        (Verdict::Inconclusive, why)
    }
}

/// Wilson's 95% interval of a proportion.
fn wilson(failed: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p) = (n as f64, failed as f64 / n as f64);
    let d = 1.0 + Z * Z / n;
    let centre = (p + Z * Z / (2.0 * n)) / d;
    let half = Z * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt() / d;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn error_rate(base: &Sample, cand: &Sample, noise: Noise) -> MetricComparison {
    let rate = |s: &Sample| {
        if s.requests == 0 {
            0.0
        } else {
            s.failed as f64 / s.requests as f64
        }
    };
    let (b, c) = (rate(base), rate(cand));
    let band = (b * noise.relative).max(noise.error_rate_floor);
    let (bi, ci) = (
        wilson(base.failed, base.requests),
        wilson(cand.failed, cand.requests),
    );
    let none = (base.requests == 0 || cand.requests == 0).then(|| "a run without requests".into());
    metric("error_rate", (b, c), (bi, ci), band, none)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    /// 10 000 latencies spread evenly from `ms` to twice `ms`.
    fn run_at(ms: u64) -> Histogram<u64> {
        hist((0..10_000u64).map(|i| ms * 1000 + ms * (i * 7919 % 10_000) / 10))
    }

    fn sample(h: &Histogram<u64>, failed: u64) -> Sample<'_> {
        Sample {
            latency: h,
            requests: h.len(),
            failed,
        }
    }

    #[test]
    fn histograms_survive_the_round_trip_through_base64() {
        let h = run_at(20);
        let s = encode(&h);
        assert!(s.len() < 8_000, "{} bytes", s.len());
        let back = decode(&s).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.value_at_quantile(0.99), h.value_at_quantile(0.99));
        assert!(decode("not a histogram").unwrap_err().contains("base64"));
        assert!(decode("aGVsbG8=").unwrap_err().contains("HDR"));
    }

    #[test]
    fn the_same_build_passes_a_slower_one_regresses_and_a_small_run_cannot_tell() {
        let (a, b, slow) = (run_at(20), run_at(20), run_at(30));
        let n = Noise::default();
        let same = compare("r1", &sample(&a, 10), &sample(&b, 12), n);
        assert_eq!(same.verdict, Verdict::Pass, "{same:#?}");
        let worse = compare("r1", &sample(&a, 10), &sample(&slow, 10), n);
        assert_eq!(worse.verdict, Verdict::Regressed, "{worse:#?}");
        assert!(
            worse
                .metrics
                .iter()
                .all(|m| m.metric == "error_rate" || m.verdict == Verdict::Regressed)
        );
        let errors = compare("r1", &sample(&a, 10), &sample(&b, 800), n);
        assert_eq!(errors.metrics[2].verdict, Verdict::Regressed, "{errors:#?}");
        let few = hist([20_000, 21_000, 22_000, 20_000, 21_000]);
        let small = compare("r1", &sample(&a, 0), &sample(&few, 0), n);
        assert_eq!(small.metrics[1].verdict, Verdict::Inconclusive);
        assert!(
            small.metrics[1].why.contains("1000"),
            "{}",
            small.metrics[1].why
        );
        assert_eq!(small.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_faster_candidate_passes() {
        let (a, fast) = (run_at(30), run_at(20));
        let c = compare("r1", &sample(&a, 0), &sample(&fast, 0), Noise::default());
        assert_eq!(c.verdict, Verdict::Pass, "{c:#?}");
        assert!(c.metrics[0].delta < -9.0);
    }
}
