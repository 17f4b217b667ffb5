//! Parsers for `uptime`, `free -b` and `df -P -B1`, tolerant of real-world variants
//! (procps, busybox, BSD-style `load averages:`, "1 user", "up 3 days", wrapped long device
//! names, mount points with spaces). Anything unrecognisable is a clear error.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Load averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    /// 1 minute.
    pub one: f64,
    /// 5 minutes.
    pub five: f64,
    /// 15 minutes.
    pub fifteen: f64,
}

/// What `uptime` says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    /// Seconds up, when it could be read.
    pub up_secs: Option<u64>,
    /// Load averages.
    pub load: LoadAverage,
}

/// Memory usage from `free -b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Total bytes.
    pub total: u64,
    /// Bytes not available to new programs.
    pub used: u64,
    /// Bytes available.
    pub available: u64,
    /// used / total.
    pub used_ratio: f64,
}

/// One filesystem from `df -P -B1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Device or source.
    pub filesystem: String,
    /// Mount point.
    pub mount: String,
    /// Size in bytes.
    pub total: u64,
    /// Used bytes.
    pub used: u64,
    /// Available bytes.
    pub available: u64,
    /// used / (used + available), as df computes its capacity column.
    pub used_ratio: f64,
}

fn parse_err(what: &str, why: impl Into<String>, text: &str) -> Error {
    let snippet: String = text.trim().chars().take(80).collect();
    Error::new(
        ErrorKind::InvalidResponse,
        format!("cannot parse {what} output: {}", why.into()),
    )
    .with_operation("host.parse")
    .with_context("output", snippet)
}

/// Parse `uptime`.
pub fn parse_uptime(text: &str) -> Result<Uptime> {
    let line = text
        .lines()
        .find(|l| l.contains("load average"))
        .ok_or_else(|| parse_err("uptime", "no \"load average\"", text))?;
    let idx = line.find("load average").unwrap_or(0);
    let after = &line[idx..];
    let nums_part = after
        .split_once(':')
        .map(|(_, r)| r)
        .ok_or_else(|| parse_err("uptime", "no ':' after load average", text))?;
    // "0.52, 0.58, 0.59" or "1.90 2.05 2.10" or with decimal commas "0,52, 0,58, 0,59".
    let mut parts: Vec<String> = nums_part
        .split(", ")
        .flat_map(|p| p.split_whitespace())
        .map(|s| s.trim_end_matches(',').replace(',', "."))
        .filter(|s| !s.is_empty())
        .collect();
    if parts.len() != 3 {
        parts = nums_part
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let nums: Vec<f64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    if nums.len() != 3 {
        return Err(parse_err("uptime", "expected three load averages", text));
    }
    let up_part = &line[..idx];
    Ok(Uptime {
        up_secs: parse_up(up_part),
        load: LoadAverage {
            one: nums[0],
            five: nums[1],
            fifteen: nums[2],
        },
    })
}

/// " 14:33:31 up 3 days,  2:01,  1 user,  " → seconds.
fn parse_up(s: &str) -> Option<u64> {
    let rest = s
        .split_once(" up ")
        .map(|(_, r)| r)
        .or_else(|| s.strip_prefix("up "))?;
    let mut secs = 0u64;
    let mut any = false;
    for part in rest.split(',') {
        let p = part.trim();
        if p.is_empty() || p.contains("user") {
            continue;
        }
        let words: Vec<&str> = p.split_whitespace().collect();
        match words.as_slice() {
            [n, unit] => {
                let n: u64 = n.parse().ok()?;
                let mult = match *unit {
                    u if u.starts_with("day") => 86_400,
                    u if u.starts_with("hr") || u.starts_with("hour") => 3600,
                    u if u.starts_with("min") => 60,
                    u if u.starts_with("sec") => 1,
                    _ => return None,
                };
                secs += n * mult;
                any = true;
            }
            [hm] if hm.contains(':') => {
                let (h, m) = hm.split_once(':')?;
                secs += h.parse::<u64>().ok()? * 3600 + m.parse::<u64>().ok()? * 60;
                any = true;
            }
            _ => {}
        }
    }
    any.then_some(secs)
}

/// Parse `free -b` (procps new and old, busybox).
pub fn parse_free(text: &str) -> Result<MemoryUsage> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| parse_err("free", "empty", text))?
        .split_whitespace()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mem = text
        .lines()
        .find(|l| l.trim_start().starts_with("Mem:"))
        .ok_or_else(|| parse_err("free", "no \"Mem:\" line", text))?;
    let vals: Vec<u64> = mem
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            parse_err(
                "free",
                "non-numeric value on the Mem: line (run free -b)",
                text,
            )
        })?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| vals.get(i))
            .copied()
    };
    let total = col("total").ok_or_else(|| parse_err("free", "no total column", text))?;
    if total == 0 {
        return Err(parse_err("free", "total memory is 0", text));
    }
    let available = if let Some(a) = col("available") {
        a
    } else {
        // Old procps and busybox: free + buffers + cache.
        let free = col("free").ok_or_else(|| parse_err("free", "no free column", text))?;
        free + col("buffers").unwrap_or(0)
            + col("cached").or_else(|| col("buff/cache")).unwrap_or(0)
    }
    .min(total);
    let used = total - available;
    Ok(MemoryUsage {
        total,
        used,
        available,
        used_ratio: used as f64 / total as f64,
    })
}

/// Filesystems that say nothing about real disk space.
const PSEUDO: &[&str] = &[
    "tmpfs", "devtmpfs", "udev", "none", "overlay", "shm", "proc", "sysfs", "cgroup", "devfs",
];

/// Parse `df -P -B1` (or `df -P -k`, detected from the header: `1024-blocks`).
pub fn parse_df(text: &str) -> Result<Vec<DiskUsage>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| parse_err("df", "empty", text))?;
    let unit: u64 = header
        .split_whitespace()
        .nth(1)
        .and_then(|h| h.split('-').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    if !header.to_ascii_lowercase().starts_with("filesystem") {
        return Err(parse_err("df", "no Filesystem header", text));
    }
    let mut out = Vec::new();
    let mut carry: Option<String> = None;
    for line in lines {
        let line = match carry.take() {
            Some(dev) => format!("{dev} {}", line.trim()),
            None => line.to_string(),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() == 1 {
            // A long device name wrapped onto its own line.
            carry = Some(fields[0].to_string());
            continue;
        }
        if fields.len() < 6 {
            return Err(parse_err(
                "df",
                format!("short line {:?}", line.trim()),
                text,
            ));
        }
        let num = |i: usize| -> Result<u64> {
            fields[i]
                .parse::<u64>()
                .map(|v| v * unit)
                .map_err(|_| parse_err("df", format!("non-numeric field {:?}", fields[i]), text))
        };
        let (total, used, available) = (num(1)?, num(2)?, num(3)?);
        // Mount points may contain spaces: everything after the capacity column.
        let mount = fields[5..].join(" ");
        let fs = fields[0].to_string();
        if total == 0 || PSEUDO.contains(&fs.as_str()) || fs.starts_with("/dev/loop") {
            continue;
        }
        let denom = used + available;
        out.push(DiskUsage {
            filesystem: fs,
            mount,
            total,
            used,
            available,
            used_ratio: if denom == 0 {
                0.0
            } else {
                used as f64 / denom as f64
            },
        });
    }
    if let Some(dev) = carry {
        return Err(parse_err(
            "df",
            format!("device {dev:?} without values"),
            text,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_variants() {
        let cases = [
            (
                " 14:33:31 up 3 days,  2:01,  1 user,  load average: 0.52, 0.58, 0.59",
                Some(3 * 86400 + 2 * 3600 + 60),
                0.52,
            ),
            (
                " 10:00:00 up 5 min,  0 users,  load average: 0.00, 0.01, 0.05",
                Some(300),
                0.0,
            ),
            (
                " 14:33:31 up 1 day, 47 min,  3 users,  load average: 1.00, 2.00, 3.00",
                Some(86400 + 47 * 60),
                1.0,
            ),
            // busybox: no users field
            (
                " 14:33:31 up  2:01,  load average: 0.10, 0.20, 0.30",
                Some(2 * 3600 + 60),
                0.1,
            ),
            // BSD / macOS
            (
                "14:33  up 12 days, 3 hrs, 2 users, load averages: 1.90 2.05 2.10",
                Some(12 * 86400 + 3 * 3600),
                1.9,
            ),
            // decimal commas
            (
                " 14:33:31 up 7 min,  1 user,  load average: 0,52, 0,58, 0,59",
                Some(420),
                0.52,
            ),
        ];
        for (text, up, one) in cases {
            let u = parse_uptime(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(u.up_secs, up, "{text}");
            assert!((u.load.one - one).abs() < 1e-9, "{text}");
        }
        let e = parse_uptime("command not found").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse);
        assert!(e.to_string().contains("load average"));
    }

    #[test]
    fn free_variants() {
        let new = "               total        used        free      shared  buff/cache   available\nMem:     1000000000   300000000   100000000     1000000   600000000   650000000\nSwap:             0           0           0\n";
        let m = parse_free(new).unwrap();
        assert_eq!(m.available, 650_000_000);
        assert!((m.used_ratio - 0.35).abs() < 1e-9);
        let old = "             total       used       free     shared    buffers     cached\nMem:    1000000000  900000000  100000000          0   50000000  250000000\n-/+ buffers/cache:  600000000  400000000\nSwap:            0          0          0\n";
        let m = parse_free(old).unwrap();
        assert_eq!(m.available, 400_000_000);
        assert!(parse_free("total\nMem: 1.2G").is_err());
        assert!(parse_free("").is_err());
    }

    #[test]
    fn df_variants() {
        let text = "Filesystem                                  1-blocks        Used    Available Capacity Mounted on\n/dev/vda1                               270000000000 27000000000 243000000000      10% /\ntmpfs                                      100000000           0    100000000       0% /dev/shm\n/dev/mapper/very-long-volume-group-name-data\n                                          1000000000   950000000     50000000      95% /srv/app data\n";
        let d = parse_df(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].mount, "/");
        assert_eq!(
            d[1].filesystem,
            "/dev/mapper/very-long-volume-group-name-data"
        );
        assert_eq!(d[1].mount, "/srv/app data");
        assert!((d[1].used_ratio - 0.95).abs() < 1e-9);
        let k = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/root          1000     500       500      50% /\n";
        assert_eq!(parse_df(k).unwrap()[0].total, 1_024_000);
        assert!(parse_df("garbage").is_err());
        assert!(
            parse_df("Filesystem 1-blocks Used Available Capacity Mounted on\n/dev/x 1 2\n")
                .is_err()
        );
    }
}
