//! The Rust side of `benches/python_overhead.sh`: the same two operations the Python side
//! times, called directly from Rust in one process.
//!
//! `cargo run --release --example binding_overhead -- CONFIG RUNS SLO_CALLS`
//! prints `verify_best_s=<seconds> slo_call_ns=<nanoseconds>`.

use std::time::{Duration, Instant};

use agentlab_ops::config::Config;
use agentlab_ops::runbook::{Sample, VerifyOptions, verify_backups};
use agentlab_ops::slo::{Counts, SloSpec, evaluate_counts};
use agentlab_ops::{Environment, RunOptions};

fn main() -> agentlab_ops::Result<()> {
    let mut args = std::env::args().skip(1);
    let config = args.next().expect("CONFIG");
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let calls: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    // The same runtime shape as the Python extension: 2 workers, 8 blocking threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    let env = rt.block_on(Environment::from_config(Config::from_file(
        config.as_ref(),
    )?))?;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).expect("date");
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let opts = VerifyOptions::default()
            .date(date)
            .sample(Sample::All)
            .run(RunOptions::default().without_journal());
        let t = Instant::now();
        let r = rt.block_on(verify_backups(&env, &opts));
        best = best.min(t.elapsed());
        assert!(r.ok(), "{}", r.to_text(false));
    }

    // The trivial operation: evaluate an SLO from counts (what `agentlab_ops.evaluate_slo`
    // does per call, minus the binding).
    let t = Instant::now();
    let mut red = 0usize;
    for i in 0..calls {
        let mut spec = SloSpec::new("slo", 0.999);
        spec.min_events = 100;
        let period = Counts {
            good: 999_000 + (i as u64 % 1000),
            total: 1_000_000,
        };
        let s = evaluate_counts(&spec, period, []);
        red += usize::from(s.zone == agentlab_ops::Zone::Red);
    }
    let per_call = t.elapsed().as_nanos() as f64 / calls as f64;
    std::hint::black_box(red);
    println!(
        "verify_best_s={:.4} slo_call_ns={per_call:.0}",
        best.as_secs_f64()
    );
    Ok(())
}
