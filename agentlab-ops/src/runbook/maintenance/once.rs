//! The steps of the maintenance that are not one host's: the notice ahead of time, the
//! backup restoration test, the service's health at the end — and the TLS check, a read.

use std::time::Duration;

use crate::environment::Environment;
use crate::error::{Error, ErrorKind};
use crate::probe::assess;
use crate::probe::tls::{CertInfo, certificate as read_certificate};
use crate::report::{Action, Outcome, Severity};
use crate::runbook::run::{Checked, Run, RunOptions};

use super::{Ctx, MaintenanceOptions};

/// Post the notice; then wait `notice` unless `no_wait`. A failed notice is a warning.
pub(super) async fn notice(env: &Environment, run: &Run, o: &MaintenanceOptions) -> bool {
    let lead = o.notice.unwrap_or(env.config.maintenance.notice).0;
    let text = format!(
        ":hammer_and_wrench: Scheduled maintenance of {} starting in {}",
        env.name(),
        crate::units::format_duration(lead)
    );
    let sent =
        crate::runbook::notice::post(env, run, "notice", &text, "the maintenance notice").await;
    // A resumed run whose notice went out before the stop does not wait for it again.
    if o.no_wait || run.is_dry_run() || lead.is_zero() || run.done_before("notice") {
        return sent;
    }
    let wait = async {
        env.clock.sleep(lead).await;
        Ok(Checked::pass(
            (),
            format!("waited {}", crate::units::format_duration(lead)),
        ))
    };
    let _ = run
        .check("notice:wait", Some(lead + Duration::from_secs(60)), wait)
        .await;
    sent
}

/// The backup verification with a restore test; its verdict, or None when not configured.
pub(super) async fn restore_test(env: &Environment, run: &Run) -> Option<String> {
    if !env.config.maintenance.restore_test || env.backups.is_none() {
        run.skip(
            "backup_restore_test",
            Action::Read,
            "no [backups], or [maintenance] restore_test = false",
        );
        return None;
    }
    if run.is_dry_run() {
        run.skip("backup_restore_test", Action::Read, "dry-run");
        return None;
    }
    let o = crate::runbook::VerifyOptions {
        restore_test: true,
        run: RunOptions::default().without_journal(),
        ..Default::default()
    };
    let r = crate::runbook::verify_backups(env, &o).await;
    let verdict = format!("{:?}", r.verdict).to_lowercase();
    let summary = format!(
        "backup_verify with a restore test: {verdict} ({} checks)",
        r.checks.len()
    );
    let outcome = if r.verdict == crate::report::Verdict::Healthy {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    for e in &r.escalations {
        run.escalate(
            &e.criterion,
            e.subject.clone(),
            e.observed.clone(),
            e.threshold.clone(),
            e.message.clone(),
        );
    }
    let _ = run
        .check("backup_restore_test", None, async {
            Ok(Checked::with((), outcome, summary))
        })
        .await;
    Some(verdict)
}

/// The service's health after the maintenance.
pub(super) async fn validate(env: &Environment, run: &Run) -> Option<bool> {
    if run.is_dry_run() {
        run.skip("validate", Action::Read, "dry-run");
        return None;
    }
    let path = env.config.service.health_path.clone();
    let r = run
        .check("validate", None, async {
            let resp = env.probe.get(&path).await?;
            let h = assess(&resp, false);
            if h.healthy {
                Ok(Checked::pass((), format!("{path}: HTTP {}", resp.status)))
            } else {
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("{path}: {}", h.problems.join("; ")),
                ))
            }
        })
        .await;
    Some(r.is_ok())
}

/// The host's TLS certificate: a warning inside `tls_warn_days`, an escalation inside
/// `tls_critical_days`; an unreadable listener is a failed check, never a stopped maintenance.
pub(super) async fn certificate(c: &Ctx<'_>) -> Option<CertInfo> {
    let cfg = &c.c;
    let step = format!("{}:tls", c.name());
    if cfg.tls_endpoint.is_empty() {
        c.run
            .skip(&step, Action::Read, "no [maintenance] tls_endpoint");
        return None;
    }
    let now = c.env.clock.now();
    let (warn, crit) = (cfg.tls_warn_days, cfg.tls_critical_days);
    let r = c
        .run
        .check(&step, None, async {
            let info = read_certificate(
                &cfg.tls_endpoint,
                &cfg.tls_server_name,
                now,
                Duration::from_secs(10),
            )
            .await?;
            let (o, what) = match info.days_left {
                d if d <= crit => (Outcome::Fail, "escalate"),
                d if d <= warn => (Outcome::Warn, "renew soon"),
                _ => (Outcome::Pass, "ok"),
            };
            let s = format!(
                "{}: expires {} ({} days; {what})",
                info.subject,
                info.not_after.format("%Y-%m-%d"),
                info.days_left
            );
            Ok(Checked::with(info, o, s))
        })
        .await
        .ok()?;
    if r.days_left <= crit {
        c.run.escalate(
            "certificate_expiring",
            c.name().to_string(),
            format!("{} days left", r.days_left),
            format!("> {crit} days"),
            format!(
                "{}: the TLS certificate of {} expires in {} days",
                c.name(),
                r.endpoint,
                r.days_left
            ),
        );
    } else if r.days_left <= warn {
        c.run.finding(
            Severity::Warning,
            c.name().to_string(),
            format!("the TLS certificate expires in {} days", r.days_left),
        );
    }
    Some(r)
}
