//! `review monthly` and `drill` from the command: the three files, the exit codes, a bad
//! runbook name.

use crate::common;
use common::{bin, text};

#[test]
fn review_monthly_writes_three_files_and_drill_exits_by_its_pairs() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r").join("report.html");
    let o = bin(d.path())
        .args(["--sandbox", "corrupt-object", "review", "monthly", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let s = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "escalates: {s}{}",
        text(&o.stderr)
    );
    assert!(
        s.contains("dr_drill") && s.contains("session-002.json"),
        "{s}"
    );
    for ext in ["html", "md", "json"] {
        assert!(out.with_extension(ext).exists(), "{ext}");
    }
    let o = bin(d.path())
        .args(["--format", "json", "drill", "cost_report"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], true);
    assert_eq!(v["cases"][0]["runbook"], "cost_report");
    let o = bin(d.path())
        .args(["drill", "no_such_runbook"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no runbook named"),
        "{}",
        text(&o.stderr)
    );
}
