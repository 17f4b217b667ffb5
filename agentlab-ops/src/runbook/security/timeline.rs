//! `auth_timeline`: every host's auth log (`auth.log` or `secure`) since a point in time, as
//! one sorted timeline with counts per source and account and the flags an investigation
//! starts from: a source that failed and then got in, logins and sudo outside working hours.

use chrono::{DateTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::config::{Dur, parse_hours};
use crate::environment::{Environment, HostEntry};
use crate::error::{Error, ErrorKind, Result};
use crate::report::{Action, Outcome, Report, Severity};
use crate::runbook::registry::Validate;
use crate::runbook::run::{Checked, Run, RunOptions};
use crate::security::authlog::{AuthFlag, Hours, Timeline, parse, timeline};
use crate::security::under;

/// Options of `auth_timeline`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimelineOptions {
    /// Only these hosts (default: every host).
    pub hosts: Vec<String>,
    /// How far back (default 24h).
    pub since: Dur,
    /// Read the logs under this root instead of `[access] root`.
    pub root: Option<String>,
    /// Keep at most this many events in the payload (the newest; counts cover all).
    pub max_events: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            hosts: Vec::new(),
            since: Dur(std::time::Duration::from_secs(24 * 3600)),
            root: None,
            max_events: 10_000,
        }
    }
}

impl Validate for TimelineOptions {}

/// What one host's log gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostLog {
    /// The host.
    pub host: String,
    /// The log read.
    pub path: String,
    /// Events found.
    pub events: usize,
    /// Lines without a time.
    pub malformed: u64,
    /// Lines that are no event.
    pub other: u64,
}

/// The payload of `auth_timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePayload {
    /// From when.
    pub since: DateTime<Utc>,
    /// Every log read.
    pub logs: Vec<HostLog>,
    /// The timeline.
    pub timeline: Timeline,
    /// Events left out of `timeline.events` by `max_events`.
    pub events_dropped: usize,
}

async fn read_host(
    env: &Environment,
    h: &HostEntry,
    root: &str,
    since: DateTime<Utc>,
) -> Result<(HostLog, Vec<crate::security::authlog::AuthEvent>)> {
    let host = h.host.as_ref();
    let mut found = None;
    for p in &env.config.access.auth_logs {
        if host.exists(&under(root, p)).await? {
            found = Some(p.clone());
            break;
        }
    }
    let path = found.ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("none of {} exists", env.config.access.auth_logs.join(", ")),
        )
        .with_context("host", h.config.name.clone())
    })?;
    let body = host.read_file(&under(root, &path)).await?;
    let p = parse(
        &String::from_utf8_lossy(&body),
        &h.config.name,
        since,
        Utc::now(),
    );
    let log = HostLog {
        host: h.config.name.clone(),
        path,
        events: p.events.len(),
        malformed: p.malformed,
        other: p.other,
    };
    Ok((log, p.events))
}

fn hours(env: &Environment) -> Hours {
    let a = &env.config.access;
    Hours {
        span: parse_hours(&a.working_hours).unwrap_or((8 * 60, 18 * 60)),
        days: a
            .working_days
            .iter()
            .filter_map(|d| d.parse::<Weekday>().ok())
            .collect(),
    }
}

fn flag(run: &Run, f: &AuthFlag) {
    match f {
        AuthFlag::FailedThenAccepted {
            source,
            user,
            failures,
            at,
            host,
        } => {
            let m = format!(
                "{source} failed {failures} times, then logged in as {user} on {host} at {}",
                at.format("%F %T UTC")
            );
            run.finding(Severity::Critical, format!("{host}: {source}"), m.clone());
            run.escalate(
                "failed_then_accepted",
                format!("{host}: {source}"),
                format!("{failures} failures, then accepted"),
                "no acceptance after failures",
                m,
            );
        }
        AuthFlag::OutOfHours {
            user,
            event,
            at,
            host,
        } => {
            let m = format!(
                "{event:?} by {user} on {host} at {} (outside working hours)",
                at.format("%a %F %T UTC")
            );
            run.finding(Severity::Warning, format!("{host}: {user}"), m);
        }
    }
}

/// Build the timeline of every host (or `o.hosts`).
pub async fn auth_timeline(env: &Environment, o: &TimelineOptions, ro: &RunOptions) -> Report {
    env.execute("auth_timeline", ro, |run| async move {
        let hosts = super::pick(env, &o.hosts)?;
        let root = o
            .root
            .clone()
            .unwrap_or_else(|| env.config.access.root.clone());
        let since = Utc::now() - chrono::Duration::from_std(o.since.0).unwrap_or_default();
        let t = Some(env.config.thresholds.check_timeout.0 * 6);
        let reads = futures::future::join_all(hosts.iter().map(|h| {
            let root = root.clone();
            let run = &run;
            async move {
                run.check(&format!("read:{}", h.config.name), t, async {
                    let (log, ev) = read_host(env, h, &root, since).await?;
                    let outcome = if log.malformed > 0 {
                        Outcome::Warn
                    } else {
                        Outcome::Pass
                    };
                    let s = format!(
                        "{}: {} events, {} lines without a time",
                        log.path, log.events, log.malformed
                    );
                    Ok(Checked::with((log, ev), outcome, s))
                })
                .await
                .inspect_err(|e| {
                    let n = h.config.name.clone();
                    run.escalate(
                        "auth_log_unreadable",
                        n.clone(),
                        e.to_string(),
                        "the auth log read",
                        format!("the auth timeline misses {n}: {e}"),
                    );
                })
                .ok()
            }
        }))
        .await;
        let mut logs = Vec::new();
        let mut events = Vec::new();
        for (log, ev) in reads.into_iter().flatten() {
            logs.push(log);
            events.extend(ev);
        }
        let mut tl = timeline(events, &hours(env));
        for f in &tl.flags {
            flag(&run, f);
        }
        let dropped = tl.events.len().saturating_sub(o.max_events);
        tl.events.drain(..dropped);
        let outcome = if tl.flags.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Warn
        };
        run.record(
            "timeline",
            Action::Read,
            outcome,
            format!(
                "{} events from {} sources and {} accounts, {} flags",
                tl.events.len() + dropped,
                tl.by_source.len(),
                tl.by_user.len(),
                tl.flags.len()
            ),
        );
        let out = TimelinePayload {
            since,
            logs,
            timeline: tl,
            events_dropped: dropped,
        };
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}
