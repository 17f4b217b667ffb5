//! The weekly maintenance's per-host commands and what their output means: pip's package
//! list before and after, apt-get's upgraded packages (`-V`), log rotation, the app's own
//! database command, the TLS certificate.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::MaintenanceConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, CmdOutput, HostEntry};

/// A package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChange {
    /// Package.
    pub name: String,
    /// Version before (None: newly installed).
    pub old: Option<String>,
    /// Version after (None: removed).
    pub new: Option<String>,
}

/// Run `argv` on the host; a non-zero exit is an error naming the host, the command and the
/// end of its stderr.
pub(super) async fn run(h: &HostEntry, argv: &[String], timeout: Duration) -> Result<CmdOutput> {
    let (p, a) = argv
        .split_first()
        .ok_or_else(|| Error::config("maintenance: an empty command"))?;
    let cmd = Cmd::new(p.clone()).args(a.iter().cloned()).timeout(timeout);
    let out = h.host.run(&cmd).await?;
    if out.success() {
        return Ok(out);
    }
    let tail: Vec<&str> = out.stderr.trim().lines().rev().take(3).collect();
    Err(Error::new(
        ErrorKind::Unexpected,
        format!(
            "{}: `{}` exited {:?}: {}",
            h.config.name,
            cmd.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ),
    )
    .with_operation("maintenance")
    .with_detail(out.stderr.clone()))
}

/// The last `n` characters of `s` (command output kept in the report).
pub(super) fn tail(s: &str, n: usize) -> String {
    let t = s.trim();
    let mut start = t.len().saturating_sub(n);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    t[start..].to_string()
}

/// `pip list --format=json` as name → version.
pub(super) fn parse_pip_list(s: &str) -> Result<BTreeMap<String, String>> {
    #[derive(Deserialize)]
    struct P {
        name: String,
        version: String,
    }
    let v: Vec<P> = serde_json::from_str(s.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("pip list gave no JSON package list: {e}"),
        )
    })?;
    Ok(v.into_iter()
        .map(|p| (p.name.to_lowercase(), p.version))
        .collect())
}

/// What changed between two package lists.
pub(super) fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<PackageChange> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| PackageChange {
            name: n.clone(),
            old: before.get(n).cloned(),
            new: after.get(n).cloned(),
        })
        .collect()
}

async fn pip_list(h: &HostEntry, c: &MaintenanceConfig) -> Result<BTreeMap<String, String>> {
    let argv = [
        &c.pip,
        "list",
        "--format=json",
        "--disable-pip-version-check",
    ]
    .map(String::from);
    parse_pip_list(&run(h, &argv, c.command_timeout.0).await?.stdout)
}

/// `pip install --upgrade -r requirements`: the packages that changed, old → new.
pub(super) async fn pip_upgrade(
    h: &HostEntry,
    c: &MaintenanceConfig,
) -> Result<Vec<PackageChange>> {
    let before = pip_list(h, c).await?;
    let mut argv: Vec<String> = [
        &c.pip,
        "install",
        "--upgrade",
        "--disable-pip-version-check",
        "-r",
        &c.requirements,
    ]
    .map(String::from)
    .to_vec();
    argv.extend(c.pip_args.iter().cloned());
    run(h, &argv, c.command_timeout.0).await?;
    Ok(diff(&before, &pip_list(h, c).await?))
}

/// Put the packages back as they were (the undo of [`pip_upgrade`]).
pub(super) async fn pip_restore(
    h: &HostEntry,
    c: &MaintenanceConfig,
    changes: &[PackageChange],
) -> Result<()> {
    let pins: Vec<String> = changes
        .iter()
        .filter_map(|p| p.old.as_ref().map(|o| format!("{}=={o}", p.name)))
        .collect();
    if !pins.is_empty() {
        let mut argv: Vec<String> = [
            &c.pip,
            "install",
            "--no-deps",
            "--disable-pip-version-check",
        ]
        .map(String::from)
        .to_vec();
        argv.extend(pins);
        argv.extend(c.pip_args.iter().cloned());
        run(h, &argv, c.command_timeout.0).await?;
    }
    let added: Vec<String> = changes
        .iter()
        .filter(|p| p.old.is_none())
        .map(|p| p.name.clone())
        .collect();
    if !added.is_empty() {
        let mut argv: Vec<String> = [&c.pip, "uninstall", "-y"].map(String::from).to_vec();
        argv.extend(added);
        run(h, &argv, c.command_timeout.0).await?;
    }
    Ok(())
}

/// apt-get's `-V` lines `   name (old => new)`.
pub(super) fn parse_apt_upgrades(s: &str) -> Vec<PackageChange> {
    s.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once(" (")?;
            let (old, new) = rest.strip_suffix(')')?.split_once(" => ")?;
            if name.contains(' ') || name.is_empty() {
                return None;
            }
            Some(PackageChange {
                name: name.to_string(),
                old: Some(old.trim().to_string()),
                new: Some(new.trim().to_string()),
            })
        })
        .collect()
}

/// `apt-get update` and `apt-get -y -V upgrade` (security sources only when asked): the
/// packages upgraded.
pub(super) async fn apt_upgrade(
    h: &HostEntry,
    c: &MaintenanceConfig,
    security_only: bool,
) -> Result<Vec<PackageChange>> {
    let mut base = vec![
        "env".to_string(),
        "DEBIAN_FRONTEND=noninteractive".to_string(),
    ];
    base.extend(c.apt_get.iter().cloned());
    if security_only {
        base.push("-o".into());
        base.push(format!("Dir::Etc::SourceList={}", c.security_sources));
        base.extend(["-o".into(), "Dir::Etc::SourceParts=/dev/null".into()]);
    }
    let mut update = base.clone();
    update.push("update".into());
    run(h, &update, c.command_timeout.0).await?;
    let mut upgrade = base;
    upgrade.extend(["-y", "-V", "upgrade"].map(String::from));
    let out = run(h, &upgrade, c.command_timeout.0).await?;
    Ok(parse_apt_upgrades(&out.stdout))
}

/// `argv` in the app's directory; its output (the end of it) for the report.
pub(super) async fn in_workdir(
    h: &HostEntry,
    c: &MaintenanceConfig,
    argv: &[String],
) -> Result<String> {
    let mut sh = [
        "sh",
        "-c",
        "cd \"$1\" && shift && exec \"$@\"",
        "sh",
        &c.workdir,
    ]
    .map(String::from)
    .to_vec();
    sh.extend(argv.iter().cloned());
    let out = run(h, &sh, c.command_timeout.0).await?;
    Ok(tail(&format!("{}{}", out.stdout, out.stderr), 2000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_verbose_lines() {
        let out = "Reading package lists...\nThe following packages will be upgraded:\n   openssl (3.0.11-1~deb12u1 => 3.0.15-1~deb12u1)\n   libssl3 (3.0.11-1~deb12u1 => 3.0.15-1~deb12u1)\n2 upgraded, 0 newly installed\n";
        let p = parse_apt_upgrades(out);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "openssl");
        assert_eq!(p[0].new.as_deref(), Some("3.0.15-1~deb12u1"));
        assert!(parse_apt_upgrades("garbage (x)\n (a => b)\n").is_empty());
    }

    #[test]
    fn pip_diff() {
        let a = parse_pip_list(
            r#"[{"name":"Requests","version":"2.31.0"},{"name":"idna","version":"3.4"}]"#,
        )
        .unwrap();
        let b = parse_pip_list(r#"[{"name":"requests","version":"2.32.3"},{"name":"idna","version":"3.4"},{"name":"new","version":"1"}]"#).unwrap();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[1].name.as_str(), d[1].old.as_deref(), d[1].new.as_deref()),
            ("requests", Some("2.31.0"), Some("2.32.3"))
        );
        assert!(parse_pip_list("not json").is_err());
    }
}
