//! The seeded sample of a day's objects, chosen while streaming the manifest.

use super::*;

use std::collections::BinaryHeap;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::backup::BackupStore;
use crate::backup::manifest::{self, ManifestEntry};
use crate::config::Sample;
use crate::error::Result;

/// Pick the sample from the manifest, streaming: every entry, or those whose seeded rank falls
/// under the fraction (memory stays flat in the number of objects); for a count, the `n`
/// lowest ranks kept in a heap. Same seed, same sample. Also returns how many to expect.
pub(super) async fn choose_sample(
    store: &dyn BackupStore,
    mkey: &str,
    total: u64,
    sample: Sample,
    sample_min: u64,
    seed: u64,
) -> Result<(
    futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    u64,
)> {
    let (_, entries) = manifest::open(store, mkey).await?;
    Ok(match sample {
        Sample::All => (entries, total),
        Sample::Fraction(f) if f <= 0.0 || total == 0 => (stream::empty().boxed(), 0),
        // A fraction of a small dataset is a count, rounded up and at least `sample_min` (all
        // of a smaller dataset): one object at the very least whenever there are objects.
        Sample::Fraction(f) if f < 1.0 && ((total as f64) * f).ceil() <= SAMPLE_HEAP_MAX as f64 => {
            let k = (((total as f64) * f).ceil() as u64)
                .max(sample_min.min(total))
                .max(1);
            if k >= total {
                (entries, total)
            } else {
                lowest_ranks(entries, k, seed).await?
            }
        }
        Sample::Fraction(f) => {
            let limit = (f * u64::MAX as f64) as u64;
            let s = entries
                .try_filter(move |e| futures::future::ready(f >= 1.0 || rank(seed, &e.key) < limit))
                .boxed();
            (s, (total as f64 * f).round() as u64)
        }
        Sample::Count(n) => lowest_ranks(entries, n.min(total), seed).await?,
    })
}

/// Above this many sampled objects a fraction is streamed (a filter on the seeded rank, flat
/// memory) rather than chosen exactly in a heap.
pub(super) const SAMPLE_HEAP_MAX: u64 = 10_000;

/// What a sampled object that is not in the store reports (the completeness level's finding).
pub(super) const ABSENT: &str = "\u{0}absent";

/// The `n` entries of lowest seeded rank, kept in a heap; in key order.
pub(super) async fn lowest_ranks(
    mut entries: futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    n: u64,
    seed: u64,
) -> Result<(
    futures::stream::BoxStream<'static, Result<ManifestEntry>>,
    u64,
)> {
    let n = n as usize;
    let mut heap: BinaryHeap<(u64, String, u64, String)> = BinaryHeap::new();
    while let Some(e) = entries.try_next().await? {
        heap.push((rank(seed, &e.key), e.key, e.size, e.sha256));
        if heap.len() > n {
            heap.pop();
        }
    }
    let mut out: Vec<ManifestEntry> = heap
        .into_iter()
        .map(|(_, key, size, sha256)| ManifestEntry { key, size, sha256 })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    let len = out.len() as u64;
    Ok((stream::iter(out.into_iter().map(Ok)).boxed(), len))
}
