//! `[[slo]]`, `[prometheus]`, `[alertmanager]` and `[pagerduty]`: the objectives and the
//! observability sources they and the alert reviews read.

use super::*;

/// `[[slo]]`: one service level objective.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SloConfig {
    /// Name, matching the name in the service's SLO JSON.
    pub name: String,
    /// Target ratio of good events, strictly between 0 and 1 (e.g. 0.999).
    pub target: Target,
    /// The SLO period.
    #[serde(default = "d_period")]
    pub period: Dur,
    /// Fewer events than this in the period makes the SLO `inconclusive`.
    #[serde(default = "d_min_events")]
    pub min_events: u64,
    /// Where its counts come from: the service's `/metrics/slo` (default) or `[prometheus]`.
    #[serde(default)]
    pub source: SliSourceKind,
    /// Prometheus: good events over `$window` (e.g.
    /// `sum(increase(http_requests_total{code!~"5.."}[$window]))`).
    #[serde(default)]
    pub good: Option<String>,
    /// Prometheus: all events over `$window`.
    #[serde(default)]
    pub total: Option<String>,
    /// The team's Sloth or Pyrra recording rules for this SLO: read beside our own math and
    /// reported with the difference (the zone stays ours).
    #[serde(default)]
    pub rules: Option<RecordingRules>,
}

/// `[slo.rules]`: where a team's SLO recording rules are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RecordingRules {
    /// `sloth` or `pyrra`.
    pub kind: RulesKind,
    /// The SLO's name in the rules: Sloth's `sloth_slo` label, Pyrra's `slo` label.
    pub slo: String,
    /// Pyrra: the recording rules' prefix (`http_requests` for `http_requests:burnrate5m`).
    #[serde(default)]
    pub metric: Option<String>,
}

impl RecordingRules {
    pub(super) fn check(&self) -> std::result::Result<(), (String, String)> {
        let label_safe = |v: &str| !v.is_empty() && !v.contains(['"', '\\', '\n']);
        if !label_safe(&self.slo) {
            return Err(("slo".into(), format!("{:?} is not a label value", self.slo)));
        }
        match (&self.kind, &self.metric) {
            (RulesKind::Pyrra, None) => Err((
                "metric".into(),
                "required with kind = \"pyrra\" (the prefix of <metric>:burnrate5m)".into(),
            )),
            (RulesKind::Pyrra, Some(m))
                if !m
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') =>
            {
                Err(("metric".into(), format!("{m:?} is not a metric name")))
            }
            _ => Ok(()),
        }
    }
}

/// Whose recording rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RulesKind {
    /// Sloth: `slo:sli_error:ratio_rate<w>`, `slo:period_error_budget_remaining:ratio`.
    Sloth,
    /// Pyrra: `<metric>:burnrate<w>`, `pyrra_availability`, `pyrra_objective`.
    Pyrra,
}

impl RulesKind {
    /// `sloth` or `pyrra`.
    pub fn as_str(self) -> &'static str {
        match self {
            RulesKind::Sloth => "sloth",
            RulesKind::Pyrra => "pyrra",
        }
    }
}

/// Where an SLO's counts come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliSourceKind {
    /// The service's own `/metrics/slo` JSON.
    #[default]
    Service,
    /// Raw counters in Prometheus, with our own math (`good`/`total` queries).
    Prometheus,
}

/// `[prometheus]`: the Prometheus HTTP API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PrometheusConfig {
    /// `http://prometheus:9090`.
    pub url: BaseUrl,
    /// Timeout of one query.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
    /// Attempts per query (temporary failures are retried).
    #[serde(default = "d_attempts")]
    pub attempts: u32,
    /// Evaluate at this instant (RFC 3339 or Unix seconds) instead of now: a fixed point for
    /// reviews and tests.
    #[serde(default)]
    pub time: Option<String>,
    /// Bearer token.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

/// `[alertmanager]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertmanagerConfig {
    /// `http://alertmanager:9093`.
    pub url: BaseUrl,
    /// Timeout of one call.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
    /// Attempts per call.
    #[serde(default = "d_attempts")]
    pub attempts: u32,
}

/// `[pagerduty]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PagerDutyConfig {
    /// REST API.
    #[serde(default = "d_pd_api")]
    pub api_url: BaseUrl,
    /// Events API.
    #[serde(default = "d_pd_events")]
    pub events_url: BaseUrl,
    /// REST API token (`${PAGERDUTY_TOKEN}`), to read incidents.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Events v2 routing key of the service (`${PAGERDUTY_ROUTING_KEY}`), to page.
    #[serde(default)]
    pub routing_key: Option<SecretRef>,
    /// Timeout of one call.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
}

fn d_pd_api() -> BaseUrl {
    BaseUrl::parse("https://api.pagerduty.com").expect("static URL")
}
fn d_pd_events() -> BaseUrl {
    BaseUrl::parse("https://events.pagerduty.com").expect("static URL")
}

fn d_period() -> Dur {
    Dur(Duration::from_secs(30 * 86_400))
}
fn d_min_events() -> u64 {
    100
}

impl SloConfig {
    /// A 30-day objective.
    pub fn new(name: impl Into<String>, target: f64) -> Self {
        SloConfig {
            name: name.into(),
            target: Target(target),
            period: d_period(),
            min_events: d_min_events(),
            source: SliSourceKind::Service,
            good: None,
            total: None,
            rules: None,
        }
    }
}
