//! An in-memory probe: canned answers per path, recorded calls, injected faults.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::double::{CallLog, Faults};
use crate::error::{Error, ErrorKind, Result};
use crate::probe::{HealthProbe, ProbeResponse};

/// A probe that answers from a table. Unknown paths answer 404.
#[derive(Debug, Clone, Default)]
pub struct MemoryProbe {
    answers: Arc<Mutex<HashMap<String, (u16, String)>>>,
    /// Paths asked, in order.
    pub calls: CallLog<String>,
    /// Inject failures and delays.
    pub faults: Faults,
}

impl MemoryProbe {
    /// An empty probe.
    pub fn new() -> Self {
        Self::default()
    }
    /// Answer `path` with `status` and `body`.
    pub fn respond(&self, path: &str, status: u16, body: impl Into<String>) -> &Self {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), (status, body.into()));
        self
    }
    /// Answer `path` with 200 and this JSON.
    pub fn respond_json(&self, path: &str, body: serde_json::Value) -> &Self {
        self.respond(path, 200, body.to_string())
    }
}

#[async_trait::async_trait]
impl HealthProbe for MemoryProbe {
    async fn get(&self, path: &str) -> Result<ProbeResponse> {
        self.calls.push(path.to_string());
        self.faults.apply("probe.get").await?;
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
            .cloned();
        let (status, body) = answer.unwrap_or((404, "not found".into()));
        if status >= 500 {
            return Err(Error::new(ErrorKind::Unavailable, format!("HTTP {status}"))
                .with_operation("probe.get")
                .with_context("url", format!("memory:{path}"))
                .with_context("status", status.to_string()));
        }
        Ok(ProbeResponse {
            url: format!("memory:{path}"),
            status,
            latency: Duration::from_millis(1),
            body,
            attempts: 1,
        })
    }
}
