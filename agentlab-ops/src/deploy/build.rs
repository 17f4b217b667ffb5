//! The deployment backends `[deploy]` and `[blue_green]` describe.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{BaseUrl, Config, DeployProvider, RouterKind};
use crate::error::{Error, Result};
use crate::host::{HostEntry, named};
use crate::probe::{HealthProbe, HttpProbe};
use crate::retry::RetryPolicy;

use super::{
    CommandDeployer, Deployer, GitHubActions, GitHubOptions, GitRepo, MemoryDeployer, MemoryRouter,
    NginxRouter, Repo, TrafficRouter,
};

/// The services of a blue-green deployment.
#[derive(Debug, Clone)]
pub struct Colors {
    /// The version serving now.
    pub blue: Arc<dyn HealthProbe>,
    /// The new version.
    pub green: Arc<dyn HealthProbe>,
    /// Staging, validated first.
    pub staging: Option<Arc<dyn HealthProbe>>,
}

/// The deployer and repository of `[deploy]` (None without the section).
#[allow(clippy::type_complexity)]
pub fn from_config(
    config: &Config,
    hosts: &[HostEntry],
    clock: Arc<dyn Clock>,
) -> Result<(Option<Arc<dyn Deployer>>, Option<Arc<dyn Repo>>)> {
    let Some(d) = &config.deploy else {
        return Ok((None, None));
    };
    let deployer: Arc<dyn Deployer> = match d.provider {
        DeployProvider::Github => {
            let token = d
                .token
                .as_ref()
                .ok_or_else(|| Error::config("deploy.token: required for github"))?;
            // Read when the API is first called, not now.
            let token = crate::config::LazySecret::deferred(token.clone(), "deploy.token");
            let timeout = config
                .service
                .timeout
                .0
                .max(std::time::Duration::from_secs(10));
            let opts = GitHubOptions {
                api_url: d.api_url.clone(),
                repository: d.repository.clone().unwrap_or_default(),
                git_ref: d.git_ref.clone(),
                token,
                policy: RetryPolicy::new(config.service.attempts, timeout),
                max_rate_wait: d.max_rate_wait.0,
                discovery_timeout: std::time::Duration::from_secs(120),
            };
            Arc::new(GitHubActions::new(opts, clock)?)
        }
        DeployProvider::Command => Arc::new(CommandDeployer::new(
            named(hosts, d.command_host.as_deref(), "deploy.command_host")?
                .host
                .clone(),
            d.commands.clone(),
            d.timeout.0,
        )),
        DeployProvider::Memory => Arc::new(MemoryDeployer::new()),
    };
    let repo: Option<Arc<dyn Repo>> = d.repo_dir.as_ref().map(|dir| {
        Arc::new(GitRepo::new(
            dir.clone(),
            d.remote.clone(),
            d.version_file.clone(),
        )) as Arc<dyn Repo>
    });
    Ok((Some(deployer), repo))
}

/// The router and the colours' probes of `[blue_green]` (None without the section).
#[allow(clippy::type_complexity)]
pub fn blue_green_from_config(
    config: &Config,
    hosts: &[HostEntry],
) -> Result<(Option<Arc<dyn TrafficRouter>>, Option<Colors>)> {
    let Some(b) = &config.blue_green else {
        return Ok((None, None));
    };
    let router: Arc<dyn TrafficRouter> = match b.router {
        RouterKind::Memory => Arc::new(MemoryRouter::new()),
        RouterKind::Nginx => Arc::new(NginxRouter::new(
            named(hosts, b.router_host.as_deref(), "blue_green.router_host")?
                .host
                .clone(),
            b.upstream_file.clone(),
            b.upstream.clone(),
            b.blue_server.clone().unwrap_or_default(),
            b.green_server.clone().unwrap_or_default(),
            b.check_command.clone(),
            b.reload_command.clone(),
        )),
    };
    let policy = RetryPolicy::new(config.service.attempts, config.service.timeout.0);
    let probe = |u: &BaseUrl| -> Result<Arc<dyn HealthProbe>> {
        Ok(Arc::new(HttpProbe::new(u.clone(), policy)?))
    };
    let colors = Colors {
        blue: probe(&b.blue_url)?,
        green: probe(&b.green_url)?,
        staging: b.staging_url.as_ref().map(probe).transpose()?,
    };
    Ok((Some(router), Some(colors)))
}
