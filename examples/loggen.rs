//! Write a generated Agent Lab log (access and app lines, a planted incident in the last 30
//! minutes) of about SIZE MiB: `cargo run --release --example loggen -- OUT SIZE_MIB`.

use std::io::{BufWriter, Write};

use agentlab_ops::testing::{LogFixture, write_log};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "app.log".into());
    let mib: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    // About 93 bytes a line; one day of minutes.
    let minutes = 1440u32;
    let lines = mib * 1024 * 1024 / 93;
    let per_minute = (lines / u64::from(minutes)).max(2) as u32;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    write_log(
        &mut w,
        LogFixture {
            start: 1_796_140_800 - 86_400,
            minutes,
            lines_per_minute: per_minute,
            incident_minute: Some(minutes - 30),
        },
    )?;
    w.flush()
}
