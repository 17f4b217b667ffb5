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
    /// First seen in the recent window (the last `recent`, or from the burst when that is
    /// earlier): never in the baseline before it.
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

/// Folds the blocks into one result as they come, in order: memory holds one merged result,
/// not one per block.
pub(super) struct Merger<'o> {
    o: &'o ScanOptions,
    offset: u64,
    total: Partial,
    templates: rustc_hash::FxHashMap<String, Seen>,
    last: std::collections::VecDeque<ScanMatch>,
}

impl<'o> Merger<'o> {
    /// Nothing merged yet; `skipped` lines come before the first block.
    pub fn new(o: &'o ScanOptions, skipped: u64) -> Self {
        Merger {
            o,
            offset: skipped,
            total: Partial::new(o),
            templates: rustc_hash::FxHashMap::default(),
            last: std::collections::VecDeque::new(),
        }
    }

    /// The next block.
    pub fn push(&mut self, mut p: Partial) {
        self.offset += p.skip;
        let t = &mut self.total;
        t.lines += p.lines;
        t.bytes += p.bytes;
        t.matches += p.matches;
        t.untimed += p.untimed;
        t.long_lines += p.long_lines;
        t.templates_dropped += p.templates_dropped;
        for (m, c) in std::mem::take(&mut p.minutes) {
            *t.minutes.entry(m).or_default() += c;
        }
        merge_templates(&mut self.templates, &mut p, self.offset);
        let offset = self.offset;
        self.last.extend(p.last.drain(..).map(|h| ScanMatch {
            line: h.line + offset,
            time: h.time.and_then(at),
            text: h.text,
        }));
        while self.last.len() > self.o.last {
            self.last.pop_front();
        }
        t.talkers.merge(p.talkers);
        self.offset += p.lines;
    }

    /// The report.
    pub fn finish(self, source: &str, span: (Option<i64>, Option<i64>)) -> LogReport {
        let (o, total) = (self.o, self.total);
        let (spikes, burst_start) = find_spikes(&total, span, o);
        let (templates, new_templates) = rank_templates(
            self.templates,
            span.1,
            burst_start.map(|b| b.timestamp()),
            o,
        );
        LogReport {
            source: source.to_string(),
            pattern: o.pattern.clone(),
            lines: total.lines,
            bytes: total.bytes,
            matches: total.matches,
            from: span.0.and_then(at),
            to: span.1.and_then(at),
            last: self.last.into_iter().collect(),
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

/// Templates ranked by count; the new ones are those first seen in the recent window, which
/// starts `recent` before the end, or at the burst if that is earlier.
fn rank_templates(
    all: rustc_hash::FxHashMap<String, Seen>,
    end: Option<i64>,
    burst: Option<i64>,
    o: &ScanOptions,
) -> (Vec<Template>, Vec<Template>) {
    let recent_from = end
        .map(|e| e - o.recent.as_secs() as i64)
        .map(|r| burst.map_or(r, |b| b.min(r)));
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

/// Read the next block of whole lines into `buf` (a reused buffer: no fresh pages to fault
/// in for every block), keeping the rest of the last line in `carry`; None at the end. A block
/// with no line end is taken as it is (a line longer than the block is cut, and counted).
fn next_block(
    r: &mut impl Read,
    carry: &mut Vec<u8>,
    mut buf: Vec<u8>,
    eof: &mut bool,
) -> std::io::Result<Option<Vec<u8>>> {
    buf.clear();
    buf.extend_from_slice(carry);
    carry.clear();
    if buf.len() < BLOCK && !*eof {
        // `take(..).read_to_end` fills the buffer without zeroing it first.
        let want = (BLOCK - buf.len()) as u64;
        let n = r.by_ref().take(want).read_to_end(&mut buf)?;
        *eof = (n as u64) < want;
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let end = match memchr::memrchr(b'\n', &buf) {
        Some(i) if !*eof => i + 1,
        _ => buf.len(),
    };
    carry.extend_from_slice(&buf[end..]);
    buf.truncate(end);
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
    r: impl Read + Send,
    source: &str,
    o: &ScanOptions,
    c: &Compiled,
) -> crate::error::Result<LogReport> {
    let workers = o.threads.clamp(1, 16);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<u8>)>(workers);
    // Owned by the workers: when they are gone, the reader's send fails instead of blocking.
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Done>();
    // Scanned blocks' buffers go back to the reader: no fresh pages for every block.
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (rx, done_tx, free_tx) = (rx.clone(), done_tx.clone(), free_tx.clone());
            s.spawn(move || {
                loop {
                    let job = rx.lock().map(|r| r.recv());
                    let Ok(Ok((i, block))) = job else { break };
                    let out = scan_one(&block, o, c).map(|(p, span)| (i, p, span));
                    let _ = free_tx.send(block);
                    if done_tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        drop((free_tx, rx));
        let reader = s.spawn(move || read_blocks(r, tx, free_rx, done_tx));
        // Merged here while the others read and scan: one result in memory, not one per block.
        let merged = merge_in_order(done_rx, source, o);
        let _ = reader.join();
        merged
    })
}

/// Feed blocks to the workers; a read error ends the scan as the last result.
fn read_blocks(
    mut r: impl Read,
    tx: std::sync::mpsc::SyncSender<(usize, Vec<u8>)>,
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    done: std::sync::mpsc::Sender<Done>,
) {
    let (mut carry, mut eof, mut i) = (Vec::new(), false, 0);
    loop {
        let buf = free.try_recv().unwrap_or_default();
        match next_block(&mut r, &mut carry, buf, &mut eof) {
            Ok(Some(block)) => {
                if tx.send((i, block)).is_err() {
                    return;
                }
                i += 1;
            }
            Ok(None) => return,
            Err(e) => {
                let _ = done.send(Err(e));
                return;
            }
        }
    }
}

/// Merge the workers' results in block order as they arrive (early ones wait for their turn).
fn merge_in_order(
    done: std::sync::mpsc::Receiver<Done>,
    source: &str,
    o: &ScanOptions,
) -> crate::error::Result<LogReport> {
    let mut m = Merger::new(o, 0);
    let mut waiting = std::collections::BTreeMap::new();
    let (mut next, mut first, mut last) = (0usize, None, None);
    for d in done {
        let (i, p, span) = d.map_err(|e| io_error(source, e))?;
        waiting.insert(i, (p, span));
        while let Some((p, span)) = waiting.remove(&next) {
            first = first.or(span.0);
            last = span.1.or(last);
            m.push(p);
            next += 1;
        }
    }
    Ok(m.finish(source, (first, last)))
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
