//! A log on a host, scanned here without copying the whole file when it need not be: with
//! `since`, the start is found by bisection over the remote file (one `dd` of 64 KiB per step
//! over the multiplexed SSH session), then only the tail from there is sent, gzip-compressed on
//! the wire when the host has gzip, and decompressed as a stream while it is scanned. Memory
//! holds the compressed tail, never the whole log. The scan runs here, so nothing is installed
//! on the host; `resume_from` picks up where an earlier scan stopped (`bytes` of its report).

use std::io::Read;

use crate::error::{Error, Result};
use crate::host::{Cmd, RemoteHost};

use super::time::line_time;
use super::{LogReport, ScanOptions, report};

const WINDOW: u64 = 64 * 1024;

/// The time of the first whole line at or after `at` in the remote file.
async fn time_at(host: &dyn RemoteHost, path: &str, at: u64, year: u32) -> Result<Option<i64>> {
    let cmd = Cmd::new("dd").args([
        format!("if={path}"),
        format!("bs={WINDOW}"),
        format!("skip={at}"),
        "count=1".into(),
        "iflag=skip_bytes".into(),
        "status=none".into(),
    ]);
    let out = host.run(&cmd).await?.check(host.name(), &cmd)?;
    let mut lines = out.stdout.split('\n');
    if at > 0 {
        lines.next();
    }
    Ok(lines.find_map(|l| line_time(l.as_bytes(), year)))
}

/// An offset at or before the first line at or after `t`, within one window of it.
async fn start_of(host: &dyn RemoteHost, path: &str, size: u64, t: i64, year: u32) -> Result<u64> {
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > WINDOW {
        let mid = lo + (hi - lo) / 2;
        match time_at(host, path, mid, year).await? {
            Some(x) if x < t => lo = mid,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// What a remote scan read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The remote file's size.
    pub file_bytes: u64,
    /// Where the read started.
    pub offset: u64,
    /// Bytes that came over the wire.
    pub wire_bytes: u64,
    /// They were gzip.
    pub gzip: bool,
}

/// Scan `path` on `host` (from `resume_from`, or from `since` found by bisection).
pub async fn scan_host(
    host: &dyn RemoteHost,
    path: &str,
    o: &ScanOptions,
    resume_from: Option<u64>,
) -> Result<(LogReport, Transfer)> {
    let source = format!("{}:{path}", host.name());
    let size = host
        .file_size(path)
        .await
        .map_err(|e| e.with_context("log", source.clone()))?;
    let start = match (resume_from, o.since) {
        (Some(r), _) => r.min(size),
        (None, Some(t)) => start_of(host, path, size, t.timestamp(), o.year).await?,
        (None, None) => 0,
    };
    // One byte early, so that a start on a line boundary drops only the newline before it.
    let from = start.saturating_sub(1);
    let tail = host
        .read_tail(path, from)
        .await
        .map_err(|e| e.with_context("log", source.clone()))?;
    let transfer = Transfer {
        file_bytes: size,
        offset: start,
        wire_bytes: tail.data.len() as u64,
        gzip: tail.gzip,
    };
    let raw: Box<dyn Read + Send> = if tail.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
            tail.data,
        )))
    } else {
        Box::new(std::io::Cursor::new(tail.data))
    };
    let mut r = std::io::BufReader::with_capacity(1 << 16, raw);
    super::from_line_start(&mut r, start).map_err(|e| super::io_error(&source, e))?;
    let o2 = o.clone();
    let src = source.clone();
    let mut rep = tokio::task::spawn_blocking(move || {
        let c = super::compile(&o2)?;
        report::scan_stream(r, &src, &o2, &c)
    })
    .await
    .map_err(|e| Error::new(crate::error::ErrorKind::Unexpected, format!("scan: {e}")))??;
    rep.numbered_from_cut = start > 0;
    Ok((rep, transfer))
}
