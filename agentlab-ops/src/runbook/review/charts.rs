//! The review's charts as inline SVG (plotters' SVG backend: no fonts, no network): resource
//! trends with the threshold line, cost per service, error-budget burn-down, runbook usage.
//! Each returns the SVG and the number of data points drawn (0: nothing to chart).

use chrono::NaiveDate;
use plotters::prelude::*;

use super::Period;

const W: u32 = 640;
const H: u32 = 260;
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// A chart: its SVG and the points it shows.
pub struct Chart {
    /// `<svg ...>...</svg>`.
    pub svg: String,
    /// Data points drawn.
    pub points: usize,
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn day_x(p: &Period, d: NaiveDate) -> f64 {
    (d - p.start).num_days() as f64
}

/// Lines over the period's days (one per named series), a dashed horizontal line at `limit`,
/// y from 0 to `y_max`.
pub fn lines(
    title: &str,
    p: &Period,
    series: &[(String, Vec<(NaiveDate, f64)>)],
    limit: Option<(f64, &str)>,
    y_max: f64,
    percent: bool,
) -> Chart {
    let mut svg = String::new();
    let points = series.iter().map(|s| s.1.len()).sum();
    let r: Res = (|| {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let days = p.days() as f64;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .margin_right(24)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..days, 0f64..y_max)?;
        let start = p.start;
        c.configure_mesh()
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&|x| {
                (start + chrono::Duration::days(*x as i64))
                    .format("%m-%d")
                    .to_string()
            })
            .y_label_formatter(&|y| {
                if percent {
                    format!("{:.0}%", y * 100.0)
                } else {
                    format!("{y:.0}")
                }
            })
            .draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = PALETTE[i % PALETTE.len()];
            c.draw_series(LineSeries::new(
                pts.iter().map(|(d, v)| (day_x(p, *d), *v)),
                col.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
        }
        if let Some((v, label)) = limit {
            let red = RGBColor(214, 39, 40);
            c.draw_series(DashedLineSeries::new(
                vec![(0.0, v), (days, v)],
                6,
                4,
                red.stroke_width(1),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], red));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    finish(svg, points, r)
}

/// Bars, one group per label: `(label, [values])`, the values in `series` order.
pub fn bars(title: &str, groups: &[(String, Vec<f64>)], series: &[&str]) -> Chart {
    let mut svg = String::new();
    let points = groups.iter().map(|g| g.1.len()).sum();
    let r: Res = (|| {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let n = groups.len().max(1) as f64;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n, 0f64..max)?;
        // Narrower labels when there are many bars, so they do not run into each other.
        let width = if groups.len() > 5 { 10 } else { 18 };
        let names: Vec<String> = groups.iter().map(|g| short(&g.0, width)).collect();
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len().max(1) * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        let k = series.len().max(1) as f64;
        for (j, s) in series.iter().enumerate() {
            let col = PALETTE[j % PALETTE.len()];
            let rects = groups.iter().enumerate().filter_map(|(i, g)| {
                let v = *g.1.get(j)?;
                let x0 = i as f64 + 0.1 + 0.8 * j as f64 / k;
                Some(Rectangle::new([(x0, 0.0), (x0 + 0.8 / k, v)], col.filled()))
            });
            c.draw_series(rects)?
                .label(*s)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
        }
        if series.len() > 1 {
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        Ok(())
    })();
    finish(svg, points, r)
}

/// A label short enough for an axis.
fn short(s: &str, width: usize) -> String {
    let s = s.trim_start_matches("Amazon ").trim_start_matches("AWS ");
    if s.chars().count() > width {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

fn finish(svg: String, points: usize, r: Res) -> Chart {
    match r {
        Ok(()) => Chart { svg, points },
        Err(e) => Chart {
            svg: format!(
                "<p class=\"chart-error\">chart not drawn: {}</p>",
                super::html::escape(&e.to_string())
            ),
            points: 0,
        },
    }
}
