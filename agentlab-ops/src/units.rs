//! Units: durations as people write them (`500ms`, `5s`, `2m`, `1h`, `30d`).

use std::time::Duration;

/// Parse `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"30d"`, `"1.5s"`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    // Hand-written rather than humantime: it keeps the forms already accepted (`1.5s`, a bare
    // number of seconds, `2min`) and reads back what `format_duration` writes (`1m40s`).
    let s = s.trim();
    let bad =
        || format!("invalid duration {s:?}: expected e.g. \"500ms\", \"5s\", \"2m\", \"1m30s\"");
    let mut rest = s;
    let mut secs = 0.0;
    while !rest.is_empty() {
        let idx = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(idx);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(end);
        secs += n * match unit.trim() {
            "ms" => 0.001,
            "" if next.is_empty() && rest.len() == s.len() => 1.0,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            u => {
                return Err(format!(
                    "invalid duration unit {u:?} in {s:?} (ms, s, m, h, d)"
                ));
            }
        };
        rest = next;
    }
    if s.is_empty() || !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `90s` → `"1m30s"`, `1500ms` → `"1.5s"`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        let s = d.as_secs_f64();
        return if (s - s.round()).abs() < 1e-9 {
            format!("{}s", s.round() as u64)
        } else {
            format!("{s:.1}s")
        };
    }
    if secs % 86_400 == 0 {
        return format!("{}d", secs / 86_400);
    }
    if secs % 3600 == 0 {
        return format!("{}h", secs / 3600);
    }
    if secs < 3600 {
        let (m, s) = (secs / 60, secs % 60);
        return if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        };
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (m, s) {
        (_, 0) => format!("{h}h{m}m"),
        (0, _) => format!("{h}h{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        for secs in [0.5, 1.0, 59.0, 60.0, 100.0, 3600.0, 5400.0, 90_061.0] {
            let d = Duration::from_secs_f64(secs);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{secs}");
        }
        assert_eq!(parse_duration("1m40s").unwrap(), Duration::from_secs(100));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2min").unwrap(), Duration::from_secs(120));
        for bad in ["", "1x", "m", "1m40", "1s2", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
