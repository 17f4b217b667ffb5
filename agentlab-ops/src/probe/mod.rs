//! `HealthProbe`: ask the service's HTTP endpoints how it is.
//!
//! A probe fetches one endpoint and returns the raw answer ([`ProbeResponse`]: status, latency,
//! body). [`assess`] turns an answer into a [`HealthStatus`]: HTTP status, the body's overall
//! status, and per-component status when the body lists components. Garbage (non-JSON, missing
//! fields) becomes a failed assessment with the reason, never a panic.

mod http;
mod memory;
pub mod tls;

pub use http::HttpProbe;
pub(crate) use http::send;
pub use memory::MemoryProbe;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The raw answer of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResponse {
    /// The URL asked (credentials scrubbed).
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Time to the full body.
    pub latency: Duration,
    /// The body as text (at most 64 KiB kept).
    pub body: String,
    /// Attempts made (1 when the first answered).
    pub attempts: u32,
}

/// Fetch health endpoints.
///
/// Contract: `get` returns `Ok` for any HTTP answer that is final (2xx, 3xx, 4xx), after
/// retrying temporary failures (5xx, connection errors, timeouts) per the backend's policy;
/// when they persist it returns the error (kind `unavailable` or `timeout`) with the URL and
/// attempts in the context. It never panics on a malformed answer.
#[async_trait::async_trait]
pub trait HealthProbe: Send + Sync + Debug {
    /// Fetch `path` (relative to the service base URL, or absolute).
    async fn get(&self, path: &str) -> Result<ProbeResponse>;
}

#[async_trait::async_trait]
impl<T: HealthProbe + ?Sized> HealthProbe for Arc<T> {
    async fn get(&self, path: &str) -> Result<ProbeResponse> {
        (**self).get(path).await
    }
}

#[async_trait::async_trait]
impl<T: HealthProbe + ?Sized> HealthProbe for Box<T> {
    async fn get(&self, path: &str) -> Result<ProbeResponse> {
        (**self).get(path).await
    }
}

/// Health of one component listed by `/health/detailed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentHealth {
    /// Component name.
    pub name: String,
    /// Status as reported.
    pub status: String,
    /// Whether that status counts as healthy.
    pub healthy: bool,
    /// Extra detail the service gave (message, latency...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The judgement of one health endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// URL asked.
    pub url: String,
    /// HTTP status.
    pub http_status: u16,
    /// Latency in milliseconds.
    pub latency_ms: u64,
    /// Overall status from the body (`ok`, `degraded`...), when present.
    pub status: Option<String>,
    /// Whether the endpoint counts as healthy.
    pub healthy: bool,
    /// Components, when the body lists them.
    pub components: Vec<ComponentHealth>,
    /// Why it is unhealthy.
    pub problems: Vec<String>,
}

const GOOD: &[&str] = &["ok", "healthy", "pass", "up", "green", "passing"];

fn status_is_good(s: &str) -> bool {
    GOOD.contains(&s.to_ascii_lowercase().as_str())
}

/// Judge an answer. `want_components`: the endpoint is the detailed one, so a body without a
/// component list is a problem.
pub fn assess(resp: &ProbeResponse, want_components: bool) -> HealthStatus {
    let mut h = HealthStatus {
        url: resp.url.clone(),
        http_status: resp.status,
        latency_ms: resp.latency.as_millis() as u64,
        status: None,
        healthy: true,
        components: Vec::new(),
        problems: Vec::new(),
    };
    if !(200..300).contains(&resp.status) {
        h.problems.push(format!("HTTP {}", resp.status));
    }
    match serde_json::from_str::<serde_json::Value>(&resp.body) {
        Err(_) => {
            let snippet: String = resp.body.chars().take(60).collect();
            h.problems
                .push(format!("body is not JSON: {:?}", snippet.trim()));
        }
        Ok(serde_json::Value::Object(map)) => {
            match map.get("status") {
                Some(serde_json::Value::String(s)) => {
                    if !status_is_good(s) {
                        h.problems.push(format!("status is {s:?}"));
                    }
                    h.status = Some(s.clone());
                }
                Some(serde_json::Value::Bool(b)) => {
                    if !b {
                        h.problems.push("status is false".into());
                    }
                    h.status = Some(b.to_string());
                }
                Some(other) => h
                    .problems
                    .push(format!("field \"status\" has an unexpected value {other}")),
                None => h.problems.push("body has no \"status\" field".into()),
            }
            let comps = map.get("components").or_else(|| map.get("checks"));
            match comps {
                Some(c) => match parse_components(c) {
                    Ok(list) => {
                        for comp in &list {
                            if !comp.healthy {
                                h.problems
                                    .push(format!("component {} is {}", comp.name, comp.status));
                            }
                        }
                        h.components = list;
                    }
                    Err(e) => h.problems.push(e),
                },
                None if want_components => h
                    .problems
                    .push("body lists no components (\"components\" or \"checks\")".into()),
                None => {}
            }
        }
        Ok(other) => h.problems.push(format!(
            "body is JSON but not an object: {}",
            other.to_string().chars().take(40).collect::<String>()
        )),
    }
    h.healthy = h.problems.is_empty();
    h
}

fn parse_components(v: &serde_json::Value) -> std::result::Result<Vec<ComponentHealth>, String> {
    let one =
        |name: String, v: &serde_json::Value| -> std::result::Result<ComponentHealth, String> {
            let (status, detail) = match v {
                serde_json::Value::String(s) => (s.clone(), None),
                serde_json::Value::Bool(b) => ((if *b { "ok" } else { "down" }).to_string(), None),
                serde_json::Value::Object(m) => {
                    let s = match m.get("status") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Bool(b)) => {
                            (if *b { "ok" } else { "down" }).to_string()
                        }
                        _ => return Err(format!("component {name} has no \"status\"")),
                    };
                    let d = m
                        .get("message")
                        .or_else(|| m.get("detail"))
                        .and_then(|d| d.as_str())
                        .map(str::to_string);
                    (s, d)
                }
                _ => return Err(format!("component {name} has an unexpected value")),
            };
            Ok(ComponentHealth {
                healthy: status_is_good(&status),
                name,
                status,
                detail,
            })
        };
    match v {
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| one(k.clone(), v)).collect(),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let name = v
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{i}"));
                one(name, v)
            })
            .collect(),
        _ => Err("\"components\" is neither an object nor a list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> ProbeResponse {
        ProbeResponse {
            url: "http://x/health".into(),
            status,
            latency: Duration::from_millis(3),
            body: body.into(),
            attempts: 1,
        }
    }

    #[test]
    fn healthy_body() {
        let h = assess(&resp(200, r#"{"status":"ok"}"#), false);
        assert!(h.healthy, "{:?}", h.problems);
    }

    #[test]
    fn components_in_both_shapes() {
        let h = assess(
            &resp(
                200,
                r#"{"status":"ok","components":{"db":{"status":"ok"},"llm":{"status":"degraded","message":"slow"}}}"#,
            ),
            true,
        );
        assert!(!h.healthy);
        assert_eq!(h.components.len(), 2);
        assert!(h.problems.iter().any(|p| p.contains("llm is degraded")));
        let h = assess(
            &resp(
                200,
                r#"{"status":"ok","checks":[{"name":"disk","status":"pass"}]}"#,
            ),
            true,
        );
        assert!(h.healthy, "{:?}", h.problems);
    }

    #[test]
    fn garbage_is_a_problem_not_a_panic() {
        for body in [
            "<html>oops</html>",
            "",
            "[1,2]",
            r#"{"uptime": 3}"#,
            r#"{"status": 7}"#,
            r#"{"status":"ok","components":42}"#,
            r#"{"status":"ok","components":{"db":[]}}"#,
        ] {
            let h = assess(&resp(200, body), true);
            assert!(!h.healthy, "{body}");
            assert!(!h.problems.is_empty());
        }
        assert!(
            assess(&resp(200, r#"{"status":"ok"}"#), true)
                .problems
                .iter()
                .any(|p| p.contains("no components"))
        );
        assert!(assess(&resp(500, r#"{"status":"ok"}"#), false).problems[0].contains("HTTP 500"));
    }
}
