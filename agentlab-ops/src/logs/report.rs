//! What a scan found, merged from its blocks: the typed [`LogReport`], and the stream reader
//! that feeds blocks of whole lines from a pipe, a gzip file or an SSH channel.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::scan::{Partial, Seen, scan_block};
use super::spike::spikes;
use super::time::line_time;
use super::{Compiled, Field, ScanOptions, cut, io_error};

/// A matched line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanMatch {
    /// Line number in the log (1-based).
    pub line: u64,
    /// Its time, when it has one.
    pub time: Option<DateTime<Utc>>,
    /// The line (lossy UTF-8, cut at 500 bytes).
    pub text: String,
}

/// A top talker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Talker {
    /// The field's value.
    pub key: String,
    /// Lines with it.
    pub count: u64,
}

/// Matches in one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// The minute.
    pub minute: DateTime<Utc>,
    /// Matches in it.
    pub count: u64,
}

/// A minute that spikes against its trailing baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    /// The minute.
    pub minute: DateTime<Utc>,
    /// Matches in it.
    pub count: u64,
    /// The baseline's median.
    pub baseline_median: f64,
    /// The robust z-score.
    pub z: f64,
}

/// A message template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// The template (`<*> ERROR user <*> timed out`).
    pub template: String,
    /// Matches with it.
    pub count: u64,
    /// The line it was first seen on.
    pub first_line: u64,
    /// When.
    pub first_seen: Option<DateTime<Utc>>,
    /// First seen in the recent window: never in the baseline before it.
    pub new: bool,
    /// Its first line.
    pub example: String,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogReport {
    /// The log.
    pub source: String,
    /// The error patterns.
    pub pattern: String,
    /// Lines scanned.
    pub lines: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Matching lines.
    pub matches: u64,
    /// The first time in the scanned range.
    pub from: Option<DateTime<Utc>>,
    /// The last.
    pub to: Option<DateTime<Utc>>,
    /// The last matches.
    pub last: Vec<ScanMatch>,
    /// What the top talkers count.
    pub top_field: Field,
    /// The top talkers, most lines first.
    pub top: Vec<Talker>,
    /// More distinct keys than kept: the counts are lower bounds.
    pub top_approximate: bool,
    /// Matches per minute (minutes with matches).
    pub per_minute: Vec<Minute>,
    /// Minutes whose matches spike.
    pub spikes: Vec<Spike>,
    /// The first spiking minute: when the burst started.
    pub burst_start: Option<DateTime<Utc>>,
    /// The most frequent templates (50 at most).
    pub templates: Vec<Template>,
    /// Templates first seen in the recent window.
    pub new_templates: Vec<Template>,
    /// Matches without a timestamp we know.
    pub untimed_matches: u64,
    /// Lines longer than the limit (cut).
    pub long_lines: u64,
    /// Matches whose template was not kept (over the cap).
    pub templates_dropped: u64,
    /// The scan started at `since` inside the file: line numbers count from there.
    pub numbered_from_cut: bool,
}

fn at(t: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t, 0)
}

/// The times of the first and last timed lines near the ends of `data`.
pub(super) fn span_of(data: &[u8], year: u32) -> (Option<i64>, Option<i64>) {
    let first = data
        .split(|c| *c == b'\n')
        .take(64)
        .find_map(|l| line_time(l, year));
    let tail = &data[data.len().saturating_sub(64 * 1024)..];
    let last = tail
        .rsplit(|c| *c == b'\n')
        .take(64)
        .find_map(|l| line_time(l, year));
    (first, last)
}

fn merge_templates(all: &mut rustc_hash::FxHashMap<String, Seen>, part: &mut Partial, offset: u64) {
    for (k, mut s) in part.templates.drain() {
        match all.get_mut(&k) {
            Some(t) => t.count += s.count,
            None => {
                s.first_line += offset;
                all.insert(k, s);
            }
        }
    }
}

/// Merge the blocks (in order) into the report.
pub(super) fn finish(
    source: &str,
    parts: Vec<Partial>,
    skipped: u64,
    span: (Option<i64>, Option<i64>),
    o: &ScanOptions,
) -> LogReport {
    let mut offset = skipped;
    let mut total = Partial::new(o);
    let mut templates = rustc_hash::FxHashMap::default();
    let mut last = Vec::new();
    for mut p in parts {
        offset += p.skip;
        total.lines += p.lines;
        total.bytes += p.bytes;
        total.matches += p.matches;
        total.untimed += p.untimed;
        total.long_lines += p.long_lines;
        total.templates_dropped += p.templates_dropped;
        for (m, c) in std::mem::take(&mut p.minutes) {
            *total.minutes.entry(m).or_default() += c;
        }
        merge_templates(&mut templates, &mut p, offset);
        last.extend(p.last.drain(..).map(|h| ScanMatch {
            line: h.line + offset,
            time: h.time.and_then(at),
            text: h.text,
        }));
        total.talkers.merge(p.talkers);
        offset += p.lines;
    }
    let keep = last.len().saturating_sub(o.last);
    last.drain(..keep);
    let (spikes, burst_start) = find_spikes(&total, span, o);
    let (templates, new_templates) = rank_templates(templates, span.1, o);
    LogReport {
        source: source.to_string(),
        pattern: o.pattern.clone(),
        lines: total.lines,
        bytes: total.bytes,
        matches: total.matches,
        from: span.0.and_then(at),
        to: span.1.and_then(at),
        last,
        top_field: o.top.clone(),
        top: total
            .talkers
            .top(o.top_n)
            .into_iter()
            .map(|(key, count)| Talker { key, count })
            .collect(),
        top_approximate: total.talkers.approximate,
        per_minute: total
            .minutes
            .iter()
            .filter_map(|(m, c)| {
                Some(Minute {
                    minute: at(*m)?,
                    count: *c,
                })
            })
            .collect(),
        spikes,
        burst_start,
        templates,
        new_templates,
        untimed_matches: total.untimed,
        long_lines: total.long_lines,
        templates_dropped: total.templates_dropped,
        numbered_from_cut: false,
    }
}

/// Spikes over the minutes from the first to the last time (31 days at most, the latest).
fn find_spikes(
    p: &Partial,
    span: (Option<i64>, Option<i64>),
    o: &ScanOptions,
) -> (Vec<Spike>, Option<DateTime<Utc>>) {
    let (Some(first), Some(last)) = (
        span.0.or(p.minutes.keys().next().copied()),
        span.1.or(p.minutes.keys().last().copied()),
    ) else {
        return (Vec::new(), None);
    };
    let (first, last) = (first.div_euclid(60) * 60, last.div_euclid(60) * 60);
    let first = first.max(last - 31 * 86_400);
    let n = ((last - first) / 60 + 1).max(0) as usize;
    let mut series = vec![0u64; n];
    for (m, c) in p.minutes.range(first..=last) {
        series[((m - first) / 60) as usize] += c;
    }
    let found: Vec<Spike> = spikes(&series, o.baseline_minutes, o.spike_z, o.spike_min)
        .into_iter()
        .filter_map(|s| {
            Some(Spike {
                minute: at(first + s.index as i64 * 60)?,
                count: series[s.index],
                baseline_median: s.median,
                z: s.z,
            })
        })
        .collect();
    let start = found.first().map(|s| s.minute);
    (found, start)
}

fn rank_templates(
    all: rustc_hash::FxHashMap<String, Seen>,
    end: Option<i64>,
    o: &ScanOptions,
) -> (Vec<Template>, Vec<Template>) {
    let recent_from = end.map(|e| e - o.recent.as_secs() as i64);
    let mut v: Vec<Template> = all
        .into_iter()
        .map(|(template, s)| Template {
            new: matches!((s.first_time, recent_from), (Some(t), Some(r)) if t >= r),
            template,
            count: s.count,
            first_line: s.first_line,
            first_seen: s.first_time.and_then(at),
            example: s.example,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
    let mut new: Vec<Template> = v.iter().filter(|t| t.new).cloned().collect();
    new.sort_by_key(|t| t.first_line);
    v.truncate(50);
    new.truncate(50);
    (v, new)
}

const BLOCK: usize = 4 << 20;

/// Read the next block of whole lines into a new buffer, keeping the rest of the last line in
/// `carry`; None at the end. A block with no line end is taken as it is (a line longer than
/// the block is cut, and counted by the caller).
fn next_block(
    r: &mut impl Read,
    carry: &mut Vec<u8>,
    eof: &mut bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = std::mem::take(carry);
    buf.reserve(BLOCK + 64 * 1024 - buf.len().min(BLOCK));
    while buf.len() < BLOCK && !*eof {
        let old = buf.len();
        buf.resize(old + 64 * 1024, 0);
        let n = r.read(&mut buf[old..])?;
        buf.truncate(old + n);
        *eof = n == 0;
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let end = match memchr::memrchr(b'\n', &buf) {
        Some(i) if !*eof => i + 1,
        _ => buf.len(),
    };
    *carry = buf.split_off(end);
    Ok(Some(buf))
}

fn scan_one(block: &[u8], o: &ScanOptions, c: &Compiled) -> std::io::Result<(Partial, Span)> {
    let (inside, before) = cut(block, o);
    let mut p = scan_block(inside, o, &c.matcher, c.field_re.as_ref())?;
    p.skip = before;
    if !block.ends_with(b"\n") && block.len() >= BLOCK {
        p.long_lines += 1;
    }
    Ok((p, span_of(inside, o.year)))
}

/// The first and last times of a block.
type Span = (Option<i64>, Option<i64>);

type Done = std::io::Result<(usize, Partial, Span)>;

/// Blocks of whole lines from a stream, scanned by one worker per core while the next blocks
/// are read (at most two blocks waiting per worker: memory stays flat).
pub(super) fn scan_stream(
    mut r: impl Read,
    source: &str,
    o: &ScanOptions,
    c: &Compiled,
) -> crate::error::Result<LogReport> {
    let workers = o.threads.clamp(1, 16);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(workers * 2);
    let rx = std::sync::Mutex::new(rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
    let read: std::io::Result<()> = std::thread::scope(|s| {
        for _ in 0..workers {
            let (rx, done_tx) = (&rx, done_tx.clone());
            s.spawn(move || {
                loop {
                    let job = rx.lock().map(|r| r.recv());
                    let Ok(Ok((i, block))) = job else { break };
                    let out = scan_one(&block, o, c).map(|(p, span)| (i, p, span));
                    if done_tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let (mut carry, mut eof, mut i) = (Vec::new(), false, 0);
        while let Some(block) = next_block(&mut r, &mut carry, &mut eof)? {
            if tx.send((i, block)).is_err() {
                break;
            }
            i += 1;
        }
        drop(tx);
        Ok(())
    });
    read.map_err(|e| io_error(source, e))?;
    let mut parts: Vec<(usize, Partial, Span)> = done_rx
        .into_iter()
        .collect::<std::io::Result<_>>()
        .map_err(|e| io_error(source, e))?;
    parts.sort_by_key(|p| p.0);
    let first = parts.iter().find_map(|p| p.2.0);
    let last = parts.iter().rev().find_map(|p| p.2.1);
    let parts = parts.into_iter().map(|p| p.1).collect();
    Ok(finish(source, parts, 0, (first, last), o))
}

impl LogReport {
    /// One line: `app.log: 1200 lines, 310 matches; burst from 10:07Z; 1 new template; top 10.0.0.66 (900)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} lines, {} matches",
            self.source, self.lines, self.matches
        );
        if let Some(b) = self.burst_start {
            s += &format!("; burst from {}", b.format("%Y-%m-%d %H:%MZ"));
        }
        if !self.new_templates.is_empty() {
            s += &format!("; {} new templates", self.new_templates.len());
        }
        if let Some(t) = self.top.first() {
            s += &format!("; top {} ({})", t.key, t.count);
        }
        s
    }
}
