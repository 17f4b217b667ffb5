//! Reading a team's Sloth or Pyrra recording rules from Prometheus, at the same instant as the
//! counts: the budget left as the rules compute it, their objective and their error ratio per
//! window. A series that is absent is listed as missing, never taken as zero.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{RecordingRules, RulesKind};
use crate::error::Result;

use super::prometheus::PrometheusSloSource;
use super::rules::Recorded;

/// The one value of `query`, or why there is none (for `missing`).
async fn one(
    src: &PrometheusSloSource,
    query: String,
    at: DateTime<Utc>,
) -> std::result::Result<f64, String> {
    match src.vector(&query, at).await {
        Err(e) => Err(format!("{query} ({e})")),
        Ok(v) => match v.as_slice() {
            [] | [(_, None)] => Err(query),
            [(_, Some(x))] => Ok(*x),
            many => Err(format!(
                "{query} ({} series: the name is not unique)",
                many.len()
            )),
        },
    }
}

/// Error ratio per window from `{__name__=~"<prefix>.+", <label>="<slo>"}`, the window read from
/// `window_label` when the rules set it, else from the name after `prefix`.
async fn per_window(
    src: &PrometheusSloSource,
    prefix: &str,
    selector: &str,
    window_label: Option<&str>,
    at: DateTime<Utc>,
) -> Result<BTreeMap<String, f64>> {
    let q = format!("{{__name__=~\"{}.+\",{selector}}}", regex_escape(prefix));
    let mut out = BTreeMap::new();
    for (labels, v) in src.vector(&q, at).await? {
        let name = labels
            .get("__name__")
            .map(String::as_str)
            .unwrap_or_default();
        let w = window_label
            .and_then(|l| labels.get(l).cloned())
            .or_else(|| name.strip_prefix(prefix).map(str::to_string));
        if let (Some(w), Some(v)) = (w, v) {
            out.insert(w, v);
        }
    }
    Ok(out)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".+*?()[]{}|^$\\".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

impl PrometheusSloSource {
    /// What the rules say about one SLO at `at`.
    pub(super) async fn recorded(&self, r: &RecordingRules, at: DateTime<Utc>) -> Recorded {
        let mut rec = Recorded {
            kind: r.kind,
            objective: None,
            budget_remaining: None,
            error_ratios: BTreeMap::new(),
            missing: Vec::new(),
        };
        let slo = &r.slo;
        let (ratios, objective, budget) = match r.kind {
            RulesKind::Sloth => {
                let sel = format!("sloth_slo=\"{slo}\"");
                let ratios = per_window(
                    self,
                    "slo:sli_error:ratio_rate",
                    &sel,
                    Some("sloth_window"),
                    at,
                );
                let obj = one(self, format!("slo:objective:ratio{{{sel}}}"), at);
                let left = one(
                    self,
                    format!("slo:period_error_budget_remaining:ratio{{{sel}}}"),
                    at,
                );
                let (r, o, l) = futures::join!(ratios, obj, left);
                (r, o, l)
            }
            RulesKind::Pyrra => {
                let sel = format!("slo=\"{slo}\"");
                let metric = r.metric.clone().unwrap_or_default();
                let prefix = format!("{metric}:burnrate");
                let ratios = per_window(self, &prefix, &sel, None, at);
                let obj = one(self, format!("pyrra_objective{{{sel}}}"), at);
                let avail = one(self, format!("pyrra_availability{{{sel}}}"), at);
                let (r, o, a) = futures::join!(ratios, obj, avail);
                let left = match (&o, a) {
                    (Ok(o), Ok(a)) => Ok((a - o) / (1.0 - o)),
                    (_, Err(m)) => Err(m),
                    (Err(_), Ok(_)) => Err("pyrra_objective (needed for the budget)".into()),
                };
                (r, o, left)
            }
        };
        match ratios {
            Ok(m) if !m.is_empty() => rec.error_ratios = m,
            Ok(_) => rec.missing.push(format!("the error ratios of {slo}")),
            Err(e) => rec.missing.push(format!("the error ratios of {slo} ({e})")),
        }
        match objective {
            Ok(o) => rec.objective = Some(o),
            Err(m) => rec.missing.push(m),
        }
        match budget {
            Ok(b) => rec.budget_remaining = Some(b),
            Err(m) => rec.missing.push(m),
        }
        rec
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(
            super::regex_escape("slo:sli_error:ratio_rate"),
            "slo:sli_error:ratio_rate"
        );
        assert_eq!(super::regex_escape("a.b"), "a\\.b");
    }
}
