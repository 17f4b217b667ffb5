//! Chaos engineering: the experiment model ([`Experiment`]: hypothesis, method, stop
//! conditions, targets), the fault proxy, and the `tc` commands of the netem fault with their
//! ownership checks. The runbook (`runbook::chaos`) injects and removes the faults.

pub mod experiment;
mod fields;
pub mod netem;
pub mod proxy;

pub use experiment::{Experiment, Fault, Probe, Selection, StopConditions, Targets};
pub use proxy::{FaultProxy, Toxics};

/// The hosts `t` selects among `hosts` (`(name, tags)`), in name order: by name or tag (none
/// given: all), less the excluded, then `count`/`percent` of them chosen at random (`seed`
/// for the same choice again). An unknown host name is an error naming it.
pub fn select(t: &Targets, hosts: &[(String, Vec<String>)]) -> Result<Vec<String>, String> {
    for n in t.hosts.iter().chain(&t.exclude) {
        if !hosts.iter().any(|(h, _)| h == n) {
            return Err(format!("targets: no host {n:?} in [[hosts]]"));
        }
    }
    let mut matching: Vec<String> = hosts
        .iter()
        .filter(|(h, tags)| {
            (t.hosts.is_empty() && t.tags.is_empty())
                || t.hosts.contains(h)
                || tags.iter().any(|g| t.tags.contains(g))
        })
        .filter(|(h, _)| !t.exclude.contains(h))
        .map(|(h, _)| h.clone())
        .collect();
    matching.sort();
    let want = match t.select {
        Selection::All => matching.len(),
        Selection::Count(n) => n.min(matching.len()),
        Selection::Percent(p) => (matching.len() * usize::from(p)).div_ceil(100),
    };
    let mut rng = t
        .seed
        .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
    rng.shuffle(&mut matching);
    matching.truncate(want);
    matching.sort();
    Ok(matching)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<(String, Vec<String>)> {
        (1..=8)
            .map(|i| {
                let tag = if i <= 4 { "web" } else { "worker" };
                (format!("h{i}"), vec![tag.to_string()])
            })
            .collect()
    }

    #[test]
    fn selection_by_tag_count_percent_and_exclusion() {
        let t = |tags: &[&str], select: &str, exclude: &[&str]| Targets {
            tags: tags.iter().map(|s| s.to_string()).collect(),
            select: Selection::parse(select).unwrap(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            seed: Some(7),
            ..Targets::default()
        };
        assert_eq!(
            select(&t(&["web"], "all", &["h2"]), &hosts()).unwrap(),
            ["h1", "h3", "h4"]
        );
        let two = select(&t(&["worker"], "count(2)", &[]), &hosts()).unwrap();
        assert_eq!(two.len(), 2);
        assert!(
            two.iter()
                .all(|h| ["h5", "h6", "h7", "h8"].contains(&h.as_str()))
        );
        assert_eq!(
            two,
            select(&t(&["worker"], "count(2)", &[]), &hosts()).unwrap(),
            "seeded"
        );
        assert_eq!(
            select(&t(&[], "percent(25)", &[]), &hosts()).unwrap().len(),
            2
        );
        assert_eq!(
            select(&t(&[], "percent(1)", &[]), &hosts()).unwrap().len(),
            1
        );
        let e = select(
            &Targets {
                hosts: vec!["web-9".into()],
                ..Targets::default()
            },
            &hosts(),
        )
        .unwrap_err();
        assert!(e.contains("web-9"), "{e}");
        assert!(Selection::parse("count(0)").is_err() && Selection::parse("percent(101)").is_err());
    }
}
