//! The monthly review's HTML in a real headless browser (Debian's `chromium`, installed by
//! the test command): no console errors (and the check itself catches one), every chart's SVG
//! present with data drawn, the key numbers' text equal to the JSON report's, a screenshot.

use std::path::Path;
use std::process::Command;

use agentlab_ops::runbook::review::{ReviewOptions, ReviewPayload, monthly_review};
use agentlab_ops::{RunOptions, Sandbox, Scenario};

/// Run chromium headless on a file: (DOM after load, console lines).
fn chromium(page: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is not installed: run scripts/setup-test-deps.sh");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// `(name, data-points, svg)` of every figure in the DOM.
fn figures(dom: &str) -> Vec<(String, usize, String)> {
    dom.split("<figure ")
        .skip(1)
        .map(|f| {
            let attr = |k: &str| {
                f.split(&format!("{k}=\""))
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or("")
                    .to_string()
            };
            let body = f.split("</figure>").next().unwrap_or("").to_string();
            (
                attr("data-chart"),
                attr("data-points").parse().unwrap_or(0),
                body,
            )
        })
        .collect()
}

fn key(dom: &str, k: &str) -> Vec<String> {
    dom.split(&format!("data-key=\"{k}\">"))
        .skip(1)
        .map(|s| s.split('<').next().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn the_report_renders_in_chromium_with_its_charts_and_numbers() {
    let sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    let env = sb.environment().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let o = ReviewOptions {
        out: Some(html.display().to_string()),
        ..Default::default()
    };
    let r = monthly_review(&env, &o, &RunOptions::default().without_journal()).await;
    assert!(r.error.is_none(), "{}", r.to_text(false));
    let json: ReviewPayload =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();

    // The console check catches an error when there is one.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<html><body><script>console.error('planted failure')</script></body></html>",
    )
    .unwrap();
    let (_, console) = chromium(&control, &["--dump-dom"]);
    assert!(
        console.iter().any(|l| l.contains("planted failure")),
        "the console check sees nothing: {console:?}"
    );

    let (dom, console) = chromium(&html, &["--dump-dom"]);
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(
        dom.contains("Monthly Infrastructure Review"),
        "{}",
        &dom[..dom.len().min(500)]
    );
    assert_page(&dom, &json);
    // A screenshot, kept for people to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("monthly-review.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &html,
        &[
            "--window-size=1280,4400",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 100_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
}

/// The charts drawn and the key numbers equal to the JSON's.
fn assert_page(dom: &str, json: &ReviewPayload) {
    let figs = figures(dom);
    let names: Vec<&str> = figs.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "capacity-cpu",
            "capacity-memory",
            "capacity-disk",
            "cost-per-service",
            "error-budget",
            "backup-size",
            "runbook-usage"
        ]
    );
    for (name, points, svg) in &figs {
        assert!(*points > 0, "{name}: no data");
        assert!(svg.contains("<svg"), "{name}: no SVG");
        if name.starts_with("cost") || name.starts_with("runbook") {
            // One filled rect per bar, besides the background and the legend.
            let bars = svg.matches("<rect").count();
            assert!(bars > *points, "{name}: {bars} rects for {points} bars");
        } else {
            let pairs: usize = svg
                .split("<polyline")
                .skip(1)
                .map(|p| {
                    p.split("points=\"")
                        .nth(1)
                        .and_then(|s| s.split('"').next())
                        .unwrap_or("")
                        .split_whitespace()
                        .count()
                })
                .max()
                .unwrap_or(0);
            assert!(pairs >= 20, "{name}: longest line has {pairs} points");
        }
    }
    // The key numbers as the page shows them are the JSON's.
    let cost = json.cost.data.as_ref().unwrap();
    assert_eq!(key(dom, "cost.total"), [format!("{:.2}", cost.total)]);
    let dr = json.dr.data.as_ref().unwrap();
    assert_eq!(key(dom, "dr.rto_ms"), [dr.rto_ms.to_string()]);
    assert_eq!(key(dom, "dr.rpo_s"), [dr.rpo_s.to_string()]);
    assert_eq!(key(dom, "dr.passed"), ["passed"]);
    let b = json.backups.data.as_ref().unwrap();
    assert_eq!(
        key(dom, "backups.verified"),
        [format!("{}/{}", b.verified, b.nights.len())]
    );
    assert_eq!(
        key(dom, "usage.hours_saved"),
        [format!(
            "{:.1}",
            json.usage.data.as_ref().unwrap().hours_saved
        )]
    );
    let slos: Vec<String> = json
        .slo
        .data
        .as_ref()
        .unwrap()
        .slos
        .iter()
        .map(|s| format!("{:.1}%", s.consumed.unwrap() * 100.0))
        .collect();
    assert_eq!(key(dom, "slo.consumed"), slos);
}
