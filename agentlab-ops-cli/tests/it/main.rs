//! Every integration test of the command in one binary (one link instead of one per file). Each
//! module is one former `tests/<name>.rs`; run one with `cargo test -p agentlab-ops-cli --test it <name>::`.

mod common;
#[path = "../../../agentlab-ops/tests/it/common/mocks.rs"]
mod mocks;

mod catalogue;
mod chaos_kill;
mod cli;
mod investigate;
mod load;
mod logs;
mod maintenance_kill;
mod notify;
mod recover_kill;
mod resume_kill;
mod review;
mod secrets;
mod signals;
mod slo_response;
