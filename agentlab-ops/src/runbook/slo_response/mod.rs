//! The spec's **SLO Violation Response**: assess every SLO (budget left, burn rate per window,
//! time until the budget is gone), determine the zone, and act on it — green: nothing (or back
//! to normal); yellow: pause the non-critical deployment workflows and set a deploy freeze the
//! deploy runbooks respect (a `critical` release still passes); red: freeze every deployment,
//! tell stakeholders and page, once. Measures only ever rise while the zone is yellow or red;
//! back to green (or with `resume_normal`) exactly what was done is taken back. Watch mode
//! re-evaluates on an interval.

use serde::{Deserialize, Serialize};

use crate::config::Dur;
use crate::environment::Environment;
use crate::error::Result;
use crate::report::{Report, Severity};
use crate::runbook::registry::{Definition, OptionDoc, Validate, check_args, defaults_of};
use crate::runbook::run::{Checked, Run, RunOptions};
use crate::slo::Zone;

mod act;
mod assess;
pub mod freeze;

pub use assess::{SloAssessment, time_to_exhaustion};
pub use freeze::{Freeze, FreezeLevel, FreezeStore};

/// Options of `slo_response`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloResponseOptions {
    /// Take every measure back now, whatever the zone (a human's call: it is reported).
    pub resume_normal: bool,
    /// Re-evaluate every `watch_interval` for `watch_for` (the config's by default).
    pub watch: bool,
    /// Watch mode: time between two evaluations.
    pub watch_interval: Option<Dur>,
    /// Watch mode: how long to watch.
    pub watch_for: Option<Dur>,
}

impl Validate for SloResponseOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.watch_interval.is_some_and(|d| d.0.is_zero()) {
            return Err("watch_interval: must be above 0".into());
        }
        if self.resume_normal && self.watch {
            return Err("resume_normal and watch: choose one".into());
        }
        Ok(())
    }
}

/// The payload of `slo_response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResponsePayload {
    /// The zone at the last evaluation.
    pub zone: Zone,
    /// Every SLO at the last evaluation.
    pub slos: Vec<SloAssessment>,
    /// The freeze before the run.
    pub freeze_before: Option<Freeze>,
    /// The freeze after it.
    pub freeze: Option<Freeze>,
    /// What was changed (planned, under dry-run), in order.
    pub actions: Vec<String>,
    /// Evaluations made (more than one in watch mode).
    pub evaluations: u32,
}

/// The spec's SLO Violation Response.
pub async fn slo_response(env: &Environment, o: &SloResponseOptions, ro: &RunOptions) -> Report {
    let c = &env.config.slo_response;
    let watch_for = o.watch_for.map_or(c.watch_for.0, |d| d.0);
    let mut ro = ro.clone();
    let extra = if o.watch {
        watch_for
    } else {
        std::time::Duration::ZERO
    };
    ro.deadline = ro.deadline.or(Some(c.deadline.0 + extra));
    env.execute("slo_response", &ro, |run| async move {
        let store = FreezeStore::of(env)?;
        let interval = o.watch_interval.map_or(c.watch_interval.0, |d| d.0);
        let until = env.clock.now() + chrono::Duration::from_std(watch_for).unwrap_or_default();
        let mut out: Option<SloResponsePayload> = None;
        let mut round = 1;
        loop {
            let r = respond(env, &run, o, &store, round, out.as_ref()).await;
            match r {
                Ok(p) => out = Some(p),
                // Watch mode rides out a failed evaluation (it is in the report).
                Err(e) if o.watch && out.is_some() => {
                    run.finding(Severity::Warning, format!("round {round}"), e.to_string());
                }
                Err(e) => return Err(e),
            }
            let next = env.clock.now() + chrono::Duration::from_std(interval).unwrap_or_default();
            if !o.watch || next > until {
                break;
            }
            env.clock.sleep(interval).await;
            round += 1;
        }
        Ok(serde_json::to_value(&out).unwrap_or_default())
    })
    .await
}

fn step(name: &str, round: u32) -> String {
    if round == 1 {
        name.to_string()
    } else {
        format!("{name}#{round}")
    }
}

/// One evaluation and its actions.
async fn respond(
    env: &Environment,
    run: &Run,
    o: &SloResponseOptions,
    store: &FreezeStore,
    round: u32,
    before: Option<&SloResponsePayload>,
) -> Result<SloResponsePayload> {
    let slos = assess::assessment(env, run, &step("assess", round)).await?;
    let zone = assess::overall(&slos);
    let current = run
        .check(&step("freeze:read", round), None, async {
            let f = store.read().await?;
            let s = f.as_ref().map_or("no deploy freeze".to_string(), |f| {
                format!(
                    "frozen ({}) since {} by {}",
                    f.level.as_str(),
                    f.since.to_rfc3339(),
                    f.run_id
                )
            });
            Ok(Checked::pass(f, s))
        })
        .await?;
    let mut out = SloResponsePayload {
        zone,
        slos,
        freeze_before: before.map_or(current.clone(), |b| b.freeze_before.clone()),
        freeze: current.clone(),
        actions: before.map(|b| b.actions.clone()).unwrap_or_default(),
        evaluations: round,
    };
    let reason = assess::reason_of(&out.slos);
    let want = if o.resume_normal {
        Some(None)
    } else {
        assess::wanted(zone)
    };
    let acted = match (want, current) {
        (None, _) => {
            judge_inconclusive(run, &out);
            return Ok(out);
        }
        (Some(None), None) => return Ok(out),
        (Some(None), Some(f)) => {
            if zone != Zone::Green {
                let msg = format!(
                    "measures taken back by hand while the zone is {}",
                    zone.as_str()
                );
                run.finding(Severity::Warning, "resume_normal", msg);
            }
            act::resume(env, run, store, f).await?
        }
        (Some(Some(level)), current) => {
            act::raise(env, run, store, current, level, &reason).await?
        }
    };
    out.actions.extend(acted.actions);
    out.freeze = acted.freeze;
    escalate(run, &out);
    Ok(out)
}

fn judge_inconclusive(run: &Run, out: &SloResponsePayload) {
    run.escalate(
        "slo_inconclusive",
        "slo",
        assess::reason_of(&out.slos),
        "SLO data to judge",
        "the SLOs cannot be judged: the measures in place are left as they are",
    );
}

fn escalate(run: &Run, out: &SloResponsePayload) {
    if out.zone == Zone::Red {
        run.escalate(
            "slo_red",
            "slo",
            assess::reason_of(&out.slos),
            "not red",
            "SLO red: every deployment is frozen; find the root cause and plan the fixes",
        );
    }
}

/// `slo_response`.
pub static SLO_RESPONSE: Definition = Definition {
    name: "slo_response",
    command: "slo respond",
    aliases: &["slo_violation_response"],
    summary: "assess the SLOs, determine the zone and act: pause workflows and freeze deploys (yellow), freeze all and page (red), resume at green",
    changes: true,
    steps: &[
        "assess every SLO: budget left, burn rates, time to exhaustion",
        "read the deploy freeze ([slo_response] freeze_flag)",
        "yellow: freeze non-critical deployments, disable [slo_response] workflows",
        "red: freeze all, disable red_workflows too, page once, notify",
        "green or resume_normal: enable what was disabled, resolve the page, lift the freeze",
    ],
    options: &[
        OptionDoc {
            name: "resume_normal",
            kind: "bool",
            help: "take every measure back now, whatever the zone",
        },
        OptionDoc {
            name: "watch",
            kind: "bool",
            help: "re-evaluate on an interval ([slo_response] watch_interval, watch_for)",
        },
        OptionDoc {
            name: "watch_interval",
            kind: "duration",
            help: "watch mode: time between evaluations",
        },
        OptionDoc {
            name: "watch_for",
            kind: "duration",
            help: "watch mode: how long to watch",
        },
    ],
    defaults: defaults_of::<SloResponseOptions>,
    check_options: check_args::<SloResponseOptions>,
    example: "",
    start: |env, v, run| {
        Box::pin(async move {
            let o: SloResponseOptions = crate::runbook::registry::parse_args("slo_response", v)?;
            Ok(slo_response(env, &o, &run).await)
        })
    },
};
