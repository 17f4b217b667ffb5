//! A scripted host: canned outputs per command, recorded calls, injected faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Cmd, CmdOutput, RemoteHost};

/// A host that answers from a script. A command not scripted fails with `not_found`, like a
/// program missing on a real host; `echo` and `true`/`false` work without scripting.
#[derive(Debug, Clone)]
pub struct MemoryHost {
    name: String,
    exact: Arc<Mutex<HashMap<Vec<String>, CmdOutput>>>,
    files: Arc<Mutex<std::collections::BTreeMap<String, bytes::Bytes>>>,
    by_program: Arc<Mutex<HashMap<String, CmdOutput>>>,
    /// Commands run, in order.
    pub calls: CallLog<Cmd>,
    /// Inject failures and delays (a delay past a command's timeout gives `timeout`).
    pub faults: Faults,
    default_timeout: Duration,
    /// The key it is reached with, and the authorized_keys its "sshd" reads.
    login: Option<(std::path::PathBuf, String)>,
}

fn out(status: i32, stdout: impl Into<String>) -> CmdOutput {
    CmdOutput {
        status: Some(status),
        stdout: stdout.into(),
        stderr: String::new(),
        duration: Duration::from_millis(1),
    }
}

impl MemoryHost {
    /// An empty host.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryHost {
            name: name.into(),
            exact: Arc::default(),
            files: Arc::default(),
            by_program: Arc::default(),
            calls: CallLog::default(),
            faults: Faults::default(),
            default_timeout: Duration::from_secs(30),
            login: None,
        }
    }

    /// Reached by SSH with the private key `identity` (a file on this machine, with its
    /// `.pub` beside it); a login is accepted when that public key is in the double's file
    /// `authorized_keys` — the semantics of sshd, for key rotations against the double.
    pub fn with_key_login(
        mut self,
        identity: impl Into<std::path::PathBuf>,
        authorized_keys: &str,
    ) -> Self {
        self.login = Some((identity.into(), authorized_keys.to_string()));
        self
    }

    /// Answer this exact command line.
    pub fn respond(&self, program: &str, args: &[&str], status: i32, stdout: &str) -> &Self {
        let key: Vec<String> = std::iter::once(program)
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect();
        self.exact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, out(status, stdout));
        self
    }

    /// Answer any invocation of `program`.
    pub fn respond_any(&self, program: &str, status: i32, stdout: &str) -> &Self {
        self.by_program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program.to_string(), out(status, stdout));
        self
    }

    /// Script `uptime`, `free -b`, `df -P -B1` and `nproc` for the given usage:
    /// 5-minute load, memory used fraction, and `(mount, used fraction)` per disk.
    pub fn with_resources(self, load: f64, mem_used: f64, disks: &[(&str, f64)]) -> Self {
        self.respond(
            "uptime",
            &[],
            0,
            &format!(" 09:00:00 up 12 days,  3:04,  1 user,  load average: {load:.2}, {load:.2}, {load:.2}\n"),
        );
        let total: u64 = 16 * 1024 * 1024 * 1024;
        let used = (total as f64 * mem_used) as u64;
        self.respond(
            "free",
            &["-b"],
            0,
            &format!(
                "               total        used        free      shared  buff/cache   available\nMem:   {total} {used} {} 0 0 {}\nSwap:  0 0 0\n",
                total - used,
                total - used
            ),
        );
        let mut df = String::from("Filesystem 1-blocks Used Available Capacity Mounted on\n");
        for (i, (mount, frac)) in disks.iter().enumerate() {
            let size: u64 = 100 * 1024 * 1024 * 1024;
            let u = (size as f64 * frac) as u64;
            df.push_str(&format!(
                "/dev/vd{} {size} {u} {} {:.0}% {mount}\n",
                (b'a' + i as u8) as char,
                size - u,
                frac * 100.0
            ));
        }
        self.respond("df", &["-P", "-B1"], 0, &df);
        self.respond("nproc", &[], 0, "4\n");
        self
    }

    /// Put a file on the host (for `read_file` and `list_files`).
    pub fn put_file(&self, path: &str, data: impl Into<bytes::Bytes>) -> &Self {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), data.into());
        self
    }

    /// Remove a file from the host; whether it was there.
    pub fn remove_file(&self, path: &str) -> bool {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path)
            .is_some()
    }

    /// Every file's path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// A file's content, if it exists.
    pub fn file(&self, path: &str) -> Option<bytes::Bytes> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned()
    }

    /// Default timeout of a command.
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.default_timeout = t;
        self
    }
}

#[async_trait::async_trait]
impl RemoteHost for MemoryHost {
    fn name(&self) -> &str {
        &self.name
    }
    fn address(&self) -> String {
        format!("memory:{}", self.name)
    }
    fn identity_file(&self) -> Option<std::path::PathBuf> {
        self.login.as_ref().map(|(k, _)| k.clone())
    }
    async fn try_key_login(&self, identity: &std::path::Path) -> Result<bool> {
        let ctx = |e: Error| {
            e.with_operation("host.try_key_login")
                .with_context("host", self.name.clone())
        };
        self.faults.apply("host.try_key_login").await.map_err(ctx)?;
        let Some((_, file)) = &self.login else {
            return Err(ctx(Error::new(
                ErrorKind::Unsupported,
                format!("{}: not reached over SSH by key", self.name),
            )));
        };
        let public = super::ssh_login::public_key_of(identity)
            .await
            .map_err(ctx)?;
        let blob = public
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let Some(text) = self.file(file) else {
            return Ok(false);
        };
        // sshd matches the key itself, whatever the options or comment around it.
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.split_whitespace().any(|w| w == blob)))
    }
    async fn read_file(&self, path: &str) -> Result<bytes::Bytes> {
        self.calls.push(Cmd::new("cat").args(["--", path]));
        self.faults
            .apply("host.read_file")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        self.file(path).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("{path}: no such file"))
                .with_operation("host.read_file")
                .with_context("host", self.name.clone())
                .with_context("path", path.to_string())
        })
    }

    async fn write_file(&self, path: &str, data: bytes::Bytes) -> Result<()> {
        self.calls.push(Cmd::new("write").arg(path));
        self.faults
            .apply("host.write_file")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        self.put_file(path, data);
        Ok(())
    }

    async fn exchange(&self, a: &str, b: &str) -> Result<()> {
        self.calls.push(Cmd::new("exchange").args([a, b]));
        self.faults
            .apply("host.exchange")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let rename = |p: &str| -> Option<String> {
            for (from, to) in [(a, b), (b, a)] {
                if p == from {
                    return Some(to.to_string());
                }
                if let Some(rest) = p.strip_prefix(&format!("{from}/")) {
                    return Some(format!("{to}/{rest}"));
                }
            }
            None
        };
        let moved: Vec<(String, String)> = files
            .keys()
            .filter_map(|k| rename(k).map(|n| (k.clone(), n)))
            .collect();
        let exists = |x: &str| {
            moved
                .iter()
                .any(|(k, _)| k == x || k.starts_with(&format!("{x}/")))
        };
        if !exists(a) || !exists(b) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("exchange {a} {b}: both must exist"),
            )
            .with_context("host", self.name.clone()));
        }
        let taken: Vec<(String, bytes::Bytes)> = moved
            .iter()
            .filter_map(|(k, n)| files.remove(k).map(|v| (n.clone(), v)))
            .collect();
        files.extend(taken);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.calls.push(Cmd::new("mv").args(["-T", "--", from, to]));
        self.faults
            .apply("host.rename")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<String> = files
            .keys()
            .filter(|k| *k == from || k.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(
                Error::new(ErrorKind::NotFound, format!("mv: {from}: no such file"))
                    .with_context("host", self.name.clone()),
            );
        }
        // As `mv -T`: a file replaces a file; nothing replaces a non-empty directory, and a
        // directory does not replace a file.
        let from_is_file = keys.len() == 1 && keys[0] == from;
        if files.keys().any(|k| k.starts_with(&format!("{to}/")))
            || (!from_is_file && files.contains_key(to))
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("mv: {to} exists and is not empty"),
            )
            .with_context("host", self.name.clone()));
        }
        for k in keys {
            if let Some(v) = files.remove(&k) {
                files.insert(format!("{to}{}", &k[from.len()..]), v);
            }
        }
        Ok(())
    }

    async fn delete_file(&self, path: &str) -> Result<()> {
        self.calls.push(Cmd::new("rm").args(["-f", "--", path]));
        self.faults
            .apply("host.delete_file")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
        Ok(())
    }

    async fn remove_tree(&self, path: &str) -> Result<()> {
        self.calls.push(Cmd::new("rm").args(["-rf", "--", path]));
        self.faults
            .apply("host.remove_tree")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        let inside = format!("{}/", path.trim_end_matches('/'));
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k != path && !k.starts_with(&inside));
        Ok(())
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        self.calls.push(Cmd::new("test").args(["-e", path]));
        let inside = format!("{}/", path.trim_end_matches('/'));
        Ok(self
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .any(|k| k == path || k.starts_with(&inside)))
    }

    async fn list_files(&self, dir: &str, pattern: &str) -> Result<Vec<String>> {
        self.calls.push(Cmd::new("find").args([
            dir,
            "-maxdepth",
            "1",
            "-type",
            "f",
            "-name",
            pattern,
        ]));
        self.faults
            .apply("host.list_files")
            .await
            .map_err(|e| e.with_context("host", self.name.clone()))?;
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(files
            .keys()
            .filter(|p| {
                let name = if *p == dir {
                    p.rsplit('/').next().unwrap_or(p)
                } else if let Some(rest) = p.strip_prefix(&prefix) {
                    if rest.contains('/') {
                        return false;
                    }
                    rest
                } else {
                    return false;
                };
                glob_match(pattern, name)
            })
            .cloned()
            .collect())
    }

    async fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        self.calls.push(cmd.clone());
        let ctx = |e: Error| {
            e.with_operation("host.run")
                .with_context("host", self.name.clone())
                .with_context("program", cmd.program.clone())
        };
        let timeout = cmd.timeout.unwrap_or(self.default_timeout);
        match tokio::time::timeout(timeout, self.faults.apply("host.run")).await {
            Ok(r) => r.map_err(ctx)?,
            Err(_) => {
                return Err(ctx(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} did not finish within {}",
                        cmd.program,
                        crate::config::format_duration(timeout)
                    ),
                )));
            }
        }
        let key: Vec<String> = std::iter::once(cmd.program.clone())
            .chain(cmd.args.iter().cloned())
            .collect();
        if let Some(o) = self
            .exact
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(o.clone());
        }
        if let Some(o) = self
            .by_program
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cmd.program)
        {
            return Ok(o.clone());
        }
        match cmd.program.as_str() {
            "echo" => Ok(out(0, format!("{}\n", cmd.args.join(" ")))),
            "true" | "chmod" => Ok(out(0, "")),
            "false" => Ok(out(1, "")),
            "printf" if !cmd.args.is_empty() => Ok(out(0, printf(&cmd.args[0], &cmd.args[1..]))),
            "sleep" => {
                let secs: f64 = cmd.args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                match tokio::time::timeout(
                    timeout,
                    tokio::time::sleep(Duration::from_secs_f64(secs)),
                )
                .await
                {
                    Ok(()) => Ok(out(0, "")),
                    Err(_) => Err(ctx(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "sleep did not finish within {}",
                            crate::config::format_duration(timeout)
                        ),
                    ))),
                }
            }
            p => Err(ctx(Error::new(
                ErrorKind::NotFound,
                format!("{p}: command not found"),
            ))),
        }
    }
}

/// The subset of printf(1) the double emulates: `%s`, `%%` and the escapes `\n`, `\t`, `\\`; the format
/// is reused while arguments remain, as printf does.
fn printf(format: &str, args: &[String]) -> String {
    let mut outp = String::new();
    let mut i = 0;
    loop {
        let mut chars = format.chars().peekable();
        let mut used = false;
        while let Some(c) = chars.next() {
            match (c, chars.peek().copied()) {
                ('%', Some('s')) => {
                    chars.next();
                    outp.push_str(args.get(i).map_or("", String::as_str));
                    i += 1;
                    used = true;
                }
                ('%', Some('%')) => {
                    chars.next();
                    outp.push('%');
                }
                ('\\', Some('n')) => {
                    chars.next();
                    outp.push('\n');
                }
                ('\\', Some('t')) => {
                    chars.next();
                    outp.push('\t');
                }
                ('\\', Some('\\')) => {
                    chars.next();
                    outp.push('\\');
                }
                _ => outp.push(c),
            }
        }
        if !used || i >= args.len() {
            return outp;
        }
    }
}

/// Shell-style `*` and `?` matching, as `find -name` does.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.json", "a.json"));
        assert!(!glob_match("*.json", "a.json.tmp"));
        assert!(glob_match("*", "runs.csv"));
        assert!(glob_match("s?.csv", "s1.csv"));
    }

    #[tokio::test]
    async fn files_list_and_read() {
        let h = MemoryHost::new("m");
        h.put_file("/d/sessions/a.json", "{}")
            .put_file("/d/sessions/b.txt", "x")
            .put_file("/d/sessions/sub/c.json", "{}")
            .put_file("/d/runs.csv", "a\n");
        assert_eq!(
            h.list_files("/d/sessions", "*.json").await.unwrap(),
            vec!["/d/sessions/a.json"]
        );
        assert_eq!(
            h.list_files("/d/runs.csv", "*").await.unwrap(),
            vec!["/d/runs.csv"]
        );
        assert_eq!(h.read_file("/d/runs.csv").await.unwrap(), "a\n");
        assert_eq!(
            h.read_file("/nope").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
