//! The environment file (TOML): what the runbooks run against.
//!
//! Discovery order: an explicit path (`--config FILE`), then `AGENTLAB_OPS_CONFIG`, then
//! `./agentlab-ops.toml`. Unknown keys are errors. Every error names the file, the line and
//! the field (`agentlab-ops.toml:7:10: slo[0].target: ...`). Secrets appear only as
//! `${ENV_VAR}` references ([`SecretRef`]) and are resolved when the environment is built.

mod backups;
mod chaos;
mod cloud;
mod deploy;
mod hosts;
mod investigation;
mod load;
mod observability;
mod response;
mod review;
mod secrets;
mod security;
mod services;
mod threshold;
mod validate;
mod values;
pub use backups::*;
pub use chaos::ChaosConfig;
pub use cloud::*;
pub use deploy::*;
pub use hosts::*;
pub use investigation::*;
pub use load::LoadConfig;
pub use observability::*;
pub use response::*;
pub use review::ReviewConfig;
pub use secrets::{Hook, SecretRotation};
pub use security::*;
pub use services::*;
pub use threshold::Threshold;
pub use values::*;
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
    /// Prometheus, for SLOs with `source = "prometheus"`.
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
    /// Alertmanager: the alerts the morning check and the handover review.
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// PagerDuty: open incidents (REST v2) and pages (Events v2).
    #[serde(default)]
    pub pagerduty: Option<PagerDutyConfig>,
    /// How the service runs on each host (systemd or a plain process).
    #[serde(default)]
    pub service_manager: ServiceManagerConfig,
    /// Defaults of the `restart` runbook.
    #[serde(default)]
    pub restart: RestartConfig,
    /// The emergency shutdown.
    #[serde(default)]
    pub emergency: EmergencyConfig,
    /// The weekly maintenance.
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// The SLO Violation Response.
    #[serde(default)]
    pub slo_response: SloResponseConfig,
    /// The Alert Investigation.
    #[serde(default)]
    pub investigation: InvestigationConfig,
    /// The AWS account of `[compute]` and `[cost]` (region, endpoint).
    #[serde(default)]
    pub aws: AwsConfig,
    /// Instances and load balancers (Resource Scaling, snapshots).
    #[serde(default)]
    pub compute: Option<ComputeConfig>,
    /// When the scaling assessment recommends what.
    #[serde(default)]
    pub scaling: ScalingConfig,
    /// The cost report (Cost Explorer), when configured.
    #[serde(default)]
    pub cost: Option<CostConfig>,
    /// The access review, key rotation and the auth timeline.
    #[serde(default)]
    pub access: AccessConfig,
    /// Load tests: allowed targets, bounds, thresholds.
    #[serde(default)]
    pub load: LoadConfig,
    /// Chaos experiments: their folder, the hosts' lease folder.
    #[serde(default)]
    pub chaos: ChaosConfig,
    /// Credentials `rotate_secret` rotates.
    #[serde(default)]
    pub secrets: Vec<SecretRotation>,
    /// The monthly review and its disaster-recovery drill.
    #[serde(default)]
    pub review: ReviewConfig,
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
    /// Alert severities that page (`severity` label).
    #[serde(default = "d_page_severities")]
    pub page_severities: Vec<String>,
    /// Escalate when more unsilenced paging alerts than this fire.
    #[serde(default)]
    pub firing_page_alerts_max: usize,
    /// Escalate when more open high-urgency incidents than this exist.
    #[serde(default)]
    pub high_urgency_incidents_max: usize,
}

fn d_page_severities() -> Vec<String> {
    vec!["critical".into(), "page".into()]
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
            page_severities: d_page_severities(),
            firing_page_alerts_max: 0,
            high_urgency_incidents_max: 0,
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
            prometheus: None,
            alertmanager: None,
            pagerduty: None,
            service_manager: ServiceManagerConfig::default(),
            restart: RestartConfig::default(),
            emergency: EmergencyConfig::default(),
            maintenance: MaintenanceConfig::default(),
            slo_response: SloResponseConfig::default(),
            investigation: InvestigationConfig::default(),
            aws: AwsConfig::default(),
            compute: None,
            scaling: ScalingConfig::default(),
            cost: None,
            access: AccessConfig::default(),
            secrets: Vec::new(),
            load: LoadConfig::default(),
            chaos: ChaosConfig::default(),
            review: ReviewConfig::default(),
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

pub(crate) fn toml_error(origin: &str, text: &str, path: &str, e: &toml::de::Error) -> Error {
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
mod tests;
