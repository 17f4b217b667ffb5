//! `[deploy]` and `[blue_green]`: how releases are deployed and rolled out.

use super::*;

/// Who runs deployment workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployProvider {
    /// GitHub Actions (`workflow_dispatch`).
    Github,
    /// A command line per workflow, run on a host (`[deploy.commands]`).
    Command,
    /// In memory (tests and demos): every workflow succeeds.
    Memory,
}

/// One smoke check after a deployment: a GET that must answer `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// Path on the service (`/api/agents`).
    pub path: String,
    /// Expected status.
    #[serde(default = "d_status")]
    pub status: u16,
    /// Text the body must contain.
    #[serde(default)]
    pub contains: Option<String>,
}

fn d_status() -> u16 {
    200
}

/// Where the "Security Scan" gate's alerts come from (`deploy.security_scan`).
pub const ALERT_SOURCES: &[&str] = &["code_scanning", "dependabot"];
/// Alert severities, most severe first (`deploy.blocking_severities`).
pub const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];

/// `[deploy]`: the standard deployment, its gates, monitoring and rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DeployConfig {
    /// `github`, `command` or `memory`.
    pub provider: DeployProvider,
    /// `owner/repo` (github).
    #[serde(default)]
    pub repository: Option<String>,
    /// API token, as `${GITHUB_TOKEN}` (github).
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// API URL (GitHub Enterprise, tests).
    #[serde(default = "d_github_api")]
    pub api_url: String,
    /// Branch the workflows run on.
    #[serde(default = "d_ref", rename = "ref")]
    pub git_ref: String,
    /// The deploy workflow.
    #[serde(default = "d_deploy_wf")]
    pub workflow: String,
    /// The rollback workflow.
    #[serde(default = "d_rollback_wf")]
    pub rollback_workflow: String,
    /// `environment` input of the deploy workflow.
    #[serde(default = "d_deploy_env")]
    pub environment: String,
    /// Command line per workflow (command provider): `{ "deploy.yml" = ["/app/deploy.sh", "{environment}", "{version}"] }`.
    #[serde(default)]
    pub commands: BTreeMap<String, Vec<String>>,
    /// Host the commands run on (command provider; default: the first host).
    #[serde(default)]
    pub command_host: Option<String>,
    /// The longest a workflow run is followed before it counts as failed.
    #[serde(default = "d_deploy_timeout")]
    pub timeout: Dur,
    /// First interval between status reads (grows ×1.5 up to 1 minute).
    #[serde(default = "d_poll")]
    pub poll_interval: Dur,
    /// The longest a GitHub rate limit is waited out.
    #[serde(default = "d_rate_wait")]
    pub max_rate_wait: Dur,
    /// Local git working copy to tag releases in (unset: no tagging).
    #[serde(default)]
    pub repo_dir: Option<PathBuf>,
    /// Remote tags are pushed to.
    #[serde(default = "d_remote")]
    pub remote: String,
    /// File holding the version, in `repo_dir`.
    #[serde(default = "d_version_file")]
    pub version_file: String,
    /// Gate: error budget left must be above this (spec: 50%).
    #[serde(default = "d_budget")]
    pub budget_min: Ratio,
    /// Gate: the commit's CI checks must be green (github provider).
    #[serde(default = "d_true")]
    pub require_checks: bool,
    /// Gate "Code Review": the release commit's pull request needs this many approving
    /// reviews and no changes requested (github provider; 0: no review gate).
    #[serde(default = "d_approvals")]
    pub required_approvals: u32,
    /// Gate "Security Scan": the alert sources read (`code_scanning`, `dependabot`; empty: no
    /// security gate).
    #[serde(default = "d_scan_sources")]
    pub security_scan: Vec<String>,
    /// Open alerts of these severities stop a deployment (`critical`, `high`, `medium`, `low`).
    #[serde(default = "d_blocking")]
    pub blocking_severities: Vec<String>,
    /// Gate "Performance Test": a load test of the candidate (staging) compared with a stored
    /// baseline must not be `regressed` (absent: no performance gate).
    #[serde(default)]
    pub performance: Option<PerformanceGate>,
    /// Gate: no deployment while this flag exists on a host (spec: `/app/MAINTENANCE_MODE`).
    #[serde(default = "d_maint_flag")]
    pub maintenance_flag: String,
    /// Gate: no deployment while this flag exists on a host (an active incident).
    #[serde(default = "d_incident_flag")]
    pub incident_flag: String,
    /// Gate for high-risk releases: they go out only inside one of these windows (UTC),
    /// `"Sun 02:00-04:00"` or `"daily 02:00-03:00"`.
    #[serde(default)]
    pub maintenance_windows: Vec<String>,
    /// GETs that must pass after the deploy, besides `/health` and `/health/detailed`.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// How long the new version must stay healthy (spec: 30 minutes).
    #[serde(default = "d_monitor_period")]
    pub monitor_period: Dur,
    /// How often the error rate is compared during monitoring (spec: every 5 minutes).
    #[serde(default = "d_monitor_interval")]
    pub monitor_interval: Dur,
    /// Roll back when the error rate rises above this many times the pre-deploy baseline.
    #[serde(default = "d_factor")]
    pub error_rate_factor: f64,
    /// Error rates below this never trigger a rollback (a baseline of 0 would make any error one).
    #[serde(default = "d_floor")]
    pub error_rate_floor: Ratio,
    /// How long the new version may take to answer healthy after the workflow finished.
    #[serde(default = "d_health_wait")]
    pub health_wait: Dur,
    /// Manual rollback over SSH when the rollback workflow fails, run on every host:
    /// `{previous}` is the previous release tag.
    #[serde(default = "d_manual_rollback")]
    pub manual_rollback: Vec<Vec<String>>,
}

fn d_github_api() -> String {
    "https://api.github.com".into()
}
fn d_ref() -> String {
    "main".into()
}
fn d_deploy_wf() -> String {
    "deploy.yml".into()
}
fn d_rollback_wf() -> String {
    "rollback.yml".into()
}
fn d_deploy_env() -> String {
    "production".into()
}
fn d_deploy_timeout() -> Dur {
    Dur(Duration::from_secs(30 * 60))
}
fn d_poll() -> Dur {
    Dur(Duration::from_secs(10))
}
fn d_rate_wait() -> Dur {
    Dur(Duration::from_secs(15 * 60))
}
fn d_remote() -> String {
    "origin".into()
}
fn d_version_file() -> String {
    "version.txt".into()
}
fn d_approvals() -> u32 {
    1
}
fn d_scan_sources() -> Vec<String> {
    vec!["code_scanning".into(), "dependabot".into()]
}
fn d_blocking() -> Vec<String> {
    vec!["critical".into()]
}
fn d_true() -> bool {
    true
}
fn d_maint_flag() -> String {
    "/app/MAINTENANCE_MODE".into()
}
fn d_incident_flag() -> String {
    "/app/INCIDENT_ACTIVE".into()
}
fn d_monitor_period() -> Dur {
    Dur(Duration::from_secs(30 * 60))
}
fn d_monitor_interval() -> Dur {
    Dur(Duration::from_secs(5 * 60))
}
fn d_factor() -> f64 {
    2.0
}
fn d_floor() -> Ratio {
    Ratio(0.001)
}
fn d_health_wait() -> Dur {
    Dur(Duration::from_secs(120))
}
fn d_manual_rollback() -> Vec<Vec<String>> {
    vec![
        vec![
            "git".into(),
            "-C".into(),
            "/app".into(),
            "checkout".into(),
            "{previous}".into(),
        ],
        vec!["systemctl".into(), "restart".into(), "agent-lab".into()],
    ]
}

impl DeployConfig {
    /// A config for `provider` with every default.
    pub fn new(provider: DeployProvider) -> Self {
        DeployConfig {
            provider,
            repository: None,
            token: None,
            api_url: d_github_api(),
            git_ref: d_ref(),
            workflow: d_deploy_wf(),
            rollback_workflow: d_rollback_wf(),
            environment: d_deploy_env(),
            commands: BTreeMap::new(),
            command_host: None,
            timeout: d_deploy_timeout(),
            poll_interval: d_poll(),
            max_rate_wait: d_rate_wait(),
            repo_dir: None,
            remote: d_remote(),
            version_file: d_version_file(),
            budget_min: d_budget(),
            require_checks: true,
            required_approvals: d_approvals(),
            security_scan: d_scan_sources(),
            blocking_severities: d_blocking(),
            performance: None,
            maintenance_flag: d_maint_flag(),
            incident_flag: d_incident_flag(),
            maintenance_windows: Vec::new(),
            smoke: Vec::new(),
            monitor_period: d_monitor_period(),
            monitor_interval: d_monitor_interval(),
            error_rate_factor: d_factor(),
            error_rate_floor: d_floor(),
            health_wait: d_health_wait(),
            manual_rollback: d_manual_rollback(),
        }
    }
}

/// `[deploy.performance]`: the deployment checklist's "Performance Test: no performance
/// regressions", as a load test of the candidate judged against a baseline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PerformanceGate {
    /// The candidate to load (staging): loopback or under `[load] targets`.
    pub url: String,
    /// The baseline run: a label (`release`), a run id, or `last`.
    pub baseline: String,
    /// Requests (closed loop, `ab -n`).
    #[serde(default = "d_perf_requests")]
    pub requests: u64,
    /// Connections (`ab -c`).
    #[serde(default = "d_perf_concurrency")]
    pub concurrency: usize,
    /// Thresholds the run must also hold (`p99<300ms`).
    #[serde(default)]
    pub thresholds: Vec<String>,
}

fn d_perf_requests() -> u64 {
    2000
}
fn d_perf_concurrency() -> usize {
    20
}

/// Which router shifts traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// An nginx upstream file on a host, reloaded.
    Nginx,
    /// In memory (tests and demos).
    Memory,
}

/// `[blue_green]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BlueGreenConfig {
    /// `nginx` or `memory`.
    pub router: RouterKind,
    /// Host running nginx (a `[[hosts]]` name).
    #[serde(default)]
    pub router_host: Option<String>,
    /// The upstream file nginx includes.
    #[serde(default = "d_upstream_file")]
    pub upstream_file: String,
    /// The upstream's name.
    #[serde(default = "d_upstream")]
    pub upstream: String,
    /// Blue's `host:port` in the upstream.
    #[serde(default)]
    pub blue_server: Option<String>,
    /// Green's `host:port` in the upstream.
    #[serde(default)]
    pub green_server: Option<String>,
    /// Configuration check before a reload (empty: none).
    #[serde(default = "d_nginx_check")]
    pub check_command: Vec<String>,
    /// Reload command.
    #[serde(default = "d_nginx_reload")]
    pub reload_command: Vec<String>,
    /// Blue's own URL (its baseline metrics).
    pub blue_url: BaseUrl,
    /// Green's own URL (health and metrics of the new version).
    pub green_url: BaseUrl,
    /// Staging's URL (validated before production green).
    #[serde(default)]
    pub staging_url: Option<BaseUrl>,
    /// `environment` inputs of the deploy workflow for staging and green.
    #[serde(default = "d_staging_env")]
    pub staging_environment: String,
    /// See `staging_environment`.
    #[serde(default = "d_green_env")]
    pub green_environment: String,
    /// Green's share at each step, in percent (spec: 10, 25, 50, 100).
    #[serde(default = "d_steps")]
    pub steps: Vec<u8>,
    /// Analysis measurements per step.
    #[serde(default = "d_measurements")]
    pub measurements: u32,
    /// Time between measurements (spec: 5 minutes per step in all).
    #[serde(default = "d_measure_interval")]
    pub interval: Dur,
    /// Green fails a measurement when its error rate is above this many times blue's...
    #[serde(default = "d_factor")]
    pub max_error_factor: f64,
    /// ...and above this absolute rate.
    #[serde(default = "d_bg_floor")]
    pub error_rate_floor: Ratio,
    /// Green fails a measurement when its slow-request rate is above this many times blue's
    /// (and above the floor).
    #[serde(default = "d_latency_factor")]
    pub max_latency_factor: f64,
    /// Failed (or errored) measurements tolerated per step before the rollout aborts.
    #[serde(default)]
    pub failure_limit: u32,
    /// The longest a paused rollout waits to be resumed before it aborts.
    #[serde(default = "d_max_pause")]
    pub max_pause: Dur,
}

fn d_upstream_file() -> String {
    "/etc/nginx/conf.d/agentlab-upstream.conf".into()
}
fn d_upstream() -> String {
    "agentlab".into()
}
fn d_nginx_check() -> Vec<String> {
    vec!["nginx".into(), "-t".into()]
}
fn d_nginx_reload() -> Vec<String> {
    vec!["nginx".into(), "-s".into(), "reload".into()]
}
fn d_staging_env() -> String {
    "staging".into()
}
fn d_green_env() -> String {
    "production-green".into()
}
fn d_steps() -> Vec<u8> {
    vec![10, 25, 50, 100]
}
fn d_measurements() -> u32 {
    3
}
fn d_measure_interval() -> Dur {
    Dur(Duration::from_secs(100))
}
fn d_bg_floor() -> Ratio {
    Ratio(0.01)
}
fn d_latency_factor() -> f64 {
    1.5
}
fn d_max_pause() -> Dur {
    Dur(Duration::from_secs(3600))
}

impl BlueGreenConfig {
    /// A config with every default.
    pub fn new(router: RouterKind, blue_url: BaseUrl, green_url: BaseUrl) -> Self {
        BlueGreenConfig {
            router,
            router_host: None,
            upstream_file: d_upstream_file(),
            upstream: d_upstream(),
            blue_server: None,
            green_server: None,
            check_command: d_nginx_check(),
            reload_command: d_nginx_reload(),
            blue_url,
            green_url,
            staging_url: None,
            staging_environment: d_staging_env(),
            green_environment: d_green_env(),
            steps: d_steps(),
            measurements: d_measurements(),
            interval: d_measure_interval(),
            max_error_factor: d_factor(),
            error_rate_floor: d_bg_floor(),
            max_latency_factor: d_latency_factor(),
            failure_limit: 0,
            max_pause: d_max_pause(),
        }
    }
}
