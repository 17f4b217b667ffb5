//! The `agentlab-ops` command end to end: exit codes, formats, config errors, secrets.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agentlab-ops"));
    c.current_dir(dir)
        .env_remove("AGENTLAB_OPS_CONFIG")
        .env("AGENTLAB_OPS_JOURNAL", dir.join("journal.jsonl"))
        .env_remove("NO_COLOR");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().expect("run agentlab-ops")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn no_config_runs_the_healthy_sandbox_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["check", "morning"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.lines().next().unwrap().contains("healthy sandbox"),
        "{out}"
    );
    assert!(out.contains("verdict: HEALTHY"));
    assert!(!out.contains('\x1b'), "piped output must be plain");
}

#[test]
fn degraded_exits_1_and_names_each_escalation() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["check", "morning", "--sandbox", "degraded"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("error budget of availability below 50.0% — observed 40.0%, threshold 50.0%"),
        "{out}"
    );
    assert!(out.contains("component openrouter is degraded"), "{out}");
}

#[test]
fn every_scenario_escalates_in_json() {
    let d = tempfile::tempdir().unwrap();
    for (scenario, criterion) in [
        ("degraded", "component_unhealthy"),
        ("budget-exhausted", "slo_red"),
        ("backups-missing", "backup_missing"),
        ("disk-full", "resource_high"),
    ] {
        let o = run(
            d.path(),
            &[
                "--format",
                "json",
                "check",
                "morning",
                "--sandbox",
                scenario,
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{scenario}");
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{scenario}: {e}: {}", text(&o.stdout)));
        assert_eq!(v["verdict"], "escalate");
        assert!(v["checks"].as_array().unwrap().len() >= 6);
        let crits: Vec<&str> = v["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["criterion"].as_str().unwrap())
            .collect();
        assert!(crits.contains(&criterion), "{scenario}: {crits:?}");
        for e in v["escalations"].as_array().unwrap() {
            assert!(e["observed"].is_string() && e["threshold"].is_string());
        }
    }
    let o = run(
        d.path(),
        &[
            "--format",
            "json",
            "check",
            "morning",
            "--sandbox",
            "healthy",
        ],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "healthy");
    assert_eq!(v["escalations"].as_array().unwrap().len(), 0);
}

#[test]
fn markdown_and_journal_stats() {
    let d = tempfile::tempdir().unwrap();
    let o = run(
        d.path(),
        &[
            "--format",
            "markdown",
            "check",
            "morning",
            "--sandbox",
            "disk-full",
        ],
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("| resource_high | web-2:/app | 96.0% | 90.0% |"),
        "{out}"
    );
    run(d.path(), &["check", "morning", "--sandbox", "healthy"]);
    let o = run(d.path(), &["--format", "json", "journal", "stats"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total_runs"], 2);
    assert_eq!(v["runbooks"][0]["runbook"], "morning_check");
    assert_eq!(v["runbooks"][0]["escalated"], 1);
    assert_eq!(v["runbooks"][0]["success_rate"], 1.0);
}

#[test]
fn config_errors_are_one_line_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.toml",
            "[service]\nbase_url = \"http://127.0.0.1:9\"\ncolour = \"blue\"\n",
            vec!["unknown.toml:3:1", "colour"],
        ),
        (
            "wrongtype.toml",
            "[service]\nbase_url = \"http://127.0.0.1:9\"\n[thresholds]\nresource_max = true\n",
            vec!["wrongtype.toml:4:", "thresholds.resource_max"],
        ),
    ];
    for (name, body, wants) in cases {
        std::fs::write(d.path().join(name), body).unwrap();
        let o = run(d.path(), &["--config", name, "check", "morning"]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let err = text(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        for w in wants {
            assert!(err.contains(w), "{name}: {err}");
        }
        assert!(o.stdout.is_empty());
    }
    let o = run(d.path(), &["--config", "missing.toml", "check", "morning"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("missing.toml") && err.contains("not found"),
        "{err}"
    );
    // The environment variable is honoured the same way.
    let o = bin(d.path())
        .env("AGENTLAB_OPS_CONFIG", "gone.toml")
        .args(["check", "morning"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("gone.toml"));
}

#[test]
fn unknown_scenario_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["check", "morning", "--sandbox", "on-fire"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("unknown sandbox scenario \"on-fire\""));
}

/// A recognisable secret in every secret field never shows up in any output, log or journal,
/// even when the server echoes it back and when the webhook fails.
#[test]
fn secrets_never_leak() {
    const TOKEN: &str = "tok-SECRET-4f1c9a7e2b";
    const HOOK: &str = "/services/T000/B000/hook-SECRET-9d8c7b6a5f";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        let s = MockServer::start().await;
        // The service echoes the bearer token in a non-JSON body (a misbehaving proxy).
        Mock::given(method("GET"))
            .and(path("/health"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(format!("Bearer {TOKEN} rejected")),
            )
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/health/detailed"))
            .respond_with(ResponseTemplate::new(503).set_body_string(TOKEN))
            .mount(&s)
            .await;
        Mock::given(method("GET"))
            .and(path("/metrics/slo"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(format!("{{\"slos\": \"{TOKEN}\"}}")),
            )
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path(HOOK))
            .respond_with(ResponseTemplate::new(500))
            .mount(&s)
            .await;
        s
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "environment = \"prod\"\n[service]\nbase_url = \"{}\"\ntimeout = \"300ms\"\nattempts = 2\ntoken = \"${{AGENTLAB_TEST_TOKEN}}\"\n[notify]\nslack_webhook_url = \"${{AGENTLAB_TEST_HOOK}}\"\ntimeout = \"300ms\"\n[journal]\npath = \"journal.jsonl\"\n",
        server.uri()
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    let hook_url = format!("{}{HOOK}", server.uri());
    let mut seen = String::new();
    for args in [
        vec!["-vv", "check", "morning"],
        vec!["-vv", "--format", "json", "check", "morning"],
        vec!["-vv", "--format", "markdown", "check", "morning"],
        vec!["-vv", "handover", "--notify"],
        vec!["-vv", "--format", "json", "handover", "--notify"],
        vec!["--format", "json", "config", "check"],
        vec!["config", "check"],
        vec!["journal", "stats"],
    ] {
        let o = bin(d.path())
            .env("AGENTLAB_TEST_TOKEN", TOKEN)
            .env("AGENTLAB_TEST_HOOK", &hook_url)
            .env("AGENTLAB_OPS_LOG", "debug")
            .args(&args)
            .output()
            .unwrap();
        seen.push_str(&text(&o.stdout));
        seen.push_str(&text(&o.stderr));
    }
    seen.push_str(&std::fs::read_to_string(d.path().join("journal.jsonl")).unwrap());
    // The runs did happen and did hit the failing paths.
    assert!(seen.contains("not JSON"), "{seen}");
    assert!(seen.contains("handover not posted"), "{seen}");
    let hits = rt.block_on(server.received_requests()).unwrap();
    assert!(
        hits.iter().any(|r| r.url.path() == HOOK),
        "the webhook was called"
    );
    assert!(
        hits.iter().any(|r| r
            .headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().contains(TOKEN))),
        "the token was sent"
    );
    for secret in ["SECRET-4f1c9a7e2b", "SECRET-9d8c7b6a5f"] {
        assert!(!seen.contains(secret), "secret {secret} leaked:\n{seen}");
    }
    assert!(seen.contains("[REDACTED]"));
    assert!(
        seen.contains("${AGENTLAB_TEST_HOOK}"),
        "config check shows the reference"
    );
}

#[test]
fn dry_run_handover_posts_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, sandbox) = rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&s)
            .await;
        (
            s,
            agentlab_ops::Sandbox::start(agentlab_ops::Scenario::Healthy)
                .await
                .unwrap(),
        )
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}\n[notify]\nslack_webhook_url = \"${{SLACK_WEBHOOK_URL}}\"\n",
        toml::to_string(sandbox.config()).unwrap()
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    let go = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["--format", "json", "handover", "--notify"]);
        let o = bin(d.path())
            .env(
                "SLACK_WEBHOOK_URL",
                format!("{}/hook/abcdef123456", server.uri()),
            )
            .args(&args)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&o.stdout), text(&o.stderr)));
        v
    };
    let v = go(&["--dry-run"]);
    assert_eq!(v["dry_run"], true);
    let notify = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "notify")
        .unwrap()
        .clone();
    assert_eq!(notify["outcome"], "planned");
    assert!(rt.block_on(server.received_requests()).unwrap().is_empty());
    let v = go(&[]);
    assert_eq!(v["payload"]["posted"], true);
    let reqs = rt.block_on(server.received_requests()).unwrap();
    assert_eq!(reqs.len(), 1);
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("# Daily Handover")
    );
}

#[test]
fn backup_verify_and_take_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    for (scenario, code, criterion) in [
        ("healthy", 0, None),
        ("corrupt-object", 1, Some("backup_corrupt")),
        ("missing-manifest", 1, Some("backup_incomplete")),
        ("size-drop", 1, Some("backup_size_trend")),
        ("backups-missing", 1, Some("backup_missing")),
    ] {
        let o = run(
            d.path(),
            &[
                "--format",
                "json",
                "backup",
                "verify",
                "--sample",
                "all",
                "--sandbox",
                scenario,
            ],
        );
        assert_eq!(
            o.status.code(),
            Some(code),
            "{scenario}: {}",
            text(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let crits: Vec<&str> = v["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["criterion"].as_str().unwrap())
            .collect();
        match criterion {
            Some(c) => assert!(crits.contains(&c), "{scenario}: {crits:?}"),
            None => assert!(crits.is_empty(), "{scenario}: {crits:?}"),
        }
    }
    // Take tonight's backup from the sandbox's live data, then verify it.
    let o = run(
        d.path(),
        &[
            "--format",
            "json",
            "backup",
            "take",
            "--sandbox",
            "missing-manifest",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["payload"]["datasets"][0]["objects"], 5);
    // Dry-run plans the copies.
    let o = run(
        d.path(),
        &["--dry-run", "backup", "take", "--sandbox", "healthy"],
    );
    assert!(text(&o.stdout).contains("PLANNED*"), "{}", text(&o.stdout));
    // A bad sample is a usage error.
    let o = run(d.path(), &["backup", "verify", "--sample", "lots"]);
    assert_eq!(o.status.code(), Some(2));
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/lua")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn run_lua_scripts_with_exit_codes_from_their_reports() {
    let d = tempfile::tempdir().unwrap();
    // Escalation → 1, with the script's own escalation in the JSON report.
    let o = run(
        d.path(),
        &[
            "--sandbox",
            "disk-full",
            "--format",
            "json",
            "run",
            &example("disk_alert.lua"),
            "90",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runbook"], "lua:disk_alert");
    assert_eq!(v["escalations"][0]["subject"], "web-2:/app");
    assert_eq!(v["payload"]["limit"], 90);
    // The script's run is journaled like a built-in runbook.
    let journal = std::fs::read_to_string(d.path().join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"runbook\":\"lua:disk_alert\""));

    // Healthy → 0; dry-run plans the restarts (the sandbox hosts are this machine: nothing runs).
    let o = run(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "--dry-run",
            "run",
            &example("rolling_restart.lua"),
            "agent-lab",
        ],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("PLANNED*      restart agent-lab on web-1"),
        "{out}"
    );

    // An uncaught error → 2, naming the script's file and line.
    let script = d.path().join("broken.lua");
    std::fs::write(&script, "local a = 1\nops.host('db-9'):run{'true'}\n").unwrap();
    let o = run(
        d.path(),
        &["--sandbox", "healthy", "run", script.to_str().unwrap()],
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("broken.lua:2: not_found: no host named \"db-9\""),
        "{out}"
    );

    // --timeout bounds the whole script.
    std::fs::write(&script, "while true do end\n").unwrap();
    let o = run(
        d.path(),
        &[
            "--sandbox",
            "healthy",
            "run",
            "--timeout",
            "300ms",
            script.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stdout).contains("timed out after 300ms"),
        "{}",
        text(&o.stdout)
    );

    // The other subcommands still work from the same binary.
    assert_eq!(
        run(d.path(), &["--sandbox", "healthy", "check", "morning"])
            .status
            .code(),
        Some(0)
    );
}

/// Colours follow anstream's rules: none when piped, `CLICOLOR_FORCE` forces them, `NO_COLOR`
/// turns them off.
#[test]
fn colours_follow_no_color_and_clicolor_force() {
    let d = tempfile::tempdir().unwrap();
    let piped = run(d.path(), &["--sandbox", "healthy", "check", "morning"]);
    assert!(
        !text(&piped.stdout).contains('\x1b'),
        "piped output is plain"
    );
    let forced = bin(d.path())
        .env("CLICOLOR_FORCE", "1")
        .args(["--sandbox", "healthy", "check", "morning"])
        .output()
        .unwrap();
    assert!(
        text(&forced.stdout).contains("\x1b["),
        "CLICOLOR_FORCE colours a pipe"
    );
    let json = bin(d.path())
        .env("CLICOLOR_FORCE", "1")
        .args([
            "--sandbox",
            "healthy",
            "--format",
            "json",
            "check",
            "morning",
        ])
        .output()
        .unwrap();
    assert!(
        !text(&json.stdout).contains('\x1b'),
        "JSON is never coloured"
    );
}
