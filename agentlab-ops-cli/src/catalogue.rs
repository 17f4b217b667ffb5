//! `list` and `describe`: the catalogue, as the command shows it.

use agentlab_ops::Format;
use agentlab_ops::runbook::registry;

use crate::fail;

/// `agentlab-ops list`.
pub(crate) fn list(format: Format) -> i32 {
    if format == Format::Json {
        let v: Vec<serde_json::Value> = registry::all().iter().map(|d| d.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    for d in registry::all() {
        let kind = if d.changes { "changes" } else { "reads" };
        println!("{:<20} {:<20} {kind:<8} {}", d.name, d.command(), d.summary);
    }
    0
}

/// `agentlab-ops describe NAME`.
pub(crate) fn describe(name: &str, format: Format) -> i32 {
    let d = match registry::get(name) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let defaults = (d.defaults)();
    if format == Format::Json {
        let options: Vec<serde_json::Value> = d
            .options
            .iter()
            .map(|o| serde_json::json!({"name": o.name, "kind": o.kind, "default": defaults.get(o.name), "help": o.help}))
            .collect();
        let v = serde_json::json!({
            "name": d.name, "command": d.command(), "aliases": d.aliases, "summary": d.summary,
            "changes": d.changes, "options": options, "steps": d.steps,
            "example": d.example_options(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return 0;
    }
    let kind = if d.changes {
        "changes things"
    } else {
        "only reads"
    };
    println!(
        "{} (agentlab-ops {}): {} — {kind}",
        d.name,
        d.command(),
        d.summary
    );
    if !d.aliases.is_empty() {
        println!("aliases: {}", d.aliases.join(", "));
    }
    println!("options:");
    for o in d.options {
        let default = match defaults.get(o.name) {
            None | Some(serde_json::Value::Null) => "none".to_string(),
            Some(v) => v.to_string(),
        };
        println!(
            "  {:<14} {:<28} default {default:<18} {}",
            o.name, o.kind, o.help
        );
    }
    println!("steps:");
    for (i, s) in d.steps.iter().enumerate() {
        println!("  {}. {s}", i + 1);
    }
    if let Some(args) = example_args(d) {
        println!("example:\n  agentlab-ops {} {}", d.command, args.join(" "));
    }
    0
}

/// The example's options as command-line words (`--user newhire --sudo`), quoted for a shell.
pub(crate) fn example_args(d: &registry::Definition) -> Option<Vec<String>> {
    let serde_json::Value::Object(m) = d.example_options() else {
        return None;
    };
    let quote = |s: &str| {
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let flag = format!("--{}", k.replace('_', "-"));
        match v {
            serde_json::Value::Bool(true) => out.push(flag),
            serde_json::Value::String(s) => out.extend([flag, quote(&s)]),
            other => out.extend([flag, quote(&other.to_string())]),
        }
    }
    Some(out)
}

/// `drill [RUNBOOK...]`: the table (or JSON); exit 0 when every pair passed, 1 when one did
/// not, 2 for an unknown runbook.
pub(crate) async fn drill(only: &[String], format: Format) -> i32 {
    if let Some(bad) = only.iter().find(|n| registry::find(n).is_none()) {
        return crate::fail(
            registry::get(bad)
                .err()
                .map_or_else(String::new, |e| e.to_string()),
        );
    }
    let r = agentlab_ops::drill::run(only).await;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        _ => print!("{}", r.to_text()),
    }
    if r.passed { 0 } else { 1 }
}
