//! Reading a host's security inventory, one area at a time (each its own step in the
//! review, so one unreadable area never hides the others).

use serde::{Deserialize, Serialize};

use super::accounts::{
    Account, Group, Malformed, SudoRule, parse_group, parse_passwd, parse_sudoers,
};
use super::files::{FileMeta, stat};
use super::keys::{KeyEntry, parse_authorized_keys};
use super::sshd::SshdSettings;
use super::who::{Session, parse_who};
use super::{shown, under};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

/// Accounts and groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounts {
    /// `/etc/passwd`.
    pub accounts: Vec<Account>,
    /// `/etc/group`.
    pub groups: Vec<Group>,
    /// Lines that did not parse: `file:line: why`.
    pub malformed: Vec<String>,
}

/// Sudoers files, their modes and rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sudoers {
    /// `/etc/sudoers.d` itself.
    pub dir: Option<FileMeta>,
    /// `/etc/sudoers` and every file of `/etc/sudoers.d`.
    pub files: Vec<FileMeta>,
    /// Their rules.
    pub rules: Vec<SudoRule>,
}

/// One account's `authorized_keys` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyFile {
    /// The account.
    pub user: String,
    /// The file (as on the host).
    pub path: String,
    /// Its metadata.
    pub meta: Option<FileMeta>,
    /// Its keys.
    pub keys: Vec<KeyEntry>,
    /// Lines that are not keys: `line: why`.
    pub malformed: Vec<String>,
}

/// Everything the review read of a host; an area that could not be read is None (the step
/// says why).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Accounts and groups.
    pub accounts: Option<Accounts>,
    /// Sudoers.
    pub sudoers: Option<Sudoers>,
    /// sshd settings.
    pub sshd: Option<SshdSettings>,
    /// Every `authorized_keys` file that exists.
    pub keys: Option<Vec<KeyFile>>,
    /// Sessions (live hosts only).
    pub sessions: Option<Vec<Session>>,
    /// The app's paths, two levels deep.
    pub paths: Option<Vec<FileMeta>>,
    /// App paths that do not exist.
    pub missing_paths: Vec<String>,
}

fn text(b: bytes::Bytes) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

fn named(file: &str, bad: Vec<Malformed>) -> impl Iterator<Item = String> + '_ {
    bad.into_iter()
        .map(move |(l, m)| format!("{file}:{l}: {m}"))
}

/// `/etc/passwd` and `/etc/group` under `root`.
pub async fn read_accounts(host: &dyn RemoteHost, root: &str) -> Result<Accounts> {
    let (accounts, bad_p) = parse_passwd(&text(host.read_file(&under(root, "/etc/passwd")).await?));
    let (groups, bad_g) = parse_group(&text(host.read_file(&under(root, "/etc/group")).await?));
    if accounts.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            "/etc/passwd has no account: not a passwd file",
        )
        .with_context("host", host.name()));
    }
    let malformed = named("/etc/passwd", bad_p)
        .chain(named("/etc/group", bad_g))
        .collect();
    Ok(Accounts {
        accounts,
        groups,
        malformed,
    })
}

/// `/etc/sudoers` and `/etc/sudoers.d/*` under `root`: modes and rules. No sudoers at all
/// (sudo not installed) is an empty result, not an error.
pub async fn read_sudoers(host: &dyn RemoteHost, root: &str) -> Result<Sudoers> {
    let main = under(root, "/etc/sudoers");
    let dir = under(root, "/etc/sudoers.d");
    let (metas, _) = stat(host, &[main, dir.clone()], 1).await?;
    let mut out = Sudoers::default();
    for m in metas {
        if m.path == dir {
            out.dir = Some(m);
        } else if m.kind == super::FileKind::File {
            out.files.push(m);
        }
    }
    for f in &mut out.files {
        let body = text(host.read_file(&f.path).await?);
        f.path = shown(root, &f.path);
        out.rules.extend(parse_sudoers(&f.path, &body));
    }
    if let Some(d) = &mut out.dir {
        d.path = shown(root, &d.path);
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The `authorized_keys` paths of an account from sshd's `AuthorizedKeysFile` patterns
/// (`%h`, `%u`, `%%`; relative to the home directory).
pub fn key_paths(a: &Account, patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| p.as_str() != "none")
        .map(|p| {
            let e = p
                .replace("%%", "\u{0}")
                .replace("%h", &a.home)
                .replace("%u", &a.name)
                .replace('\u{0}', "%");
            if e.starts_with('/') {
                e
            } else {
                format!("{}/{e}", a.home.trim_end_matches('/'))
            }
        })
        .collect()
}

/// Every account's `authorized_keys` files that exist, with modes and keys.
pub async fn read_keys(
    host: &dyn RemoteHost,
    root: &str,
    accounts: &[Account],
    sshd: &SshdSettings,
) -> Result<Vec<KeyFile>> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    for a in accounts.iter().filter(|a| a.home.len() > 1) {
        for p in key_paths(a, &sshd.authorized_keys_file) {
            let full = under(root, &p);
            if !wanted.iter().any(|(_, w)| *w == full) {
                wanted.push((a.name.clone(), full));
            }
        }
    }
    let paths: Vec<String> = wanted.iter().map(|(_, p)| p.clone()).collect();
    let (metas, _) = stat(host, &paths, 0).await?;
    let mut out = Vec::new();
    for (user, full) in wanted {
        let Some(meta) = metas.iter().find(|m| m.path == full).cloned() else {
            continue;
        };
        let (keys, bad) = parse_authorized_keys(&text(host.read_file(&full).await?));
        let mut meta = meta;
        meta.path = shown(root, &full);
        out.push(KeyFile {
            user,
            path: meta.path.clone(),
            meta: Some(meta),
            keys,
            malformed: bad.into_iter().map(|(l, m)| format!("{l}: {m}")).collect(),
        });
    }
    Ok(out)
}

/// `who -u` on the host.
pub async fn read_sessions(host: &dyn RemoteHost) -> Result<Vec<Session>> {
    let cmd = Cmd::new("who").arg("-u");
    let out = host.run(&cmd).await?.check(host.name(), &cmd)?;
    Ok(parse_who(&out.stdout))
}

/// The app's paths and two levels below them; the paths that do not exist apart.
pub async fn read_paths(
    host: &dyn RemoteHost,
    root: &str,
    paths: &[String],
) -> Result<(Vec<FileMeta>, Vec<String>)> {
    let full: Vec<String> = paths.iter().map(|p| under(root, p)).collect();
    let (mut metas, missing) = stat(host, &full, 2).await?;
    for m in &mut metas {
        m.path = shown(root, &m.path);
    }
    Ok((metas, missing.iter().map(|p| shown(root, p)).collect()))
}
