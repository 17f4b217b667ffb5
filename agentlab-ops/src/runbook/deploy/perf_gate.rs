//! The gate "Performance Test: no performance regressions": a load test of the candidate
//! (`[deploy.performance] url`, staging) compared with a stored baseline run; `regressed` or a
//! failed threshold stops the deployment, `inconclusive` warns.

use crate::config::PerformanceGate;
use crate::environment::Environment;
use crate::load::baseline::Verdict;
use crate::report::Outcome;
use crate::runbook::load_test::{LoadOptions, embedded, outcome_of};
use crate::runbook::run::Run;

use super::Gate;
use super::gates::gate;

/// Run the gate's load test (its steps are `gate:performance:load` and `:baseline`).
pub(super) async fn performance(env: &Environment, run: &Run, p: &PerformanceGate) -> Gate {
    let need = format!("not regressed against {:?}", p.baseline);
    let o = LoadOptions {
        url: Some(p.url.clone()),
        requests: Some(p.requests),
        concurrency: p.concurrency,
        thresholds: p.thresholds.clone(),
        baseline: Some(p.baseline.clone()),
        ..LoadOptions::default()
    };
    let payload = match embedded(env, run, &o, "gate:performance:").await {
        Ok(Some(payload)) => payload,
        Ok(None) => {
            let m = "dry run: the load test is planned, not run".to_string();
            return gate("performance", Outcome::Skipped, m, need);
        }
        Err(e) => return gate("performance", Outcome::Fail, e.to_string(), need),
    };
    let failed: Vec<&str> = payload
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.threshold.as_str())
        .collect();
    let s = &payload.summary;
    let seen = format!(
        "p50 {:.1} ms, p99 {:.1} ms, {:.2}% failed",
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.error_rate * 100.0
    );
    let (outcome, verdict) = match &payload.comparison {
        _ if !failed.is_empty() => (
            Outcome::Fail,
            format!("thresholds failed: {}", failed.join(", ")),
        ),
        Some(c) => {
            let mut v = format!("{} against run {}", c.verdict.as_str(), c.baseline_run);
            if c.verdict == Verdict::Regressed {
                let worse: Vec<&str> = c
                    .metrics
                    .iter()
                    .filter(|m| m.verdict == Verdict::Regressed)
                    .map(|m| m.metric.as_str())
                    .collect();
                v = format!("{v} ({})", worse.join(", "));
            }
            (outcome_of(c.verdict), v)
        }
        None => (
            Outcome::Warn,
            "not compared: the histograms could not be read".into(),
        ),
    };
    gate("performance", outcome, format!("{verdict}: {seen}"), need)
}
