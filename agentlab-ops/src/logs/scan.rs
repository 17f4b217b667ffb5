//! One pass over a block of whole lines: the matches (grep-searcher with a grep-regex matcher,
//! the crates ripgrep is made of), the top talkers of every line, and, for each match, its
//! minute and its template. Blocks are independent, so a file is split into one block per core
//! and the partial results merged.

use std::collections::{BTreeMap, VecDeque};

use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use rustc_hash::FxHashMap;

use super::count::Capped;
use super::template::template_of;
use super::time::line_time;
use super::{Field, ScanOptions};

/// A matched line.
#[derive(Debug, Clone)]
pub(super) struct Hit {
    /// Line number within the block (1-based).
    pub line: u64,
    pub time: Option<i64>,
    pub text: String,
}

/// A template's first sight and count.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub count: u64,
    pub first_line: u64,
    pub first_time: Option<i64>,
    pub example: String,
}

/// What one block holds.
#[derive(Debug)]
pub(super) struct Partial {
    /// Lines before the block that the time range left out (for line numbers).
    pub skip: u64,
    pub lines: u64,
    pub bytes: u64,
    pub matches: u64,
    pub untimed: u64,
    pub last: VecDeque<Hit>,
    pub talkers: Capped,
    pub minutes: BTreeMap<i64, u64>,
    pub templates: FxHashMap<String, Seen>,
    pub templates_dropped: u64,
    pub long_lines: u64,
}

impl Partial {
    pub fn new(o: &ScanOptions) -> Self {
        Partial {
            skip: 0,
            lines: 0,
            bytes: 0,
            matches: 0,
            untimed: 0,
            last: VecDeque::new(),
            talkers: Capped::new(o.max_keys),
            minutes: BTreeMap::new(),
            templates: FxHashMap::default(),
            templates_dropped: 0,
            long_lines: 0,
        }
    }
}

/// The longest talker key kept, in bytes.
const MAX_KEY: usize = 256;

/// The longest line text kept in a report.
const MAX_TEXT: usize = 500;

fn text_of(line: &[u8]) -> String {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    String::from_utf8_lossy(&l[..l.len().min(MAX_TEXT)]).into_owned()
}

/// The key of a line for the top talkers.
fn key_of<'a>(line: &'a [u8], f: &Field, re: Option<&regex::bytes::Regex>) -> Option<&'a [u8]> {
    match f {
        Field::None => None,
        Field::Column(n) => column(line, *n),
        Field::Regex(_) => {
            let c = re?.captures(line)?;
            c.get(1).or_else(|| c.get(0)).map(|m| m.as_bytes())
        }
        Field::Json(key) => json_field(line, key),
    }
}

/// The n-th field (from 1) split on runs of spaces and tabs, as awk does.
fn column(line: &[u8], n: usize) -> Option<&[u8]> {
    let mut rest = line;
    for i in 1..=n {
        let skip = rest.iter().position(|c| *c != b' ' && *c != b'\t')?;
        rest = &rest[skip..];
        let end = memchr::memchr2(b' ', b'\t', rest).unwrap_or(rest.len());
        if i == n {
            let f = &rest[..end];
            return (!f.is_empty()).then_some(f.strip_suffix(b"\r").unwrap_or(f));
        }
        rest = &rest[end..];
    }
    None
}

/// `"key": value` in a JSON line, value without quotes; a plain scan, no full parse.
fn json_field<'a>(line: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let needle = format!("\"{key}\"");
    let at = memchr::memmem::find(line, needle.as_bytes())? + needle.len();
    let rest = line[at..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    if let Some(s) = rest.strip_prefix(b"\"") {
        let end = memchr::memchr(b'"', s)?;
        return Some(&s[..end]);
    }
    let end = rest
        .iter()
        .position(|c| matches!(c, b',' | b'}' | b' '))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Count every line's key, numbering the matches (line starts, in order) on the way; returns
/// the block's line count. One pass for both.
fn talkers(
    block: &[u8],
    o: &ScanOptions,
    re: Option<&regex::bytes::Regex>,
    p: &mut Partial,
    hits: &[(usize, usize)],
) -> u64 {
    let (mut start, mut n, mut h) = (0usize, 0u64, 0usize);
    for end in memchr::memchr_iter(b'\n', block).chain(std::iter::once(block.len())) {
        if start >= block.len() {
            break;
        }
        n += 1;
        while h < hits.len() && hits[h].0 <= start {
            record_hit(o, p, n, &block[hits[h].0..hits[h].1]);
            h += 1;
        }
        let line = &block[start..end];
        if end - start > o.max_line {
            p.long_lines += 1;
        }
        if let Some(k) = key_of(&line[..line.len().min(o.max_line)], &o.top, re) {
            p.talkers.add(&k[..k.len().min(MAX_KEY)], 1);
        }
        start = end + 1;
    }
    n
}

fn record_hit(o: &ScanOptions, p: &mut Partial, line_no: u64, line: &[u8]) {
    p.matches += 1;
    let time = line_time(line, o.year);
    match time {
        Some(t) => *p.minutes.entry(t.div_euclid(60) * 60).or_default() += 1,
        None => p.untimed += 1,
    }
    let tpl = template_of(&line[..line.len().min(o.max_line)]);
    if let Some(s) = p.templates.get_mut(&tpl) {
        s.count += 1;
    } else if p.templates.len() < o.max_templates {
        let seen = Seen {
            count: 1,
            first_line: line_no,
            first_time: time,
            example: text_of(line),
        };
        p.templates.insert(tpl, seen);
    } else {
        p.templates_dropped += 1;
    }
    if o.last > 0 {
        if p.last.len() == o.last {
            p.last.pop_front();
        }
        p.last.push_back(Hit {
            line: line_no,
            time,
            text: text_of(line),
        });
    }
}

/// Newlines in `b` (memchr's SIMD search: log lines are long enough for it to skip ahead).
fn newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Collects the matches' byte offsets and lines (line numbers come later, from one count).
struct Offsets<'a> {
    hits: &'a mut Vec<(usize, usize)>,
}

impl grep_searcher::Sink for Offsets<'_> {
    type Error = std::io::Error;
    fn matched(
        &mut self,
        _: &grep_searcher::Searcher,
        m: &grep_searcher::SinkMatch<'_>,
    ) -> Result<bool, std::io::Error> {
        let at = m.absolute_byte_offset() as usize;
        self.hits.push((at, at + m.bytes().len()));
        Ok(true)
    }
}

/// Scan one block of whole lines.
pub(super) fn scan_block(
    block: &[u8],
    o: &ScanOptions,
    matcher: &RegexMatcher,
    re: Option<&regex::bytes::Regex>,
) -> std::io::Result<Partial> {
    let mut p = Partial::new(o);
    p.bytes = block.len() as u64;
    let mut searcher = SearcherBuilder::new()
        .line_number(false)
        .binary_detection(BinaryDetection::none())
        // A log starting with \xff\xfe is bytes, not UTF-16: no transcoding.
        .bom_sniffing(false)
        .build();
    let mut hits = Vec::new();
    searcher.search_slice(matcher, block, Offsets { hits: &mut hits })?;
    if !matches!(o.top, Field::None) {
        p.lines = talkers(block, o, re, &mut p, &hits);
        return Ok(p);
    }
    // One count gives every match its line number and the block its line count.
    let (mut line, mut counted) = (1u64, 0usize);
    for (start, end) in hits {
        line += newlines(&block[counted..start]);
        counted = start;
        record_hit(o, &mut p, line, &block[start..end]);
    }
    p.lines = line - 1
        + newlines(&block[counted..])
        + u64::from(!block.is_empty() && !block.ends_with(b"\n"));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_look_like_a_bom_are_still_searched() {
        let o = ScanOptions::default();
        let c = super::super::compile(&o).unwrap();
        let p = scan_block(
            b"\xff\xfe ERROR \xc3\x28\nno time ERROR here\n",
            &o,
            &c.matcher,
            None,
        )
        .unwrap();
        assert_eq!((p.lines, p.matches, p.untimed), (2, 2, 2));
    }

    #[test]
    fn fields_are_found() {
        let l = b"10.0.0.1 - - [30/Nov/2026:18:00:00 +0000] \"GET / HTTP/1.1\" 200";
        assert_eq!(key_of(l, &Field::Column(1), None), Some(&b"10.0.0.1"[..]));
        assert_eq!(key_of(l, &Field::Column(9), None), Some(&b"200"[..]));
        assert_eq!(key_of(l, &Field::Column(99), None), None);
        let j = br#"{"ts":"x","user": "ann","status":500}"#;
        assert_eq!(json_field(j, "user"), Some(&b"ann"[..]));
        assert_eq!(json_field(j, "status"), Some(&b"500"[..]));
        assert_eq!(json_field(j, "nope"), None);
        let re = regex::bytes::Regex::new(r"user=(\w+)").unwrap();
        let f = Field::Regex("user=(\\w+)".into());
        assert_eq!(key_of(b"a user=bob b", &f, Some(&re)), Some(&b"bob"[..]));
    }
}
