//! `[[hosts]]`, `[ssh]` and `[fleet]`: where commands run and how many at once.

use super::*;

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
    /// Values for `{name}` placeholders in per-host settings (`[service_manager]`, flags):
    /// the host's port, its app directory...
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Tags a chaos experiment selects hosts by (`["web", "eu"]`).
    #[serde(default)]
    pub tags: Vec<String>,
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
            vars: BTreeMap::new(),
            tags: Vec::new(),
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
