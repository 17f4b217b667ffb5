//! The steady-state probes, evaluated against the environment's sources: an HTTP GET through
//! the health probe, an alert of the alert source, an SLO's error ratio from the SLO source.
//! A probe that cannot be evaluated (a server's garbage, no source configured) is out of
//! tolerance, with the reason: a hypothesis never holds without inspecting anything.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chaos::Probe;
use crate::environment::Environment;

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The probe, in one line.
    pub probe: String,
    /// Within tolerance.
    pub ok: bool,
    /// What was seen (`200 in 12ms`, `firing since ...`, `0.4% over 5m`).
    pub observed: String,
    /// An HTTP probe's latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// Evaluate one probe; at most `limit`.
pub async fn evaluate(env: &Environment, p: &Probe, limit: Duration) -> ProbeResult {
    let r = tokio::time::timeout(limit, eval(env, p)).await;
    let (ok, observed, latency_ms) = match r {
        Ok(x) => x,
        Err(_) => (
            false,
            format!("no answer within {}", crate::units::format_duration(limit)),
            None,
        ),
    };
    ProbeResult {
        probe: p.describe(),
        ok,
        observed,
        latency_ms,
    }
}

/// Every probe, together (one failing never hides the others).
pub async fn evaluate_all(env: &Environment, ps: &[Probe], limit: Duration) -> Vec<ProbeResult> {
    futures::future::join_all(ps.iter().map(|p| evaluate(env, p, limit))).await
}

/// The failed ones, in one line: `GET /health is 200: 503 in 3ms; ...`.
pub fn failures(rs: &[ProbeResult]) -> Option<String> {
    let bad: Vec<String> = rs
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{}: {}", r.probe, r.observed))
        .collect();
    (!bad.is_empty()).then(|| bad.join("; "))
}

async fn eval(env: &Environment, p: &Probe) -> (bool, String, Option<f64>) {
    match p {
        Probe::Http {
            url,
            status,
            latency_below,
        } => match env.probe.get(url).await {
            Ok(r) => {
                let ms = r.latency.as_secs_f64() * 1000.0;
                let fast = latency_below.is_none_or(|b| r.latency < b.0);
                let ok = r.status == *status && fast;
                (ok, format!("{} in {ms:.0}ms", r.status), Some(ms))
            }
            Err(e) => (false, e.to_string(), None),
        },
        Probe::AlertNotFiring { alert } => {
            let Some(src) = &env.alerts else {
                return (false, "no alert source ([alerts])".into(), None);
            };
            match src.alerts().await {
                Ok(all) => match all.iter().find(|a| a.name() == alert) {
                    Some(a) => (false, format!("firing since {}", a.starts_at), None),
                    None => (true, "not firing".into(), None),
                },
                Err(e) => (false, e.to_string(), None),
            }
        }
        Probe::ErrorRate { slo, below, window } => {
            error_rate(env, slo.as_deref(), *below, window.0).await
        }
    }
}

/// The SLO's error ratio over the smallest window of at least `window` the source has.
async fn error_rate(
    env: &Environment,
    slo: Option<&str>,
    below: f64,
    window: Duration,
) -> (bool, String, Option<f64>) {
    let data = match env.slo_source.fetch().await {
        Ok(d) => d,
        Err(e) => return (false, e.to_string(), None),
    };
    let want = slo.or_else(|| env.config.slos.first().map(|s| s.name.as_str()));
    let found = match want {
        Some(n) => data.iter().find(|d| d.name == n),
        None => data.first(),
    };
    let Some(d) = found else {
        return (
            false,
            format!("the SLO source has no {}", want.unwrap_or("SLO")),
            None,
        );
    };
    let Some((w, counts)) = d.windows.range(window..).next() else {
        return (
            false,
            format!("{}: no window of at least {window:?}", d.name),
            None,
        );
    };
    match counts.error_ratio() {
        Some(r) => (
            r < below,
            format!(
                "{:.3}% over {}",
                r * 100.0,
                crate::units::format_duration(*w)
            ),
            None,
        ),
        None => (false, format!("{}: no traffic over {w:?}", d.name), None),
    }
}
