//! `[backups]` and `[[backups.dataset]]`: the store, the datasets, the verification settings.

use super::*;

/// Which backup store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreKind {
    /// A directory on the local filesystem.
    Fs,
    /// In memory (tests and demos).
    Memory,
    /// An S3 bucket (or any S3-compatible store: MinIO, Ceph, moto).
    S3,
}

/// `[backups]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BackupsConfig {
    /// Backend.
    pub store: StoreKind,
    /// Root directory (store = "fs").
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Datasets expected every night, each under `<dataset>/<YYYYMMDD>/`.
    #[serde(default = "d_datasets")]
    pub datasets: Vec<String>,
    /// Bucket (store = "s3").
    #[serde(default)]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket (store = "s3"), e.g. `"agent-lab/"`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Region (store = "s3"; default from the AWS chain).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (store = "s3").
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Path-style addressing, needed by most S3-compatible stores.
    #[serde(default)]
    pub force_path_style: bool,
    /// Timeout of one request.
    #[serde(default = "d_store_timeout")]
    pub timeout: Dur,
    /// Attempts for temporary failures.
    #[serde(default = "d_attempts")]
    pub attempts: u32,
    /// Concurrent requests for bulk work (verification, backups).
    #[serde(default = "d_store_concurrency")]
    pub concurrency: usize,
    /// Host the data is read from by `backup take` (default: the first host).
    #[serde(default)]
    pub source_host: Option<String>,
    /// The service's data directory on that host.
    #[serde(default = "d_data_dir")]
    pub data_dir: String,
    /// Datasets beyond the built-in `sessions` and `telemetry`.
    #[serde(default, rename = "dataset")]
    pub custom_datasets: Vec<DatasetConfig>,
    /// Integrity sample: `"all"`, a count (`"200"`) or a percentage (`"10%"`).
    #[serde(default = "d_sample")]
    pub sample: String,
    /// A fractional sample reads at least this many objects (all of a smaller dataset):
    /// sampling only makes sense for large datasets.
    #[serde(default = "d_sample_min")]
    pub sample_min: u64,
    /// Trend: a day smaller than the 7-day median by more than this is a finding.
    #[serde(default = "d_drop")]
    pub trend_drop_max: Ratio,
    /// Trend: a day larger than the 7-day median by more than this fraction is a finding.
    #[serde(default = "d_spike")]
    pub trend_spike_max: f64,
    /// The service's read-only flag, set during a recovery (default: `READ_ONLY_MODE` beside
    /// `data_dir`, as the spec's `/app/READ_ONLY_MODE`).
    #[serde(default)]
    pub read_only_flag: Option<String>,
    /// `backup verify` stops after this long (every dataset at once), its report saying what
    /// was not verified.
    #[serde(default = "d_verify_deadline")]
    pub verify_deadline: Dur,
}

/// `[[backups.dataset]]`: a dataset besides the built-in ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasetConfig {
    /// Name (the first key segment in the store).
    pub name: String,
    /// File or directory, relative to `data_dir` or absolute.
    pub path: String,
    /// File name pattern inside a directory (`*.json`).
    #[serde(default = "d_pattern")]
    pub pattern: String,
    /// Format checked by integrity verification.
    #[serde(default)]
    pub format: DataFormat,
}

/// Formats integrity verification understands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DataFormat {
    /// Each object is one JSON document.
    Json,
    /// Header line, then rows with as many columns.
    Csv,
    /// Only the checksum is checked.
    #[default]
    Any,
}

impl BackupsConfig {
    /// The datasets to back up and verify, built-ins resolved.
    pub fn dataset_specs(&self) -> std::result::Result<Vec<DatasetConfig>, String> {
        self.datasets
            .iter()
            .map(|name| {
                if let Some(c) = self.custom_datasets.iter().find(|c| &c.name == name) {
                    return Ok(c.clone());
                }
                match name.as_str() {
                    "sessions" => Ok(DatasetConfig {
                        name: name.clone(),
                        path: "sessions".into(),
                        pattern: "*.json".into(),
                        format: DataFormat::Json,
                    }),
                    "telemetry" => Ok(DatasetConfig {
                        name: name.clone(),
                        path: "runs.csv".into(),
                        pattern: "*".into(),
                        format: DataFormat::Csv,
                    }),
                    other => Err(format!(
                        "unknown dataset {other:?}: describe it in a [[backups.dataset]] table (name, path, pattern, format)"
                    )),
                }
            })
            .collect()
    }
}

fn d_data_dir() -> String {
    "/app/data".into()
}
fn d_pattern() -> String {
    "*".into()
}
fn d_verify_deadline() -> Dur {
    Dur(std::time::Duration::from_secs(30 * 60))
}
fn d_sample_min() -> u64 {
    20
}
fn d_sample() -> String {
    "10%".into()
}
fn d_drop() -> Ratio {
    Ratio(0.3)
}
fn d_spike() -> f64 {
    1.0
}

fn d_store_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_store_concurrency() -> usize {
    16
}

fn d_datasets() -> Vec<String> {
    vec!["sessions".into(), "telemetry".into()]
}

impl BackupsConfig {
    /// A store of this kind with the default datasets.
    pub fn new(store: StoreKind, path: Option<PathBuf>) -> Self {
        BackupsConfig {
            store,
            path,
            datasets: d_datasets(),
            bucket: None,
            prefix: None,
            region: None,
            endpoint_url: None,
            force_path_style: false,
            timeout: d_store_timeout(),
            attempts: d_attempts(),
            concurrency: d_store_concurrency(),
            source_host: None,
            data_dir: d_data_dir(),
            custom_datasets: Vec::new(),
            sample: d_sample(),
            sample_min: d_sample_min(),
            trend_drop_max: d_drop(),
            trend_spike_max: d_spike(),
            read_only_flag: None,
            verify_deadline: d_verify_deadline(),
        }
    }
}
