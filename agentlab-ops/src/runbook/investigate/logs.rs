//! Log analysis: the scanner on each host's log, read over the host's session from the
//! alert's start minus `since` (found by bisection, so only that part comes over the wire).

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use super::triage::{EventKind, TimelineEvent};
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, Result};
use crate::logs::{Field, ScanMatch, ScanOptions, Spike, Talker, Template, scan_host};
use crate::report::Outcome;
use crate::runbook::run::{Checked, Run};

/// What one host's log says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostLogs {
    /// The host.
    pub host: String,
    /// `host:path`.
    pub source: String,
    /// Why it could not be read.
    pub error: Option<String>,
    /// Lines read.
    pub lines: u64,
    /// Lines matching the error patterns.
    pub matches: u64,
    /// The first minute of the burst, when errors spike.
    pub burst_start: Option<DateTime<Utc>>,
    /// The minutes that spike.
    pub spikes: Vec<Spike>,
    /// Error templates, most frequent first (at most 10).
    pub templates: Vec<Template>,
    /// Templates never seen before the alert's recent window.
    pub new_templates: Vec<Template>,
    /// Top talkers.
    pub top: Vec<Talker>,
    /// The last matches.
    pub last: Vec<ScanMatch>,
    /// Bytes that came over the wire.
    pub wire_bytes: u64,
}

fn options(
    env: &Environment,
    anchor: DateTime<Utc>,
    since: std::time::Duration,
) -> Result<ScanOptions> {
    let c = &env.config.investigation;
    let now = env.clock.now();
    Ok(ScanOptions {
        pattern: c.pattern.clone(),
        top: Field::parse(&c.top).map_err(|e| Error::config(format!("investigation.top: {e}")))?,
        top_n: c.top_n,
        since: Some(anchor - chrono::Duration::from_std(since).unwrap_or_default()),
        // New: first seen within `recent` before the alert, or after it.
        recent: (now - anchor).to_std().unwrap_or_default() + c.recent.0,
        spike_z: c.spike_z,
        year: anchor.year() as u32,
        last: 5,
        ..ScanOptions::default()
    })
}

/// Scan the log of `host` (or of every host). Only a bad `[investigation]` is an error.
pub(super) async fn scan(
    env: &Environment,
    run: &Run,
    host: Option<&str>,
    anchor: DateTime<Utc>,
    since: std::time::Duration,
) -> Result<Vec<HostLogs>> {
    let o = options(env, anchor, since)?;
    let hosts: Vec<&HostEntry> = match host {
        Some(h) => vec![env.host(h)?],
        None => env.hosts.iter().collect(),
    };
    if hosts.is_empty() {
        run.skip("logs", crate::report::Action::Read, "no host configured");
    }
    let scans = hosts.into_iter().map(|h| one(env, run, h, &o));
    Ok(futures::future::join_all(scans).await)
}

async fn one(env: &Environment, run: &Run, h: &HostEntry, o: &ScanOptions) -> HostLogs {
    let path = crate::config::fill_host(&env.config.investigation.log_file, &h.config);
    let name = h.config.name.clone();
    let source = format!("{name}:{path}");
    let r = run
        .check(&format!("logs:{name}"), None, async {
            let (rep, t) = scan_host(h.host.as_ref(), &path, o, None).await?;
            let mut templates = rep.templates.clone();
            templates.sort_by_key(|t| std::cmp::Reverse(t.count));
            templates.truncate(10);
            let l = HostLogs {
                host: name.clone(),
                source: source.clone(),
                error: None,
                lines: rep.lines,
                matches: rep.matches,
                burst_start: rep.burst_start,
                spikes: rep.spikes.clone(),
                templates,
                new_templates: rep.new_templates.clone(),
                top: rep.top.clone(),
                last: rep.last.clone(),
                wire_bytes: t.wire_bytes,
            };
            let outcome = if rep.burst_start.is_some() || !rep.new_templates.is_empty() {
                Outcome::Warn
            } else {
                Outcome::Pass
            };
            let s = format!("{} ({} bytes read)", rep.summary(), t.wire_bytes);
            Ok(Checked::with(l, outcome, s))
        })
        .await;
    r.unwrap_or_else(|e| HostLogs {
        host: name.clone(),
        source,
        error: Some(e.to_string()),
        lines: 0,
        matches: 0,
        burst_start: None,
        spikes: Vec::new(),
        templates: Vec::new(),
        new_templates: Vec::new(),
        top: Vec::new(),
        last: Vec::new(),
        wire_bytes: 0,
    })
}

/// The bursts and new templates on the timeline.
pub(super) fn events(logs: &[HostLogs], anchor: DateTime<Utc>) -> Vec<TimelineEvent> {
    let mut out = Vec::new();
    for l in logs {
        if let Some(b) = l.burst_start {
            let peak = l.spikes.iter().max_by_key(|s| s.count);
            let what = match peak {
                Some(p) => format!(
                    "errors spike on {}: up to {}/min against a median of {:.0}",
                    l.host, p.count, p.baseline_median
                ),
                None => format!("errors spike on {}", l.host),
            };
            let mut e = TimelineEvent::new(b, anchor, EventKind::Spike, what);
            e.host = Some(l.host.clone());
            out.push(e);
        }
        for t in &l.new_templates {
            let Some(at) = t.first_seen else { continue };
            let what = format!("new error on {} ({}×): {}", l.host, t.count, t.template);
            let mut e = TimelineEvent::new(at, anchor, EventKind::NewTemplate, what);
            e.host = Some(l.host.clone());
            out.push(e);
        }
    }
    out
}
