//! Thresholds that fail a load test, as k6 writes them: `p99<300ms`, `p50<=80ms`,
//! `error_rate<1%`, `achieved_rate>=99%` (of the intended rate), `rate>=1000` (requests per
//! second). A config value (parsed where `[load] thresholds` is read); judged by the load
//! module.

use serde::{Deserialize, Serialize};

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// As written.
    pub text: String,
    /// `p99`, `error_rate`...
    pub metric: String,
    /// `<`, `<=`, `>`, `>=`.
    pub op: String,
    /// In the metric's unit (ms, a ratio, requests per second).
    pub value: f64,
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
