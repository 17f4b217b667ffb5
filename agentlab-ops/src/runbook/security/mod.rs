//! The spec's **Access Review** and **Incident Investigation**: the access review of every
//! host (`access_review`), the authentication timeline of their auth logs (`auth_timeline`),
//! SSH key rotation that never locks the operator out (`rotate_ssh_key`), credential rotation
//! through a team's hooks (`rotate_secret`) and incident evidence (`incident_evidence`).

use crate::environment::{Environment, HostEntry};
use crate::error::{Error, Result};

pub mod access;
mod defs;
pub mod evidence;
pub mod findings;
pub mod grant;
mod revoke;
pub mod rotate;
pub mod rotate_secret;
pub mod timeline;

pub use access::{AccessOptions, AccessPayload, HostAccess, access_review};
pub use defs::{
    ACCESS_REVIEW, AUTH_TIMELINE, GRANT_ACCESS, INCIDENT_EVIDENCE, REVOKE_ACCESS, ROTATE_SECRET,
    ROTATE_SSH_KEY,
};
pub use evidence::{
    EvidenceItem, EvidenceManifest, EvidenceOptions, EvidencePayload, incident_evidence,
};
pub use findings::{AccessFinding, FindingKind, judge};
pub use grant::{AccessChangePayload, GrantOptions, HostAccessChange, RevokeOptions, grant_access};
pub use revoke::revoke_access;
pub use rotate::{HostRotation, RotateOptions, RotatePayload, Rotation, rotate_ssh_key};
pub use rotate_secret::{
    RotateSecretOptions, RotateSecretPayload, SecretOutcome, SecretResult, rotate_secret,
};
pub use timeline::{HostLog, TimelineOptions, TimelinePayload, auth_timeline};

/// The hosts named (every host when empty); an unknown name is an error naming it.
pub(crate) fn pick<'a>(env: &'a Environment, names: &[String]) -> Result<Vec<&'a HostEntry>> {
    if let Some(n) = names
        .iter()
        .find(|n| !env.hosts.iter().any(|h| &h.config.name == *n))
    {
        return Err(env
            .host(n)
            .err()
            .unwrap_or_else(|| Error::config(format!("unknown host {n:?}"))));
    }
    Ok(env
        .hosts
        .iter()
        .filter(|h| names.is_empty() || names.contains(&h.config.name))
        .collect())
}
