//! Where SLI counts come from: the service's `/metrics/slo` JSON, or memory.
//!
//! The JSON accepted (windows keyed by duration, `good`/`total` counts):
//! ```json
//! {"slos": [{"name": "availability", "target": 0.999,
//!            "windows": {"5m": {"good": 998, "total": 1000}, "30d": {"good": 8639000, "total": 8640000}}}]}
//! ```
//! `slos` may also be an object keyed by name. Anything else is an `invalid_response` error
//! naming what was wrong.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use crate::config::parse_duration;
use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::probe::HealthProbe;
use crate::slo::{Counts, SliData};

/// A source of SLI counts.
///
/// Contract: `fetch` returns every objective the source knows with good/total counts per
/// window (`good <= total`); a source that cannot answer, or answers garbage, is an error
/// (`unavailable`, `invalid_response`), never empty counts that would read as healthy; no
/// traffic is `total = 0`, which the evaluator judges inconclusive.
#[async_trait::async_trait]
pub trait SloSource: Send + Sync + Debug {
    /// Current counts for every objective the source knows.
    async fn fetch(&self) -> Result<Vec<SliData>>;
}

#[async_trait::async_trait]
impl<T: SloSource + ?Sized> SloSource for Arc<T> {
    async fn fetch(&self) -> Result<Vec<SliData>> {
        (**self).fetch().await
    }
}

/// Reads `/metrics/slo` through a [`HealthProbe`] (so it shares its retries and timeouts).
#[derive(Debug, Clone)]
pub struct HttpSloSource {
    probe: Arc<dyn HealthProbe>,
    path: String,
}

impl HttpSloSource {
    /// Fetch `path` with `probe`.
    pub fn new(probe: Arc<dyn HealthProbe>, path: impl Into<String>) -> Self {
        HttpSloSource {
            probe,
            path: path.into(),
        }
    }
}

#[async_trait::async_trait]
impl SloSource for HttpSloSource {
    async fn fetch(&self) -> Result<Vec<SliData>> {
        let r = self.probe.get(&self.path).await?;
        if !(200..300).contains(&r.status) {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("HTTP {} from the SLO endpoint", r.status),
            )
            .with_operation("slo.fetch")
            .with_context("url", r.url));
        }
        parse_slo_json(&r.body)
            .map_err(|e| e.with_operation("slo.fetch").with_context("url", r.url))
    }
}

/// Parse the SLO JSON document.
pub fn parse_slo_json(body: &str) -> Result<Vec<SliData>> {
    let bad = |m: String| Error::new(ErrorKind::InvalidResponse, m);
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("SLO body is not JSON: {e}")))?;
    let slos = v
        .get("slos")
        .ok_or_else(|| bad("SLO body has no \"slos\" field".into()))?;
    let items: Vec<(String, &serde_json::Value)> = match slos {
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| bad(format!("slos[{i}] has no \"name\"")))?;
                Ok((name.to_string(), s))
            })
            .collect::<Result<_>>()?,
        serde_json::Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => return Err(bad("\"slos\" is neither a list nor an object".into())),
    };
    items
        .into_iter()
        .map(|(name, s)| {
            let target = match s.get("target") {
                None | Some(serde_json::Value::Null) => None,
                Some(t) => Some(
                    t.as_f64()
                        .ok_or_else(|| bad(format!("slo {name}: \"target\" is not a number")))?,
                ),
            };
            let wins = s
                .get("windows")
                .and_then(|w| w.as_object())
                .ok_or_else(|| bad(format!("slo {name}: no \"windows\" object")))?;
            let mut windows = BTreeMap::new();
            for (k, c) in wins {
                let len =
                    parse_duration(k).map_err(|e| bad(format!("slo {name}: window {k:?}: {e}")))?;
                let num = |f: &str| {
                    c.get(f).and_then(|x| x.as_u64()).ok_or_else(|| {
                        bad(format!(
                            "slo {name}: window {k}: \"{f}\" is missing or not a count"
                        ))
                    })
                };
                let (good, total) = (num("good")?, num("total")?);
                if good > total {
                    return Err(bad(format!(
                        "slo {name}: window {k}: good ({good}) exceeds total ({total})"
                    )));
                }
                windows.insert(len, Counts { good, total });
            }
            Ok(SliData {
                name,
                target,
                windows,
                recorded: None,
            })
        })
        .collect()
}

/// SLI counts held in memory: set them, inject faults, count calls.
#[derive(Debug, Clone, Default)]
pub struct MemorySloSource {
    data: Arc<Mutex<Vec<SliData>>>,
    /// One entry per fetch.
    pub calls: CallLog<()>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemorySloSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }
    /// Replace all data.
    pub fn set(&self, data: Vec<SliData>) {
        *self.data.lock().unwrap_or_else(|e| e.into_inner()) = data;
    }
    /// Set counts of one window of one objective.
    pub fn set_counts(&self, name: &str, window: std::time::Duration, good: u64, total: u64) {
        let mut d = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match d.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                d.push(SliData {
                    name: name.to_string(),
                    target: None,
                    windows: BTreeMap::new(),
                    recorded: None,
                });
                d.len() - 1
            }
        };
        d[idx].windows.insert(window, Counts { good, total });
    }
}

#[async_trait::async_trait]
impl SloSource for MemorySloSource {
    async fn fetch(&self) -> Result<Vec<SliData>> {
        self.calls.push(());
        self.faults.apply("slo.fetch").await?;
        Ok(self.data.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_and_map_forms() {
        let a = parse_slo_json(r#"{"slos":[{"name":"availability","target":0.999,"windows":{"5m":{"good":9,"total":10},"30d":{"good":99,"total":100}}}]}"#).unwrap();
        assert_eq!(a[0].windows.len(), 2);
        assert_eq!(a[0].target, Some(0.999));
        let b = parse_slo_json(r#"{"slos":{"latency":{"windows":{"1h":{"good":1,"total":1}}}}}"#)
            .unwrap();
        assert_eq!(b[0].name, "latency");
    }

    #[test]
    fn rejects_garbage_with_reasons() {
        for (body, why) in [
            ("nope", "not JSON"),
            ("{}", "no \"slos\""),
            (r#"{"slos":[{"windows":{}}]}"#, "no \"name\""),
            (
                r#"{"slos":[{"name":"a","windows":{"5x":{"good":1,"total":1}}}]}"#,
                "window \"5x\"",
            ),
            (
                r#"{"slos":[{"name":"a","windows":{"5m":{"good":1}}}]}"#,
                "\"total\"",
            ),
            (
                r#"{"slos":[{"name":"a","windows":{"5m":{"good":2,"total":1}}}]}"#,
                "exceeds",
            ),
        ] {
            let e = parse_slo_json(body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidResponse);
            assert!(e.to_string().contains(why), "{body}: {e}");
        }
    }
}

/// Several sources as one: each objective from the source that has it. A source that fails
/// does not hide the others: its objectives are missing (the evaluator says "no data" for
/// them) unless every source failed, then the first error is returned.
#[derive(Debug, Clone)]
pub struct CombinedSloSource {
    sources: Vec<Arc<dyn SloSource>>,
}

impl CombinedSloSource {
    /// The sources, asked at once.
    pub fn new(sources: Vec<Arc<dyn SloSource>>) -> Self {
        CombinedSloSource { sources }
    }
}

#[async_trait::async_trait]
impl SloSource for CombinedSloSource {
    async fn fetch(&self) -> Result<Vec<SliData>> {
        let all = futures::future::join_all(self.sources.iter().map(|s| s.fetch())).await;
        let mut data = Vec::new();
        let mut first_err = None;
        for r in all {
            match r {
                Ok(d) => data.extend(d),
                Err(e) => {
                    tracing::warn!(error = %e, "an SLO source failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if data.is_empty() => Err(e),
            _ => Ok(data),
        }
    }
}

/// The SLO source for a config: the service's `/metrics/slo` for SLOs with `source =
/// "service"` (and when none is configured), Prometheus for those with `source =
/// "prometheus"`, both combined when the config has both.
pub fn from_config(
    config: &crate::config::Config,
    probe: Arc<dyn HealthProbe>,
) -> Result<Arc<dyn SloSource>> {
    use crate::config::SliSourceKind;
    let service: Arc<dyn SloSource> =
        Arc::new(HttpSloSource::new(probe, config.service.slo_path.clone()));
    let prom_slos = config
        .slos
        .iter()
        .filter(|s| s.source == SliSourceKind::Prometheus)
        .count();
    if prom_slos == 0 {
        return Ok(service);
    }
    let p = config
        .prometheus
        .as_ref()
        .ok_or_else(|| Error::config("slo: source = \"prometheus\" needs [prometheus]"))?;
    let prom: Arc<dyn SloSource> =
        Arc::new(super::PrometheusSloSource::from_config(p, &config.slos)?);
    if prom_slos == config.slos.len() {
        return Ok(prom);
    }
    Ok(Arc::new(CombinedSloSource::new(vec![service, prom])))
}
