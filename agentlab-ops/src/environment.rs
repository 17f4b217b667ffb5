//! An [`Environment`]: the backends of one deployment, built once from the config (or by hand
//! from doubles), handed to every runbook.

use std::future::Future;
use std::sync::Arc;

use crate::backup::{BackupStore, FsBackupStore, MemoryBackupStore};
use crate::config::{BaseUrl, Config, HostAddress, HostConfig, StoreKind, Thresholds};
use crate::error::{Error, Result};
use crate::host::{LocalHost, RemoteHost};
use crate::journal::Journal;
use crate::notify::{Notifier, SlackNotifier};
use crate::probe::{HealthProbe, HttpProbe, MemoryProbe};
use crate::report::{Report, Severity};
use crate::runbook::run::{Run, RunOptions, execute};
use crate::slo::{HttpSloSource, MemorySloSource, SloEvaluator, SloSource, SloSpec};

/// A host with its settings.
#[derive(Debug, Clone)]
pub struct HostEntry {
    /// Settings (name, mounts).
    pub config: HostConfig,
    /// The backend.
    pub host: Arc<dyn RemoteHost>,
}

/// Everything a runbook needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Environment {
    /// The configuration (thresholds, datasets, paths).
    pub config: Config,
    /// Health endpoints.
    pub probe: Arc<dyn HealthProbe>,
    /// SLI counts.
    pub slo_source: Arc<dyn SloSource>,
    /// Backups, when configured.
    pub backups: Option<Arc<dyn BackupStore>>,
    /// Hosts.
    pub hosts: Vec<HostEntry>,
    /// Notifications, when configured.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Audit journal, unless disabled.
    pub journal: Option<Journal>,
}

impl Environment {
    /// Build real backends from a config.
    pub async fn from_config(config: Config) -> Result<Environment> {
        let probe: Arc<dyn HealthProbe> = Arc::new(HttpProbe::from_config(&config.service)?);
        let slo_source: Arc<dyn SloSource> = Arc::new(HttpSloSource::new(
            probe.clone(),
            config.service.slo_path.clone(),
        ));
        let backups: Option<Arc<dyn BackupStore>> = match &config.backups {
            None => None,
            Some(b) => Some(match b.store {
                StoreKind::Fs => {
                    let path = b.path.clone().ok_or_else(|| {
                        Error::config("backups.path: required when store = \"fs\"")
                    })?;
                    Arc::new(FsBackupStore::new(path)?)
                }
                StoreKind::Memory => Arc::new(MemoryBackupStore::new()),
                #[cfg(feature = "s3")]
                StoreKind::S3 => Arc::new(
                    crate::backup::S3BackupStore::connect(crate::backup::S3Options::from_config(
                        b,
                    )?)
                    .await?,
                ),
                #[cfg(not(feature = "s3"))]
                StoreKind::S3 => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Unsupported,
                        "backups: built without the \"s3\" feature",
                    ));
                }
            }),
        };
        let mut hosts = Vec::new();
        for h in &config.hosts {
            let host: Arc<dyn RemoteHost> = match &h.address {
                HostAddress::Local => Arc::new(
                    LocalHost::new(h.name.clone())
                        .with_env(h.env.clone())
                        .with_timeout(h.command_timeout.0),
                ),
                #[cfg(feature = "ssh")]
                HostAddress::Ssh { .. } => Arc::new(crate::host::SshHost::new(
                    h.name.clone(),
                    crate::host::SshOptions::from_config(h, &config)?,
                )),
                #[cfg(not(feature = "ssh"))]
                HostAddress::Ssh { .. } => {
                    return Err(Error::new(
                        crate::error::ErrorKind::Unsupported,
                        format!("hosts: {}: built without the \"ssh\" feature", h.name),
                    )
                    .with_operation("environment.build"));
                }
            };
            hosts.push(HostEntry {
                config: h.clone(),
                host,
            });
        }
        let notifier: Option<Arc<dyn Notifier>> = match &config.notify {
            None => None,
            Some(n) => Some(Arc::new(SlackNotifier::new(
                n.slack_webhook_url.resolve("notify.slack_webhook_url")?,
                n.timeout.0,
            )?)),
        };
        let journal = config.journal_path().map(Journal::new);
        Ok(Environment {
            config,
            probe,
            slo_source,
            backups,
            hosts,
            notifier,
            journal,
        })
    }

    /// Start building an environment from doubles (or any backends).
    pub fn builder(name: &str) -> EnvironmentBuilder {
        let mut config = Config::new(BaseUrl::parse("http://memory.invalid").expect("static URL"));
        config.environment = name.to_string();
        config.journal.disabled = true;
        EnvironmentBuilder {
            config,
            probe: None,
            slo_source: None,
            backups: None,
            hosts: Vec::new(),
            notifier: None,
            journal: None,
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        &self.config.environment
    }

    /// The SLO evaluator for the configured objectives.
    pub fn slo_evaluator(&self) -> SloEvaluator {
        SloEvaluator::new(self.config.slos.iter().map(SloSpec::from).collect())
    }

    /// Datasets expected every night.
    pub fn datasets(&self) -> Vec<String> {
        self.config
            .backups
            .as_ref()
            .map(|b| b.datasets.clone())
            .unwrap_or_default()
    }

    /// Run a runbook body through the step recorder and append the report to the journal.
    pub async fn execute<F, Fut>(&self, runbook: &str, opts: &RunOptions, body: F) -> Report
    where
        F: FnOnce(Run) -> Fut,
        Fut: Future<Output = Result<serde_json::Value>>,
    {
        let mut report = execute(runbook, self.name(), opts, body).await;
        if let (Some(j), false) = (&self.journal, opts.no_journal) {
            if let Err(e) = j.append(&report) {
                report.findings.push(crate::report::Finding {
                    severity: Severity::Warning,
                    subject: "journal".into(),
                    message: crate::secret::redact(&format!("not journaled: {e}")),
                });
            }
        }
        report
    }

    /// Close every host connection.
    pub async fn close(&self) {
        for h in &self.hosts {
            let _ = h.host.close().await;
        }
    }
}

/// Builds an [`Environment`] by hand. Unset backends default to empty memory doubles.
#[derive(Debug)]
pub struct EnvironmentBuilder {
    config: Config,
    probe: Option<Arc<dyn HealthProbe>>,
    slo_source: Option<Arc<dyn SloSource>>,
    backups: Option<Arc<dyn BackupStore>>,
    hosts: Vec<HostEntry>,
    notifier: Option<Arc<dyn Notifier>>,
    journal: Option<Journal>,
}

impl EnvironmentBuilder {
    /// Health probe.
    pub fn probe(mut self, p: impl HealthProbe + 'static) -> Self {
        self.probe = Some(Arc::new(p));
        self
    }
    /// SLI source.
    pub fn slo_source(mut self, s: impl SloSource + 'static) -> Self {
        self.slo_source = Some(Arc::new(s));
        self
    }
    /// An objective to evaluate.
    pub fn slo(mut self, name: &str, target: f64) -> Self {
        self.config
            .slos
            .push(crate::config::SloConfig::new(name, target));
        self
    }
    /// Backup store and the datasets expected in it.
    pub fn backups(mut self, store: impl BackupStore + 'static, datasets: &[&str]) -> Self {
        self.backups = Some(Arc::new(store));
        let mut b = crate::config::BackupsConfig::new(StoreKind::Memory, None);
        b.datasets = datasets.iter().map(|d| d.to_string()).collect();
        self.config.backups = Some(b);
        self
    }
    /// A host.
    pub fn host(mut self, host: impl RemoteHost + 'static) -> Self {
        let cfg = HostConfig::new(host.name().to_string(), HostAddress::Local);
        self.hosts.push(HostEntry {
            config: cfg,
            host: Arc::new(host),
        });
        self
    }
    /// A notifier.
    pub fn notifier(mut self, n: impl Notifier + 'static) -> Self {
        self.notifier = Some(Arc::new(n));
        self
    }
    /// Escalation thresholds.
    pub fn thresholds(mut self, t: Thresholds) -> Self {
        self.config.thresholds = t;
        self
    }
    /// Change the config directly (handover details, paths).
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }
    /// Journal runs to this file.
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal = Some(Journal::new(path));
        self
    }
    /// Build.
    pub fn build(self) -> Environment {
        Environment {
            config: self.config,
            probe: self.probe.unwrap_or_else(|| Arc::new(MemoryProbe::new())),
            slo_source: self
                .slo_source
                .unwrap_or_else(|| Arc::new(MemorySloSource::new())),
            backups: self.backups,
            hosts: self.hosts,
            notifier: self.notifier,
            journal: self.journal,
        }
    }
}
