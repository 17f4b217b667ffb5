//! Runbooks: procedures composed from the backends, returning typed reports.

pub mod handover;
pub mod morning;
pub mod run;

pub use handover::{HandoverOptions, HandoverPayload, handover};
pub use morning::{DatasetBackup, HostResult, MorningOptions, MorningPayload, morning_check};
pub use run::{CancelToken, Checked, Run, RunOptions, Undo, UndoWhen};
