//! What an access review concludes from an [`Inventory`]: typed findings with a severity and,
//! where one matches, the Lynis test id, judged against the `[access]` allow-lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::AccessConfig;
use crate::report::Severity;
use crate::security::files::{FileKind, FileMeta};
use crate::security::inventory::{Inventory, KeyFile};

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An account other than root with uid 0 (Lynis AUTH-9204).
    Uid0Account,
    /// Accounts sharing a uid (AUTH-9208).
    DuplicateUid,
    /// A system account with a login shell.
    SystemAccountShell,
    /// A sudoers file or directory with unsafe mode or owner (AUTH-9252).
    SudoersPermissions,
    /// A sudoer not in `expected_sudoers`.
    UnexpectedSudoer,
    /// A key not in `expected_keys`: the backdoor a rotation leaves behind.
    UnexpectedKey,
    /// DSA, or RSA under 2048 bits.
    WeakKey,
    /// An `authorized_keys` file writable by others or not owned by its account.
    KeyFilePermissions,
    /// A line of passwd, group or authorized_keys that does not parse.
    Malformed,
    /// `PermitRootLogin yes` (SSH-7408).
    RootLoginPermitted,
    /// `PasswordAuthentication yes`.
    PasswordLogin,
    /// `PermitEmptyPasswords yes`.
    EmptyPasswords,
    /// `StrictModes no` (SSH-7408).
    StrictModesOff,
    /// `PermitUserEnvironment yes` (SSH-7408).
    UserEnvironment,
    /// No `AllowUsers`/`AllowGroups`: any account with a key or password may log in.
    NoLoginAllowList,
    /// An allow-list of `[access]` is empty, so what is present is not judged.
    NoAllowList,
    /// An app path writable by anyone.
    WorldWritable,
    /// An app path not owned by `app_owner`.
    OwnerMismatch,
    /// An app path that does not exist.
    MissingPath,
}

impl FindingKind {
    /// The Lynis test that checks the same thing.
    pub fn lynis(self) -> Option<&'static str> {
        match self {
            FindingKind::Uid0Account => Some("AUTH-9204"),
            FindingKind::DuplicateUid => Some("AUTH-9208"),
            FindingKind::SudoersPermissions => Some("AUTH-9252"),
            FindingKind::RootLoginPermitted
            | FindingKind::StrictModesOff
            | FindingKind::UserEnvironment => Some("SSH-7408"),
            _ => None,
        }
    }
}

/// One finding of the review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessFinding {
    /// The host.
    pub host: String,
    /// What.
    pub kind: FindingKind,
    /// How bad.
    pub severity: Severity,
    /// The Lynis test id, where one matches.
    pub lynis: Option<String>,
    /// The account, file, key or setting.
    pub subject: String,
    /// One line.
    pub message: String,
}

struct Out<'a> {
    host: &'a str,
    v: Vec<AccessFinding>,
}

impl Out<'_> {
    fn add(&mut self, kind: FindingKind, sev: Severity, subject: impl Into<String>, msg: String) {
        self.v.push(AccessFinding {
            host: self.host.to_string(),
            kind,
            severity: sev,
            lynis: kind.lynis().map(str::to_string),
            subject: subject.into(),
            message: msg,
        });
    }
}

/// Judge a host's inventory.
pub fn judge(host: &str, inv: &Inventory, cfg: &AccessConfig) -> Vec<AccessFinding> {
    let mut o = Out {
        host,
        v: Vec::new(),
    };
    accounts(&mut o, inv, cfg);
    sudo(&mut o, inv, cfg);
    if let Some(k) = &inv.keys {
        keys(&mut o, inv, k, cfg);
    }
    sshd(&mut o, inv);
    paths(&mut o, inv, cfg);
    o.v
}

fn accounts(o: &mut Out, inv: &Inventory, cfg: &AccessConfig) {
    let Some(a) = &inv.accounts else { return };
    let mut by_uid: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for acc in &a.accounts {
        by_uid.entry(acc.uid).or_default().push(&acc.name);
        if acc.uid == 0 && acc.name != "root" {
            let m = format!("{} has uid 0 (line {}): a second root", acc.name, acc.line);
            o.add(FindingKind::Uid0Account, Severity::Critical, &acc.name, m);
        }
        if acc.uid != 0 && acc.uid <= cfg.system_uid_max && acc.can_log_in() {
            let m = format!(
                "system account {} (uid {}) has the login shell {}",
                acc.name, acc.uid, acc.shell
            );
            o.add(
                FindingKind::SystemAccountShell,
                Severity::Warning,
                &acc.name,
                m,
            );
        }
    }
    for (uid, names) in by_uid.iter().filter(|(_, n)| n.len() > 1) {
        let m = format!("uid {uid} is shared by {}", names.join(", "));
        o.add(
            FindingKind::DuplicateUid,
            Severity::Warning,
            names.join(","),
            m,
        );
    }
    for m in &a.malformed {
        o.add(
            FindingKind::Malformed,
            Severity::Warning,
            m.split(':').next().unwrap_or(""),
            m.clone(),
        );
    }
}

/// Lynis AUTH-9252: a file `r[w-]-[r-][w-]----` and a directory `rwx[r-][w-][x-]---`, both
/// owned by uid 0 and gid 0.
fn sudo_mode_ok(m: &FileMeta) -> bool {
    let p = m.mode & 0o777;
    let mode = match m.kind {
        FileKind::Dir => p & 0o700 == 0o700 && p & 0o007 == 0,
        _ => p & 0o400 != 0 && p & 0o100 == 0 && p & 0o010 == 0 && p & 0o007 == 0,
    };
    mode && m.uid == 0 && m.gid == 0
}

fn sudo(o: &mut Out, inv: &Inventory, cfg: &AccessConfig) {
    if let Some(s) = &inv.sudoers {
        for m in s.dir.iter().chain(&s.files).filter(|m| !sudo_mode_ok(m)) {
            let msg = format!(
                "{} has mode {} owner {}:{} (want 0440/0600 files, 0750 directory, root:root)",
                m.path,
                m.mode_octal(),
                m.uid,
                m.gid
            );
            o.add(
                FindingKind::SudoersPermissions,
                Severity::Warning,
                &m.path,
                msg,
            );
        }
    }
    let mut who: BTreeMap<String, String> = BTreeMap::new();
    if let Some(a) = &inv.accounts {
        for g in a
            .groups
            .iter()
            .filter(|g| cfg.sudo_groups.contains(&g.name))
        {
            for m in &g.members {
                who.entry(m.clone())
                    .or_insert_with(|| format!("member of group {}", g.name));
            }
        }
    }
    if let Some(s) = &inv.sudoers {
        for r in &s.rules {
            let p = r.principal.clone();
            let sudo_group = p
                .strip_prefix('%')
                .is_some_and(|g| cfg.sudo_groups.iter().any(|s| s == g));
            if !sudo_group {
                who.entry(p)
                    .or_insert_with(|| format!("{}:{}: {}", r.file, r.line, r.rule));
            }
        }
    }
    who.remove("root");
    if cfg.expected_sudoers.is_empty() {
        if !who.is_empty() {
            let names: Vec<&str> = who.keys().map(String::as_str).collect();
            let m = format!(
                "{} sudoers ({}) not judged: [access] expected_sudoers is empty",
                who.len(),
                names.join(", ")
            );
            o.add(
                FindingKind::NoAllowList,
                Severity::Info,
                "expected_sudoers",
                m,
            );
        }
        return;
    }
    for (p, why) in who
        .iter()
        .filter(|(p, _)| !cfg.expected_sudoers.contains(p))
    {
        o.add(
            FindingKind::UnexpectedSudoer,
            Severity::Critical,
            p,
            format!("{p} may sudo ({why}) and is not in expected_sudoers"),
        );
    }
}

fn expected(cfg: &AccessConfig, user: &str, fp: &str) -> Option<String> {
    cfg.expected_keys
        .iter()
        .find(|k| k.fingerprint == fp && k.user.as_deref().is_none_or(|u| u == user))
        .map(|k| k.label.clone().unwrap_or_default())
}

fn keys(o: &mut Out, inv: &Inventory, files: &[KeyFile], cfg: &AccessConfig) {
    let uid_of = |u: &str| {
        inv.accounts
            .as_ref()
            .and_then(|a| a.accounts.iter().find(|x| x.name == u))
            .map(|a| a.uid)
    };
    let judged = !cfg.expected_keys.is_empty();
    let total: usize = files.iter().map(|f| f.keys.len()).sum();
    if !judged && total > 0 {
        let m = format!("{total} keys listed, not judged: [access] expected_keys is empty");
        o.add(FindingKind::NoAllowList, Severity::Info, "expected_keys", m);
    }
    for f in files {
        if let Some(m) = &f.meta {
            let foreign = m.uid != 0 && Some(m.uid) != uid_of(&f.user);
            if m.mode & 0o022 != 0 || foreign {
                let msg = format!(
                    "{} has mode {} owner {} (sshd's StrictModes refuses a file others can write)",
                    f.path,
                    m.mode_octal(),
                    m.owner
                );
                o.add(
                    FindingKind::KeyFilePermissions,
                    Severity::Warning,
                    &f.path,
                    msg,
                );
            }
        }
        for bad in &f.malformed {
            o.add(
                FindingKind::Malformed,
                Severity::Warning,
                &f.path,
                format!("{}:{bad}", f.path),
            );
        }
        for k in &f.keys {
            let subject = format!("{}:{} {}", f.user, k.fingerprint, k.comment);
            if k.weak() {
                let m = format!("{} {} bits in {}:{}", k.key_type, k.bits, f.path, k.line);
                o.add(FindingKind::WeakKey, Severity::Warning, &subject, m);
            }
            if judged
                && !cfg.unmanaged_accounts.contains(&f.user)
                && expected(cfg, &f.user, &k.fingerprint).is_none()
            {
                let m = format!(
                    "{} key {} ({}) of {} in {}:{} is not in expected_keys",
                    k.key_type, k.fingerprint, k.comment, f.user, f.path, k.line
                );
                o.add(FindingKind::UnexpectedKey, Severity::Critical, &subject, m);
            }
        }
    }
}

fn sshd(o: &mut Out, inv: &Inventory) {
    let Some(s) = &inv.sshd else { return };
    let file = s.files.first().cloned().unwrap_or_default();
    if s.permit_root_login == "yes" {
        o.add(FindingKind::RootLoginPermitted, Severity::Warning, "PermitRootLogin", format!("PermitRootLogin yes ({file}): root may log in with a password; prohibit-password or no"));
    }
    if s.password_authentication == "yes" {
        o.add(
            FindingKind::PasswordLogin,
            Severity::Warning,
            "PasswordAuthentication",
            "PasswordAuthentication yes: passwords can be guessed; keys only".into(),
        );
    }
    if s.permit_empty_passwords == "yes" {
        o.add(
            FindingKind::EmptyPasswords,
            Severity::Critical,
            "PermitEmptyPasswords",
            "PermitEmptyPasswords yes: an account without a password logs in".into(),
        );
    }
    if s.strict_modes == "no" {
        o.add(
            FindingKind::StrictModesOff,
            Severity::Warning,
            "StrictModes",
            "StrictModes no: sshd accepts key files others can write".into(),
        );
    }
    if s.permit_user_environment == "yes" {
        o.add(
            FindingKind::UserEnvironment,
            Severity::Warning,
            "PermitUserEnvironment",
            "PermitUserEnvironment yes: a key's environment= can bypass restrictions".into(),
        );
    }
    if s.allow_users.is_empty() && s.allow_groups.is_empty() {
        o.add(
            FindingKind::NoLoginAllowList,
            Severity::Info,
            "AllowUsers",
            "no AllowUsers or AllowGroups: every account with a key may log in".into(),
        );
    }
}

const PER_KIND: usize = 20;

fn paths(o: &mut Out, inv: &Inventory, cfg: &AccessConfig) {
    for p in &inv.missing_paths {
        o.add(
            FindingKind::MissingPath,
            Severity::Info,
            p,
            format!("{p} does not exist"),
        );
    }
    let Some(ps) = &inv.paths else { return };
    let ww: Vec<&FileMeta> = ps.iter().filter(|m| m.world_writable()).collect();
    for m in ww.iter().take(PER_KIND) {
        o.add(
            FindingKind::WorldWritable,
            Severity::Critical,
            &m.path,
            format!("{} is writable by anyone (mode {})", m.path, m.mode_octal()),
        );
    }
    if ww.len() > PER_KIND {
        o.add(
            FindingKind::WorldWritable,
            Severity::Critical,
            "…",
            format!("and {} more world-writable paths", ww.len() - PER_KIND),
        );
    }
    let Some(owner) = &cfg.app_owner else { return };
    let wrong: Vec<&FileMeta> = ps.iter().filter(|m| &m.owner != owner).collect();
    for m in wrong.iter().take(PER_KIND) {
        o.add(
            FindingKind::OwnerMismatch,
            Severity::Warning,
            &m.path,
            format!("{} is owned by {}, not {owner}", m.path, m.owner),
        );
    }
    if wrong.len() > PER_KIND {
        o.add(
            FindingKind::OwnerMismatch,
            Severity::Warning,
            "…",
            format!(
                "and {} more paths not owned by {owner}",
                wrong.len() - PER_KIND
            ),
        );
    }
}
