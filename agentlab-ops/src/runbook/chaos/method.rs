//! The method: faults injected (one after the other, or together), held for their durations
//! while the stop conditions are polled and the hypothesis is observed, then removed and
//! checked. A stop condition out of tolerance, or a fault that does not go in, ends the
//! experiment at once: everything injected is removed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::faults::{self, Ctx, Injected};
use super::probes::{self, ProbeResult};
use crate::chaos::{Experiment, Fault, FaultProxy};
use crate::environment::Environment;
use crate::host::HostEntry;
use crate::report::{Action, Outcome};
use crate::runbook::run::Run;

/// How one fault on one target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEnd {
    /// Injected, held, removed, and the target checked to be as it was.
    Removed,
    /// Its removal or the check after it failed: the experiment failed (the host's watchdog
    /// still removes it when the lease runs out).
    RemovalFailed,
    /// It did not go in (the error says why).
    InjectionFailed,
    /// Not run: an earlier fault failed or a stop condition tripped.
    NotRun,
    /// Dry-run.
    Planned,
}

/// What a hypothesis probe showed while a fault was on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The probe.
    pub probe: String,
    /// Polls.
    pub samples: u32,
    /// Polls out of tolerance.
    pub out_of_tolerance: u32,
    /// Median latency (HTTP probes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// Highest latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    /// The last result.
    pub last: String,
}

/// One fault on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultOutcome {
    /// `proxy`, `netem`, `service_stop`, `stress` (or the proxy's name).
    pub fault: String,
    /// Its place in the method.
    pub index: usize,
    /// A host, or `local` (the proxy).
    pub target: String,
    /// How it ended.
    pub end: FaultEnd,
    /// How long it was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_ms: Option<u64>,
    /// The check after the removal (`root qdisc noqueue 0:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hypothesis while it was on.
    pub observed: Vec<Observation>,
}

/// The method's result.
pub(super) struct Ran {
    pub faults: Vec<FaultOutcome>,
    pub stopped_by: Option<String>,
}

/// What the method runs on.
pub(super) struct Method<'a> {
    pub env: &'a Environment,
    pub run: &'a Run,
    pub exp: &'a Experiment,
    pub targets: Vec<&'a HostEntry>,
    pub proxies: BTreeMap<usize, Arc<FaultProxy>>,
}

/// One injected fault being held.
struct Active {
    out: usize,
    injected: Injected,
    since: Instant,
    ends: Instant,
    samples: BTreeMap<String, (u32, u32, Vec<f64>, String)>,
}

impl Method<'_> {
    fn groups(&self) -> Vec<Vec<usize>> {
        let n = self.exp.method.len();
        if self.exp.parallel {
            vec![(0..n).collect()]
        } else {
            (0..n).map(|i| vec![i]).collect()
        }
    }

    fn outcome(&self, i: usize, target: &str, end: FaultEnd) -> FaultOutcome {
        FaultOutcome {
            fault: self.exp.method[i].name(),
            index: i,
            target: target.to_string(),
            end,
            held_ms: None,
            after: None,
            error: None,
            observed: Vec::new(),
        }
    }

    fn targets_of(&self, f: &Fault) -> Vec<String> {
        if f.on_hosts() {
            self.targets.iter().map(|h| h.config.name.clone()).collect()
        } else {
            vec!["local".into()]
        }
    }

    /// Every fault, group by group; the outcomes in method order.
    pub async fn run(&self) -> Ran {
        let mut ran = Ran {
            faults: Vec::new(),
            stopped_by: None,
        };
        let mut failed = false;
        for g in self.groups() {
            if failed || ran.stopped_by.is_some() {
                for &i in &g {
                    for t in self.targets_of(&self.exp.method[i]) {
                        ran.faults.push(self.outcome(i, &t, FaultEnd::NotRun));
                    }
                }
                continue;
            }
            let mut active = Vec::new();
            for &i in &g {
                if failed {
                    for t in self.targets_of(&self.exp.method[i]) {
                        ran.faults.push(self.outcome(i, &t, FaultEnd::NotRun));
                    }
                    continue;
                }
                failed |= !self.inject(i, &mut ran.faults, &mut active).await;
            }
            if !failed {
                ran.stopped_by = self.hold(&mut active, &mut ran.faults).await;
            }
            self.remove_all(&mut active, &mut ran.faults).await;
        }
        ran
    }

    /// Inject fault `i` on each of its targets; false when one failed (the rest not tried).
    async fn inject(
        &self,
        i: usize,
        outs: &mut Vec<FaultOutcome>,
        active: &mut Vec<Active>,
    ) -> bool {
        let f = &self.exp.method[i];
        let c = Ctx {
            env: self.env,
            run: self.run,
            lease: self.exp.lease.0,
            index: i,
        };
        let hosts: Vec<Option<&HostEntry>> = if f.on_hosts() {
            self.targets.iter().map(|h| Some(*h)).collect()
        } else {
            vec![None]
        };
        for h in hosts {
            let target = h.map_or("local".to_string(), |h| h.config.name.clone());
            let r = match h {
                Some(h) => faults::on_host(&c, f, h).await,
                None => faults::on_proxy(&c, f, self.proxies.get(&i).cloned()).await,
            };
            match r {
                Ok(Some(injected)) => {
                    outs.push(self.outcome(i, &target, FaultEnd::Removed));
                    let now = Instant::now();
                    active.push(Active {
                        out: outs.len() - 1,
                        injected,
                        since: now,
                        ends: now + f.duration(),
                        samples: BTreeMap::new(),
                    });
                }
                Ok(None) => outs.push(self.outcome(i, &target, FaultEnd::Planned)),
                Err(e) => {
                    let mut o = self.outcome(i, &target, FaultEnd::InjectionFailed);
                    o.error = Some(e.to_string());
                    outs.push(o);
                    return false;
                }
            }
        }
        true
    }

    /// Poll until every active fault's time is up (each removed then), or a stop condition
    /// trips (its reason returned; the caller removes the rest at once).
    async fn hold(&self, active: &mut Vec<Active>, outs: &mut [FaultOutcome]) -> Option<String> {
        let poll = self.exp.stop.poll.0;
        while !active.is_empty() {
            let tick = Instant::now();
            let (stop, seen) = futures::join!(
                probes::evaluate_all(self.env, &self.exp.stop.probes, poll),
                probes::evaluate_all(self.env, &self.exp.hypothesis, poll),
            );
            for a in active.iter_mut() {
                observe(a, &seen);
            }
            if let Some(why) = probes::failures(&stop) {
                self.run.record(
                    "stop_condition",
                    Action::Read,
                    Outcome::Fail,
                    format!("tripped: {why}; removing every fault now"),
                );
                return Some(why);
            }
            let now = Instant::now();
            let (done, rest): (Vec<Active>, Vec<Active>) =
                active.drain(..).partition(|a| a.ends <= now);
            *active = rest;
            let mut done = done;
            self.remove_all(&mut done, outs).await;
            let next = active.iter().map(|a| a.ends).min();
            let wake = next.map_or(tick + poll, |n| n.min(tick + poll));
            tokio::time::sleep_until(wake.into()).await;
        }
        None
    }

    /// Remove each (its undo settled), then check the target.
    async fn remove_all(&self, active: &mut Vec<Active>, outs: &mut [FaultOutcome]) {
        for a in active.drain(..) {
            let o = &mut outs[a.out];
            o.held_ms = Some(a.since.elapsed().as_millis() as u64);
            o.observed = a.samples.into_iter().map(summarise).collect();
            let name = format!("{}[{}]:{}:verify", o.fault, o.index, o.target);
            if !self.run.settle(&a.injected.undo).await {
                o.end = FaultEnd::RemovalFailed;
                o.error = Some(format!(
                    "{}: the removal failed (see its undo step)",
                    a.injected.undo
                ));
                self.run
                    .record(&name, Action::Read, Outcome::Skipped, "the removal failed");
                continue;
            }
            match faults::verify(&a.injected.verify).await {
                Ok(s) => {
                    self.run
                        .record(&name, Action::Read, Outcome::Pass, s.clone());
                    o.after = Some(s);
                }
                Err(e) => {
                    self.run
                        .record(&name, Action::Read, Outcome::Fail, e.to_string());
                    o.end = FaultEnd::RemovalFailed;
                    o.error = Some(e.to_string());
                }
            }
        }
    }
}

fn observe(a: &mut Active, seen: &[ProbeResult]) {
    for r in seen {
        let e = a
            .samples
            .entry(r.probe.clone())
            .or_insert_with(|| (0, 0, Vec::new(), String::new()));
        e.0 += 1;
        e.1 += u32::from(!r.ok);
        if let Some(ms) = r.latency_ms {
            e.2.push(ms);
        }
        e.3 = r.observed.clone();
    }
}

fn summarise(
    (probe, (samples, bad, mut lat, last)): (String, (u32, u32, Vec<f64>, String)),
) -> Observation {
    lat.sort_by(f64::total_cmp);
    Observation {
        probe,
        samples,
        out_of_tolerance: bad,
        latency_p50_ms: lat.get(lat.len() / 2).copied(),
        latency_max_ms: lat.last().copied(),
        last,
    }
}
