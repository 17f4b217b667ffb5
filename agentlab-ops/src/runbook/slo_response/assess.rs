//! Step 1 and 2 of the SLO Violation Response: assess every SLO (budget left, burn rate per
//! window, how long the budget lasts at the current burn) and determine the zone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::Result;
use crate::report::Outcome;
use crate::runbook::run::{Checked, Run};
use crate::slo::{SloStatus, Zone};
use crate::units::format_duration;

use super::freeze::FreezeLevel;

/// The window whose burn rate is "the current burn" (the page rule's long window).
const CURRENT: &str = "1h";

/// One SLO, assessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloAssessment {
    /// The evaluation: counts, budget left, burn rates, alerts, zone and why.
    #[serde(flatten)]
    pub status: SloStatus,
    /// The burn rate over the last hour.
    pub current_burn: Option<f64>,
    /// How long the budget left lasts at the current burn (`None`: not burning, or gone).
    pub exhausted_in: Option<String>,
}

/// How long `remaining` (a fraction of the budget) lasts at burn rate `burn` over `period`:
/// at burn 1 the whole budget lasts exactly one period.
pub fn time_to_exhaustion(remaining: f64, burn: f64, period: Duration) -> Option<Duration> {
    (remaining > 0.0 && burn > 0.0 && burn.is_finite())
        .then(|| Duration::from_secs_f64(remaining * period.as_secs_f64() / burn))
}

fn assess(s: SloStatus, period: Duration) -> SloAssessment {
    let current_burn = s.burn_rates.get(CURRENT).copied().flatten();
    let exhausted_in = match (s.budget_remaining, current_burn) {
        (Some(r), Some(b)) => time_to_exhaustion(r, b, period).map(format_duration),
        _ => None,
    };
    SloAssessment {
        status: s,
        current_burn,
        exhausted_in,
    }
}

/// The zone of the whole service: red if any SLO is red, else yellow if any is yellow, else
/// inconclusive if any cannot be judged (never green on missing data), else green.
pub fn overall(slos: &[SloAssessment]) -> Zone {
    let has = |z: Zone| slos.iter().any(|s| s.status.zone == z);
    if slos.is_empty() {
        Zone::Inconclusive
    } else if has(Zone::Red) {
        Zone::Red
    } else if has(Zone::Yellow) {
        Zone::Yellow
    } else if has(Zone::Inconclusive) {
        Zone::Inconclusive
    } else {
        Zone::Green
    }
}

/// What the zone asks for: `Some(Some(level))` freeze at least that far, `Some(None)` back to
/// normal, `None` leave things as they are (the zone cannot be judged).
pub fn wanted(zone: Zone) -> Option<Option<FreezeLevel>> {
    match zone {
        Zone::Red => Some(Some(FreezeLevel::All)),
        Zone::Yellow => Some(Some(FreezeLevel::NonCritical)),
        Zone::Green => Some(None),
        Zone::Inconclusive => None,
    }
}

/// One line of why: `availability red (page burn: 1h and 5m above 14.4×)`.
pub fn reason_of(slos: &[SloAssessment]) -> String {
    slos.iter()
        .filter(|s| s.status.zone != Zone::Green)
        .map(|s| {
            format!(
                "{} {} ({})",
                s.status.name,
                s.status.zone.as_str(),
                s.status.reason
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The assessment, as a read step.
pub async fn assessment(env: &Environment, run: &Run, step: &str) -> Result<Vec<SloAssessment>> {
    let timeout = Some(env.config.thresholds.check_timeout.0);
    run.check(step, timeout, async {
        let data = env.slo_source.fetch().await?;
        let periods: std::collections::BTreeMap<&str, Duration> = env
            .config
            .slos
            .iter()
            .map(|c| (c.name.as_str(), c.period.0))
            .collect();
        let slos: Vec<SloAssessment> = env
            .slo_evaluator()
            .evaluate(&data)
            .into_iter()
            .map(|s| {
                let p = periods
                    .get(s.name.as_str())
                    .copied()
                    .unwrap_or(Duration::from_secs(30 * 86_400));
                assess(s, p)
            })
            .collect();
        let zone = overall(&slos);
        let outcome = match zone {
            Zone::Green => Outcome::Pass,
            Zone::Yellow => Outcome::Warn,
            Zone::Red => Outcome::Fail,
            Zone::Inconclusive => Outcome::Inconclusive,
        };
        let summary = slos.iter().map(line).collect::<Vec<_>>().join("; ");
        let summary = format!("{}: {summary}", zone.as_str());
        Ok(Checked::with(slos, outcome, summary))
    })
    .await
}

fn line(s: &SloAssessment) -> String {
    let left = s
        .status
        .budget_remaining
        .map_or("budget unknown".to_string(), |b| {
            format!("{:.1}% budget left", b * 100.0)
        });
    let burn = s
        .current_burn
        .map_or(String::new(), |b| format!(", burn {b:.2}× over {CURRENT}"));
    let gone = s
        .exhausted_in
        .as_ref()
        .map_or(String::new(), |t| format!(", gone in {t}"));
    format!(
        "{} {} ({left}{burn}{gone})",
        s.status.name,
        s.status.zone.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_lasts_a_period_at_burn_one() {
        let month = Duration::from_secs(30 * 86_400);
        assert_eq!(time_to_exhaustion(1.0, 1.0, month), Some(month));
        assert_eq!(
            time_to_exhaustion(0.5, 14.4, month),
            Some(Duration::from_secs_f64(0.5 * month.as_secs_f64() / 14.4))
        );
        assert_eq!(time_to_exhaustion(0.0, 3.0, month), None);
        assert_eq!(time_to_exhaustion(0.5, 0.0, month), None);
    }

    #[test]
    fn the_zone_of_the_service_is_the_worst_and_never_green_on_missing_data() {
        let s = |z: Zone| SloAssessment {
            status: SloStatus {
                zone: z,
                ..crate::slo::evaluate(&crate::slo::SloSpec::new("x", 0.999), None)
            },
            current_burn: None,
            exhausted_in: None,
        };
        assert_eq!(overall(&[s(Zone::Green), s(Zone::Red)]), Zone::Red);
        assert_eq!(
            overall(&[s(Zone::Inconclusive), s(Zone::Yellow)]),
            Zone::Yellow
        );
        assert_eq!(
            overall(&[s(Zone::Green), s(Zone::Inconclusive)]),
            Zone::Inconclusive
        );
        assert_eq!(overall(&[s(Zone::Green)]), Zone::Green);
        assert_eq!(overall(&[]), Zone::Inconclusive);
        assert_eq!(wanted(Zone::Inconclusive), None);
        assert_eq!(wanted(Zone::Green), Some(None));
    }
}
