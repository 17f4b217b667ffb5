//! A fresh SSH login with one key, beside the open multiplexed connection: how a key rotation
//! proves that a new key works and that an old one is refused.

use std::path::Path;
use std::process::Stdio;

use super::ssh::SshOptions;
use crate::config::HostKeyCheck;
use crate::error::{Error, ErrorKind, Result};

/// The `ssh` arguments of a login that may use `identity` and nothing else: no agent, no
/// other key, no password or keyboard prompt, no control master (neither ours nor the user's).
pub(super) fn login_args(o: &SshOptions, identity: &Path) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if let Some(c) = &o.config_file {
        a.extend(["-F".into(), c.display().to_string()]);
    }
    for opt in [
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "BatchMode=yes",
        "ControlMaster=no",
        "ControlPath=none",
        "PreferredAuthentications=publickey",
        "PasswordAuthentication=no",
        "KbdInteractiveAuthentication=no",
        "CertificateFile=none",
    ] {
        a.extend(["-o".into(), opt.into()]);
    }
    let check = match o.host_key_check {
        HostKeyCheck::Strict => "yes",
        HostKeyCheck::AcceptNew => "accept-new",
    };
    a.extend(["-o".into(), format!("StrictHostKeyChecking={check}")]);
    if let Some(k) = &o.known_hosts {
        a.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
    }
    let secs = o.connect_timeout.as_secs().max(1);
    a.extend(["-o".into(), format!("ConnectTimeout={secs}")]);
    a.extend(["-i".into(), identity.display().to_string()]);
    a.extend(["-p".into(), o.port.to_string()]);
    if let Some(u) = &o.user {
        a.extend(["-l".into(), u.clone()]);
    }
    a.extend([o.host.clone(), "--".into(), "true".into()]);
    a
}

/// Log in once with only `identity`: accepted, refused, or an error saying why neither.
pub(super) async fn try_login(name: &str, o: &SshOptions, identity: &Path) -> Result<bool> {
    let ctx = |e: Error| {
        e.with_operation("host.try_key_login")
            .with_context("host", name.to_string())
            .with_context("identity", identity.display().to_string())
    };
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.args(login_args(o, identity))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let budget = o.connect_timeout * 2 + std::time::Duration::from_secs(5);
    let out = match tokio::time::timeout(budget, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(ctx(Error::new(
                ErrorKind::NotFound,
                format!("could not start ssh: {e}"),
            )));
        }
        Err(_) => {
            return Err(ctx(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{name}: a login with {} did not finish within {}",
                    identity.display(),
                    crate::config::format_duration(budget)
                ),
            )));
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(true),
        _ if stderr.contains("Permission denied") => Ok(false),
        _ => {
            let (kind, msg) = super::ssh::connect_failure(name, &o.host, &stderr);
            Err(ctx(
                Error::new(kind, msg).with_detail(stderr.trim().to_string())
            ))
        }
    }
}

/// The public key (an `authorized_keys` line: type, base64, comment) of the private key
/// `identity` on this machine: its `.pub` beside it, else `ssh-keygen -y` (unencrypted keys).
pub async fn public_key_of(identity: &Path) -> Result<String> {
    let mut pub_path = identity.as_os_str().to_owned();
    pub_path.push(".pub");
    let line = match tokio::fs::read_to_string(&pub_path).await {
        Ok(t) => t,
        Err(_) => {
            let out = tokio::process::Command::new("ssh-keygen")
                .args(["-y", "-P", "", "-f"])
                .arg(identity)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| Error::new(ErrorKind::NotFound, format!("ssh-keygen: {e}")))?;
            if !out.status.success() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{}: no .pub beside it and ssh-keygen -y failed: {}",
                        identity.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let line = line.trim().to_string();
    ssh_key::PublicKey::from_openssh(&line).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("{}.pub: not a public key: {e}", identity.display()),
        )
    })?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_uses_one_key_and_no_master_or_agent() {
        let mut o = SshOptions::new("web-1", 2222);
        o.user = Some("deploy".into());
        let a = login_args(&o, Path::new("/k/new")).join(" ");
        for want in [
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=yes",
            "ControlPath=none",
            "-i /k/new",
            "-p 2222",
            "-l deploy web-1 -- true",
        ] {
            assert!(a.contains(want), "{want} missing from {a}");
        }
    }
}
