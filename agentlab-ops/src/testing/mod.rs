//! Conformance suites: the checks every backend of a trait must pass.
//!
//! Call [`backup_store_conformance`] with a store (empty, or with a unique `prefix`) and
//! [`remote_host_conformance`] with a host that can run `echo`, `sh` and `sleep` — the memory
//! [`traffic_router_conformance`] with a router whose traffic may move — the memory
//! doubles pass them too, so tests written against the doubles mean something. Each check is
//! also public, to run one alone.

mod backup;
mod host;
mod router;

pub use backup::*;
pub use host::*;
pub use router::*;
