//! Thresholds that fail a load test, as k6 writes them: `p99<300ms`, `p50<=80ms`,
//! `error_rate<1%`, `achieved_rate>=99%` (of the intended rate), `rate>=1000` (requests per
//! second).

use serde::{Deserialize, Serialize};

use super::LoadSummary;

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// As written.
    pub text: String,
    metric: String,
    op: String,
    value: f64,
}

/// A threshold judged against a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written.
    pub threshold: String,
    /// What the run measured, in the threshold's unit.
    pub observed: f64,
    /// Held.
    pub passed: bool,
}

const METRICS: &[&str] = &[
    "p50",
    "p90",
    "p99",
    "p999",
    "max",
    "mean",
    "error_rate",
    "achieved_rate",
    "rate",
];

impl Threshold {
    /// Parse `metric op value[unit]`.
    pub fn parse(s: &str) -> Result<Threshold, String> {
        let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let err = || {
            format!(
                "{s:?}: write metric<value, e.g. p99<300ms, error_rate<1%, achieved_rate>=99% (metrics: {})",
                METRICS.join(", ")
            )
        };
        let at = t.find(['<', '>']).ok_or_else(err)?;
        let (metric, rest) = t.split_at(at);
        let (op, v) = if rest.len() > 1 && rest.as_bytes()[1] == b'=' {
            rest.split_at(2)
        } else {
            rest.split_at(1)
        };
        if !METRICS.contains(&metric) {
            return Err(err());
        }
        let latency =
            metric.starts_with('p') && metric != "p" || metric == "max" || metric == "mean";
        let value = if latency {
            if let Some(ms) = v.strip_suffix("ms") {
                ms.parse::<f64>().map_err(|_| err())?
            } else if let Some(sec) = v.strip_suffix('s') {
                sec.parse::<f64>().map_err(|_| err())? * 1000.0
            } else {
                return Err(format!("{s:?}: a latency needs its unit (300ms, 1.5s)"));
            }
        } else if let Some(p) = v.strip_suffix('%') {
            p.parse::<f64>().map_err(|_| err())? / 100.0
        } else if metric == "rate" {
            v.parse::<f64>().map_err(|_| err())?
        } else {
            return Err(format!("{s:?}: {metric} is a percentage (1%)"));
        };
        if !value.is_finite() || value < 0.0 {
            return Err(err());
        }
        Ok(Threshold {
            text: s.trim().to_string(),
            metric: metric.into(),
            op: op.into(),
            value,
        })
    }

    /// Judge against a run; `achieved_rate` of a closed-loop run (no intended rate) fails.
    pub fn judge(&self, s: &LoadSummary) -> ThresholdResult {
        let l = &s.latency_ms;
        let observed = match self.metric.as_str() {
            "p50" => l.p50,
            "p90" => l.p90,
            "p99" => l.p99,
            "p999" => l.p999,
            "max" => l.max,
            "mean" => l.mean,
            "error_rate" => s.error_rate,
            "rate" => s.achieved_rate,
            _ => match s.intended_rate {
                Some(r) if r > 0.0 => s.achieved_rate / r,
                _ => f64::NAN,
            },
        };
        let passed = match self.op.as_str() {
            "<" => observed < self.value,
            "<=" => observed <= self.value,
            ">" => observed > self.value,
            _ => observed >= self.value,
        };
        ThresholdResult {
            threshold: self.text.clone(),
            observed,
            passed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_with_units_and_bad_ones_say_how() {
        assert_eq!(Threshold::parse("p99 < 300ms").unwrap().value, 300.0);
        assert_eq!(Threshold::parse("p50<=1.5s").unwrap().value, 1500.0);
        assert_eq!(Threshold::parse("error_rate<1%").unwrap().value, 0.01);
        assert_eq!(Threshold::parse("achieved_rate>=99%").unwrap().op, ">=");
        assert_eq!(Threshold::parse("rate>1000").unwrap().value, 1000.0);
        for bad in [
            "p99",
            "p99<300",
            "latency<3ms",
            "error_rate<0.01",
            "p99<-1ms",
            "p99<xms",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }
}
