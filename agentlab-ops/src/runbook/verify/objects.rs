//! One object's size, checksum and format, read into memory or streamed.

use futures::stream::StreamExt;
use sha2::{Digest, Sha256};

use crate::backup::BackupStore;
use crate::backup::manifest::{self, ManifestEntry, sha256_hex};
use crate::config::DataFormat;
use crate::error::ErrorKind;
use crate::runbook::backup::validate_format;

/// Size, checksum and format of an object held in memory.
pub(super) fn check_bytes(
    e: &ManifestEntry,
    format: DataFormat,
    data: &[u8],
) -> std::result::Result<(), String> {
    if data.len() as u64 != e.size {
        return Err(format!(
            "size {} but the manifest says {} (truncated?)",
            data.len(),
            e.size
        ));
    }
    let got = sha256_hex(data);
    if got != e.sha256 {
        return Err(format!("SHA-256 mismatch: {got}, manifest {}", e.sha256));
    }
    validate_format(format, data)
}

/// Read one object (streamed into the hasher), check size, checksum and format; optionally
/// write it into `scratch` and validate the restored copy.
pub(super) async fn check_object(
    store: &dyn BackupStore,
    e: &ManifestEntry,
    format: DataFormat,
    scratch: Option<&std::path::Path>,
) -> std::result::Result<(), Option<String>> {
    let mut body = match store.get(&e.key).await {
        Ok(b) => b,
        Err(err) if err.kind() == ErrorKind::NotFound => return Err(None),
        Err(err) => return Err(Some(format!("cannot read: {err}"))),
    };
    check_body(&mut body, e, format, scratch)
        .await
        .map_err(Some)
}

pub(super) async fn check_body(
    body: &mut crate::backup::ByteStream,
    e: &ManifestEntry,
    format: DataFormat,
    scratch: Option<&std::path::Path>,
) -> std::result::Result<(), String> {
    let mut hasher = Sha256::new();
    let keep = format != DataFormat::Any || scratch.is_some();
    let mut data = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| format!("reading failed: {err}"))?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if keep {
            data.extend_from_slice(&chunk);
        }
    }
    if size != e.size {
        return Err(format!(
            "size {size} but the manifest says {} (truncated?)",
            e.size
        ));
    }
    let got = manifest::hex(&hasher.finalize());
    if got != e.sha256 {
        return Err(format!("SHA-256 mismatch: {got}, manifest {}", e.sha256));
    }
    validate_format(format, &data)?;
    if let Some(dir) = scratch {
        let path = dir.join(e.key.replace('/', "__"));
        tokio::fs::write(&path, &data)
            .await
            .map_err(|err| format!("restore test: cannot write: {err}"))?;
        let back = tokio::fs::read(&path)
            .await
            .map_err(|err| format!("restore test: cannot read back: {err}"))?;
        if sha256_hex(&back) != e.sha256 {
            return Err("restore test: the restored copy differs".into());
        }
        validate_format(format, &back).map_err(|m| format!("restore test: {m}"))?;
    }
    Ok(())
}
