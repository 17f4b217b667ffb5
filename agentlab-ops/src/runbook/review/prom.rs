//! The review's Prometheus queries: node_exporter's CPU, memory and disk per instance, one
//! instant query at the end of each day (each a day's average), and the slowest endpoints of
//! the period from the request-duration histogram.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt};

use super::Period;
use super::capacity::{ResourceSeries, series};
use crate::config::PrometheusConfig;
use crate::error::Result;
use crate::slo::PrometheusSloSource;

/// node_exporter's shares per instance, each over the day before the instant.
pub const QUERIES: [(&str, &str); 3] = [
    (
        "cpu",
        r#"1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1d]))"#,
    ),
    (
        "memory",
        "1 - avg by (instance) (avg_over_time(node_memory_MemAvailable_bytes[1d])) / avg by (instance) (avg_over_time(node_memory_MemTotal_bytes[1d]))",
    ),
    (
        "disk",
        r#"max by (instance) (1 - avg_over_time(node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"}[1d]) / avg_over_time(node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}[1d]))"#,
    ),
];

fn day_ends(p: &Period) -> Vec<(NaiveDate, DateTime<Utc>)> {
    (0..p.days())
        .map(|i| {
            let d = p.start + chrono::Duration::days(i);
            let end = (d + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or_default();
            (d, end)
        })
        .filter(|(_, end)| *end <= Utc::now())
        .collect()
}

/// Capacity per instance over the period.
pub async fn capacity(c: &PrometheusConfig, p: &Period, th: f64) -> Result<Vec<ResourceSeries>> {
    let src = PrometheusSloSource::from_config(c, &[])?;
    let ends = day_ends(p);
    let mut out = Vec::new();
    for (resource, q) in QUERIES {
        let answers: Vec<Result<(NaiveDate, Vec<crate::slo::PromSeries>)>> =
            stream::iter(ends.iter().copied())
                .map(|(d, at)| {
                    let src = &src;
                    async move { Ok((d, src.vector(q, at).await?)) }
                })
                .buffered(8)
                .collect()
                .await;
        let mut by: BTreeMap<String, Vec<(NaiveDate, f64)>> = BTreeMap::new();
        for a in answers {
            let (d, vs) = a?;
            for (labels, v) in vs {
                let host = labels
                    .get("instance")
                    .cloned()
                    .unwrap_or_else(|| "all".into());
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    by.entry(host).or_default().push((d, v));
                }
            }
        }
        out.extend(by.into_iter().map(|(h, pts)| series(&h, resource, pts, th)));
    }
    Ok(out)
}

/// The slowest endpoints of the period: p95 of `http_request_duration_seconds` per handler.
pub async fn slowest(c: &PrometheusConfig, p: &Period, top: usize) -> Result<Vec<(String, f64)>> {
    let src = PrometheusSloSource::from_config(c, &[])?;
    let q = format!(
        "topk({top}, histogram_quantile(0.95, sum by (le, handler) (increase(http_request_duration_seconds_bucket[{}d]))))",
        p.days()
    );
    let mut v: Vec<(String, f64)> = src
        .vector(&q, p.end_instant().min(Utc::now()))
        .await?
        .into_iter()
        .filter_map(|(l, v)| {
            Some((
                l.get("handler")?.clone(),
                v.filter(|x| x.is_finite())? * 1000.0,
            ))
        })
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(v)
}
