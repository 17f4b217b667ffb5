//! An [`Environment`]: the backends of one deployment, built once from the config (or by hand
//! from doubles), handed to every runbook.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::alerts::{AlertSource, IncidentSource};
use crate::backup::BackupStore;
use crate::clock::{Clock, SystemClock};
use crate::compute::{Compute, CostSource, LoadBalancer, RetriedBalancer, RetriedCompute};
use crate::config::{BaseUrl, Config, HostAddress, HostConfig, StoreKind, Thresholds};
use crate::config::{DeployProvider, RouterKind};
use crate::deploy::{Deployer, Repo, TrafficRouter};
use crate::error::{Error, Result};
use crate::host::RemoteHost;
use crate::journal::Journal;
use crate::notify::Notifier;
use crate::probe::{HealthProbe, HttpProbe, MemoryProbe};
use crate::service::{HostService, ServiceManager};
use crate::slo::{MemorySloSource, SloEvaluator, SloSource, SloSpec};

pub use crate::host::HostEntry;

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
    /// Deployment workflows, when `[deploy]` is configured.
    pub deployer: Option<Arc<dyn Deployer>>,
    /// The repository releases are tagged in, when `deploy.repo_dir` is set.
    pub repo: Option<Arc<dyn Repo>>,
    /// Blue/green traffic, when `[blue_green]` is configured.
    pub router: Option<Arc<dyn TrafficRouter>>,
    /// Blue, green and staging, each as its own service (health and metrics).
    pub colors: Option<Colors>,
    /// Time (a virtual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// The service on each host (by host name): its manager and its health there.
    pub services: BTreeMap<String, HostService>,
    /// Alerts and silences, when `[alertmanager]` is configured.
    pub alerts: Option<Arc<dyn AlertSource>>,
    /// Incidents and pages, when `[pagerduty]` is configured.
    pub incidents: Option<Arc<dyn IncidentSource>>,
    /// Instances (EC2), when `[compute]` is configured; calls retried.
    pub compute: Option<Arc<dyn Compute>>,
    /// The load balancers of `[compute]`; calls retried.
    pub balancers: Vec<Arc<dyn LoadBalancer>>,
    /// Cost per month and service, when `[cost]` is configured.
    pub costs: Option<Arc<dyn CostSource>>,
}

pub use crate::deploy::Colors;

impl Environment {
    /// Build real backends from a config.
    pub async fn from_config(config: Config) -> Result<Environment> {
        // One call per backend family, each reading its own section.
        let probe: Arc<dyn HealthProbe> = Arc::new(HttpProbe::from_config(&config.service)?);
        let slo_source = crate::slo::from_config(&config, probe.clone())?;
        let backups = crate::backup::from_config(config.backups.as_ref()).await?;
        let hosts = crate::host::from_config(&config)?;
        let notifier = crate::notify::from_config(config.notify.as_ref())?;
        let journal = config.journal_path().map(Journal::new);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (deployer, repo) = crate::deploy::from_config(&config, &hosts, clock.clone())?;
        let (router, colors) = crate::deploy::blue_green_from_config(&config, &hosts)?;
        let services = crate::service::from_config(&config, &hosts)?;
        let alerts = crate::alerts::from_config(&config)?;
        let incidents = crate::alerts::incidents_from_config(&config)?;
        let (compute, balancers, costs) = crate::compute::from_config(&config).await?;
        let (compute, balancers) = retried(&config, compute, balancers);
        Ok(Environment {
            config,
            probe,
            slo_source,
            backups,
            hosts,
            notifier,
            journal,
            deployer,
            repo,
            router,
            colors,
            clock,
            services,
            alerts,
            incidents,
            compute,
            balancers,
            costs,
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
            deployer: None,
            repo: None,
            router: None,
            colors: None,
            clock: None,
            services: BTreeMap::new(),
            alerts: None,
            incidents: None,
            compute: None,
            balancers: Vec::new(),
            costs: None,
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        &self.config.environment
    }

    /// The first 12 hex digits of the SHA-256 of the config as JSON, secrets redacted (a
    /// `Secret` serialises as a placeholder): what the journal records with every run.
    pub fn config_hash(&self) -> String {
        let text = serde_json::to_string(&self.config).unwrap_or_default();
        let mut h = crate::backup::manifest::sha256_hex(text.as_bytes());
        h.truncate(12);
        h
    }

    /// The SLO evaluator for the configured objectives.
    pub fn slo_evaluator(&self) -> SloEvaluator {
        SloEvaluator::new(self.config.slos.iter().map(SloSpec::from).collect())
    }

    /// The host named `name` (`config_invalid` naming it when there is none).
    pub fn host(&self, name: &str) -> Result<&HostEntry> {
        crate::host::named(&self.hosts, Some(name), "hosts")
    }

    /// The host named `name`, or the first one when None (errors name `field`).
    pub fn host_or_first(&self, name: Option<&str>, field: &str) -> Result<&HostEntry> {
        crate::host::named(&self.hosts, name, field)
    }

    /// The service on host `name` (`config_invalid` naming it when there is none).
    pub fn service(&self, name: &str) -> Result<&HostService> {
        self.services.get(name).ok_or_else(|| {
            Error::config(format!(
                "no service manager for host {name:?} (configure [service_manager])"
            ))
        })
    }

    /// The backup store (`config_invalid` when no `[backups]` is configured).
    pub fn store(&self) -> Result<Arc<dyn BackupStore>> {
        self.backups
            .clone()
            .ok_or_else(|| Error::config("no [backups] configured"))
    }

    /// The notifier, if `[notify]` is configured.
    pub fn notifier(&self) -> Option<Arc<dyn Notifier>> {
        self.notifier.clone()
    }

    /// Datasets expected every night.
    pub fn datasets(&self) -> Vec<String> {
        self.config
            .backups
            .as_ref()
            .map(|b| b.datasets.clone())
            .unwrap_or_default()
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
    deployer: Option<Arc<dyn Deployer>>,
    repo: Option<Arc<dyn Repo>>,
    router: Option<Arc<dyn TrafficRouter>>,
    colors: Option<Colors>,
    clock: Option<Arc<dyn Clock>>,
    services: BTreeMap<String, HostService>,
    alerts: Option<Arc<dyn AlertSource>>,
    incidents: Option<Arc<dyn IncidentSource>>,
    compute: Option<Arc<dyn Compute>>,
    balancers: Vec<Arc<dyn LoadBalancer>>,
    costs: Option<Arc<dyn CostSource>>,
}

type Compute2 = (Option<Arc<dyn Compute>>, Vec<Arc<dyn LoadBalancer>>);

/// Every compute and balancer call goes through the one retry policy of `[aws]`.
fn retried(
    config: &Config,
    compute: Option<Arc<dyn Compute>>,
    balancers: Vec<Arc<dyn LoadBalancer>>,
) -> Compute2 {
    let policy = crate::retry::RetryPolicy::new(config.aws.attempts, config.aws.timeout.0);
    let compute = compute.map(|c| Arc::new(RetriedCompute::new(c, policy)) as Arc<dyn Compute>);
    let balancers = balancers
        .into_iter()
        .map(|b| Arc::new(RetriedBalancer::new(b, policy)) as Arc<dyn LoadBalancer>)
        .collect();
    (compute, balancers)
}

impl EnvironmentBuilder {
    /// Instances (sets a default `[compute]` when the config has none); `instances` maps
    /// host names to instance ids.
    pub fn compute(mut self, c: impl Compute + 'static, instances: &[(&str, &str)]) -> Self {
        let cc = self.config.compute.get_or_insert_with(Default::default);
        for (h, i) in instances {
            cc.instances.insert((*h).to_string(), (*i).to_string());
        }
        self.compute = Some(Arc::new(c));
        self
    }
    /// A load balancer.
    pub fn balancer(mut self, b: impl LoadBalancer + 'static) -> Self {
        self.balancers.push(Arc::new(b));
        self
    }
    /// A cost source (sets a default `[cost]` when the config has none).
    pub fn costs(mut self, c: impl CostSource + 'static) -> Self {
        self.config.cost.get_or_insert_with(Default::default);
        self.costs = Some(Arc::new(c));
        self
    }
    /// Deployment workflows (sets a default `[deploy]` section with the memory provider when
    /// the config has none).
    pub fn deployer(mut self, d: impl Deployer + 'static) -> Self {
        self.deployer = Some(Arc::new(d));
        if self.config.deploy.is_none() {
            self.config.deploy = Some(crate::config::DeployConfig::new(DeployProvider::Memory));
        }
        self
    }
    /// The repository releases are tagged in.
    pub fn repo(mut self, r: impl Repo + 'static) -> Self {
        self.repo = Some(Arc::new(r));
        self
    }
    /// Blue/green router and the three services (sets a default `[blue_green]` section with the
    /// memory router when the config has none).
    pub fn blue_green(mut self, router: impl TrafficRouter + 'static, colors: Colors) -> Self {
        self.router = Some(Arc::new(router));
        self.colors = Some(colors);
        if self.config.blue_green.is_none() {
            let u = |s: &str| BaseUrl::parse(s).expect("static URL");
            self.config.blue_green = Some(crate::config::BlueGreenConfig::new(
                RouterKind::Memory,
                u("http://blue.invalid"),
                u("http://green.invalid"),
            ));
        }
        self
    }
    /// The clock runbooks wait on.
    pub fn clock(mut self, c: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(c));
        self
    }
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
    /// The service on a host: a host named `host` must be added too (by [`Self::host`]).
    pub fn service(
        mut self,
        host: &str,
        manager: impl ServiceManager + 'static,
        health: impl HealthProbe + 'static,
    ) -> Self {
        self.services.insert(
            host.to_string(),
            HostService {
                host: host.to_string(),
                manager: Arc::new(manager),
                health: Arc::new(health),
            },
        );
        self
    }
    /// A host with a memory service on it (running, healthy) — the host and its service in
    /// one call, for tests.
    pub fn host_with_service(
        self,
        host: impl RemoteHost + 'static,
        service: &crate::service::MemoryServiceManager,
    ) -> Self {
        let name = host.name().to_string();
        self.host(host)
            .service(&name, service.clone(), service.health_probe())
    }
    /// An incident source.
    pub fn incidents(mut self, i: impl IncidentSource + 'static) -> Self {
        self.incidents = Some(Arc::new(i));
        self
    }
    /// An alert source.
    pub fn alerts(mut self, a: impl AlertSource + 'static) -> Self {
        self.alerts = Some(Arc::new(a));
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
        let (compute, balancers) = retried(&self.config, self.compute, self.balancers);
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
            deployer: self.deployer,
            repo: self.repo,
            router: self.router,
            colors: self.colors,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            services: self.services,
            alerts: self.alerts,
            incidents: self.incidents,
            compute,
            balancers,
            costs: self.costs,
        }
    }
}
