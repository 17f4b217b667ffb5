//! The deployment lab shared by the deployment tests: memory doubles wired into an environment.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use agentlab_ops::runbook::DeployPayload;
use agentlab_ops::slo::SloSource;
use agentlab_ops::{
    Colors, Environment, EnvironmentBuilder, ManualClock, MemoryDeployer, MemoryHost, MemoryProbe,
    MemoryRepo, MemoryRouter, MemorySloSource,
};
use serde_json::json;

pub const DAY: Duration = Duration::from_secs(86_400);

pub fn healthy_probe() -> MemoryProbe {
    let p = MemoryProbe::new();
    p.respond_json("/health", json!({"status": "ok"}));
    p.respond_json(
        "/health/detailed",
        json!({"status": "ok", "components": {"app": {"status": "ok"}}}),
    );
    p
}

/// SLI counts: 30-day budget left `budget` (of a 99.9% SLO), 5-minute error rate `rate5m`.
pub fn slo(budget: f64, rate5m: f64) -> MemorySloSource {
    let s = MemorySloSource::new();
    let total = 10_000_000u64;
    let bad = ((1.0 - budget) * 0.001 * total as f64).round() as u64;
    s.set_counts("availability", 30 * DAY, total - bad, total);
    let bad5 = (rate5m * 10_000.0).round() as u64;
    s.set_counts(
        "availability",
        Duration::from_secs(300),
        10_000 - bad5,
        10_000,
    );
    s
}

pub struct Lab {
    pub deployer: MemoryDeployer,
    pub repo: MemoryRepo,
    pub router: MemoryRouter,
    pub host: MemoryHost,
    pub clock: ManualClock,
}

pub fn lab() -> Lab {
    let host = MemoryHost::new("web-1");
    host.respond_any("git", 0, "");
    host.respond_any("systemctl", 0, "");
    Lab {
        deployer: MemoryDeployer::new(),
        repo: MemoryRepo::new("1.5.0", &["v1.4.2", "v1.4.1"]),
        router: MemoryRouter::new(),
        host,
        clock: ManualClock::starting_now(),
    }
}

pub fn env_with(l: &Lab, slo_source: impl SloSource + 'static) -> Environment {
    builder_with(l, slo_source).build()
}

/// [`env_with`]'s builder, to add to.
pub fn builder_with(l: &Lab, slo_source: impl SloSource + 'static) -> EnvironmentBuilder {
    Environment::builder("deploy")
        .probe(healthy_probe())
        .slo_source(slo_source)
        .slo("availability", 0.999)
        .host(l.host.clone())
        .deployer(l.deployer.clone())
        .repo(l.repo.clone())
        .blue_green(
            l.router.clone(),
            Colors {
                blue: Arc::new(healthy_probe()),
                green: Arc::new(healthy_probe()),
                staging: None,
            },
        )
        .clock(l.clock.clone())
}

/// The deployer was only read (CI checks of the commit), never asked to deploy.
pub fn deployer_only_read(l: &Lab) -> bool {
    l.deployer
        .calls
        .all()
        .iter()
        .all(|c| matches!(c, agentlab_ops::deploy::DeployCall::Checks(_)))
}

pub fn payload(r: &agentlab_ops::Report) -> DeployPayload {
    r.payload_as().unwrap()
}
