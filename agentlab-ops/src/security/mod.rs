//! Host security inventory: accounts and groups, sudoers, `authorized_keys`, sshd settings,
//! sessions, file modes — read over any [`RemoteHost`](crate::host::RemoteHost), under a root
//! (`/` on a live host, a fixture tree in tests); and the auth-log parser of the incident
//! timeline. What the access review concludes from them is the runbook's
//! (`runbook::security::findings`).

pub mod accounts;
pub mod authlog;
pub mod authorized;
pub mod files;
pub mod hooks;
pub mod inventory;
pub mod keys;
pub mod sshd;
pub mod who;

pub use accounts::{Account, Group, SudoRule};
pub use files::{FileKind, FileMeta};
pub use inventory::{Accounts, Inventory, KeyFile, Sudoers};
pub use keys::{KeyEntry, fingerprint, parse_authorized_keys};
pub use sshd::SshdSettings;
pub use who::Session;

/// `path` (absolute) under `root`: `under("/srv/fx", "/etc/passwd")` = `/srv/fx/etc/passwd`.
pub fn under(root: &str, path: &str) -> String {
    let r = root.trim_end_matches('/');
    if r.is_empty() {
        path.to_string()
    } else {
        format!("{r}/{}", path.trim_start_matches('/'))
    }
}

/// `path` with `root` taken off again, for reports (`/srv/fx/etc/passwd` → `/etc/passwd`).
pub fn shown(root: &str, path: &str) -> String {
    let r = root.trim_end_matches('/');
    match path.strip_prefix(r) {
        Some(rest) if !r.is_empty() && rest.starts_with('/') => rest.to_string(),
        _ => path.to_string(),
    }
}
