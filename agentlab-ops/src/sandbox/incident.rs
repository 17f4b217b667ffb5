//! The `incident` scenario: an hour of service log on each host with an incident planted 20
//! minutes ago on web-1 (an error burst, a new exception, one client flooding), a deploy in
//! the sandbox's own journal 7 minutes before it, an alert firing 3 minutes after it, the
//! OpenRouter dependency answering 503, and the team's known issue for that exception.
//! Every scenario serves `/metrics` and the dependency; only this one breaks them.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Scenario, Sim};
use crate::config::{BaseUrl, Config, DependencyCheck, KnownIssue};
use crate::error::{Error, Result};
use crate::testing::{LogFixture, write_log};

/// Minutes of log before now.
const MINUTES: u32 = 60;
/// The incident starts this many minutes before now.
pub(super) const INCIDENT_AGO: i64 = 20;

/// The start of the incident: a whole minute, `INCIDENT_AGO` minutes before `now`.
pub(super) fn incident_at(now: DateTime<Utc>) -> DateTime<Utc> {
    let t = now.timestamp() / 60 * 60 - INCIDENT_AGO * 60;
    DateTime::from_timestamp(t, 0).unwrap_or(now)
}

/// Logs, journal, dependency and known issue of every scenario (broken in `incident` only).
pub(super) fn install(dir: &Path, cfg: &mut Config, base: &str, sim: &Sim) -> Result<()> {
    let logs = dir.join("logs");
    for (i, h) in cfg.hosts.iter().enumerate() {
        let d = logs.join(&h.name);
        std::fs::create_dir_all(&d)?;
        let incident = (sim.scenario == Scenario::Incident && i == 0).then_some(MINUTES - 20);
        let fixture = LogFixture {
            start: sim.incident.timestamp() - i64::from(MINUTES - 20) * 60,
            minutes: MINUTES,
            lines_per_minute: 60,
            incident_minute: incident,
        };
        let mut w = std::io::BufWriter::new(std::fs::File::create(d.join("app.log"))?);
        write_log(&mut w, fixture)?;
    }
    let inv = &mut cfg.investigation;
    inv.log_file = logs.join("{host}").join("app.log").display().to_string();
    let url =
        BaseUrl::parse(&format!("{base}/deps/openrouter/api/v1/models")).map_err(Error::config)?;
    inv.dependencies = vec![DependencyCheck::new("openrouter", url)];
    let mut k = KnownIssue::new(
        "session-id-keyerror",
        Some(r"KeyError: 'session_id'"),
        "release 1.5.0 writes runs without a session id: roll back to the previous release",
    );
    k.runbook = Some("deploy_rollback".into());
    k.runbook_options = json!({"reason": "known issue session-id-keyerror"});
    inv.known_issues = vec![k];
    if sim.scenario == Scenario::Incident {
        let journal = dir.join("journal.jsonl");
        seed_journal(&journal, &cfg.environment, sim.incident)?;
        cfg.journal.path = Some(journal);
    }
    Ok(())
}

/// The deploy of 1.5.0, 7 minutes before the incident, as the deploy runbook journals it.
fn seed_journal(path: &Path, environment: &str, incident: DateTime<Utc>) -> Result<()> {
    let r = crate::report::Report {
        runbook: "deploy_standard".into(),
        environment: environment.into(),
        run_id: "sandbox-deploy-150".into(),
        started_at: incident - chrono::Duration::minutes(7),
        duration_ms: 95_000,
        dry_run: false,
        verdict: crate::report::Verdict::Healthy,
        error: None,
        checks: Vec::new(),
        findings: Vec::new(),
        escalations: Vec::new(),
        payload: json!({"version": "1.5.0", "tag": "v1.5.0", "previous": "1.4.2", "deployed": true}),
        tool_version: None,
        config_hash: None,
    };
    crate::journal::Journal::new(path).append(&r)
}

/// `GET /metrics`: the service's counters in the Prometheus text format.
pub(super) async fn metrics(State(sim): State<Arc<Sim>>) -> impl IntoResponse {
    let errors = if sim.scenario == Scenario::Incident {
        4_212
    } else {
        17
    };
    format!(
        "# TYPE http_requests_total counter\n\
         http_requests_total{{code=\"200\"}} 1048576\n\
         http_requests_total{{code=\"500\"}} {errors}\n\
         # TYPE agentlab_active_sessions gauge\n\
         agentlab_active_sessions 42\n"
    )
}

/// `GET /deps/openrouter/api/v1/models`: the external dependency, down in `incident`.
pub(super) async fn openrouter(State(sim): State<Arc<Sim>>) -> (StatusCode, Json<Value>) {
    if sim.scenario == Scenario::Incident {
        let e = json!({"error": {"code": 503, "message": "upstream unavailable"}});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(e));
    }
    (
        StatusCode::OK,
        Json(json!({"data": [{"id": "openai/gpt-4o-mini"}]})),
    )
}

/// The alert of `incident`, firing 3 minutes after the burst started.
pub(super) fn alerts(sim: &Sim) -> Value {
    if sim.scenario != Scenario::Incident {
        return json!([]);
    }
    let at = (sim.incident + chrono::Duration::minutes(3)).to_rfc3339();
    let ends = (Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    json!([{
        "fingerprint": "5a1b0c0ffee00001",
        "labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "agent-lab"},
        "annotations": {"summary": "5xx ratio above 5% for 2 minutes"},
        "startsAt": at,
        "endsAt": ends,
        "updatedAt": at,
        "generatorURL": "http://prometheus.invalid/graph",
        "receivers": [{"name": "oncall"}],
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}
    }])
}
