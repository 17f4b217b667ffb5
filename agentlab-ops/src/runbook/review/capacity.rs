//! Capacity: CPU, memory and disk over the period — from the service's `/metrics/history`
//! (the whole service under `resources.last_30_days`, per host under `resources.hosts`) or
//! from Prometheus range queries over node_exporter's metrics — each with a least-squares
//! trend and the date it would cross its threshold at that trend.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Period, Section};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};

/// The resources, in the order they are charted.
pub const RESOURCES: [&str; 3] = ["cpu", "memory", "disk"];

/// A resource's use over the period, on one host or the whole service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSeries {
    /// `service`, or a host's name.
    pub subject: String,
    /// `cpu`, `memory` or `disk`.
    pub resource: String,
    /// One share (0..1) per day.
    pub points: Vec<(NaiveDate, f64)>,
    /// Mean over the period.
    pub mean: f64,
    /// The last day's value.
    pub last: f64,
    /// Trend, share per day (least squares).
    pub slope_per_day: f64,
    /// The day the trend reaches the threshold (None: flat or falling, or beyond 3 years).
    pub crosses_on: Option<NaiveDate>,
    /// Already at or over the threshold on the trend's last day.
    pub over: bool,
}

/// The capacity section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Where the numbers came from.
    pub source: String,
    /// The threshold (`[thresholds] resource_max`).
    pub threshold: f64,
    /// Every series.
    pub series: Vec<ResourceSeries>,
}

/// Least squares over (day index, value): (intercept, slope). Two lines of arithmetic, not
/// worth a statistics crate.
pub fn linear_fit(ys: &[f64]) -> (f64, f64) {
    let n = ys.len() as f64;
    if ys.len() < 2 {
        return (ys.first().copied().unwrap_or(0.0), 0.0);
    }
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - slope * mx, slope)
}

/// A series with its trend and crossing date.
pub fn series(
    subject: &str,
    resource: &str,
    points: Vec<(NaiveDate, f64)>,
    th: f64,
) -> ResourceSeries {
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (a, b) = linear_fit(&ys);
    let last_fit = a + b * (ys.len().saturating_sub(1)) as f64;
    let last_day = points.last().map(|p| p.0);
    let over = last_fit >= th;
    let crosses_on = match last_day {
        Some(d) if !over && b > 1e-9 => {
            let days = ((th - last_fit) / b - 1e-6).ceil();
            (days <= 3.0 * 365.0).then(|| d + chrono::Duration::days(days as i64))
        }
        _ => None,
    };
    ResourceSeries {
        subject: subject.into(),
        resource: resource.into(),
        mean: if ys.is_empty() {
            0.0
        } else {
            ys.iter().sum::<f64>() / ys.len() as f64
        },
        last: ys.last().copied().unwrap_or(0.0),
        slope_per_day: b,
        crosses_on,
        over,
        points,
    }
}

fn bad(m: String) -> Error {
    Error::new(ErrorKind::InvalidResponse, format!("/metrics/history: {m}"))
}

/// One share per day.
pub type Days = Vec<(NaiveDate, f64)>;

/// The days of one array of `/metrics/history` inside the period, per resource.
fn days_of(days: &[serde_json::Value], p: &Period, at: &str) -> Result<Vec<(String, Days)>> {
    let mut out: Vec<(String, Days)> = RESOURCES
        .iter()
        .map(|r| (r.to_string(), Vec::new()))
        .collect();
    for (i, d) in days.iter().enumerate() {
        let date = d
            .get("date")
            .and_then(|x| x.as_str())
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .ok_or_else(|| bad(format!("{at}[{i}]: no date (YYYY-MM-DD)")))?;
        if !p.contains_day(date) {
            continue;
        }
        for (r, v) in out.iter_mut() {
            let x = d
                .get(r.as_str())
                .and_then(|x| x.as_f64())
                .filter(|x| x.is_finite() && (0.0..=10.0).contains(x))
                .ok_or_else(|| bad(format!("{at}[{i}] ({date}): {r} is not a share")))?;
            v.push((date, x));
        }
    }
    Ok(out)
}

/// Parse `/metrics/history` into series inside the period.
pub fn parse_history(body: &str, p: &Period, th: f64) -> Result<Vec<ResourceSeries>> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let res = v
        .get("resources")
        .ok_or_else(|| bad("no resources".into()))?;
    let mut arrays: Vec<(String, &Vec<serde_json::Value>)> = Vec::new();
    // Per host when the service has it, else the whole service's.
    let hosts = res.get("hosts").and_then(|h| h.as_object());
    if let Some(a) = res
        .get("last_30_days")
        .and_then(|a| a.as_array())
        .filter(|_| hosts.is_none())
    {
        arrays.push(("service".into(), a));
    }
    if let Some(hosts) = hosts {
        for (h, a) in hosts {
            let a = a
                .as_array()
                .ok_or_else(|| bad(format!("resources.hosts.{h} is not a list")))?;
            arrays.push((h.clone(), a));
        }
    }
    if arrays.is_empty() {
        return Err(bad("no resources.last_30_days nor resources.hosts".into()));
    }
    let mut out = Vec::new();
    for (subject, a) in arrays {
        for (r, pts) in days_of(a, p, &format!("resources.{subject}"))? {
            if !pts.is_empty() {
                out.push(series(&subject, &r, pts, th));
            }
        }
    }
    Ok(out)
}

/// The service's `/metrics/history` answer, read once for the sections that use it.
#[derive(Debug)]
pub enum History {
    /// A 200's body.
    Body(String),
    /// Another status.
    Status(u16),
    /// No answer.
    Failed(Error),
}

/// Read `/metrics/history?days=N` back to the period's start; None with `[prometheus]`, which
/// then answers for capacity and endpoints.
pub async fn fetch_history(env: &Environment, p: &Period) -> Option<History> {
    if env.config.prometheus.is_some() {
        return None;
    }
    let days = (env.clock.now().date_naive() - p.start).num_days().max(1) + 1;
    let path = format!("{}?days={days}", env.config.service.history_path);
    Some(match env.probe.get(&path).await {
        Ok(r) if r.status == 200 => History::Body(r.body),
        Ok(r) => History::Status(r.status),
        Err(e) => History::Failed(e),
    })
}

/// The capacity section: Prometheus when configured, else `/metrics/history`.
pub async fn gather(env: &Environment, p: &Period, history: Option<&History>) -> Section<Capacity> {
    let th = env.config.thresholds.resource_max.0;
    let history = match (env.config.prometheus.as_ref(), history) {
        (Some(prom), _) => {
            return match super::prom::capacity(prom, p, th).await {
                Ok(series) => {
                    with_series(format!("prometheus {}", prom.url.as_str()), th, series, p)
                }
                Err(e) => Section::failed(format!("prometheus: {e}")),
            };
        }
        (None, Some(h)) => h,
        (None, None) => return Section::failed("/metrics/history was not read"),
    };
    let got = match history {
        History::Body(body) => parse_history(body, p, th),
        History::Status(s) => Err(bad(format!("HTTP {s}"))),
        History::Failed(e) => return Section::failed(e.to_string()),
    };
    match got {
        Ok(series) => with_series(env.config.service.history_path.clone(), th, series, p),
        Err(e) => Section::failed(e.to_string()),
    }
}

fn with_series(
    source: String,
    th: f64,
    series: Vec<ResourceSeries>,
    p: &Period,
) -> Section<Capacity> {
    if series.is_empty() {
        return Section::no_data(format!("{source}: no day inside {}", p.label));
    }
    let days = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let worst: Vec<String> = series
        .iter()
        .filter_map(|s| {
            match (
                s.over,
                s.crosses_on.filter(|d| (*d - p.end).num_days() <= 365),
            ) {
                (true, _) => Some(format!(
                    "{} {} over {:.0}%",
                    s.subject,
                    s.resource,
                    th * 100.0
                )),
                (false, Some(d)) => Some(format!(
                    "{} {} reaches {:.0}% on {d}",
                    s.subject,
                    s.resource,
                    th * 100.0
                )),
                _ => None,
            }
        })
        .collect();
    let note = if worst.is_empty() {
        format!(
            "{days} of {} days; no resource reaches {:.0}% within a year at its trend",
            p.days(),
            th * 100.0
        )
    } else {
        format!("{days} of {} days; {}", p.days(), worst.join("; "))
    };
    Section::ok(
        note,
        Capacity {
            source,
            threshold: th,
            series,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_is_exact_on_a_line_and_the_crossing_follows() {
        let (a, b) = linear_fit(&[0.5, 0.52, 0.54, 0.56]);
        assert!((a - 0.5).abs() < 1e-9 && (b - 0.02).abs() < 1e-9);
        let d0 = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let pts: Vec<_> = (0..30)
            .map(|i| (d0 + chrono::Duration::days(i), 0.60 + 0.01 * i as f64))
            .collect();
        let s = series("web-2", "disk", pts, 0.95);
        // 0.89 on Nov 30, +0.01 a day: 0.95 six days later.
        assert_eq!(s.crosses_on, NaiveDate::from_ymd_opt(2026, 12, 6));
        assert!(!s.over);
        let flat = series(
            "web-1",
            "cpu",
            vec![(d0, 0.3), (d0 + chrono::Duration::days(1), 0.3)],
            0.9,
        );
        assert_eq!(flat.crosses_on, None);
    }

    #[test]
    fn garbage_history_names_the_day_and_field() {
        let p = Period::month(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        let body = r#"{"resources":{"last_30_days":[{"date":"2026-11-03","cpu":0.3,"memory":"x","disk":0.4}]}}"#;
        let e = parse_history(body, &p, 0.85).unwrap_err().to_string();
        assert!(e.contains("2026-11-03") && e.contains("memory"), "{e}");
        assert!(parse_history("<html>", &p, 0.85).is_err());
    }
}
