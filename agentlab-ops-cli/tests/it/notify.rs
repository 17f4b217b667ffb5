//! Secrets are resolved when a runbook needs them, and a post the user asked for that fails
//! fails the run (its Markdown still printed).

use crate::common;
use common::{bin, text};

use std::path::Path;
use std::process::Output;

fn with_sandbox_config(f: impl FnOnce(&Path)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sandbox = rt.block_on(async {
        agentlab_ops::Sandbox::start(agentlab_ops::Scenario::Healthy)
            .await
            .unwrap()
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{}\n[notify]\nslack_webhook_url = \"${{SLACK_WEBHOOK_URL}}\"\ntimeout = \"300ms\"\n",
        toml::to_string(sandbox.config()).unwrap()
    );
    std::fs::write(d.path().join("agentlab-ops.toml"), cfg).unwrap();
    f(d.path());
    drop(sandbox);
}

fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/hook/abcdef123456")
}

#[test]
fn an_unset_webhook_variable_stops_only_the_post() {
    with_sandbox_config(|d| {
        // The morning check posts nothing: it runs (healthy sandbox, exit 0).
        let o: Output = bin(d).args(["check", "morning"]).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        // A handover without --notify too.
        let o = bin(d).args(["handover"]).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        // With --notify: the run fails, naming the field and the variable.
        let o = bin(d).args(["handover", "--notify"]).output().unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("notify.slack_webhook_url"), "{err}");
        assert!(err.contains("SLACK_WEBHOOK_URL"), "{err}");
        assert!(
            text(&o.stdout).starts_with("# Daily Handover"),
            "the Markdown is still printed"
        );
    });
}

#[test]
fn a_failed_post_that_was_asked_for_fails_the_run() {
    with_sandbox_config(|d| {
        let o = bin(d)
            .env("SLACK_WEBHOOK_URL", closed_port_url())
            .args(["handover", "--notify"])
            .output()
            .unwrap();
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert_eq!(o.status.code(), Some(2), "{out}{err}");
        assert!(out.starts_with("# Daily Handover"), "{out}");
        assert!(err.contains("handover not posted: "), "{err}");
        assert!(
            !err.contains("abcdef123456") && !out.contains("abcdef123456"),
            "secret leaked"
        );
        // JSON: verdict failed, payload kept, posted false.
        let o = bin(d)
            .env("SLACK_WEBHOOK_URL", closed_port_url())
            .args(["--format", "json", "handover", "--notify"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["verdict"], "failed");
        assert_eq!(v["payload"]["posted"], false);
        assert!(
            v["payload"]["markdown"]
                .as_str()
                .unwrap()
                .starts_with("# Daily Handover")
        );
    });
}
