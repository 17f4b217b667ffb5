//! `[service_manager]` and `[restart]`: how the service runs on each host, and how it is
//! restarted and watched until healthy.
//!
//! Strings may hold `{host}` (the host's name), `{address}` (its address: the SSH host, or
//! `127.0.0.1` for a local host) and any `{name}` of the host's `vars`, so one section serves
//! a fleet whose hosts differ in ports or paths.

use super::*;

/// How the service is run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagerKind {
    /// systemd, through `systemctl` on the host (default).
    #[default]
    Systemd,
    /// A plain process: a start command, a pid file, an argv that identifies it.
    Process,
}

/// `[service_manager]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ServiceManagerConfig {
    /// `systemd` or `process`.
    pub kind: ManagerKind,
    /// systemd: the unit (`agent-lab` means `agent-lab.service`).
    pub unit: String,
    /// process: the command that starts the service (argv, no shell).
    pub start: Vec<String>,
    /// process: the directory it starts in.
    pub workdir: String,
    /// process: where its pid is kept.
    pub pid_file: String,
    /// process: where its output goes.
    pub log_file: String,
    /// process: the argv prefix that identifies the service's processes (default: `start`);
    /// only the login user's processes whose argv begins with it are ever signalled.
    pub matches: Vec<String>,
    /// Time a graceful stop may take before it counts as failed.
    pub stop_timeout: Dur,
    /// Base URL of the service on one host, for the per-host health poll
    /// (`http://{address}:8000`); paths come from `[service]`.
    pub health_url: String,
    /// Timeout of one systemctl or process command.
    pub command_timeout: Dur,
}

impl Default for ServiceManagerConfig {
    fn default() -> Self {
        ServiceManagerConfig {
            kind: ManagerKind::Systemd,
            unit: "agent-lab".into(),
            start: vec!["python".into(), "app.py".into()],
            workdir: "/app".into(),
            pid_file: "/app/agent-lab.pid".into(),
            log_file: "/app/agent-lab.log".into(),
            matches: Vec::new(),
            stop_timeout: Dur(Duration::from_secs(30)),
            health_url: "http://{address}:8000".into(),
            command_timeout: Dur(Duration::from_secs(120)),
        }
    }
}

/// How long to wait for health after a (re)start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HealthPoll {
    /// Give up after this long.
    pub deadline: Dur,
    /// Time between two probes.
    pub interval: Dur,
    /// Healthy answers in a row needed.
    pub successes: u32,
}

impl Default for HealthPoll {
    fn default() -> Self {
        HealthPoll {
            deadline: Dur(Duration::from_secs(100)),
            interval: Dur(Duration::from_secs(10)),
            successes: 1,
        }
    }
}

/// One wave's size: a host count or a share of the fleet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchSize {
    /// This many hosts.
    Count(usize),
    /// This share of the fleet (rounded up, at least one host).
    Percent(f64),
}

impl BatchSize {
    /// Hosts in a wave of a fleet of `hosts`.
    pub fn of(self, hosts: usize) -> usize {
        match self {
            BatchSize::Count(n) => n.max(1),
            BatchSize::Percent(p) => ((p / 100.0 * hosts as f64).ceil() as usize).max(1),
        }
    }

    /// Parse `3` or `"10%"`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(BatchSize::Percent(p)),
                _ => Err(format!("{s:?}: a percentage in (0%, 100%]")),
            };
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(BatchSize::Count(n)),
            _ => Err(format!(
                "{s:?}: a host count (1, 2...) or a percentage (\"10%\")"
            )),
        }
    }
}

/// Waves: one size repeated, or a ramp whose last size repeats (`[1, "10%", "50%"]`), like
/// Ansible's `serial`.
#[derive(Debug, Clone, PartialEq)]
pub struct Serial(pub Vec<BatchSize>);

impl Default for Serial {
    fn default() -> Self {
        Serial(vec![BatchSize::Count(1)])
    }
}

impl Serial {
    /// Split `hosts` hosts into waves: how many hosts each wave takes, in order.
    pub fn waves(&self, hosts: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = hosts;
        let mut i = 0;
        while left > 0 {
            let size = self.0.get(i).or(self.0.last()).copied();
            let n = size.unwrap_or(BatchSize::Count(1)).of(hosts).min(left);
            out.push(n);
            left -= n;
            i += 1;
        }
        out
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum One {
            N(u64),
            S(String),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(One),
            Many(Vec<One>),
        }
        let err =
            |_| serde::de::Error::custom("expected 2, \"10%\" or a ramp [1, \"10%\", \"50%\"]");
        let raw = Raw::deserialize(d).map_err(err)?;
        let items = match raw {
            Raw::One(o) => vec![o],
            Raw::Many(v) if v.is_empty() => {
                return Err(serde::de::Error::custom("serial: an empty ramp"));
            }
            Raw::Many(v) => v,
        };
        items
            .into_iter()
            .map(|o| match o {
                One::N(n) => BatchSize::parse(&n.to_string()),
                One::S(s) => BatchSize::parse(&s),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Serial)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let items: Vec<String> = self
            .0
            .iter()
            .map(|b| match b {
                BatchSize::Count(n) => n.to_string(),
                BatchSize::Percent(p) => format!("{p}%"),
            })
            .collect();
        items.serialize(s)
    }
}

/// `[restart]`: defaults of the `restart` runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RestartConfig {
    /// Waves.
    pub serial: Serial,
    /// Failed hosts a wave may have before the rollout stops (count or share of the wave).
    pub wave_failure_budget: FailureBudget,
    /// Failed hosts the whole run may have before the rollout stops.
    pub failure_budget: FailureBudget,
    /// The health poll after each (re)start.
    pub health: HealthPoll,
    /// Deadline of the whole run.
    pub deadline: Dur,
    /// Take a host out of the load balancer before its restart (argv, placeholders of the
    /// host being restarted: `["aws", "elbv2", "deregister-targets", ..., "Id={address}"]`);
    /// empty: no drain.
    pub drain: Vec<String>,
    /// Put it back once healthy (a host that failed stays out, and the report says so).
    pub undrain: Vec<String>,
    /// Where `drain`/`undrain` run: a host of `[[hosts]]` (default: this machine).
    pub drain_host: Option<String>,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            serial: Serial::default(),
            wave_failure_budget: FailureBudget::Count(0),
            failure_budget: FailureBudget::Count(0),
            health: HealthPoll::default(),
            deadline: Dur(Duration::from_secs(3600)),
            drain: Vec::new(),
            undrain: Vec::new(),
            drain_host: None,
        }
    }
}

/// `[emergency]`: the emergency shutdown's flag and timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EmergencyConfig {
    /// The flag set on every host (placeholders allowed).
    pub flag: String,
    /// After a graceful stop, wait this long for the service's processes to end before killing.
    pub stop_wait: Dur,
    /// Deadline of a shutdown or recovery run.
    pub deadline: Dur,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        EmergencyConfig {
            flag: "/app/EMERGENCY_SHUTDOWN".into(),
            stop_wait: Dur(Duration::from_secs(30)),
            deadline: Dur(Duration::from_secs(600)),
        }
    }
}

/// Replace `{host}`, `{address}` and the host's `{var}`s in `s`.
pub fn fill_host(s: &str, host: &HostConfig) -> String {
    let address = match &host.address {
        HostAddress::Local => "127.0.0.1".to_string(),
        HostAddress::Ssh { host, .. } => host.clone(),
    };
    let mut out = s
        .replace("{host}", &host.name)
        .replace("{address}", &address);
    for (k, v) in &host.vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `[maintenance]`: the weekly maintenance's commands and thresholds (placeholders allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MaintenanceConfig {
    /// How long before the start the notice goes out (the run waits that long unless
    /// `no_wait`).
    pub notice: Dur,
    /// The maintenance flag set on a host while it is worked on.
    pub flag: String,
    /// The dead-man's switch: the host removes its flag by itself once this passes without a
    /// renewal from the runner (renewed every third of it).
    pub lease: Dur,
    /// The app environment's pip.
    pub pip: String,
    /// The requirements file.
    pub requirements: String,
    /// More pip arguments (`["--no-index", "--find-links", "/srv/wheels"]`).
    pub pip_args: Vec<String>,
    /// apt-get, with its prefix (`["sudo", "-n", "apt-get"]`); empty skips security updates.
    pub apt_get: Vec<String>,
    /// The sources list of security updates only (`--security-only`).
    pub security_sources: String,
    /// Log rotation (empty skips it).
    pub logrotate: Vec<String>,
    /// The app's own database maintenance command, run in `workdir` (empty skips it).
    pub database: Vec<String>,
    /// Where the app's commands run.
    pub workdir: String,
    /// The service's TLS listener on each host (`{address}:443`; empty skips the check).
    pub tls_endpoint: String,
    /// The name asked for (SNI) and expected on the certificate.
    pub tls_server_name: String,
    /// Days before expiry that warn.
    pub tls_warn_days: i64,
    /// Days before expiry that escalate.
    pub tls_critical_days: i64,
    /// Run the backup verification with a restore test (once, after the hosts).
    pub restore_test: bool,
    /// Timeout of one maintenance command (pip and apt can be slow).
    pub command_timeout: Dur,
    /// Deadline of the whole run, the notice's wait included (its undos still run after it).
    pub deadline: Dur,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            notice: Dur(Duration::from_secs(30 * 60)),
            flag: "/app/MAINTENANCE_MODE".into(),
            lease: Dur(Duration::from_secs(300)),
            pip: "/app/venv/bin/pip".into(),
            requirements: "/app/requirements.txt".into(),
            pip_args: Vec::new(),
            apt_get: vec!["apt-get".into()],
            security_sources: "/etc/apt/sources.list.d/security.list".into(),
            logrotate: vec!["logrotate".into(), "/etc/logrotate.d/agent-lab".into()],
            database: Vec::new(),
            workdir: "/app".into(),
            tls_endpoint: "{address}:443".into(),
            tls_server_name: "{address}".into(),
            tls_warn_days: 30,
            tls_critical_days: 7,
            restore_test: true,
            command_timeout: Dur(Duration::from_secs(900)),
            deadline: Dur(Duration::from_secs(3 * 3600)),
        }
    }
}
