//! `[access]`: what the access review expects (who may sudo, which keys may log in, who owns
//! the app's paths), where the auth logs are, and the working hours of the timeline.

use super::*;

/// `[access]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AccessConfig {
    /// Where the hosts' files are read from: `/`, or a fixture tree (`tests/fixtures/host-a`).
    pub root: String,
    /// Groups whose members may sudo.
    pub sudo_groups: Vec<String>,
    /// Who is expected to hold sudo (a member of a sudo group or named by a sudoers rule, as
    /// `user` or `%group`). Empty: no allow-list, members are listed but not judged.
    pub expected_sudoers: Vec<String>,
    /// Keys expected in `authorized_keys` files. Empty: no allow-list.
    pub expected_keys: Vec<ExpectedKey>,
    /// The app's paths, checked two levels deep for world-writable files and owners.
    pub app_paths: Vec<String>,
    /// Who should own the app's paths (unset: not checked).
    pub app_owner: Option<String>,
    /// Accounts up to this uid are system accounts (a login shell there is a finding).
    pub system_uid_max: u32,
    /// Accounts whose keys are not judged against the allow-list (e.g. a break-glass account
    /// managed elsewhere). Their keys are still listed.
    pub unmanaged_accounts: Vec<String>,
    /// Auth logs on each host, the first that exists is read (`auth.log` on Debian, `secure`
    /// on RHEL).
    pub auth_logs: Vec<String>,
    /// Working hours (UTC) of the timeline: `08:00-18:00`.
    pub working_hours: String,
    /// Working days (`Mon`..`Sun`).
    pub working_days: Vec<String>,
}

/// `[[access.expected_keys]]`: a key expected to log in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExpectedKey {
    /// `SHA256:...` as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// Only for this account (unset: any).
    #[serde(default)]
    pub user: Option<String>,
    /// Whose it is (`alice laptop`).
    #[serde(default)]
    pub label: Option<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            root: "/".into(),
            sudo_groups: vec!["sudo".into(), "wheel".into(), "admin".into()],
            expected_sudoers: Vec::new(),
            expected_keys: Vec::new(),
            app_paths: vec!["/app".into()],
            app_owner: None,
            system_uid_max: 999,
            unmanaged_accounts: Vec::new(),
            auth_logs: vec!["/var/log/auth.log".into(), "/var/log/secure".into()],
            working_hours: "08:00-18:00".into(),
            working_days: ["Mon", "Tue", "Wed", "Thu", "Fri"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// Working hours: `(start, end)` minutes after midnight.
pub fn parse_hours(s: &str) -> std::result::Result<(u32, u32), String> {
    let hm = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let err = || format!("{s:?}: use HH:MM-HH:MM (08:00-18:00)");
    let (a, b) = s.split_once('-').ok_or_else(err)?;
    match (hm(a), hm(b)) {
        (Some(a), Some(b)) if a < b => Ok((a, b)),
        _ => Err(err()),
    }
}

impl AccessConfig {
    pub(super) fn check(&self) -> std::result::Result<(), (String, String)> {
        let at = |f: &str| format!("access.{f}");
        if self.root.trim().is_empty() {
            return Err((
                at("root"),
                "must not be empty (`/` for the host itself)".into(),
            ));
        }
        parse_hours(&self.working_hours).map_err(|m| (at("working_hours"), m))?;
        for (i, d) in self.working_days.iter().enumerate() {
            if d.parse::<chrono::Weekday>().is_err() {
                return Err((
                    at(&format!("working_days[{i}]")),
                    format!("{d:?}: Mon..Sun"),
                ));
            }
        }
        for (i, k) in self.expected_keys.iter().enumerate() {
            let fp = k.fingerprint.strip_prefix("SHA256:").unwrap_or("");
            let ok = fp.len() == 43
                && fp
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            if !ok {
                return Err((
                    at(&format!("expected_keys[{i}].fingerprint")),
                    format!(
                        "{:?}: a SHA256:... fingerprint as `ssh-keygen -lf KEY.pub` prints it",
                        k.fingerprint
                    ),
                ));
            }
        }
        for (i, p) in self.app_paths.iter().enumerate() {
            if !p.starts_with('/') {
                return Err((
                    at(&format!("app_paths[{i}]")),
                    format!("{p:?}: an absolute path"),
                ));
            }
        }
        Ok(())
    }
}
