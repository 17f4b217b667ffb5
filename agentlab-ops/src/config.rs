//! The environment file (TOML): what the runbooks run against.
//!
//! Discovery order: an explicit path (`--config FILE`), then `AGENTLAB_OPS_CONFIG`, then
//! `./agentlab-ops.toml`. Unknown keys are errors. Every error names the file, the line and
//! the field (`agentlab-ops.toml:7:10: slo[0].target: ...`). Secrets appear only as
//! `${ENV_VAR}` references ([`SecretRef`]) and are resolved when the environment is built.

mod values;
pub use values::{MaintenanceWindow, Sample};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::{Secret, parse_env_ref};

/// Name of the file looked for in the current directory.
pub const DEFAULT_FILE: &str = "agentlab-ops.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "AGENTLAB_OPS_CONFIG";

/// The whole environment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Name of the environment (`production`, `staging`...), shown in every report.
    #[serde(default = "default_env_name")]
    pub environment: String,
    /// The HTTP service.
    pub service: ServiceConfig,
    /// Service level objectives.
    #[serde(default, rename = "slo")]
    pub slos: Vec<SloConfig>,
    /// Where backups live.
    #[serde(default)]
    pub backups: Option<BackupsConfig>,
    /// Hosts the service runs on.
    #[serde(default)]
    pub hosts: Vec<HostConfig>,
    /// Defaults for SSH hosts.
    #[serde(default)]
    pub ssh: SshConfig,
    /// Fan-out over hosts.
    #[serde(default)]
    pub fleet: FleetConfig,
    /// Escalation thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Notifications.
    #[serde(default)]
    pub notify: Option<NotifyConfig>,
    /// The audit journal.
    #[serde(default)]
    pub journal: JournalConfig,
    /// Handover details.
    #[serde(default)]
    pub handover: HandoverConfig,
    /// Deployments (standard release and rollback).
    #[serde(default)]
    pub deploy: Option<DeployConfig>,
    /// Blue-green deployments: the router and the analysis between traffic steps.
    #[serde(default)]
    pub blue_green: Option<BlueGreenConfig>,
}

fn default_env_name() -> String {
    "default".to_string()
}

/// `[service]`: the Agent Lab HTTP service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// Base URL, e.g. `https://agent-lab.example.com`.
    pub base_url: BaseUrl,
    /// Path of the liveness endpoint.
    #[serde(default = "d_health")]
    pub health_path: String,
    /// Path of the per-component endpoint.
    #[serde(default = "d_detailed")]
    pub detailed_health_path: String,
    /// Path of the SLO JSON.
    #[serde(default = "d_slo")]
    pub slo_path: String,
    /// Path of the metrics history JSON.
    #[serde(default = "d_history")]
    pub history_path: String,
    /// Timeout of one HTTP request.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
    /// Attempts for temporary failures (1 = no retry).
    #[serde(default = "d_attempts")]
    pub attempts: u32,
    /// Optional bearer token sent to the service.
    #[serde(default)]
    pub token: Option<SecretRef>,
}

fn d_health() -> String {
    "/health".into()
}
fn d_detailed() -> String {
    "/health/detailed".into()
}
fn d_slo() -> String {
    "/metrics/slo".into()
}
fn d_history() -> String {
    "/metrics/history".into()
}
fn d_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}
fn d_attempts() -> u32 {
    3
}

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
}

fn d_period() -> Dur {
    Dur(Duration::from_secs(30 * 86_400))
}
fn d_min_events() -> u64 {
    100
}

/// Which backup store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreKind {
    /// A directory on the local filesystem.
    Fs,
    /// In memory (tests and demos).
    Memory,
    /// An S3 bucket (or any S3-compatible store: MinIO, Ceph, moto).
    S3,
}

/// `[backups]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackupsConfig {
    /// Backend.
    pub store: StoreKind,
    /// Root directory (store = "fs").
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Datasets expected every night, each under `<dataset>/<YYYYMMDD>/`.
    #[serde(default = "d_datasets")]
    pub datasets: Vec<String>,
    /// Bucket (store = "s3").
    #[serde(default)]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket (store = "s3"), e.g. `"agent-lab/"`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Region (store = "s3"; default from the AWS chain).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (store = "s3").
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Path-style addressing, needed by most S3-compatible stores.
    #[serde(default)]
    pub force_path_style: bool,
    /// Timeout of one request.
    #[serde(default = "d_store_timeout")]
    pub timeout: Dur,
    /// Attempts for temporary failures.
    #[serde(default = "d_attempts")]
    pub attempts: u32,
    /// Concurrent requests for bulk work (verification, backups).
    #[serde(default = "d_store_concurrency")]
    pub concurrency: usize,
    /// Host the data is read from by `backup take` (default: the first host).
    #[serde(default)]
    pub source_host: Option<String>,
    /// The service's data directory on that host.
    #[serde(default = "d_data_dir")]
    pub data_dir: String,
    /// Datasets beyond the built-in `sessions` and `telemetry`.
    #[serde(default, rename = "dataset")]
    pub custom_datasets: Vec<DatasetConfig>,
    /// Integrity sample: `"all"`, a count (`"200"`) or a percentage (`"10%"`).
    #[serde(default = "d_sample")]
    pub sample: String,
    /// A fractional sample reads at least this many objects (all of a smaller dataset):
    /// sampling only makes sense for large datasets.
    #[serde(default = "d_sample_min")]
    pub sample_min: u64,
    /// Trend: a day smaller than the 7-day median by more than this is a finding.
    #[serde(default = "d_drop")]
    pub trend_drop_max: Ratio,
    /// Trend: a day larger than the 7-day median by more than this fraction is a finding.
    #[serde(default = "d_spike")]
    pub trend_spike_max: f64,
    /// The service's read-only flag, set during a recovery (default: `READ_ONLY_MODE` beside
    /// `data_dir`, as the spec's `/app/READ_ONLY_MODE`).
    #[serde(default)]
    pub read_only_flag: Option<String>,
    /// `backup verify` stops after this long (every dataset at once), its report saying what
    /// was not verified.
    #[serde(default = "d_verify_deadline")]
    pub verify_deadline: Dur,
}

/// `[[backups.dataset]]`: a dataset besides the built-in ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasetConfig {
    /// Name (the first key segment in the store).
    pub name: String,
    /// File or directory, relative to `data_dir` or absolute.
    pub path: String,
    /// File name pattern inside a directory (`*.json`).
    #[serde(default = "d_pattern")]
    pub pattern: String,
    /// Format checked by integrity verification.
    #[serde(default)]
    pub format: DataFormat,
}

/// Formats integrity verification understands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DataFormat {
    /// Each object is one JSON document.
    Json,
    /// Header line, then rows with as many columns.
    Csv,
    /// Only the checksum is checked.
    #[default]
    Any,
}

impl BackupsConfig {
    /// The datasets to back up and verify, built-ins resolved.
    pub fn dataset_specs(&self) -> std::result::Result<Vec<DatasetConfig>, String> {
        self.datasets
            .iter()
            .map(|name| {
                if let Some(c) = self.custom_datasets.iter().find(|c| &c.name == name) {
                    return Ok(c.clone());
                }
                match name.as_str() {
                    "sessions" => Ok(DatasetConfig {
                        name: name.clone(),
                        path: "sessions".into(),
                        pattern: "*.json".into(),
                        format: DataFormat::Json,
                    }),
                    "telemetry" => Ok(DatasetConfig {
                        name: name.clone(),
                        path: "runs.csv".into(),
                        pattern: "*".into(),
                        format: DataFormat::Csv,
                    }),
                    other => Err(format!(
                        "unknown dataset {other:?}: describe it in a [[backups.dataset]] table (name, path, pattern, format)"
                    )),
                }
            })
            .collect()
    }
}

fn d_data_dir() -> String {
    "/app/data".into()
}
fn d_pattern() -> String {
    "*".into()
}
fn d_verify_deadline() -> Dur {
    Dur(std::time::Duration::from_secs(30 * 60))
}
fn d_sample_min() -> u64 {
    20
}
fn d_sample() -> String {
    "10%".into()
}
fn d_drop() -> Ratio {
    Ratio(0.3)
}
fn d_spike() -> f64 {
    1.0
}

fn d_store_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_store_concurrency() -> usize {
    16
}

fn d_datasets() -> Vec<String> {
    vec!["sessions".into(), "telemetry".into()]
}

/// `[[hosts]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HostConfig {
    /// Short name used in reports.
    pub name: String,
    /// `local`, or `ssh://user@host:port` (SSH arrives with the SSH backend).
    #[serde(default = "d_address")]
    pub address: HostAddress,
    /// Environment variables set for commands (local hosts).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Only these mount points count for disk usage (all real filesystems when empty).
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Timeout of one command.
    #[serde(default = "d_cmd_timeout")]
    pub command_timeout: Dur,
    /// SSH private key (default: `[ssh] identity_file`, then the ssh client's defaults).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// known_hosts file (default: `[ssh] known_hosts`, then `~/.ssh/known_hosts`).
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// At most this many commands at once on this host (default `[ssh] max_concurrent`).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
}

impl HostConfig {
    /// A host entry with defaults.
    pub fn new(name: impl Into<String>, address: HostAddress) -> Self {
        HostConfig {
            name: name.into(),
            address,
            env: BTreeMap::new(),
            mounts: Vec::new(),
            command_timeout: d_cmd_timeout(),
            identity_file: None,
            known_hosts: None,
            max_concurrent: None,
        }
    }
}

impl SloConfig {
    /// A 30-day objective.
    pub fn new(name: impl Into<String>, target: f64) -> Self {
        SloConfig {
            name: name.into(),
            target: Target(target),
            period: d_period(),
            min_events: d_min_events(),
        }
    }
}

impl BackupsConfig {
    /// A store of this kind with the default datasets.
    pub fn new(store: StoreKind, path: Option<PathBuf>) -> Self {
        BackupsConfig {
            store,
            path,
            datasets: d_datasets(),
            bucket: None,
            prefix: None,
            region: None,
            endpoint_url: None,
            force_path_style: false,
            timeout: d_store_timeout(),
            attempts: d_attempts(),
            concurrency: d_store_concurrency(),
            source_host: None,
            data_dir: d_data_dir(),
            custom_datasets: Vec::new(),
            sample: d_sample(),
            sample_min: d_sample_min(),
            trend_drop_max: d_drop(),
            trend_spike_max: d_spike(),
            read_only_flag: None,
            verify_deadline: d_verify_deadline(),
        }
    }
}

fn d_address() -> HostAddress {
    HostAddress::Local
}
fn d_cmd_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

/// How strictly SSH host keys are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HostKeyCheck {
    /// The key must be in known_hosts already (default): unknown or changed keys are errors.
    #[default]
    Strict,
    /// Accept and record unknown keys; changed keys are still errors.
    AcceptNew,
}

/// `[ssh]`: defaults for every `ssh://` host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SshConfig {
    /// Private key.
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// known_hosts file.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// Host-key policy.
    #[serde(default)]
    pub host_key_check: HostKeyCheck,
    /// ssh_config file to use (`"/dev/null"` to ignore `~/.ssh/config`).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
    /// Connection timeout.
    #[serde(default = "d_connect_timeout")]
    pub connect_timeout: Dur,
    /// Commands at once per host (sshd's MaxSessions defaults to 10).
    #[serde(default = "d_max_concurrent")]
    pub max_concurrent: usize,
    /// Where control sockets go (short path: unix sockets are limited to 108 bytes).
    #[serde(default)]
    pub control_dir: Option<PathBuf>,
}

fn d_connect_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn d_max_concurrent() -> usize {
    10
}

impl Default for SshConfig {
    fn default() -> Self {
        SshConfig {
            identity_file: None,
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            config_file: None,
            connect_timeout: d_connect_timeout(),
            max_concurrent: d_max_concurrent(),
            control_dir: None,
        }
    }
}

/// A failure budget: stop starting new hosts after this many failures (like SSM's MaxErrors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FailureBudget {
    /// At most this many failed hosts.
    Count(usize),
    /// At most this fraction of the hosts.
    Fraction(f64),
}

impl FailureBudget {
    /// Failures allowed among `hosts` hosts.
    pub fn allowed(self, hosts: usize) -> usize {
        match self {
            FailureBudget::Count(n) => n,
            FailureBudget::Fraction(f) => (f * hosts as f64).floor() as usize,
        }
    }
}

impl<'de> Deserialize<'de> for FailureBudget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a count (2) or a percentage (\"10%\")")
        })? {
            Raw::N(n) => Ok(FailureBudget::Count(n as usize)),
            Raw::S(s) => match s.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
                Some(Ok(p)) if (0.0..=100.0).contains(&p) => Ok(FailureBudget::Fraction(p / 100.0)),
                _ => s
                    .trim()
                    .parse::<usize>()
                    .map(FailureBudget::Count)
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "invalid failure budget {s:?}: a count or \"10%\""
                        ))
                    }),
            },
        }
    }
}

impl Serialize for FailureBudget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            FailureBudget::Count(n) => s.serialize_u64(*n as u64),
            FailureBudget::Fraction(f) => s.collect_str(&format_args!("{}%", f * 100.0)),
        }
    }
}

/// `[fleet]`: running one operation on many hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FleetConfig {
    /// Hosts worked on at once.
    #[serde(default = "d_fleet_concurrency")]
    pub concurrency: usize,
    /// Failures tolerated before changes stop (reads always cover every host).
    #[serde(default)]
    pub failure_budget: Option<FailureBudget>,
}

fn d_fleet_concurrency() -> usize {
    128
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            concurrency: d_fleet_concurrency(),
            failure_budget: None,
        }
    }
}

/// `[thresholds]`: escalation criteria from the spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Thresholds {
    /// Escalate when the error budget left falls below this fraction (spec: 50%).
    #[serde(default = "d_budget")]
    pub error_budget_min: Ratio,
    /// Escalate when memory or any disk is used above this fraction (spec: 90%).
    #[serde(default = "d_resource")]
    pub resource_max: Ratio,
    /// Escalate when the 5-minute load per CPU is above this (unset: not checked).
    #[serde(default)]
    pub load_per_cpu_max: Option<f64>,
    /// Timeout of each morning-check step.
    #[serde(default = "d_check_timeout")]
    pub check_timeout: Dur,
    /// Escalate when the health endpoint answers slower than this.
    #[serde(default = "d_latency")]
    pub health_latency_max: Dur,
}

fn d_budget() -> Ratio {
    Ratio(0.5)
}
fn d_resource() -> Ratio {
    Ratio(0.9)
}
fn d_check_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_latency() -> Dur {
    Dur(Duration::from_secs(2))
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            error_budget_min: d_budget(),
            resource_max: d_resource(),
            load_per_cpu_max: None,
            check_timeout: d_check_timeout(),
            health_latency_max: d_latency(),
        }
    }
}

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// Slack incoming webhook, as `${SLACK_WEBHOOK_URL}`.
    pub slack_webhook_url: SecretRef,
    /// Timeout of one notification.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
}

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

/// `[journal]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JournalConfig {
    /// JSONL file; default `$AGENTLAB_OPS_JOURNAL`, else `$XDG_STATE_HOME/agentlab-ops/journal.jsonl`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Set to false to keep no journal.
    #[serde(default)]
    pub disabled: bool,
}

/// `[handover]`: the parts of the handover template no probe can know.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HandoverConfig {
    /// Primary on-call: name and phone.
    #[serde(default)]
    pub primary: Option<String>,
    /// Backup on-call: name and phone.
    #[serde(default)]
    pub backup: Option<String>,
    /// Known outstanding items.
    #[serde(default)]
    pub outstanding: Vec<OutstandingItem>,
    /// Tomorrow's schedule.
    #[serde(default)]
    pub schedule: Vec<ScheduleItem>,
}

/// One outstanding item of the handover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutstandingItem {
    /// What.
    pub issue: String,
    /// Status.
    #[serde(default)]
    pub status: String,
    /// Owner.
    #[serde(default)]
    pub owner: String,
    /// ETA.
    #[serde(default)]
    pub eta: String,
}

/// One schedule entry of the handover (maintenance window or release).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleItem {
    /// What (`Maintenance 02:00-03:00`, `Release v1.4.0`).
    pub what: String,
    /// Purpose, impact, risk.
    #[serde(default)]
    pub detail: String,
}

// ---------------------------------------------------------------------------------------------
// Validated value types: validation happens during deserialisation so errors carry line + field.

/// A duration written as `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"30d"` or a number of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

pub use crate::units::{format_duration, parse_duration};

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"5s\" or a number of seconds")
        })? {
            Raw::Num(n) if n >= 0.0 && n.is_finite() => Ok(Dur(Duration::from_secs_f64(n))),
            Raw::Num(n) => Err(serde::de::Error::custom(format!("invalid duration {n}"))),
            Raw::Str(s) => parse_duration(&s)
                .map(Dur)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A fraction in `[0, 1]`, also accepted as a percentage string (`"90%"`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        let v = match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a fraction such as 0.9 or a percentage \"90%\"")
        })? {
            Raw::Num(n) => n,
            Raw::Str(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<f64>().ok())
                .map(|p| p / 100.0)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("invalid percentage {s:?}, expected \"90%\""))
                })?,
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range: a fraction must be between 0 and 1"
            )));
        }
        Ok(Ratio(v))
    }
}

/// An SLO target, strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Target(pub f64);

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if v > 0.0 && v < 1.0 {
            Ok(Target(v))
        } else {
            Err(serde::de::Error::custom(format!(
                "target {v} must be strictly between 0 and 1 (e.g. 0.999 for 99.9%)"
            )))
        }
    }
}

/// An `http(s)://` base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parse and validate.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let u = reqwest::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("URL {s:?} must start with http:// or https://"));
        }
        if u.host_str().is_none() {
            return Err(format!("URL {s:?} has no host"));
        }
        Ok(BaseUrl(s.trim_end_matches('/').to_string()))
    }
    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Join a path (`/health`).
    pub fn join(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        format!("{}/{}", self.0, path.trim_start_matches('/'))
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BaseUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostAddress {
    /// Commands run as local processes.
    Local,
    /// `ssh://user@host:port`.
    Ssh {
        /// Login user (None: the SSH default).
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl HostAddress {
    /// Parse `local` or `ssh://[user@]host[:port]`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if s == "local" || s == "localhost-process" {
            return Ok(HostAddress::Local);
        }
        let rest = s.strip_prefix("ssh://").ok_or_else(|| {
            format!("invalid host address {s:?}: expected \"local\" or \"ssh://user@host:port\"")
        })?;
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(format!("invalid host address {s:?}: empty user")),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [v6]:port
            let (h, p) = h
                .split_once(']')
                .ok_or_else(|| format!("invalid host address {s:?}"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(format!("invalid host address {s:?}: no host"));
        }
        let port = if port.is_empty() {
            22
        } else {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("invalid port {port:?} in host address {s:?}"))?
        };
        Ok(HostAddress::Ssh { user, host, port })
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddress::Local => f.write_str("local"),
            HostAddress::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]:{port}")
                } else {
                    write!(f, "{host}:{port}")
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for HostAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HostAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reference to a secret in the environment: `${NAME}`. Inline values are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    name: String,
}

impl SecretRef {
    /// A reference to the environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        SecretRef { name: name.into() }
    }
    /// The variable name.
    pub fn var(&self) -> &str {
        &self.name
    }
    /// Read the variable now.
    pub fn resolve(&self, field: &str) -> Result<Secret> {
        Secret::from_env_ref(&format!("${{{}}}", self.name))
            .map_err(|m| Error::config(format!("{field}: {m}")).with_operation("config.secret"))
    }
}

/// A secret read from its `${ENV_VAR}` when first needed, not when the environment is built: a
/// morning check runs without the Slack webhook's variable; posting fails then, naming it.
#[derive(Debug, Clone)]
pub struct LazySecret {
    reference: Option<(SecretRef, String)>,
    value: std::sync::OnceLock<Secret>,
}

impl LazySecret {
    /// Resolved on first use from `reference`; `field` names it in the error.
    pub fn deferred(reference: SecretRef, field: impl Into<String>) -> Self {
        LazySecret {
            reference: Some((reference, field.into())),
            value: std::sync::OnceLock::new(),
        }
    }
    /// Already known.
    pub fn known(secret: Secret) -> Self {
        let value = std::sync::OnceLock::new();
        let _ = value.set(secret);
        LazySecret {
            reference: None,
            value,
        }
    }
    /// The secret, resolving it now if needed.
    pub fn get(&self) -> Result<&Secret> {
        if let Some(v) = self.value.get() {
            return Ok(v);
        }
        let (r, field) = self
            .reference
            .as_ref()
            .ok_or_else(|| Error::config("secret without a value or a reference"))?;
        let v = r.resolve(field)?;
        Ok(self.value.get_or_init(|| v))
    }
    /// How to name it without resolving it: `${VAR}`, or the resolved secret's origin.
    pub fn describe(&self) -> String {
        match (self.value.get(), &self.reference) {
            (Some(v), _) => v.origin().to_string(),
            (None, Some((r, _))) => format!("${{{}}}", r.var()),
            (None, None) => "unset".into(),
        }
    }
}

impl From<Secret> for LazySecret {
    fn from(s: Secret) -> Self {
        LazySecret::known(s)
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match parse_env_ref(&s) {
            Some(name) => Ok(SecretRef {
                name: name.to_string(),
            }),
            // Never echo the value: it may be the secret itself.
            None => Err(serde::de::Error::custom(
                "secrets must be written as a ${ENV_VAR} reference, never inline",
            )),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("${{{}}}", self.name))
    }
}

// ---------------------------------------------------------------------------------------------

impl Config {
    /// A config with every default, for a service at `base_url` (used by builders and tests).
    pub fn new(base_url: BaseUrl) -> Config {
        Config {
            environment: default_env_name(),
            service: ServiceConfig {
                base_url,
                health_path: d_health(),
                detailed_health_path: d_detailed(),
                slo_path: d_slo(),
                history_path: d_history(),
                timeout: d_timeout(),
                attempts: d_attempts(),
                token: None,
            },
            slos: Vec::new(),
            backups: None,
            hosts: Vec::new(),
            ssh: SshConfig::default(),
            fleet: FleetConfig::default(),
            thresholds: Thresholds::default(),
            notify: None,
            journal: JournalConfig::default(),
            handover: HandoverConfig::default(),
            deploy: None,
            blue_green: None,
        }
    }

    /// Parse TOML text; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(origin, text, "", &e))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(origin, text, &path, e.inner())
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Read and parse a file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::ConfigInvalid
            };
            Error::new(kind, format!("{origin}: cannot read config file: {e}"))
                .with_operation("config.load")
                .with_source(e)
        })?;
        Config::from_toml_str(&text, &origin)
    }

    /// Find the config file: `explicit`, then `$AGENTLAB_OPS_CONFIG`, then `./agentlab-ops.toml`.
    /// `Ok(None)` when none is given and the default file does not exist.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
        let named = explicit.map(|p| (p.to_path_buf(), "--config")).or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), CONFIG_ENV))
        });
        if let Some((p, from)) = named {
            if !p.is_file() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{}: config file not found (from {from})", p.display()),
                )
                .with_operation("config.discover"));
            }
            return Ok(Some(p));
        }
        let local = PathBuf::from(DEFAULT_FILE);
        Ok(local.is_file().then_some(local))
    }

    /// Load the discovered config, if any.
    pub fn load(explicit: Option<&Path>) -> Result<Option<Config>> {
        Config::discover(explicit)?
            .map(|p| Config::from_file(&p))
            .transpose()
    }

    /// Cross-field checks that serde cannot express.
    fn validate(&self, origin: &str) -> Result<()> {
        let err = |field: String, msg: String| {
            Err(Error::config(format!("{origin}: {field}: {msg}")).with_operation("config.load"))
        };
        if self.fleet.concurrency == 0 {
            return err("fleet.concurrency".into(), "must be at least 1".into());
        }
        if self.ssh.max_concurrent == 0 {
            return err("ssh.max_concurrent".into(), "must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.name.trim().is_empty() {
                return err(format!("hosts[{i}].name"), "must not be empty".into());
            }
            if !names.insert(h.name.as_str()) {
                return err(
                    format!("hosts[{i}].name"),
                    format!("duplicate host name {:?}", h.name),
                );
            }
        }
        if let Some(d) = &self.deploy {
            if d.provider == DeployProvider::Github && (d.repository.is_none() || d.token.is_none())
            {
                return err(
                    "deploy".into(),
                    "provider = \"github\" needs repository and token".into(),
                );
            }
            if d.provider == DeployProvider::Command && !d.commands.contains_key(&d.workflow) {
                return err(
                    "deploy.commands".into(),
                    format!("no command for the workflow {:?}", d.workflow),
                );
            }
            for (i, w) in d.maintenance_windows.iter().enumerate() {
                if let Err(m) = MaintenanceWindow::parse(w) {
                    return err(format!("deploy.maintenance_windows[{i}]"), m);
                }
            }
        }
        if let Some(b) = &self.blue_green {
            let mut last = 0u8;
            for (i, &p) in b.steps.iter().enumerate() {
                if p == 0 || p > 100 || p <= last {
                    return err(
                        format!("blue_green.steps[{i}]"),
                        "steps must rise from 1 to 100".into(),
                    );
                }
                last = p;
            }
            if last != 100 {
                return err(
                    "blue_green.steps".into(),
                    "the last step must be 100".into(),
                );
            }
            if b.router == RouterKind::Nginx
                && (b.blue_server.is_none() || b.green_server.is_none())
            {
                return err(
                    "blue_green".into(),
                    "router = \"nginx\" needs blue_server and green_server".into(),
                );
            }
            if b.measurements == 0 {
                return err(
                    "blue_green.measurements".into(),
                    "must be at least 1".into(),
                );
            }
        }
        let mut slo_names = std::collections::HashSet::new();
        for (i, s) in self.slos.iter().enumerate() {
            if !slo_names.insert(s.name.as_str()) {
                return err(
                    format!("slo[{i}].name"),
                    format!("duplicate SLO name {:?}", s.name),
                );
            }
            if s.period.0 < Duration::from_secs(3600) {
                return err(
                    format!("slo[{i}].period"),
                    "an SLO period shorter than 1h makes no sense".into(),
                );
            }
        }
        if let Some(b) = &self.backups {
            if b.store == StoreKind::Fs && b.path.is_none() {
                return err("backups.path".into(), "required when store = \"fs\"".into());
            }
            if b.store == StoreKind::S3 {
                match &b.bucket {
                    None => {
                        return err(
                            "backups.bucket".into(),
                            "required when store = \"s3\"".into(),
                        );
                    }
                    Some(n) if n.len() < 3 || n.len() > 63 => {
                        return err(
                            "backups.bucket".into(),
                            format!("bucket name {n:?} must be 3 to 63 characters"),
                        );
                    }
                    _ => {}
                }
                if let Some(u) = &b.endpoint_url {
                    if let Err(m) = BaseUrl::parse(u) {
                        return err("backups.endpoint_url".into(), m);
                    }
                }
                if let Some(p) = b.prefix.as_deref().filter(|p| !p.is_empty()) {
                    if !p.ends_with('/') || crate::keys::validate_prefix(p).is_err() {
                        return err(
                            "backups.prefix".into(),
                            format!("prefix {p:?} must be relative and end with '/'"),
                        );
                    }
                }
            }
            if let Err(m) = b.dataset_specs() {
                return err("backups.datasets".into(), m);
            }
            if let Err(m) = Sample::parse(&b.sample) {
                return err("backups.sample".into(), m);
            }
            if b.concurrency == 0 {
                return err("backups.concurrency".into(), "must be at least 1".into());
            }
            for (i, d) in b.datasets.iter().enumerate() {
                if d.is_empty() || d.contains('/') || d.contains("..") {
                    return err(
                        format!("backups.datasets[{i}]"),
                        format!("invalid dataset name {d:?}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Journal path from config, `$AGENTLAB_OPS_JOURNAL`, or the XDG state directory.
    pub fn journal_path(&self) -> Option<PathBuf> {
        if self.journal.disabled {
            return None;
        }
        self.journal.path.clone().or_else(default_journal_path)
    }
}

/// `$AGENTLAB_OPS_JOURNAL`, else `$XDG_STATE_HOME/agentlab-ops/journal.jsonl`, else
/// `~/.local/state/agentlab-ops/journal.jsonl`.
pub fn default_journal_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AGENTLAB_OPS_JOURNAL").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("agentlab-ops").join("journal.jsonl"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

fn toml_error(origin: &str, text: &str, path: &str, e: &toml::de::Error) -> Error {
    let loc = match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            format!("{origin}:{l}:{c}")
        }
        None => origin.to_string(),
    };
    let msg = e.message().trim().replace('\n', " ");
    // `?` is what serde_path_to_error prints for an empty path.
    let field = if path.is_empty() || path == "." || path == "?" {
        String::new()
    } else {
        format!("{path}: ")
    };
    Error::config(format!("{loc}: {field}{msg}")).with_operation("config.load")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[service]\nbase_url = \"http://127.0.0.1:8080\"\n";

    #[test]
    fn minimal_config_has_spec_defaults() {
        let c = Config::from_toml_str(MINIMAL, "x.toml").unwrap();
        assert_eq!(c.service.health_path, "/health");
        assert_eq!(c.thresholds.error_budget_min.0, 0.5);
        assert_eq!(c.thresholds.resource_max.0, 0.9);
        assert_eq!(
            c.service.base_url.join("/health"),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = format!("{MINIMAL}colour = \"blue\"\n");
        let e = Config::from_toml_str(&text, "env.toml").unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(m.contains("env.toml:3:1"), "{m}");
        assert!(m.contains("colour"), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let text = format!("{MINIMAL}\n[[slo]]\nname = \"availability\"\ntarget = \"high\"\n");
        let m = Config::from_toml_str(&text, "env.toml")
            .unwrap_err()
            .to_string();
        assert!(m.contains("env.toml:6:"), "{m}");
        assert!(m.contains("slo[0].target"), "{m}");
    }

    #[test]
    fn nested_unknown_key() {
        let text = "[service]\nbase_url = \"http://x\"\nhealth_pth = \"/h\"\n";
        let m = Config::from_toml_str(text, "e.toml")
            .unwrap_err()
            .to_string();
        assert!(m.contains("e.toml:3:1"), "{m}");
        assert!(m.contains("health_pth"), "{m}");
    }

    #[test]
    fn inline_secret_is_rejected_without_echo() {
        let text = format!(
            "{MINIMAL}[notify]\nslack_webhook_url = \"https://hooks.example/T000/SECRETVALUE\"\n"
        );
        let m = Config::from_toml_str(&text, "e.toml")
            .unwrap_err()
            .to_string();
        assert!(m.contains("notify.slack_webhook_url"), "{m}");
        assert!(m.contains("${ENV_VAR}"), "{m}");
        assert!(!m.contains("SECRETVALUE"), "{m}");
    }

    #[test]
    fn bad_values_are_rejected() {
        for (snippet, field) in [
            ("[[slo]]\nname = \"a\"\ntarget = 1.5\n", "slo[0].target"),
            (
                "[thresholds]\nresource_max = \"95\"\n",
                "thresholds.resource_max",
            ),
            (
                "[thresholds]\ncheck_timeout = \"5 parsecs\"\n",
                "thresholds.check_timeout",
            ),
            (
                "[[hosts]]\nname = \"a\"\naddress = \"telnet://x\"\n",
                "hosts[0].address",
            ),
            ("[backups]\nstore = \"fs\"\n", "backups.path"),
        ] {
            let m = Config::from_toml_str(&format!("{MINIMAL}{snippet}"), "e.toml")
                .unwrap_err()
                .to_string();
            assert!(m.contains(field), "{snippet}: {m}");
        }
    }

    #[test]
    fn host_addresses() {
        assert_eq!(
            HostAddress::parse("ssh://deploy@10.0.0.5:2222").unwrap(),
            HostAddress::Ssh {
                user: Some("deploy".into()),
                host: "10.0.0.5".into(),
                port: 2222
            }
        );
        assert_eq!(
            HostAddress::parse("ssh://web1").unwrap().to_string(),
            "ssh://web1:22"
        );
        assert!(HostAddress::parse("ssh://u@h:0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert!(parse_duration("abc").is_err());
    }

    #[test]
    fn missing_file_is_not_found() {
        let e = Config::discover(Some(Path::new("/nonexistent/agentlab-ops.toml"))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("/nonexistent/agentlab-ops.toml"));
    }
}
