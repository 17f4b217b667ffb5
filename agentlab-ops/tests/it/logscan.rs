//! The log scanner on generated logs with a planted incident (an error burst from a known
//! minute, a new exception template, one client flooding): found from a file, a gzip file and
//! memory alike; a `--since` cut; and malformed input — invalid UTF-8, a 10 MB line without a
//! newline, a truncated gzip, lines without a time — gives a result or a typed error.

use std::io::Write;

use agentlab_ops::ErrorKind;
use agentlab_ops::logs::{
    Field, ScanOptions, offset_of_time, scan_bytes, scan_path, template::template_of,
    time::line_time,
};
use agentlab_ops::testing::{FLOODER, LogFixture, NEW_ERROR, write_log};
use chrono::{DateTime, Utc};

const START: i64 = 1_796_119_200; // 2026-12-01T10:00:00Z

fn fixture() -> LogFixture {
    LogFixture {
        start: START,
        minutes: 60,
        lines_per_minute: 400,
        incident_minute: Some(50),
    }
}

fn log() -> Vec<u8> {
    let mut v = Vec::new();
    write_log(&mut v, fixture()).unwrap();
    v
}

fn minute(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(START + m * 60, 0).unwrap()
}

fn opts() -> ScanOptions {
    let mut o = ScanOptions::default();
    o.year = 2026;
    o.threads = 2;
    o
}

fn assert_finds_the_incident(r: &agentlab_ops::logs::LogReport) {
    assert_eq!(r.lines, 24_000, "{}", r.summary());
    assert_eq!(r.burst_start, Some(minute(50)), "{:?}", r.spikes);
    let new: Vec<&str> = r
        .new_templates
        .iter()
        .map(|t| t.template.as_str())
        .collect();
    let want = template_of(format!("2026-11-30T18:50:00Z {NEW_ERROR} (run 1)").as_bytes());
    assert!(new.contains(&want.as_str()), "new templates {new:?}");
    let t = r.new_templates.iter().find(|t| t.template == want).unwrap();
    assert_eq!(
        t.first_seen.map(|s| s.timestamp() / 60),
        Some(minute(50).timestamp() / 60)
    );
    assert!(
        r.templates
            .iter()
            .any(|t| t.template.contains("upstream timeout") && !t.new)
    );
    assert_eq!(r.top[0].key, FLOODER, "{:?}", &r.top[..3]);
    assert!(r.last.len() == 20 && r.last.windows(2).all(|w| w[0].line < w[1].line));
    let last = r.last.last().unwrap();
    assert!(last.text.to_lowercase().contains("error"), "{last:?}");
}

#[test]
fn the_incident_is_found_in_a_file_a_gzip_file_and_memory() {
    let data = log();
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("app.log");
    std::fs::write(&plain, &data).unwrap();
    let gz = d.path().join("app.log.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&data).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let a = scan_path(&plain, &opts()).unwrap();
    assert_finds_the_incident(&a);
    let b = scan_path(&gz, &opts()).unwrap();
    assert_finds_the_incident(&b);
    let c = scan_bytes(&data, "memory", &opts()).unwrap();
    assert_finds_the_incident(&c);
    assert_eq!((a.matches, a.last.clone()), (b.matches, b.last.clone()));
    assert_eq!(a.matches, c.matches);
    // One worker or many: the same answer.
    let mut one = opts();
    one.threads = 1;
    let s = scan_path(&plain, &one).unwrap();
    assert_eq!(
        (s.matches, s.last.clone(), s.top.clone()),
        (a.matches, a.last.clone(), a.top.clone())
    );
}

#[test]
fn a_quiet_log_has_no_burst_and_no_new_template() {
    let mut f = fixture();
    f.incident_minute = None;
    let mut v = Vec::new();
    write_log(&mut v, f).unwrap();
    let r = scan_bytes(&v, "quiet", &opts()).unwrap();
    assert_eq!(r.burst_start, None, "{:?}", r.spikes);
    assert!(r.new_templates.is_empty(), "{:?}", r.new_templates);
    assert_ne!(r.top[0].key, FLOODER);
}

#[test]
fn since_reads_from_the_first_line_in_range() {
    let data = log();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("app.log");
    std::fs::write(&p, &data).unwrap();
    let mut o = opts();
    o.since = Some(minute(45));
    let r = scan_path(&p, &o).unwrap();
    let m = scan_bytes(&data, "memory", &o).unwrap();
    assert_eq!(m.lines, 15 * 400, "memory: {}", m.summary());
    assert_eq!(r.lines, 15 * 400, "{}", r.summary());
    assert!(r.numbered_from_cut);
    assert_eq!(r.from, Some(minute(45)));
    assert!(r.last.iter().all(|m| m.time.unwrap() >= minute(45)));
}

#[test]
fn fields_for_the_top_talkers() {
    let data = log();
    let mut o = opts();
    o.top = Field::parse("$9").unwrap();
    let r = scan_bytes(&data, "m", &o).unwrap();
    assert_eq!(r.top[0].key, "200", "{:?}", r.top);
    o.top = Field::parse(r#"re:"GET (/[a-z/]+)"#).unwrap();
    let r = scan_bytes(&data, "m", &o).unwrap();
    assert!(r.top[0].key.starts_with('/'), "{:?}", r.top);
    assert!(Field::parse("0").is_err() && Field::parse("re:(").is_err());
}

#[test]
fn malformed_input_gives_a_result_or_a_typed_error() {
    let d = tempfile::tempdir().unwrap();
    // Invalid UTF-8, lines without a time, and a 10 MB line with no newline at the end.
    let mut v = b"\xff\xfe ERROR bad bytes \xc3\x28\nno time ERROR here\n".to_vec();
    v.extend(std::iter::repeat_n(b'x', 10 << 20));
    v.extend_from_slice(b" exception at the very end");
    let p = d.path().join("bad.log");
    std::fs::write(&p, &v).unwrap();
    let r = scan_path(&p, &opts()).unwrap();
    assert_eq!(r.matches, 3, "{}", r.summary());
    assert_eq!(r.untimed_matches, 3);
    assert!(r.long_lines >= 1, "{}", r.summary());
    assert!(
        r.top.iter().all(|t| t.key.len() <= 256),
        "talker keys are bounded"
    );
    assert!(r.last.iter().all(|m| m.text.len() <= 500 * 3));
    // A truncated gzip is a typed error naming the file.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&log()).unwrap();
    let gz = e.finish().unwrap();
    let p = d.path().join("cut.log.gz");
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    let err = scan_path(&p, &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(err.to_string().contains("cut.log.gz"), "{err}");
    // A missing file, a bad pattern.
    let err = scan_path(&d.path().join("nope.log"), &opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let mut o = opts();
    o.pattern = "(".into();
    assert_eq!(
        scan_bytes(b"x", "m", &o).unwrap_err().kind(),
        ErrorKind::ConfigInvalid
    );
}

#[test]
fn memory_stays_bounded_by_the_caps() {
    // 200k distinct talkers, a cap of 1000: the top is still right, marked approximate.
    let mut v = Vec::new();
    for i in 0..200_000u32 {
        writeln!(v, "10.{}.{}.{} GET /", i >> 16, (i >> 8) & 255, i & 255).unwrap();
        if i % 10 == 0 {
            writeln!(v, "{FLOODER} GET /").unwrap();
        }
    }
    let mut o = opts();
    o.max_keys = 1000;
    let r = scan_bytes(&v, "m", &o).unwrap();
    assert_eq!(r.top[0].key, FLOODER);
    assert!(r.top_approximate);
}

/// The `since` bisection finds the first line in range from any starting line, as a linear
/// scan would.
#[test]
fn the_since_bisection_equals_a_linear_scan() {
    let mut v = Vec::new();
    write_log(
        &mut v,
        LogFixture {
            start: 1_796_119_200,
            minutes: 60,
            lines_per_minute: 400,
            incident_minute: Some(50),
        },
    )
    .unwrap();
    let t = 1_796_119_200 + 45 * 60;
    let mut bad = 0;
    let starts: Vec<usize> = std::iter::once(0)
        .chain(memchr::memchr_iter(b'\n', &v).map(|i| i + 1))
        .filter(|&i| i < v.len())
        .collect();
    for (k, &s) in starts.iter().enumerate().step_by(97) {
        let d = &v[s..];
        let got = offset_of_time(d, t, 2026);
        let want = d
            .split_inclusive(|c| *c == b'\n')
            .scan(0usize, |acc, l| {
                let o = *acc;
                *acc += l.len();
                Some((o, l))
            })
            .find(|(_, l)| line_time(l, 2026).is_some_and(|x| x >= t))
            .map_or(d.len(), |x| x.0);
        if got != want {
            bad += 1;
            if bad < 3 {
                eprintln!("k={k} s={s} got={got} want={want}");
            }
        }
    }
    assert_eq!(bad, 0);
}
