//! The sshd settings that decide who may log in, read from `sshd_config` the way sshd reads
//! it: keywords case-insensitive, the first value obtained wins, `Include` (globs, relative
//! to `/etc/ssh`) read in place, `Match` blocks not applied to the global settings.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::host::RemoteHost;

/// What the review reports of sshd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdSettings {
    /// `PermitRootLogin` (default `prohibit-password`).
    pub permit_root_login: String,
    /// `PasswordAuthentication` (default `yes`).
    pub password_authentication: String,
    /// `PermitEmptyPasswords` (default `no`).
    pub permit_empty_passwords: String,
    /// `StrictModes` (default `yes`).
    pub strict_modes: String,
    /// `PermitUserEnvironment` (default `no`).
    pub permit_user_environment: String,
    /// `AllowUsers` (empty: anyone).
    pub allow_users: Vec<String>,
    /// `AllowGroups`.
    pub allow_groups: Vec<String>,
    /// `AuthorizedKeysFile` (default `.ssh/authorized_keys .ssh/authorized_keys2`).
    pub authorized_keys_file: Vec<String>,
    /// The files read, in order.
    pub files: Vec<String>,
}

impl Default for SshdSettings {
    fn default() -> Self {
        SshdSettings {
            permit_root_login: "prohibit-password".into(),
            password_authentication: "yes".into(),
            permit_empty_passwords: "no".into(),
            strict_modes: "yes".into(),
            permit_user_environment: "no".into(),
            allow_users: Vec::new(),
            allow_groups: Vec::new(),
            authorized_keys_file: vec![
                ".ssh/authorized_keys".into(),
                ".ssh/authorized_keys2".into(),
            ],
            files: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Seen {
    keys: std::collections::HashSet<String>,
    in_match: bool,
}

/// Apply one file's lines; `Include` lines are returned in order for the caller to read
/// (with their position: the included file's settings come before the lines after it).
fn apply(s: &mut SshdSettings, seen: &mut Seen, text: &str) -> Vec<(usize, String)> {
    let mut includes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim().trim_start_matches('=').trim(),
            ),
            None => (l.to_ascii_lowercase(), ""),
        };
        if k == "match" {
            seen.in_match = !v.eq_ignore_ascii_case("all");
            continue;
        }
        if seen.in_match {
            continue;
        }
        if k == "include" {
            includes.push((i, v.to_string()));
            continue;
        }
        let list = |v: &str| v.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        // AllowUsers/AllowGroups accumulate; everything else: the first value wins.
        match k.as_str() {
            "allowusers" => s.allow_users.extend(list(v)),
            "allowgroups" => s.allow_groups.extend(list(v)),
            _ if !seen.keys.insert(k.clone()) => {}
            "permitrootlogin" => s.permit_root_login = v.to_ascii_lowercase(),
            "passwordauthentication" => s.password_authentication = v.to_ascii_lowercase(),
            "permitemptypasswords" => s.permit_empty_passwords = v.to_ascii_lowercase(),
            "strictmodes" => s.strict_modes = v.to_ascii_lowercase(),
            "permituserenvironment" => s.permit_user_environment = v.to_ascii_lowercase(),
            "authorizedkeysfile" => s.authorized_keys_file = list(v),
            _ => {}
        }
    }
    includes
}

/// Split a text at the lines of its `Include`s: the parts between them.
fn parts(text: &str, includes: &[(usize, String)]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut from = 0;
    for (at, _) in includes {
        out.push(lines[from..*at].join("\n"));
        from = at + 1;
    }
    out.push(lines[from.min(lines.len())..].join("\n"));
    out
}

/// Read `sshd_config` under `root` (`/` on a live host, a fixture tree in tests), following
/// `Include`s up to 8 levels. A missing main file is an error; a missing include is skipped,
/// as sshd does with a glob that matches nothing.
pub async fn read(host: &dyn RemoteHost, root: &str) -> Result<SshdSettings> {
    let mut s = SshdSettings::default();
    let mut seen = Seen::default();
    let main = super::under(root, "/etc/ssh/sshd_config");
    read_file(host, root, &main, &mut s, &mut seen, 0).await?;
    Ok(s)
}

fn read_file<'a>(
    host: &'a dyn RemoteHost,
    root: &'a str,
    path: &'a str,
    s: &'a mut SshdSettings,
    seen: &'a mut Seen,
    depth: u32,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let text = String::from_utf8_lossy(&host.read_file(path).await?).into_owned();
        s.files.push(path.to_string());
        // Settings before an Include come first, then the included files, then the rest.
        let includes = apply(&mut SshdSettings::default(), &mut Seen::default(), &text);
        let chunks = parts(&text, &includes);
        for (n, chunk) in chunks.iter().enumerate() {
            apply(s, seen, chunk);
            let Some((_, pattern)) = includes.get(n) else {
                continue;
            };
            if depth >= 8 || seen.in_match {
                continue;
            }
            for p in pattern.split_whitespace() {
                let abs = if p.starts_with('/') {
                    p.to_string()
                } else {
                    format!("/etc/ssh/{p}")
                };
                let full = super::under(root, &abs);
                let (dir, glob) = full.rsplit_once('/').unwrap_or((".", full.as_str()));
                for f in host.list_files(dir, glob).await.unwrap_or_default() {
                    read_file(host, root, &f, s, seen, depth + 1).await?;
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_wins_case_insensitive_and_match_blocks_do_not_apply() {
        let mut s = SshdSettings::default();
        let mut seen = Seen::default();
        apply(
            &mut s,
            &mut seen,
            "permitrootlogin yes\nPermitRootLogin no\nAllowUsers a b\nPasswordAuthentication=no\nMatch User x\n  PasswordAuthentication yes\n  AllowUsers z\n",
        );
        assert_eq!(s.permit_root_login, "yes");
        assert_eq!(s.password_authentication, "no");
        assert_eq!(s.allow_users, ["a", "b"]);
    }

    #[test]
    fn include_position_is_kept() {
        let text = "PermitRootLogin no\nInclude /etc/ssh/sshd_config.d/*.conf\nX11Forwarding yes";
        let inc = apply(&mut SshdSettings::default(), &mut Seen::default(), text);
        assert_eq!(inc.len(), 1);
        let p = parts(text, &inc);
        assert_eq!(p, ["PermitRootLogin no", "X11Forwarding yes"]);
    }
}
