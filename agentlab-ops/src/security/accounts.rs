//! `/etc/passwd`, `/etc/group` and sudoers, parsed: osquery's `users` and `groups` tables, and
//! the principals a sudoers rule names.

use serde::{Deserialize, Serialize};

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Line in the file (1-based).
    pub line: usize,
}

impl Account {
    /// Whether the shell lets the account log in (not `nologin`, `false`, `sync`, ...).
    pub fn can_log_in(&self) -> bool {
        let base = self.shell.rsplit('/').next().unwrap_or("");
        !matches!(
            base,
            "" | "nologin" | "false" | "sync" | "shutdown" | "halt" | "git-shell"
        )
    }
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// A line that did not parse: its number and why.
pub type Malformed = (usize, String);

/// Parse `/etc/passwd`: the accounts, and the lines that are not `name:pw:uid:gid:gecos:home:shell`
/// (NIS `+`/`-` lines and comments are skipped).
pub fn parse_passwd(text: &str) -> (Vec<Account>, Vec<Malformed>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end();
        if l.is_empty() || l.starts_with('#') || l.starts_with('+') || l.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = l.split(':').collect();
        let parsed = (f.len() == 7)
            .then(|| Some((f[2].parse::<u32>().ok()?, f[3].parse::<u32>().ok()?)))
            .flatten();
        match parsed {
            Some((uid, gid)) if !f[0].is_empty() => out.push(Account {
                name: f[0].to_string(),
                uid,
                gid,
                home: f[5].to_string(),
                shell: f[6].to_string(),
                line: i + 1,
            }),
            _ => bad.push((
                i + 1,
                format!("not name:pw:uid:gid:gecos:home:shell: {l:?}"),
            )),
        }
    }
    (out, bad)
}

/// Parse `/etc/group`.
pub fn parse_group(text: &str) -> (Vec<Group>, Vec<Malformed>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_end();
        if l.is_empty() || l.starts_with('#') || l.starts_with('+') || l.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = l.split(':').collect();
        match (f.len(), f.get(2).and_then(|g| g.parse::<u32>().ok())) {
            (4, Some(gid)) => out.push(Group {
                name: f[0].to_string(),
                gid,
                members: f[3]
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            }),
            _ => bad.push((i + 1, format!("not name:pw:gid:members: {l:?}"))),
        }
    }
    (out, bad)
}

/// One rule of a sudoers file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SudoRule {
    /// The file.
    pub file: String,
    /// Line (1-based).
    pub line: usize,
    /// Who it is for: a user, `%group`, or an alias.
    pub principal: String,
    /// The whole rule.
    pub rule: String,
}

/// The rules of a sudoers file: every line that grants (not a comment, `Defaults`, an alias
/// definition or an include), continuation lines joined.
pub fn parse_sudoers(file: &str, text: &str) -> Vec<SudoRule> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if pending.is_empty() {
            start = i + 1;
        }
        let l = line.trim();
        if let Some(cont) = l.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(l);
        let rule = std::mem::take(&mut pending);
        let rule = rule.trim();
        let first = rule.split_whitespace().next().unwrap_or("");
        let skip = rule.is_empty()
            || (rule.starts_with('#') && !rule.starts_with("#include"))
            || rule.starts_with("#include")
            || rule.starts_with('@')
            || first.starts_with("Defaults")
            || matches!(
                first,
                "User_Alias" | "Runas_Alias" | "Host_Alias" | "Cmnd_Alias" | "Cmd_Alias"
            );
        if skip {
            continue;
        }
        out.push(SudoRule {
            file: file.to_string(),
            line: start,
            principal: first.to_string(),
            rule: rule.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_parse_and_garbage_is_named_by_line() {
        let (a, bad) = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\nsshd:x:104:65534::/run/sshd:/usr/sbin/nologin\nbroken:x:zz:0::/:/bin/sh\n",
        );
        assert_eq!(a.len(), 2);
        assert!(a[0].can_log_in() && !a[1].can_log_in());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 4);
    }

    #[test]
    fn sudoers_rules_skip_defaults_aliases_and_join_continuations() {
        let r = parse_sudoers(
            "/etc/sudoers",
            "Defaults env_reset\nUser_Alias OPS = a, b\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL) \\\n  ALL\n@includedir /etc/sudoers.d\n",
        );
        let p: Vec<&str> = r.iter().map(|r| r.principal.as_str()).collect();
        assert_eq!(p, ["root", "%sudo"]);
        assert_eq!(r[1].line, 4);
        assert!(r[1].rule.ends_with("ALL"));
    }
}
