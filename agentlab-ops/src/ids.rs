//! Identifiers: run ids (time plus a random suffix), unique even within one second.

use chrono::Utc;

/// A new unique run id: time plus a random suffix.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!(
        "{}-{:06x}",
        Utc::now().format("%Y%m%dT%H%M%S"),
        h.finish() & 0xff_ffff
    )
}
