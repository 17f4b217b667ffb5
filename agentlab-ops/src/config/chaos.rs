//! `[chaos]`: where the team's experiment files are, and where a fault's dead-man's switch
//! keeps its lease on a host.

use super::*;

/// `[chaos]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ChaosConfig {
    /// The folder `chaos list` reads (`*.toml`, `*.json`), relative to the working directory.
    pub dir: PathBuf,
    /// The folder on each host for the leases of its faults' watchdogs.
    pub lease_dir: String,
    /// Put before the commands that need root on a host (`tc`): `["sudo", "-n"]`.
    pub privileged: Vec<String>,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            dir: PathBuf::from("chaos"),
            lease_dir: "/tmp".into(),
            privileged: Vec::new(),
        }
    }
}
