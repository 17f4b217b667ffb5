//! A backup store in a local directory: key `a/b/c` is file `<root>/a/b/c`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::backup::{BackupStore, ByteStream, ObjectMeta, validate_key, validate_prefix};
use crate::error::{Error, ErrorKind, Result};

/// Backups in a directory tree.
#[derive(Debug, Clone)]
pub struct FsBackupStore {
    root: PathBuf,
}

impl FsBackupStore {
    /// A store rooted at `root` (which must exist and be a directory).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("backup directory {} does not exist", root.display()),
            )
            .with_operation("backup.build"));
        }
        Ok(FsBackupStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

fn io_err(e: std::io::Error, op: &'static str, key: &str) -> Error {
    Error::from(e)
        .with_operation(op)
        .with_context("key", key.to_string())
}

enum Pending {
    Dir(PathBuf, String),
    File(ObjectMeta),
}

fn meta_of(key: String, md: &std::fs::Metadata) -> ObjectMeta {
    ObjectMeta {
        key,
        size: md.len(),
        last_modified: md
            .modified()
            .ok()
            .map(chrono::DateTime::<chrono::Utc>::from),
    }
}

#[async_trait::async_trait]
impl BackupStore for FsBackupStore {
    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return stream::once(async move { Err(e.with_operation("backup.list")) }).boxed();
        }
        let prefix = prefix.to_string();
        // Start at the deepest directory the prefix names whole; filter by prefix below it.
        let start_key = match prefix.rfind('/') {
            Some(i) => prefix[..=i].to_string(),
            None => String::new(),
        };
        let start = (self.root.join(&start_key), start_key);
        let state = (vec![Pending::Dir(start.0, start.1)], prefix);
        stream::unfold(state, |(mut stack, prefix)| async move {
            loop {
                match stack.pop()? {
                    Pending::File(m) => return Some((Ok(m), (stack, prefix))),
                    Pending::Dir(dir, key_prefix) => {
                        let mut rd = match tokio::fs::read_dir(&dir).await {
                            Ok(rd) => rd,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => {
                                return Some((
                                    Err(io_err(e, "backup.list", &key_prefix)),
                                    (stack, prefix),
                                ));
                            }
                        };
                        let mut entries = Vec::new();
                        loop {
                            match rd.next_entry().await {
                                Ok(Some(ent)) => {
                                    let name = ent.file_name().to_string_lossy().into_owned();
                                    if name.starts_with(".tmp-") {
                                        continue; // an unfinished put
                                    }
                                    let key = format!("{key_prefix}{name}");
                                    let md = match tokio::fs::metadata(ent.path()).await {
                                        Ok(m) => m,
                                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                            continue;
                                        }
                                        Err(e) => {
                                            return Some((
                                                Err(io_err(e, "backup.list", &key)),
                                                (stack, prefix),
                                            ));
                                        }
                                    };
                                    if md.is_dir() {
                                        let k = format!("{key}/");
                                        // Descend only where keys can still match the prefix.
                                        if k.starts_with(&prefix) || prefix.starts_with(&k) {
                                            entries.push((k.clone(), Pending::Dir(ent.path(), k)));
                                        }
                                    } else if key.starts_with(&prefix) {
                                        entries
                                            .push((key.clone(), Pending::File(meta_of(key, &md))));
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    return Some((
                                        Err(io_err(e, "backup.list", &key_prefix)),
                                        (stack, prefix),
                                    ));
                                }
                            }
                        }
                        // Sorting directories as "name/" gives S3's key order.
                        entries.sort_by(|a, b| b.0.cmp(&a.0));
                        stack.extend(entries.into_iter().map(|(_, p)| p));
                    }
                }
            }
        })
        .boxed()
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        validate_key(key).map_err(|e| e.with_operation("backup.head"))?;
        let md = tokio::fs::metadata(self.path(key))
            .await
            .map_err(|e| io_err(e, "backup.head", key))?;
        if md.is_dir() {
            return Err(
                Error::new(ErrorKind::NotFound, "no such object (a directory)")
                    .with_operation("backup.head")
                    .with_context("key", key.to_string()),
            );
        }
        Ok(meta_of(key.to_string(), &md))
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        self.head(key)
            .await
            .map_err(|e| e.with_operation("backup.get"))?;
        let f = tokio::fs::File::open(self.path(key))
            .await
            .map_err(|e| io_err(e, "backup.get", key))?;
        let key = key.to_string();
        let s = tokio_util_like::reader_stream(f, 64 * 1024)
            .map(move |r| r.map_err(|e| io_err(e, "backup.get", &key)));
        Ok(s.boxed())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key).map_err(|e| e.with_operation("backup.put"))?;
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err(e, "backup.put", key))?;
        let tmp = dir.join(format!(".tmp-{}", crate::runbook::run::new_run_id()));
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&data).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_err(e, "backup.put", key));
        }
        Ok(())
    }
}

mod tokio_util_like {
    use bytes::Bytes;
    use futures::stream::{self, Stream};
    use tokio::io::AsyncReadExt;

    /// Read a file as a stream of chunks.
    pub fn reader_stream(
        f: tokio::fs::File,
        chunk: usize,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        stream::unfold(Some(f), move |f| async move {
            let mut f = f?;
            let mut buf = vec![0u8; chunk];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}
