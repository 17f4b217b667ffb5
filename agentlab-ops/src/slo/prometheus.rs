//! SLI counts from Prometheus: for every window the evaluator reads (the period and the burn
//! rate alerts' windows), the configured `good` and `total` queries with `$window` filled, run
//! at one instant (`/api/v1/query?time=`) so every window ends at the same point. The counts
//! feed the same math as the service's own numbers. A window with no series, NaN or a negative
//! count has no traffic (`total = 0`): the evaluator calls the SLO inconclusive, never green.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use serde::Deserialize;

use crate::config::{BaseUrl, PrometheusConfig, RecordingRules, SliSourceKind, SloConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};
use crate::secret::Secret;
use crate::slo::{Counts, SliData, SloSource, alert_rules};
use crate::units::format_duration;

/// One objective's queries.
#[derive(Debug, Clone)]
struct Objective {
    name: String,
    target: f64,
    good: String,
    total: String,
    windows: Vec<Duration>,
    rules: Option<RecordingRules>,
}

/// Reads SLI counts from the Prometheus HTTP API.
#[derive(Debug, Clone)]
pub struct PrometheusSloSource {
    client: reqwest::Client,
    base: BaseUrl,
    policy: RetryPolicy,
    token: Option<Secret>,
    time: Option<DateTime<Utc>>,
    objectives: Vec<Objective>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// The windows an SLO's evaluation reads: its period and every alert rule's two windows.
pub fn windows_of(period: Duration) -> Vec<Duration> {
    let mut w: Vec<Duration> = alert_rules(period)
        .into_iter()
        .flat_map(|(_, long, short, _)| [long, short])
        .chain([period])
        .collect();
    w.sort();
    w.dedup();
    w
}

/// `2026-12-01T00:00:00Z` or `1796140800`.
fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(secs) = s.trim().parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| Error::config(format!("prometheus.time: {s:?} out of range")));
    }
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::config(format!("prometheus.time: {s:?}: {e}")))
}

/// One series of an instant vector: its labels (`__name__` included) and its value (None: NaN
/// or infinite).
/// One series of an instant query: its labels and value (None: NaN or absent).
pub type Series = (BTreeMap<String, String>, Option<f64>);

fn answer_of(body: &[u8], query: &str) -> Result<Data> {
    let bad = |m: String| Error::new(ErrorKind::InvalidResponse, m).with_context("query", query);
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "Prometheus answered something that is not its JSON: {e}"
        ))
    })?;
    if a.status != "success" {
        let why = a.error.unwrap_or_else(|| a.status.clone());
        return Err(bad(format!("Prometheus refused the query: {why}")));
    }
    a.data
        .ok_or_else(|| bad("Prometheus answered no data".into()))
}

fn value_of(v: &serde_json::Value, query: &str) -> Result<Option<f64>> {
    let bad = |m: String| Error::new(ErrorKind::InvalidResponse, m).with_context("query", query);
    let text = v
        .get(1)
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad(format!("a sample without a value: {v}")))?;
    let x: f64 = text
        .parse()
        .map_err(|_| bad(format!("value {text:?} is not a number")))?;
    Ok(x.is_finite().then_some(x))
}

/// Every series of an instant query.
fn series_of(body: &[u8], query: &str) -> Result<Vec<Series>> {
    let bad = |m: String| Error::new(ErrorKind::InvalidResponse, m).with_context("query", query);
    let d = answer_of(body, query)?;
    match d.result_type.as_str() {
        "scalar" => Ok(vec![(BTreeMap::new(), value_of(&d.result, query)?)]),
        "vector" => {
            let list = d
                .result
                .as_array()
                .ok_or_else(|| bad("a vector result that is not a list".into()))?;
            list.iter()
                .map(|one| {
                    let labels = one
                        .get("metric")
                        .and_then(|m| serde_json::from_value(m.clone()).ok())
                        .unwrap_or_default();
                    let v = one.get("value").unwrap_or(&serde_json::Value::Null);
                    Ok((labels, value_of(v, query)?))
                })
                .collect()
        }
        other => Err(bad(format!(
            "a {other} result; an instant value was expected"
        ))),
    }
}

/// The one value of an instant query; None for no series or NaN.
fn scalar_of(body: &[u8], query: &str) -> Result<Option<f64>> {
    let mut all = series_of(body, query)?;
    match all.len() {
        0 => Ok(None),
        1 => Ok(all.remove(0).1),
        n => Err(Error::new(
            ErrorKind::InvalidResponse,
            format!("the query gives {n} series; it must give one (wrap it in sum(...))"),
        )
        .with_context("query", query)),
    }
}

impl PrometheusSloSource {
    /// A source for the SLOs with `source = "prometheus"`.
    pub fn from_config(p: &PrometheusConfig, slos: &[SloConfig]) -> Result<Self> {
        let objectives = slos
            .iter()
            .filter(|s| s.source == SliSourceKind::Prometheus)
            .map(|s| Objective {
                name: s.name.clone(),
                target: s.target.0,
                good: s.good.clone().unwrap_or_default(),
                total: s.total.clone().unwrap_or_default(),
                windows: windows_of(s.period.0),
                rules: s.rules.clone(),
            })
            .collect();
        let client = reqwest::Client::builder()
            .user_agent(concat!("agentlab-ops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(p.timeout.0)
            .build()
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("HTTP client: {e}")))?;
        Ok(PrometheusSloSource {
            client,
            base: p.url.clone(),
            policy: RetryPolicy::new(p.attempts, p.timeout.0),
            token: p
                .token
                .as_ref()
                .map(|t| t.resolve("prometheus.token"))
                .transpose()?,
            time: p.time.as_deref().map(parse_time).transpose()?,
            objectives,
        })
    }

    /// The instant every query is evaluated at.
    fn at(&self) -> DateTime<Utc> {
        self.time.unwrap_or_else(Utc::now)
    }

    async fn instant(&self, query: &str, at: DateTime<Utc>) -> Result<Option<f64>> {
        scalar_of(&self.query(query, at).await?, query)
    }

    /// Every series of an instant query at the configured instant (now by default).
    pub async fn query_now(&self, query: &str) -> Result<Vec<Series>> {
        self.vector(query, self.at()).await
    }

    /// Every series of an instant query.
    pub async fn vector(&self, query: &str, at: DateTime<Utc>) -> Result<Vec<Series>> {
        series_of(&self.query(query, at).await?, query)
    }

    async fn query(&self, query: &str, at: DateTime<Utc>) -> Result<bytes::Bytes> {
        let time = at.timestamp().to_string();
        let params = [("query", query), ("time", time.as_str())];
        let url = reqwest::Url::parse_with_params(&self.base.join("/api/v1/query"), params)
            .map_err(|e| Error::config(format!("prometheus.url: {e}")))?;
        let body: bytes::Bytes = retry(&self.policy, "prometheus.query", || async {
            let mut req = self.client.get(url.clone());
            if let Some(t) = &self.token {
                req = req.bearer_auth(t.expose());
            }
            let who = format!("Prometheus at {}", self.base.join(""));
            let (status, bytes) = crate::probe::send(req, &who).await?;
            if status >= 500 {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("Prometheus answered HTTP {status}"),
                )
                .set_temporary(true));
            }
            if status >= 400 && status != 422 && status != 400 {
                return Err(Error::new(
                    ErrorKind::InvalidResponse,
                    format!("Prometheus answered HTTP {status}"),
                ));
            }
            Ok(bytes)
        })
        .await
        .map_err(|e| e.with_operation("slo.fetch").with_context("query", query))?;
        Ok(body)
    }

    async fn objective(&self, o: &Objective, at: DateTime<Utc>) -> Result<SliData> {
        let per_window = o.windows.iter().map(|w| async move {
            let win = format_duration(*w);
            let (g, t) = (
                o.good.replace("$window", &win),
                o.total.replace("$window", &win),
            );
            let (good, total) = futures::try_join!(self.instant(&g, at), self.instant(&t, at))?;
            let counts = match (good, total) {
                (Some(g), Some(t)) if t > 0.0 && g >= 0.0 => Counts {
                    good: g.round().min(t.round()) as u64,
                    total: t.round() as u64,
                },
                _ => Counts { good: 0, total: 0 },
            };
            Ok::<_, Error>((*w, counts))
        });
        // The team's rules are read at the same time as the counts, not after them.
        let rules = async {
            match &o.rules {
                Some(r) => Some(self.recorded(r, at).await),
                None => None,
            }
        };
        let (counts, recorded) = futures::join!(try_join_all(per_window), rules);
        let windows: BTreeMap<Duration, Counts> = counts?.into_iter().collect();
        Ok(SliData {
            name: o.name.clone(),
            target: Some(o.target),
            windows,
            recorded,
        })
    }
}

#[async_trait::async_trait]
impl SloSource for PrometheusSloSource {
    async fn fetch(&self) -> Result<Vec<SliData>> {
        let at = self.at();
        try_join_all(self.objectives.iter().map(|o| self.objective(o, at))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        let v = |s: &str| scalar_of(s.as_bytes(), "q");
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}"#;
        assert_eq!(v(one).unwrap(), Some(12.5));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(v(empty).unwrap(), None);
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(v(nan).unwrap(), None);
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert!(v(two).unwrap_err().to_string().contains("sum("));
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(v(err).unwrap_err().to_string().contains("parse error"));
        assert!(v("<html>").is_err());
    }

    #[test]
    fn the_windows_an_evaluation_reads() {
        let w: Vec<String> = windows_of(Duration::from_secs(30 * 86_400))
            .into_iter()
            .map(format_duration)
            .collect();
        assert_eq!(w, ["5m", "30m", "1h", "6h", "3d", "30d"]);
    }
}
