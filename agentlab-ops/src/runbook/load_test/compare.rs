//! The spec's steps 1 and 4: the service's `/metrics` before and after the run, and the run
//! compared with a baseline found in the journal (by run id, label, or `last`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{LoadPayload, MetricDelta};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::load::LoadSummary;
use crate::load::baseline::{self, Comparison, Noise, Sample, Verdict};
use crate::report::{Action, Outcome, Severity};
use crate::runbook::investigate::{MetricSample, parse_metrics};
use crate::runbook::run::{Checked, Run};

/// A baseline run found in the journal.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// Its run id.
    pub run_id: String,
    /// What it measured.
    pub summary: LoadSummary,
}

/// The newest `load_test` run of this environment that `which` names — its run id, its label,
/// or `last` (the newest on `url`) — and that kept its histograms.
pub fn find_baseline(env: &Environment, which: &str, url: &str) -> Result<Baseline> {
    let Some(journal) = &env.journal else {
        let m = format!(
            "baseline: {which:?}: the journal is disabled, so no run is kept to compare with"
        );
        return Err(Error::config(m));
    };
    let url = crate::secret::redact_url(url);
    let mut found = None;
    journal.scan(|r| {
        if r.runbook != "load_test" || r.environment != env.name() || r.dry_run {
            return;
        }
        let Ok(p) = serde_json::from_value::<LoadPayload>(r.payload) else {
            return;
        };
        let named = match which {
            "last" => p.summary.url == url,
            w => r.run_id == w || p.label.as_deref() == Some(w),
        };
        if named && !p.summary.histograms.corrected.is_empty() {
            found = Some(Baseline {
                run_id: r.run_id,
                summary: p.summary,
            });
        }
    })?;
    found.ok_or_else(|| {
        let m = format!(
            "baseline: no load_test run {which:?} of environment {} in the journal {}",
            env.name(),
            journal.path().display()
        );
        Error::new(ErrorKind::NotFound, m).with_context("baseline", which)
    })
}

/// Compare `cand` with the baseline: a `baseline` step (pass, warn when inconclusive, fail
/// and an escalation per metric when regressed — unless embedded, `prefix` naming the step).
/// `None` when a histogram cannot be read.
pub(super) fn judge(
    env: &Environment,
    run: &Run,
    base: &Baseline,
    cand: &LoadSummary,
    prefix: &str,
) -> Option<Comparison> {
    let decoded = baseline::decode(&base.summary.histograms.corrected)
        .and_then(|b| Ok((b, baseline::decode(&cand.histograms.corrected)?)));
    let (bh, ch) = match decoded {
        Ok(h) => h,
        Err(e) => {
            let m = format!("the histograms of run {} cannot be read: {e}", base.run_id);
            run.finding(Severity::Warning, format!("{prefix}baseline"), m);
            return None;
        }
    };
    if base.summary.intended_rate.is_some() != cand.intended_rate.is_some() {
        let m = "the baseline and this run pace requests differently (open and closed loop): their latencies are not measured alike";
        run.finding(Severity::Warning, format!("{prefix}baseline"), m);
    }
    let sample = |h, s: &LoadSummary| Sample {
        latency: h,
        requests: s.requests,
        failed: s.failed,
    };
    let c = &env.config.load;
    let noise = Noise {
        relative: c.noise,
        latency_floor_ms: c.latency_floor.0.as_secs_f64() * 1000.0,
        error_rate_floor: c.error_rate_floor,
    };
    let cmp = baseline::compare(
        &base.run_id,
        &sample(&bh, &base.summary),
        &sample(&ch, cand),
        noise,
    );
    record(run, &cmp, prefix);
    Some(cmp)
}

/// A comparison's verdict as a step's outcome: pass, warn (inconclusive), fail (regressed).
pub fn outcome_of(v: Verdict) -> Outcome {
    match v {
        Verdict::Pass => Outcome::Pass,
        Verdict::Inconclusive => Outcome::Warn,
        Verdict::Regressed => Outcome::Fail,
    }
}

fn line(m: &baseline::MetricComparison) -> String {
    let (b, c) = (m.baseline, m.candidate);
    format!("{} {b:.3} → {c:.3} ({})", m.metric, m.why)
}

/// The comparison as the `baseline` step, and (not embedded) an escalation per regressed metric.
fn record(run: &Run, cmp: &Comparison, prefix: &str) {
    let lines: Vec<String> = cmp.metrics.iter().map(line).collect();
    let outcome = outcome_of(cmp.verdict);
    let base = &cmp.baseline_run;
    let summary = format!(
        "{} against run {base}: {}",
        cmp.verdict.as_str(),
        lines.join("; ")
    );
    run.record(&format!("{prefix}baseline"), Action::Read, outcome, summary);
    if !prefix.is_empty() {
        // Embedded (a deploy gate): the caller judges, no escalation of its own.
        return;
    }
    for m in cmp
        .metrics
        .iter()
        .filter(|m| m.verdict == Verdict::Regressed)
    {
        let msg = format!("{} regressed against run {base}: {}", m.metric, line(m));
        let limit = format!("{:.3} + {:.3}", m.baseline, m.band);
        let seen = format!("{:.3}", m.candidate);
        run.escalate("load_regressed", m.metric.clone(), seen, limit, msg);
    }
}

/// The service's `/metrics` (`[investigation] metrics_path`); `None` when not configured.
/// A failure is a warning: the load test itself goes on.
pub(super) async fn scrape(env: &Environment, run: &Run, name: &str) -> Option<Vec<MetricSample>> {
    let path = &env.config.investigation.metrics_path;
    if path.is_empty() {
        return None;
    }
    let r = run
        .check(name, Some(Duration::from_secs(15)), async {
            match env.probe.get(path).await {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    let samples = parse_metrics(&resp.body, &env.config.investigation.metrics);
                    let s = format!("{} samples from {}", samples.len(), resp.url);
                    let o = if samples.is_empty() {
                        Outcome::Warn
                    } else {
                        Outcome::Pass
                    };
                    Ok(Checked::with(Some(samples), o, s))
                }
                Ok(resp) => {
                    let s = format!("{} answered HTTP {}", resp.url, resp.status);
                    Ok(Checked::with(None, Outcome::Warn, s))
                }
                Err(e) => Ok(Checked::with(None, Outcome::Warn, e.to_string())),
            }
        })
        .await;
    r.ok().flatten()
}

fn key(s: &MetricSample) -> String {
    if s.labels.is_empty() {
        return s.name.clone();
    }
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", s.name, labels.join(","))
}

/// Every sample of either scrape, before and after.
pub(super) fn deltas(
    before: Option<Vec<MetricSample>>,
    after: Option<Vec<MetricSample>>,
) -> Vec<MetricDelta> {
    let mut m: BTreeMap<String, MetricDelta> = BTreeMap::new();
    let mut add = |samples: Option<Vec<MetricSample>>, after: bool| {
        for s in samples.into_iter().flatten() {
            let k = key(&s);
            let d = m.entry(k.clone()).or_insert(MetricDelta {
                metric: k,
                before: None,
                after: None,
            });
            if after {
                d.after = s.value;
            } else {
                d.before = s.value;
            }
        }
    };
    add(before, false);
    add(after, true);
    m.into_values().collect()
}
