//! A team's own SLO recording rules (Sloth, Pyrra) beside our exact math: what the rules say,
//! and how far that is from the counts. The zone is always ours; the rules' numbers are shown
//! with the difference, because they can disagree for known reasons — Sloth's 30-day error
//! ratio is an unweighted mean of 5-minute ratios (slok/sloth#332), so a quiet night with a few
//! errors weighs as much as a busy day; Pyrra reads its own `increase()` rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::RulesKind;

/// Agreement within this many points of budget (0.01 = 1%).
pub const TOLERANCE: f64 = 0.01;

/// What the recording rules say about one SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Whose rules.
    pub kind: RulesKind,
    /// The objective the rules hold (`slo:objective:ratio`, `pyrra_objective`).
    pub objective: Option<f64>,
    /// Budget left over the period, as the rules compute it.
    pub budget_remaining: Option<f64>,
    /// Error ratio per window (`5m`, `1h`...), as recorded.
    pub error_ratios: BTreeMap<String, f64>,
    /// Series that were asked for and are absent.
    pub missing: Vec<String>,
}

/// One window: the rules' burn rate and ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowComparison {
    /// Theirs.
    pub rules: f64,
    /// Ours (None: we do not read that window).
    pub ours: Option<f64>,
}

/// The rules beside our math.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleComparison {
    /// Whose rules.
    pub kind: RulesKind,
    /// Budget left by the rules.
    pub budget_remaining: Option<f64>,
    /// The rules' budget left minus ours (points of budget: −0.4 is 40% less left).
    pub budget_difference: Option<f64>,
    /// Burn rate per window, theirs and ours.
    pub burn_rates: BTreeMap<String, WindowComparison>,
    /// Within [`TOLERANCE`] on the budget (false also when a side has no number).
    pub agrees: bool,
    /// Why they may differ, or what is missing.
    pub note: String,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Compare the rules' numbers with ours (`target` and `budget` ours; `burns` ours per window).
pub fn compare(
    rec: &Recorded,
    target: f64,
    ours_budget: Option<f64>,
    ours_burns: &BTreeMap<String, Option<f64>>,
) -> RuleComparison {
    let objective = rec.objective.unwrap_or(target);
    let budget = 1.0 - objective;
    let burn_rates = rec
        .error_ratios
        .iter()
        .map(|(w, r)| {
            let c = WindowComparison {
                rules: r / budget,
                ours: ours_burns.get(w).copied().flatten(),
            };
            (w.clone(), c)
        })
        .collect();
    let difference = match (rec.budget_remaining, ours_budget) {
        (Some(t), Some(o)) => Some(t - o),
        _ => None,
    };
    let agrees = difference.is_some_and(|d| d.abs() <= TOLERANCE);
    let mut notes = Vec::new();
    if !rec.missing.is_empty() {
        notes.push(format!("no series for {}", rec.missing.join(", ")));
    }
    if (objective - target).abs() > 1e-9 {
        notes.push(format!(
            "the rules hold {objective} where the config says {target}"
        ));
    }
    if let Some(d) = difference.filter(|_| !agrees) {
        let why = match rec.kind {
            RulesKind::Sloth => {
                "Sloth's period value is an unweighted mean of 5-minute ratios (slok/sloth#332): quiet hours weigh as much as busy ones"
            }
            RulesKind::Pyrra => "Pyrra's value comes from its own increase() rules over its window",
        };
        notes.push(format!(
            "{:+.1} points from our exact counts: {why}",
            d * 100.0
        ));
    }
    RuleComparison {
        kind: rec.kind,
        budget_remaining: rec.budget_remaining,
        budget_difference: difference,
        burn_rates,
        agrees,
        note: notes.join("; "),
    }
}

impl RuleComparison {
    /// `sloth rules: 12.0% left (−40.1 points: …)`, for the SLO's reason line.
    pub fn line(&self) -> String {
        let left = self
            .budget_remaining
            .map_or("no budget figure".into(), |b| format!("{} left", pct(b)));
        if self.note.is_empty() {
            format!("{} rules: {left}", self.kind.as_str())
        } else {
            format!("{} rules: {left} ({})", self.kind.as_str(), self.note)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(budget: Option<f64>) -> Recorded {
        Recorded {
            kind: RulesKind::Sloth,
            objective: Some(0.999),
            budget_remaining: budget,
            error_ratios: BTreeMap::from([("5m".to_string(), 0.002), ("3d".to_string(), 0.0005)]),
            missing: Vec::new(),
        }
    }

    #[test]
    fn agreement_and_disagreement_are_told_apart_with_the_reason() {
        let ours = BTreeMap::from([("5m".to_string(), Some(2.0))]);
        let c = compare(&rec(Some(0.605)), 0.999, Some(0.6), &ours);
        assert!(c.agrees, "{c:?}");
        assert!(c.note.is_empty());
        let c = compare(&rec(Some(0.2)), 0.999, Some(0.6), &ours);
        assert!(!c.agrees);
        assert!((c.budget_difference.unwrap() + 0.4).abs() < 1e-12);
        assert!(
            c.note.contains("-40.0 points") && c.note.contains("sloth#332"),
            "{}",
            c.note
        );
        let w = &c.burn_rates["5m"];
        assert!((w.rules - 2.0).abs() < 1e-9 && w.ours == Some(2.0), "{w:?}");
        assert_eq!(c.burn_rates["3d"].ours, None);
        // No number on one side is never agreement.
        let c = compare(&rec(None), 0.999, Some(0.6), &ours);
        assert!(!c.agrees);
    }

    #[test]
    fn a_different_objective_and_missing_series_are_noted() {
        let mut r = rec(Some(0.6));
        r.objective = Some(0.99);
        r.missing = vec!["slo:period_error_budget_remaining:ratio".into()];
        let c = compare(&r, 0.999, Some(0.6), &BTreeMap::new());
        assert!(
            c.note.contains("0.99 where the config says 0.999"),
            "{}",
            c.note
        );
        assert!(c.note.contains("no series for slo:period"), "{}", c.note);
        assert!(
            (c.burn_rates["5m"].rules - 0.2).abs() < 1e-9,
            "burn uses the rules' objective"
        );
    }
}
