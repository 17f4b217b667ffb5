//! The review as Markdown, for the wiki: the key numbers, recommendations, and each section's
//! line and tables (the charts are the HTML's).

use std::fmt::Write;

use super::{ReviewPayload, Section, SectionStatus};
use crate::report::md_escape;

fn head<T>(o: &mut String, title: &str, s: &Section<T>) {
    let st = match s.status {
        SectionStatus::Ok => "",
        SectionStatus::NotConfigured => " (not configured)",
        SectionStatus::NoData => " (no data)",
        SectionStatus::Failed => " (failed)",
    };
    let _ = write!(o, "\n## {title}{st}\n\n{}\n", s.note);
}

fn table(o: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(
        o,
        "\n| {} |\n|{}",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_escape(c)).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
}

/// The Markdown report.
pub fn render_markdown(p: &ReviewPayload) -> String {
    let mut o = format!(
        "# Monthly Infrastructure Review — {} — {}\n\n",
        p.environment, p.period.label
    );
    table(
        &mut o,
        &["", ""],
        super::html::key_numbers(p)
            .into_iter()
            .map(|(_, l, v)| vec![l, v])
            .collect(),
    );
    if !p.recommendations.is_empty() {
        o.push_str("\n## Recommendations\n\n");
        for r in &p.recommendations {
            let _ = writeln!(o, "- {r}");
        }
    }
    first_half(&mut o, p);
    second_half(&mut o, p);
    o
}

/// Capacity, cost, SLOs.
fn first_half(o: &mut String, p: &ReviewPayload) {
    head(o, "Capacity", &p.capacity);
    if let Some(c) = &p.capacity.data {
        table(
            o,
            &["subject", "resource", "mean", "last", "reaches threshold"],
            c.series
                .iter()
                .map(|s| {
                    vec![
                        s.subject.clone(),
                        s.resource.clone(),
                        super::html::pct(s.mean),
                        super::html::pct(s.last),
                        super::html::crossing(s),
                    ]
                })
                .collect(),
        );
    }
    head(o, "Cost", &p.cost);
    if let Some(c) = &p.cost.data {
        table(
            o,
            &["service", &c.unit],
            c.services
                .iter()
                .map(|(s, v)| vec![s.clone(), format!("{v:.2}")])
                .collect(),
        );
    }
    head(o, "SLOs and incidents", &p.slo);
    if let Some(d) = &p.slo.data {
        table(
            o,
            &["SLO", "budget used", "green", "yellow", "red"],
            d.slos.iter().map(super::html::slo_row).collect(),
        );
    }
}

/// Performance, security, backups, the drill, usage.
fn second_half(o: &mut String, p: &ReviewPayload) {
    head(o, "Performance", &p.performance);
    if let Some(e) = p
        .performance
        .data
        .as_ref()
        .and_then(|d| d.endpoints.as_ref())
    {
        table(
            o,
            &["endpoint", "p95 (ms)"],
            e.iter()
                .map(|e| vec![e.path.clone(), format!("{:.0}", e.p95_ms)])
                .collect(),
        );
    }
    if let Some(e) = p.performance.data.as_ref().and_then(|d| d.errors.as_ref()) {
        table(
            o,
            &["error template", "lines"],
            e.iter()
                .map(|e| vec![e.template.clone(), e.count.to_string()])
                .collect(),
        );
    }
    head(o, "Security", &p.security);
    if let Some(s) = &p.security.data {
        table(
            o,
            &["change", "subject", "finding"],
            s.new
                .iter()
                .map(|f| vec!["new".into(), f.subject.clone(), f.message.clone()])
                .chain(
                    s.resolved
                        .iter()
                        .map(|f| vec!["resolved".into(), f.subject.clone(), f.message.clone()]),
                )
                .collect(),
        );
    }
    head(o, "Backups", &p.backups);
    head(o, "Disaster-recovery drill", &p.dr);
    if let Some(d) = &p.dr.data {
        table(
            o,
            &["dataset", "backup", "objects", "problems"],
            d.datasets
                .iter()
                .map(|x| {
                    vec![
                        x.dataset.clone(),
                        x.date.to_string(),
                        x.objects.to_string(),
                        x.problems.join("; "),
                    ]
                })
                .collect(),
        );
    }
    head(o, "Runbook usage", &p.usage);
    if let Some(u) = &p.usage.data {
        table(
            o,
            &["runbook", "runs", "success", "hours saved"],
            u.runbooks
                .iter()
                .map(|r| {
                    vec![
                        r.runbook.clone(),
                        r.runs.to_string(),
                        format!("{:.0}%", r.success_rate * 100.0),
                        r.hours_saved.map_or("—".into(), |h| format!("{h:.1}")),
                    ]
                })
                .collect(),
        );
    }
}
