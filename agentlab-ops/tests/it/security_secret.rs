//! `rotate_secret` against a key service on 127.0.0.1 that really issues, checks and revokes
//! keys (a stateful wiremock), with the install hook a real command writing the file the
//! service's client reads: with a failure injected at each step in turn, the value in place
//! always works, and no value ever reaches the report or the journal.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use agentlab_ops::config::SecretRotation;
use agentlab_ops::runbook::{
    RotateSecretOptions, RotateSecretPayload, SecretOutcome, rotate_secret,
};
use agentlab_ops::{Environment, Report, RunOptions};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const INITIAL: &str = "sk-initial-0001-abcdef";

#[derive(Default)]
struct Keys {
    valid: HashSet<String>,
    issued: Vec<String>,
    /// `issue`: 500; `verify_new`: every issued key refused; `revoke`: 500; `revoke_noop`: 200
    /// without revoking.
    fail: Option<&'static str>,
}

fn bearer(r: &Request) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string()
}

async fn key_service(fail: Option<&'static str>) -> (MockServer, Arc<Mutex<Keys>>) {
    let server = MockServer::start().await;
    let keys = Arc::new(Mutex::new(Keys {
        fail,
        ..Keys::default()
    }));
    keys.lock().unwrap().valid.insert(INITIAL.into());
    let k = keys.clone();
    Mock::given(method("POST"))
        .and(path("/v1/keys"))
        .respond_with(move |_: &Request| {
            let mut k = k.lock().unwrap();
            if k.fail == Some("issue") {
                return ResponseTemplate::new(500).set_body_string("key store down");
            }
            let key = format!("sk-live-{:04}-{}", k.issued.len() + 1, uuid_like());
            k.valid.insert(key.clone());
            k.issued.push(key.clone());
            ResponseTemplate::new(201).set_body_json(json!({"id": k.issued.len(), "key": key}))
        })
        .mount(&server)
        .await;
    let k = keys.clone();
    Mock::given(method("GET"))
        .and(path("/v1/whoami"))
        .respond_with(move |r: &Request| {
            let k = k.lock().unwrap();
            let key = bearer(r);
            let refused = k.fail == Some("verify_new") && key != INITIAL;
            if k.valid.contains(&key) && !refused {
                ResponseTemplate::new(200).set_body_json(json!({"user": "agent-lab"}))
            } else {
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid key"}))
            }
        })
        .mount(&server)
        .await;
    let k = keys.clone();
    Mock::given(method("POST"))
        .and(path("/v1/revoke"))
        .respond_with(move |r: &Request| {
            let mut k = k.lock().unwrap();
            match k.fail {
                Some("revoke") => return ResponseTemplate::new(503).set_body_string("try later"),
                Some("revoke_noop") => return ResponseTemplate::new(200),
                _ => {}
            }
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let key = body["key"].as_str().unwrap_or("").to_string();
            k.valid.remove(&key);
            ResponseTemplate::new(200)
        })
        .mount(&server)
        .await;
    (server, keys)
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", n ^ 0x5eed_cafe_f00d)
}

/// The rotation: issue, verify and revoke over HTTP, install by a command writing the file,
/// the new value also kept in `new.key`.
fn secret(server: &MockServer, d: &Path) -> SecretRotation {
    let install = format!(
        r#"if [ -e {d}/fail-install ] && [ "$AGENTLAB_SECRET" != "$AGENTLAB_SECRET_OLD" ]; then echo "disk full" >&2; exit 1; fi; printf %s "$AGENTLAB_SECRET" > {d}/current.key"#,
        d = d.display()
    );
    serde_json::from_value(json!({
        "name": "llm_api_key",
        "current_file": d.join("current.key"),
        "issue": {"url": format!("{}/v1/keys", server.uri()), "method": "POST", "json_pointer": "/key"},
        "verify": {"url": format!("{}/v1/whoami", server.uri()), "method": "GET", "auth": "secret"},
        "install": {"command": ["sh", "-c", install]},
        "revoke": {"url": format!("{}/v1/revoke", server.uri()), "method": "POST", "body": "{\"key\": \"{secret}\"}"},
        "output": d.join("new.key"),
        "timeout": "2s",
    }))
    .unwrap()
}

fn env(s: SecretRotation, journal: &Path) -> Environment {
    Environment::builder("secrets")
        .configure(|c| c.secrets = vec![s])
        .journal(journal)
        .build()
}

fn payload(r: &Report) -> RotateSecretPayload {
    r.payload_as()
        .unwrap_or_else(|e| panic!("{e}: {}", r.to_text(false)))
}

/// What each outcome leaves behind.
fn check_outcome(
    fail: Option<&str>,
    want: SecretOutcome,
    r: &Report,
    s: &agentlab_ops::runbook::SecretResult,
    k: &Keys,
    in_place: &str,
    d: &Path,
) {
    match want {
        SecretOutcome::Rotated => {
            assert_eq!(k.valid.len(), 1, "{fail:?}: only the new key works");
            assert!(!k.valid.contains(INITIAL));
            let kept = std::fs::read_to_string(d.join("new.key")).unwrap();
            assert_eq!(kept.trim(), in_place);
            let mode = std::fs::metadata(d.join("new.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let old_copy = std::fs::read_dir(d)
                .unwrap()
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().starts_with("new.key.old-"))
                .expect("the old output file kept");
            assert_eq!(
                std::fs::read_to_string(old_copy.path()).unwrap(),
                "previous-output"
            );
            assert!(r.escalations.is_empty(), "{}", r.to_text(false));
        }
        SecretOutcome::KeptOld => {
            assert_eq!(in_place, INITIAL, "{fail:?}");
            assert_eq!(
                k.valid,
                HashSet::from([INITIAL.to_string()]),
                "{fail:?}: what was issued was revoked"
            );
            assert_eq!(s.restored, Some(true), "{fail:?}");
            let kept = std::fs::read_to_string(d.join("new.key")).unwrap();
            assert_eq!(
                kept, "previous-output",
                "{fail:?}: the output file put back"
            );
            let e = &r.escalations[0];
            assert_eq!(e.criterion, "secret_rotation_failed", "{fail:?}");
            assert!(
                s.failed_step.as_deref().unwrap().starts_with(fail.unwrap()),
                "{fail:?}: {s:?}"
            );
        }
        _ => {
            assert_ne!(in_place, INITIAL);
            assert!(
                k.valid.contains(INITIAL),
                "{fail:?}: the old key was not revoked"
            );
            assert_eq!(r.escalations[0].criterion, "secret_not_revoked");
            assert!(r.escalations[0].message.contains("may still work"));
        }
    }
}

#[tokio::test]
async fn a_failure_at_each_step_leaves_a_working_value_in_place() {
    for fail in [
        None,
        Some("issue"),
        Some("verify_new"),
        Some("install"),
        Some("revoke"),
        Some("revoke_noop"),
    ] {
        let (server, keys) = key_service(fail.filter(|f| *f != "install")).await;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("current.key"), INITIAL).unwrap();
        std::fs::write(d.path().join("new.key"), "previous-output").unwrap();
        if fail == Some("install") {
            std::fs::write(d.path().join("fail-install"), "").unwrap();
        }
        let journal = d.path().join("journal.jsonl");
        let r = rotate_secret(
            &env(secret(&server, d.path()), &journal),
            &RotateSecretOptions::default(),
            &RunOptions::default(),
        )
        .await;
        let p = payload(&r);
        let s = &p.secrets[0];
        let k = keys.lock().unwrap();
        let in_place = std::fs::read_to_string(d.path().join("current.key")).unwrap();
        // The invariant: whatever is in place works.
        assert!(
            k.valid.contains(&in_place),
            "{fail:?}: {in_place} in place, valid {:?}\n{}",
            k.valid,
            r.to_text(false)
        );
        let want = match fail {
            None => SecretOutcome::Rotated,
            Some("revoke" | "revoke_noop") => SecretOutcome::OldStillValid,
            _ => SecretOutcome::KeptOld,
        };
        assert_eq!(s.outcome, want, "{fail:?}: {}", r.to_text(false));
        check_outcome(fail, want, &r, s, &k, &in_place, d.path());
        // No value anywhere: not the old, not the new one.
        let text = format!(
            "{}{}",
            r.to_json(),
            std::fs::read_to_string(&journal).unwrap_or_default()
        );
        assert!(!text.contains(INITIAL), "{fail:?}: the old value leaked");
        for key in &k.issued {
            assert!(!text.contains(key.as_str()), "{fail:?}: a new value leaked");
        }
        assert!(
            text.contains("sha256:"),
            "fingerprints stand for the values"
        );
    }
}

/// A file-backed key store driven by command hooks: the store is a directory, one file per
/// valid key.
fn command_secret(d: &Path) -> SecretRotation {
    let store = d.join("valid");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(INITIAL), "").unwrap();
    std::fs::write(d.join("current.key"), INITIAL).unwrap();
    let s = store.display();
    serde_json::from_value(json!({
        "name": "db_password",
        "current_file": d.join("current.key"),
        "issue": {"command": ["sh", "-c", format!("k=pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \\n'); touch {s}/$k; echo \"$k\"")]},
        "verify": {"command": ["sh", "-c", format!("test -e \"{s}/$AGENTLAB_SECRET\"")]},
        "revoke": {"command": ["sh", "-c", format!("rm -f \"{s}/$AGENTLAB_SECRET\"")]},
        "output": d.join("current.key"),
    }))
    .unwrap()
}

#[tokio::test]
async fn command_hooks_rotate_and_a_dry_run_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let journal = d.path().join("journal.jsonl");
    let e = env(command_secret(d.path()), &journal);
    let dry = rotate_secret(
        &e,
        &RotateSecretOptions::default(),
        &RunOptions::default().dry_run(true),
    )
    .await;
    assert_eq!(
        payload(&dry).secrets[0].outcome,
        SecretOutcome::Planned,
        "{}",
        dry.to_text(false)
    );
    assert_eq!(
        std::fs::read_dir(d.path().join("valid")).unwrap().count(),
        1,
        "the dry run issued nothing"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("current.key")).unwrap(),
        INITIAL
    );
    let r = rotate_secret(&e, &RotateSecretOptions::default(), &RunOptions::default()).await;
    assert_eq!(
        payload(&r).secrets[0].outcome,
        SecretOutcome::Rotated,
        "{}",
        r.to_text(false)
    );
    let now = std::fs::read_to_string(d.path().join("current.key")).unwrap();
    let valid: Vec<String> = std::fs::read_dir(d.path().join("valid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(valid, vec![now.trim().to_string()]);
    assert!(!r.to_json().to_string().contains(now.trim()));
    // An unknown name is a clear error naming what is configured.
    let o = RotateSecretOptions {
        secrets: vec!["nope".into()],
    };
    let r = rotate_secret(&e, &o, &RunOptions::default()).await;
    let m = r.error.as_ref().unwrap().message.clone();
    assert!(m.contains("\"nope\"") && m.contains("db_password"), "{m}");
}

#[tokio::test]
async fn a_verify_hook_that_refuses_the_value_in_use_stops_before_any_change() {
    let d = tempfile::tempdir().unwrap();
    let mut s = serde_json::to_value(command_secret(d.path())).unwrap();
    s["verify"] = json!({"command": ["false"]});
    let s: SecretRotation = serde_json::from_value(s).unwrap();
    let r = rotate_secret(
        &env(s, &d.path().join("j")),
        &RotateSecretOptions::default(),
        &RunOptions::default(),
    )
    .await;
    let p = payload(&r);
    assert_eq!(p.secrets[0].outcome, SecretOutcome::KeptOld);
    assert_eq!(p.secrets[0].failed_step.as_deref(), Some("verify_old"));
    assert_eq!(
        std::fs::read_dir(d.path().join("valid")).unwrap().count(),
        1,
        "nothing was issued"
    );
}
