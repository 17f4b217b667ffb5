//! Where `--since` starts in a file, by bisection over byte offsets: read a window at the
//! middle, take the time of its first whole line, keep the half that holds the start. A few
//! dozen 64 KiB reads instead of the whole file.

use std::io::{Read, Seek, SeekFrom};

use super::time::line_time;

const WINDOW: usize = 64 * 1024;

/// The time of the first whole timed line at or after `at` (None: none in the window).
fn time_at(f: &mut std::fs::File, at: u64, year: u32) -> std::io::Result<Option<i64>> {
    f.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; WINDOW];
    let n = f.read(&mut buf)?;
    let buf = &buf[..n];
    let mut lines = buf.split(|c| *c == b'\n');
    if at > 0 {
        lines.next(); // the rest of a line cut by the seek
    }
    Ok(lines.find_map(|l| line_time(l, year)))
}

/// An offset at or before the first line at or after time `t` (within one window of it).
pub(super) fn start_of(f: &mut std::fs::File, t: i64, year: u32) -> std::io::Result<u64> {
    let len = f.metadata()?.len();
    let (mut lo, mut hi) = (0u64, len);
    while hi - lo > WINDOW as u64 {
        let mid = lo + (hi - lo) / 2;
        match time_at(f, mid, year)? {
            Some(x) if x < t => lo = mid,
            _ => hi = mid,
        }
    }
    Ok(lo)
}
