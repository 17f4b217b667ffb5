//! The log scanner on a log that lives on a host: over the real sshd the test command starts
//! (loopback, the same filesystem), with `since` the start is found by bisection on the host and
//! only the tail comes over the wire, gzip-compressed; the incident is found as from the file.

use agentlab_ops::host::LocalHost;
use agentlab_ops::logs::{ScanOptions, scan_host, scan_path};
use agentlab_ops::testing::{FLOODER, LogFixture, write_log};
use chrono::DateTime;

use crate::common;

const START: i64 = 1_796_119_200;

fn opts() -> ScanOptions {
    let mut o = ScanOptions::default();
    o.year = 2026;
    o
}

fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut v = Vec::new();
    let f = LogFixture {
        start: START,
        minutes: 240,
        lines_per_minute: 400,
        incident_minute: Some(230),
    };
    write_log(&mut v, f).unwrap();
    let p = dir.join("app.log");
    std::fs::write(&p, v).unwrap();
    p
}

#[tokio::test]
async fn a_log_on_an_ssh_host_is_scanned_from_its_tail_only() {
    let Some(s) = common::servers("logscan_ssh") else {
        return;
    };
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let p = log_file(d.path());
    let path = p.to_str().unwrap();
    let ctl = common::control_dir();
    let host = s.ssh_host("web-1", s.ssh_ports[0], ctl.path());
    let mut o = opts();
    o.since = DateTime::from_timestamp(START + 220 * 60, 0);
    let (r, t) = scan_host(&host, path, &o, None).await.unwrap();
    let local = scan_path(&p, &o).unwrap();
    assert_eq!(r.lines, 20 * 400, "{}", r.summary());
    assert_eq!(
        (r.lines, r.matches, &r.top),
        (local.lines, local.matches, &local.top)
    );
    assert_eq!(r.burst_start, DateTime::from_timestamp(START + 230 * 60, 0));
    assert_eq!(r.top[0].key, FLOODER);
    assert!(
        r.new_templates
            .iter()
            .any(|t| t.template.contains("KeyError"))
    );
    assert!(t.gzip, "compressed on the wire");
    assert!(
        t.wire_bytes * 20 < t.file_bytes,
        "a tail of 20 minutes of 240, compressed: {t:?}"
    );
    // The whole file, and resuming from where that scan ended: nothing new.
    let (all, t_all) = scan_host(&host, path, &opts(), None).await.unwrap();
    assert_eq!(all.lines, 240 * 400);
    assert_eq!(all.bytes, t_all.file_bytes);
    let (again, _) = scan_host(&host, path, &opts(), Some(all.bytes))
        .await
        .unwrap();
    assert_eq!(again.lines, 0);
    // A missing log is not_found, naming it.
    let e = scan_host(&host, "/nonexistent/app.log", &opts(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::NotFound, "{e}");
    agentlab_ops::RemoteHost::close(&host).await.unwrap();
}

#[tokio::test]
async fn a_local_host_reads_the_tail_directly() {
    let d = tempfile::tempdir().unwrap();
    let p = log_file(d.path());
    let host = LocalHost::new("local");
    let mut o = opts();
    o.since = DateTime::from_timestamp(START + 220 * 60, 0);
    let (r, t) = scan_host(&host, p.to_str().unwrap(), &o, None)
        .await
        .unwrap();
    assert_eq!(r.lines, 20 * 400);
    assert!(!t.gzip && t.wire_bytes < t.file_bytes / 10, "{t:?}");
}
