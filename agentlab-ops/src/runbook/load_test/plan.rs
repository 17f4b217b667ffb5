//! From `load_test`'s options to a bounded plan: the target allowed, the count and the
//! duration within `[load]`'s limits, the schedule of an open loop.

use std::time::Duration;

use super::LoadOptions;
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::load::{LoadPlan, Mode, Schedule, Threshold};
use crate::units::format_duration;

/// Loopback, or under one of `[load] targets`.
pub(super) fn allowed(env: &Environment, url: &str) -> bool {
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

/// The plan of `o`, refused when it goes over `[load] max_duration` or `max_requests`.
pub(super) fn plan(env: &Environment, o: &LoadOptions) -> Result<LoadPlan> {
    let max = &env.config.load;
    let duration = o.duration.map_or(Duration::from_secs(10), |d| d.0);
    let mode = if !o.stages.is_empty() {
        Mode::Open(Schedule::parse(o.rate.unwrap_or(0.0), &o.stages).map_err(Error::config)?)
    } else if let Some(rate) = o.rate {
        Mode::Open(Schedule::constant(rate, duration).map_err(Error::config)?)
    } else {
        Mode::Closed {
            requests: Some(o.requests.unwrap_or(max.max_requests).min(max.max_requests)),
        }
    };
    let mut plan = LoadPlan::new(mode, o.concurrency, duration);
    if plan.duration > max.max_duration.0 {
        let m = format!(
            "duration: {} is over [load] max_duration {}",
            format_duration(plan.duration),
            format_duration(max.max_duration.0)
        );
        return Err(Error::config(m));
    }
    let planned = plan.planned().unwrap_or(0);
    if planned > max.max_requests || o.requests.is_some_and(|n| n > max.max_requests) {
        return Err(Error::config(format!(
            "requests: {} planned, over [load] max_requests {}",
            o.requests.unwrap_or(planned),
            max.max_requests
        )));
    }
    plan.timeout = o.timeout.0;
    plan.keep_alive = o.keep_alive;
    plan.http2 = o.http2;
    plan.connections = o.connections;
    plan.threads = o.threads;
    Ok(plan)
}

/// `url` and the extra endpoints, each a path (joined to `url`'s origin) or a URL.
pub(super) fn endpoints(url: &str, extra: &[String]) -> Result<Vec<String>> {
    let mut urls = vec![url.to_string()];
    let base = reqwest::Url::parse(url)
        .map_err(|e| Error::config(format!("url: {:?}: {e}", crate::secret::redact_url(url))))?;
    for e in extra {
        let u = if e.starts_with('/') {
            base.join(e)
                .map_err(|x| Error::config(format!("endpoints: {e:?}: {x}")))?
                .to_string()
        } else {
            e.clone()
        };
        urls.push(u);
    }
    Ok(urls)
}

/// `[load] thresholds` and the run's own.
pub(super) fn thresholds(env: &Environment, o: &LoadOptions) -> Result<Vec<Threshold>> {
    env.config
        .load
        .thresholds
        .iter()
        .chain(&o.thresholds)
        .map(|t| Threshold::parse(t).map_err(Error::config))
        .collect()
}

/// The plan in one line (what a dry run prints).
pub(super) fn describe(plan: &LoadPlan, urls: &[String]) -> String {
    let what = match &plan.mode {
        Mode::Open(s) if s.stages().len() > 1 => format!(
            "{} requests in {} stages over {}",
            s.total(),
            s.stages().len(),
            format_duration(plan.duration)
        ),
        Mode::Open(s) => format!("{}/s for {}", s.mean_rate(), format_duration(plan.duration)),
        Mode::Closed { requests } => format!("{} requests", requests.unwrap_or(0)),
    };
    let on = if plan.http2 {
        format!(
            "{} streams on {} HTTP/2 connections",
            plan.concurrency, plan.connections
        )
    } else {
        format!("{} connections", plan.concurrency)
    };
    let to = match urls {
        [one] => crate::secret::redact_url(one),
        [first, rest @ ..] => format!(
            "{} and {} more endpoints",
            crate::secret::redact_url(first),
            rest.len()
        ),
        [] => String::new(),
    };
    format!("{what} on {on} to {to}")
}
