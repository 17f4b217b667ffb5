//! File metadata read on a host with one `find -printf` (mode, owner, group, mtime, size,
//! type): what the review needs to judge sudoers, `authorized_keys` and the app's paths.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Link,
    /// Anything else.
    Other,
}

/// One path's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path as given to `find` (under the review's root).
    pub path: String,
    /// Permission bits (`0o640`), with setuid/setgid/sticky.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Owner name (the uid when it has none).
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Last modification.
    pub mtime: DateTime<Utc>,
    /// Size in bytes.
    pub size: u64,
    /// Type.
    pub kind: FileKind,
}

impl FileMeta {
    /// `0640`.
    pub fn mode_octal(&self) -> String {
        format!("{:04o}", self.mode)
    }
    /// Writable by anyone (and, for a directory, without the sticky bit).
    pub fn world_writable(&self) -> bool {
        self.mode & 0o002 != 0 && !(self.kind == FileKind::Dir && self.mode & 0o1000 != 0)
    }
}

const FORMAT: &str = "%m|%U|%G|%T@|%s|%y|%u|%g|%p\\n";

/// Parse one line of [`FORMAT`].
pub fn parse_line(line: &str) -> Option<FileMeta> {
    let f: Vec<&str> = line.splitn(9, '|').collect();
    if f.len() != 9 {
        return None;
    }
    let secs: f64 = f[3].parse().ok()?;
    Some(FileMeta {
        mode: u32::from_str_radix(f[0], 8).ok()?,
        uid: f[1].parse().ok()?,
        gid: f[2].parse().ok()?,
        mtime: DateTime::from_timestamp(secs.trunc() as i64, 0)?,
        size: f[4].parse().ok()?,
        kind: match f[5] {
            "f" => FileKind::File,
            "d" => FileKind::Dir,
            "l" => FileKind::Link,
            _ => FileKind::Other,
        },
        owner: f[6].to_string(),
        group: f[7].to_string(),
        path: f[8].to_string(),
    })
}

/// The metadata of `paths` and, down to `depth` levels, what is below them (depth 0: the paths
/// themselves). Paths that do not exist are returned apart; a `find` that fails otherwise is
/// an error naming the host.
pub async fn stat(
    host: &dyn RemoteHost,
    paths: &[String],
    depth: u32,
) -> Result<(Vec<FileMeta>, Vec<String>)> {
    if paths.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let cmd = Cmd::new("find")
        .args(paths.iter().cloned())
        .args(["-maxdepth".to_string(), depth.to_string()])
        .args(["-printf", FORMAT]);
    let out = host.run(&cmd).await?;
    // `find: '/x': No such file or directory` (quotes vary with the locale: ' or ‘’).
    let missing: Vec<String> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_suffix(": No such file or directory"))
        .map(|l| {
            let p = l.strip_prefix("find: ").unwrap_or(l);
            p.trim_matches(|c| matches!(c, '\'' | '‘' | '’' | '"'))
                .to_string()
        })
        .collect();
    let only_missing = out
        .stderr
        .lines()
        .all(|l| l.ends_with("No such file or directory"));
    let tolerable = out.success() || (only_missing && out.status == Some(1));
    if !tolerable {
        return Err(out.check(host.name(), &cmd).err().unwrap_or_else(|| {
            Error::new(ErrorKind::Unexpected, "find failed").with_context("host", host.name())
        }));
    }
    let metas = out.stdout.lines().filter_map(parse_line).collect();
    Ok((metas, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_find_line_parses_and_a_path_may_hold_the_separator() {
        let m = parse_line("440|0|0|1733100000.5|12|f|root|root|/etc/sudoers.d/a|b").unwrap();
        assert_eq!((m.mode, m.uid, m.size), (0o440, 0, 12));
        assert_eq!(m.path, "/etc/sudoers.d/a|b");
        assert!(!m.world_writable());
        let d = parse_line("1777|0|0|1|0|d|root|root|/tmp").unwrap();
        assert!(!d.world_writable(), "sticky directory");
        assert!(parse_line("garbage").is_none());
    }
}
