//! `[slo_response]`: what the SLO Violation Response does in each zone.

use super::*;

/// `[slo_response]`: the workflows paused per zone, the deploy freeze, paging and watching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SloResponseConfig {
    /// Workflows disabled in yellow and red (the non-critical deployments: `deploy.yml`).
    pub workflows: Vec<String>,
    /// More workflows disabled in red only (every deployment: `hotfix.yml`).
    pub red_workflows: Vec<String>,
    /// The deploy freeze, a JSON record kept on every host (placeholders allowed): the deploy
    /// runbooks' `deploy_freeze` gate reads it; yellow lets `critical` releases through.
    pub freeze_flag: String,
    /// Page through `[pagerduty]` in red (once: the page's key is kept in the freeze).
    pub page: bool,
    /// Severity of the page (`critical`, `error`, `warning`, `info`).
    pub page_severity: String,
    /// Tell `[notify]` (Slack) when the zone's measures start and end.
    pub notify: bool,
    /// Watch mode: re-evaluate this often.
    pub watch_interval: Dur,
    /// Watch mode: for this long.
    pub watch_for: Dur,
    /// Deadline of one run (watch mode adds `watch_for`).
    pub deadline: Dur,
}

impl Default for SloResponseConfig {
    fn default() -> Self {
        SloResponseConfig {
            workflows: vec!["deploy.yml".into()],
            red_workflows: Vec::new(),
            freeze_flag: "/app/DEPLOY_FREEZE".into(),
            page: true,
            page_severity: "critical".into(),
            notify: true,
            watch_interval: Dur(Duration::from_secs(300)),
            watch_for: Dur(Duration::from_secs(3600)),
            deadline: Dur(Duration::from_secs(600)),
        }
    }
}

impl SloResponseConfig {
    pub(super) fn check(&self) -> std::result::Result<(), (String, String)> {
        let sev = ["critical", "error", "warning", "info"];
        if !sev.contains(&self.page_severity.as_str()) {
            return Err((
                "slo_response.page_severity".into(),
                format!("{:?} is not one of {}", self.page_severity, sev.join(", ")),
            ));
        }
        if self.watch_interval.0.is_zero() {
            return Err((
                "slo_response.watch_interval".into(),
                "must be above 0".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let all = self.workflows.iter().chain(&self.red_workflows);
        for (i, w) in all.enumerate() {
            if w.trim().is_empty() || w.contains('/') {
                return Err((
                    format!("slo_response.workflows[{i}]"),
                    format!("{w:?} is not a workflow file name or id"),
                ));
            }
            if !seen.insert(w) {
                return Err((
                    "slo_response.red_workflows".into(),
                    format!("{w:?} is listed twice"),
                ));
            }
        }
        if self.freeze_flag.trim().is_empty() {
            return Err((
                "slo_response.freeze_flag".into(),
                "must not be empty".into(),
            ));
        }
        Ok(())
    }
}
