//! A generated Agent Lab log for tests and benchmarks: nginx-style access lines and the app's
//! own lines, one minute after another, with an incident planted at a known minute — an error
//! burst, a message template never seen before, and one client flooding the service.

use std::io::Write;

/// What to plant, and where.
#[derive(Debug, Clone, Copy)]
pub struct LogFixture {
    /// Unix seconds of the first line (a whole minute).
    pub start: i64,
    /// Minutes of log.
    pub minutes: u32,
    /// Lines per minute.
    pub lines_per_minute: u32,
    /// The minute (from 0) the incident starts; None for a quiet log.
    pub incident_minute: Option<u32>,
}

/// The flooding client.
pub const FLOODER: &str = "10.66.6.66";
/// The new exception of the incident.
pub const NEW_ERROR: &str = "ERROR worker crashed: KeyError: 'session_id' in RunStore.append";

/// A small deterministic generator (xorshift64): the same log for the same fixture.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn access(w: &mut impl Write, r: &mut Rng, ip: &str, ts: &str) -> std::io::Result<()> {
    const PATHS: [&str; 4] = ["/api/run", "/api/sessions", "/health", "/metrics/slo"];
    let path = PATHS[r.below(4) as usize];
    let status = if r.below(500) == 0 { 502 } else { 200 };
    writeln!(
        w,
        "{ip} - - [{ts}] \"GET {path}?id={} HTTP/1.1\" {status} {} \"-\" \"agent-lab-client/1.{}\"",
        r.below(100_000),
        200 + r.below(4000),
        r.below(9)
    )
}

fn app(w: &mut impl Write, r: &mut Rng, iso: &str, burst: bool) -> std::io::Result<()> {
    match (burst, r.below(200)) {
        (true, n) if n < 60 => writeln!(w, "{iso} {NEW_ERROR} (run {})", r.below(1_000_000)),
        (_, 0) => writeln!(
            w,
            "{iso} ERROR request {} failed: upstream timeout after {}s",
            r.below(1_000_000),
            5 + r.below(25)
        ),
        _ => writeln!(
            w,
            "{iso} INFO session {} saved {} runs in {}ms",
            r.below(1_000_000),
            r.below(50),
            r.below(900)
        ),
    }
}

/// Write the log.
pub fn write_log(w: &mut impl Write, f: LogFixture) -> std::io::Result<()> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for m in 0..f.minutes {
        let burst = f.incident_minute.is_some_and(|i| m >= i);
        for s in 0..f.lines_per_minute {
            let t = f.start + i64::from(m) * 60 + i64::from(s * 60 / f.lines_per_minute);
            let dt = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
            if s % 2 == 0 {
                let ip = if burst && r.below(3) == 0 {
                    FLOODER.to_string()
                } else {
                    format!("10.0.{}.{}", r.below(8), r.below(250))
                };
                access(
                    w,
                    &mut r,
                    &ip,
                    &dt.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
                )?;
            } else {
                app(
                    w,
                    &mut r,
                    &dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    burst,
                )?;
            }
        }
    }
    Ok(())
}
