//! Performance: the slowest endpoints of the period (Prometheus's request-duration histogram
//! when configured, else the service's own `/metrics/history` `endpoints`) and the error
//! templates of the period in each host's log (the log scanner).

use serde::{Deserialize, Serialize};

use super::capacity::History;
use super::{Period, Section};
use crate::environment::Environment;
use crate::logs::{Field, ScanOptions, scan_host};

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Path or handler.
    pub path: String,
    /// p95 latency, ms.
    pub p95_ms: f64,
    /// Requests in the period, when known.
    pub requests: Option<u64>,
}

/// One error template, over every host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorPattern {
    /// The template (`<*> ERROR request <*> failed: upstream timeout after <*>s`).
    pub template: String,
    /// Lines with it.
    pub count: u64,
    /// Hosts it was seen on.
    pub hosts: Vec<String>,
}

/// The performance section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfSection {
    /// Slowest first (None: no source).
    pub endpoints: Option<Vec<Endpoint>>,
    /// Where they came from, or why there are none.
    pub endpoints_source: String,
    /// Most frequent first (None: no log read).
    pub errors: Option<Vec<ErrorPattern>>,
    /// Logs read, or why none.
    pub errors_source: String,
}

fn parse_endpoints(body: &str) -> Option<Vec<Endpoint>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let a = v.get("endpoints")?.as_array()?;
    let mut out: Vec<Endpoint> = a
        .iter()
        .filter_map(|e| {
            Some(Endpoint {
                path: e.get("path")?.as_str()?.to_string(),
                p95_ms: e.get("p95_ms")?.as_f64().filter(|x| x.is_finite())?,
                requests: e.get("requests").and_then(|r| r.as_u64()),
            })
        })
        .collect();
    out.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
    Some(out)
}

async fn endpoints(
    env: &Environment,
    p: &Period,
    top: usize,
    history: Option<&History>,
) -> (Option<Vec<Endpoint>>, String) {
    if let Some(c) = env.config.prometheus.as_ref() {
        return match super::prom::slowest(c, p, top).await {
            Ok(v) => (
                Some(
                    v.into_iter()
                        .map(|(path, p95_ms)| Endpoint {
                            path,
                            p95_ms,
                            requests: None,
                        })
                        .collect(),
                ),
                format!(
                    "prometheus {}: http_request_duration_seconds p95",
                    c.url.as_str()
                ),
            ),
            Err(e) => (None, format!("prometheus: {e}")),
        };
    }
    let path = &env.config.service.history_path;
    match history {
        Some(History::Body(body)) => match parse_endpoints(body) {
            Some(mut v) => {
                v.truncate(top);
                (Some(v), format!("{path} endpoints"))
            }
            None => (
                None,
                format!("not configured: {path} has no endpoints and there is no [prometheus]"),
            ),
        },
        Some(History::Status(s)) => (None, format!("{path}: HTTP {s}")),
        Some(History::Failed(e)) => (None, format!("{path}: {e}")),
        None => (None, format!("{path} was not read")),
    }
}

async fn errors(env: &Environment, p: &Period, top: usize) -> (Option<Vec<ErrorPattern>>, String) {
    let file = env
        .config
        .review
        .log_file
        .clone()
        .unwrap_or_else(|| env.config.investigation.log_file.clone());
    if file.is_empty() || env.hosts.is_empty() {
        return (None, "not configured: no hosts or no log file".into());
    }
    let o = ScanOptions {
        pattern: env.config.investigation.pattern.clone(),
        top: Field::None,
        since: Some(p.start_instant()),
        until: Some(p.end_instant()),
        max_templates: 10_000,
        year: chrono::Datelike::year(&p.start) as u32,
        ..ScanOptions::default()
    };
    let mut all: Vec<ErrorPattern> = Vec::new();
    let (mut read, mut failed) = (Vec::new(), Vec::new());
    for h in &env.hosts {
        let path = crate::config::fill_host(&file, &h.config);
        match scan_host(h.host.as_ref(), &path, &o, None).await {
            Ok((rep, _)) => {
                read.push(format!("{}: {} lines", h.config.name, rep.lines));
                for t in rep.templates {
                    match all.iter_mut().find(|x| x.template == t.template) {
                        Some(x) => {
                            x.count += t.count;
                            x.hosts.push(h.config.name.clone());
                        }
                        None => all.push(ErrorPattern {
                            template: t.template,
                            count: t.count,
                            hosts: vec![h.config.name.clone()],
                        }),
                    }
                }
            }
            Err(e) => failed.push(format!("{}: {e}", h.config.name)),
        }
    }
    if read.is_empty() {
        return (None, format!("no log read: {}", failed.join("; ")));
    }
    all.sort_by(|a, b| b.count.cmp(&a.count).then(a.template.cmp(&b.template)));
    all.truncate(top);
    read.extend(failed.into_iter().map(|f| format!("unreadable {f}")));
    (Some(all), read.join(", "))
}

/// The performance section.
pub async fn gather(
    env: &Environment,
    p: &Period,
    history: Option<&History>,
) -> Section<PerfSection> {
    let top = env.config.review.top;
    let ((endpoints, endpoints_source), (errors, errors_source)) =
        futures::join!(endpoints(env, p, top, history), errors(env, p, top));
    if endpoints.is_none() && errors.is_none() {
        return Section::not_configured(format!("{endpoints_source}; {errors_source}"));
    }
    let mut note = Vec::new();
    if let Some(e) = endpoints.as_ref().and_then(|v| v.first()) {
        note.push(format!("slowest {} at p95 {:.0} ms", e.path, e.p95_ms));
    }
    if let Some(v) = &errors {
        let n: u64 = v.iter().map(|e| e.count).sum();
        note.push(format!("{n} error lines in the top {} templates", v.len()));
    }
    let s = PerfSection {
        endpoints,
        endpoints_source,
        errors,
        errors_source,
    };
    Section::ok(
        if note.is_empty() {
            "no data in the period".into()
        } else {
            note.join("; ")
        },
        s,
    )
}
