//! The log scanner: in one pass over a file or a stream, the lines that match the error
//! patterns (the last N with their line numbers), the top talkers by a field, the matches per
//! minute with the minutes that spike against their trailing baseline, and the message
//! templates with the ones never seen before the recent window. Memory is bounded by the keys
//! and templates kept (`max_keys`, `max_templates`), never by the size of the log: a file is
//! read in blocks of whole lines (4 MiB) scanned by one worker per core while the next ones are
//! read and the finished ones merged in order; gzip, a pipe or an SSH channel the same way. A line
//! longer than `max_line` is counted and cut. (Files are read, not memory-mapped: the workspace
//! forbids `unsafe`, and a map's pages would count against the memory bound.)

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Datelike, Utc};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

mod count;
mod remote;
mod report;
mod scan;
mod seek;
pub mod spike;
pub mod template;
pub mod time;

pub use remote::{Transfer, scan_host};
pub use report::{LogReport, Minute, ScanMatch, Spike, Talker, Template};

/// Which part of a line the top talkers count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// No top talkers.
    None,
    /// The n-th whitespace-separated field, from 1 (awk's `$1`).
    Column(usize),
    /// The first capture group of a regex (the whole match without one).
    Regex(String),
    /// A key of a JSON line.
    Json(String),
}

impl Field {
    /// `1`, `$1`, `json:user`, `re:user=(\w+)`, `none`.
    pub fn parse(s: &str) -> Result<Field> {
        let s = s.trim();
        if let Some(k) = s.strip_prefix("json:") {
            return Ok(Field::Json(k.to_string()));
        }
        if let Some(r) = s.strip_prefix("re:") {
            regex::bytes::Regex::new(r)
                .map_err(|e| Error::config(format!("top: {r:?} is not a regex: {e}")))?;
            return Ok(Field::Regex(r.to_string()));
        }
        if s == "none" {
            return Ok(Field::None);
        }
        match s.trim_start_matches('$').parse::<usize>() {
            Ok(n) if n > 0 => Ok(Field::Column(n)),
            _ => Err(Error::config(format!(
                "top: {s:?} is not a field: a column (1, $1), json:KEY, re:REGEX or none"
            ))),
        }
    }
}

/// What to look for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanOptions {
    /// The error patterns (a regex; default `error|exception`).
    pub pattern: String,
    /// Case-insensitive (default).
    pub ignore_case: bool,
    /// Matches kept, the last ones.
    pub last: usize,
    /// Top talkers by this field.
    pub top: Field,
    /// How many top talkers reported.
    pub top_n: usize,
    /// Only lines at or after this time (the log is in time order).
    pub since: Option<DateTime<Utc>>,
    /// Only lines before this time.
    pub until: Option<DateTime<Utc>>,
    /// Templates first seen this close to the end are new (the rest is the baseline).
    pub recent: std::time::Duration,
    /// Trailing minutes a minute is compared with.
    pub baseline_minutes: usize,
    /// Robust z-score above which a minute spikes.
    pub spike_z: f64,
    /// Matches a minute needs to spike.
    pub spike_min: u64,
    /// The year of syslog timestamps (which have none).
    pub year: u32,
    /// Distinct talker keys kept.
    pub max_keys: usize,
    /// Distinct templates kept.
    pub max_templates: usize,
    /// Longer lines are cut (and counted).
    pub max_line: usize,
    /// Blocks scanned at once (default: the cores).
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            pattern: "error|exception".into(),
            ignore_case: true,
            last: 20,
            top: Field::Column(1),
            top_n: 10,
            since: None,
            until: None,
            recent: std::time::Duration::from_secs(15 * 60),
            baseline_minutes: 60,
            spike_z: 5.0,
            spike_min: 5,
            year: Utc::now().year() as u32,
            max_keys: 100_000,
            max_templates: 10_000,
            max_line: 1 << 20,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

struct Compiled {
    matcher: RegexMatcher,
    field_re: Option<regex::bytes::Regex>,
}

fn compile(o: &ScanOptions) -> Result<Compiled> {
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(o.ignore_case)
        .build(&o.pattern)
        .map_err(|e| Error::config(format!("pattern {:?}: {e}", o.pattern)))?;
    let field_re = match &o.top {
        Field::Regex(r) => Some(
            regex::bytes::Regex::new(r)
                .map_err(|e| Error::config(format!("top: {r:?} is not a regex: {e}")))?,
        ),
        _ => None,
    };
    Ok(Compiled { matcher, field_re })
}

fn io_error(source: &str, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
            ErrorKind::InvalidResponse
        }
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("{source}: {e}"))
        .with_operation("logs.scan")
        .with_context("log", source)
}

/// The first line start at or after `at`.
fn line_start(data: &[u8], at: usize) -> usize {
    if at == 0 {
        return 0;
    }
    memchr::memchr(b'\n', &data[at - 1..]).map_or(data.len(), |i| at + i)
}

/// The offset of the first line whose time is at or after `t`, by bisection over line starts
/// (lines without a time belong to the line before them).
pub fn offset_of_time(data: &[u8], t: i64, year: u32) -> usize {
    let (mut lo, mut hi) = (0usize, data.len());
    while lo < hi {
        let mut mid = line_start(data, lo + (hi - lo) / 2);
        if mid >= hi {
            mid = line_start(data, lo + 1);
        }
        if mid >= hi {
            // No line starts between lo and hi: the answer is lo or hi, by lo's own time.
            let end = memchr::memchr(b'\n', &data[lo..hi]).map_or(hi, |i| lo + i);
            if time::line_time(&data[lo..end], year).is_some_and(|x| x < t) {
                lo = hi;
            }
            break;
        }
        let mut probe = mid;
        let time = loop {
            if probe >= hi {
                break None;
            }
            let end = memchr::memchr(b'\n', &data[probe..]).map_or(data.len(), |i| probe + i);
            if let Some(x) = time::line_time(&data[probe..end], year) {
                break Some(x);
            }
            probe = end + 1;
        };
        match time {
            Some(x) if x < t => lo = line_start(data, probe + 1),
            _ => hi = mid,
        }
    }
    lo
}

/// The part of `data` inside the options' time range.
fn cut<'a>(data: &'a [u8], o: &ScanOptions) -> (&'a [u8], u64) {
    let from = o
        .since
        .map_or(0, |t| offset_of_time(data, t.timestamp(), o.year));
    let to = o
        .until
        .map_or(data.len(), |t| offset_of_time(data, t.timestamp(), o.year));
    let skipped = memchr::memchr_iter(b'\n', &data[..from]).count() as u64;
    (&data[from..to.max(from)], skipped)
}

/// Scan bytes in memory.
pub fn scan_bytes(data: &[u8], source: &str, o: &ScanOptions) -> Result<LogReport> {
    // The same blocks, workers and in-order merge as a file or a stream.
    scan_reader(data, source, o)
}

/// Scan a file: read in blocks of whole lines, scanned by one worker per core (gzip files
/// decompressed on the way). With `since`, reading starts near the first line in range, found
/// by bisection over the file (line numbers then count from there: `numbered_from_cut`).
pub fn scan_path(path: &Path, o: &ScanOptions) -> Result<LogReport> {
    let source = path.display().to_string();
    compile(o)?; // a bad pattern is told before the file is opened
    let mut f = std::fs::File::open(path).map_err(|e| io_error(&source, e))?;
    let mut magic = [0u8; 2];
    let gz = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    f.seek(SeekFrom::Start(0))
        .map_err(|e| io_error(&source, e))?;
    if gz {
        return scan_reader(flate2::read::MultiGzDecoder::new(f), &source, o);
    }
    let start = match o.since {
        Some(t) => {
            seek::start_of(&mut f, t.timestamp(), o.year).map_err(|e| io_error(&source, e))?
        }
        None => 0,
    };
    f.seek(SeekFrom::Start(start))
        .map_err(|e| io_error(&source, e))?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, f);
    from_line_start(&mut r, start).map_err(|e| io_error(&source, e))?;
    let mut rep = scan_reader(r, &source, o)?;
    rep.numbered_from_cut = start > 0;
    Ok(rep)
}

/// A read that began one byte before `start` (a bisection's answer, inside a line or on its
/// start) moves on to the first whole line: only the rest of the cut line, or the newline just
/// before `start`, is dropped.
fn from_line_start(r: &mut impl std::io::BufRead, start: u64) -> std::io::Result<()> {
    if start > 0 {
        r.skip_until(b'\n')?;
    }
    Ok(())
}

/// Scan a stream in blocks of whole lines, one worker per core.
pub fn scan_reader(r: impl Read + Send, source: &str, o: &ScanOptions) -> Result<LogReport> {
    report::scan_stream(r, source, o, &compile(o)?)
}
