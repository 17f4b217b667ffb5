//! `[load]`: where load tests may go without a second thought, and how big they may be.

use super::*;

/// `[load]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LoadConfig {
    /// URL prefixes a load test may target (staging, a green colour). Loopback is always
    /// allowed; anything else, the production service included, needs `i_mean_production`.
    pub targets: Vec<String>,
    /// The most requests one run may make.
    pub max_requests: u64,
    /// The longest one run may last.
    pub max_duration: Dur,
    /// Thresholds every run is judged by (`p99<300ms`, `error_rate<1%`).
    pub thresholds: Vec<String>,
    /// Against a baseline, a latency or error rate this much worse is material (0.1: 10%).
    pub noise: f64,
    /// Latencies closer than this are the same (loopback jitter).
    pub latency_floor: Dur,
    /// Error rates closer than this are the same (0.005: half a percentage point).
    pub error_rate_floor: f64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            targets: Vec::new(),
            max_requests: 1_000_000,
            max_duration: Dur(Duration::from_secs(600)),
            thresholds: Vec::new(),
            noise: 0.10,
            latency_floor: Dur(Duration::from_millis(1)),
            error_rate_floor: 0.005,
        }
    }
}

impl LoadConfig {
    pub(super) fn check(&self) -> std::result::Result<(), (String, String)> {
        for (i, t) in self.thresholds.iter().enumerate() {
            super::Threshold::parse(t).map_err(|m| (format!("load.thresholds[{i}]"), m))?;
        }
        for (field, v) in [
            ("load.noise", self.noise),
            ("load.error_rate_floor", self.error_rate_floor),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err((field.into(), format!("{v}: a fraction from 0 to 1")));
            }
        }
        for (i, t) in self.targets.iter().enumerate() {
            if !t.starts_with("http://") {
                return Err((
                    format!("load.targets[{i}]"),
                    format!("{t:?}: an http:// URL prefix"),
                ));
            }
        }
        Ok(())
    }
}
