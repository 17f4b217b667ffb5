//! Every runbook of the catalogue is reachable under its one name from the command and from
//! Lua (Python: agentlab-ops-py/tests/test_catalogue.py), and the same input gets the same
//! answer everywhere.

use crate::common;
use common::{bin, text};

use std::path::Path;
use std::process::Output;

use agentlab_ops::runbook::registry;
use serde_json::Value;

fn cli(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().unwrap()
}

#[test]
fn every_runbook_is_reachable_from_the_command_under_its_name() {
    let d = tempfile::tempdir().unwrap();
    let o = cli(d.path(), &["--format", "json", "list"]);
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = registry::all().iter().map(|d| d.name).collect();
    assert_eq!(names, want);
    for def in registry::all() {
        let o = cli(d.path(), &["describe", def.name]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "describe {}: {}",
            def.name,
            text(&o.stderr)
        );
        assert!(text(&o.stdout).contains(def.summary));
        // The command path runs that runbook (dry-run, against the sandbox).
        let mut args: Vec<String> = ["--sandbox", "healthy", "--dry-run", "--format", "json"]
            .map(String::from)
            .to_vec();
        args.extend(def.command.split(' ').map(String::from));
        // A runbook that needs options (grant_access: a user and a key) runs its example.
        if let serde_json::Value::Object(m) = def.example_options() {
            for (k, v) in m {
                args.push(format!("--{k}"));
                args.push(v.as_str().map(str::to_string).unwrap_or(v.to_string()));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = cli(d.path(), &args);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}{}",
                def.command,
                text(&o.stdout),
                text(&o.stderr)
            )
        });
        assert_eq!(v["runbook"], def.name, "{}", def.command);
        assert_eq!(v["dry_run"], true);
    }
}

const LUA_EVERY: &str = r#"
local names = {}
for _, d in ipairs(ops.runbooks()) do
  assert(ops[d.name], "ops." .. d.name .. " missing")
  for _, a in ipairs(d.aliases) do assert(ops[a] ~= nil, "alias " .. a) end
  local opts = {}
  for k, v in pairs(d.example) do opts[k] = v end
  opts.dry_run = true
  local r = ops.run(d.name, opts)
  assert(r.runbook == d.name, d.name .. " ran " .. tostring(r.runbook))
  names[#names + 1] = d.name
end
return { names = names }
"#;

#[test]
fn every_runbook_is_reachable_from_lua_under_its_name() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("every.lua"), LUA_EVERY).unwrap();
    let o = cli(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "--format",
            "json",
            "run",
            "every.lua",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
    assert_eq!(v["verdict"], "healthy", "{v}");
    let names: Vec<&str> = v["payload"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let want: Vec<&str> = registry::all().iter().map(|d| d.name).collect();
    assert_eq!(names, want);
}

/// The drift table of issue 12, one answer per row, from the command and from Lua.
#[test]
fn the_same_input_gets_the_same_answer_from_the_command_and_lua() {
    let d = tempfile::tempdir().unwrap();
    let lua = |body: &str| -> Value {
        std::fs::write(d.path().join("t.lua"), body).unwrap();
        let o = cli(
            d.path(),
            &["--sandbox", "healthy", "--format", "json", "run", "t.lua"],
        );
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)))
    };
    // sample = 2.5 or -1: rejected, with the core's message.
    for bad in ["2.5", "-1"] {
        let o = cli(
            d.path(),
            &[
                "--sandbox",
                "healthy",
                "backup",
                "verify",
                &format!("--sample={bad}"),
            ],
        );
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("backup_verify: sample: invalid sample \"{bad}\"")),
            "{err}"
        );
        let v = lua(&format!("return ops.backup_verify{{ sample = {bad} }}"));
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("backup_verify: sample: invalid sample"),
            "{msg}"
        );
        assert!(msg.contains("config_invalid"), "{msg}");
    }
    // date and before together: refused.
    let o = cli(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "backup",
            "recover",
            "--date",
            "2026-11-28",
            "--before",
            "2026-11-28",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("backup_recover: date and before exclude each other"));
    let v = lua(r#"return ops.recover_data{ date = "2026-11-28", before = "2026-11-28" }"#);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backup_recover: date and before exclude each other"),
        "{v}"
    );
    // The default rollback reason.
    let o = cli(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "--format",
            "json",
            "deploy",
            "rollback",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["payload"]["reason"], "manual rollback", "{v}");
    let v = lua("local r = ops.rollback{}; return { reason = r.payload.reason }");
    assert_eq!(v["payload"]["reason"], "manual rollback", "{v}");
    // Handover contacts and items.
    let v = lua(
        r#"local r = ops.handover{ primary = "Ada +1-555", items = { { issue = "slow search", status = "open", owner = "ada", eta = "fri" } } }
                   return { md = r.payload.markdown }"#,
    );
    let md = v["payload"]["md"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(
        md.contains("Ada +1-555") && md.contains("slow search"),
        "{md}"
    );
    let o = cli(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "handover",
            "--primary",
            "Ada +1-555",
            "--item",
            "slow search|open|ada|fri",
        ],
    );
    let md = text(&o.stdout);
    assert!(
        md.contains("Ada +1-555") && md.contains("slow search"),
        "{md}"
    );
}

#[test]
fn help_after_a_runbook_command_describes_it_and_a_closed_pipe_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let o = cli(d.path(), &["access", "grant", "--user", "bob", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("grant_access") && out.contains("prove_login"),
        "{out}"
    );
    // stdout closed before the output is written: no panic message, exit 141 like SIGPIPE.
    let mut child = bin(d.path())
        .args(["describe", "grant_access"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(141), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
}
