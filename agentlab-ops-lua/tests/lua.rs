//! Lua runbooks: every example script against the sandbox and the memory backends, the error
//! table, uncaught errors, the restricted standard library, dry-run, undo, timeout, parallel.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentlab_ops::{
    Environment, ErrorKind, MemoryBackupStore, MemoryHost, MemoryNotifier, MemoryProbe, Outcome,
    Report, Sandbox, Scenario, Verdict,
};
use agentlab_ops_lua::{ScriptOptions, run_script, run_source};
use serde_json::json;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/lua")
        .join(name)
}

fn opts(args: &[&str]) -> ScriptOptions {
    ScriptOptions {
        args: args.iter().map(|s| s.to_string()).collect(),
        no_journal: true,
        ..ScriptOptions::default()
    }
}

async fn sandbox(s: Scenario) -> (Sandbox, Arc<Environment>) {
    let mut sb = Sandbox::start(s).await.unwrap();
    sb.config_mut().journal.disabled = true;
    let env = Arc::new(sb.environment().await.unwrap());
    (sb, env)
}

async fn lua(env: Arc<Environment>, src: &str) -> Report {
    run_source(env, "lua:test", "test.lua", src, &opts(&[])).await
}

fn healthy_probe() -> MemoryProbe {
    let p = MemoryProbe::new();
    p.respond_json("/health", json!({"status": "ok"}));
    p.respond_json(
        "/health/detailed",
        json!({"status": "ok", "components": {"app": {"status": "ok"}}}),
    );
    p
}

fn memory_env(hosts: &[MemoryHost], notifier: &MemoryNotifier) -> Arc<Environment> {
    let mut b = Environment::builder("lua")
        .probe(healthy_probe())
        .notifier(notifier.clone());
    for h in hosts {
        b = b.host(h.clone());
    }
    Arc::new(b.build())
}

// --- The examples ----------------------------------------------------------------------------

#[tokio::test]
async fn disk_alert_on_the_sandbox_and_on_memory_hosts() {
    let (_sb, env) = sandbox(Scenario::DiskFull).await;
    let r = run_script(env, &example("disk_alert.lua"), &opts(&[])).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    let subjects: Vec<&str> = r.escalations.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, vec!["web-2:/app"]);
    assert_eq!(r.escalations[0].observed, "96%");

    let slack = MemoryNotifier::new();
    let h1 = MemoryHost::new("web-1").with_resources(0.3, 0.5, &[("/", 0.95), ("/app", 0.2)]);
    let h2 = MemoryHost::new("web-2").with_resources(0.3, 0.5, &[("/", 0.4)]);
    let r = run_script(
        memory_env(&[h1.clone(), h2.clone()], &slack),
        &example("disk_alert.lua"),
        &opts(&["80"]),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert_eq!(
        slack.sent.all(),
        vec![":warning: disks above 80%: web-1:/ at 95%"]
    );
    assert_eq!(h1.calls.all()[0].program, "df");
    assert_eq!(r.payload["limit"], 80);

    // A host that cannot be read is a finding; the other host's result stands.
    h1.faults.fail_always(ErrorKind::Timeout, "ssh hangs");
    let r = run_script(
        memory_env(&[h1, h2], &slack),
        &example("disk_alert.lua"),
        &opts(&[]),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(
        r.findings
            .iter()
            .any(|f| f.subject == "web-1" && f.message.contains("ssh hangs"))
    );
}

#[tokio::test]
async fn backup_counts_on_the_sandbox_and_on_an_empty_store() {
    let (_sb, env) = sandbox(Scenario::BackupsMissing).await;
    let r = run_script(env, &example("backup_counts.lua"), &opts(&[])).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let days = r.payload["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert!(days[0]["sessions"]["objects"].as_u64().unwrap() > 0);
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(
        r.findings
            .iter()
            .map(|f| f.subject.clone())
            .collect::<Vec<_>>(),
        vec![format!("sessions/{today}/")]
    );

    let store = MemoryBackupStore::new();
    let env = Arc::new(
        Environment::builder("lua")
            .backups(store.clone(), &["sessions"])
            .build(),
    );
    let r = run_script(env, &example("backup_counts.lua"), &opts(&["3"])).await;
    assert_eq!(r.findings.len(), 6, "{:?}", r.findings); // 3 days x 2 datasets
    assert_eq!(store.calls.len(), 6);
}

#[tokio::test]
async fn rolling_restart_goes_host_by_host_and_dry_run_restarts_nothing() {
    let slack = MemoryNotifier::new();
    let hosts = [MemoryHost::new("web-1"), MemoryHost::new("web-2")];
    for h in &hosts {
        h.respond("systemctl", &["restart", "agent-lab"], 0, "");
    }
    let env = memory_env(&hosts, &slack);
    let mut o = opts(&[]);
    o.dry_run = true;
    let r = run_script(env.clone(), &example("rolling_restart.lua"), &o).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let planned: Vec<&str> = r
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Planned)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        planned,
        vec!["restart agent-lab on web-1", "restart agent-lab on web-2"]
    );
    assert!(hosts.iter().all(|h| h.calls.is_empty()));

    let r = run_script(env.clone(), &example("rolling_restart.lua"), &opts(&[])).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "restart agent-lab on web-1",
            "health after web-1",
            "restart agent-lab on web-2",
            "health after web-2"
        ]
    );
    assert_eq!(r.payload["restarted"], json!(["web-1", "web-2"]));

    // web-1 fails to restart: the run stops there, web-2 is left alone.
    let hosts = [MemoryHost::new("web-1"), MemoryHost::new("web-2")];
    hosts[0].respond("systemctl", &["restart", "agent-lab"], 1, "");
    hosts[1].respond("systemctl", &["restart", "agent-lab"], 0, "");
    let r = run_script(
        memory_env(&hosts, &slack),
        &example("rolling_restart.lua"),
        &opts(&[]),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(hosts[1].calls.is_empty());
    assert!(
        r.error
            .unwrap()
            .message
            .contains("web-1: systemctl exited 1")
    );
}

#[tokio::test]
async fn morning_plus_adds_the_teams_endpoint() {
    let (_sb, env) = sandbox(Scenario::Degraded).await;
    let r = run_script(env, &example("morning_plus.lua"), &opts(&["/health"])).await;
    assert_eq!(r.verdict, Verdict::Escalate, "{}", r.to_text(false));
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "component_unhealthy")
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "GET /health" && c.summary.starts_with("HTTP 200"))
    );
    assert_eq!(r.payload["morning"], "escalate");

    let env = memory_env(&[], &MemoryNotifier::new());
    let r = run_script(env, &example("morning_plus.lua"), &opts(&["/api/agents"])).await;
    assert!(
        r.escalations
            .iter()
            .any(|e| e.criterion == "team_endpoint" && e.observed == "HTTP 404")
    );
}

#[tokio::test]
async fn triage_collects_errors_from_every_host() {
    let h1 = MemoryHost::new("web-1");
    h1.respond_any("journalctl", 0, "Nov 29 09:00 app ERROR session 42 failed\nNov 29 09:01 app ok\nNov 29 09:02 app ERROR timeout\n");
    let h2 = MemoryHost::new("web-2");
    h2.respond_any("journalctl", 0, "");
    let r = run_script(
        memory_env(&[h1.clone(), h2], &MemoryNotifier::new()),
        &example("triage.lua"),
        &opts(&["100"]),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.findings.len(), 1);
    assert!(
        r.findings[0]
            .message
            .starts_with("2 error lines; first: Nov 29 09:00 app ERROR session 42")
    );
    assert_eq!(
        h1.calls.all()[0].args[..4],
        ["-u", "agent-lab", "-n", "100"].map(String::from)
    );
    assert_eq!(r.checks[0].summary, "2 error lines");
}

// --- Semantics -------------------------------------------------------------------------------

#[tokio::test]
async fn errors_are_tables_pcall_can_inspect() {
    let env = Arc::new(
        Environment::builder("lua")
            .backups(MemoryBackupStore::new(), &["sessions"])
            .build(),
    );
    let r = lua(
        env,
        r#"
        local ok, e = pcall(function() return ops.backups():get("sessions/20261129/x.json") end)
        assert(not ok)
        return { kind = e.kind, operation = e.operation, key = e.context.key, where = e.where,
                 text = tostring(e), message = e.message }
        "#,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.payload["kind"], "not_found");
    assert_eq!(r.payload["operation"], "backup.get");
    assert_eq!(r.payload["key"], "sessions/20261129/x.json");
    assert_eq!(r.payload["where"], "test.lua:2");
    assert!(
        r.payload["text"]
            .as_str()
            .unwrap()
            .starts_with("test.lua:2: not_found: ")
    );
}

#[tokio::test]
async fn an_uncaught_error_names_the_file_and_line() {
    let env = memory_env(&[], &MemoryNotifier::new());
    let r = lua(env.clone(), "local x = 1\nops.host('nope')\n").await;
    assert_eq!(r.verdict, Verdict::Failed);
    let e = r.error.unwrap();
    assert!(
        e.message
            .starts_with("test.lua:2: not_found: no host named \"nope\""),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("traceback") && !e.message.contains("__mlua"),
        "{}",
        e.message
    );
    let r = lua(env, "\n\nerror('boom')").await;
    assert!(r.error.unwrap().message.starts_with("test.lua:3: boom"));
}

#[tokio::test]
async fn the_standard_library_is_restricted() {
    let env = memory_env(&[], &MemoryNotifier::new());
    for call in [
        "os.execute('true')",
        "io.popen('id')",
        "os.remove('/tmp/x')",
        "io.open('/etc/passwd')",
        "package.loadlib('x', 'y')",
        "load(string.dump(function() end))",
        "load('return 1', 'x', 'b')",
        "loadfile('/etc/passwd')",
        "dofile('/etc/passwd')",
        "os.getenv('HOME')",
    ] {
        let r = lua(env.clone(), call).await;
        assert_eq!(r.verdict, Verdict::Failed, "{call} was allowed");
        let m = r.error.unwrap().message;
        assert!(m.contains("not allowed in scripts"), "{call}: {m}");
    }
    // What scripts need is there: string, table, math, os.time/date/clock, require.
    let r = lua(env.clone(), "local o = require('agentlab_ops'); assert(o == ops); return {t = os.time() > 0, s = string.format('%d', 3)}").await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    // --allow-unsafe gives the whole library.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, "x").unwrap();
    let mut o = opts(&[]);
    o.allow_unsafe = true;
    let r = run_source(
        env,
        "lua:unsafe",
        "u.lua",
        &format!("assert(os.remove({:?}))", f.display().to_string()),
        &o,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert!(!f.exists());
}

#[tokio::test]
async fn dry_run_plans_changes_and_a_failure_undoes_them() {
    let h = MemoryHost::new("web-1");
    h.respond_any("touch", 0, "");
    h.respond_any("rm", 0, "");
    let env = memory_env(std::slice::from_ref(&h), &MemoryNotifier::new());
    let script = r#"
        local h = ops.host("web-1")
        ops.step("maintenance on", "change", function() h:run{"touch", "/app/MAINTENANCE_MODE"} end,
                 function() h:run{"rm", "/app/MAINTENANCE_MODE"} end)
        ops.step("check", "read", function()
          if arg[1] == "fail" then error({kind = "unavailable", message = "service down"}) end
          return "fine"
        end)
        return {}
    "#;
    let mut o = opts(&[]);
    o.dry_run = true;
    let r = run_source(env.clone(), "lua:t", "t.lua", script, &o).await;
    assert_eq!(r.checks[0].outcome, Outcome::Planned);
    assert_eq!(r.checks[1].summary, "fine");
    assert!(h.calls.is_empty());

    let r = run_source(env, "lua:t", "t.lua", script, &opts(&["fail"])).await;
    assert_eq!(r.verdict, Verdict::Failed);
    let steps: Vec<(&str, Outcome)> = r
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("maintenance on", Outcome::Pass),
            ("check", Outcome::Error),
            ("undo maintenance on", Outcome::Pass)
        ]
    );
    let calls: Vec<String> = h.calls.all().into_iter().map(|c| c.program).collect();
    assert_eq!(calls, vec!["touch", "rm"]);
    assert!(r.error.unwrap().message.contains("service down"));
}

#[tokio::test]
async fn the_timeout_stops_a_busy_or_a_waiting_script_and_undoes() {
    let h = MemoryHost::new("web-1");
    h.respond_any("touch", 0, "");
    h.respond_any("rm", 0, "");
    h.respond_any("sleep", 0, "");
    let env = memory_env(std::slice::from_ref(&h), &MemoryNotifier::new());
    let mut o = opts(&[]);
    o.timeout = Some(Duration::from_millis(300));
    let t = Instant::now();
    let r = run_source(env.clone(), "lua:t", "t.lua", "while true do end", &o).await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(r.error.unwrap().message.contains("timed out after 300ms"));

    h.faults.set_delay(Duration::from_secs(30));
    let script = r#"
        ops.step("flag", "change", function() end, function() ops.report.finding("info", "undo", "flag cleared") end)
        ops.host("web-1"):run{"sleep", "30"}
    "#;
    let t = Instant::now();
    let r = run_source(env, "lua:t", "t.lua", script, &o).await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(r.error.unwrap().message.contains("timed out"));
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "undo flag" && c.outcome == Outcome::Pass),
        "{:?}",
        r.checks
    );
}

#[tokio::test]
async fn parallel_keeps_the_order_and_overlaps() {
    let hosts: Vec<MemoryHost> = (0..5)
        .map(|i| {
            let h = MemoryHost::new(format!("h{i}"));
            // The first answers last.
            h.faults
                .set_delay(Duration::from_millis(250 - 50 * i as u64));
            h
        })
        .collect();
    let env = memory_env(&hosts, &MemoryNotifier::new());
    let t = Instant::now();
    let r = lua(
        env,
        r#"
        local fns = {}
        for i, h in ipairs(ops.hosts()) do
          fns[i] = function() h:run{"echo", h.name}; return h.name end
        end
        local r = ops.parallel(fns)
        return { r[1], r[2], r[3], r[4], r[5] }
        "#,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.payload, json!(["h0", "h1", "h2", "h3", "h4"]));
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn runbooks_and_reports_from_scripts() {
    let (_sb, env) = sandbox(Scenario::CorruptObject).await;
    let r = lua(
        env,
        r#"
        local v = ops.verify_backups{ sample = "all" }
        for _, f in ipairs(v.findings) do ops.report.finding(f.severity, f.subject, f.message) end
        local s = ops.slo()
        local sb = ops.sandbox("degraded")
        local m = ops.morning_check{ env = sb }
        return { verify = v.verdict, morning = m.verdict, slo = s[1].zone, none = v.error }
        "#,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.payload["verify"], "escalate");
    assert_eq!(r.payload["morning"], "escalate");
    assert_eq!(r.payload["slo"], "green");
    assert!(
        r.payload.get("none").is_none(),
        "nil, never a null sentinel"
    );
    assert!(r.findings[0].message.contains("SHA-256 mismatch"));
}

#[tokio::test]
async fn the_access_review_and_the_auth_timeline_from_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().format("%b %e %H:%M:%S");
    let files = [
        (
            "etc/passwd",
            "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n".to_string(),
        ),
        ("etc/group", "sudo:x:27:ops\n".to_string()),
        ("etc/ssh/sshd_config", "PermitRootLogin no\n".to_string()),
        (
            "var/log/auth.log",
            format!(
                "{now} h sshd[1]: Failed password for ops from 198.51.100.7 port 1 ssh2\n\
                 {now} h sshd[2]: Accepted password for ops from 198.51.100.7 port 2 ssh2\n"
            ),
        ),
    ];
    for (rel, body) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let root = dir.path().to_string_lossy().into_owned();
    let env = Environment::builder("lua-security")
        .host(agentlab_ops::LocalHost::new("h"))
        .configure(move |c| {
            c.access.root = root;
            c.journal.disabled = true;
        })
        .build();
    let r = lua(
        Arc::new(env),
        r#"
        local a = ops.access_review{}
        local kinds = {}
        for _, f in ipairs(a.payload.hosts[1].findings) do kinds[#kinds + 1] = f.kind .. ":" .. (f.lynis or "") end
        local t = ops.auth_timeline{ since = "1h" }
        return { access = a.verdict, kinds = kinds, timeline = t.verdict,
                 why = t.escalations[1].criterion,
                 failed = t.payload.timeline.by_source["198.51.100.7"].failed }
        "#,
    )
    .await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.payload["access"], "escalate");
    let kinds = r.payload["kinds"].as_array().unwrap();
    assert!(
        kinds.contains(&json!("uid0_account:AUTH-9204")),
        "{kinds:?}"
    );
    assert_eq!(r.payload["timeline"], "escalate");
    assert_eq!(r.payload["why"], "failed_then_accepted");
    assert_eq!(r.payload["failed"], 1);
}

#[tokio::test]
async fn a_script_rotates_a_secret_and_sees_only_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("valid");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("tok-initial-98765"), "").unwrap();
    let current = dir.path().join("token");
    std::fs::write(&current, "tok-initial-98765").unwrap();
    let s = store.display();
    let secret: agentlab_ops::config::SecretRotation = serde_json::from_value(json!({
        "name": "api_token",
        "current_file": current,
        "issue": {"command": ["sh", "-c", format!("k=tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'); touch {s}/$k; echo $k")]},
        "verify": {"command": ["sh", "-c", format!("test -e \"{s}/$AGENTLAB_SECRET\"")]},
        "revoke": {"command": ["sh", "-c", format!("rm -f \"{s}/$AGENTLAB_SECRET\"")]},
        "output": current,
    }))
    .unwrap();
    let env = Environment::builder("lua-secret")
        .configure(move |c| {
            c.secrets = vec![secret];
            c.journal.disabled = true;
        })
        .build();
    let r = lua(
        Arc::new(env),
        r#"
        local r = ops.rotate_secret{ secrets = { "api_token" } }
        local s = r.payload.secrets[1]
        return { outcome = s.outcome, new = s.new_fingerprint, old = s.old_fingerprint }
        "#,
    )
    .await;
    assert_eq!(r.payload["outcome"], "rotated", "{}", r.to_text(false));
    let now = std::fs::read_to_string(&current).unwrap();
    assert_ne!(now.trim(), "tok-initial-98765");
    assert!(store.join(now.trim()).exists() && !store.join("tok-initial-98765").exists());
    assert_ne!(r.payload["new"], r.payload["old"]);
    assert!(!r.to_json().to_string().contains(now.trim()));
}

#[tokio::test]
async fn a_load_test_and_its_baseline_from_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let mut sb = Sandbox::start(Scenario::Healthy).await.unwrap();
    sb.config_mut().journal.path = Some(dir.path().join("journal.jsonl"));
    // The verdict itself is the core's (tests/it/load_compare.rs); two runs on two busy CI
    // cores may differ by more than the default 10% band, so here the band is wide.
    sb.config_mut().load.noise = 1.0;
    sb.config_mut().load.latency_floor = agentlab_ops::config::Dur(Duration::from_millis(250));
    let env = Arc::new(sb.environment().await.unwrap());
    let src = r#"
        local a = ops.load_test{ requests = 1200, concurrency = 4, label = "lua-v1" }
        local b = ops.run("load_test", { requests = 1200, concurrency = 4, baseline = "lua-v1" })
        local c = b.payload.comparison
        return { n = b.payload.summary.requests, base = c.baseline_run, first = a.run_id, verdict = c.verdict }
    "#;
    let r = lua(env, src).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
    assert_eq!(r.payload["n"], 1200);
    assert_eq!(r.payload["base"], r.payload["first"]);
    let v = r.payload["verdict"].as_str().unwrap_or_default();
    assert!(matches!(v, "pass" | "inconclusive"), "{v}");
}

#[tokio::test]
async fn the_monthly_review_and_the_drill_from_lua() {
    let (_sb, env) = sandbox(Scenario::CorruptObject).await;
    let r = lua(
        env,
        r#"
local rev = ops.monthly_review{}
local d = ops.drill{"cost_report"}
local ok, err = pcall(ops.drill, {"no_such_runbook"})
return { verdict = rev.verdict, dr = rev.payload.dr.status, drill = d.passed,
         pairs = #d.cases, bad = err.kind }
"#,
    )
    .await;
    assert!(r.error.is_none(), "{}", r.to_text(false));
    assert_eq!(
        r.payload,
        json!({"verdict": "escalate", "dr": "failed", "drill": true, "pairs": 1, "bad": "not_found"})
    );
}

#[path = "lua/resume.rs"]
mod resume;
