//! Run the morning check from Rust, against the built-in sandbox (no cloud account needed).
//!
//! `cargo run --example morning -- degraded`

use agentlab_ops::runbook::{MorningOptions, MorningPayload, morning_check};
use agentlab_ops::{Format, RunOptions, Sandbox, Scenario};

#[tokio::main]
async fn main() -> agentlab_ops::Result<()> {
    let scenario: Scenario = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("healthy")
        .parse()?;
    let sandbox = Sandbox::start(scenario).await?;
    let env = sandbox.environment().await?;

    let report = morning_check(
        &env,
        &MorningOptions::default().run(RunOptions::default().without_journal()),
    )
    .await;
    println!("{}", report.render(Format::Text, false));

    // The payload is typed: read it back for your own logic.
    let payload: MorningPayload = report.payload_as()?;
    for slo in &payload.slos {
        let left = slo
            .budget_remaining
            .map_or("unknown".into(), |b| format!("{:.1}%", b * 100.0));
        println!(
            "{}: {} ({left} of the error budget left)",
            slo.name,
            slo.zone.as_str()
        );
    }
    for e in &report.escalations {
        println!(
            "escalate [{}] {}: observed {}, threshold {}",
            e.criterion, e.subject, e.observed, e.threshold
        );
    }
    std::process::exit(report.verdict.exit_code());
}
