//! `drill`: every runbook of the catalogue run against the sandbox scenarios it is meant to
//! catch, each checked for the reaction it should have — the right escalation, the undo ran,
//! the flag removed, the traffic back on blue. The spec's Runbook Maintenance "Validate
//! Steps", and onboarding's walkthrough: a game day in about a minute, with nothing outside
//! the sandbox touched (runbooks that would change this machine's accounts, keys or
//! packages run as dry runs and must plan every step).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::{Outcome, Report, Verdict};
use crate::runbook::registry::{self, Definition};
use crate::runbook::run::RunOptions;
use crate::sandbox::{Sandbox, Scenario};

/// What a case expects of the last run.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// This verdict.
    Verdict(Verdict),
    /// An escalation with this criterion.
    Escalates(&'static str),
    /// Not failed, and (dry runs) at least one change planned.
    Planned,
    /// Not failed.
    Completes,
    /// Not failed, and a step's summary says this.
    Says(&'static str),
}

/// What must hold in the sandbox after the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Nothing more.
    Nothing,
    /// No maintenance, incident or emergency flag left.
    NoFlags,
    /// The emergency flag is up.
    EmergencyFlag,
    /// All traffic on blue (the rollout's undo ran).
    BlueOnly,
    /// All traffic on green.
    GreenOnly,
    /// The service runs on every host.
    Running,
    /// Deployments are frozen (`[slo_response] freeze_flag`).
    Frozen,
}

/// One runbook/scenario pair.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The runbook checked (the last of `runs`).
    pub runbook: &'static str,
    /// The sandbox scenario.
    pub scenario: Scenario,
    /// Runs before it in the same sandbox: (runbook, options JSON).
    pub before: &'static [(&'static str, &'static str)],
    /// Its options, JSON (`""`: the runbook's example, else its defaults).
    pub options: &'static str,
    /// Dry run (the runbook would change this machine, not the sandbox).
    pub dry_run: bool,
    /// The reaction expected.
    pub expect: Expect,
    /// What must hold after.
    pub after: After,
}

const fn case(runbook: &'static str, scenario: Scenario, expect: Expect) -> Case {
    Case {
        runbook,
        scenario,
        before: &[],
        options: "",
        dry_run: false,
        expect,
        after: After::Nothing,
    }
}

const fn changes(runbook: &'static str, scenario: Scenario, expect: Expect, after: After) -> Case {
    Case {
        runbook,
        scenario,
        before: &[],
        options: "",
        dry_run: false,
        expect,
        after,
    }
}

const fn plan(runbook: &'static str) -> Case {
    Case {
        runbook,
        scenario: Scenario::Healthy,
        before: &[],
        options: "",
        dry_run: true,
        expect: Expect::Planned,
        after: After::NoFlags,
    }
}

use Scenario as S;

const VERSION: &str = r#"{"version": "1.5.0"}"#;

/// Every pair the drill runs.
pub static CASES: &[Case] = &[
    case(
        "morning_check",
        S::Healthy,
        Expect::Verdict(Verdict::Healthy),
    ),
    case(
        "morning_check",
        S::Degraded,
        Expect::Escalates("error_budget_low"),
    ),
    case(
        "morning_check",
        S::BackupsMissing,
        Expect::Escalates("backup_missing"),
    ),
    case(
        "morning_check",
        S::MissingManifest,
        Expect::Escalates("backup_incomplete"),
    ),
    case(
        "morning_check",
        S::DiskFull,
        Expect::Escalates("resource_high"),
    ),
    case("handover", S::Healthy, Expect::Completes),
    case(
        "backup_verify",
        S::Healthy,
        Expect::Verdict(Verdict::Healthy),
    ),
    case(
        "backup_verify",
        S::CorruptObject,
        Expect::Escalates("backup_corrupt"),
    ),
    case(
        "backup_verify",
        S::SizeDrop,
        Expect::Escalates("backup_size_trend"),
    ),
    case(
        "backup_verify",
        S::MissingManifest,
        Expect::Escalates("backup_incomplete"),
    ),
    changes("backup_take", S::Healthy, Expect::Completes, After::NoFlags),
    changes(
        "backup_recover",
        S::Healthy,
        Expect::Completes,
        After::NoFlags,
    ),
    Case {
        options: VERSION,
        ..changes(
            "deploy_standard",
            S::Healthy,
            Expect::Verdict(Verdict::Healthy),
            After::NoFlags,
        )
    },
    Case {
        options: VERSION,
        ..changes(
            "deploy_blue_green",
            S::GreenHealthy,
            Expect::Verdict(Verdict::Healthy),
            After::GreenOnly,
        )
    },
    Case {
        options: VERSION,
        ..changes(
            "deploy_blue_green",
            S::GreenFailsAt50,
            Expect::Escalates("rollout_aborted"),
            After::BlueOnly,
        )
    },
    changes(
        "deploy_rollback",
        S::Healthy,
        Expect::Completes,
        After::NoFlags,
    ),
    changes(
        "restart",
        S::Healthy,
        Expect::Verdict(Verdict::Healthy),
        After::Running,
    ),
    changes(
        "emergency_shutdown",
        S::Healthy,
        Expect::Completes,
        After::EmergencyFlag,
    ),
    Case {
        before: &[("emergency_shutdown", "")],
        ..changes(
            "emergency_recover",
            S::Healthy,
            Expect::Completes,
            After::NoFlags,
        )
    },
    plan("weekly_maintenance"),
    changes(
        "slo_response",
        S::BudgetExhausted,
        Expect::Escalates("slo_red"),
        After::Frozen,
    ),
    changes(
        "alert_investigation",
        S::Incident,
        Expect::Escalates("known_issue"),
        After::Nothing,
    ),
    case("scale_assess", S::DiskFull, Expect::Completes),
    changes(
        "scale_vertical",
        S::Healthy,
        Expect::Completes,
        After::Nothing,
    ),
    changes(
        "scale_horizontal",
        S::Healthy,
        Expect::Completes,
        After::Nothing,
    ),
    changes("snapshot", S::Healthy, Expect::Completes, After::Nothing),
    case("cost_report", S::Healthy, Expect::Completes),
    case("access_review", S::Healthy, Expect::Completes),
    case("auth_timeline", S::Healthy, Expect::Completes),
    // The sandbox's hosts are reached with no key: each keeps the one it has, and says so.
    Case {
        dry_run: true,
        ..case(
            "rotate_ssh_key",
            S::Healthy,
            Expect::Escalates("rotation_failed"),
        )
    },
    changes(
        "rotate_secret",
        S::Healthy,
        Expect::Verdict(Verdict::Healthy),
        After::Nothing,
    ),
    plan("grant_access"),
    Case {
        dry_run: true,
        ..case(
            "revoke_access",
            S::Healthy,
            Expect::Says("nothing to revoke"),
        )
    },
    case("incident_evidence", S::Incident, Expect::Completes),
    plan("load_test"),
    plan("chaos_run"),
    case("chaos_plan", S::Healthy, Expect::Completes),
    case("chaos_list", S::Healthy, Expect::Completes),
    case(
        "monthly_review",
        S::Healthy,
        Expect::Verdict(Verdict::Healthy),
    ),
    case(
        "monthly_review",
        S::CorruptObject,
        Expect::Escalates("dr_drill_failed"),
    ),
];

/// One pair's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Runbook.
    pub runbook: String,
    /// Scenario.
    pub scenario: String,
    /// Dry run.
    pub dry_run: bool,
    /// It reacted as expected.
    pub passed: bool,
    /// What was expected, what happened.
    pub detail: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// The drill's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// Every pair, in order.
    pub cases: Vec<CaseResult>,
    /// Runbooks of the catalogue no pair covers (a drill gap).
    pub uncovered: Vec<String>,
    /// Every pair passed and every runbook is covered.
    pub passed: bool,
}

impl DrillReport {
    /// The pass/fail table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for c in &self.cases {
            let mode = if c.dry_run { " (dry run)" } else { "" };
            s.push_str(&format!(
                "{:<4}  {:<20} {:<18} {:>6}ms  {}{mode}\n",
                if c.passed { "PASS" } else { "FAIL" },
                c.runbook,
                c.scenario,
                c.duration_ms,
                c.detail
            ));
        }
        for u in &self.uncovered {
            s.push_str(&format!(
                "FAIL  {u:<20} {:<18}          no drill covers this runbook\n",
                "-"
            ));
        }
        let failed = self.cases.iter().filter(|c| !c.passed).count() + self.uncovered.len();
        s.push_str(&format!(
            "drill: {} pairs, {failed} failed\n",
            self.cases.len()
        ));
        s
    }
}

fn options_of(d: &Definition, c: &Case) -> serde_json::Value {
    if !c.options.is_empty() {
        return serde_json::from_str(c.options).unwrap_or_default();
    }
    d.example_options()
}

fn judge(c: &Case, r: &Report) -> Result<String, String> {
    let got = format!("{:?}", r.verdict).to_lowercase();
    let why = || {
        r.error
            .as_ref()
            .map(|e| format!(": {}", e.message))
            .unwrap_or_default()
    };
    match c.expect {
        Expect::Verdict(v) if r.verdict == v => Ok(format!("{got} as expected")),
        Expect::Verdict(v) => Err(format!("expected {v:?}, got {got}{}", why()).to_lowercase()),
        Expect::Escalates(k) if r.escalations.iter().any(|e| e.criterion == k) => {
            Ok(format!("escalated {k}"))
        }
        Expect::Escalates(k) => {
            let seen: Vec<&str> = r.escalations.iter().map(|e| e.criterion.as_str()).collect();
            Err(format!(
                "expected the escalation {k}, got {got} with [{}]{}",
                seen.join(", "),
                why()
            ))
        }
        Expect::Planned if r.verdict == Verdict::Failed => Err(format!("the plan failed{}", why())),
        Expect::Planned => {
            let n = r
                .checks
                .iter()
                .filter(|s| s.outcome == Outcome::Planned)
                .count();
            if n > 0 {
                Ok(format!("{n} changes planned, none made"))
            } else {
                Err("a dry run that plans no change".into())
            }
        }
        Expect::Says(_) | Expect::Completes if r.verdict == Verdict::Failed => {
            Err(format!("failed{}", why()))
        }
        Expect::Says(t) if r.checks.iter().any(|c| c.summary.contains(t)) => {
            Ok(format!("said {t:?}"))
        }
        Expect::Says(t) => Err(format!("no step says {t:?}")),
        Expect::Completes => Ok(format!("completed ({got})")),
    }
}

async fn check_after(env: &crate::environment::Environment, a: After) -> Result<(), String> {
    let exists = |p: &str| !p.is_empty() && std::path::Path::new(p).exists();
    let c = &env.config;
    let flags = [
        c.maintenance.flag.as_str(),
        c.emergency.flag.as_str(),
        c.deploy.as_ref().map_or("", |d| d.incident_flag.as_str()),
    ];
    match a {
        After::Nothing => Ok(()),
        After::NoFlags => match flags.iter().find(|f| exists(f)) {
            Some(f) => Err(format!("flag {f} left behind")),
            None => Ok(()),
        },
        After::EmergencyFlag if exists(&c.emergency.flag) => Ok(()),
        After::EmergencyFlag => Err("the emergency flag is not up".into()),
        After::Frozen if exists(&c.slo_response.freeze_flag) => Ok(()),
        After::Frozen => Err(format!("no deploy freeze ({})", c.slo_response.freeze_flag)),
        After::BlueOnly | After::GreenOnly => {
            let want = if a == After::BlueOnly { 0 } else { 100 };
            let got = match env.router.as_ref() {
                Some(r) => r.green().await.map_err(|e| e.to_string())?,
                None => return Err("no router".into()),
            };
            if got == want {
                Ok(())
            } else {
                Err(format!("green has {got}% of traffic, expected {want}%"))
            }
        }
        After::Running => {
            for (name, s) in &env.services {
                let st = s
                    .manager
                    .status()
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                if !st.active {
                    return Err(format!("the service is not running on {name}"));
                }
            }
            Ok(())
        }
    }
}

/// Run one case in a sandbox of its own.
pub async fn run_case(c: &Case, find: fn(&str) -> Option<&'static Definition>) -> CaseResult {
    let started = Instant::now();
    let outcome = async {
        let def = find(c.runbook).ok_or_else(|| format!("no runbook {}", c.runbook))?;
        let sb = Sandbox::start(c.scenario)
            .await
            .map_err(|e| e.to_string())?;
        let env = sb.environment().await.map_err(|e| e.to_string())?;
        let ro = || RunOptions::default().without_journal();
        for (name, opts) in c.before {
            let d = find(name).ok_or_else(|| format!("no runbook {name}"))?;
            let v = if opts.is_empty() {
                d.example_options()
            } else {
                serde_json::from_str(opts).unwrap_or_default()
            };
            let r = d
                .run(&env, v, ro())
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            if r.verdict == Verdict::Failed {
                return Err(format!("{name} (before) failed"));
            }
        }
        let r = def
            .run(&env, options_of(def, c), ro().dry_run(c.dry_run))
            .await
            .map_err(|e| e.to_string())?;
        let ok = judge(c, &r)?;
        check_after(&env, c.after).await?;
        env.close().await;
        Ok::<_, String>(ok)
    };
    let (passed, detail) = match tokio::time::timeout(Duration::from_secs(120), outcome).await {
        Ok(Ok(d)) => (true, d),
        Ok(Err(e)) => (false, e),
        Err(_) => (false, "did not finish within 120s".into()),
    };
    CaseResult {
        runbook: c.runbook.into(),
        scenario: c.scenario.to_string(),
        dry_run: c.dry_run,
        passed,
        detail: crate::secret::redact(&detail),
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// Run `cases` (a few at a time) with the runbooks `find` gives; `catalogue` is what must be
/// covered.
pub async fn run_with(
    cases: &[Case],
    find: fn(&str) -> Option<&'static Definition>,
    catalogue: &[&'static Definition],
) -> DrillReport {
    use futures::stream::{self, StreamExt};
    // Owned cases: a future borrowing from the stream would not be `Send` for every lifetime.
    let results: Vec<CaseResult> = stream::iter(cases.to_vec())
        .map(move |c| async move { run_case(&c, find).await })
        .buffered(4)
        .collect()
        .await;
    let uncovered: Vec<String> = catalogue
        .iter()
        .filter(|d| !cases.iter().any(|c| c.runbook == d.name))
        .map(|d| d.name.to_string())
        .collect();
    let passed = uncovered.is_empty() && results.iter().all(|c| c.passed);
    DrillReport {
        cases: results,
        uncovered,
        passed,
    }
}

/// The drill over the whole catalogue, optionally only the runbooks named.
pub async fn run(only: &[String]) -> DrillReport {
    let catalogue: Vec<&'static Definition> = if only.is_empty() {
        registry::all().to_vec()
    } else {
        registry::all()
            .iter()
            .copied()
            .filter(|d| {
                only.iter()
                    .any(|o| registry::find(o).is_some_and(|x| x.name == d.name))
            })
            .collect()
    };
    let cases: Vec<Case> = CASES
        .iter()
        // All of them when none is named: a pair whose runbook is gone fails, it is not dropped.
        .filter(|c| only.is_empty() || catalogue.iter().any(|d| d.name == c.runbook))
        .copied()
        .collect();
    run_with(&cases, registry::find, &catalogue).await
}
