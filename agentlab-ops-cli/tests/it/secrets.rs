//! `agentlab-ops rotate secret` with an HTTP issue hook that needs an admin token from the
//! environment: the rotation goes through, and neither the token nor a key value reaches the
//! output, the `-v` log or the journal; without the variable, the error names it.

use crate::common;
use common::{bin, text};

use std::sync::{Arc, Mutex};

use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ADMIN: &str = "admin-token-5f3c9a1b77";
const OLD: &str = "sk-old-key-778899";

fn config(server: &str, store: &std::path::Path, current: &std::path::Path) -> String {
    let s = store.display();
    format!(
        r#"environment = "cli-secrets"
[service]
base_url = "http://127.0.0.1:9"

[[secrets]]
name = "llm_api_key"
current_file = "{c}"
output = "{c}"
timeout = "5s"
issue = {{ url = "{server}/v1/keys", method = "POST", token = "${{KEYS_ADMIN_TOKEN}}", json_pointer = "/key" }}
verify = {{ command = ["sh", "-c", "test -e \"{s}/$AGENTLAB_SECRET\""] }}
revoke = {{ command = ["sh", "-c", "rm -f \"{s}/$AGENTLAB_SECRET\""] }}
"#,
        c = current.display()
    )
}

#[test]
fn the_command_rotates_with_a_token_from_the_environment_and_prints_no_value() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("valid");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join(OLD), "").unwrap();
    let current = d.path().join("llm.key");
    std::fs::write(&current, OLD).unwrap();
    let issued = Arc::new(Mutex::new(Vec::<String>::new()));
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let (st, i) = (store.clone(), issued.clone());
        Mock::given(method("POST"))
            .and(path("/v1/keys"))
            .and(header("authorization", format!("Bearer {ADMIN}").as_str()))
            .respond_with(move |_: &Request| {
                let key = format!("sk-new-key-{:06}", 424242 + i.lock().unwrap().len());
                std::fs::write(st.join(&key), "").unwrap();
                i.lock().unwrap().push(key.clone());
                ResponseTemplate::new(201).set_body_json(serde_json::json!({ "key": key }))
            })
            .mount(&server)
            .await;
        server
    });
    std::fs::write(
        d.path().join("agentlab-ops.toml"),
        config(&server.uri(), &store, &current),
    )
    .unwrap();
    // Without the variable: exit 1, the error names it, nothing changed.
    let o = bin(d.path())
        .env_remove("KEYS_ADMIN_TOKEN")
        .args(["rotate", "secret"])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("KEYS_ADMIN_TOKEN"), "{all}");
    assert_eq!(std::fs::read_to_string(&current).unwrap(), OLD);
    // With it.
    let o = bin(d.path())
        .env("KEYS_ADMIN_TOKEN", ADMIN)
        .args([
            "-v",
            "--format",
            "json",
            "rotate",
            "secret",
            "--secrets",
            "llm_api_key",
        ])
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["payload"]["secrets"][0]["outcome"], "rotated", "{out}");
    let new = std::fs::read_to_string(&current).unwrap();
    assert_eq!(issued.lock().unwrap().as_slice(), [new.trim().to_string()]);
    assert!(!store.join(OLD).exists(), "the old key is revoked");
    let journal = std::fs::read_to_string(d.path().join("journal.jsonl")).unwrap();
    for (what, v) in [("token", ADMIN), ("old key", OLD), ("new key", new.trim())] {
        for (place, t) in [("output", &out), ("log", &err), ("journal", &journal)] {
            assert!(!t.contains(v), "the {what} is in the {place}");
        }
    }
    assert!(journal.contains("rotate_secret") && journal.contains("sha256:"));
}
