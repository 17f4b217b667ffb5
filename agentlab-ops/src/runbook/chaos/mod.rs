//! The spec's **Chaos Engineering** runbook: `chaos_run` runs an experiment (a file the team
//! keeps, or inline): the steady-state hypothesis checked (nothing is injected when it does not
//! hold), the faults injected each with its removal registered first and a dead-man's switch on
//! its host, the stop conditions polled while they are on, every fault removed and its target
//! checked, the hypothesis checked again. `chaos_plan` resolves the targets and prints the plan
//! (injects nothing); `chaos_list` lists the experiments in `[chaos] dir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::chaos::{self, Experiment, Fault, FaultProxy};
use crate::environment::Environment;
use crate::error::{Error, ErrorKind, Result};
use crate::host::HostEntry;
use crate::report::{Action, Outcome, Report};
use crate::runbook::registry::{
    Definition, OptionDoc, Validate, check_args, defaults_of, parse_args,
};
use crate::runbook::run::{Checked, Run, RunOptions};

mod faults;
mod list;
mod method;
mod probes;

pub use list::{ExperimentEntry, LIST, chaos_list};
pub use method::{FaultEnd, FaultOutcome, Observation};
pub use probes::ProbeResult;

/// Options of `chaos_run` and `chaos_plan`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosOptions {
    /// The experiment file (TOML, or `.json`); a name not found as a path is looked up in
    /// `[chaos] dir` (with `.toml` added when it has no extension).
    pub experiment: Option<String>,
    /// The experiment itself, as JSON (instead of a file): what a script builds.
    pub definition: Option<serde_json::Value>,
}

impl Validate for ChaosOptions {
    fn validate(&self) -> std::result::Result<(), String> {
        match (&self.experiment, &self.definition) {
            (None, None) => Err("experiment: a file (or definition: the experiment inline)".into()),
            (Some(_), Some(_)) => Err("experiment and definition: one or the other".into()),
            _ => Ok(()),
        }
    }
}

/// How the experiment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The hypothesis held before and after, every fault was removed.
    Held,
    /// The hypothesis did not hold after the faults were removed: a weakness found.
    Deviated,
    /// A stop condition ended it early (every fault removed).
    Stopped,
    /// A fault did not go in; what went in was removed.
    Aborted,
    /// A fault's removal failed: the experiment failed.
    RemovalFailed,
    /// The hypothesis did not hold before: nothing was injected.
    NotRun,
    /// Dry-run: the plan only.
    Planned,
}

/// The payload of `chaos_run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChaosPayload {
    /// The experiment's title.
    pub title: String,
    /// Its file, when it came from one.
    pub file: Option<String>,
    /// The hosts its host faults went to.
    pub targets: Vec<String>,
    /// What it does, one line per fault.
    pub plan: Vec<String>,
    /// The hypothesis before the method.
    pub hypothesis_before: Vec<ProbeResult>,
    /// The hypothesis after every fault was removed.
    pub hypothesis_after: Vec<ProbeResult>,
    /// Each fault on each target.
    pub faults: Vec<FaultOutcome>,
    /// The stop condition that ended it, if one did.
    pub stopped_by: Option<String>,
    /// How it ended.
    pub verdict: Verdict,
}

/// The experiment of the options, and its file.
pub fn load(env: &Environment, o: &ChaosOptions) -> Result<(Experiment, Option<String>)> {
    if let Some(v) = &o.definition {
        let x: Experiment = serde_path_to_error::deserialize(v.clone())
            .map_err(|e| Error::config(format!("definition: {}: {}", e.path(), e.inner())))?;
        return x.validated("definition").map(|x| (x, None));
    }
    let name = o.experiment.clone().unwrap_or_default();
    let path = resolve(&env.config.chaos.dir, &name);
    Ok((
        Experiment::from_file(&path)?,
        Some(path.display().to_string()),
    ))
}

fn resolve(dir: &Path, name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.exists() || p.is_absolute() {
        return p;
    }
    let mut in_dir = dir.join(name);
    if in_dir.extension().is_none() {
        in_dir.set_extension("toml");
    }
    if in_dir.exists() { in_dir } else { p }
}

/// One line per fault.
fn plan_lines(exp: &Experiment, targets: &[String]) -> Vec<String> {
    let on = |f: &Fault| {
        if f.on_hosts() {
            targets.join(", ")
        } else {
            "the runner".into()
        }
    };
    let how = if exp.parallel { "together" } else { "in order" };
    exp.method
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "{}. {} on {} for {} ({how})",
                i + 1,
                f.name(),
                on(f),
                crate::units::format_duration(f.duration())
            )
        })
        .collect()
}

/// The hosts the experiment's host faults go to.
fn resolve_targets<'a>(
    env: &'a Environment,
    run: &Run,
    exp: &Experiment,
) -> Result<Vec<&'a HostEntry>> {
    if !exp.method.iter().any(Fault::on_hosts) {
        run.skip(
            "targets",
            Action::Read,
            "no host fault: the proxy runs in the runner",
        );
        return Ok(Vec::new());
    }
    let all: Vec<(String, Vec<String>)> = env
        .hosts
        .iter()
        .map(|h| (h.config.name.clone(), h.config.tags.clone()))
        .collect();
    let names = chaos::select(&exp.targets, &all).map_err(Error::config)?;
    if names.is_empty() {
        return Err(Error::config(
            "targets: no host matches (names, tags, exclude)",
        ));
    }
    let t = &exp.targets;
    let mut why = format!("select {}", t.select);
    if !t.tags.is_empty() {
        why += &format!(", tags {}", t.tags.join(","));
    }
    if !t.exclude.is_empty() {
        why += &format!(", excluding {}", t.exclude.join(","));
    }
    run.record(
        "targets",
        Action::Read,
        Outcome::Pass,
        format!("{} ({why})", names.join(", ")),
    );
    names.iter().map(|n| env.host(n)).collect()
}

/// The spec's Chaos Engineering runbook.
pub async fn chaos_run(env: &Environment, o: &ChaosOptions, ro: &RunOptions) -> Report {
    run_as("chaos_run", env, o, ro).await
}

async fn run_as(name: &str, env: &Environment, o: &ChaosOptions, ro: &RunOptions) -> Report {
    let loaded = load(env, o);
    let mut ro = ro.clone();
    if let Ok((exp, _)) = &loaded {
        let budget = exp.method_duration() + Duration::from_secs(300);
        ro.deadline = ro.deadline.or(Some(budget));
    }
    env.execute(name, &ro, |run| async move {
        let (exp, file) = loaded?;
        let p = experiment(env, &run, &exp, file).await?;
        Ok(serde_json::to_value(&p).unwrap_or_default())
    })
    .await
}

async fn experiment(
    env: &Environment,
    run: &Run,
    exp: &Experiment,
    file: Option<String>,
) -> Result<ChaosPayload> {
    let targets = resolve_targets(env, run, exp)?;
    let names: Vec<String> = targets.iter().map(|h| h.config.name.clone()).collect();
    let mut out = ChaosPayload {
        title: exp.title.clone(),
        file,
        plan: plan_lines(exp, &names),
        targets: names,
        hypothesis_before: Vec::new(),
        hypothesis_after: Vec::new(),
        faults: Vec::new(),
        stopped_by: None,
        verdict: Verdict::Planned,
    };
    let proxies = if run.is_dry_run() {
        let n = exp.hypothesis.len();
        run.skip(
            "hypothesis:before",
            Action::Read,
            format!("dry-run: {n} probes, checked before and after"),
        );
        BTreeMap::new()
    } else {
        let proxies = start_proxies(run, exp).await?;
        out.hypothesis_before = hypothesis(env, run, exp, "hypothesis:before").await?;
        if probes::failures(&out.hypothesis_before).is_some() {
            out.verdict = Verdict::NotRun;
            run.escalate(
                "hypothesis_not_met",
                exp.title.clone(),
                probes::failures(&out.hypothesis_before).unwrap_or_default(),
                "every probe within tolerance",
                "the steady state does not hold: nothing was injected",
            );
            return Ok(out);
        }
        proxies
    };
    let m = method::Method {
        env,
        run,
        exp,
        targets,
        proxies,
    };
    let ran = m.run().await;
    out.faults = ran.faults;
    out.stopped_by = ran.stopped_by;
    if run.is_dry_run() {
        run.skip("hypothesis:after", Action::Read, "dry-run");
        return Ok(out);
    }
    out.hypothesis_after = hypothesis(env, run, exp, "hypothesis:after").await?;
    out.verdict = judge(run, exp, &out);
    Ok(out)
}

/// Start each proxy fault's proxy, untouched: the hypothesis is checked through it.
async fn start_proxies(run: &Run, exp: &Experiment) -> Result<BTreeMap<usize, Arc<FaultProxy>>> {
    let mut out = BTreeMap::new();
    for (i, f) in exp.method.iter().enumerate() {
        if let Fault::Proxy {
            listen, upstream, ..
        } = f
        {
            let plan =
                format!("proxy {listen} → {upstream}, passing traffic untouched until its fault");
            let p = run
                .change_live(
                    &format!("{}[{i}]:proxy", f.name()),
                    plan,
                    FaultProxy::start(listen, upstream),
                    None,
                )
                .await?;
            if let Some(p) = p {
                out.insert(i, Arc::new(p));
            }
        }
    }
    Ok(out)
}

async fn hypothesis(
    env: &Environment,
    run: &Run,
    exp: &Experiment,
    name: &str,
) -> Result<Vec<ProbeResult>> {
    let limit = env.config.service.timeout.0.max(Duration::from_secs(1)) * 3;
    run.check(name, None, async {
        let rs = probes::evaluate_all(env, &exp.hypothesis, limit).await;
        let (outcome, summary) = match probes::failures(&rs) {
            _ if rs.is_empty() => (
                Outcome::Warn,
                "no probe: the hypothesis inspects nothing".to_string(),
            ),
            Some(bad) => (Outcome::Fail, bad),
            None => (
                Outcome::Pass,
                format!("{} probes within tolerance", rs.len()),
            ),
        };
        Ok(Checked::with(rs, outcome, summary))
    })
    .await
}

/// The verdict, with its escalations: a removal that failed fails the run.
fn judge(run: &Run, exp: &Experiment, out: &ChaosPayload) -> Verdict {
    let bad: Vec<String> = out
        .faults
        .iter()
        .filter(|f| f.end == FaultEnd::RemovalFailed)
        .map(|f| {
            format!(
                "{} on {}: {}",
                f.fault,
                f.target,
                f.error.clone().unwrap_or_default()
            )
        })
        .collect();
    if !bad.is_empty() {
        let e = Error::new(
            ErrorKind::Conflict,
            format!("faults not removed: {}", bad.join("; ")),
        );
        run.escalate(
            "fault_not_removed",
            exp.title.clone(),
            bad.join("; "),
            "every fault removed",
            "a fault may still be on: its host's watchdog removes it when the lease ends",
        );
        run.fail(e);
        return Verdict::RemovalFailed;
    }
    if let Some(f) = out
        .faults
        .iter()
        .find(|f| f.end == FaultEnd::InjectionFailed)
    {
        let why = format!(
            "{} on {}: {}",
            f.fault,
            f.target,
            f.error.clone().unwrap_or_default()
        );
        run.fail(Error::new(
            ErrorKind::Unexpected,
            format!("a fault did not go in: {why}"),
        ));
        return Verdict::Aborted;
    }
    if let Some(bad) = probes::failures(&out.hypothesis_after) {
        run.escalate(
            "hypothesis_deviated",
            exp.title.clone(),
            bad,
            "every probe within tolerance after the faults",
            "the service did not return to its steady state: a weakness found",
        );
        return Verdict::Deviated;
    }
    if let Some(why) = &out.stopped_by {
        run.escalate(
            "stop_condition",
            exp.title.clone(),
            why.clone(),
            "no stop condition trips",
            "a stop condition ended the experiment early; every fault was removed",
        );
        return Verdict::Stopped;
    }
    Verdict::Held
}

const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "experiment",
        kind: "path",
        help: "the experiment file (TOML or .json); a bare name is looked up in [chaos] dir",
    },
    OptionDoc {
        name: "definition",
        kind: "object",
        help: "the experiment inline, as JSON (instead of a file)",
    },
];

const EXAMPLE: &str = r#"{"definition": {"title": "the API survives a slow dependency", "hypothesis": [{"kind": "http", "url": "/health", "status": 200}], "method": [{"kind": "proxy", "listen": "127.0.0.1:15432", "upstream": "127.0.0.1:5432", "latency": "500ms", "duration": "30s"}]}}"#;

/// `chaos_run`.
pub static RUN: Definition = Definition {
    name: "chaos_run",
    command: "chaos run",
    aliases: &[],
    summary: "run a chaos experiment: hypothesis checked, faults injected with a dead-man's switch each, stop conditions polled, every fault removed and checked, hypothesis again",
    changes: true,
    steps: &[
        "targets: hosts by name or tag, count(n) or percent(n), less the excluded",
        "<fault>[i]:proxy: a proxy fault's proxy started, untouched",
        "hypothesis:before: every probe; one out of tolerance injects nothing (escalates)",
        "<fault>[i]:<host>:inject: a lease armed on the host (it removes the fault itself when the runner stops renewing), the removal registered, the fault injected",
        "stop_condition: polled every stop.poll while a fault is on; out of tolerance removes every fault at once",
        "<fault>[i]:<host>:remove, :verify: removed when its time is up, the target checked to be as it was",
        "hypothesis:after: every probe again; out of tolerance escalates (deviated)",
    ],
    options: OPTIONS,
    defaults: defaults_of::<ChaosOptions>,
    check_options: check_args::<ChaosOptions>,
    example: EXAMPLE,
    start: |env, v, run| {
        Box::pin(async move {
            let o: ChaosOptions = parse_args("chaos_run", v)?;
            Ok(chaos_run(env, &o, &run).await)
        })
    },
};

/// `chaos_plan`: `chaos_run` as a dry-run.
pub static PLAN: Definition = Definition {
    name: "chaos_plan",
    command: "chaos plan",
    aliases: &[],
    summary: "resolve a chaos experiment's targets and print its plan; injects nothing",
    changes: false,
    steps: &["targets, then each fault planned on each target"],
    options: OPTIONS,
    defaults: defaults_of::<ChaosOptions>,
    check_options: check_args::<ChaosOptions>,
    example: EXAMPLE,
    start: |env, v, run| {
        Box::pin(async move {
            let o: ChaosOptions = parse_args("chaos_plan", v)?;
            Ok(run_as("chaos_plan", env, &o, &run.dry_run(true)).await)
        })
    },
};
