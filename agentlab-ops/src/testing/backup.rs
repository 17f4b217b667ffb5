//! The `BackupStore` conformance suite.

use bytes::Bytes;
use futures::TryStreamExt;

use crate::backup::{BackupStore, BackupStoreExt};
use crate::error::{Error, ErrorKind, Result};

fn fail(check: &str, msg: String) -> Error {
    Error::new(ErrorKind::Unexpected, format!("conformance {check}: {msg}"))
}

async fn keys(store: &dyn BackupStore, prefix: &str) -> Result<Vec<String>> {
    store.list(prefix).map_ok(|m| m.key).try_collect().await
}

/// Put then get gives the same bytes, empty and binary objects included.
pub async fn put_get_roundtrip(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    for (name, data) in [
        ("empty.bin", Bytes::new()),
        ("text.json", Bytes::from_static(b"{\"a\":1}")),
        ("binary.bin", Bytes::from((0..=255u8).collect::<Vec<_>>())),
    ] {
        let key = format!("{prefix}rt/{name}");
        store.put(&key, data.clone()).await?;
        let got = store.get_bytes(&key).await?;
        if got != data {
            return Err(fail(
                "put_get_roundtrip",
                format!("{key}: {} bytes back, {} put", got.len(), data.len()),
            ));
        }
        let head = store.head(&key).await?;
        if head.size != data.len() as u64 || head.key != key {
            return Err(fail(
                "put_get_roundtrip",
                format!("head of {key} says {} bytes", head.size),
            ));
        }
    }
    Ok(())
}

/// A 3 MiB object round-trips through the streamed get.
pub async fn large_object_streams(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let key = format!("{prefix}large/blob.bin");
    store.put(&key, Bytes::from(data.clone())).await?;
    let mut stream = store.get(&key).await?;
    let mut got = Vec::with_capacity(data.len());
    while let Some(chunk) = stream.try_next().await? {
        got.extend_from_slice(&chunk);
    }
    if got != data {
        return Err(fail(
            "large_object_streams",
            format!("{} bytes back of {}", got.len(), data.len()),
        ));
    }
    Ok(())
}

/// Missing keys are `not_found`, with the key in the context.
pub async fn missing_is_not_found(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    let key = format!("{prefix}missing/nothing-here.json");
    for (op, r) in [
        ("head", store.head(&key).await.map(|_| ())),
        ("get", store.get(&key).await.map(|_| ())),
    ] {
        match r {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if !e
                    .context()
                    .iter()
                    .any(|(k, v)| *k == "key" && v.contains("nothing-here"))
                {
                    return Err(fail(
                        "missing_is_not_found",
                        format!("{op}: key not in context: {e}"),
                    ));
                }
            }
            Err(e) => {
                return Err(fail(
                    "missing_is_not_found",
                    format!("{op}: kind {} ({e})", e.kind()),
                ));
            }
            Ok(()) => {
                return Err(fail(
                    "missing_is_not_found",
                    format!("{op} of a missing key succeeded"),
                ));
            }
        }
    }
    Ok(())
}

/// Listing is by string prefix, complete, each key once, in ascending key order.
pub async fn list_prefix_in_order(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    let base = format!("{prefix}ls/");
    let names = ["a/1", "a/10", "a/2", "a.txt", "ab/x", "b/1", "a/deep/er/z"];
    for n in names {
        store
            .put(&format!("{base}{n}"), Bytes::from_static(b"x"))
            .await?;
    }
    let got = keys(store, &format!("{base}a/")).await?;
    let want: Vec<String> = ["a/1", "a/10", "a/2", "a/deep/er/z"]
        .iter()
        .map(|n| format!("{base}{n}"))
        .collect();
    if got != want {
        return Err(fail(
            "list_prefix_in_order",
            format!("list a/ gave {got:?}, want {want:?}"),
        ));
    }
    let got = keys(store, &format!("{base}a")).await?;
    let want: Vec<String> = ["a.txt", "a/1", "a/10", "a/2", "a/deep/er/z", "ab/x"]
        .iter()
        .map(|n| format!("{base}{n}"))
        .collect();
    if got != want {
        return Err(fail(
            "list_prefix_in_order",
            format!("list a gave {got:?}, want {want:?}"),
        ));
    }
    let all = keys(store, &base).await?;
    if all.len() != names.len() {
        return Err(fail(
            "list_prefix_in_order",
            format!("{} keys listed, {} put", all.len(), names.len()),
        ));
    }
    if !keys(store, &format!("{base}zzz/")).await?.is_empty() {
        return Err(fail(
            "list_prefix_in_order",
            "a prefix with no objects listed something".into(),
        ));
    }
    let sum = store.summarize(&format!("{base}a/")).await?;
    if sum.objects != 4 || sum.bytes != 4 {
        return Err(fail("list_prefix_in_order", format!("summary {sum:?}")));
    }
    Ok(())
}

/// A second put replaces the object.
pub async fn overwrite_replaces(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    let key = format!("{prefix}ow/file.txt");
    store.put(&key, Bytes::from_static(b"old contents")).await?;
    store.put(&key, Bytes::from_static(b"new")).await?;
    let got = store.get_bytes(&key).await?;
    if &got[..] != b"new" {
        return Err(fail("overwrite_replaces", format!("got {got:?}")));
    }
    let n = keys(store, &format!("{prefix}ow/")).await?.len();
    if n != 1 {
        return Err(fail(
            "overwrite_replaces",
            format!("{n} objects after overwrite"),
        ));
    }
    Ok(())
}

/// Invalid keys are `config_invalid` errors, never files outside the store.
pub async fn invalid_keys_rejected(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    for key in [
        "",
        "/etc/passwd",
        "a//b",
        "../escape",
        &format!("{prefix}x/../../escape"),
    ] {
        match store.put(key, Bytes::from_static(b"x")).await {
            Err(e) if e.kind() == ErrorKind::ConfigInvalid => {}
            Err(e) => {
                return Err(fail(
                    "invalid_keys_rejected",
                    format!("{key:?}: kind {}", e.kind()),
                ));
            }
            Ok(()) => {
                return Err(fail(
                    "invalid_keys_rejected",
                    format!("{key:?} was accepted"),
                ));
            }
        }
    }
    Ok(())
}

/// `head_batch`, `get_batch` and `count` agree with the single-object calls.
pub async fn batch_operations(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    let base = format!("{prefix}batch/");
    for (n, body) in [("a", "1"), ("b", "22"), ("c", "333")] {
        store.put(&format!("{base}{n}"), Bytes::from(body)).await?;
    }
    let keys: Vec<String> = ["a", "missing", "c"]
        .iter()
        .map(|n| format!("{base}{n}"))
        .collect();
    let heads = store.head_batch(&keys).await;
    let sizes: Vec<std::result::Result<u64, ErrorKind>> = heads
        .into_iter()
        .map(|h| h.map(|m| m.size).map_err(|e| e.kind()))
        .collect();
    if sizes != vec![Ok(1), Err(ErrorKind::NotFound), Ok(3)] {
        return Err(fail(
            "batch_operations",
            format!("head_batch gave {sizes:?}"),
        ));
    }
    let bodies: Vec<std::result::Result<Bytes, ErrorKind>> = store
        .get_batch(&keys)
        .await
        .into_iter()
        .map(|b| b.map_err(|e| e.kind()))
        .collect();
    if bodies
        != vec![
            Ok(Bytes::from("1")),
            Err(ErrorKind::NotFound),
            Ok(Bytes::from("333")),
        ]
    {
        return Err(fail(
            "batch_operations",
            format!("get_batch gave {bodies:?}"),
        ));
    }
    let n = store.count(&base).await?;
    if n != 3 {
        return Err(fail("batch_operations", format!("count gave {n}")));
    }
    Ok(())
}

/// Run every check; `prefix` isolates this run (empty or ending in `/`).
pub async fn backup_store_conformance(store: &dyn BackupStore, prefix: &str) -> Result<()> {
    put_get_roundtrip(store, prefix).await?;
    large_object_streams(store, prefix).await?;
    missing_is_not_found(store, prefix).await?;
    list_prefix_in_order(store, prefix).await?;
    overwrite_replaces(store, prefix).await?;
    invalid_keys_rejected(store, prefix).await?;
    batch_operations(store, prefix).await?;
    Ok(())
}
