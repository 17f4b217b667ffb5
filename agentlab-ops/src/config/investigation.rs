//! `[investigation]`: what the Alert Investigation looks at — the service's log on each host,
//! the metrics snapshot, the external dependencies to isolate — and the team's known issues.

use super::*;

/// `[investigation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct InvestigationConfig {
    /// The service's log on each host (placeholders allowed).
    pub log_file: String,
    /// Log lines this far back from the alert's start are read (the baseline included).
    pub since: Dur,
    /// The error patterns (a regex, case-insensitive).
    pub pattern: String,
    /// Top talkers by: a column (`1`), `json:KEY`, `re:REGEX`, or `none`.
    pub top: String,
    /// How many top talkers are reported.
    pub top_n: usize,
    /// Templates first seen this close to the end of the log are new.
    pub recent: Dur,
    /// Robust z-score above which a minute of errors spikes.
    pub spike_z: f64,
    /// Changes (deploys, rollbacks, commits) this far back from the alert go in the timeline.
    pub changes_window: Dur,
    /// Commits of the deployed repository listed (the spec's `git log --oneline -10`).
    pub commits: usize,
    /// The service's metrics in the Prometheus text format (`""`: none).
    pub metrics_path: String,
    /// Metric names kept in the snapshot (prefixes; empty: the first 40 samples).
    pub metrics: Vec<String>,
    /// PromQL instant queries added to the snapshot when `[prometheus]` is configured.
    pub queries: BTreeMap<String, String>,
    /// External dependencies checked one by one.
    pub dependencies: Vec<DependencyCheck>,
    /// The team's known issues, matched against what was found.
    pub known_issues: Vec<KnownIssue>,
    /// Page through `[pagerduty]` when the issue is unknown.
    pub page: bool,
    /// Severity of that page.
    pub page_severity: String,
    /// Deadline of one run.
    pub deadline: Dur,
}

impl Default for InvestigationConfig {
    fn default() -> Self {
        InvestigationConfig {
            log_file: "/var/log/agent-lab/app.log".into(),
            since: Dur(Duration::from_secs(3600)),
            pattern: "error|exception".into(),
            top: "1".into(),
            top_n: 10,
            recent: Dur(Duration::from_secs(15 * 60)),
            spike_z: 5.0,
            changes_window: Dur(Duration::from_secs(24 * 3600)),
            commits: 10,
            metrics_path: "/metrics".into(),
            metrics: Vec::new(),
            queries: BTreeMap::new(),
            dependencies: Vec::new(),
            known_issues: Vec::new(),
            page: true,
            page_severity: "error".into(),
            deadline: Dur(Duration::from_secs(15 * 60)),
        }
    }
}

/// `[[investigation.dependencies]]`: one external dependency (the spec's OpenRouter check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DependencyCheck {
    /// Its name (`openrouter`); a known issue's `dependency` refers to it.
    pub name: String,
    /// The URL asked.
    pub url: BaseUrl,
    /// `GET` or `HEAD`.
    #[serde(default = "d_method")]
    pub method: String,
    /// Statuses that count as up.
    #[serde(default = "d_expect")]
    pub expect_status: Vec<u16>,
    /// A bearer token (`${OPENROUTER_API_KEY}`), read when the check runs.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Timeout of the check.
    #[serde(default = "d_dep_timeout")]
    pub timeout: Dur,
}

impl DependencyCheck {
    /// A GET of `url` expecting 200, without a token.
    pub fn new(name: impl Into<String>, url: BaseUrl) -> Self {
        DependencyCheck {
            name: name.into(),
            url,
            method: d_method(),
            expect_status: d_expect(),
            token: None,
            timeout: d_dep_timeout(),
        }
    }
}

fn d_method() -> String {
    "GET".into()
}
fn d_expect() -> Vec<u16> {
    vec![200]
}
fn d_dep_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}

/// `[[investigation.known_issues]]`: a known issue and its documented fix. Every condition
/// given must hold (at least one is required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KnownIssue {
    /// Its name.
    pub name: String,
    /// A regex some error line or template of the logs matches (case-insensitive).
    #[serde(default)]
    pub pattern: Option<String>,
    /// The alert's name.
    #[serde(default)]
    pub alert: Option<String>,
    /// A component `/health/detailed` reports unhealthy.
    #[serde(default)]
    pub component: Option<String>,
    /// A dependency of `[[investigation.dependencies]]` that is down.
    #[serde(default)]
    pub dependency: Option<String>,
    /// The documented fix.
    pub fix: String,
    /// A runbook of the catalogue that applies it (run with `apply_fix`).
    #[serde(default)]
    pub runbook: Option<String>,
    /// Its options.
    #[serde(default)]
    pub runbook_options: serde_json::Value,
}

impl KnownIssue {
    /// A known issue matched by `pattern`, fixed by `fix`.
    pub fn new(name: impl Into<String>, pattern: Option<&str>, fix: impl Into<String>) -> Self {
        KnownIssue {
            name: name.into(),
            pattern: pattern.map(str::to_string),
            alert: None,
            component: None,
            dependency: None,
            fix: fix.into(),
            runbook: None,
            runbook_options: serde_json::Value::Null,
        }
    }
}

impl InvestigationConfig {
    pub(super) fn check(&self) -> std::result::Result<(), (String, String)> {
        let at = |f: &str| format!("investigation.{f}");
        if self.log_file.trim().is_empty() {
            return Err((at("log_file"), "must not be empty".into()));
        }
        regex::Regex::new(&self.pattern)
            .map_err(|e| (at("pattern"), format!("not a regex: {e}")))?;
        if self.spike_z.is_nan() || self.spike_z <= 0.0 {
            return Err((at("spike_z"), "must be above 0".into()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.dependencies.iter().enumerate() {
            let f = |x: &str| at(&format!("dependencies[{i}].{x}"));
            if !names.insert(d.name.as_str()) || d.name.trim().is_empty() {
                return Err((f("name"), format!("{:?} is empty or listed twice", d.name)));
            }
            if !["GET", "HEAD"].contains(&d.method.as_str()) {
                return Err((f("method"), format!("{:?}: GET or HEAD", d.method)));
            }
            if d.expect_status.is_empty() {
                return Err((f("expect_status"), "must list a status".into()));
            }
        }
        for (i, k) in self.known_issues.iter().enumerate() {
            let f = |x: &str| at(&format!("known_issues[{i}].{x}"));
            if let Some(p) = &k.pattern {
                regex::Regex::new(p).map_err(|e| (f("pattern"), format!("not a regex: {e}")))?;
            }
            let conditions = [&k.pattern, &k.alert, &k.component, &k.dependency];
            if conditions.iter().all(|c| c.is_none()) {
                return Err((
                    f("name"),
                    format!(
                        "{:?} has no condition: give pattern, alert, component or dependency",
                        k.name
                    ),
                ));
            }
            if let Some(d) = &k.dependency {
                if !names.contains(d.as_str()) {
                    return Err((f("dependency"), format!("{d:?} is not a dependency")));
                }
            }
        }
        Ok(())
    }
}
