//! The review as one self-contained HTML file: inline CSS and SVG, no script, no network;
//! readable on screen and printed. The key numbers carry `data-key` attributes (the same
//! values as the JSON report) so tools and tests can read them back.

use std::fmt::Write;

use super::charts::{Chart, bars, lines};
use super::{ReviewPayload, Section, SectionStatus};

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}\
th{background:#f4f4f4}.status{font-size:.8rem;padding:.1rem .4rem;border-radius:.3rem;margin-left:.5rem}\
.ok{background:#d9f2d9}.not_configured{background:#eee}.no_data{background:#fff3c4}.failed{background:#f8d0d0}\
.keys{display:flex;flex-wrap:wrap;gap:1rem}.key{border:1px solid #ddd;border-radius:.4rem;padding:.5rem 1rem}\
.key b{display:block;font-size:1.3rem}figure{margin:1rem 0;break-inside:avoid}figure svg{max-width:100%;height:auto}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}";

fn status<T>(s: &Section<T>) -> String {
    let label = match s.status {
        SectionStatus::Ok => "ok",
        SectionStatus::NotConfigured => "not configured",
        SectionStatus::NoData => "no data",
        SectionStatus::Failed => "failed",
    };
    let class = serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    format!("<span class=\"status {class}\">{label}</span>")
}

pub(super) fn head<T>(out: &mut String, id: &str, title: &str, s: &Section<T>) {
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{title}{}</h2><p class=\"note\">{}</p>",
        status(s),
        escape(&s.note)
    );
}

pub(super) fn figure(out: &mut String, name: &str, c: Chart) {
    let _ = write!(
        out,
        "<figure data-chart=\"{name}\" data-points=\"{}\">{}</figure>",
        c.points, c.svg
    );
}

fn key(out: &mut String, k: &str, label: &str, v: String) {
    let _ = write!(
        out,
        "<div class=\"key\">{}<b data-key=\"{k}\">{}</b></div>",
        escape(label),
        escape(&v)
    );
}

pub(super) fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    out.push_str("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// A share as a percentage with one decimal (`63.0%`).
pub(super) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// When a resource reaches its threshold: `over now`, the day, or `—`.
pub(super) fn crossing(s: &super::capacity::ResourceSeries) -> String {
    if s.over {
        "over now".into()
    } else {
        s.crosses_on.map_or("—".into(), |d| d.to_string())
    }
}

/// An SLO's row: name, budget used, green, yellow and red days.
pub(super) fn slo_row(s: &super::history::SloMonth) -> Vec<String> {
    let z = |k: &str| s.zones.get(k).copied().unwrap_or(0).to_string();
    vec![
        s.name.clone(),
        s.consumed.map_or("—".into(), pct),
        z("green"),
        z("yellow"),
        z("red"),
    ]
}

/// The key numbers, shared by HTML and Markdown: (data key, label, value).
pub fn key_numbers(p: &ReviewPayload) -> Vec<(&'static str, String, String)> {
    let mut k = Vec::new();
    if let Some(c) = &p.cost.data {
        k.push((
            "cost.total",
            format!("cost ({})", c.unit),
            format!("{:.2}", c.total),
        ));
    }
    for s in p.slo.data.iter().flat_map(|d| &d.slos) {
        if let Some(c) = s.consumed {
            k.push(("slo.consumed", format!("{} budget used", s.name), pct(c)));
        }
    }
    if let Some(b) = &p.backups.data {
        k.push((
            "backups.verified",
            "nights verified".into(),
            format!("{}/{}", b.verified, b.nights.len()),
        ));
    }
    if let Some(d) = &p.dr.data {
        k.push((
            "dr.rto_ms",
            "DR drill RTO (ms)".into(),
            d.rto_ms.to_string(),
        ));
        k.push(("dr.rpo_s", "DR drill RPO (s)".into(), d.rpo_s.to_string()));
        k.push((
            "dr.passed",
            "DR drill".into(),
            if d.passed { "passed" } else { "FAILED" }.into(),
        ));
    }
    if let Some(u) = &p.usage.data {
        k.push((
            "usage.hours_saved",
            "hours saved".into(),
            format!("{:.1}", u.hours_saved),
        ));
    }
    k
}

/// The whole page.
pub fn render_html(p: &ReviewPayload) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = format!(
        "Monthly Infrastructure Review — {} — {}",
        escape(&p.environment),
        escape(&p.period.label)
    );
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{CSS}</style></head><body><h1>{title}</h1>"
    );
    let _ = write!(
        o,
        "<p>{} to {} · generated {}</p><div class=\"keys\">",
        p.period.start,
        p.period.end.pred_opt().unwrap_or(p.period.end),
        p.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    for (k, label, v) in key_numbers(p) {
        key(&mut o, k, &label, v);
    }
    o.push_str("</div>");
    if !p.recommendations.is_empty() {
        o.push_str("<h2>Recommendations</h2><ul>");
        for r in &p.recommendations {
            let _ = write!(o, "<li>{}</li>", escape(r));
        }
        o.push_str("</ul>");
    }
    capacity(&mut o, p);
    cost(&mut o, p);
    slo(&mut o, p);
    super::html_more::rest(&mut o, p);
    o.push_str("</body></html>\n");
    o
}

fn capacity(o: &mut String, p: &ReviewPayload) {
    head(o, "capacity", "Capacity", &p.capacity);
    if let Some(c) = &p.capacity.data {
        for r in super::capacity::RESOURCES {
            let s: Vec<(String, Vec<_>)> = c
                .series
                .iter()
                .filter(|s| s.resource == r)
                .map(|s| (s.subject.clone(), s.points.clone()))
                .collect();
            if s.is_empty() {
                continue;
            }
            let top = s
                .iter()
                .flat_map(|x| x.1.iter().map(|v| v.1))
                .fold(c.threshold, f64::max);
            figure(
                o,
                &format!("capacity-{r}"),
                lines(
                    &format!("{r} use per day"),
                    &p.period,
                    &s,
                    Some((c.threshold, "threshold")),
                    (top * 1.1).min(1.0).max(top),
                    true,
                ),
            );
        }
        let rows = c
            .series
            .iter()
            .map(|s| {
                vec![
                    s.subject.clone(),
                    s.resource.clone(),
                    pct(s.mean),
                    pct(s.last),
                    format!("{:+.2}", s.slope_per_day * 100.0),
                    crossing(s),
                ]
            })
            .collect();
        table(
            o,
            &[
                "subject",
                "resource",
                "mean",
                "last",
                "points/day",
                "reaches threshold",
            ],
            rows,
        );
    }
    o.push_str("</section>");
}

fn cost(o: &mut String, p: &ReviewPayload) {
    head(o, "cost", "Cost", &p.cost);
    if let Some(c) = &p.cost.data {
        let prev: std::collections::BTreeMap<&str, f64> = c
            .movers
            .iter()
            .map(|m| (m.service.as_str(), m.previous))
            .collect();
        let groups: Vec<(String, Vec<f64>)> = c
            .services
            .iter()
            .take(8)
            .map(|(s, v)| {
                (
                    s.clone(),
                    vec![*v, prev.get(s.as_str()).copied().unwrap_or(*v)],
                )
            })
            .collect();
        figure(
            o,
            "cost-per-service",
            bars(
                &format!("cost per service ({})", c.unit),
                &groups,
                &["this month", "month before"],
            ),
        );
        let rows = c
            .services
            .iter()
            .map(|(s, v)| vec![s.clone(), format!("{v:.2}")])
            .collect();
        table(o, &["service", &c.unit], rows);
    }
    o.push_str("</section>");
}

fn slo(o: &mut String, p: &ReviewPayload) {
    head(o, "slo", "SLOs and incidents", &p.slo);
    if let Some(d) = &p.slo.data {
        let s: Vec<(String, Vec<_>)> = d
            .slos
            .iter()
            .map(|s| (s.name.clone(), s.budget.clone()))
            .collect();
        figure(
            o,
            "error-budget",
            lines(
                "error budget left",
                &p.period,
                &s,
                Some((0.0, "exhausted")),
                1.0,
                true,
            ),
        );
        let rows = d.slos.iter().map(slo_row).collect();
        table(
            o,
            &[
                "SLO",
                "budget used",
                "green days",
                "yellow days",
                "red days",
            ],
            rows,
        );
        let open = d
            .open_incidents
            .map_or("not configured".into(), |n| n.to_string());
        let _ = write!(
            o,
            "<p>{} incident runs (investigations, SLO responses, shutdowns), {} escalated runs; incidents in the incident source: {}</p>",
            d.incidents,
            d.escalated_runs,
            escape(&open)
        );
    }
    o.push_str("</section>");
}
