//! A chaos experiment as a team keeps it in its repository (TOML or JSON): a steady-state
//! hypothesis, the method (faults, in order or together), stop conditions polled while a fault
//! is on, and the hosts it targets (by name or tag, a count or a percentage, some excluded).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::error::{Error, ErrorKind, Result};

/// One experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// What it tests, in one line.
    pub title: String,
    /// Why, for the people reading the report.
    #[serde(default)]
    pub description: String,
    /// The hosts its host faults go to.
    #[serde(default)]
    pub targets: Targets,
    /// Probes that must hold before anything is injected, and again after the faults are gone.
    #[serde(default)]
    pub hypothesis: Vec<Probe>,
    /// The faults.
    pub method: Vec<Fault>,
    /// All faults at once (default: one after the other).
    #[serde(default)]
    pub parallel: bool,
    /// Polled while a fault is on: the first out of tolerance ends the experiment at once.
    #[serde(default)]
    pub stop: StopConditions,
    /// The dead-man's switch of each host fault: removed by the host itself this long after
    /// the runner's last renewal (default 15 s).
    #[serde(default = "d_lease")]
    pub lease: Dur,
}

fn d_lease() -> Dur {
    Dur(Duration::from_secs(15))
}

/// Which hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// By name (empty with no tags: every host).
    pub hosts: Vec<String>,
    /// Hosts with any of these tags (`[[hosts]] tags`).
    pub tags: Vec<String>,
    /// `all` (default), `count(N)` or `percent(N)` of the matching hosts.
    pub select: Selection,
    /// Never these.
    pub exclude: Vec<String>,
    /// Seed of the random choice (the same seed, the same hosts).
    pub seed: Option<u64>,
}

/// How many of the matching hosts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every one.
    #[default]
    All,
    /// At most this many.
    Count(usize),
    /// This percentage, rounded up (at least one when any match).
    Percent(u8),
}

impl Selection {
    /// `all`, `count(2)`, `percent(25)`.
    pub fn parse(s: &str) -> std::result::Result<Selection, String> {
        let s = s.trim();
        let inner = |p: &str| {
            s.strip_prefix(p)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        let bad = || format!("select: {s:?}: all, count(N) or percent(N)");
        if s == "all" {
            return Ok(Selection::All);
        }
        if let Some(n) = inner("count") {
            return n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(Selection::Count)
                .ok_or_else(bad);
        }
        if let Some(n) = inner("percent") {
            let p = n.trim_end_matches('%').parse::<u8>().ok();
            return p
                .filter(|p| (1..=100).contains(p))
                .map(Selection::Percent)
                .ok_or_else(bad);
        }
        Err(bad())
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("all"),
            Selection::Count(n) => write!(f, "count({n})"),
            Selection::Percent(p) => write!(f, "percent({p})"),
        }
    }
}

impl Serialize for Selection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Selection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Selection::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A probe of the steady state, with its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// An HTTP GET (a path of the service, or a URL): the status expected, and optionally a
    /// latency bound.
    Http {
        /// The path (`/health`) or URL.
        url: String,
        /// Expected status (default 200).
        #[serde(default = "d_status")]
        status: u16,
        /// The response must come faster than this.
        #[serde(default)]
        latency_below: Option<Dur>,
    },
    /// An alert of the alert source (Alertmanager) must not be firing.
    AlertNotFiring {
        /// Its `alertname`.
        alert: String,
    },
    /// An SLO's error ratio over the last `window` (the SLO source) must stay below `below`.
    ErrorRate {
        /// The SLO (default: the first configured).
        #[serde(default)]
        slo: Option<String>,
        /// A ratio (`0.01` is 1%).
        below: f64,
        /// The window (default 5 minutes).
        #[serde(default = "d_window")]
        window: Dur,
    },
}

fn d_status() -> u16 {
    200
}
fn d_window() -> Dur {
    Dur(Duration::from_secs(300))
}

impl Probe {
    /// One line: `GET /health is 200 within 300ms`.
    pub fn describe(&self) -> String {
        match self {
            Probe::Http {
                url,
                status,
                latency_below,
            } => match latency_below {
                Some(d) => format!("GET {url} is {status} within {d:?}"),
                None => format!("GET {url} is {status}"),
            },
            Probe::AlertNotFiring { alert } => format!("alert {alert} is not firing"),
            Probe::ErrorRate { slo, below, window } => format!(
                "error rate of {} over {window:?} below {:.3}%",
                slo.as_deref().unwrap_or("the first SLO"),
                below * 100.0
            ),
        }
    }
}

/// When to end the experiment early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StopConditions {
    /// How often they are checked while a fault is on (default 1 s).
    pub poll: Dur,
    /// Any of these out of tolerance stops the experiment.
    pub probes: Vec<Probe>,
}

impl Default for StopConditions {
    fn default() -> Self {
        StopConditions {
            poll: Dur(Duration::from_secs(1)),
            probes: Vec::new(),
        }
    }
}

/// A fault, injected for `duration` and always removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// A TCP proxy run by the tool in front of one dependency (toxiproxy's model): clients
    /// connect to `listen`, traffic goes to `upstream`; during the fault it is delayed,
    /// throttled, reset or held.
    Proxy {
        /// A name for the report (default `proxy`).
        #[serde(default)]
        name: Option<String>,
        /// Where clients connect (`127.0.0.1:15432`).
        listen: String,
        /// The dependency (`127.0.0.1:5432`, `openrouter.ai:443`).
        upstream: String,
        /// Added before each chunk of data from the upstream.
        #[serde(default)]
        latency: Option<Dur>,
        /// Up to this much more, at random.
        #[serde(default)]
        jitter: Option<Dur>,
        /// At most this many KiB/s from the upstream.
        #[serde(default)]
        bandwidth_kib: Option<u64>,
        /// Reset every connection (new and open).
        #[serde(default)]
        reset: bool,
        /// Hold connections without passing any data (a dependency that stopped answering).
        #[serde(default)]
        timeout: bool,
        /// How long.
        duration: Dur,
    },
    /// Stop the service on each target for `duration`; its start is left on the host (the
    /// dead-man's switch) before the stop.
    ServiceStop {
        /// How long.
        duration: Dur,
    },
    /// Network latency or loss on each target's device with `tc netem`, under a handle of the
    /// tool's own.
    Netem {
        /// The device (`eth0`).
        device: String,
        /// Added delay.
        #[serde(default)]
        delay: Option<Dur>,
        /// Packets lost, percent.
        #[serde(default)]
        loss: Option<f64>,
        /// Instead of netem, this qdisc and its arguments (`["prio"]`): for kernels without
        /// `sch_netem`, and tests.
        #[serde(default)]
        qdisc: Vec<String>,
        /// The network namespace of the device (`ip netns exec NS`: a container's), if not
        /// the host's own.
        #[serde(default)]
        namespace: Option<String>,
        /// How long.
        duration: Dur,
    },
    /// CPU and memory pressure with `stress-ng`, which ends itself after `duration`.
    Stress {
        /// CPU workers (0: none).
        #[serde(default)]
        cpu: u32,
        /// Memory of one `--vm` worker (`75%`, `512M`); none: no memory pressure.
        #[serde(default)]
        vm_bytes: Option<String>,
        /// How long.
        duration: Dur,
    },
}

impl Fault {
    /// How long it stays on.
    pub fn duration(&self) -> Duration {
        match self {
            Fault::Proxy { duration, .. }
            | Fault::ServiceStop { duration }
            | Fault::Netem { duration, .. }
            | Fault::Stress { duration, .. } => duration.0,
        }
    }
    /// Whether it goes to hosts (the proxy runs in the tool).
    pub fn on_hosts(&self) -> bool {
        !matches!(self, Fault::Proxy { .. })
    }
    /// Its name in step names: `proxy`, `service_stop`, `netem`, `stress`.
    pub fn name(&self) -> String {
        match self {
            Fault::Proxy { name, .. } => name.clone().unwrap_or_else(|| "proxy".into()),
            Fault::ServiceStop { .. } => "service_stop".into(),
            Fault::Netem { .. } => "netem".into(),
            Fault::Stress { .. } => "stress".into(),
        }
    }
}

impl Experiment {
    /// Read an experiment file: TOML, or JSON when it ends in `.json`; errors name the file,
    /// the line and the field.
    pub fn from_file(path: &Path) -> Result<Experiment> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::ConfigInvalid
            };
            Error::new(kind, format!("{origin}: cannot read the experiment: {e}"))
        })?;
        if path.extension().is_some_and(|e| e == "json") {
            let mut de = serde_json::Deserializer::from_str(&text);
            let x: Experiment = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let inner = e.inner();
                Error::config(format!(
                    "{origin}:{}:{}: {}: {inner}",
                    inner.line(),
                    inner.column(),
                    e.path()
                ))
            })?;
            return x.validated(&origin);
        }
        Experiment::from_toml_str(&text, &origin)
    }

    /// Parse TOML; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Experiment> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| crate::config::toml_error(origin, text, "", &e))?;
        let x: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let at = e.inner().span().map(|s| s.start);
            match at.and_then(|at| super::fields::culprit(text, &path, at)) {
                Some((field, line)) => {
                    let msg = e.inner().message().trim().replace('\n', " ");
                    Error::config(format!("{origin}:{line}: {field}: {msg}"))
                }
                None => crate::config::toml_error(origin, text, &path, e.inner()),
            }
        })?;
        x.validated(origin)
    }

    /// Checked as a whole (durations, faults, the lease); errors start with `origin`.
    pub fn validated(self, origin: &str) -> Result<Experiment> {
        let bad = |m: String| Err(Error::config(format!("{origin}: {m}")));
        if self.method.is_empty() {
            return bad("method: at least one fault".into());
        }
        if self.lease.0 < Duration::from_secs(3) {
            return bad(format!("lease: {:?}: at least 3s", self.lease));
        }
        for (i, f) in self.method.iter().enumerate() {
            if let Err(m) = check_fault(f) {
                return bad(format!("method[{i}] ({}): {m}", f.name()));
            }
        }
        if self.stop.poll.0 < Duration::from_millis(100) {
            return bad(format!("stop.poll: {:?}: at least 100ms", self.stop.poll));
        }
        Ok(self)
    }

    /// The longest the experiment can take, its probes aside.
    pub fn method_duration(&self) -> Duration {
        let d = self.method.iter().map(Fault::duration);
        if self.parallel {
            d.max().unwrap_or_default()
        } else {
            d.sum()
        }
    }
}

fn check_fault(f: &Fault) -> std::result::Result<(), String> {
    if f.duration().is_zero() || f.duration() > Duration::from_secs(3600) {
        return Err(format!("duration: {:?}: above 0, at most 1h", f.duration()));
    }
    match f {
        Fault::Proxy {
            listen,
            upstream,
            latency,
            bandwidth_kib,
            reset,
            timeout,
            ..
        } => {
            listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| format!("listen: {listen:?}: {e} (ip:port)"))?;
            // The upstream may be a name (resolved at each connection): `openrouter.ai:443`.
            let port = upstream.rsplit_once(':').filter(|(h, _)| !h.is_empty());
            if port.is_none_or(|(_, p)| p.parse::<u16>().is_err()) {
                return Err(format!("upstream: {upstream:?}: host:port"));
            }
            if latency.is_none() && bandwidth_kib.is_none() && !reset && !timeout {
                return Err("nothing to inject: latency, bandwidth_kib, reset or timeout".into());
            }
        }
        Fault::Netem {
            device,
            delay,
            loss,
            qdisc,
            ..
        } => {
            if device.is_empty() || device.contains(char::is_whitespace) {
                return Err(format!("device: {device:?}: an interface name"));
            }
            if qdisc.is_empty() && delay.is_none() && loss.is_none() {
                return Err("nothing to inject: delay, loss or qdisc".into());
            }
            if let Some(l) = loss
                && !(0.0..=100.0).contains(l)
            {
                return Err(format!("loss: {l}: a percentage"));
            }
        }
        Fault::Stress { cpu, vm_bytes, .. } if *cpu == 0 && vm_bytes.is_none() => {
            return Err("nothing to inject: cpu or vm_bytes".into());
        }
        _ => {}
    }
    Ok(())
}
