//! `restart` over 50 memory hosts whose service manager answers every call after 100 ms (a
//! restart costs status + restart + status = 300 ms; the health poll answers at once), in 10%
//! waves, side by side with the spec's procedure — one host at a time (`serial = 1`) — in the
//! same run: waves × (restart + poll) against hosts × (restart + poll).
//!
//! `cargo bench --bench restart`

use std::time::{Duration, Instant};

use agentlab_ops::runbook::{HostOutcome, RestartOptions, RestartPayload, restart};
use agentlab_ops::{Environment, MemoryHost, MemoryServiceManager, RunOptions};

const HOSTS: usize = 50;
const LATENCY: Duration = Duration::from_millis(100);

fn env() -> Environment {
    let mut b = Environment::builder("bench");
    for i in 0..HOSTS {
        let s = MemoryServiceManager::new(format!("web-{i}"));
        s.faults.set_delay(LATENCY);
        b = b.host_with_service(MemoryHost::new(format!("web-{i}")), &s);
    }
    b.build()
}

async fn timed(e: &Environment, serial: &str) -> (Duration, usize) {
    let o: RestartOptions =
        serde_json::from_value(serde_json::json!({ "serial": serial })).unwrap();
    let start = Instant::now();
    let r = restart(e, &o, &RunOptions::default().without_journal()).await;
    let took = start.elapsed();
    let p: RestartPayload = r.payload_as().expect("payload");
    assert!(
        p.hosts.iter().all(|h| h.outcome == HostOutcome::Healthy),
        "{}",
        r.to_text(false)
    );
    (took, p.waves.len())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let e = env();
    let per_host = LATENCY * 3;
    let (waves_t, waves) = rt.block_on(timed(&e, "10%"));
    let (seq_t, seq_waves) = rt.block_on(timed(&e, "1"));
    let expect = per_host * waves as u32;
    println!(
        "restart of {HOSTS} memory hosts, {} ms per call (restart + poll = {} ms per host):",
        LATENCY.as_millis(),
        per_host.as_millis()
    );
    println!(
        "  {:<40} {:>8.3} s  ({waves} waves; waves × (restart + poll) = {:.3} s, overhead {:+.1} %)",
        "agentlab-ops restart, serial 10%",
        waves_t.as_secs_f64(),
        expect.as_secs_f64(),
        (waves_t.as_secs_f64() / expect.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "  {:<40} {:>8.3} s  ({seq_waves} waves)",
        "one host at a time (the spec's loop)",
        seq_t.as_secs_f64()
    );
    println!(
        "  ratio: {:.1}x faster in 10% waves",
        seq_t.as_secs_f64() / waves_t.as_secs_f64()
    );
}
