//! The chaos runbook: a latency fault through the tool's own proxy in front of a real HTTP
//! server (the hypothesis sees the delay while it is on, and the proxy passes traffic untouched
//! after); a stop condition that trips mid-fault removes it within one poll; a hypothesis that
//! does not hold injects nothing; a dry-run touches nothing; and netem's ownership with the
//! real `tc` in a network namespace of the test's own (our root qdisc in and out under our
//! handle; a root qdisc that is someone else's is refused and left as it is).

use std::time::Duration;

use agentlab_ops::config::BaseUrl;
use agentlab_ops::retry::RetryPolicy;
use agentlab_ops::runbook::chaos::{ChaosOptions, ChaosPayload, FaultEnd, Verdict, chaos_run};
use agentlab_ops::{
    Environment, HttpProbe, LocalHost, MemoryHost, MemoryProbe, MemoryServiceManager, RunOptions,
};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::free_port;

fn policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        attempt_timeout: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

async fn upstream() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&s)
        .await;
    s
}

/// An environment whose probe goes through the proxy at `port`.
fn through_proxy(port: u16) -> Environment {
    let base = BaseUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    Environment::builder("chaos")
        .probe(HttpProbe::new(base, policy()).unwrap())
        .build()
}

fn opts(definition: Value) -> ChaosOptions {
    ChaosOptions {
        definition: Some(definition),
        ..ChaosOptions::default()
    }
}

fn payload(r: &agentlab_ops::Report) -> ChaosPayload {
    r.payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)))
}

fn proxy_fault(port: u16, up: &MockServer, latency: &str, duration: &str) -> Value {
    json!({
        "kind": "proxy", "listen": format!("127.0.0.1:{port}"),
        "upstream": up.address().to_string(), "latency": latency, "duration": duration,
    })
}

#[tokio::test]
async fn a_proxy_latency_fault_is_seen_while_on_and_gone_after() {
    let up = upstream().await;
    let port = free_port();
    let env = through_proxy(port);
    let def = json!({
        "title": "the health check survives a slow upstream",
        "hypothesis": [{"kind": "http", "url": "/health", "latency_below": "1s"}],
        "method": [proxy_fault(port, &up, "150ms", "2s")],
        "stop": {"poll": "200ms"},
    });
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Held, "{}", r.to_text(false));
    let f = &p.faults[0];
    assert_eq!(f.end, FaultEnd::Removed, "{f:?}");
    let held = f.held_ms.unwrap();
    assert!((1900..3500).contains(&held), "held {held} ms");
    let seen = &f.observed[0];
    assert!(seen.samples >= 4, "{seen:?}");
    let p50 = seen.latency_p50_ms.unwrap();
    assert!(
        (150.0..600.0).contains(&p50),
        "p50 {p50} ms while 150 ms was on"
    );
    assert!(f.after.as_deref().unwrap().contains("untouched"), "{f:?}");
    // Before and after, through the same proxy, the delay is not there.
    for h in [&p.hypothesis_before[0], &p.hypothesis_after[0]] {
        assert!(h.ok, "{h:?}");
        assert!(h.latency_ms.unwrap() < 120.0, "{h:?}");
    }
    // The undo ran and is in the report.
    assert!(
        r.checks.iter().any(|c| c.name == "proxy[0]:local:remove"),
        "{}",
        r.to_text(false)
    );
}

#[tokio::test]
async fn a_stop_condition_removes_the_fault_within_one_poll() {
    let up = upstream().await;
    let port = free_port();
    let env = through_proxy(port);
    let def = json!({
        "title": "stops when the health check gets slow",
        "hypothesis": [{"kind": "http", "url": "/health"}],
        "method": [proxy_fault(port, &up, "400ms", "30s")],
        "stop": {"poll": "200ms", "probes": [
            {"kind": "http", "url": "/health", "latency_below": "250ms"}
        ]},
    });
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Stopped, "{}", r.to_text(false));
    assert!(p.stopped_by.as_deref().unwrap().contains("250ms"), "{p:?}");
    let f = &p.faults[0];
    assert_eq!(f.end, FaultEnd::Removed, "{f:?}");
    // The first poll sees it (one probe takes ≥ 400 ms), the removal follows at once.
    let held = f.held_ms.unwrap();
    assert!(held < 2500, "held {held} ms of 30 s");
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "stop_condition")
    );
    assert!(p.hypothesis_after[0].ok, "{:?}", p.hypothesis_after);
}

fn memory_fleet() -> (Environment, MemoryHost, MemoryServiceManager, MemoryProbe) {
    let host = MemoryHost::new("web-1");
    let svc = MemoryServiceManager::new("web-1");
    let probe = MemoryProbe::new();
    let env = Environment::builder("chaos")
        .probe(probe.clone())
        .host_with_service(host.clone(), &svc)
        .build();
    (env, host, svc, probe)
}

fn host_faults() -> Value {
    json!([
        {"kind": "netem", "device": "eth0", "delay": "200ms", "duration": "5s"},
        {"kind": "service_stop", "duration": "5s"},
        {"kind": "stress", "cpu": 2, "duration": "5s"},
    ])
}

#[tokio::test]
async fn a_hypothesis_that_does_not_hold_injects_nothing() {
    let (env, host, svc, probe) = memory_fleet();
    probe.respond("/health", 503, "down");
    let def = json!({
        "title": "t", "hypothesis": [{"kind": "http", "url": "/health"}],
        "method": host_faults(),
    });
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::NotRun, "{}", r.to_text(false));
    assert!(p.faults.is_empty());
    assert_eq!(r.escalations[0].criterion, "hypothesis_not_met");
    assert!(host.calls.is_empty(), "{:?}", host.calls.all());
    assert!(svc.calls.is_empty(), "{:?}", svc.calls.all());
}

#[tokio::test]
async fn a_dry_run_plans_every_fault_and_touches_nothing() {
    let (env, host, svc, probe) = memory_fleet();
    probe.respond("/health", 200, "ok");
    let def = json!({"title": "t", "hypothesis": [{"kind": "http", "url": "/health"}],
        "method": host_faults()});
    let ro = RunOptions::default().dry_run(true);
    let r = chaos_run(&env, &opts(def), &ro).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Planned, "{}", r.to_text(false));
    let ends: Vec<FaultEnd> = p.faults.iter().map(|f| f.end).collect();
    assert_eq!(ends, [FaultEnd::Planned; 3]);
    let summary = |n: &str| {
        r.checks
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("no {n}: {}", r.to_text(false)))
            .summary
            .clone()
    };
    assert!(summary("netem[0]:web-1:inject").contains("handle a9c7:"));
    assert!(summary("stress[2]:web-1:inject").contains("stress-ng --cpu 2 --timeout 5s"));
    assert!(host.calls.is_empty(), "{:?}", host.calls.all());
    assert!(svc.calls.is_empty(), "{:?}", svc.calls.all());
}

#[tokio::test]
async fn targets_and_bad_definitions_name_the_field() {
    let (env, _, _, _) = memory_fleet();
    let def = json!({"title": "t", "method": [{"kind": "stress", "duration": "5s"}]});
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    assert!(
        r.to_text(false).contains("method[0] (stress)"),
        "{}",
        r.to_text(false)
    );
    let def = json!({"title": "t", "targets": {"hosts": ["nope"]},
        "method": [{"kind": "service_stop", "duration": "5s"}]});
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    assert!(r.to_text(false).contains("nope"), "{}", r.to_text(false));
}

// A network namespace of the test's own (shared with the command's SIGKILL test).
#[path = "../support/netns.rs"]
mod netns;
use netns::Netns;

fn netem_def(ns: &Netns, device: &str) -> Value {
    // This kernel has no sch_netem (see the README): `htb` stands in, under our handle.
    json!({"title": "netem ownership", "hypothesis": [{"kind": "http", "url": "/health"}],
        "method": [{"kind": "netem", "device": device, "qdisc": ["htb"],
            "namespace": ns.0, "duration": "1s"}],
        "stop": {"poll": "200ms"}, "lease": "3s"})
}

fn local_env(lease_dir: &std::path::Path) -> Environment {
    let probe = MemoryProbe::new();
    probe.respond("/health", 200, "ok");
    let dir = lease_dir.display().to_string();
    Environment::builder("chaos")
        .probe(probe)
        .host(LocalHost::new("local-1"))
        .configure(move |c| c.chaos.lease_dir = dir)
        .build()
}

#[tokio::test]
async fn netem_goes_in_under_our_handle_and_only_ours_comes_out() {
    let Some(ns) = Netns::new("own") else { return };
    let d = tempfile::tempdir().unwrap();
    let env = local_env(d.path());
    let r = chaos_run(&env, &opts(netem_def(&ns, "lo")), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Held, "{}", r.to_text(false));
    let inject = r
        .checks
        .iter()
        .find(|c| c.name == "netem[0]:local-1:inject")
        .unwrap();
    assert!(inject.summary.contains("a9c7:"), "{}", inject.summary);
    assert!(
        p.faults[0].after.as_deref().unwrap().contains("noqueue 0:"),
        "{:?}",
        p.faults[0]
    );
    assert!(
        ns.tc(&["-j", "qdisc", "show", "dev", "lo"])
            .contains("\"0:\"")
    );
    // The lease and its watchdog are gone with the fault.
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");

    // A root qdisc that is someone else's: refused, and left as it was.
    ns.tc(&["qdisc", "add", "dev", "v1", "root", "handle", "1:", "htb"]);
    let r = chaos_run(&env, &opts(netem_def(&ns, "v1")), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Aborted, "{}", r.to_text(false));
    assert_eq!(p.faults[0].end, FaultEnd::InjectionFailed);
    assert!(
        p.faults[0].error.as_deref().unwrap().contains("htb 1:"),
        "{:?}",
        p.faults[0]
    );
    assert!(
        ns.tc(&["-j", "qdisc", "show", "dev", "v1"])
            .contains("\"1:\"")
    );
}

#[tokio::test]
async fn stress_ng_runs_for_its_time_and_leaves_no_process() {
    if std::process::Command::new("stress-ng")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1"),
            "needs stress-ng: ./scripts/setup-test-deps.sh installs it"
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let env = local_env(d.path());
    let def = json!({"title": "cpu pressure", "hypothesis": [{"kind": "http", "url": "/health"}],
        "method": [{"kind": "stress", "cpu": 1, "duration": "1s"}],
        "stop": {"poll": "200ms"}, "lease": "3s"});
    let r = chaos_run(&env, &opts(def), &RunOptions::default()).await;
    let p = payload(&r);
    assert_eq!(p.verdict, Verdict::Held, "{}", r.to_text(false));
    let f = &p.faults[0];
    assert!(
        f.after.as_deref().unwrap().contains("no stress-ng"),
        "{f:?}"
    );
    assert!(f.held_ms.unwrap() >= 1000, "{f:?}");
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn every_example_experiment_plans_on_one_host_and_bad_files_name_line_and_field() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/chaos");
    let mut b = Environment::builder("chaos");
    let probe = MemoryProbe::new();
    probe.respond("/health", 200, "ok");
    b = b.probe(probe);
    let mut hosts = Vec::new();
    for i in 1..=3 {
        let (h, s) = (
            MemoryHost::new(format!("web-{i}")),
            MemoryServiceManager::new(format!("web-{i}")),
        );
        b = b.host_with_service(h.clone(), &s);
        hosts.push(h);
    }
    let env = b.build();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let o = ChaosOptions {
            experiment: Some(e.path().display().to_string()),
            ..ChaosOptions::default()
        };
        let r = chaos_run(&env, &o, &RunOptions::default().dry_run(true)).await;
        let p = payload(&r);
        assert_eq!(p.verdict, Verdict::Planned, "{}", r.to_text(false));
        let on_hosts = !p.targets.is_empty();
        assert!(
            !on_hosts || p.targets.len() == 1,
            "{:?}: {:?}",
            e.path(),
            p.targets
        );
        n += 1;
    }
    assert_eq!(n, 4);
    assert!(hosts.iter().all(|h| h.calls.is_empty()));

    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "title = \"t\"\n[[method]]\nkind = \"netem\"\ndevice = \"eth0\"\ndelay = \"fast\"\nduration = \"1m\"\n").unwrap();
    let e = agentlab_ops::chaos::Experiment::from_file(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.toml") && e.contains(":5") && e.contains("delay"),
        "{e}"
    );
}
