//! `BackupStore`: where nightly backups live (filesystem and memory here; S3 next).
//!
//! Keys are `/`-separated (`sessions/20261129/abc.json`); listing is by plain string prefix
//! and streamed in key order, so memory stays flat in the number of objects.

mod fs;
pub mod manifest;
mod memory;
#[cfg(feature = "s3")]
mod s3;

pub use fs::FsBackupStore;
pub use memory::{MemoryBackupStore, StoreCall};
#[cfg(feature = "s3")]
pub use s3::{S3BackupStore, S3Options, map_sdk_error};

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, when the store knows it.
    pub last_modified: Option<DateTime<Utc>>,
}

/// A stream of object bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// A place backups are kept.
///
/// Contract (checked by the conformance suite in [`crate::testing`]): `list` yields every
/// object whose key starts with `prefix`, each once, in ascending key order; `head` and `get`
/// of a missing key fail with kind `not_found` and the key in the context; `put` replaces an
/// object atomically (a reader sees the old or the new bytes, never a mix); invalid keys (empty,
/// absolute, with `..` or empty segments) fail with `config_invalid`.
#[async_trait::async_trait]
pub trait BackupStore: Send + Sync + Debug {
    /// Human description (`fs:/var/backups`), no secrets.
    fn describe(&self) -> String;
    /// Objects under a prefix, in key order.
    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>>;
    /// Metadata of one object.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;
    /// Bytes of one object, streamed.
    async fn get(&self, key: &str) -> Result<ByteStream>;
    /// Store an object.
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;
    /// Store an object that must not exist yet (evidence is never overwritten): `conflict`
    /// when it does. This default looks first; the filesystem store links the new file into
    /// place, which fails atomically when the name is taken, and leaves it read-only.
    async fn put_new(&self, key: &str, data: Bytes) -> Result<()> {
        match self.head(key).await {
            Ok(_) => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{key} exists in {}: it is never overwritten",
                    self.describe()
                ),
            )
            .with_context("key", key.to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => self.put(key, data).await,
            Err(e) => Err(e),
        }
    }
    /// Metadata of several objects, in the order asked (one result per key).
    async fn head_batch(&self, keys: &[String]) -> Vec<Result<ObjectMeta>> {
        futures::future::join_all(keys.iter().map(|k| self.head(k))).await
    }
    /// Number of objects under a prefix.
    async fn count(&self, prefix: &str) -> Result<u64> {
        self.list(prefix)
            .try_fold(0u64, |n, _| async move { Ok(n + 1) })
            .await
    }
    /// True when a sorted listing must hold a whole directory in memory (local filesystems):
    /// verification then checks manifests by key lookups and a count instead.
    fn prefers_key_lookups(&self) -> bool {
        false
    }
    /// Several small objects, whole, in the order asked (one result per key). Backends with a
    /// cheaper bulk path override it (the filesystem store reads a batch in one blocking call).
    async fn get_batch(&self, keys: &[String]) -> Vec<Result<Bytes>> {
        futures::future::join_all(keys.iter().map(|k| async move {
            let mut s = self.get(k).await?;
            let mut out = bytes::BytesMut::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk?);
            }
            Ok(out.freeze())
        }))
        .await
    }
}

#[async_trait::async_trait]
impl<T: BackupStore + ?Sized> BackupStore for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>> {
        (**self).list(prefix)
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        (**self).head(key).await
    }
    async fn get(&self, key: &str) -> Result<ByteStream> {
        (**self).get(key).await
    }
    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        (**self).put(key, data).await
    }
    async fn put_new(&self, key: &str, data: Bytes) -> Result<()> {
        (**self).put_new(key, data).await
    }
    async fn get_batch(&self, keys: &[String]) -> Vec<Result<Bytes>> {
        (**self).get_batch(keys).await
    }
    async fn head_batch(&self, keys: &[String]) -> Vec<Result<ObjectMeta>> {
        (**self).head_batch(keys).await
    }
    async fn count(&self, prefix: &str) -> Result<u64> {
        (**self).count(prefix).await
    }
    fn prefers_key_lookups(&self) -> bool {
        (**self).prefers_key_lookups()
    }
}

/// Conveniences over any [`BackupStore`].
#[async_trait::async_trait]
pub trait BackupStoreExt: BackupStore {
    /// The whole object in memory.
    async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        let mut s = self.get(key).await?;
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }
    /// Count and total size under a prefix.
    async fn summarize(&self, prefix: &str) -> Result<PrefixSummary> {
        self.list(prefix)
            .try_fold(PrefixSummary::default(), |mut acc, m| async move {
                acc.objects += 1;
                acc.bytes += m.size;
                Ok(acc)
            })
            .await
    }
}

impl<T: BackupStore + ?Sized> BackupStoreExt for T {}

/// Count and size of a prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixSummary {
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

pub use crate::keys::{validate_key, validate_prefix};

/// The store `[backups]` describes (None without the section).
pub async fn from_config(
    b: Option<&crate::config::BackupsConfig>,
) -> Result<Option<Arc<dyn BackupStore>>> {
    use crate::config::StoreKind;
    let Some(b) = b else { return Ok(None) };
    Ok(Some(match b.store {
        StoreKind::Fs => {
            let path = b.path.clone().ok_or_else(|| {
                crate::error::Error::config("backups.path: required when store = \"fs\"")
            })?;
            Arc::new(FsBackupStore::new(path)?)
        }
        StoreKind::Memory => Arc::new(MemoryBackupStore::new()),
        #[cfg(feature = "s3")]
        StoreKind::S3 => Arc::new(S3BackupStore::connect(S3Options::from_config(b)?).await?),
        #[cfg(not(feature = "s3"))]
        StoreKind::S3 => {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::Unsupported,
                "backups: built without the \"s3\" feature",
            ));
        }
    }))
}

/// The key prefix of a dataset's backup for a day: `sessions/20261129/`.
pub fn day_prefix(dataset: &str, date: chrono::NaiveDate) -> String {
    format!("{dataset}/{}/", date.format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn keys() {
        assert!(validate_key("sessions/20261129/a.json").is_ok());
        for k in ["", "/abs", "a//b", "a/../b", "a/./b", "a/"] {
            assert_eq!(
                validate_key(k).unwrap_err().kind(),
                ErrorKind::ConfigInvalid,
                "{k}"
            );
        }
        assert!(validate_prefix("sessions/").is_ok());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("../").is_err());
    }
}
