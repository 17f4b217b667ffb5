//! Editing one `authorized_keys` file on a host, as Ansible's `authorized_key` module does
//! (add a key once, remove a key by its fingerprint whatever its options and comment), and
//! generating the new key on this machine.

use std::path::Path;
use std::str::FromStr;

use ssh_key::HashAlg;

use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, RemoteHost};

/// The SHA-256 fingerprint of an `authorized_keys` line, options and all; None for comments,
/// blank lines and lines that are not keys (kept as they are).
fn line_fingerprint(line: &str) -> Option<String> {
    let l = line.trim();
    if l.is_empty() || l.starts_with('#') {
        return None;
    }
    ssh_key::authorized_keys::Entry::from_str(l)
        .ok()
        .map(|e| e.public_key().fingerprint(HashAlg::Sha256).to_string())
}

/// Whether the text has a key with fingerprint `fp`.
pub fn has_key(text: &str, fp: &str) -> bool {
    text.lines()
        .any(|l| line_fingerprint(l).as_deref() == Some(fp))
}

/// The text with `line` appended (once: unchanged when its key is there), ending in a newline.
pub fn with_key(text: &str, line: &str) -> Result<String> {
    let fp = line_fingerprint(line)
        .ok_or_else(|| Error::new(ErrorKind::InvalidResponse, "not an authorized_keys line"))?;
    if has_key(text, &fp) {
        return Ok(text.to_string());
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line.trim());
    out.push('\n');
    Ok(out)
}

/// The text without any line whose key has fingerprint `fp`, and how many went.
pub fn without_key(text: &str, fp: &str) -> (String, usize) {
    let mut removed = 0;
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        if line_fingerprint(l).as_deref() == Some(fp) {
            removed += 1;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    (out, removed)
}

/// One `authorized_keys` file on one host.
#[derive(Debug)]
pub struct KeysFile<'a> {
    /// The host.
    pub host: &'a dyn RemoteHost,
    /// Its path (relative paths are from the login's home).
    pub path: &'a str,
}

impl KeysFile<'_> {
    /// The file's text; a missing file is empty.
    pub async fn read(&self) -> Result<String> {
        match self.host.read_file(self.path).await {
            Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e.with_context("file", self.path.to_string())),
        }
    }

    /// Keep a copy of the current text at `<path>.<suffix>` (once: an existing copy stays).
    pub async fn keep_copy(&self, suffix: &str) -> Result<String> {
        let copy = format!("{}.{suffix}", self.path);
        if !self.host.exists(&copy).await? {
            let text = self.read().await?;
            self.write_raw(&copy, &text).await?;
        }
        Ok(copy)
    }

    /// Replace the file with `text`: written beside it with mode 0600, then renamed over it,
    /// so sshd reads the old file or the new one, never half of one.
    pub async fn replace(&self, text: &str) -> Result<()> {
        let tmp = format!("{}.agentlab-tmp", self.path);
        self.write_raw(&tmp, text).await?;
        self.host.rename(&tmp, self.path).await
    }

    async fn write_raw(&self, path: &str, text: &str) -> Result<()> {
        self.host
            .write_file(path, bytes::Bytes::from(text.to_string()))
            .await?;
        let cmd = Cmd::new("chmod").args(["600", path]);
        self.host.run(&cmd).await?.check(self.host.name(), &cmd)?;
        Ok(())
    }

    /// Add the key `line` unless it is there. Whether it was added.
    pub async fn add(&self, line: &str) -> Result<bool> {
        let text = self.read().await?;
        let new = with_key(&text, line)?;
        if new == text {
            return Ok(false);
        }
        self.replace(&new).await?;
        Ok(true)
    }

    /// Remove every entry of the key `fp`. How many went.
    pub async fn remove(&self, fp: &str) -> Result<usize> {
        let text = self.read().await?;
        let (new, n) = without_key(&text, fp);
        if n > 0 {
            self.replace(&new).await?;
        }
        Ok(n)
    }
}

/// A key made by [`generate`].
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Its public line.
    pub public: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
}

/// `ssh-keygen -t ed25519 -a 100 -C comment -f path` on this machine, no passphrase (the
/// runner logs in unattended), the private key checked to be mode 0600. Refuses to replace
/// an existing file.
pub async fn generate(path: &Path, comment: &str) -> Result<NewKey> {
    use std::os::unix::fs::PermissionsExt;
    let ctx = |e: Error| e.with_context("key", path.display().to_string());
    if tokio::fs::try_exists(path).await.unwrap_or(true) {
        return Err(ctx(Error::new(
            ErrorKind::Conflict,
            format!("{} exists: a new key never replaces a file", path.display()),
        )));
    }
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            ctx(Error::new(
                ErrorKind::Unexpected,
                format!("{}: {e}", dir.display()),
            ))
        })?;
    }
    let out = tokio::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-a", "100", "-N", "", "-C", comment, "-f",
        ])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| ctx(Error::new(ErrorKind::NotFound, format!("ssh-keygen: {e}"))))?;
    if !out.status.success() {
        return Err(ctx(Error::new(
            ErrorKind::Unexpected,
            format!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )));
    }
    let mode = tokio::fs::metadata(path)
        .await
        .map_err(|e| ctx(Error::new(ErrorKind::Unexpected, e.to_string())))?
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o600 {
        return Err(ctx(Error::new(
            ErrorKind::Unexpected,
            format!("{} has mode {mode:o}, not 600", path.display()),
        )));
    }
    let public = crate::host::ssh_login::public_key_of(path)
        .await
        .map_err(ctx)?;
    let fingerprint =
        super::fingerprint(&public).map_err(|e| ctx(Error::new(ErrorKind::InvalidResponse, e)))?;
    Ok(NewKey {
        public,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM8AAcytLRw+1YOgZ6dNxcIa1bs8aLq0wOZkiFuaKWNv a";
    const A_FP: &str = "SHA256:Snl6tL0gsS1ChqdPmSamvHufjJUk+ssUTgJDP8KJAEU";

    #[test]
    fn a_key_is_added_once_and_removed_by_fingerprint_whatever_its_options() {
        let text = "# ours\nno-pty ssh-rsa garbage\n";
        let one = with_key(text, A).unwrap();
        assert_eq!(with_key(&one, A).unwrap(), one, "added once");
        assert!(has_key(&one, A_FP));
        let with_opts = format!(
            "{one}from=\"10.0.0.0/8\",no-pty {}\n",
            A.replace(" a", " other")
        );
        let (left, n) = without_key(&with_opts, A_FP);
        assert_eq!(n, 2);
        assert_eq!(left, text, "comments and unparsable lines are kept");
        assert!(with_key(text, "not a key").is_err());
    }
}
