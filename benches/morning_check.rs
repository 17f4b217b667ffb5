//! `morning_check` over 1, 10 and 100 memory hosts that each answer after 50 ms:
//! the checks run concurrently, so the wall time stays near 50 ms instead of growing with
//! the number of hosts (a sequential loop would take 50 ms × 4 commands × hosts).

use std::time::Duration;

use agentlab_ops::runbook::{MorningOptions, morning_check};
use agentlab_ops::{Environment, MemoryHost, MemoryProbe, RunOptions};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;

fn env(hosts: usize) -> Environment {
    let probe = MemoryProbe::new();
    probe.respond_json("/health", json!({"status": "ok"}));
    probe.respond_json(
        "/health/detailed",
        json!({"status": "ok", "components": {"db": "ok"}}),
    );
    let mut b = Environment::builder("bench").probe(probe);
    for i in 0..hosts {
        let h = MemoryHost::new(format!("web-{i}")).with_resources(0.4, 0.5, &[("/", 0.4)]);
        h.faults.set_delay(Duration::from_millis(50));
        b = b.host(h);
    }
    b.build()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("morning_check_50ms_hosts");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let opts = MorningOptions::default().run(RunOptions::default().without_journal());
    for n in [1usize, 10, 100] {
        let e = env(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(&rt).iter(|| async {
                let r = morning_check(&e, &opts).await;
                assert_eq!(r.checks.len(), 4 + n);
                r
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
