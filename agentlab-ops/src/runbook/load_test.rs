//! `load_test`: the spec's Load Testing runbook — `ab -n 10000 -c 50` (closed loop), or a rate
//! for a duration (open loop, latencies from each request's intended start), judged by
//! thresholds; production only when said so.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::load::{LoadPlan, LoadSummary, Mode, Threshold, ThresholdResult};
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, parse_args,
};
use crate::runbook::run::{Checked, RunOptions};

/// Options of `load_test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// The target (default: the service's health URL).
    pub url: Option<String>,
    /// Total requests, closed loop (`ab -n`).
    pub requests: Option<u64>,
    /// Connections (`ab -c`).
    pub concurrency: usize,
    /// Requests per second, open loop (with `duration`).
    pub rate: Option<f64>,
    /// The longest the run lasts.
    pub duration: Dur,
    /// Per request.
    pub timeout: Dur,
    /// HTTP keep-alive (`ab -k`).
    pub keep_alive: bool,
    /// Thresholds beside `[load] thresholds` (`p99<300ms`).
    pub thresholds: Vec<String>,
    /// Allow a target that is neither loopback nor in `[load] targets` (production).
    pub i_mean_production: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            url: None,
            requests: None,
            concurrency: 10,
            rate: None,
            duration: Dur(Duration::from_secs(10)),
            timeout: Dur(Duration::from_secs(5)),
            keep_alive: true,
            thresholds: Vec::new(),
            i_mean_production: false,
        }
    }
}

impl Validate for LoadOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!("concurrency: {}: 1 to 10000", self.concurrency));
        }
        if self.requests.is_some() && self.rate.is_some() {
            return Err("requests and rate exclude each other (closed loop or open loop)".into());
        }
        if let Some(r) = self.rate
            && !(r > 0.0 && r.is_finite())
        {
            return Err(format!(
                "rate: {r}: a positive number of requests per second"
            ));
        }
        for t in &self.thresholds {
            Threshold::parse(t).map_err(|m| format!("thresholds: {m}"))?;
        }
        Ok(())
    }
}

/// The payload of `load_test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPayload {
    /// What was measured.
    pub summary: LoadSummary,
    /// Every threshold, judged.
    pub thresholds: Vec<ThresholdResult>,
}

fn allowed(env: &Environment, url: &str) -> bool {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string));
    let loopback = matches!(
        host.as_deref(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    loopback
        || env
            .config
            .load
            .targets
            .iter()
            .any(|t| url.starts_with(t.as_str()))
}

fn plan(env: &Environment, o: &LoadOptions) -> Result<LoadPlan> {
    let max = &env.config.load;
    if o.duration.0 > max.max_duration.0 {
        let m = format!(
            "duration: {} is over [load] max_duration {}",
            crate::units::format_duration(o.duration.0),
            crate::units::format_duration(max.max_duration.0)
        );
        return Err(Error::config(m));
    }
    let mode = match o.rate {
        Some(rate) => Mode::Open { rate },
        None => Mode::Closed {
            requests: Some(o.requests.unwrap_or(max.max_requests).min(max.max_requests)),
        },
    };
    let planned = match mode {
        Mode::Open { rate } => (rate * o.duration.0.as_secs_f64()) as u64,
        Mode::Closed { requests } => requests.unwrap_or(0),
    };
    if planned > max.max_requests || o.requests.is_some_and(|n| n > max.max_requests) {
        return Err(Error::config(format!(
            "requests: {planned} planned, over [load] max_requests {}",
            max.max_requests
        )));
    }
    Ok(LoadPlan {
        mode,
        concurrency: o.concurrency,
        duration: o.duration.0,
        timeout: o.timeout.0,
        keep_alive: o.keep_alive,
        late_after: Duration::from_millis(10),
    })
}

/// Run a load test.
pub async fn load_test(env: &Environment, o: &LoadOptions, ro: &RunOptions) -> Report {
    env.execute("load_test", ro, |run| async move {
        o.validate().map_err(Error::config)?;
        let url = o.url.clone().unwrap_or_else(|| env.config.service.base_url.join(&env.config.service.health_path));
        if !allowed(env, &url) && !o.i_mean_production {
            return Err(Error::config(format!("url: {} is neither loopback nor in [load] targets: pass i_mean_production to load it", crate::secret::redact_url(&url))));
        }
        let plan = plan(env, o)?;
        let mut thresholds: Vec<Threshold> = Vec::new();
        for t in env.config.load.thresholds.iter().chain(&o.thresholds) {
            thresholds.push(Threshold::parse(t).map_err(Error::config)?);
        }
        if run.is_dry_run() {
            let what = match plan.mode { Mode::Open { rate } => format!("{rate}/s for {}", crate::units::format_duration(plan.duration)), Mode::Closed { requests } => format!("{} requests", requests.unwrap_or(0)) };
            run.record("load", Action::Change, Outcome::Planned, format!("{what} on {} connections to {}", plan.concurrency, crate::secret::redact_url(&url)));
            return Ok(serde_json::Value::Null);
        }
        let limit = plan.duration + plan.timeout * 2 + Duration::from_secs(5);
        let summary = run.check("load", Some(limit), async {
            let s = crate::load::run(plan, &url, tokio_util::sync::CancellationToken::new()).await?;
            let line = format!("{} requests, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {:.2}% failed", s.requests, s.achieved_rate, s.latency_ms.p50, s.latency_ms.p99, s.error_rate * 100.0);
            let o = if s.requests == 0 { Outcome::Fail } else { Outcome::Pass };
            Ok(Checked::with(s, o, line))
        }).await?;
        let results: Vec<ThresholdResult> = thresholds.iter().map(|t| crate::load::judge(t, &summary)).collect();
        for r in results.iter().filter(|r| !r.passed) {
            run.escalate("load_threshold_failed", r.threshold.clone(), format!("{:.4}", r.observed), r.threshold.clone(), format!("threshold {} failed: observed {:.4}", r.threshold, r.observed));
        }
        Ok(serde_json::to_value(LoadPayload { summary, thresholds: results }).unwrap_or_default())
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
        "load: the requests, then latency percentiles (corrected and raw), statuses, errors by kind, achieved vs intended rate, a per-second timeline",
        "thresholds: each judged; a failed one escalates (exit 1)",
    ],
    options: &[
        OptionDoc {
            name: "url",
            kind: "http URL",
            help: "the target (default: the service's health URL)",
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
            help: "open loop at this rate for the duration",
        },
        OptionDoc {
            name: "duration",
            kind: "duration",
            help: "the longest the run lasts (default 10s)",
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
            name: "thresholds",
            kind: "list",
            help: "p99<300ms, error_rate<1%, achieved_rate>=99%, rate>=1000",
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
