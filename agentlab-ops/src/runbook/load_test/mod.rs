//! `load_test`: the spec's Load Testing runbook — `ab -n 10000 -c 50` (closed loop), or a rate
//! for a duration (open loop, latencies from each request's intended start), judged by
//! thresholds; production only when said so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::load::baseline::Comparison;
use crate::load::{LoadPlan, LoadSummary, Threshold, ThresholdResult};
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, parse_args,
};
use crate::runbook::run::{Checked, Progress, Run, RunOptions};

mod compare;
mod plan;

pub use compare::{find_baseline, outcome_of};

/// Options of `load_test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// The target (default: the service's health URL).
    pub url: Option<String>,
    /// More endpoints on the same origin (`/api/sessions`, or full URLs), requests spread
    /// over `url` and these in turn, each with its own figures.
    pub endpoints: Vec<String>,
    /// Total requests, closed loop (`ab -n`).
    pub requests: Option<u64>,
    /// Connections (`ab -c`); with HTTP/2, concurrent streams.
    pub concurrency: usize,
    /// Requests per second, open loop (for `duration`, or the first rate of `stages`).
    pub rate: Option<f64>,
    /// Open loop in stages: `30s:100` ramps to 100/s over 30 s, `1m@100` holds 100/s.
    pub stages: Vec<String>,
    /// The longest the run lasts (default 10 s; with `stages`, their sum).
    pub duration: Option<Dur>,
    /// Per request.
    pub timeout: Dur,
    /// HTTP keep-alive (`ab -k`).
    pub keep_alive: bool,
    /// HTTP/2 with prior knowledge (h2c).
    pub http2: bool,
    /// HTTP/2 connections the streams share.
    pub connections: usize,
    /// OS threads the connections are spread over (`wrk -t`).
    pub threads: usize,
    /// Thresholds beside `[load] thresholds` (`p99<300ms`).
    pub thresholds: Vec<String>,
    /// A name for this run, to compare later runs with (`baseline = "v1.4"`).
    pub label: Option<String>,
    /// Compare with this run: its id, its label, or `last` (the newest run on the same URL).
    pub baseline: Option<String>,
    /// Allow a target that is neither loopback nor in `[load] targets` (production).
    pub i_mean_production: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            url: None,
            endpoints: Vec::new(),
            requests: None,
            concurrency: 10,
            rate: None,
            stages: Vec::new(),
            duration: None,
            timeout: Dur(Duration::from_secs(5)),
            keep_alive: true,
            http2: false,
            connections: 1,
            threads: 1,
            thresholds: Vec::new(),
            label: None,
            baseline: None,
            i_mean_production: false,
        }
    }
}

impl Validate for LoadOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!("concurrency: {}: 1 to 10000", self.concurrency));
        }
        if self.requests.is_some() && (self.rate.is_some() || !self.stages.is_empty()) {
            return Err(
                "requests and rate/stages exclude each other (closed loop or open loop)".into(),
            );
        }
        if !self.stages.is_empty() && self.duration.is_some() {
            return Err(
                "duration and stages exclude each other (the stages' sum is the duration)".into(),
            );
        }
        // With stages, the rate is where the first ramp starts: 0 is fine.
        if let Some(r) = self.rate
            && !(r.is_finite() && (r > 0.0 || (r == 0.0 && !self.stages.is_empty())))
        {
            return Err(format!(
                "rate: {r}: a positive number of requests per second"
            ));
        }
        if self.http2 && !self.keep_alive {
            return Err("http2: its connections are kept alive (drop keep_alive = false)".into());
        }
        if self.connections == 0 || self.connections > self.concurrency {
            return Err(format!(
                "connections: {}: 1 to concurrency ({})",
                self.connections, self.concurrency
            ));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(format!("threads: {}: 1 to 256", self.threads));
        }
        if !self.stages.is_empty() {
            crate::load::Schedule::parse(self.rate.unwrap_or(0.0), &self.stages)?;
        }
        for t in &self.thresholds {
            Threshold::parse(t).map_err(|m| format!("thresholds: {m}"))?;
        }
        if let Some(l) = &self.label
            && (l.is_empty() || l == "last")
        {
            return Err(format!("label: {l:?}: a name other than \"last\""));
        }
        Ok(())
    }
}

/// The payload of `load_test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPayload {
    /// This run's label.
    #[serde(default)]
    pub label: Option<String>,
    /// What was measured.
    pub summary: LoadSummary,
    /// Every threshold, judged.
    pub thresholds: Vec<ThresholdResult>,
    /// Against the baseline, when one was asked for.
    #[serde(default)]
    pub comparison: Option<Comparison>,
    /// The service's `/metrics` before and after, and what changed.
    #[serde(default)]
    pub metrics: Vec<MetricDelta>,
}

/// A sample of `/metrics` before and after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    /// Its name and labels (`http_requests_total{code="200"}`).
    pub metric: String,
    /// Before the run.
    pub before: Option<f64>,
    /// After it.
    pub after: Option<f64>,
}

/// Run a load test.
pub async fn load_test(env: &Environment, o: &LoadOptions, ro: &RunOptions) -> Report {
    env.execute("load_test", ro, |run| async move {
        let p = body(env, &run, o, "", ro.progress.as_ref()).await?;
        Ok(p.map(|p| serde_json::to_value(p).unwrap_or_default())
            .unwrap_or_default())
    })
    .await
}

/// A load test inside another runbook (a deploy gate, the post-scaling check): its steps are
/// recorded into `run`, named with `prefix` (`gate:performance:`); neither escalation nor
/// `/metrics` of its own — the caller judges the payload. `None` in a dry run.
pub async fn embedded(
    env: &Environment,
    run: &Run,
    o: &LoadOptions,
    prefix: &str,
) -> Result<Option<LoadPayload>> {
    debug_assert!(!prefix.is_empty(), "an embedded load test names its steps");
    body(env, run, o, prefix, None).await
}

/// The load test; `prefix` empty: the runbook itself (escalations, `/metrics`, progress).
async fn body(
    env: &Environment,
    run: &Run,
    o: &LoadOptions,
    prefix: &str,
    progress: Option<&Progress>,
) -> Result<Option<LoadPayload>> {
    let own = prefix.is_empty();
    o.validate().map_err(Error::config)?;
    let url = o.url.clone().unwrap_or_else(|| {
        env.config
            .service
            .base_url
            .join(&env.config.service.health_path)
    });
    let urls = plan::endpoints(&url, &o.endpoints)?;
    if let Some(u) = urls.iter().find(|u| !plan::allowed(env, u))
        && !o.i_mean_production
    {
        let m = format!(
            "url: {} is neither loopback nor in [load] targets: pass i_mean_production to load it",
            crate::secret::redact_url(u)
        );
        return Err(Error::config(m));
    }
    let mut plan = plan::plan(env, o)?;
    let thresholds = plan::thresholds(env, o)?;
    // Found before the run: a baseline that is not there fails fast.
    let baseline = match &o.baseline {
        Some(b) => Some(compare::find_baseline(env, b, &url)?),
        None => None,
    };
    if run.is_dry_run() {
        run.record(
            &format!("{prefix}load"),
            Action::Change,
            Outcome::Planned,
            plan::describe(&plan, &urls),
        );
        return Ok(None);
    }
    if let Some(p) = progress {
        // A closed loop bounded only by its duration has no known total: a count, not a bar.
        let total = match o.requests {
            None if o.rate.is_none() && o.stages.is_empty() => 0,
            _ => plan.planned().unwrap_or(0),
        };
        p.total.store(total, std::sync::atomic::Ordering::Relaxed);
        plan.progress = Some(p.done.clone());
    }
    let before = if own {
        compare::scrape(env, run, "metrics:before").await
    } else {
        None
    };
    let summary = measure(run, &format!("{prefix}load"), plan, &urls).await?;
    let after = if own {
        compare::scrape(env, run, "metrics:after").await
    } else {
        None
    };
    let results: Vec<ThresholdResult> = thresholds
        .iter()
        .map(|t| crate::load::judge(t, &summary))
        .collect();
    if own {
        escalate_thresholds(run, &results);
    }
    let comparison = match baseline {
        Some(b) => compare::judge(env, run, &b, &summary, prefix),
        None => None,
    };
    Ok(Some(LoadPayload {
        label: o.label.clone(),
        summary,
        thresholds: results,
        comparison,
        metrics: compare::deltas(before, after),
    }))
}

fn escalate_thresholds(run: &Run, results: &[ThresholdResult]) {
    for r in results.iter().filter(|r| !r.passed) {
        let seen = format!("{:.4}", r.observed);
        let m = format!("threshold {} failed: observed {seen}", r.threshold);
        let t = r.threshold.clone();
        run.escalate("load_threshold_failed", t.clone(), seen, t, m);
    }
}

async fn measure(run: &Run, step: &str, plan: LoadPlan, urls: &[String]) -> Result<LoadSummary> {
    let limit = plan.duration + plan.timeout * 2 + Duration::from_secs(5);
    run.check(step, Some(limit), async {
        let cancel = tokio_util::sync::CancellationToken::new();
        let s = crate::load::run_endpoints(plan, urls, cancel).await?;
        let mut line = format!(
            "{} requests, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {:.2}% failed",
            s.requests,
            s.achieved_rate,
            s.latency_ms.p50,
            s.latency_ms.p99,
            s.error_rate * 100.0
        );
        if let Some(slow) = s
            .endpoints
            .iter()
            .filter(|_| s.endpoints.len() > 1)
            .max_by(|a, b| a.latency_ms.p99.total_cmp(&b.latency_ms.p99))
        {
            let n = s.endpoints.len();
            let p = slow.latency_ms.p99;
            line.push_str(&format!(
                "; {n} endpoints, slowest {} (p99 {p:.1} ms)",
                slow.url
            ));
        }
        let o = if s.requests == 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        Ok(Checked::with(s, o, line))
    })
    .await
}

/// `load_test`.
pub static LOAD_TEST: Definition = Definition {
    name: "load_test",
    command: "load",
    aliases: &[],
    summary: "load test an HTTP target: closed loop (-n/-c like ab) or open loop at a rate with latencies from each request's intended start; thresholds fail the run",
    changes: true,
    steps: &[
        "metrics:before: the service's /metrics ([investigation] metrics_path)",
        "load: the requests, then latency percentiles (corrected and raw), statuses, errors by kind, achieved vs intended rate, a per-second timeline",
        "metrics:after: /metrics again; the report lists each sample before and after",
        "thresholds: each judged; a failed one escalates (exit 1)",
        "baseline: p50, p99 and the error rate against the baseline run with 95% intervals and the [load] noise band: pass, inconclusive (warn) or regressed (escalates)",
    ],
    options: &[
        OptionDoc {
            name: "url",
            kind: "http URL",
            help: "the target (default: the service's health URL)",
        },
        OptionDoc {
            name: "endpoints",
            kind: "list",
            help: "more paths (/api/sessions) or URLs of the same origin: requests go to each in turn, each with its own percentiles",
        },
        OptionDoc {
            name: "requests",
            kind: "count",
            help: "total requests, closed loop (ab -n)",
        },
        OptionDoc {
            name: "concurrency",
            kind: "count",
            help: "connections (ab -c; default 10)",
        },
        OptionDoc {
            name: "rate",
            kind: "per second",
            help: "open loop at this rate for the duration (with stages: the starting rate)",
        },
        OptionDoc {
            name: "stages",
            kind: "list",
            help: "open loop in stages: 30s:100 ramps to 100/s over 30 s, 1m@100 holds 100/s for 1 min",
        },
        OptionDoc {
            name: "duration",
            kind: "duration",
            help: "the longest the run lasts (default 10s; with stages, their sum)",
        },
        OptionDoc {
            name: "timeout",
            kind: "duration",
            help: "per request (default 5s)",
        },
        OptionDoc {
            name: "keep_alive",
            kind: "bool",
            help: "HTTP keep-alive (default true; false: a connection per request, like ab)",
        },
        OptionDoc {
            name: "http2",
            kind: "bool",
            help: "HTTP/2 with prior knowledge (h2c): concurrency streams over connections",
        },
        OptionDoc {
            name: "connections",
            kind: "count",
            help: "HTTP/2 connections the streams share (default 1)",
        },
        OptionDoc {
            name: "threads",
            kind: "count",
            help: "OS threads the connections are spread over, like wrk -t (default 1)",
        },
        OptionDoc {
            name: "thresholds",
            kind: "list",
            help: "p99<300ms, error_rate<1%, achieved_rate>=99%, rate>=1000",
        },
        OptionDoc {
            name: "label",
            kind: "name",
            help: "name this run, for later runs to compare with",
        },
        OptionDoc {
            name: "baseline",
            kind: "run id | label | last",
            help: "compare with that run from the journal: p50, p99, error rate; regressed escalates",
        },
        OptionDoc {
            name: "i_mean_production",
            kind: "bool",
            help: "allow a target outside loopback and [load] targets",
        },
    ],
    defaults: defaults_of::<LoadOptions>,
    check_options: check_args::<LoadOptions>,
    example: r#"{"url": "http://127.0.0.1:8080/health", "requests": 10000, "concurrency": 50}"#,
    start: |env, v, run| {
        Box::pin(async move {
            let o: LoadOptions = parse_args("load_test", v)?;
            Ok(load_test(env, &o, &run).await)
        })
    },
};
