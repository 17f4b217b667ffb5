//! Object keys of backup stores: relative, no empty, `.` or `..` segments, no NUL.

use crate::error::{Error, ErrorKind, Result};

/// Check a key: non-empty, relative, no empty or `.`/`..` segments, no NUL.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(
            Error::new(ErrorKind::ConfigInvalid, format!("invalid key: {why}"))
                .with_context("key", key.to_string()),
        )
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    if key.contains('\0') {
        return bad("contains NUL");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("empty, '.' or '..' segment");
    }
    Ok(())
}

/// Check a listing prefix: like a key, but may be empty or end with `/`.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    validate_key(prefix.strip_suffix('/').unwrap_or(prefix))
}
