//! Runbooks: procedures composed from the backends, returning typed reports.

pub mod backup;
pub mod handover;
pub mod morning;
pub mod recover;
pub mod run;

pub use backup::{Sample, TakeOptions, VerifyOptions, VerifyPayload, take_backup, verify_backups};
pub use handover::{HandoverOptions, HandoverPayload, handover};
pub use morning::{DatasetBackup, HostResult, MorningOptions, MorningPayload, morning_check};
pub use recover::{RecoverOptions, RecoverPayload, RecoveryPoint, recover_data};
pub use run::{CancelToken, Checked, Run, RunOptions, Undo, UndoWhen};
