//! Resuming runs whose runner was killed with SIGKILL, over the real sshd: a rolling restart
//! of three hosts (serial 1) killed when a host had finished, and killed while a host's
//! restart was in flight; a weekly maintenance of two hosts killed between and inside host
//! steps. `agentlab-ops resume --last` finishes each, and the hosts' own records (every start
//! of the stand-in service, every pip and database call) show that each host step completed
//! exactly once — or, for a step declared idempotent that was in flight, at most twice.

use crate::common;
use common::{bin, text};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SERVICE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/standins/agentlab-service.py"
);

fn env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) => Some(v),
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => None,
        Err(_) => {
            panic!("needs the test sshd: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)")
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` hosts on the test sshd's ports, each with a directory and a port; `extra` is the rest
/// of the config (the runbook's section, the service manager; `{dir}` is the test's
/// directory). The service URL is h1's stand-in.
fn setup(n: usize, extra: impl Fn(&Path) -> String) -> Option<(tempfile::TempDir, Vec<PathBuf>)> {
    let key_dir = PathBuf::from(env("AGENTLAB_TEST_SSH_DIR")?);
    let ports = env("AGENTLAB_TEST_SSH_PORTS")?;
    let user = std::env::var("AGENTLAB_TEST_SSH_USER").unwrap_or_else(|_| "root".into());
    let d = tempfile::Builder::new()
        .prefix("alr")
        .tempdir_in("/tmp")
        .unwrap();
    let mut hosts = String::new();
    let mut dirs = Vec::new();
    let mut first_port = 0;
    for (i, p) in ports.split_whitespace().take(n).enumerate() {
        let dir = d.path().join(format!("h{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        if i == 0 {
            first_port = port;
        }
        hosts += &format!(
            "[[hosts]]\nname = \"h{}\"\naddress = \"ssh://{user}@127.0.0.1:{p}\"\nvars = {{ dir = \"{}\", port = \"{port}\" }}\n",
            i + 1,
            dir.display(),
        );
        dirs.push(dir);
    }
    assert_eq!(dirs.len(), n, "the test sshd has fewer than {n} ports");
    let cfg = format!(
        "[service]\nbase_url = \"http://127.0.0.1:{first_port}\"\n\
         [ssh]\nidentity_file = \"{k}/client_ed25519\"\nknown_hosts = \"{k}/known_hosts\"\nconfig_file = \"/dev/null\"\ncontrol_dir = \"{ctl}\"\n\
         {extra}\n{hosts}",
        k = key_dir.display(),
        ctl = d.path().join("ctl").display(),
        extra = extra(d.path()),
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    Some((d, dirs))
}

fn wait_until(limit: Duration, f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The one run log of the run in `d`.
fn run_log(d: &Path) -> Option<PathBuf> {
    std::fs::read_dir(d.join("runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
}

fn log_has(d: &Path, t: &str, step: &str) -> bool {
    let Some(p) = run_log(d) else { return false };
    let needle = format!("{{\"t\":\"{t}\",\"step\":\"{step}\"");
    std::fs::read_to_string(p).is_ok_and(|s| s.contains(&needle))
}

/// Lines of a host's record file.
fn count(dir: &Path, file: &str) -> usize {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// Kill what a killed runner and the test leave: ssh masters, services, sleeps.
fn clean_up(d: &Path) {
    let ctl = d.join("ctl").display().to_string();
    let mine = d.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if (cmd.contains(&ctl) || cmd.contains(&mine)) && !cmd.contains("/proc") {
            let pid = e.file_name().to_string_lossy().to_string();
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

/// Start the runbook, SIGKILL it once `ready` holds, and return its stderr.
fn start_and_kill(d: &Path, args: &[&str], why: &str, ready: impl Fn() -> bool) -> String {
    let mut child = bin(d)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = wait_until(Duration::from_secs(40), ready);
    child.kill().unwrap(); // SIGKILL: no undo, no journal entry, no end record
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(seen, "{why}: the run never got there: {err}");
    // The runner's ssh masters die with it on a real machine reboot; here they linger.
    let ctl = d.join("ctl").display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(&ctl) && cmd.contains("ssh") {
            let pid = e.file_name().to_string_lossy().to_string();
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
    err
}

/// `resume --list` (JSON), then `resume --last`: its report.
fn resume_last(d: &Path, why: &str) -> serde_json::Value {
    let o = bin(d)
        .args(["--format", "json", "resume", "--list"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "{why}: {}",
        text(&o.stdout)
    );
    let o = bin(d)
        .args(["--format", "json", "resume", "--last"])
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{why}: {out}{}", text(&o.stderr));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["run_id"], list[0]["run_id"],
        "{why}: the same run went on"
    );
    // It ended: nothing left to resume.
    let o = bin(d).args(["resume", "--last"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{why}");
    assert!(
        text(&o.stderr).contains("no unfinished run"),
        "{why}: {}",
        text(&o.stderr)
    );
    r
}

fn restart_config() -> String {
    format!(
        "{}[restart]\nserial = 1\n[restart.health]\ndeadline = \"8s\"\ninterval = \"200ms\"\n",
        service_manager()
    )
}

/// The stand-in service, run by the process manager on each host.
fn service_manager() -> String {
    format!(
        "[service_manager]\nkind = \"process\"\nstart = [\"python3\", \"{SERVICE}\", \"--port\", \"{{port}}\", \"--dir\", \"{{dir}}\"]\n\
         health_url = \"http://127.0.0.1:{{port}}\"\nworkdir = \"{{dir}}\"\npid_file = \"{{dir}}/app.pid\"\nlog_file = \"{{dir}}/app.log\"\nstop_timeout = \"2s\"\n"
    )
}

#[test]
fn a_killed_rolling_restart_resumes_and_restarts_each_host_once() {
    // h2 in flight: killed before its restart acted (the resume restarts it), and killed
    // once its new process had started but before the runner judged it (the resume checks:
    // a new healthy main process, so it is not restarted again).
    for why in ["h1 finished", "h2 in flight", "h2 started, not judged"] {
        let Some((d, dirs)) = setup(3, |_| restart_config()) else {
            return;
        };
        let dp = d.path().to_path_buf();
        start_and_kill(&dp, &["restart"], why, || match why {
            "h1 finished" => log_has(&dp, "done", "restart:h1"),
            "h2 in flight" => log_has(&dp, "begin", "restart:h2"),
            _ => count(&dirs[1], "starts") == 1,
        });
        if why != "h1 finished" {
            assert!(
                !log_has(&dp, "done", "restart:h2"),
                "{why}: killed too late"
            );
        }
        assert_eq!(count(&dirs[2], "starts"), 0, "{why}: h3 was reached");
        let r = resume_last(&dp, why);
        let starts: Vec<usize> = dirs.iter().map(|d| count(d, "starts")).collect();
        clean_up(&dp);
        assert_eq!(starts, [1, 1, 1], "{why}: one start per host: {r}");
        let hosts = r["payload"]["hosts"].as_array().unwrap();
        let names: Vec<&str> = hosts.iter().map(|h| h["host"].as_str().unwrap()).collect();
        assert_eq!(names, ["h1", "h2", "h3"], "{why}: {r}");
        assert!(
            hosts.iter().all(|h| h["outcome"] == "healthy"),
            "{why}: {r}"
        );
        let resumed = r["findings"].as_array().unwrap();
        assert!(
            resumed.iter().any(|f| f["subject"] == "resume"),
            "{why}: {r}"
        );
    }
}

/// A pip and a database step that record each call in the host's directory (pip: beside the
/// requirements file; the database step runs in the workdir).
fn maintenance_config(d: &Path) -> String {
    let pip = d.join("fakepip");
    std::fs::write(
        &pip,
        "#!/bin/sh\ncase \"$1\" in list) echo '[]' ;; install) for a; do r=$a; done; echo install >> \"$(dirname \"$r\")/pip.log\"; sleep 0.5 ;; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&pip, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}[restart.health]\ndeadline = \"8s\"\ninterval = \"200ms\"\n\
         [maintenance]\nflag = \"{{dir}}/MAINTENANCE_MODE\"\nlease = \"30s\"\npip = \"{pip}\"\nrequirements = \"{{dir}}/req.txt\"\n\
         apt_get = []\nlogrotate = []\ndatabase = [\"sh\", \"-c\", \"echo run >> db.log; sleep 1.5; echo end >> db.done\"]\nworkdir = \"{{dir}}\"\ntls_endpoint = \"\"\nrestore_test = false\nnotice = \"0s\"\n",
        service_manager(),
        pip = pip.display(),
    )
}

#[test]
fn a_killed_weekly_maintenance_resumes_without_repeating_host_steps() {
    // Between steps (h1's database done: nothing of h1 runs again), and inside h1's
    // database step (declared idempotent: it runs again, the only repeat allowed).
    for (why, db_h1) in [("h1 database done", 1), ("h1 database in flight", 2)] {
        let Some((d, dirs)) = setup(2, maintenance_config) else {
            return;
        };
        let dp = d.path().to_path_buf();
        let args = ["maintenance", "weekly", "--no-wait"];
        start_and_kill(&dp, &args, why, || match db_h1 {
            1 => log_has(&dp, "done", "h1:database"),
            _ => count(&dirs[0], "db.log") == 1,
        });
        if db_h1 == 2 {
            assert!(
                !log_has(&dp, "done", "h1:database"),
                "{why}: killed too late"
            );
        }
        let r = resume_last(&dp, why);
        let pip: Vec<usize> = dirs.iter().map(|d| count(d, "pip.log")).collect();
        let db: Vec<usize> = dirs.iter().map(|d| count(d, "db.log")).collect();
        let done: Vec<usize> = dirs.iter().map(|d| count(d, "db.done")).collect();
        let flags: Vec<bool> = dirs
            .iter()
            .map(|d| d.join("MAINTENANCE_MODE").exists())
            .collect();
        clean_up(&dp);
        assert_eq!(pip, [1, 1], "{why}: pip ran once per host: {r}");
        assert_eq!(db, [db_h1, 1], "{why}: {r}");
        // The step killed in flight may still finish on the host (its shell outlives the
        // runner) besides its repeat.
        assert!(
            (1..=db_h1).contains(&done[0]) && done[1] == 1,
            "{why}: {done:?} {r}"
        );
        assert_eq!(flags, [false, false], "{why}: the flags came down: {r}");
        let starts: Vec<usize> = dirs.iter().map(|d| count(d, "starts")).collect();
        assert_eq!(starts, [1, 1], "{why}: each host restarted once: {r}");
        assert_eq!(r["verdict"], "healthy", "{why}: {r}");
    }
}

/// A script whose third change fails: its undos (each a second long) run in reverse.
const FAILING_SCRIPT: &str = r#"
local dir = arg[1]
local function rec(s)
  local f = io.open(dir .. "/trace", "a"); f:write(s .. "\n"); f:close()
end
local function slow(s) return function() os.execute("sleep 1"); rec(s) end end
local a = ops.step("a", "change", function() rec("a"); return {n = 1} end, slow("undo a"))
ops.step("b", "change", function() rec("b"); return a.n + 1 end, slow("undo b"))
ops.step("c", "change", function() rec("c"); error("c broke") end)
"#;

#[test]
fn a_failing_script_killed_during_its_undos_finishes_them_once_on_resume() {
    for why in ["during undo b", "between undo b and undo a"] {
        let d = tempfile::tempdir().unwrap();
        let dp = d.path().to_path_buf();
        std::fs::write(dp.join("fail.lua"), FAILING_SCRIPT).unwrap();
        let trace = dp.join("trace");
        let dir = dp.display().to_string();
        let args = ["run", "--allow-unsafe", "fail.lua", dir.as_str()];
        start_and_kill(&dp, &args, why, || match why {
            "during undo b" => std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("c\n")),
            _ => run_log(&dp).is_some_and(|p| {
                std::fs::read_to_string(p).is_ok_and(|s| s.contains("\"name\":\"undo b\""))
            }),
        });
        let o = bin(&dp)
            .args(["--format", "json", "resume", "--last"])
            .output()
            .unwrap();
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{why}: a failing run ends failed: {r}"
        );
        let t = std::fs::read_to_string(&trace).unwrap();
        assert_eq!(
            t.lines().collect::<Vec<_>>(),
            ["a", "b", "c", "undo b", "undo a"],
            "{why}: every step and undo once: {r}"
        );
        let msg = r["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("c broke"), "{why}: {msg}");
    }
}

#[test]
fn a_step_killed_in_flight_that_cannot_check_itself_waits_for_the_operator() {
    let d = tempfile::tempdir().unwrap();
    let dp = d.path().to_path_buf();
    let script = r#"
local dir = arg[1]
local function rec(s)
  local f = io.open(dir .. "/trace", "a"); f:write(s .. "\n"); f:close()
end
ops.step("send", "change", function() rec("send"); os.execute("sleep 2"); return true end)
ops.step("after", "change", function() rec("after"); return true end)
"#;
    std::fs::write(dp.join("send.lua"), script).unwrap();
    let trace = dp.join("trace");
    let dir = dp.display().to_string();
    start_and_kill(
        &dp,
        &["run", "--allow-unsafe", "send.lua", &dir],
        "send",
        || std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("send")),
    );
    // Neither safe to repeat nor able to check itself: the resume refuses to guess.
    let o = bin(&dp).args(["resume", "--last"]).output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("send") && err.contains("--done"), "{err}");
    // The operator checked: it did happen.
    let o = bin(&dp)
        .args(["--format", "json", "resume", "--last", "--done", "send"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let t = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(t.lines().collect::<Vec<_>>(), ["send", "after"]);
}
