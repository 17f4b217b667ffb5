//! Completeness: the manifest against the store, by a sorted merge or by lookups.

use futures::stream::{StreamExt, TryStreamExt};

use crate::backup::BackupStore;
use crate::backup::manifest::{self, ManifestEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::report::Severity;
use crate::runbook::run::Run;

/// Completeness as a merge of two sorted streams: the manifest and the store's listing (S3's
/// pages keep memory bounded). `only_unexpected`: report objects missing from the manifest only.
pub(super) async fn completeness_by_merge(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    only_unexpected: bool,
) -> Result<(u64, u64)> {
    let (_, mut entries) = manifest::open(store, mkey).await?;
    let mut listing = store
        .list(prefix)
        .try_filter(|m| futures::future::ready(!m.key.ends_with(manifest::MANIFEST_NAME)))
        .boxed();
    let (mut problems, mut count) = (0u64, 0u64);
    let mut e = entries.try_next().await?;
    let mut l = listing.try_next().await?;
    loop {
        match (&e, &l) {
            (None, None) => break,
            (Some(me), Some(lo)) if me.key == lo.key => {
                if me.size != lo.size && !only_unexpected {
                    problems += 1;
                    run.finding(
                        Severity::Critical,
                        me.key.clone(),
                        format!("size {} but the manifest says {}", lo.size, me.size),
                    );
                }
                count += 1;
                e = entries.try_next().await?;
                l = listing.try_next().await?;
            }
            (Some(me), lo) if lo.as_ref().is_none_or(|lo| me.key < lo.key) => {
                if !only_unexpected {
                    problems += 1;
                    run.finding(
                        Severity::Critical,
                        me.key.clone(),
                        "missing: listed in the manifest, absent from the store",
                    );
                }
                e = entries.try_next().await?;
            }
            (_, Some(lo)) => {
                problems += 1;
                run.finding(
                    Severity::Warning,
                    lo.key.clone(),
                    "unexpected: in the store, not in the manifest",
                );
                l = listing.try_next().await?;
            }
            (Some(_), None) => unreachable!("covered above"),
        }
    }
    Ok((problems, count))
}

/// Completeness by key lookups in manifest order (batched) plus a streamed count of the
/// prefix: memory stays flat for stores whose sorted listing would hold a whole directory.
/// Only when the count shows objects the manifest does not list is the listing merged, to
/// name them.
pub(super) async fn completeness_by_lookup(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    listed: Option<u64>,
) -> Result<(u64, u64)> {
    let (_, entries) = manifest::open(store, mkey).await?;
    let mut chunks = entries.try_chunks(LOOKUP_BATCH);
    let (mut problems, mut present) = (0u64, 0u64);
    while let Some(chunk) = chunks.try_next().await.map_err(|e| e.1)? {
        let keys: Vec<String> = chunk.iter().map(|e| e.key.clone()).collect();
        for (me, meta) in chunk.iter().zip(store.head_batch(&keys).await) {
            match entry_completeness(me, meta.as_ref().map(|m| m.size)) {
                None => {
                    return Err(meta
                        .err()
                        .unwrap_or_else(|| Error::new(ErrorKind::Unexpected, "lookup failed")));
                }
                Some(EntryState::Present) => present += 1,
                Some(EntryState::Problem { present: p, why }) => {
                    present += u64::from(p);
                    problems += 1;
                    run.finding(Severity::Critical, me.key.clone(), why);
                }
            }
        }
    }
    problems += unexpected_objects(run, store, mkey, prefix, listed, present).await?;
    Ok((problems, present))
}

/// Objects under the prefix the manifest does not list: counted (or the presence level's
/// count reused), and only when there are some, named by a merge with the listing.
pub(super) async fn unexpected_objects(
    run: &Run,
    store: &dyn BackupStore,
    mkey: &str,
    prefix: &str,
    listed: Option<u64>,
    present: u64,
) -> Result<u64> {
    let listed = match listed {
        Some(n) => n,
        None => store.count(prefix).await?,
    }
    .saturating_sub(1); // the manifest itself
    if listed > present {
        let (unexpected, _) = completeness_by_merge(run, store, mkey, prefix, true).await?;
        return Ok(unexpected);
    }
    Ok(0)
}

pub(super) enum EntryState {
    Present,
    Problem { present: bool, why: String },
}

/// One manifest entry against what the store says of it (its size, or why not); `None` when
/// the store could not answer (an error other than not-found).
pub(super) fn entry_completeness(
    me: &ManifestEntry,
    got: std::result::Result<u64, &Error>,
) -> Option<EntryState> {
    match got {
        Ok(size) if size == me.size => Some(EntryState::Present),
        Ok(size) => Some(EntryState::Problem {
            present: true,
            why: format!("size {size} but the manifest says {}", me.size),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Some(EntryState::Problem {
            present: false,
            why: "missing: listed in the manifest, absent from the store".into(),
        }),
        Err(_) => None,
    }
}

/// Completeness gathered from the integrity level's reads (when it reads every object).
#[derive(Default)]
pub(super) struct Tally {
    inner: std::sync::Mutex<TallyInner>,
}

#[derive(Default)]
pub(super) struct TallyInner {
    present: u64,
    problems: Vec<(String, String)>,
    error: Option<Error>,
}

impl Tally {
    pub(super) fn add(&self, me: &ManifestEntry, got: std::result::Result<u64, &Error>) {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match entry_completeness(me, got) {
            Some(EntryState::Present) => t.present += 1,
            Some(EntryState::Problem { present, why }) => {
                t.present += u64::from(present);
                t.problems.push((me.key.clone(), why));
            }
            None => {
                if let Err(e) = got {
                    t.error
                        .get_or_insert_with(|| Error::new(e.kind(), e.to_string()));
                }
            }
        }
    }

    pub(super) async fn finish(
        &self,
        run: &Run,
        store: &dyn BackupStore,
        mkey: &str,
        prefix: &str,
        listed: Option<u64>,
    ) -> Result<(u64, u64)> {
        let t = std::mem::take(&mut *self.inner.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(e) = t.error {
            return Err(e);
        }
        let mut problems = t.problems.len() as u64;
        for (key, why) in t.problems {
            run.finding(Severity::Critical, key, why);
        }
        problems += unexpected_objects(run, store, mkey, prefix, listed, t.present).await?;
        Ok((problems, t.present))
    }
}

/// Manifest entries looked up per batch.
pub(super) const LOOKUP_BATCH: usize = 256;

/// Objects per batch in the integrity level.
pub(super) const BATCH: usize = 64;
/// Objects up to this size are verified in batches (whole in memory).
pub(super) const BATCH_OBJECT_MAX: u64 = 1024 * 1024;
