//! Backup manifests: `<dataset>/<YYYYMMDD>/MANIFEST.jsonl`, written last, so a backup without
//! its manifest is incomplete by definition.
//!
//! JSON Lines so it can be read as a stream: a header line (dataset, date, source, count,
//! bytes), then one line per object in key order (`key`, `size`, `sha256`).

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup::{BackupStore, day_prefix};
use crate::error::{Error, ErrorKind, Result};

/// The manifest's file name inside a day's prefix.
pub const MANIFEST_NAME: &str = "MANIFEST.jsonl";

/// The key of a dataset's manifest for a day.
pub fn manifest_key(dataset: &str, date: chrono::NaiveDate) -> String {
    format!("{}{MANIFEST_NAME}", day_prefix(dataset, date))
}

/// First line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHeader {
    /// Format version (1).
    pub manifest_version: u32,
    /// Dataset.
    pub dataset: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// When the backup finished.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where the data came from (`web-1:/app/data/sessions`).
    pub source: String,
    /// Objects listed.
    pub count: u64,
    /// Total bytes.
    pub bytes: u64,
}

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Full key in the store.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Serialise a manifest (entries sorted by key).
pub fn render(header: &ManifestHeader, entries: &mut [ManifestEntry]) -> Bytes {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = serde_json::to_string(header).unwrap_or_default();
    out.push('\n');
    for e in entries.iter() {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    Bytes::from(out)
}

fn bad(key: &str, msg: String) -> Error {
    Error::new(ErrorKind::InvalidResponse, msg).with_context("key", key.to_string())
}

/// Read a manifest's header and a stream of its entries (one line at a time: memory stays flat
/// in the number of objects).
pub async fn open(
    store: &dyn BackupStore,
    key: &str,
) -> Result<(ManifestHeader, BoxStream<'static, Result<ManifestEntry>>)> {
    let body = store.get(key).await?;
    let mut lines = lines(body);
    let first = lines
        .next()
        .await
        .ok_or_else(|| bad(key, "manifest is empty".into()))??;
    let header: ManifestHeader = serde_json::from_slice(&first)
        .map_err(|e| bad(key, format!("manifest header is invalid: {e}")))?;
    let k = key.to_string();
    let entries = lines
        .enumerate()
        .map(move |(i, l)| {
            let l = l?;
            serde_json::from_slice::<ManifestEntry>(&l)
                .map_err(|e| bad(&k, format!("manifest line {} is invalid: {e}", i + 2)))
        })
        .boxed();
    Ok((header, entries))
}

/// Split a byte stream into lines (without the newline), skipping empty lines. A cursor walks
/// the buffer; consumed bytes are dropped only when a new chunk arrives (no per-line memmove).
pub fn lines(body: crate::backup::ByteStream) -> BoxStream<'static, Result<Vec<u8>>> {
    struct St {
        body: crate::backup::ByteStream,
        buf: Vec<u8>,
        pos: usize,
        eof: bool,
    }
    let st = St {
        body,
        buf: Vec::new(),
        pos: 0,
        eof: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(n) = st.buf[st.pos..].iter().position(|b| *b == b'\n') {
                let line = st.buf[st.pos..st.pos + n].to_vec();
                st.pos += n + 1;
                if line.is_empty() {
                    continue;
                }
                return Some((Ok(line), st));
            }
            if st.eof {
                if st.pos >= st.buf.len() {
                    return None;
                }
                let line = st.buf[st.pos..].to_vec();
                st.pos = st.buf.len();
                return Some((Ok(line), st));
            }
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.buf.drain(..st.pos);
                    st.pos = 0;
                    st.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => {
                    st.eof = true;
                    st.buf.clear();
                    st.pos = 0;
                    return Some((Err(e), st));
                }
                None => st.eof = true,
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_across_chunks() {
        let chunks: Vec<Result<Bytes>> = ["ab", "c\n\nde", "f\ng", ""]
            .into_iter()
            .map(|c| Ok(Bytes::from(c)))
            .collect();
        let body = futures::stream::iter(chunks).boxed();
        let got: Vec<Vec<u8>> = lines(body).map(|l| l.unwrap()).collect().await;
        assert_eq!(got, vec![b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]);
    }
}
