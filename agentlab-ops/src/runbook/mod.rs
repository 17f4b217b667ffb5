//! Runbooks: procedures composed from the backends, returning typed reports.

pub mod alert_review;
pub mod backup;
pub mod chaos;
pub mod cost;
pub mod deploy;
pub mod handover;
pub mod investigate;
pub mod load_test;
pub mod maintenance;
pub mod morning;
mod notice;
pub mod recover;
pub mod registry;
pub mod restart;
pub mod resume;
pub mod review;
pub mod run;
pub mod scale;
pub mod security;
pub mod service_ops;
pub mod shutdown;
pub mod slo_response;
pub mod stop;
pub mod verify;
pub mod wave;

pub use backup::{
    Sample, TakeOptions, TakePayload, VerifyOptions, VerifyPayload, take_backup, verify_backups,
};
pub use cost::{CostOptions, CostPayload, cost_report};
pub use deploy::{
    BlueGreenOptions, DeployOptions, DeployPayload, RollbackOptions, RollbackPayload,
    blue_green_deploy, rollback, standard_deploy,
};
pub use handover::{HandoverOptions, HandoverPayload, handover};
pub use investigate::{InvestigateOptions, Triage, alert_investigation};
pub use maintenance::{MaintenanceOptions, MaintenancePayload, weekly_maintenance};
pub use morning::{DatasetBackup, HostResult, MorningOptions, MorningPayload, morning_check};
pub use recover::{RecoverOptions, RecoverPayload, RecoveryPoint, recover_data};
pub use restart::{RestartOptions, RestartPayload, restart};
pub use run::{CancelToken, Change, Checked, Run, RunOptions, Undo, UndoWhen};
pub use scale::{
    AssessOptions, HorizontalOptions, SnapshotOptions, VerticalOptions, scale_assess,
    scale_horizontal, scale_vertical, snapshot,
};
pub use security::{
    AccessChangePayload, AccessOptions, AccessPayload, EvidenceOptions, EvidencePayload,
    GrantOptions, RevokeOptions, RotateOptions, RotatePayload, RotateSecretOptions,
    RotateSecretPayload, SecretOutcome, SecretResult, TimelineOptions, TimelinePayload,
    access_review, auth_timeline, grant_access, incident_evidence, revoke_access, rotate_secret,
    rotate_ssh_key,
};
pub use service_ops::{HostOutcome, HostRestart};
pub use shutdown::{
    EmergencyOptions, RecoverPayload as EmergencyRecoverPayload, ShutdownPayload, StopOutcome,
    emergency_recover, emergency_shutdown,
};
pub use slo_response::{SloResponseOptions, SloResponsePayload, slo_response};
pub use wave::{Analysis, WaveControl, WaveOutcome, WaveStep, run_wave};

/// A host lease's events as journal lines (`{"event":"lease", ...}`) of `run`: what the
/// dead-man's switches of the maintenance flag and of chaos faults write.
pub(crate) fn lease_journal(
    env: &crate::environment::Environment,
    run: &run::Run,
) -> Option<crate::host::lease::LeaseLog> {
    let journal = env.journal.clone()?;
    let run_id = run.run_id().to_string();
    Some(std::sync::Arc::new(
        move |e: &crate::host::lease::LeaseEvent| {
            let _ = journal.event(
                "lease",
                serde_json::json!({
                    "run_id": run_id, "action": e.action, "host": e.host,
                    "path": e.path, "detail": e.detail,
                }),
            );
        },
    ))
}
