//! # agentlab-ops
//!
//! Agent Lab's operational runbooks as typed, tested, composable code.
//!
//! Runbooks (`morning_check`, `handover`, ...) are procedures over small async traits with real
//! and in-memory backends — [`HealthProbe`], [`SloSource`] + [`SloEvaluator`], [`BackupStore`],
//! [`RemoteHost`], [`Notifier`] — run through a step recorder ([`Run`]) that times every step,
//! plans changes under dry-run, undoes changes on failure or Ctrl-C, scrubs secrets and journals
//! the run. Every runbook returns a [`Report`] with a [`Verdict`].
//!
//! ```no_run
//! use agentlab_ops::{Config, Environment, runbook::{MorningOptions, morning_check}};
//! # async fn demo() -> agentlab_ops::Result<()> {
//! let config = Config::from_file("agentlab-ops.toml".as_ref())?;
//! let env = Environment::from_config(config).await?;
//! let report = morning_check(&env, &MorningOptions::default()).await;
//! println!("{}", report.to_text(false));
//! std::process::exit(report.verdict.exit_code());
//! # }
//! ```
//!
//! Testing your own procedure against doubles:
//!
//! ```
//! use agentlab_ops::{Environment, MemoryHost, MemoryProbe, runbook::{MorningOptions, morning_check}};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let probe = MemoryProbe::new();
//! probe.respond_json("/health", serde_json::json!({"status": "ok"}));
//! probe.respond_json("/health/detailed", serde_json::json!({"status": "ok", "components": {"db": "ok"}}));
//! let host = MemoryHost::new("web-1").with_resources(0.3, 0.5, &[("/", 0.95)]);
//! let env = Environment::builder("test").probe(probe).host(host).build();
//! let report = morning_check(&env, &MorningOptions::default()).await;
//! assert!(report.escalations.iter().any(|e| e.subject == "web-1:/"));
//! # }
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod alerts;
pub mod backup;
pub mod chaos;
pub mod clock;
pub mod compute;
pub mod config;
pub mod deploy;
mod double;
pub mod drill;
pub mod environment;
pub mod error;
pub mod host;
pub mod ids;
pub mod journal;
pub mod keys;
pub mod load;
pub mod logs;
pub mod notify;
pub mod probe;
pub mod report;
pub mod retry;
pub mod runbook;
pub mod sandbox;
pub mod secret;
pub mod security;
pub mod service;
pub mod slo;
pub mod testing;
pub mod units;

pub use alerts::{AlertSource, MemoryAlertSource};
pub use backup::{BackupStore, BackupStoreExt, FsBackupStore, MemoryBackupStore, ObjectMeta};
pub use clock::{Clock, ManualClock, SystemClock};
pub use compute::{Compute, CostSource, LoadBalancer, MemoryBalancer, MemoryCompute, MemoryCost};
pub use config::Config;
pub use deploy::{Deployer, MemoryDeployer, MemoryRepo, MemoryRouter, Repo, TrafficRouter};
pub use double::{CallLog, Faults};
pub use environment::{Colors, Environment, EnvironmentBuilder, HostEntry};
pub use error::{Error, ErrorKind, Result};
pub use host::{Cmd, CmdOutput, LocalHost, MemoryHost, RemoteHost, ResourceUsage};
pub use journal::{Journal, JournalStats};
pub use notify::{MemoryNotifier, Notifier, SlackNotifier};
pub use probe::{HealthProbe, HttpProbe, MemoryProbe};
pub use report::{Check, Escalation, Finding, Format, Outcome, Report, Severity, Verdict};
pub use runbook::run::{CancelToken, Run, RunOptions};
pub use sandbox::{Sandbox, Scenario};
pub use secret::Secret;
pub use service::{HostService, MemoryServiceManager, ServiceManager};
pub use slo::{MemorySloSource, SloEvaluator, SloSource, SloSpec, SloStatus, Zone};
