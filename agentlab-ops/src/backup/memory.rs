//! An in-memory backup store that records calls and can be told to fail.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};

use crate::backup::{BackupStore, ByteStream, ObjectMeta, validate_key, validate_prefix};
use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};

/// A call made to the memory store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCall {
    /// `list(prefix)`.
    List(String),
    /// `head(key)`.
    Head(String),
    /// `get(key)`.
    Get(String),
    /// `put(key, len)`.
    Put(String, usize),
}

type Objects = BTreeMap<String, (Bytes, DateTime<Utc>)>;

/// Backups in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackupStore {
    objects: Arc<Mutex<Objects>>,
    /// Calls made.
    pub calls: CallLog<StoreCall>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryBackupStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn objects(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Insert without recording a call (test setup).
    pub fn insert(&self, key: &str, data: impl Into<Bytes>) {
        self.objects()
            .insert(key.to_string(), (data.into(), Utc::now()));
    }
    /// Remove an object (test setup).
    pub fn remove(&self, key: &str) -> bool {
        self.objects().remove(key).is_some()
    }
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects().len()
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn not_found(op: &'static str, key: &str) -> Error {
    Error::new(ErrorKind::NotFound, "no such object")
        .with_operation(op)
        .with_context("key", key.to_string())
}

#[async_trait::async_trait]
impl BackupStore for MemoryBackupStore {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>> {
        self.calls.push(StoreCall::List(prefix.to_string()));
        let faults = self.faults.clone();
        let objects = self.objects.clone();
        let prefix = prefix.to_string();
        stream::once(async move {
            validate_prefix(&prefix).map_err(|e| e.with_operation("backup.list"))?;
            faults.apply("backup.list").await?;
            let snapshot: Vec<ObjectMeta> = objects
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, (b, t))| ObjectMeta {
                    key: k.clone(),
                    size: b.len() as u64,
                    last_modified: Some(*t),
                })
                .collect();
            Ok::<_, Error>(stream::iter(snapshot.into_iter().map(Ok)))
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.calls.push(StoreCall::Head(key.to_string()));
        validate_key(key).map_err(|e| e.with_operation("backup.head"))?;
        self.faults.apply("backup.head").await?;
        self.objects()
            .get(key)
            .map(|(b, t)| ObjectMeta {
                key: key.to_string(),
                size: b.len() as u64,
                last_modified: Some(*t),
            })
            .ok_or_else(|| not_found("backup.head", key))
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        self.calls.push(StoreCall::Get(key.to_string()));
        validate_key(key).map_err(|e| e.with_operation("backup.get"))?;
        self.faults.apply("backup.get").await?;
        let b = self
            .objects()
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| not_found("backup.get", key))?;
        Ok(stream::once(async move { Ok(b) }).boxed())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.calls.push(StoreCall::Put(key.to_string(), data.len()));
        validate_key(key).map_err(|e| e.with_operation("backup.put"))?;
        self.faults.apply("backup.put").await?;
        self.objects().insert(key.to_string(), (data, Utc::now()));
        Ok(())
    }
}
