//! Resolution or escalation: the first known issue of `[investigation]` whose every condition
//! holds gives the documented fix (applied by its runbook with `apply_fix`, the alert silenced
//! with `silence`); otherwise the investigation escalates, naming what it found, and pages
//! once with the run id as the key.

use serde::{Deserialize, Serialize};

use super::isolate::IsolatedKind;
use super::{InvestigateOptions, Triage};
use crate::config::KnownIssue;
use crate::environment::Environment;
use crate::error::Result;
use crate::report::{Severity, Verdict};
use crate::runbook::run::{Run, RunOptions, Undo};

/// What the investigation concluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// No alert and nothing wrong.
    #[default]
    NothingFound,
    /// A known issue of the catalogue matched.
    KnownIssue,
    /// Unknown: escalated to incident response.
    Escalate,
}

/// The decision and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Which.
    pub kind: DecisionKind,
    /// The known issue matched.
    pub known_issue: Option<String>,
    /// Its documented fix.
    pub fix: Option<String>,
    /// The runbook that applies it.
    pub runbook: Option<String>,
    /// The fix's run: its verdict, when applied.
    pub applied: Option<Verdict>,
    /// The silence set on the alert.
    pub silence: Option<String>,
    /// The page's dedup key, when paged.
    pub paged: Option<String>,
    /// Why this decision.
    pub reason: String,
    /// What was found, one line each.
    pub findings: Vec<String>,
}

/// What was found, one line each, most telling first.
pub fn findings(t: &Triage) -> Vec<String> {
    let mut out = Vec::new();
    for c in t.failing() {
        let kind = match c.kind {
            IsolatedKind::Component => "component",
            IsolatedKind::Dependency => "dependency",
        };
        let detail = c
            .detail
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out.push(format!("{kind} {} is {}{detail}", c.name, c.status));
    }
    for l in &t.logs {
        if let Some(b) = l.burst_start {
            out.push(format!(
                "{}: errors spike from {}",
                l.host,
                b.format("%H:%MZ")
            ));
        }
        for n in &l.new_templates {
            out.push(format!(
                "{}: new error ({}×): {}",
                l.host, n.count, n.template
            ));
        }
        if let (Some(top), true) = (l.top.first(), l.burst_start.is_some()) {
            out.push(format!(
                "{}: top talker {} ({} lines)",
                l.host, top.key, top.count
            ));
        }
        if let Some(e) = &l.error {
            out.push(format!("{}: log not read: {e}", l.host));
        }
    }
    let before = t.timeline.iter().rev().find(|e| {
        e.offset_s <= 0
            && matches!(
                e.kind,
                super::EventKind::Deploy | super::EventKind::Rollback
            )
    });
    if let (Some(d), false) = (before, out.is_empty()) {
        out.push(format!(
            "last change before the alert ({}): {}",
            d.relative(),
            d.what
        ));
    }
    out
}

/// Why `k` matches `t`, or None.
fn matches(k: &KnownIssue, t: &Triage) -> Option<String> {
    let mut why = Vec::new();
    if let Some(p) = &k.pattern {
        let re = regex::RegexBuilder::new(p)
            .case_insensitive(true)
            .build()
            .ok()?;
        let hit = t.logs.iter().find_map(|l| {
            let texts = l
                .new_templates
                .iter()
                .chain(&l.templates)
                .flat_map(|x| [&x.template, &x.example]);
            texts
                .chain(l.last.iter().map(|m| &m.text))
                .find(|s| re.is_match(s))
                .map(|s| (l, s))
        })?;
        why.push(format!("{:?} matched on {}: {}", p, hit.0.host, hit.1));
    }
    if let Some(a) = &k.alert {
        (t.alert.as_ref()?.name == *a).then_some(())?;
        why.push(format!("alert {a}"));
    }
    for (want, kind) in [
        (&k.component, IsolatedKind::Component),
        (&k.dependency, IsolatedKind::Dependency),
    ] {
        if let Some(w) = want {
            let c = t.failing().find(|c| c.kind == kind && c.name == *w)?;
            why.push(format!("{w} is {}", c.status));
        }
    }
    Some(why.join("; "))
}

/// Decide, and act on it.
pub(super) async fn decide(
    env: &Environment,
    run: &Run,
    o: &InvestigateOptions,
    ro: &RunOptions,
    t: &Triage,
) -> Result<Decision> {
    let mut d = Decision {
        findings: findings(t),
        ..Decision::default()
    };
    let known = env
        .config
        .investigation
        .known_issues
        .iter()
        .find_map(|k| matches(k, t).map(|w| (k, w)));
    if let Some((k, why)) = known {
        d.kind = DecisionKind::KnownIssue;
        d.known_issue = Some(k.name.clone());
        d.fix = Some(k.fix.clone());
        d.runbook = k.runbook.clone();
        d.reason = format!("known issue {}: {why}", k.name);
        run.finding(Severity::Info, format!("known issue {}", k.name), &why);
        known_issue(env, run, o, ro, t, k, &mut d).await?;
        return Ok(d);
    }
    if t.alert.is_none() && d.findings.is_empty() {
        d.reason = "no alert firing and nothing wrong found".into();
        return Ok(d);
    }
    d.kind = DecisionKind::Escalate;
    let subject = t
        .alert
        .as_ref()
        .map_or("service".to_string(), |a| a.name.clone());
    d.reason = if d.findings.is_empty() {
        "no known issue matches and nothing wrong was found: the cause is unknown".into()
    } else {
        format!("no known issue matches: {}", d.findings.join("; "))
    };
    run.escalate(
        "unknown_issue",
        &subject,
        &d.reason,
        "a known issue",
        "escalate to incident response: the findings are in the triage",
    );
    d.paged = page(env, run, &subject, &d.reason).await;
    Ok(d)
}

async fn known_issue(
    env: &Environment,
    run: &Run,
    o: &InvestigateOptions,
    ro: &RunOptions,
    t: &Triage,
    k: &KnownIssue,
    d: &mut Decision,
) -> Result<()> {
    match (&k.runbook, o.apply_fix) {
        (Some(name), true) => d.applied = apply(env, run, ro, k, name).await?,
        (Some(name), false) => run.escalate(
            "known_issue",
            &k.name,
            &d.reason,
            "the fix applied",
            format!(
                "apply the documented fix: {} (`investigate --apply-fix` runs {name})",
                k.fix
            ),
        ),
        (None, _) => run.escalate(
            "known_issue",
            &k.name,
            &d.reason,
            "the fix applied",
            format!("apply the documented fix: {}", k.fix),
        ),
    }
    if let Some(dur) = o.silence {
        d.silence = silence(env, run, t, k, dur.0).await;
    }
    Ok(())
}

/// Run the fix's runbook (under the same dry-run and cancellation); its verdict.
async fn apply(
    env: &Environment,
    run: &Run,
    ro: &RunOptions,
    k: &KnownIssue,
    name: &str,
) -> Result<Option<Verdict>> {
    let def = crate::runbook::registry::get(name)
        .map_err(|e| e.with_context("known_issue", k.name.clone()))?;
    def.check(&k.runbook_options)?;
    let nested = RunOptions {
        dry_run: ro.dry_run,
        cancel: ro.cancel.clone(),
        no_journal: ro.no_journal,
        ..RunOptions::default()
    };
    let report = Box::pin(def.run(env, k.runbook_options.clone(), nested)).await?;
    let (v, id) = (report.verdict, report.run_id.clone());
    let s = format!("{name} (run {id}): {}", v.as_str());
    let outcome = match v {
        Verdict::Healthy => crate::report::Outcome::Pass,
        _ => crate::report::Outcome::Fail,
    };
    run.record("resolve:apply", crate::report::Action::Change, outcome, s);
    if v != Verdict::Healthy {
        run.escalate(
            "fix_failed",
            &k.name,
            format!("{name} ended {}", v.as_str()),
            "healthy",
            format!("the documented fix did not work (run {id}): escalate to incident response"),
        );
    }
    Ok(Some(v))
}

/// Silence the alert for `dur`, saying why; undone if the run fails after it.
async fn silence(
    env: &Environment,
    run: &Run,
    t: &Triage,
    k: &KnownIssue,
    dur: std::time::Duration,
) -> Option<String> {
    let (Some(src), Some(a)) = (env.alerts.clone(), t.alert.as_ref()) else {
        run.skip(
            "resolve:silence",
            crate::report::Action::Change,
            "no alert from [alertmanager] to silence",
        );
        return None;
    };
    let matcher = crate::alerts::Matcher {
        name: "alertname".into(),
        value: a.name.clone(),
        is_regex: false,
        is_equal: true,
    };
    let until = env.clock.now() + chrono::Duration::from_std(dur).unwrap_or_default();
    let comment = format!(
        "known issue {}: {} (agentlab-ops run {})",
        k.name,
        k.fix,
        run.run_id()
    );
    let plan = format!(
        "silence {} until {} on {}",
        a.name,
        until.to_rfc3339(),
        src.describe()
    );
    let s2 = src.clone();
    let id = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let id2 = id.clone();
    let undo = Undo::on_failure("silence", move || async move {
        let id = id2.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match id {
            Some(i) => s2.expire(&i).await,
            None => Ok(()),
        }
    });
    let r = run
        .change(
            "resolve:silence",
            plan,
            async {
                let i = src
                    .silence(&[matcher], until, "agentlab-ops", &comment)
                    .await?;
                *id.lock().unwrap_or_else(|e| e.into_inner()) = Some(i.clone());
                Ok(i)
            },
            Some(undo),
        )
        .await;
    r.ok().flatten()
}

/// Page once (dedup key = run id); None when not configured, not wanted or it failed (then
/// the escalation says to page by hand).
async fn page(env: &Environment, run: &Run, subject: &str, reason: &str) -> Option<String> {
    let c = &env.config.investigation;
    if !c.page {
        return None;
    }
    let Some(pd) = env.incidents.clone() else {
        run.finding(
            Severity::Warning,
            "pagerduty",
            "no [pagerduty] configured: page the on-call by hand",
        );
        return None;
    };
    let key = run.run_id().to_string();
    let summary = format!("{subject} on {}: {reason}", env.name());
    let summary: String = summary.chars().take(1000).collect();
    let plan = format!("page through {} (dedup key {key})", pd.describe());
    match run
        .change(
            "page",
            plan,
            pd.trigger(&key, &summary, &c.page_severity),
            None,
        )
        .await
    {
        Ok(Some(())) => Some(key),
        Ok(None) => None,
        Err(e) => {
            run.finding(
                Severity::Warning,
                "page",
                format!("the page failed: page the on-call by hand: {e}"),
            );
            None
        }
    }
}
