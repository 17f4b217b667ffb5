//! The Prometheus SLO source against Debian's Prometheus started by `scripts/test.sh`, fed
//! offline with 30 days of counters (`scripts/prometheus-fixture.py`, an error spike in the
//! last 2 hours): the counts, budget, burn rates and zone equal our own math on the same
//! integers; an empty series is inconclusive; a Prometheus that is down is an error.

use std::collections::BTreeMap;
use std::time::Duration;

use agentlab_ops::config::{BaseUrl, PrometheusConfig, SliSourceKind, SloConfig, parse_duration};
use agentlab_ops::slo::{Counts, MemorySloSource, PrometheusSloSource, SliData, SloSpec, evaluate};
use agentlab_ops::testing::slo_source_conformance;
use agentlab_ops::{SloSource, Zone};

const GOOD: &str = r#"sum(increase(http_requests_total{code!~"5.."}[$window]))"#;
const TOTAL: &str = r#"sum(increase(http_requests_total[$window]))"#;

struct Fixture {
    url: String,
    end: i64,
    windows: BTreeMap<Duration, Counts>,
}

fn fixture() -> Option<Fixture> {
    let url = match std::env::var("AGENTLAB_TEST_PROM_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("AGENTLAB_OPS_SKIP_REAL").as_deref() == Ok("1") => return None,
        Err(_) => {
            panic!("needs the test Prometheus: run ./scripts/test.sh (or AGENTLAB_OPS_SKIP_REAL=1)")
        }
    };
    let dir = std::env::var("AGENTLAB_TEST_PROM_DIR").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/expected.json")).unwrap())
            .unwrap();
    let windows = v["windows"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| {
            let counts = Counts {
                good: c["good"].as_u64().unwrap(),
                total: c["total"].as_u64().unwrap(),
            };
            (parse_duration(k).unwrap(), counts)
        })
        .collect();
    Some(Fixture {
        url,
        end: v["end"].as_i64().unwrap(),
        windows,
    })
}

fn slo(name: &str, good: &str, total: &str) -> SloConfig {
    let mut s = SloConfig::new(name, 0.999);
    s.source = SliSourceKind::Prometheus;
    s.good = Some(good.into());
    s.total = Some(total.into());
    s
}

fn source(url: &str, end: i64, slos: &[SloConfig]) -> PrometheusSloSource {
    let mut p: PrometheusConfig =
        toml::from_str(&format!("url = \"{url}\"\ntime = \"{end}\"")).unwrap();
    p.timeout = agentlab_ops::config::Dur(Duration::from_secs(5));
    let _ = BaseUrl::parse(url).unwrap();
    PrometheusSloSource::from_config(&p, slos).unwrap()
}

#[tokio::test]
async fn counts_budget_burn_rates_and_zone_equal_our_own_math() {
    let Some(f) = fixture() else { return };
    let src = source(&f.url, f.end, &[slo("availability", GOOD, TOTAL)]);
    let got = src.fetch().await.unwrap();
    assert_eq!(
        got[0].windows, f.windows,
        "Prometheus' counts differ from the fixture's integers"
    );
    let spec = SloSpec::new("availability", 0.999);
    let ours = evaluate(
        &spec,
        Some(&SliData {
            name: "availability".into(),
            target: Some(0.999),
            windows: f.windows.clone(),
            recorded: None,
        }),
    );
    let theirs = evaluate(&spec, Some(&got[0]));
    let (a, b) = (
        ours.budget_remaining.unwrap(),
        theirs.budget_remaining.unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "budget {a} vs {b}");
    for (w, r) in &ours.burn_rates {
        let (x, y) = (r.unwrap(), theirs.burn_rates[w].unwrap());
        assert!((x - y).abs() < 1e-9, "burn rate {w}: {x} vs {y}");
    }
    assert_eq!(ours.zone, theirs.zone);
    // The planted spike: 5% errors for 2 hours burn the 1h and 5m windows far past 14.4.
    assert!(
        theirs.burn_rates["1h"].unwrap() > 14.4,
        "{:?}",
        theirs.burn_rates
    );
    slo_source_conformance(&src, "availability").await;
}

#[tokio::test]
async fn an_empty_series_is_inconclusive_never_green() {
    let Some(f) = fixture() else { return };
    let none = slo(
        "checkout",
        "sum(increase(checkout_ok_total[$window]))",
        "sum(increase(checkout_total[$window]))",
    );
    let src = source(&f.url, f.end, &[none]);
    let d = src.fetch().await.unwrap();
    assert!(d[0].windows.values().all(|c| c.total == 0));
    let st = evaluate(&SloSpec::new("checkout", 0.999), Some(&d[0]));
    assert_eq!(st.zone, Zone::Inconclusive, "{st:?}");
}

#[tokio::test]
async fn a_bad_query_and_a_down_server_are_errors_that_say_so() {
    let Some(f) = fixture() else { return };
    let bad = source(
        &f.url,
        f.end,
        &[slo(
            "x",
            "sum(increase(http_requests_total[$window])",
            TOTAL,
        )],
    );
    let e = bad.fetch().await.unwrap_err();
    assert!(e.to_string().contains("refused the query"), "{e}");
    let many = source(
        &f.url,
        f.end,
        &[slo("x", "increase(http_requests_total[$window])", TOTAL)],
    );
    assert!(many.fetch().await.unwrap_err().to_string().contains("sum("));
    let down = source("http://127.0.0.1:9", f.end, &[slo("x", GOOD, TOTAL)]);
    let e = down.fetch().await.unwrap_err();
    assert_eq!(e.kind(), agentlab_ops::ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn the_memory_double_passes_the_same_suite() {
    let m = MemorySloSource::new();
    for (w, good, total) in [
        (300, 990, 1000),
        (3600, 11_900, 12_000),
        (30 * 86_400, 8_600_000, 8_640_000),
    ] {
        m.set_counts("availability", Duration::from_secs(w), good, total);
    }
    slo_source_conformance(&m, "availability").await;
}

#[tokio::test]
async fn a_config_with_prometheus_slos_reads_them_there_and_the_rest_from_the_service() {
    let Some(f) = fixture() else { return };
    let toml = format!(
        "[service]\nbase_url = \"http://127.0.0.1:9\"\n[prometheus]\nurl = \"{}\"\ntime = \"{}\"\n\
         [[slo]]\nname = \"availability\"\ntarget = 0.999\nsource = \"prometheus\"\ngood = '{GOOD}'\ntotal = '{TOTAL}'\n\
         [[slo]]\nname = \"latency\"\ntarget = 0.99\n",
        f.url, f.end
    );
    let cfg = agentlab_ops::Config::from_toml_str(&toml, "test.toml").unwrap();
    let env = agentlab_ops::Environment::from_config(cfg).await.unwrap();
    // The service (latency) is down: Prometheus' objective still comes through.
    let d = env.slo_source.fetch().await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].windows, f.windows);
    // A prometheus SLO without its queries is refused, naming the field.
    let bad = toml.replace(&format!("good = '{GOOD}'\n"), "");
    let e = agentlab_ops::Config::from_toml_str(&bad, "test.toml").unwrap_err();
    assert!(e.to_string().contains("slo[0].good"), "{e}");
}

fn with_rules(kind: &str, slo_name: &str) -> SloConfig {
    let mut s = slo("availability", GOOD, TOTAL);
    let metric = if kind == "pyrra" {
        "\nmetric = \"http_requests\""
    } else {
        ""
    };
    s.rules =
        Some(toml::from_str(&format!("kind = \"{kind}\"\nslo = \"{slo_name}\"{metric}")).unwrap());
    s
}

fn sloth_mean(f: &Fixture) -> f64 {
    let dir = std::env::var("AGENTLAB_TEST_PROM_DIR").unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/expected.json")).unwrap())
            .unwrap();
    let _ = f;
    v["sloth_30d_error_ratio"].as_f64().unwrap()
}

/// The fixture's nights carry a twentieth of the traffic and as many errors: Sloth's period
/// value (a plain mean of 5-minute ratios) says the budget is long gone, our exact counts say
/// about half is left. Both are reported, with the difference and why; the zone stays ours.
#[tokio::test]
async fn sloth_rules_are_reported_beside_our_math_with_the_difference() {
    let Some(f) = fixture() else { return };
    let src = source(
        &f.url,
        f.end,
        &[with_rules("sloth", "requests-availability")],
    );
    let d = src.fetch().await.unwrap();
    assert_eq!(
        d[0].windows, f.windows,
        "the counts are untouched by the rules"
    );
    let st = evaluate(&SloSpec::new("availability", 0.999), Some(&d[0]));
    let ours = st.budget_remaining.unwrap();
    let c = st.rules.clone().expect("the rules' comparison");
    let theirs = c.budget_remaining.unwrap();
    // Our own computation of Sloth's figure from the same integers.
    let expected = 1.0 - sloth_mean(&f) / 0.001;
    assert!(
        (theirs - expected).abs() < 0.03,
        "sloth {theirs} vs mean-of-ratios {expected}"
    );
    assert!(ours > 0.4 && theirs < -0.5, "ours {ours}, sloth {theirs}");
    assert!((c.budget_difference.unwrap() - (theirs - ours)).abs() < 1e-12);
    assert!(!c.agrees);
    assert!(c.note.contains("unweighted mean"), "{}", c.note);
    assert!(st.reason.contains("sloth rules:"), "{}", st.reason);
    // Every window Sloth records is there; where we read the same window, the burn rates are
    // close (both are exact ratios over it; Sloth's is a minute older).
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        assert!(
            c.burn_rates.contains_key(w),
            "{w}: {:?}",
            c.burn_rates.keys()
        );
    }
    let h = &c.burn_rates["6h"];
    assert!((h.rules / h.ours.unwrap() - 1.0).abs() < 0.05, "{h:?}");
}

#[tokio::test]
async fn pyrra_rules_agree_with_our_math_on_the_same_counters() {
    let Some(f) = fixture() else { return };
    let src = source(
        &f.url,
        f.end,
        &[with_rules("pyrra", "agent-lab-availability")],
    );
    let d = src.fetch().await.unwrap();
    let st = evaluate(&SloSpec::new("availability", 0.999), Some(&d[0]));
    let c = st.rules.expect("the rules' comparison");
    assert!(c.agrees, "{c:?}");
    assert!(c.budget_difference.unwrap().abs() < 0.01, "{c:?}");
    let h = &c.burn_rates["1h"];
    assert!((h.rules / h.ours.unwrap() - 1.0).abs() < 0.02, "{h:?}");
    assert!(c.burn_rates.contains_key("4d"), "Pyrra's own windows too");
}

#[tokio::test]
async fn rules_that_are_not_there_are_missing_never_agreeing() {
    let Some(f) = fixture() else { return };
    let src = source(&f.url, f.end, &[with_rules("sloth", "no-such-slo")]);
    let d = src.fetch().await.unwrap();
    let st = evaluate(&SloSpec::new("availability", 0.999), Some(&d[0]));
    let c = st.rules.clone().unwrap();
    assert!(!c.agrees);
    assert!(c.note.contains("no series for"), "{}", c.note);
    assert_eq!(c.budget_remaining, None);
    // The zone is still ours, from the counts.
    assert_eq!(st.zone, Zone::Red, "{}", st.reason);
}
