//! Helpers for tests against the real servers that `scripts/test.sh` starts.
#![allow(dead_code)]

#[cfg(all(feature = "ec2", feature = "elb", feature = "cost"))]
pub mod aws;
pub mod fleet;
pub mod mocks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentlab_ops::backup::{S3BackupStore, S3Options};
use agentlab_ops::config::HostKeyCheck;
use agentlab_ops::host::{SshHost, SshOptions};

/// The test servers' settings, or None when skipping is explicitly allowed. Absent servers
/// without the opt-out are a loud failure, never a silent skip.
pub fn servers(test: &str) -> Option<Servers> {
    match std::env::var("AGENTLAB_TEST_S3_ENDPOINT") {
        Ok(s3) => {
            let dir = PathBuf::from(
                std::env::var("AGENTLAB_TEST_SSH_DIR").expect("AGENTLAB_TEST_SSH_DIR"),
            );
            let ports = std::env::var("AGENTLAB_TEST_SSH_PORTS")
                .expect("AGENTLAB_TEST_SSH_PORTS")
                .split_whitespace()
                .map(|p| p.parse().expect("port"))
                .collect();
            let user = std::env::var("AGENTLAB_TEST_SSH_USER").unwrap_or_else(|_| "root".into());
            Some(Servers {
                s3,
                ssh_dir: dir,
                ssh_ports: ports,
                user,
            })
        }
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => {
            eprintln!("SKIPPED {test}: AGENTLAB_OPS_SKIP_REAL=1 (no S3 server / sshd)");
            None
        }
        Err(_) => panic!(
            "{test} needs the real S3 server and sshd: run ./scripts/test.sh, which starts them \
             (or set AGENTLAB_OPS_SKIP_REAL=1 to skip these tests on purpose)"
        ),
    }
}

/// Settings of the running test servers.
#[derive(Debug, Clone)]
pub struct Servers {
    pub s3: String,
    pub ssh_dir: PathBuf,
    pub ssh_ports: Vec<u16>,
    pub user: String,
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

impl Servers {
    /// A store on a fresh bucket.
    pub async fn s3_store(&self, test: &str, key_prefix: &str) -> S3BackupStore {
        let bucket = unique(&format!("al-{}", &test[..test.len().min(20)]))
            .to_lowercase()
            .replace('_', "-");
        let mut o = S3Options::new(bucket.clone());
        o.endpoint_url = Some(self.s3.clone());
        o.force_path_style = true;
        o.region = Some("us-east-1".into());
        o.prefix = key_prefix.to_string();
        let store = S3BackupStore::connect(o).await.expect("S3 client");
        store
            .client()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("create bucket");
        store
    }

    pub fn key(&self) -> PathBuf {
        self.ssh_dir.join("client_ed25519")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.ssh_dir.join("known_hosts")
    }

    /// SSH options for a port of the shared sshd.
    pub fn ssh_options(&self, port: u16, control_dir: &Path) -> SshOptions {
        let mut o = SshOptions::new("127.0.0.1", port);
        o.user = Some(self.user.clone());
        o.identity_file = Some(self.key());
        o.known_hosts = Some(self.known_hosts());
        o.host_key_check = HostKeyCheck::Strict;
        o.config_file = Some("/dev/null".into());
        o.connect_timeout = Duration::from_secs(5);
        o.command_timeout = Duration::from_secs(20);
        o.control_dir = control_dir.to_path_buf();
        o
    }

    pub fn ssh_host(&self, name: &str, port: u16, control_dir: &Path) -> SshHost {
        SshHost::new(name, self.ssh_options(port, control_dir))
    }
}

/// A short control directory (unix socket paths are limited to 108 bytes).
pub fn control_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("alc")
        .tempdir_in("/tmp")
        .expect("control dir")
}

/// Processes whose command line mentions `needle` (e.g. an ssh master's control path).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(cmd);
            }
        }
    }
    out
}

/// A dedicated sshd on one port (its own process group, so it can be killed with its
/// connections), sharing the test keys; extra `SetEnv` for commands.
pub struct Sshd {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start(s: &Servers, set_env: &[(&str, &str)], max_sessions: u32) -> Sshd {
        let keys = s.ssh_dir.join("authorized_keys").display().to_string();
        Sshd::start_with(s, set_env, max_sessions, &keys)
    }

    /// An sshd that reads `authorized_keys_file` (sshd's `AuthorizedKeysFile`: one or more
    /// paths separated by spaces) instead of the shared test keys.
    pub fn start_with(
        s: &Servers,
        set_env: &[(&str, &str)],
        max_sessions: u32,
        authorized_keys_file: &str,
    ) -> Sshd {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut env = format!("HOME={}", home.display());
        for (k, v) in set_env {
            env.push_str(&format!(" \"{k}={v}\""));
        }
        let cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {k}/host_ed25519\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {authorized_keys_file}\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nMaxSessions {max_sessions}\nMaxStartups 64:30:128\nSetEnv {env}\n",
            k = s.ssh_dir.display(),
            d = dir.path().display(),
        );
        let cfg_path = dir.path().join("sshd_config");
        std::fs::write(&cfg_path, cfg).unwrap();
        let child = std::process::Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&cfg_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("sshd.log")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start sshd");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            _dir: dir,
        }
    }

    /// Kill sshd and every connection it serves.
    pub fn kill(&mut self) {
        // sshd's per-connection children call setsid(), so neither the process group nor a
        // plain kill reaches them: kill the whole tree, found through /proc.
        let mut pids = vec![self.child.id()];
        let mut i = 0;
        while i < pids.len() {
            pids.extend(children_of(pids[i]));
            i += 1;
        }
        let args: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL"])
            .args(&args)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// A known_hosts line for this port.
    pub fn known_hosts_line(&self, s: &Servers) -> String {
        let pubkey = std::fs::read_to_string(s.ssh_dir.join("host_ed25519.pub")).unwrap();
        let mut parts = pubkey.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Direct children of `pid`, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|x| x.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Wait (up to 5 s) for a process to be gone; panic otherwise.
pub async fn wait_gone(pid: u32) {
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "ssh master {pid} still running: {:?}",
        std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
    );
}

/// ssh masters that were told to stop but still run (`ssh: ... [stopped mux]`).
pub fn stray_masters() -> Vec<String> {
    processes_mentioning("[stopped mux]")
}

/// A new ed25519 key without a passphrase at `path` (`path.pub` beside it); its public line.
pub fn ssh_keygen(path: &Path, comment: &str) -> String {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// Whether a real `ssh` from outside the tool, as `user` with only `key` (no agent, no other
/// key, no control master), logs in to the sshd on `port`.
pub fn ssh_logs_in(port: u16, known_hosts: &Path, key: &Path, user: &str) -> bool {
    std::process::Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
        ])
        .args(["-o", "BatchMode=yes", "-o", "ControlPath=none"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string(), "-l", user, "127.0.0.1", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}
