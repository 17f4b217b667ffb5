//! Judging a load test's thresholds ([`Threshold`], a config value) against its summary.

use serde::{Deserialize, Serialize};

pub use crate::config::Threshold;

use super::LoadSummary;

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

/// Judge `t` against a run; `achieved_rate` of a closed-loop run (no intended rate) fails.
pub fn judge(t: &Threshold, s: &LoadSummary) -> ThresholdResult {
    let l = &s.latency_ms;
    let observed = match t.metric.as_str() {
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
    let passed = match t.op.as_str() {
        "<" => observed < t.value,
        "<=" => observed <= t.value,
        ">" => observed > t.value,
        _ => observed >= t.value,
    };
    ThresholdResult {
        threshold: t.text.clone(),
        observed,
        passed,
    }
}
