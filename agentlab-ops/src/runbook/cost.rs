//! `cost_report`: the Monthly Infrastructure Review's `aws ce get-cost-and-usage` — a month's
//! cost, total and per service, against the month before, with the top movers.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::compute::CostPeriod;
use crate::environment::Environment;
use crate::error::Error;
use crate::report::{Report, Severity};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, month, parse_args,
};
use crate::runbook::run::{Checked, RunOptions};

/// Options of `cost_report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostOptions {
    /// The month, `YYYY-MM` (default: the last full month).
    pub month: Option<String>,
    /// Top movers listed (default `[cost] top`).
    pub top: Option<usize>,
}

impl Validate for CostOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(m) = &self.month {
            month::parse(m)?;
        }
        Ok(())
    }
}

/// One service's move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mover {
    /// Service (`Amazon Elastic Compute Cloud - Compute`).
    pub service: String,
    /// The month before.
    pub previous: f64,
    /// The month.
    pub current: f64,
    /// current − previous.
    pub change: f64,
    /// change ÷ previous (None when it is new).
    pub ratio: Option<f64>,
}

/// The payload of `cost_report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPayload {
    /// First day of the month.
    pub month: NaiveDate,
    /// Currency.
    pub unit: String,
    /// Its total.
    pub total: f64,
    /// The month before's total.
    pub previous_total: Option<f64>,
    /// Month over month, as a share of the month before.
    pub change_ratio: Option<f64>,
    /// Every service, most expensive first.
    pub services: Vec<(String, f64)>,
    /// The largest moves, by absolute change.
    pub movers: Vec<Mover>,
    /// Whether the provider still estimates it.
    pub estimated: bool,
}

/// The movers between two months, largest absolute change first.
pub fn movers(prev: Option<&CostPeriod>, cur: &CostPeriod, top: usize) -> Vec<Mover> {
    let empty = Default::default();
    let p = prev.map_or(&empty, |p| &p.by_service);
    let mut names: Vec<&String> = cur.by_service.keys().chain(p.keys()).collect();
    names.sort();
    names.dedup();
    let mut v: Vec<Mover> = names
        .into_iter()
        .map(|s| {
            let (a, b) = (
                p.get(s).copied().unwrap_or(0.0),
                cur.by_service.get(s).copied().unwrap_or(0.0),
            );
            Mover {
                service: s.clone(),
                previous: a,
                current: b,
                change: b - a,
                ratio: (a > 0.0).then(|| (b - a) / a),
            }
        })
        .filter(|m| m.change.abs() > 0.005)
        .collect();
    v.sort_by(|x, y| y.change.abs().total_cmp(&x.change.abs()));
    v.truncate(top);
    v
}

/// The month's cost against the month before.
pub async fn cost_report(env: &Environment, o: &CostOptions, ro: &RunOptions) -> Report {
    env.execute("cost_report", ro, |run| async move {
        let src = env
            .costs
            .clone()
            .ok_or_else(|| Error::config("cost_report: no [cost] configured"))?;
        let c = env.config.cost.clone().unwrap_or_default();
        let month = match &o.month {
            Some(m) => month::parse(m).map_err(Error::config)?,
            None => month::last_full(env.clock.now()),
        };
        let (start, end) = (
            month - chrono::Months::new(1),
            month + chrono::Months::new(1),
        );
        let months = run
            .check(
                "get_cost_and_usage",
                Some(env.config.aws.timeout.0 * 4),
                async {
                    let m = src.monthly(start, end, &c.metric).await?;
                    Ok(Checked::pass(
                        m.clone(),
                        format!("{} months of {} by service", m.len(), c.metric),
                    ))
                },
            )
            .await?;
        let cur = months
            .iter()
            .find(|p| p.start == month)
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::NotFound,
                    format!("no cost data for {}", month.format("%Y-%m")),
                )
            })?;
        let prev = months.iter().find(|p| p.start == start);
        let payload = summarise(&cur, prev, o.top.unwrap_or(c.top));
        let top: Vec<String> = payload
            .movers
            .iter()
            .map(|m| format!("{} {:+.2}", m.service, m.change))
            .collect();
        let mom = payload
            .change_ratio
            .map(|r| format!(" ({:+.0}% month over month)", 100.0 * r))
            .unwrap_or_default();
        let line = format!(
            "{}: {:.2} {}{mom}; movers: {}",
            month.format("%Y-%m"),
            payload.total,
            payload.unit,
            top.join(", ")
        );
        run.record(
            "movers",
            crate::report::Action::Read,
            crate::report::Outcome::Pass,
            line,
        );
        judge(&run, &payload, c.alert_change);
        Ok(serde_json::to_value(&payload).unwrap_or_default())
    })
    .await
}

pub(crate) fn summarise(cur: &CostPeriod, prev: Option<&CostPeriod>, top: usize) -> CostPayload {
    let mut services: Vec<(String, f64)> = cur
        .by_service
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    services.sort_by(|a, b| b.1.total_cmp(&a.1));
    CostPayload {
        month: cur.start,
        unit: cur.unit.clone(),
        total: cur.total,
        previous_total: prev.map(|p| p.total),
        change_ratio: prev
            .filter(|p| p.total > 0.0)
            .map(|p| (cur.total - p.total) / p.total),
        services,
        movers: movers(prev, cur, top),
        estimated: cur.estimated,
    }
}

fn judge(run: &crate::runbook::run::Run, p: &CostPayload, alert: f64) {
    let m = p.month.format("%Y-%m");
    if let Some(r) = p.change_ratio.filter(|r| r.abs() >= alert) {
        run.finding(
            Severity::Warning,
            "cost",
            format!(
                "{m}: total {:.2} {} is {:+.0}% month over month",
                p.total,
                p.unit,
                100.0 * r
            ),
        );
    }
    for mv in &p.movers {
        match mv.ratio {
            None => run.finding(
                Severity::Info,
                &mv.service,
                format!("{m}: new, {:.2} {}", mv.current, p.unit),
            ),
            Some(r) if r.abs() >= alert => run.finding(
                Severity::Warning,
                &mv.service,
                format!(
                    "{m}: {:.2} → {:.2} {} ({:+.0}%)",
                    mv.previous,
                    mv.current,
                    p.unit,
                    100.0 * r
                ),
            ),
            _ => {}
        }
    }
}

/// `cost_report`.
pub static COST_REPORT: Definition = Definition {
    name: "cost_report",
    command: "cost report",
    aliases: &[],
    summary: "a month's cost (Cost Explorer): total and per service, month over month, the top movers",
    changes: false,
    steps: &[
        "get_cost_and_usage: the month and the one before, monthly, grouped by SERVICE",
        "movers: the largest changes per service; findings above [cost] alert_change",
    ],
    options: &[
        month::DOC,
        OptionDoc {
            name: "top",
            kind: "count",
            help: "top movers listed (default [cost] top)",
        },
    ],
    defaults: defaults_of::<CostOptions>,
    check_options: check_args::<CostOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: CostOptions = parse_args("cost_report", v)?;
            Ok(cost_report(env, &o, &run).await)
        })
    },
};
