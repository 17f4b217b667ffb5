//! The review page's later sections: performance, security, backups, the drill, usage.

use std::fmt::Write;

use super::ReviewPayload;
use super::charts::{bars, lines};
use super::html::{escape, figure, head, table};

/// Performance, security, backups, the DR drill and runbook usage.
pub fn rest(o: &mut String, p: &ReviewPayload) {
    performance(o, p);
    security(o, p);
    backups(o, p);
    dr(o, p);
    usage(o, p);
}

fn performance(o: &mut String, p: &ReviewPayload) {
    head(o, "performance", "Performance", &p.performance);
    if let Some(d) = &p.performance.data {
        let _ = write!(
            o,
            "<h3>Slowest endpoints</h3><p>{}</p>",
            escape(&d.endpoints_source)
        );
        if let Some(e) = &d.endpoints {
            table(
                o,
                &["endpoint", "p95 (ms)", "requests"],
                e.iter()
                    .map(|e| {
                        vec![
                            e.path.clone(),
                            format!("{:.0}", e.p95_ms),
                            e.requests.map_or("—".into(), |r| r.to_string()),
                        ]
                    })
                    .collect(),
            );
        }
        let _ = write!(
            o,
            "<h3>Error patterns</h3><p>{}</p>",
            escape(&d.errors_source)
        );
        if let Some(e) = &d.errors {
            table(
                o,
                &["template", "lines", "hosts"],
                e.iter()
                    .map(|e| vec![e.template.clone(), e.count.to_string(), e.hosts.join(", ")])
                    .collect(),
            );
        }
    }
    o.push_str("</section>");
}

fn security(o: &mut String, p: &ReviewPayload) {
    head(o, "security", "Security", &p.security);
    if let Some(s) = &p.security.data {
        let row = |f: &super::history::AccessFinding, change: &str| {
            vec![
                change.to_string(),
                f.severity.clone(),
                f.subject.clone(),
                f.message.clone(),
            ]
        };
        let mut rows: Vec<Vec<String>> = s.new.iter().map(|f| row(f, "new")).collect();
        rows.extend(s.resolved.iter().map(|f| row(f, "resolved")));
        rows.extend(
            s.findings
                .iter()
                .filter(|f| !s.new.contains(f))
                .map(|f| row(f, "still open")),
        );
        table(
            o,
            &["since last review", "severity", "subject", "finding"],
            rows,
        );
    }
    o.push_str("</section>");
}

fn backups(o: &mut String, p: &ReviewPayload) {
    head(o, "backups", "Backups", &p.backups);
    if let Some(b) = &p.backups.data {
        let mb: Vec<(String, Vec<_>)> = vec![(
            "bytes verified (KiB)".into(),
            b.nights
                .iter()
                .map(|n| (n.date, n.bytes as f64 / 1024.0))
                .collect(),
        )];
        let top = mb[0].1.iter().map(|x| x.1).fold(1.0, f64::max) * 1.2;
        figure(
            o,
            "backup-size",
            lines("backup size per night", &p.period, &mb, None, top, false),
        );
        if !b.failures.is_empty() {
            let _ = write!(
                o,
                "<p>Failed nights: {}</p>",
                b.failures
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    o.push_str("</section>");
}

fn ms(v: u64) -> String {
    crate::config::format_duration(std::time::Duration::from_millis(v))
}

fn dr(o: &mut String, p: &ReviewPayload) {
    head(o, "dr", "Disaster-recovery drill", &p.dr);
    if let Some(d) = &p.dr.data {
        let _ = write!(
            o,
            "<p>RTO <b>{}</b> (target {}) · RPO <b>{}</b> (target {}) · restored into a scratch folder, removed after</p>",
            ms(d.rto_ms),
            ms(d.rto_target_ms),
            ms(d.rpo_s * 1000),
            ms(d.rpo_target_s * 1000)
        );
        table(
            o,
            &[
                "dataset",
                "backup",
                "objects",
                "bytes",
                "JSON parsed",
                "CSV rows",
                "problems",
            ],
            d.datasets
                .iter()
                .map(|x| {
                    vec![
                        x.dataset.clone(),
                        x.date.to_string(),
                        x.objects.to_string(),
                        x.bytes.to_string(),
                        x.json_ok.to_string(),
                        x.csv_rows.to_string(),
                        if x.problems.is_empty() {
                            "none".into()
                        } else {
                            x.problems.join("; ")
                        },
                    ]
                })
                .collect(),
        );
    }
    o.push_str("</section>");
}

fn usage(o: &mut String, p: &ReviewPayload) {
    head(o, "usage", "Runbook usage", &p.usage);
    if let Some(u) = &p.usage.data {
        let groups: Vec<(String, Vec<f64>)> = u
            .runbooks
            .iter()
            .take(10)
            .map(|r| (r.runbook.clone(), vec![r.runs as f64]))
            .collect();
        figure(
            o,
            "runbook-usage",
            bars("runs per runbook", &groups, &["runs"]),
        );
        table(
            o,
            &[
                "runbook",
                "runs",
                "success",
                "median",
                "by hand",
                "hours saved",
            ],
            u.runbooks
                .iter()
                .map(|r| {
                    vec![
                        r.runbook.clone(),
                        r.runs.to_string(),
                        format!("{:.0}%", r.success_rate * 100.0),
                        crate::config::format_duration(std::time::Duration::from_millis(
                            r.median_ms,
                        )),
                        r.manual_minutes.map_or("—".into(), |m| format!("{m} min")),
                        r.hours_saved.map_or("—".into(), |h| format!("{h:.1}")),
                    ]
                })
                .collect(),
        );
        let _ = write!(o, "<h3>Revisions</h3>");
        table(
            o,
            &["from", "agentlab-ops", "config", "runs"],
            u.revisions
                .iter()
                .map(|r| {
                    vec![
                        r.first.format("%Y-%m-%d %H:%M").to_string(),
                        r.tool_version.clone(),
                        r.config_hash.clone(),
                        r.runs.to_string(),
                    ]
                })
                .collect(),
        );
    }
    o.push_str("</section>");
}
