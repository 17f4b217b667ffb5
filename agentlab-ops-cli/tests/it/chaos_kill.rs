//! A chaos experiment's faults never outlive a dead runner: three faults go in together on the
//! local host — a qdisc under our handle (real `tc`, in a network namespace of the test's own;
//! `htb` stands in for netem, which this kernel lacks), the service stopped (a process-manager
//! service), and `stress-ng` — then the command is killed with SIGKILL. Within lease + 5 s,
//! with no later command, the host's watchdogs have removed our qdisc (the foreign one on the
//! other device is intact), started the service again and ended stress-ng.

use crate::common;
use common::{bin, text};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEASE_SECS: u64 = 3;

#[path = "../../../agentlab-ops/tests/support/netns.rs"]
mod netns;
use netns::Netns;

fn wait_until(limit: Duration, f: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
        .is_ok_and(|s| !s.rsplit(") ").next().unwrap_or("").starts_with('Z'))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn config(d: &Path, app: &str) -> String {
    let dir = d.display();
    format!(
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n\
         [service_manager]\nkind = \"process\"\nstart = [\"sleep\", \"{app}\"]\nworkdir = \"{dir}\"\n\
         pid_file = \"{dir}/app.pid\"\nlog_file = \"{dir}/app.log\"\nhealth_url = \"http://127.0.0.1:9\"\n\
         [chaos]\nlease_dir = \"{dir}/leases\"\n\
         [[hosts]]\nname = \"local-1\"\naddress = \"local\"\n",
    )
}

const EXPERIMENT: &str = r#"title = "everything at once, then the runner dies"
parallel = true
lease = "3s"
[stop]
poll = "500ms"
[[method]]
kind = "netem"
device = "lo"
qdisc = ["htb"]
namespace = "NS"
duration = "67s"
[[method]]
kind = "service_stop"
duration = "67s"
[[method]]
kind = "stress"
cpu = 1
duration = "67s"
"#;

/// The stress-ng of this test (an unusual duration: no other test's).
const STRESS_ARGV: &str = "stress-ng --cpu 1 --timeout 67s";

fn stress_running() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&raw).replace('\0', " ").trim() == STRESS_ARGV && alive(&pid) {
            out.push(pid);
        }
    }
    out
}

fn skip_or_panic(why: &str) {
    assert!(
        std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1"),
        "{why} (or AGENTLAB_OPS_SKIP_REAL=1)"
    );
}

#[test]
fn sigkill_of_the_runner_leaves_no_fault_behind() {
    if Command::new("stress-ng").arg("--version").output().is_err() {
        return skip_or_panic("needs stress-ng: ./scripts/setup-test-deps.sh installs it");
    }
    // When: as soon as the first lease is armed, once every fault is in, after renewals.
    for (when, after_all_in) in [
        ("lease armed", None),
        ("all in", Some(0)),
        ("renewed", Some(2500)),
    ] {
        let Some(ns) = Netns::new("kill") else { return };
        kill_at(&ns, when, after_all_in);
    }
}

/// A foreign root qdisc in the namespace, a folder with the config, the experiment and
/// the leases, and the test's own service process: (folder, service argv tag, its pid).
fn set_up(ns: &Netns) -> (tempfile::TempDir, String, String) {
    ns.tc(&["qdisc", "add", "dev", "v1", "root", "handle", "1:", "htb"]);
    let d = tempfile::Builder::new()
        .prefix("alck")
        .tempdir_in("/tmp")
        .unwrap();
    let leases = d.path().join("leases");
    std::fs::create_dir_all(&leases).unwrap();
    // A service of this test's own: an argv no other process has.
    let app = format!("7{}.25", std::process::id() % 100_000);
    let before = Command::new("setsid")
        .args(["sleep", &app])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
        .id()
        .to_string();
    let pid_file = d.path().join("app.pid");
    std::fs::write(&pid_file, &before).unwrap();
    std::fs::write(d.path().join("agentlab-ops.toml"), config(d.path(), &app)).unwrap();
    std::fs::write(d.path().join("exp.toml"), EXPERIMENT.replace("NS", &ns.0)).unwrap();

    (d, app, before)
}

/// Start the experiment, SIGKILL the command at `when`, and check every fault is gone.
fn kill_at(ns: &Netns, when: &str, after_all_in: Option<u64>) {
    let (d, app, before) = set_up(ns);
    let leases = d.path().join("leases");
    let mut child = bin(d.path())
        .args(["chaos", "run", "exp.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let has = |suffix: &str| {
        std::fs::read_dir(&leases)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(suffix))
    };
    let seen = match after_all_in {
        None => wait_until(Duration::from_secs(20), || has(".lease")),
        Some(_) => wait_until(Duration::from_secs(20), || !stress_running().is_empty()),
    };
    let all_in = after_all_in.is_some()
        && ns
            .tc(&["-j", "qdisc", "show", "dev", "lo"])
            .contains("a9c7:")
        && !alive(&before);
    std::thread::sleep(Duration::from_millis(after_all_in.unwrap_or(0)));
    if when == "SIGTERM" {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    } else {
        child.kill().unwrap(); // SIGKILL
    }
    let killed = Instant::now();
    let out = child.wait_with_output().unwrap();
    let why = text(&out.stderr);
    if when == "SIGTERM" {
        // Removed by the runner's undo (the leases disarmed), not by a watchdog.
        assert!(
            killed.elapsed() < Duration::from_secs(LEASE_SECS),
            "{when}: {why}"
        );
        assert!(!out.status.success(), "{when}: exit {:?}", out.status);
        assert!(why.contains("remove"), "{when}: no removal reported: {why}");
    }
    assert!(seen, "{when}: the run never got there: {why}");
    assert!(
        after_all_in.is_none() || all_in,
        "{when}: not every fault went in: {why}"
    );
    // After SIGTERM everything is gone when the command has exited (1 s of slack for the
    // stress group to end); after SIGKILL, within lease + 5 s.
    let limit = if when == "SIGTERM" { 1 } else { LEASE_SECS + 5 };
    let why = format!("{when}: {why}");
    check_gone(
        ns,
        d.path(),
        &before,
        all_in,
        Duration::from_secs(limit),
        &why,
    );
    let _ = Command::new("pkill")
        .args(["-9", "-f", &format!("^sleep {app}$")])
        .status();
}

fn check_gone(ns: &Netns, d: &Path, before: &str, restarted: bool, limit: Duration, why: &str) {
    let start = Instant::now();
    let lo_default = || {
        ns.tc(&["-j", "qdisc", "show", "dev", "lo"])
            .contains("\"0:\"")
    };
    let files = || -> Vec<String> {
        std::fs::read_dir(d.join("leases"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    };
    let service_up = || {
        let now = read(&d.join("app.pid"));
        alive(&now) && (!restarted || now != before)
    };
    let gone = || lo_default() && service_up() && stress_running().is_empty() && files().is_empty();
    wait_until(limit.saturating_sub(start.elapsed()), gone);
    assert!(lo_default(), "our qdisc outlived {limit:?}: {why}");
    assert!(
        service_up(),
        "the service is not running again (pid file {:?}): {why}",
        read(&d.join("app.pid"))
    );
    assert!(
        stress_running().is_empty(),
        "stress-ng outlived {limit:?}: {why}"
    );
    assert!(
        files().is_empty(),
        "left in the lease dir: {:?}: {why}",
        files()
    );
    assert!(
        ns.tc(&["-j", "qdisc", "show", "dev", "v1"])
            .contains("\"1:\""),
        "the foreign qdisc was touched: {why}"
    );
    let journal = std::fs::read_to_string(d.join("journal.jsonl")).unwrap_or_default();
    assert!(
        journal.contains("\"action\":\"set\""),
        "no lease in the journal: {why}"
    );
}
