//! Timestamps of log lines, read by hand from the bytes: ISO-8601 / RFC 3339 at the start of the
//! line (`2026-12-01T10:00:00Z`, `2026-12-01 10:00:00,123`), syslog (`Dec  1 10:00:00`, the year
//! given) and the common/combined log format of nginx and Apache (`[01/Dec/2026:10:00:00
//! +0000]`). Hand-written because it runs on millions of lines: a fixed-position digit read is
//! far cheaper than a format-string parser, and anything unexpected is simply "no time".

use chrono::NaiveDate;

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

fn month(b: &[u8]) -> Option<u32> {
    const M: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    M.iter()
        .position(|m| m.as_slice() == b)
        .map(|i| i as u32 + 1)
}

fn unix(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    let t = NaiveDate::from_ymd_opt(y as i32, mo, d)?.and_hms_opt(h, mi, s)?;
    Some(t.and_utc().timestamp())
}

/// `HH:MM:SS` at `b[0..8]`.
fn hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((num(&b[0..2])?, num(&b[3..5])?, num(&b[6..8])?))
}

/// A UTC offset `Z`, `+hh:mm`, `+hhmm` at the start of `b`, in seconds east (0 when absent).
fn offset(b: &[u8]) -> i64 {
    let sign = match b.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return 0,
    };
    let d = &b[1..];
    let minutes = if d.get(2) == Some(&b':') {
        d.get(3..5)
    } else {
        d.get(2..4)
    };
    match (d.get(0..2).and_then(num), minutes.and_then(num)) {
        (Some(h), Some(m)) => sign * i64::from(h * 3600 + m * 60),
        _ => 0,
    }
}

fn iso(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let (h, mi, s) = hms(&b[11..19])?;
    let t = unix(num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?, h, mi, s)?;
    let mut rest = &b[19..];
    if matches!(rest.first(), Some(b'.') | Some(b',')) {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + n..];
    }
    Some(t - offset(rest))
}

fn syslog(b: &[u8], year: u32) -> Option<i64> {
    if b.len() < 15 || b[3] != b' ' {
        return None;
    }
    let day = num(b[4..6].trim_ascii_start())?;
    let (h, mi, s) = hms(&b[7..15])?;
    unix(year, month(&b[0..3])?, day, h, mi, s)
}

fn clf(b: &[u8]) -> Option<i64> {
    let open = memchr::memchr(b'[', b)?;
    let b = &b[open + 1..];
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let (h, mi, s) = hms(&b[12..20])?;
    let t = unix(num(&b[7..11])?, month(&b[3..6])?, num(&b[0..2])?, h, mi, s)?;
    Some(t - offset(b.get(21..).unwrap_or_default()))
}

/// The time of a log line (Unix seconds, UTC), if it has one we know; `year` for syslog lines.
pub fn line_time(line: &[u8], year: u32) -> Option<i64> {
    let head = &line[..line.len().min(64)];
    iso(head)
        .or_else(|| syslog(head, year))
        .or_else(|| clf(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_119_200 - 16 * 3600; // 2026-11-30T18:00:00Z

    #[test]
    fn the_common_formats() {
        assert_eq!(line_time(b"2026-11-30T18:00:00Z ERROR x", 2026), Some(T));
        assert_eq!(line_time(b"2026-11-30 18:00:00,123 ERROR x", 2026), Some(T));
        assert_eq!(line_time(b"2026-11-30T19:00:00.5+01:00 x", 2026), Some(T));
        assert_eq!(
            line_time(b"Nov 30 18:00:00 web-1 app[12]: x", 2026),
            Some(T)
        );
        assert_eq!(
            line_time(b"Dec  1 00:00:00 web-1 x", 2026),
            Some(T + 6 * 3600)
        );
        let clf = b"10.0.0.1 - - [30/Nov/2026:18:00:00 +0000] \"GET / HTTP/1.1\" 200 5";
        assert_eq!(line_time(clf, 2026), Some(T));
        let clf2 = b"10.0.0.1 - - [30/Nov/2026:19:00:00 +0100] \"GET / HTTP/1.1\" 200 5";
        assert_eq!(line_time(clf2, 2026), Some(T));
    }

    #[test]
    fn anything_else_has_no_time() {
        for l in [
            &b""[..],
            b"no time here",
            b"2026-13-40T99:00:00Z",
            b"2026-11-30T18:0",
            b"Foo 30 18:00:00 x",
            b"[30/Nov/2026:18:00",
            b"\xff\xfe\x00",
        ] {
            assert_eq!(line_time(l, 2026), None, "{:?}", String::from_utf8_lossy(l));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = line_time(&bytes, 2026);
        }

        #[test]
        fn iso_round_trips(secs in 0i64..4_000_000_000) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let s = t.format("%Y-%m-%dT%H:%M:%SZ rest").to_string();
            proptest::prop_assert_eq!(line_time(s.as_bytes(), 2026), Some(secs));
        }
    }
}
