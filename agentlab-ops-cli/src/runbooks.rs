//! The runbook commands: each turns its arguments into the runbook's JSON options, which the
//! core parses and validates (the same messages as Python and Lua), and runs the runbook of
//! the catalogue through one path.

use agentlab_ops::runbook::registry;
use agentlab_ops::{Format, Report, RunOptions};
use serde_json::{Value, json};

use crate::{
    BackupCmd, CheckCmd, Command, DeployCmd, Global, HandoverArgs, color_for, fail,
    pause_on_signals, print_report, say_note, target, with_progress,
};

/// The catalogue name and JSON options of a runbook command (None for the other commands).
pub(crate) fn options_of(c: &Command) -> Option<(&'static str, Value)> {
    Some(match c {
        Command::Check {
            which: CheckCmd::Morning { date },
        } => ("morning_check", json!({ "date": date })),
        Command::Handover(a) => ("handover", handover_options(a)),
        Command::Backup { which } => match which {
            BackupCmd::Take { date, host } => {
                ("backup_take", json!({ "date": date, "host": host }))
            }
            BackupCmd::Recover { date, before, host } => (
                "backup_recover",
                json!({ "date": date, "before": before, "host": host }),
            ),
            BackupCmd::Verify {
                date,
                sample,
                seed,
                restore_test,
            } => (
                "backup_verify",
                json!({ "date": date, "sample": sample, "seed": seed, "restore_test": restore_test }),
            ),
        },
        Command::Deploy { which } => match which {
            DeployCmd::Standard {
                version,
                high_risk,
                critical,
                force,
                reason,
            } => (
                "deploy_standard",
                json!({ "version": version, "high_risk": high_risk, "critical": critical, "force": force, "reason": reason }),
            ),
            DeployCmd::BlueGreen {
                version,
                critical,
                force,
                reason,
            } => (
                "deploy_blue_green",
                json!({ "version": version, "critical": critical, "force": force, "reason": reason }),
            ),
            DeployCmd::Rollback { reason, to } => {
                ("deploy_rollback", json!({ "reason": reason, "to": to }))
            }
        },
        _ => return None,
    })
}

/// Short flags and a positional argument for the runbooks whose peers have them
/// (`agentlab-ops load http://... -n 10000 -c 50 -k`, as `ab` takes them).
const SHORT: &[(&str, &str, &str)] = &[
    ("load_test", "-n", "--requests"),
    ("load_test", "-c", "--concurrency"),
    ("load_test", "-t", "--duration"),
    ("load_test", "-s", "--timeout"),
    ("load_test", "--threshold", "--thresholds"),
    ("load_test", "--stage", "--stages"),
    ("load_test", "--endpoint", "--endpoints"),
];
const POSITIONAL: &[(&str, &str)] = &[
    ("load_test", "--url"),
    ("chaos_run", "--experiment"),
    ("chaos_plan", "--experiment"),
];

fn ab_style(name: &str, rest: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let w = rest[i].as_str();
        if let Some((_, _, long)) = SHORT.iter().find(|(n, s, _)| *n == name && *s == w) {
            out.push(long.to_string());
        } else if name == "load_test" && w == "-k" {
            out.extend(["--keep-alive".to_string(), "true".to_string()]);
        } else if !w.starts_with('-')
            && (i == 0 || rest[i - 1] == "-k" || !rest[i - 1].starts_with('-'))
            && let Some((_, flag)) = POSITIONAL.iter().find(|(n, _)| *n == name)
        {
            out.extend([flag.to_string(), w.to_string()]);
        } else {
            out.push(w.to_string());
        }
        i += 1;
    }
    out
}

/// The runbook the first words name (`access grant ...`), and the words after them.
fn lookup(words: &[String]) -> Option<(&'static registry::Definition, &[String])> {
    (1..=words.len().min(3)).rev().find_map(|n| {
        let head = words[..n].join(" ");
        let d = registry::all()
            .iter()
            .find(|d| d.command == head || d.name == head.replace('-', "_"))?;
        Some((*d, &words[n..]))
    })
}

/// The runbook the first words name.
pub(crate) fn definition(words: &[String]) -> Option<&'static registry::Definition> {
    lookup(words).map(|(d, _)| d)
}

/// A catalogue runbook named by its command words (`emergency shutdown`) or its name, with
/// `--name value`, `--name=value` and bare `--flag` options: a value is JSON when it parses
/// (`3`, `true`, `[1,"50%"]`), else a string; a list option also takes `a,b` or repeats.
pub(crate) fn external(words: &[String]) -> agentlab_ops::Result<(&'static str, Value)> {
    let unknown = || {
        agentlab_ops::Error::new(
            agentlab_ops::ErrorKind::NotFound,
            format!(
                "no command or runbook {:?} (see `agentlab-ops list`)",
                words.join(" ")
            ),
        )
    };
    let (def, rest) = lookup(words).ok_or_else(unknown)?;
    let rest = &ab_style(def.name, rest);
    let defaults = (def.defaults)();
    let mut opts = serde_json::Map::new();
    let mut i = 0;
    while i < rest.len() {
        let w = &rest[i];
        let Some(flag) = w.strip_prefix("--") else {
            return Err(agentlab_ops::Error::config(format!(
                "{}: unexpected {w:?}: options are --name value",
                def.name
            )));
        };
        let (key, value) = match flag.split_once('=') {
            Some((k, v)) => (k.replace('-', "_"), Some(v.to_string())),
            None if rest.get(i + 1).is_some_and(|n| !n.starts_with("--")) => {
                i += 1;
                (flag.replace('-', "_"), Some(rest[i].clone()))
            }
            None => (flag.replace('-', "_"), None),
        };
        let is_list = defaults.get(&key).is_some_and(Value::is_array);
        let v = match value {
            None => Value::Bool(true),
            Some(v) => match serde_json::from_str::<Value>(&v) {
                Ok(j) if !(is_list && j.is_string()) => j,
                _ if is_list => Value::Array(v.split(',').map(|x| json!(x.trim())).collect()),
                _ => Value::String(v),
            },
        };
        match (opts.get_mut(&key), is_list) {
            (Some(Value::Array(a)), true) => a.extend(v.as_array().cloned().unwrap_or(vec![v])),
            _ => {
                let v = if is_list && !v.is_array() {
                    json!([v])
                } else {
                    v
                };
                opts.insert(key, v);
            }
        }
        i += 1;
    }
    Ok((def.name, Value::Object(opts)))
}

/// `--item "issue|status|owner|eta"` and `--schedule "what|detail"` as the handover's options.
fn handover_options(a: &HandoverArgs) -> Value {
    let items: Vec<Value> = a
        .items
        .iter()
        .map(|s| {
            let mut p = s.splitn(4, '|').map(|x| x.trim().to_string());
            let mut next = || p.next().unwrap_or_default();
            json!({ "issue": next(), "status": next(), "owner": next(), "eta": next() })
        })
        .collect();
    let schedule: Vec<Value> = a
        .schedule
        .iter()
        .map(|s| {
            let (w, d) = s.split_once('|').unwrap_or((s, ""));
            json!({ "what": w.trim(), "detail": d.trim() })
        })
        .collect();
    json!({
        "notify": a.notify, "primary": a.primary, "backup": a.backup,
        "items": items, "schedule": schedule,
    })
}

/// Run the runbook `name` with `options`: the environment, a progress line, SIGUSR1/SIGUSR2
/// for a rollout, the report and its exit code.
pub(crate) async fn run_named(
    g: &Global,
    name: &'static str,
    options: Value,
    mut run_opts: RunOptions,
) -> i32 {
    let def = match registry::get(name).and_then(|d| d.check(&options).map(|()| d)) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let t = match target(g).await {
        Ok(t) => t,
        Err(code) => return code,
    };
    say_note(&t.note, g.format);
    let progress = agentlab_ops::runbook::run::Progress::default();
    run_opts.progress = Some(progress.clone());
    let control = agentlab_ops::runbook::WaveControl::default();
    run_opts.control = Some(control.clone());
    let signals = (name == "deploy_blue_green").then(|| pause_on_signals(control));
    let label = def.command();
    let fut = async {
        match def.run(&t.env, options, run_opts).await {
            Ok(r) => Some(r),
            Err(e) => {
                fail(e);
                None
            }
        }
    };
    let shown = matches!(name, "backup_verify" | "load_test").then_some(progress);
    let r = with_progress(&label, fut, shown).await;
    if let Some(s) = signals {
        s.abort();
    }
    t.env.close().await;
    match r {
        None => 2,
        Some(r) if name == "handover" => print_handover(&r, g.format),
        Some(r) => print_report(&r, g.format),
    }
}

/// The handover prints its Markdown (the report in JSON); findings and the error on stderr.
fn print_handover(r: &Report, format: Format) -> i32 {
    if format == Format::Json {
        return print_report(r, Format::Json);
    }
    match r.payload.get("markdown").and_then(|m| m.as_str()) {
        Some(md) => println!("{}", md.trim_end()),
        None => println!("{}", r.render(format, color_for(format)).trim_end()),
    }
    for f in &r.findings {
        eprintln!("{:?}: {}: {}", f.severity, f.subject, f.message);
    }
    if let Some(e) = &r.error {
        eprintln!("error: {}", e.message);
    }
    r.verdict.exit_code()
}
