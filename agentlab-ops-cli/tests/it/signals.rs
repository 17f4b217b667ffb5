//! Stop signals end a run the way Ctrl-C does: the body stops, every undo runs, the report is
//! printed, exit 2. Checked from outside the tool: the read-only flag, staging data and ssh
//! masters on a real sshd; a second signal while undos run says what is left, a third abandons.

use crate::common;
use common::{bin, text};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {sig}");
}

fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) && !cmd.contains("/proc") {
                out.push(cmd);
            }
        }
    }
    out
}

struct Ssh {
    dir: PathBuf,
    port: u16,
    user: String,
}

fn ssh() -> Option<Ssh> {
    match std::env::var("AGENTLAB_TEST_SSH_DIR") {
        Ok(d) => Some(Ssh {
            dir: d.into(),
            port: std::env::var("AGENTLAB_TEST_SSH_PORTS")
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap(),
            user: std::env::var("AGENTLAB_TEST_SSH_USER").unwrap_or_else(|_| "root".into()),
        }),
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: AGENTLAB_OPS_SKIP_REAL=1 (no sshd)");
            None
        }
        Err(_) => {
            panic!("needs the test sshd: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)")
        }
    }
}

/// A data directory on the "remote" host (loopback sshd), a local fs store, and a config.
fn recovery_setup(s: &Ssh, files: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::Builder::new()
        .prefix("als")
        .tempdir_in("/tmp")
        .unwrap();
    let data = d.path().join("app/data");
    let store = d.path().join("backups");
    let ctl = d.path().join("ctl");
    std::fs::create_dir_all(data.join("sessions")).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    for i in 0..files {
        std::fs::write(
            data.join(format!("sessions/session-{i:04}.json")),
            format!(
                "{{\"session_id\": \"s-{i}\", \"pad\": \"{}\"}}",
                "x".repeat(500)
            ),
        )
        .unwrap();
    }
    std::fs::write(data.join("runs.csv"), "run_id,status\nr1,ok\n").unwrap();
    let cfg = format!(
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n[backups]\nstore = \"fs\"\npath = \"{store}\"\ndata_dir = \"{data}\"\nconcurrency = 4\n\
         [ssh]\nidentity_file = \"{k}/client_ed25519\"\nknown_hosts = \"{k}/known_hosts\"\nconfig_file = \"/dev/null\"\ncontrol_dir = \"{ctl}\"\n\
         [[hosts]]\nname = \"web-1\"\naddress = \"ssh://{u}@127.0.0.1:{p}\"\n",
        store = store.display(),
        data = data.display(),
        k = s.dir.display(),
        ctl = ctl.display(),
        u = s.user,
        p = s.port,
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    let o = bin(d.path())
        .args(["backup", "take", "--date", "2026-11-28"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    (d, data, ctl)
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("sessions"))
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.push((
        "runs.csv".into(),
        std::fs::read(dir.join("runs.csv")).unwrap_or_default(),
    ));
    v.sort();
    v
}

fn leftovers(data: &Path) -> Vec<String> {
    std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-"))
        .collect()
}

#[test]
fn sigterm_sighup_and_sigint_during_recover_undo_everything() {
    let Some(s) = ssh() else { return };
    for sig in ["TERM", "HUP", "INT"] {
        let (d, data, ctl) = recovery_setup(&s, 400);
        std::fs::write(data.join("sessions/session-0007.json"), "{\"damaged\": ").unwrap();
        let old = tree(&data);
        let flag = d.path().join("app/READ_ONLY_MODE");
        let child = bin(d.path())
            .args(["backup", "recover", "--date", "2026-11-28"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // SIGHUP as soon as the flag is set; the others once staging has begun.
        if sig == "HUP" {
            wait_for("the read-only flag", Duration::from_secs(60), || {
                flag.exists()
            });
        } else {
            wait_for("staging", Duration::from_secs(60), || {
                !leftovers(&data).is_empty()
            });
        }
        signal(&child, sig);
        let o: Output = child.wait_with_output().unwrap();
        let out = text(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(2),
            "SIG{sig}: {out}\n{}",
            text(&o.stderr)
        );
        assert!(
            out.contains(&format!("interrupted (SIG{sig})")),
            "SIG{sig}: {out}"
        );
        if sig != "HUP" {
            assert!(out.contains("undo restore:sessions"), "SIG{sig}: {out}");
        }
        assert!(!flag.exists(), "SIG{sig}: READ_ONLY_MODE left set");
        assert_eq!(
            leftovers(&data),
            Vec::<String>::new(),
            "SIG{sig}: staging left"
        );
        assert!(
            tree(&data) == old,
            "SIG{sig}: live data changed by an interrupted run"
        );
        let needle = ctl.display().to_string();
        wait_for("the ssh master to end", Duration::from_secs(5), || {
            processes_mentioning(&needle).is_empty()
        });
    }
}

/// A killed runner's master is ended by the next run (and has a bounded idle lifetime).
#[test]
fn a_sigkilled_runners_master_is_ended_by_the_next_run() {
    let Some(s) = ssh() else { return };
    let (d, data, ctl) = recovery_setup(&s, 400);
    let flag = d.path().join("app/READ_ONLY_MODE");
    let mut child = bin(d.path())
        .args(["backup", "recover", "--date", "2026-11-28"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the read-only flag", Duration::from_secs(60), || {
        flag.exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let needle = ctl.display().to_string();
    let masters = processes_mentioning(&needle);
    assert!(
        !masters.is_empty(),
        "a master should outlive the SIGKILLed runner"
    );
    assert!(
        masters.iter().all(|m| m.contains("ControlPersist=120s")),
        "masters must have a bounded idle lifetime: {masters:?}"
    );
    // The next run (any command that connects) ends them.
    let o = bin(d.path())
        .args(["backup", "recover", "--date", "2026-11-28"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(!flag.exists());
    assert_eq!(leftovers(&data), Vec::<String>::new());
    wait_for(
        "the dead run's master to end",
        Duration::from_secs(5),
        || processes_mentioning(&needle).is_empty(),
    );
}

fn lua_setup(undo_secs: u32) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("agentlab-ops.toml"),
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n[[hosts]]\nname = \"local\"\naddress = \"local\"\n",
    )
    .unwrap();
    let script = d.path().join("slow_undo.lua");
    std::fs::write(
        &script,
        format!(
            r#"local h = ops.hosts()[1]
local dir = arg[1]
ops.step("set marker", "change", function() h:run{{"touch", dir .. "/changed"}} end, function()
  h:run({{"sleep", "{undo_secs}"}}, {{timeout = 30}})
  h:run{{"touch", dir .. "/undone"}}
end)
ops.step("wait", "read", function() h:run({{"sleep", "30"}}, {{timeout = 60}}) end)
"#
        ),
    )
    .unwrap();
    (d, script)
}

#[test]
fn a_second_signal_says_what_is_left_and_the_undo_still_finishes() {
    let (d, script) = lua_setup(2);
    let dir = d.path().display().to_string();
    let child = bin(d.path())
        .args(["run", script.to_str().unwrap(), &dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the change", Duration::from_secs(20), || {
        d.path().join("changed").exists()
    });
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}\n{err}", text(&o.stdout));
    assert!(
        err.contains("SIGTERM while undoing; still to undo: undo set marker"),
        "{err}"
    );
    assert!(
        d.path().join("undone").exists(),
        "the undo must finish after a second signal: {}",
        text(&o.stdout)
    );
}

#[test]
fn a_third_signal_abandons_the_undos_and_the_report_names_them() {
    let (d, script) = lua_setup(20);
    let dir = d.path().display().to_string();
    let child = bin(d.path())
        .args(["--format", "json", "run", script.to_str().unwrap(), &dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the change", Duration::from_secs(20), || {
        d.path().join("changed").exists()
    });
    for _ in 0..3 {
        signal(&child, "INT");
        std::thread::sleep(Duration::from_millis(300));
    }
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("abandoning the undos left: undo set marker"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["subject"] == "undo set marker"
            && f["severity"] == "critical"
            && f["message"].as_str().unwrap().contains("not undone")),
        "{findings:?}"
    );
    assert!(!d.path().join("undone").exists());
}

/// SIGTERM during a blue-green rollout behind the real nginx the test command starts: the run
/// stops, traffic goes back to blue (the upstream file checked and nginx reloaded), exit 2.
#[test]
fn sigterm_during_a_blue_green_rollout_puts_traffic_back_on_blue() {
    if ssh().is_none() {
        return;
    }
    let var =
        |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} (scripts/test-servers.sh)"));
    let (ndir, blue, green) = (
        var("AGENTLAB_TEST_NGINX_DIR"),
        var("AGENTLAB_TEST_NGINX_BLUE_PORT"),
        var("AGENTLAB_TEST_NGINX_GREEN_PORT"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sandbox = rt.block_on(async {
        agentlab_ops::Sandbox::start(agentlab_ops::Scenario::GreenHealthy)
            .await
            .unwrap()
    });
    let mut cfg = sandbox.config().clone();
    let nginx = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "/usr/sbin/nginx",
            "-e",
            &format!("{ndir}/logs/error.log"),
            "-c",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend([format!("{ndir}/nginx.conf"), "-p".into(), ndir.clone()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let upstream = format!("{ndir}/upstream.conf");
    let bg = cfg.blue_green.as_mut().unwrap();
    bg.upstream_file = upstream.clone();
    bg.blue_server = Some(format!("127.0.0.1:{blue}"));
    bg.green_server = Some(format!("127.0.0.1:{green}"));
    bg.check_command = nginx(&["-t", "-q"]);
    bg.reload_command = nginx(&["-s", "reload"]);
    bg.measurements = 4;
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("agentlab-ops.toml"),
        toml::to_string(&cfg).unwrap(),
    )
    .unwrap();
    let child = bin(d.path())
        .args(["deploy", "blue-green", "--version", "1.5.0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shifted = || {
        std::fs::read_to_string(&upstream)
            .unwrap_or_default()
            .contains("green 10%")
    };
    wait_for("traffic on green", Duration::from_secs(60), shifted);
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("interrupted (SIGTERM)"), "{out}");
    let now = std::fs::read_to_string(&upstream).unwrap();
    assert!(
        now.starts_with("# managed by agentlab-ops: green 0%"),
        "{now}"
    );
    drop(sandbox);
}
