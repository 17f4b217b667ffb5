//! SLO math and the sources of SLI data.
//!
//! Pure functions first ([`evaluate`]): budget = 1 − target; burn rate = error ratio in a window
//! ÷ (1 − target); budget remaining = ((1−T) − (1 − good/total)) ÷ (1−T). Multiwindow burn-rate
//! alerts as in the Google SRE workbook: for a 30-day period, page when the 1h and 5m burn
//! rates both exceed 14.4, page when 6h and 30m both exceed 6, ticket when 3d and 6h both exceed
//! 1. (For other periods the same budget fractions — 2%, 5%, 10% — give the thresholds.)
//!
//! No data or too little traffic is [`Zone::Inconclusive`], never green.

mod prometheus;
mod recorded;
pub mod rules;
mod source;

pub use prometheus::{PrometheusSloSource, Series as PromSeries, windows_of};
pub use source::{
    CombinedSloSource, HttpSloSource, MemorySloSource, SloSource, from_config, parse_slo_json,
};

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{SloConfig, format_duration};

/// One objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloSpec {
    /// Name.
    pub name: String,
    /// Target ratio of good events (0.999).
    pub target: f64,
    /// Period (30 days).
    pub period: Duration,
    /// Fewer events than this in the period: inconclusive.
    pub min_events: u64,
}

impl SloSpec {
    /// A 30-day SLO with the default minimum of 100 events.
    pub fn new(name: impl Into<String>, target: f64) -> Self {
        SloSpec {
            name: name.into(),
            target,
            period: Duration::from_secs(30 * 86_400),
            min_events: 100,
        }
    }
    /// The error budget as a ratio (1 − target).
    pub fn budget(&self) -> f64 {
        1.0 - self.target
    }
}

impl From<&SloConfig> for SloSpec {
    fn from(c: &SloConfig) -> Self {
        SloSpec {
            name: c.name.clone(),
            target: c.target.0,
            period: c.period.0,
            min_events: c.min_events,
        }
    }
}

/// Good and total events in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Good events.
    pub good: u64,
    /// All events.
    pub total: u64,
}

impl Counts {
    /// Error ratio, `None` without traffic.
    pub fn error_ratio(&self) -> Option<f64> {
        (self.total > 0).then(|| 1.0 - self.good.min(self.total) as f64 / self.total as f64)
    }
}

/// SLI data for one objective: counts per window length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliData {
    /// Objective name.
    pub name: String,
    /// Target the service reports, if any (used when the config defines no SLOs).
    pub target: Option<f64>,
    /// Counts per window.
    pub windows: BTreeMap<Duration, Counts>,
    /// What the team's recording rules (Sloth, Pyrra) say, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<rules::Recorded>,
}

/// Page or ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Wake someone up.
    Page,
    /// Look at it during work hours.
    Ticket,
}

/// One multiwindow burn-rate rule and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnAlert {
    /// Page or ticket.
    pub severity: AlertSeverity,
    /// Long window (`1h`).
    pub long_window: String,
    /// Short window (`5m`).
    pub short_window: String,
    /// Burn-rate threshold both must exceed.
    pub threshold: f64,
    /// Burn rate in the long window.
    pub long_burn: Option<f64>,
    /// Burn rate in the short window.
    pub short_burn: Option<f64>,
    /// Both windows exceed the threshold.
    pub firing: bool,
    /// A window had no data.
    pub inconclusive: bool,
}

/// Error-budget zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    /// ≥ 50% budget left, no burn alert: normal operations.
    Green,
    /// Below 50% left or a ticket burn: slow down releases.
    Yellow,
    /// Budget exhausted or a page burn: reliability first.
    Red,
    /// No data or too little traffic.
    Inconclusive,
}

impl Zone {
    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Green => "green",
            Zone::Yellow => "yellow",
            Zone::Red => "red",
            Zone::Inconclusive => "inconclusive",
        }
    }
}

/// The state of one objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloStatus {
    /// Name.
    pub name: String,
    /// Target.
    pub target: f64,
    /// Period (`30d`).
    pub period: String,
    /// Events in the period.
    pub total: u64,
    /// Good events in the period.
    pub good: u64,
    /// Error ratio in the period.
    pub error_ratio: Option<f64>,
    /// Fraction of the budget left (negative when overspent).
    pub budget_remaining: Option<f64>,
    /// Burn rate per window.
    pub burn_rates: BTreeMap<String, Option<f64>>,
    /// The multiwindow alerts.
    pub alerts: Vec<BurnAlert>,
    /// The zone.
    pub zone: Zone,
    /// Why the zone is what it is.
    pub reason: String,
    /// The team's recording rules beside our math (the zone stays ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<rules::RuleComparison>,
}

/// The multiwindow rules: (severity, long, short, budget percent consumed in the long window).
pub fn alert_rules(period: Duration) -> Vec<(AlertSeverity, Duration, Duration, f64)> {
    let h = |n: u64| Duration::from_secs(n * 3600);
    let m = |n: u64| Duration::from_secs(n * 60);
    let rules = [
        (AlertSeverity::Page, h(1), m(5), 2.0),
        (AlertSeverity::Page, h(6), m(30), 5.0),
        (AlertSeverity::Ticket, h(72), h(6), 10.0),
    ];
    rules
        .into_iter()
        .map(|(s, l, sh, pct)| {
            // One rounding only, so a 30-day period gives exactly 14.4, 6 and 1.
            let threshold = (pct * period.as_secs() as f64) / (100.0 * l.as_secs() as f64);
            (s, l, sh, threshold)
        })
        .collect()
}

/// Burn rate of `counts` against `spec`.
pub fn burn_rate(spec: &SloSpec, counts: &Counts) -> Option<f64> {
    counts.error_ratio().map(|e| e / spec.budget())
}

/// Budget remaining for `counts` over the period.
pub fn budget_remaining(spec: &SloSpec, counts: &Counts) -> Option<f64> {
    counts
        .error_ratio()
        .map(|e| (spec.budget() - e) / spec.budget())
}

/// Evaluate an objective from counts alone: `period` over the spec's period, then shorter
/// `windows` for the burn rates (what the bindings' "SLO from counts" calls).
pub fn evaluate_counts(
    spec: &SloSpec,
    period: Counts,
    windows: impl IntoIterator<Item = (Duration, Counts)>,
) -> SloStatus {
    let mut w = BTreeMap::from([(spec.period, period)]);
    w.extend(windows);
    let data = SliData {
        name: spec.name.clone(),
        target: Some(spec.target),
        windows: w,
        recorded: None,
    };
    evaluate(spec, Some(&data))
}

/// The multiwindow alerts' state from the windows' counts.
fn burn_alerts(spec: &SloSpec, windows: &BTreeMap<Duration, Counts>) -> Vec<BurnAlert> {
    alert_rules(spec.period)
        .into_iter()
        .map(|(severity, long, short, threshold)| {
            let lb = windows.get(&long).and_then(|c| burn_rate(spec, c));
            let sb = windows.get(&short).and_then(|c| burn_rate(spec, c));
            BurnAlert {
                severity,
                long_window: format_duration(long),
                short_window: format_duration(short),
                threshold,
                long_burn: lb,
                short_burn: sb,
                firing: matches!((lb, sb), (Some(l), Some(s)) if l > threshold && s > threshold),
                inconclusive: lb.is_none() || sb.is_none(),
            }
        })
        .collect()
}

/// The zone and why: no data, too few events, exhausted or page burn (red), little budget or
/// ticket burn (yellow), else green.
fn zone_of(
    spec: &SloSpec,
    has_data: bool,
    period_counts: Option<Counts>,
    remaining: Option<f64>,
    alerts: &[BurnAlert],
) -> (Zone, String) {
    let total = period_counts.map_or(0, |c| c.total);
    let firing = |s: AlertSeverity| alerts.iter().find(|a| a.firing && a.severity == s);
    if !has_data {
        (
            Zone::Inconclusive,
            "no data from the SLI source".to_string(),
        )
    } else if period_counts.is_none() {
        (
            Zone::Inconclusive,
            format!("no counts for the {} window", format_duration(spec.period)),
        )
    } else if total < spec.min_events {
        (
            Zone::Inconclusive,
            format!(
                "{total} events in {}, fewer than {}",
                format_duration(spec.period),
                spec.min_events
            ),
        )
    } else if let Some(r) = remaining.filter(|r| *r <= 0.0) {
        (
            Zone::Red,
            format!("error budget exhausted ({:.1}% left)", r * 100.0),
        )
    } else if let Some(a) = firing(AlertSeverity::Page) {
        (
            Zone::Red,
            format!(
                "page burn: {} and {} above {}×",
                a.long_window, a.short_window, a.threshold
            ),
        )
    } else if let Some(r) = remaining.filter(|r| *r < 0.5) {
        (
            Zone::Yellow,
            format!("{:.1}% of the error budget left", r * 100.0),
        )
    } else if let Some(a) = firing(AlertSeverity::Ticket) {
        (
            Zone::Yellow,
            format!(
                "ticket burn: {} and {} above {}×",
                a.long_window, a.short_window, a.threshold
            ),
        )
    } else {
        (
            Zone::Green,
            format!(
                "{:.1}% of the error budget left",
                remaining.unwrap_or(1.0) * 100.0
            ),
        )
    }
}

/// Evaluate one objective from its data (`None`: the source has no data for it).
pub fn evaluate(spec: &SloSpec, data: Option<&SliData>) -> SloStatus {
    let empty = BTreeMap::new();
    let windows = data.map_or(&empty, |d| &d.windows);
    let period_counts = windows.get(&spec.period).copied();
    let mut burn_rates = BTreeMap::new();
    for (len, c) in windows {
        burn_rates.insert(format_duration(*len), burn_rate(spec, c));
    }
    let alerts = burn_alerts(spec, windows);
    let (total, good) = period_counts.map_or((0, 0), |c| (c.total, c.good.min(c.total)));
    let error_ratio = period_counts.and_then(|c| c.error_ratio());
    let remaining = period_counts.and_then(|c| budget_remaining(spec, &c));
    let (zone, reason) = zone_of(spec, data.is_some(), period_counts, remaining, &alerts);
    let rules = data
        .and_then(|d| d.recorded.as_ref())
        .map(|r| rules::compare(r, spec.target, remaining, &burn_rates));
    let reason = match &rules {
        Some(c) if !c.agrees => format!("{reason}; {}", c.line()),
        _ => reason,
    };
    SloStatus {
        name: spec.name.clone(),
        target: spec.target,
        period: format_duration(spec.period),
        total,
        good,
        error_ratio,
        budget_remaining: remaining,
        burn_rates,
        alerts,
        zone,
        reason,
        rules,
    }
}

/// Evaluates configured objectives against a [`SloSource`].
#[derive(Debug, Clone)]
pub struct SloEvaluator {
    specs: Vec<SloSpec>,
}

impl SloEvaluator {
    /// Evaluate these objectives. With none, every objective the source reports is evaluated
    /// with its own target over 30 days.
    pub fn new(specs: Vec<SloSpec>) -> Self {
        SloEvaluator { specs }
    }

    /// Evaluate the data.
    pub fn evaluate(&self, data: &[SliData]) -> Vec<SloStatus> {
        if self.specs.is_empty() {
            return data
                .iter()
                .map(|d| match d.target {
                    Some(t) if t > 0.0 && t < 1.0 => {
                        evaluate(&SloSpec::new(d.name.clone(), t), Some(d))
                    }
                    _ => SloStatus {
                        reason: "the source gives no valid target and none is configured".into(),
                        ..evaluate(&SloSpec::new(d.name.clone(), 0.999), None)
                    },
                })
                .collect();
        }
        self.specs
            .iter()
            .map(|s| evaluate(s, data.iter().find(|d| d.name == s.name)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(entries: &[(u64, u64, u64)]) -> BTreeMap<Duration, Counts> {
        entries
            .iter()
            .map(|&(secs, good, total)| (Duration::from_secs(secs), Counts { good, total }))
            .collect()
    }

    const M5: u64 = 300;
    const M30: u64 = 1800;
    const H1: u64 = 3600;
    const H6: u64 = 21_600;
    const D3: u64 = 259_200;
    const D30: u64 = 2_592_000;

    #[test]
    fn reference_thresholds_for_30d() {
        let r = alert_rules(Duration::from_secs(D30));
        let t: Vec<f64> = r.iter().map(|x| x.3).collect();
        assert_eq!(t, vec![14.4, 6.0, 1.0]);
        assert_eq!(r[0].1, Duration::from_secs(H1));
        assert_eq!(r[0].2, Duration::from_secs(M5));
        assert_eq!(r[2].0, AlertSeverity::Ticket);
    }

    #[test]
    fn budget_math() {
        let spec = SloSpec::new("a", 0.999);
        assert!((spec.budget() - 0.001).abs() < 1e-12);
        // 0.05% errors: half the budget left, burn rate 0.5.
        let c = Counts {
            good: 999_500,
            total: 1_000_000,
        };
        assert!((budget_remaining(&spec, &c).unwrap() - 0.5).abs() < 1e-9);
        assert!((burn_rate(&spec, &c).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(Counts { good: 0, total: 0 }.error_ratio(), None);
    }

    #[test]
    fn healthy_is_green() {
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[
                (M5, 1000, 1000),
                (M30, 6000, 6000),
                (H1, 12_000, 12_000),
                (H6, 72_000, 72_000),
                (D3, 863_900, 864_000),
                (D30, 8_639_000, 8_640_000),
            ]),
            recorded: None,
        };
        let s = evaluate(&SloSpec::new("a", 0.999), Some(&d));
        assert_eq!(s.zone, Zone::Green, "{}", s.reason);
        assert!(s.alerts.iter().all(|a| !a.firing));
    }

    #[test]
    fn page_burn_needs_both_windows() {
        // 2% errors in 1h and 5m: burn 20 > 14.4 → page; budget is still mostly there.
        let mut windows = w(&[
            (M5, 980, 1000),
            (H1, 11_760, 12_000),
            (M30, 6000, 6000),
            (H6, 72_000, 72_000),
            (D3, 864_000, 864_000),
            (D30, 8_639_000, 8_640_000),
        ]);
        let spec = SloSpec::new("a", 0.999);
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: windows.clone(),
            recorded: None,
        };
        let s = evaluate(&spec, Some(&d));
        assert_eq!(s.zone, Zone::Red, "{}", s.reason);
        assert!(s.alerts[0].firing);
        assert!(s.reason.contains("14.4"));
        // The short window has recovered: no page (the workbook's reset condition).
        windows.insert(
            Duration::from_secs(M5),
            Counts {
                good: 1000,
                total: 1000,
            },
        );
        let d = SliData {
            name: "a".into(),
            target: None,
            windows,
            recorded: None,
        };
        let s = evaluate(&spec, Some(&d));
        assert!(!s.alerts[0].firing);
        assert_eq!(s.zone, Zone::Green, "{}", s.reason);
    }

    #[test]
    fn ticket_burn_is_yellow_and_low_budget_is_yellow() {
        let spec = SloSpec::new("a", 0.999);
        // 3d and 6h at 0.15% errors: burn 1.5 > 1 → ticket.
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[
                (M5, 1000, 1000),
                (M30, 6000, 6000),
                (H1, 12_000, 12_000),
                (H6, 99_850, 100_000),
                (D3, 998_500, 1_000_000),
                (D30, 9_999_000, 10_000_000),
            ]),
            recorded: None,
        };
        let s = evaluate(&spec, Some(&d));
        assert_eq!(s.zone, Zone::Yellow, "{}", s.reason);
        assert!(s.alerts[2].firing);
        // 40% budget left, no burn.
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[(D30, 9_994_000, 10_000_000)]),
            recorded: None,
        };
        let s = evaluate(&spec, Some(&d));
        assert_eq!(s.zone, Zone::Yellow);
        assert!((s.budget_remaining.unwrap() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn exhausted_is_red() {
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[(D30, 9_980_000, 10_000_000)]),
            recorded: None,
        };
        let s = evaluate(&SloSpec::new("a", 0.999), Some(&d));
        assert_eq!(s.zone, Zone::Red);
        assert!(s.budget_remaining.unwrap() < 0.0);
    }

    #[test]
    fn no_data_or_little_traffic_is_inconclusive() {
        let spec = SloSpec::new("a", 0.999);
        assert_eq!(evaluate(&spec, None).zone, Zone::Inconclusive);
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[(D30, 50, 50)]),
            recorded: None,
        };
        let s = evaluate(&spec, Some(&d));
        assert_eq!(s.zone, Zone::Inconclusive);
        assert!(s.reason.contains("fewer than 100"));
        let d = SliData {
            name: "a".into(),
            target: None,
            windows: w(&[(H1, 5000, 5000)]),
            recorded: None,
        };
        assert_eq!(evaluate(&spec, Some(&d)).zone, Zone::Inconclusive);
    }

    #[test]
    fn evaluator_uses_source_targets_without_config() {
        let d = SliData {
            name: "latency".into(),
            target: Some(0.99),
            windows: w(&[(D30, 9_990, 10_000)]),
            recorded: None,
        };
        let out = SloEvaluator::new(vec![]).evaluate(&[d]);
        assert_eq!(out[0].target, 0.99);
        assert_eq!(out[0].zone, Zone::Green);
        let out = SloEvaluator::new(vec![SloSpec::new("missing", 0.999)]).evaluate(&[]);
        assert_eq!(out[0].zone, Zone::Inconclusive);
    }
}
