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

/// Objects up to this size are read in one go.
const SMALL_OBJECT: u64 = 256 * 1024;

enum Pending {
    Dir(PathBuf, String),
    File(ObjectMeta),
}

impl Pending {
    fn key(&self) -> &str {
        match self {
            Pending::Dir(_, k) => k,
            Pending::File(m) => &m.key,
        }
    }
}

/// The entries of one directory that can match `prefix`, in S3 key order (directories sort as
/// `name/`). A missing directory is empty.
fn read_dir_sorted(dir: &Path, key_prefix: &str, prefix: &str) -> std::io::Result<Vec<Pending>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<Pending> = Vec::new();
    for ent in rd {
        let ent = ent?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            continue; // an unfinished put
        }
        let key = format!("{key_prefix}{name}");
        let is_dir = match ent.file_type() {
            Ok(t) if t.is_symlink() => std::fs::metadata(ent.path())
                .map(|m| m.is_dir())
                .unwrap_or(false),
            Ok(t) => t.is_dir(),
            Err(_) => continue,
        };
        if is_dir {
            let k = format!("{key}/");
            // Descend only where keys can still match the prefix.
            if k.starts_with(prefix) || prefix.starts_with(&k) {
                entries.push(Pending::Dir(ent.path(), k));
            }
        } else if key.starts_with(prefix) {
            // fstatat on the open directory: no path to build or resolve per entry.
            let md = match ent.metadata().and_then(|m| {
                if m.is_symlink() {
                    std::fs::metadata(ent.path())
                } else {
                    Ok(m)
                }
            }) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            entries.push(Pending::File(meta_of(key, &md)));
        }
    }
    entries.sort_unstable_by(|a, b| a.key().cmp(b.key()));
    Ok(entries)
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
                        // One blocking call per directory (read it and stat its entries), not
                        // one per file: listing is dominated by this on large directories.
                        let (kp, pf) = (key_prefix.clone(), prefix.clone());
                        let read =
                            tokio::task::spawn_blocking(move || read_dir_sorted(&dir, &kp, &pf))
                                .await;
                        let entries = match read {
                            Ok(Ok(e)) => e,
                            Ok(Err(e)) => {
                                return Some((
                                    Err(io_err(e, "backup.list", &key_prefix)),
                                    (stack, prefix),
                                ));
                            }
                            Err(e) => {
                                return Some((
                                    Err(Error::new(
                                        ErrorKind::Unexpected,
                                        format!("listing task failed: {e}"),
                                    )),
                                    (stack, prefix),
                                ));
                            }
                        };
                        stack.extend(entries.into_iter().rev());
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
        validate_key(key).map_err(|e| e.with_operation("backup.get"))?;
        let path = self.path(key);
        // Small objects (most backups are many small files) in one blocking call; large ones
        // streamed in 64 KiB chunks.
        let opened = tokio::task::spawn_blocking(
            move || -> std::io::Result<Result<Bytes, std::fs::File>> {
                use std::io::Read;
                let mut f = std::fs::File::open(&path)?;
                let md = f.metadata()?;
                if md.is_dir() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such object (a directory)",
                    ));
                }
                if md.len() <= SMALL_OBJECT {
                    let mut buf = Vec::with_capacity(md.len() as usize);
                    f.read_to_end(&mut buf)?;
                    Ok(Ok(Bytes::from(buf)))
                } else {
                    Ok(Err(f))
                }
            },
        )
        .await
        .map_err(|e| {
            Error::new(ErrorKind::Unexpected, format!("read task failed: {e}"))
                .with_operation("backup.get")
        })?
        .map_err(|e| io_err(e, "backup.get", key))?;
        match opened {
            Ok(bytes) => Ok(stream::once(async move { Ok(bytes) }).boxed()),
            Err(file) => {
                let key = key.to_string();
                let s = tokio_util_like::reader_stream(tokio::fs::File::from_std(file), 64 * 1024)
                    .map(move |r| r.map_err(|e| io_err(e, "backup.get", &key)));
                Ok(s.boxed())
            }
        }
    }

    fn prefers_key_lookups(&self) -> bool {
        true
    }

    async fn head_batch(&self, keys: &[String]) -> Vec<Result<ObjectMeta>> {
        let items: Vec<(String, Result<()>)> =
            keys.iter().map(|k| (k.clone(), validate_key(k))).collect();
        let (root, n) = (self.root.clone(), items.len());
        tokio::task::spawn_blocking(move || {
            let mut dirs = at::Dirs::new(root);
            items
                .into_iter()
                .map(|(k, valid)| {
                    valid.map_err(|e| e.with_operation("backup.head"))?;
                    match dirs.stat(&k) {
                        Ok(Some(st)) => Ok(ObjectMeta {
                            key: k,
                            size: st.size,
                            last_modified: st.modified,
                        }),
                        Ok(None) => Err(Error::new(
                            ErrorKind::NotFound,
                            "no such object (a directory)",
                        )
                        .with_operation("backup.head")
                        .with_context("key", k)),
                        Err(e) => Err(io_err(e, "backup.head", &k)),
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| task_failed(n, "stat", &e))
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        validate_prefix(prefix).map_err(|e| e.with_operation("backup.count"))?;
        let start_key = match prefix.rfind('/') {
            Some(i) => prefix[..=i].to_string(),
            None => String::new(),
        };
        let root = self.root.join(&start_key);
        let shown = prefix.to_string();
        let prefix = prefix.to_string();
        // Unsorted walk, nothing kept but a stack of directories: flat memory.
        tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            let mut n = 0u64;
            let mut stack = vec![(root, start_key)];
            while let Some((dir, kp)) = stack.pop() {
                let rd = match std::fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for ent in rd {
                    let ent = ent?;
                    let name = ent.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with(".tmp-") {
                        continue;
                    }
                    let key = format!("{kp}{name}");
                    let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    if is_dir {
                        let k = format!("{key}/");
                        if k.starts_with(&prefix) || prefix.starts_with(&k) {
                            stack.push((ent.path(), k));
                        }
                    } else if key.starts_with(&prefix) {
                        n += 1;
                    }
                }
            }
            Ok(n)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("count task failed: {e}")))?
        .map_err(|e| io_err(e, "backup.count", &shown))
    }

    async fn get_batch(&self, keys: &[String]) -> Vec<Result<Bytes>> {
        let items: Vec<(String, Result<()>)> =
            keys.iter().map(|k| (k.clone(), validate_key(k))).collect();
        let (root, n) = (self.root.clone(), items.len());
        // One blocking call for the batch; each object is opened relative to its (once opened)
        // directory and read into one reused buffer: no per-object path walk, stat or
        // oversized allocation.
        tokio::task::spawn_blocking(move || {
            let mut dirs = at::Dirs::new(root);
            let mut buf = Vec::new();
            items
                .into_iter()
                .map(|(k, valid)| {
                    valid.map_err(|e| e.with_operation("backup.get"))?;
                    match dirs.read(&k, &mut buf) {
                        Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(Error::new(
                            ErrorKind::NotFound,
                            "no such object (a directory)",
                        )
                        .with_operation("backup.get")
                        .with_context("key", k)),
                        Err(e) => Err(io_err(e, "backup.get", &k)),
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| task_failed(n, "read", &e))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key).map_err(|e| e.with_operation("backup.put"))?;
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err(e, "backup.put", key))?;
        let tmp = dir.join(format!(".tmp-{}", crate::ids::new_run_id()));
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

    async fn put_new(&self, key: &str, data: Bytes) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        validate_key(key).map_err(|e| e.with_operation("backup.put_new"))?;
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err(e, "backup.put_new", key))?;
        let tmp = dir.join(format!(".tmp-{}", crate::ids::new_run_id()));
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&data).await?;
            f.sync_all().await?;
            tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444)).await?;
            // link(2) fails when the name exists: no check-then-write race.
            tokio::fs::hard_link(&tmp, &path).await
        };
        let r = write.await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{key} exists in {}: it is never overwritten",
                    self.describe()
                ),
            )
            .with_context("key", key.to_string())),
            Err(e) => Err(io_err(e, "backup.put_new", key)),
        }
    }
}

fn task_failed<T>(n: usize, what: &str, e: &tokio::task::JoinError) -> Vec<Result<T>> {
    (0..n)
        .map(|_| {
            Err(Error::new(
                ErrorKind::Unexpected,
                format!("{what} task failed: {e}"),
            ))
        })
        .collect()
}

/// Batched access by key: each key's directory is opened once (consecutive keys of a batch
/// share it) and the object is opened or stat'ed relative to it.
mod at {
    use std::io::Read;
    use std::path::PathBuf;

    /// What a stat says about an object: `None` for a directory.
    pub struct Stat {
        pub size: u64,
        pub modified: Option<chrono::DateTime<chrono::Utc>>,
    }

    pub struct Dirs {
        root: PathBuf,
        #[cfg(unix)]
        current: Option<(String, std::io::Result<std::os::fd::OwnedFd>)>,
    }

    fn split(key: &str) -> (&str, &str) {
        match key.rfind('/') {
            Some(i) => (&key[..i], &key[i + 1..]),
            None => ("", key),
        }
    }

    impl Dirs {
        pub fn new(root: PathBuf) -> Self {
            Dirs {
                root,
                #[cfg(unix)]
                current: None,
            }
        }

        #[cfg(unix)]
        fn dir(&mut self, parent: &str) -> std::io::Result<&std::os::fd::OwnedFd> {
            use rustix::fs::{Mode, OFlags};
            if self.current.as_ref().map(|(p, _)| p.as_str()) != Some(parent) {
                let path = self.root.join(parent);
                // O_PATH where there is one: no read permission needed, nothing read.
                #[cfg(any(target_os = "linux", target_os = "android"))]
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let fd =
                    rustix::fs::open(&path, flags, Mode::empty()).map_err(std::io::Error::from);
                self.current = Some((parent.to_string(), fd));
            }
            match self.current.as_ref().map(|(_, fd)| fd) {
                Some(Ok(fd)) => Ok(fd),
                Some(Err(e)) => Err(std::io::Error::new(e.kind(), e.to_string())),
                None => Err(std::io::ErrorKind::NotFound.into()),
            }
        }

        /// Read the whole object into the start of `buf` (grown as needed, never shrunk, so
        /// it is zeroed once) and return its length. A plain read loop: `read_to_end` on a file
        /// costs a statx and an lseek per object to size its buffer.
        pub fn read(&mut self, key: &str, buf: &mut Vec<u8>) -> std::io::Result<usize> {
            let mut f = self.open(key)?;
            let mut filled = 0;
            loop {
                if filled == buf.len() {
                    let grow = buf.len().max(64 * 1024);
                    buf.resize(buf.len() + grow, 0);
                }
                match f.read(&mut buf[filled..]) {
                    Ok(0) => return Ok(filled),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }

        #[cfg(unix)]
        fn open(&mut self, key: &str) -> std::io::Result<std::fs::File> {
            use rustix::fs::{Mode, OFlags};
            let (parent, name) = split(key);
            let dir = self.dir(parent)?;
            let fd =
                rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
            Ok(std::fs::File::from(fd))
        }

        #[cfg(not(unix))]
        fn open(&mut self, key: &str) -> std::io::Result<std::fs::File> {
            std::fs::File::open(self.root.join(key))
        }

        #[cfg(unix)]
        pub fn stat(&mut self, key: &str) -> std::io::Result<Option<Stat>> {
            use rustix::fs::{AtFlags, FileType};
            let (parent, name) = split(key);
            let dir = self.dir(parent)?;
            let st = rustix::fs::statat(dir, name, AtFlags::empty())?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Ok(None);
            }
            Ok(Some(Stat {
                size: st.st_size as u64,
                modified: chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32),
            }))
        }

        #[cfg(not(unix))]
        pub fn stat(&mut self, key: &str) -> std::io::Result<Option<Stat>> {
            let m = std::fs::metadata(self.root.join(key))?;
            if !m.is_file() {
                return Ok(None);
            }
            Ok(Some(Stat {
                size: m.len(),
                modified: m.modified().ok().map(chrono::DateTime::from),
            }))
        }
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
