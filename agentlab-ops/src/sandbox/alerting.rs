//! The sandbox answers Alertmanager's API v2 too (no alert firing, no silence), so its
//! morning check reviews alerts like a configured environment does.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/v2/alerts`.
pub(super) async fn alerts() -> Json<Value> {
    Json(json!([]))
}

/// `GET /api/v2/silences`.
pub(super) async fn silences() -> Json<Value> {
    Json(json!([]))
}
