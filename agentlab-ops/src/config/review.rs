//! `[review]`: the Monthly Infrastructure Review — the disaster-recovery drill's targets, the
//! extra journals it reads, and what each runbook takes by hand.

use super::*;

/// `[review]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReviewConfig {
    /// Recovery time objective: the drill's restore and validation must finish within it.
    pub rto_target: Dur,
    /// Recovery point objective: the newest restorable backup must be at most this old.
    pub rpo_target: Dur,
    /// Where the drill restores (a fresh folder under it, removed after); default: the
    /// system's temporary folder. Never the live data path.
    pub scratch_dir: Option<PathBuf>,
    /// Journals read besides `[journal]` (other runners', CI's), merged by run id.
    pub journals: Vec<PathBuf>,
    /// Minutes a runbook takes by hand, over the spec's own durations (`morning_check = 15`).
    pub manual_minutes: BTreeMap<String, f64>,
    /// Slowest endpoints and error templates listed.
    pub top: usize,
    /// The log whose error templates the review counts (`{host}` filled per host); default
    /// `[investigation] log_file`.
    pub log_file: Option<String>,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            rto_target: Dur(Duration::from_secs(3600)),
            rpo_target: Dur(Duration::from_secs(26 * 3600)),
            scratch_dir: None,
            journals: Vec::new(),
            manual_minutes: BTreeMap::new(),
            top: 5,
            log_file: None,
        }
    }
}
