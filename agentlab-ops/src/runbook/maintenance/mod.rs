//! The spec's **Weekly Maintenance** runbook, host by host so the service stays up where there
//! is more than one: a notice ahead of time; then on each host the maintenance flag (guarded by
//! a dead-man's switch on the host), dependency updates (pip, old → new), security updates
//! (apt-get, the packages upgraded), log rotation, the app's database maintenance, the TLS
//! certificate's expiry, a restart with its health poll, the flag removed; once at the end the
//! backup restoration test and the service's health. A failed step stops that host's
//! maintenance (and the hosts after it), undoes its package upgrades, and always removes its
//! flag; the hosts before it keep their work.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::{Dur, MaintenanceConfig, fill_host};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::HostEntry;
use crate::probe::tls::CertInfo;
use crate::report::{Action, Report};
use crate::runbook::registry::{Definition, OptionDoc, Validate, check_args, defaults_of};
use crate::runbook::run::{Change, Run, RunOptions, Undo};
use crate::runbook::service_ops::{HostOutcome, HostRestart, restart_host, restarted_since};

mod flag;
mod once;
pub mod steps;

pub use steps::PackageChange;

/// Options of `weekly_maintenance`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceOptions {
    /// Only these hosts, in this order (default: every host).
    pub hosts: Vec<String>,
    /// How long before the start the notice goes out (default `[maintenance] notice`).
    pub notice: Option<Dur>,
    /// Post the notice and go on at once.
    pub no_wait: bool,
    /// Only security updates.
    pub security_only: bool,
}

impl Validate for MaintenanceOptions {}

/// How one host's maintenance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Every step done.
    Done,
    /// A step failed (see `failed_step`).
    Failed,
    /// Not started: an earlier host failed.
    Skipped,
    /// Dry-run.
    Planned,
}

/// One host's maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMaintenance {
    /// Host.
    pub host: String,
    /// How it ended.
    pub state: HostState,
    /// Python packages that changed.
    pub pip: Vec<PackageChange>,
    /// System packages upgraded.
    pub apt: Vec<PackageChange>,
    /// logrotate's output.
    pub logrotate: Option<String>,
    /// The database command's output.
    pub database: Option<String>,
    /// The TLS certificate.
    pub certificate: Option<CertInfo>,
    /// The restart.
    pub restart: Option<HostRestart>,
    /// The step that failed, and why.
    pub failed_step: Option<String>,
    /// Why.
    pub error: Option<String>,
    /// The flag was removed at the end.
    pub flag_removed: bool,
}

impl HostMaintenance {
    fn new(host: &str, state: HostState) -> Self {
        HostMaintenance {
            host: host.to_string(),
            state,
            pip: Vec::new(),
            apt: Vec::new(),
            logrotate: None,
            database: None,
            certificate: None,
            restart: None,
            failed_step: None,
            error: None,
            flag_removed: false,
        }
    }
}

/// The payload of `weekly_maintenance`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaintenancePayload {
    /// Whether the notice was sent.
    pub notice_sent: bool,
    /// Every host, in order.
    pub hosts: Vec<HostMaintenance>,
    /// The backup restoration test's verdict.
    pub restore_test: Option<String>,
    /// The service healthy at the end.
    pub healthy: Option<bool>,
}

/// `[maintenance]` with the host's placeholders filled.
fn for_host(c: &MaintenanceConfig, h: &HostEntry) -> MaintenanceConfig {
    let f = |s: &String| fill_host(s, &h.config);
    let fv = |v: &Vec<String>| v.iter().map(f).collect::<Vec<_>>();
    MaintenanceConfig {
        flag: f(&c.flag),
        pip: f(&c.pip),
        requirements: f(&c.requirements),
        pip_args: fv(&c.pip_args),
        apt_get: fv(&c.apt_get),
        security_sources: f(&c.security_sources),
        logrotate: fv(&c.logrotate),
        database: fv(&c.database),
        workdir: f(&c.workdir),
        tls_endpoint: f(&c.tls_endpoint),
        tls_server_name: f(&c.tls_server_name),
        ..c.clone()
    }
}

/// One host's maintenance: what every step needs.
struct Ctx<'a> {
    env: &'a Environment,
    run: &'a Run,
    h: &'a HostEntry,
    c: MaintenanceConfig,
    security_only: bool,
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        &self.h.config.name
    }

    /// A change step `<host>:<step>`, safe to repeat (a resume runs it again when it was in
    /// flight: every maintenance command converges — pip and apt upgrade to what is there,
    /// logrotate keeps its own state, the app's database maintenance is its own cleanup); a
    /// failure is `(step, error)`.
    async fn change<T, F>(
        &self,
        step: &str,
        plan: String,
        f: F,
    ) -> std::result::Result<Option<T>, (String, Error)>
    where
        T: Serialize + serde::de::DeserializeOwned,
        F: std::future::Future<Output = Result<T>>,
    {
        let name = format!("{}:{step}", self.name());
        self.run
            .apply(Change::new(name, plan).idempotent(), f)
            .await
            .map_err(|e| (step.to_string(), e))
    }
}

/// The spec's Weekly Maintenance.
pub async fn weekly_maintenance(
    env: &Environment,
    o: &MaintenanceOptions,
    ro: &RunOptions,
) -> Report {
    let mut ro = ro.clone();
    ro.deadline = ro.deadline.or(Some(env.config.maintenance.deadline.0));
    env.execute("weekly_maintenance", &ro, |run| async move {
        let hosts: Vec<&HostEntry> = if o.hosts.is_empty() {
            env.hosts.iter().collect()
        } else {
            o.hosts.iter().map(|h| env.host(h)).collect::<Result<_>>()?
        };
        if hosts.is_empty() {
            return Err(Error::config("weekly_maintenance: no [[hosts]]"));
        }
        for h in &hosts {
            env.service(&h.config.name)?;
        }
        let mut out = MaintenancePayload {
            notice_sent: once::notice(env, &run, o).await,
            ..MaintenancePayload::default()
        };
        let mut stopped = false;
        for h in hosts {
            if stopped {
                out.hosts
                    .push(HostMaintenance::new(&h.config.name, HostState::Skipped));
                continue;
            }
            let c = Ctx {
                env,
                run: &run,
                h,
                c: for_host(&env.config.maintenance, h),
                security_only: o.security_only,
            };
            // One scope per host: a resumed run does not touch a host it finished.
            let m = run
                .scope(format!("host:{}", h.config.name), maintain(&c))
                .await;
            stopped = m.state == HostState::Failed;
            out.hosts.push(m);
        }
        out.restore_test = once::restore_test(env, &run).await;
        out.healthy = once::validate(env, &run).await;
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

/// One host: the flag, the steps, the flag removed — whatever happened.
async fn maintain(c: &Ctx<'_>) -> HostMaintenance {
    let mut m = HostMaintenance::new(c.name(), HostState::Planned);
    let pip_undo = format!("{}:pip:undo", c.name());
    let result = async {
        let flag_undo = flag::set(c).await?;
        let r = steps_of(c, &mut m, &pip_undo).await;
        Ok::<_, (String, Error)>((flag_undo, r))
    }
    .await;
    let (flag_undo, r) = match result {
        Ok(x) => x,
        Err(e) => (None, Err(e)),
    };
    match r {
        Ok(done) => {
            c.run.forget(&pip_undo);
            if done {
                m.state = HostState::Done;
            }
        }
        Err((step, e)) => {
            c.run.settle(&pip_undo).await;
            m.state = HostState::Failed;
            m.failed_step = Some(step.clone());
            m.error = Some(e.to_string());
            c.run.escalate(
                "maintenance_failed",
                c.name().to_string(),
                e.to_string(),
                format!("{step} succeeds"),
                format!("{}: maintenance stopped at {step}; its upgrades were undone and its flag removed", c.name()),
            );
        }
    }
    if let Some(name) = flag_undo {
        m.flag_removed = c.run.settle(&name).await;
    }
    m
}

/// The pip upgrade; its undo puts the old versions back if this host fails later on.
async fn pip_step(
    c: &Ctx<'_>,
    m: &mut HostMaintenance,
    pip_undo: &str,
) -> std::result::Result<(), (String, Error)> {
    let (h, cfg) = (c.h, &c.c);
    let changed: Arc<Mutex<Vec<PackageChange>>> = Arc::default();
    let (h2, cfg2, ch2) = (h.clone(), cfg.clone(), changed.clone());
    c.run
        .push_undo(Undo::on_failure(pip_undo, move || async move {
            let ch = ch2.lock().map(|v| v.clone()).unwrap_or_default();
            steps::pip_restore(&h2, &cfg2, &ch).await
        }));
    let args: String = cfg.pip_args.iter().map(|a| format!(" {a}")).collect();
    let plan = format!(
        "{} install --upgrade -r {}{args}; list what changed",
        cfg.pip, cfg.requirements
    );
    let pip = c
        .change("pip", plan, async {
            let p = steps::pip_upgrade(h, cfg).await?;
            *changed.lock().unwrap_or_else(|e| e.into_inner()) = p.clone();
            Ok(p)
        })
        .await?;
    m.pip = pip.unwrap_or_default();
    // Replayed from the log on a resume: the undo puts back what the first attempt changed.
    *changed.lock().unwrap_or_else(|e| e.into_inner()) = m.pip.clone();
    Ok(())
}

/// The steps between setting and removing the flag; Ok(false) in a dry-run.
async fn steps_of(
    c: &Ctx<'_>,
    m: &mut HostMaintenance,
    pip_undo: &str,
) -> std::result::Result<bool, (String, Error)> {
    let (h, cfg) = (c.h, &c.c);
    pip_step(c, m, pip_undo).await?;
    if cfg.apt_get.is_empty() {
        c.run.skip(
            &format!("{}:apt", c.name()),
            Action::Change,
            "no [maintenance] apt_get",
        );
    } else {
        let apt = cfg.apt_get.join(" ");
        let only = if c.security_only {
            " (security sources only)"
        } else {
            ""
        };
        let plan = format!("{apt} update && {apt} -y -V upgrade{only}");
        m.apt = c
            .change("apt", plan, steps::apt_upgrade(h, cfg, c.security_only))
            .await?
            .unwrap_or_default();
    }
    if cfg.logrotate.is_empty() {
        c.run.skip(
            &format!("{}:logrotate", c.name()),
            Action::Change,
            "no [maintenance] logrotate",
        );
    } else {
        let work = async {
            let o = steps::run(h, &cfg.logrotate, cfg.command_timeout.0).await?;
            Ok(steps::tail(&format!("{}{}", o.stdout, o.stderr), 2000))
        };
        m.logrotate = c.change("logrotate", cfg.logrotate.join(" "), work).await?;
    }
    if cfg.database.is_empty() {
        c.run.skip(
            &format!("{}:database", c.name()),
            Action::Change,
            "no [maintenance] database command",
        );
    } else {
        let plan = format!("in {}: {}", cfg.workdir, cfg.database.join(" "));
        m.database = c
            .change("database", plan, steps::in_workdir(h, cfg, &cfg.database))
            .await?;
    }
    m.certificate = once::certificate(c).await;
    if c.run.is_dry_run() {
        let plan = "graceful restart; poll health; if not healthy: kill -s KILL, start, poll again";
        c.change::<(), _>("restart", plan.to_string(), async { Ok(()) })
            .await?;
        c.change::<(), _>(
            "unflag",
            format!("rm -f {}; disarm the lease", cfg.flag),
            async { Ok(()) },
        )
        .await?;
        return Ok(false);
    }
    m.restart = Some(restart(c).await?);
    Ok(true)
}

/// The restart step, with the `restart` runbook's health poll; a failed host fails the step.
/// A resume that finds it in flight checks for a new, healthy main process (see
/// [`restarted_since`]) rather than restarting twice.
async fn restart(c: &Ctx<'_>) -> std::result::Result<HostRestart, (String, Error)> {
    let fail = |e| ("restart".to_string(), e);
    let svc = c.env.service(c.name()).map_err(fail)?.clone();
    let poll = c.env.config.restart.health;
    let path = c.env.config.service.health_path.clone();
    let pid_before = svc.manager.status().await.ok().and_then(|s| s.main_pid);
    let (svc2, clock2, path2) = (svc.clone(), c.env.clock.clone(), path.clone());
    let plan = "graceful restart; poll health; if not healthy: kill -s KILL, start, poll again";
    let change = Change::new(format!("{}:restart", c.name()), plan).verify(
        serde_json::json!(pid_before),
        move |w| async move {
            let before = w.and_then(|v| serde_json::from_value(v).ok()).flatten();
            restarted_since(&svc2, clock2.as_ref(), &path2, &poll, 1, before).await
        },
    );
    let clock = c.env.clock.clone();
    let work = async move {
        let r = restart_host(&svc, clock.as_ref(), &path, &poll, 1).await;
        if r.outcome == HostOutcome::Failed {
            return Err(Error::new(ErrorKind::Unavailable, r.summary()));
        }
        Ok(r)
    };
    match c.run.apply(change, work).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Ok(HostRestart::new(c.name(), 1, HostOutcome::Planned)),
        Err(e) => Err(fail(e)),
    }
}

/// `weekly_maintenance` in the catalogue.
pub static MAINTENANCE: Definition = Definition {
    name: "weekly_maintenance",
    command: "maintenance weekly",
    aliases: &["maintenance"],
    summary: "notice, then host by host: flag (with a dead-man's switch), pip, apt, logrotate, database, TLS, restart, unflag; restore test; health",
    changes: true,
    steps: &[
        "notice to the team (waits --notice unless --no-wait)",
        "host by host: flag (a lease on the host removes it if the runner dies)",
        "pip install --upgrade -r requirements (undone if the host fails later)",
        "apt-get update && upgrade (-V: the packages upgraded)",
        "logrotate; the app's database command; the TLS certificate's expiry",
        "restart with the health poll; flag removed (always)",
        "backup verification with a restore test; the service's health",
    ],
    options: &[
        OptionDoc {
            name: "hosts",
            kind: "list of host names",
            help: "only these hosts, in this order (default every host)",
        },
        OptionDoc {
            name: "notice",
            kind: "duration",
            help: "how long before the start the notice goes out (default [maintenance] notice, 30m)",
        },
        OptionDoc {
            name: "no_wait",
            kind: "bool",
            help: "post the notice and start at once",
        },
        OptionDoc {
            name: "security_only",
            kind: "bool",
            help: "only security updates ([maintenance] security_sources)",
        },
    ],
    defaults: defaults_of::<MaintenanceOptions>,
    check_options: check_args::<MaintenanceOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: MaintenanceOptions =
                crate::runbook::registry::parse_args("weekly_maintenance", v)?;
            Ok(weekly_maintenance(env, &o, &run).await)
        })
    },
};
