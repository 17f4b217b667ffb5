//! Lua binding overhead, side by side in one run (`cargo bench --bench lua_overhead`):
//!   1. a trivial operation — evaluating an SLO from counts — called 100,000 times from a Lua
//!      script (`ops.slo{...}`) and directly from Rust: the per-call difference is the binding;
//!   2. `ops.parallel` over 100 memory hosts that each answer after 50 ms: about one latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentlab_ops::slo::{Counts, SloSpec, evaluate_counts};
use agentlab_ops::{Environment, MemoryHost};
use agentlab_ops_lua::{ScriptOptions, run_source};

const CALLS: u64 = 100_000;

fn rust_calls() -> Duration {
    let t = Instant::now();
    let mut red = 0u64;
    for i in 0..CALLS {
        let spec = SloSpec::new("slo", 0.999);
        let period = Counts {
            good: 999_000 + i % 1000,
            total: 1_000_000,
        };
        red += u64::from(evaluate_counts(&spec, period, []).zone == agentlab_ops::Zone::Red);
    }
    std::hint::black_box(red);
    t.elapsed()
}

async fn lua_calls(env: Arc<Environment>, opts: &ScriptOptions) -> Duration {
    let src = format!(
        "local red = 0\nfor i = 0, {} do\n  local s = ops.slo{{ target = 0.999, good = 999000 + i % 1000, total = 1000000 }}\n  if s.zone == 'red' then red = red + 1 end\nend\nreturn red",
        CALLS - 1
    );
    let t = Instant::now();
    let r = run_source(env, "lua:bench", "bench.lua", &src, opts).await;
    let d = t.elapsed();
    assert!(r.ok(), "{}", r.to_text(false));
    d
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = ScriptOptions {
        no_journal: true,
        ..ScriptOptions::default()
    };
    let env = Arc::new(Environment::builder("bench").build());
    // Best of 3 each.
    let rust = (0..3).map(|_| rust_calls()).min().unwrap();
    let lua = (0..3)
        .map(|_| rt.block_on(lua_calls(env.clone(), &opts)))
        .min()
        .unwrap();
    let per = |d: Duration| d.as_nanos() as f64 / CALLS as f64;
    println!("evaluate an SLO from counts, {CALLS} calls (best of 3):");
    println!("  {:<28} {:>8.0} ns/call", "from Rust", per(rust));
    println!("  {:<28} {:>8.0} ns/call", "from Lua (ops.slo)", per(lua));
    println!(
        "  binding overhead: {:.2} us per call",
        (per(lua) - per(rust)) / 1000.0
    );

    let mut b = Environment::builder("bench-hosts");
    for i in 0..100 {
        let h = MemoryHost::new(format!("h{i:03}"));
        h.faults.set_delay(Duration::from_millis(50));
        b = b.host(h);
    }
    let env = Arc::new(b.build());
    let src = "local fns = {}\nfor i, h in ipairs(ops.hosts()) do fns[i] = function() return h:run{'echo', h.name}.stdout end end\nlocal r = ops.parallel(fns)\nassert(#ops.hosts() == 100 and r.n == 100)\nreturn r.n";
    let best = (0..3)
        .map(|_| {
            let t = Instant::now();
            let r = rt.block_on(run_source(env.clone(), "lua:parallel", "p.lua", src, &opts));
            assert!(r.ok(), "{}", r.to_text(false));
            t.elapsed()
        })
        .min()
        .unwrap();
    println!("ops.parallel over 100 memory hosts answering after 50 ms (best of 3):");
    println!(
        "  {:<28} {:>8.1} ms  ({:.2}x one latency)",
        "whole script",
        best.as_secs_f64() * 1000.0,
        best.as_secs_f64() / 0.050
    );
}
