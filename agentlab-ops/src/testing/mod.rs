//! Conformance suites: the checks every backend of a trait must pass.
//!
//! Call [`backup_store_conformance`] with a store (empty, or with a unique `prefix`),
//! [`remote_host_conformance`] with a host that can run `echo`, `sh` and `sleep`,
//! [`traffic_router_conformance`] with a router whose traffic may move, and
//! [`deployer_conformance`] with a deployer and three workflow names, and
//! [`service_manager_conformance`] with a service it may stop and start, and
//! [`slo_source_conformance`] with a source that has traffic,
//! [`alert_source_conformance`] with one alert firing — the memory
//! doubles pass them too, so tests written against the doubles mean something. Each check is
//! also public, to run one alone.

mod alerts;
mod backup;
mod deployer;
mod host;
mod logs;
mod router;
mod service;
mod slo;

pub use alerts::*;
pub use backup::*;
pub use deployer::*;
pub use host::*;
pub use logs::*;
pub use router::*;
pub use service::*;
pub use slo::*;
mod compute;
pub use compute::*;
