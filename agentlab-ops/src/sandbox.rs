//! A simulated Agent Lab on 127.0.0.1, so every runbook runs with no cloud account.
//!
//! [`Sandbox::start`] serves `/health`, `/health/detailed`, `/metrics/slo` and
//! `/metrics/history` on a random loopback port, lays out a backup tree for the last 35 days
//! in a temporary directory (filesystem store), and defines two local hosts (`web-1`, `web-2`)
//! whose `uptime`, `free`, `df` and `nproc` are small scripts printing the scenario's numbers.
//! Each [`Scenario`] exercises its own escalation path. Everything is removed on drop.

mod alerting;
mod cloud;
mod files;
mod history;
mod incident;
use files::*;
#[cfg(unix)]
mod services;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;

use crate::config::{
    BackupsConfig, BaseUrl, Config, HostAddress, HostConfig, SloConfig, StoreKind,
};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};

/// What the simulated service is going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scenario {
    /// All green.
    Healthy,
    /// A component degraded, 40% budget left, a ticket burn.
    Degraded,
    /// Budget overspent and a page burn.
    BudgetExhausted,
    /// Tonight's `sessions` backup is absent.
    BackupsMissing,
    /// `/app` on web-2 is 96% full.
    DiskFull,
    /// One of tonight's session objects has a flipped byte.
    CorruptObject,
    /// Tonight's `sessions` backup has no manifest (incomplete).
    MissingManifest,
    /// Tonight's `sessions` backup is 60% smaller than usual.
    SizeDrop,
    /// A blue-green rollout whose green version stays healthy at every traffic step.
    GreenHealthy,
    /// A blue-green rollout whose green version fails (8% errors) once it gets 50% of traffic.
    GreenFailsAt50,
    /// An error burst in web-1's log 20 minutes ago after a deploy, a new exception, one
    /// client flooding, OpenRouter down, HighErrorRate firing: for `investigate`.
    Incident,
}

/// What the simulated service serves: the scenario, and when its incident started.
#[derive(Debug)]
struct Sim {
    scenario: Scenario,
    incident: chrono::DateTime<chrono::Utc>,
}

impl Scenario {
    /// All scenarios.
    pub const ALL: [Scenario; 11] = [
        Scenario::Healthy,
        Scenario::Degraded,
        Scenario::BudgetExhausted,
        Scenario::BackupsMissing,
        Scenario::DiskFull,
        Scenario::CorruptObject,
        Scenario::MissingManifest,
        Scenario::SizeDrop,
        Scenario::GreenHealthy,
        Scenario::GreenFailsAt50,
        Scenario::Incident,
    ];
    /// Name as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::Degraded => "degraded",
            Scenario::BudgetExhausted => "budget-exhausted",
            Scenario::BackupsMissing => "backups-missing",
            Scenario::DiskFull => "disk-full",
            Scenario::CorruptObject => "corrupt-object",
            Scenario::MissingManifest => "missing-manifest",
            Scenario::SizeDrop => "size-drop",
            Scenario::GreenHealthy => "green-healthy",
            Scenario::GreenFailsAt50 => "green-fails-at-50",
            Scenario::Incident => "incident",
        }
    }
}

impl FromStr for Scenario {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::ConfigInvalid,
                    format!(
                        "unknown sandbox scenario {s:?} (one of: {})",
                        Scenario::ALL.map(|x| x.as_str()).join(", ")
                    ),
                )
            })
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A running sandbox. Stops and cleans up on drop.
#[derive(Debug)]
pub struct Sandbox {
    scenario: Scenario,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    config: Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    green_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The green deployment target: healthy, and with an error rate that depends on the share of
/// traffic the (nginx-format) upstream file gives it.
#[derive(Debug)]
struct Green {
    scenario: Scenario,
    upstream: PathBuf,
}

impl Green {
    fn share(&self) -> u8 {
        std::fs::read_to_string(&self.upstream)
            .ok()
            .and_then(|t| crate::deploy::router::parse_green(&t))
            .unwrap_or(0)
    }
}

async fn green_health() -> impl IntoResponse {
    Json(json!({"status": "ok", "version": "1.5.0"}))
}

async fn green_detailed() -> impl IntoResponse {
    Json(
        json!({"status": "ok", "components": {"app": {"status": "ok"}, "openrouter": {"status": "ok"}}}),
    )
}

async fn green_slo(State(g): State<Arc<Green>>) -> impl IntoResponse {
    let err = if g.scenario == Scenario::GreenFailsAt50 && g.share() >= 50 {
        0.08
    } else {
        0.0005
    };
    let w = |e: f64| {
        windows(&[
            ("5m", 2_000, e),
            ("1h", 24_000, e),
            ("30d", 8_640_000, 0.0002),
        ])
    };
    Json(json!({"slos": [
        {"name": "availability", "target": 0.999, "windows": w(err)},
        {"name": "latency", "target": 0.99, "windows": w(0.001)},
    ]}))
}

fn windows(errors_frac: &[(&str, u64, f64)]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (w, total, err) in errors_frac {
        let bad = (*total as f64 * err).round() as u64;
        m.insert(w.to_string(), json!({"good": total - bad, "total": total}));
    }
    serde_json::Value::Object(m)
}

fn slo_body(s: Scenario) -> serde_json::Value {
    // (window, events, error ratio) for a 99.9% availability SLO.
    let avail = match s {
        Scenario::Degraded => windows(&[
            ("5m", 1_000, 0.0015),
            ("30m", 6_000, 0.0015),
            ("1h", 12_000, 0.0015),
            ("6h", 72_000, 0.0015),
            ("3d", 864_000, 0.0015),
            ("30d", 8_640_000, 0.0006),
        ]),
        Scenario::BudgetExhausted => windows(&[
            ("5m", 1_000, 0.03),
            ("30m", 6_000, 0.03),
            ("1h", 12_000, 0.03),
            ("6h", 72_000, 0.012),
            ("3d", 864_000, 0.004),
            ("30d", 8_640_000, 0.00125),
        ]),
        _ => windows(&[
            ("5m", 1_000, 0.0),
            ("30m", 6_000, 0.0),
            ("1h", 12_000, 0.0001),
            ("6h", 72_000, 0.0001),
            ("3d", 864_000, 0.0001),
            ("30d", 8_640_000, 0.0002),
        ]),
    };
    let latency = windows(&[
        ("5m", 1_000, 0.0),
        ("30m", 6_000, 0.001),
        ("1h", 12_000, 0.001),
        ("6h", 72_000, 0.001),
        ("3d", 864_000, 0.001),
        ("30d", 8_640_000, 0.002),
    ]);
    json!({"slos": [
        {"name": "availability", "target": 0.999, "windows": avail},
        {"name": "latency", "target": 0.99, "windows": latency},
    ]})
}

async fn health(State(sim): State<Arc<Sim>>) -> impl IntoResponse {
    let s = &sim.scenario;
    let _ = s;
    (
        StatusCode::OK,
        Json(json!({"status": "ok", "version": "1.4.2"})),
    )
}

async fn detailed(State(sim): State<Arc<Sim>>) -> impl IntoResponse {
    let s = &sim.scenario;
    let (llm, status) = match s {
        Scenario::Degraded => (
            json!({"status": "degraded", "message": "OpenRouter p95 latency 4.2s"}),
            "degraded",
        ),
        Scenario::Incident => (
            json!({"status": "down", "message": "OpenRouter answers 503"}),
            "degraded",
        ),
        _ => (json!({"status": "ok"}), "ok"),
    };
    Json(json!({
        "status": status,
        "components": {
            "app": {"status": "ok"},
            "sessions_store": {"status": "ok"},
            "telemetry": {"status": "ok"},
            "openrouter": llm,
        }
    }))
}

async fn slo(State(sim): State<Arc<Sim>>) -> impl IntoResponse {
    let s = &sim.scenario;
    Json(slo_body(*s))
}

/// `GET /metrics/history[?days=N]`: the service's last 30 days (what the scaling assessment
/// reads), each host's last N days (default 30, at most 400) and the slowest endpoints.
async fn history(
    State(sim): State<Arc<Sim>>,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> impl IntoResponse {
    let s = &sim.scenario;
    let today = chrono::Utc::now().date_naive();
    let days: Vec<_> = (0..30)
        .map(|i| {
            let d = today - chrono::Duration::days(29 - i);
            let disk = if *s == Scenario::DiskFull { 0.66 + 0.01 * i as f64 } else { 0.40 + 0.002 * i as f64 };
            json!({"date": d.format("%Y-%m-%d").to_string(), "cpu": 0.35, "memory": 0.55, "disk": disk})
        })
        .collect();
    let n = q
        .get("days")
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(30)
        .clamp(1, 400);
    let hosts =
        json!({"web-1": history::host_days(*s, 0, n), "web-2": history::host_days(*s, 1, n)});
    Json(json!({
        "resources": {"last_30_days": days, "hosts": hosts},
        "endpoints": history::endpoints(*s),
    }))
}

impl Sandbox {
    /// Start a sandbox for `scenario`.
    pub async fn start(scenario: Scenario) -> Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("agentlab-sandbox-")
            .tempdir()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let sim = Arc::new(Sim {
            scenario,
            incident: incident::incident_at(chrono::Utc::now()),
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/health/detailed", get(detailed))
            .route("/metrics/slo", get(slo))
            .route("/metrics/history", get(history))
            .route("/api/v2/alerts", get(alerting::alerts))
            .route("/api/v2/silences", get(alerting::silences))
            .route("/metrics", get(incident::metrics))
            .route("/deps/openrouter/api/v1/models", get(incident::openrouter))
            .with_state(sim.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });

        // Green: a second service on its own port, routed to through an upstream file.
        let upstream = dir.path().join("nginx").join("agentlab-upstream.conf");
        let green_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let green_addr = green_listener.local_addr()?;
        let green = Router::new()
            .route("/health", get(green_health))
            .route("/health/detailed", get(green_detailed))
            .route("/metrics/slo", get(green_slo))
            .with_state(Arc::new(Green {
                scenario,
                upstream: upstream.clone(),
            }));
        let (gtx, grx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(green_listener, green)
                .with_graceful_shutdown(async {
                    let _ = grx.await;
                })
                .await;
        });

        let root = backups(dir.path(), scenario)?;
        let bin = make_bin(dir.path())?;
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let mut cfg =
            Config::new(BaseUrl::parse(&format!("http://{addr}")).map_err(Error::config)?);
        cfg.environment = format!("sandbox-{scenario}");
        cfg.service.timeout = crate::config::Dur(std::time::Duration::from_secs(2));
        cfg.slos = vec![
            SloConfig::new("availability", 0.999),
            SloConfig::new("latency", 0.99),
        ];
        let mut b = BackupsConfig::new(StoreKind::Fs, Some(root));
        b.data_dir = live_data(dir.path())?.display().to_string();
        b.source_host = Some("web-1".into());
        cfg.backups = Some(b);
        let web2_app = if scenario == Scenario::DiskFull {
            0.96
        } else {
            0.52
        };
        for (name, mem, disks) in [
            ("web-1", 0.61, vec![("/", 0.41), ("/app", 0.37)]),
            ("web-2", 0.58, vec![("/", 0.44), ("/app", web2_app)]),
        ] {
            let out = host_outputs(dir.path(), name, mem, &disks)?;
            let mut h = HostConfig::new(name, HostAddress::Local);
            h.env = BTreeMap::from([
                ("PATH".to_string(), path.clone()),
                (
                    "AGENTLAB_SANDBOX_HOST".to_string(),
                    out.display().to_string(),
                ),
            ]);
            cfg.hosts.push(h);
        }
        // Deployments: a command deployer (scripts that succeed), the nginx router writing the
        // upstream file green reads (check and reload are no-ops), short waits.
        let live = dir.path().join("live");
        std::fs::create_dir_all(&live)?;
        let mut d = crate::config::DeployConfig::new(crate::config::DeployProvider::Command);
        let script = |name: &str| {
            vec![
                bin.join(name).display().to_string(),
                "{environment}".into(),
                "{version}".into(),
            ]
        };
        d.commands = BTreeMap::from([
            ("deploy.yml".to_string(), script("deploy")),
            ("rollback.yml".to_string(), script("deploy")),
        ]);
        d.command_host = Some("web-1".into());
        d.maintenance_flag = live.join("MAINTENANCE_MODE").display().to_string();
        d.incident_flag = live.join("INCIDENT_ACTIVE").display().to_string();
        cfg.emergency.flag = live.join("EMERGENCY_SHUTDOWN").display().to_string();
        cfg.maintenance.flag = live.join("MAINTENANCE_MODE").display().to_string();
        cfg.maintenance.tls_endpoint = String::new();
        d.monitor_period = crate::config::Dur(std::time::Duration::from_secs(4));
        d.monitor_interval = crate::config::Dur(std::time::Duration::from_secs(2));
        d.poll_interval = crate::config::Dur(std::time::Duration::from_millis(200));
        d.health_wait = crate::config::Dur(std::time::Duration::from_secs(10));
        d.manual_rollback = vec![vec!["true".into()]];
        cfg.deploy = Some(d);
        let green_url = BaseUrl::parse(&format!("http://{green_addr}")).map_err(Error::config)?;
        let mut bg = crate::config::BlueGreenConfig::new(
            crate::config::RouterKind::Nginx,
            BaseUrl::parse(&format!("http://{addr}")).map_err(Error::config)?,
            green_url.clone(),
        );
        bg.router_host = Some("web-1".into());
        bg.upstream_file = upstream.display().to_string();
        bg.blue_server = Some(addr.to_string());
        bg.green_server = Some(green_addr.to_string());
        bg.check_command = vec!["true".into()];
        bg.reload_command = vec!["true".into()];
        bg.staging_url = Some(green_url);
        bg.measurements = 2;
        bg.interval = crate::config::Dur(std::time::Duration::from_millis(300));
        cfg.blue_green = Some(bg);
        write(
            &upstream,
            &format!(
                "# managed by agentlab-ops: green 0%\nupstream agentlab {{\n    server {addr} weight=100;\n    server {green_addr} weight=1 down;\n}}\n"
            ),
        )?;

        #[cfg(unix)]
        services::install(dir.path(), &bin, &mut cfg, &format!("http://{addr}"))?;
        cfg.alertmanager = Some(crate::config::AlertmanagerConfig {
            url: BaseUrl::parse(&format!("http://{addr}")).map_err(Error::config)?,
            timeout: crate::config::Dur(std::time::Duration::from_secs(2)),
            attempts: 1,
        });
        incident::install(dir.path(), &mut cfg, &format!("http://{addr}"), &sim)?;
        history::install(dir.path(), &live, scenario, &mut cfg)?;
        cfg.handover.primary = Some("Sandbox Primary +1-555-0100".into());
        cfg.handover.backup = Some("Sandbox Backup +1-555-0101".into());
        Ok(Sandbox {
            scenario,
            addr,
            dir,
            config: cfg,
            shutdown: Some(tx),
            green_shutdown: Some(gtx),
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The temporary directory holding backups and host scripts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The sandbox's config (journal: the default location unless changed).
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// Mutable access to the config before building the environment.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }
    /// A real environment over the sandbox (HTTP probe, filesystem store, local hosts).
    pub async fn environment(&self) -> Result<Environment> {
        let mut env = Environment::from_config(self.config.clone()).await?;
        // No PagerDuty account in a sandbox: an incident source in memory, with no incident.
        if env.incidents.is_none() {
            env.incidents = Some(std::sync::Arc::new(
                crate::alerts::MemoryIncidentSource::new(),
            ));
        }
        cloud::attach(&mut env);
        Ok(env)
    }
    /// Stop serving.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(tx) = self.green_shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
        #[cfg(unix)]
        services::stop_all(self.dir.path());
    }
}
