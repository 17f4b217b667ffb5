//! The sandbox answers Alertmanager's API v2 too (no alert firing but in `incident`, no
//! silence), so its morning check reviews alerts like a configured environment does.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::Sim;

/// `GET /api/v2/alerts`.
pub(super) async fn alerts(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(super::incident::alerts(&sim))
}

/// `GET /api/v2/silences`.
pub(super) async fn silences() -> Json<Value> {
    Json(json!([]))
}
