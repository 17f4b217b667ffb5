//! The conformance suite of [`SloSource`]: the service's JSON, Prometheus, the memory double.

use crate::slo::SloSource;

/// Run every check on a source that knows the objective `name` (with traffic).
pub async fn slo_source_conformance(s: &dyn SloSource, name: &str) {
    let a = s.fetch().await.expect("fetch()");
    let d = a
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no objective {name:?} in {a:?}"));
    assert!(!d.windows.is_empty(), "{name}: no window");
    for (w, c) in &d.windows {
        assert!(
            c.good <= c.total,
            "{name} {w:?}: good {} > total {}",
            c.good,
            c.total
        );
    }
    assert!(
        d.windows.values().any(|c| c.total > 0),
        "{name}: no traffic in any window: the suite needs a source with data"
    );
    // Windows grow: a longer window never holds fewer events than a shorter one.
    let totals: Vec<u64> = d.windows.values().map(|c| c.total).collect();
    assert!(
        totals.windows(2).all(|p| p[0] <= p[1]),
        "{name}: {totals:?}"
    );
    let b = s.fetch().await.expect("fetch() again");
    assert_eq!(
        a.iter().find(|x| x.name == name),
        b.iter().find(|x| x.name == name),
        "two fetches of unchanged data differ"
    );
}
