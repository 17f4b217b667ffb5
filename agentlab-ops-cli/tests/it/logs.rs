//! `agentlab-ops logs scan` on a generated log with a planted incident: text and JSON, stdin,
//! exit codes (1 with matches, 0 without, 2 on an error), and bad options named.

use crate::common;
use common::{bin, text};

use std::io::Write;
use std::process::Stdio;

use agentlab_ops::testing::{FLOODER, LogFixture, write_log};

fn log(dir: &std::path::Path) -> std::path::PathBuf {
    let mut v = Vec::new();
    let f = LogFixture {
        start: 1_796_119_200,
        minutes: 60,
        lines_per_minute: 200,
        incident_minute: Some(50),
    };
    write_log(&mut v, f).unwrap();
    let p = dir.join("app.log");
    std::fs::write(&p, v).unwrap();
    p
}

#[test]
fn scan_finds_the_incident_in_text_and_json() {
    let d = tempfile::tempdir().unwrap();
    let p = log(d.path());
    let o = bin(d.path())
        .args(["logs", "scan"])
        .arg(&p)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "matches escalate: {out}{}",
        text(&o.stderr)
    );
    assert!(
        out.lines()
            .next()
            .unwrap()
            .contains("burst from 2026-12-01 10:50Z"),
        "{out}"
    );
    assert!(out.contains("new ") && out.contains("KeyError"), "{out}");
    assert!(out.contains(FLOODER), "{out}");
    let o = bin(d.path())
        .args([
            "--format", "json", "logs", "scan", "--top", "$1", "--last", "3",
        ])
        .arg(&p)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["lines"], 12_000);
    assert_eq!(v["top"][0]["key"], FLOODER);
    assert_eq!(v["last"].as_array().unwrap().len(), 3);
    assert_eq!(v["burst_start"], "2026-12-01T10:50:00Z");
}

#[test]
fn stdin_no_match_and_bad_options() {
    let d = tempfile::tempdir().unwrap();
    let mut c = bin(d.path())
        .args(["logs", "scan", "-", "--pattern", "panic"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"all good\nstill good\n")
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).starts_with("stdin: 2 lines, 0 matches"));
    for (args, needle) in [
        (&["logs", "scan", "x.log", "--top", "0"][..], "top"),
        (
            &["logs", "scan", "x.log", "--since", "yesterday"][..],
            "--since",
        ),
        (&["logs", "scan", "x.log", "--pattern", "("][..], "pattern"),
        (&["logs", "scan", "missing.log"][..], "missing.log"),
    ] {
        let o = bin(d.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}
