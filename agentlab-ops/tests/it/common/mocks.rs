//! Stateful wiremock servers shaped like the GitHub and PagerDuty API references, for the
//! tests of changes that must be seen again by a later call (a disabled workflow stays
//! disabled; a page is triggered once and resolved).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The workflows of `acme/agent-lab` on a mock GitHub: `GET /actions/workflows/{wf}` answers
/// the workflow with its `state`, `PUT …/disable` and `…/enable` (204) change it, any other
/// workflow is a 404. Returns the states, to inspect and to change by hand.
pub async fn github_workflows(
    server: &MockServer,
    names: &[&str],
) -> Arc<Mutex<BTreeMap<String, String>>> {
    let states: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(
        names
            .iter()
            .map(|n| (n.to_string(), "active".to_string()))
            .collect(),
    ));
    let base = "/repos/acme/agent-lab/actions/workflows/";
    let s = states.clone();
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/repos/acme/agent-lab/actions/workflows/[^/]+$",
        ))
        .respond_with(move |r: &Request| {
            let wf = r.url.path().trim_start_matches(base).to_string();
            match s.lock().unwrap().get(&wf) {
                Some(state) => ResponseTemplate::new(200).set_body_json(json!({
                    "id": 161335, "node_id": "MDg6V29ya2Zsb3cxNjEzMzU=", "name": wf,
                    "path": format!(".github/workflows/{wf}"), "state": state,
                    "created_at": "2026-01-09T12:00:00Z", "updated_at": "2026-11-30T12:00:00Z",
                })),
                None => not_found(),
            }
        })
        .mount(server)
        .await;
    let s = states.clone();
    Mock::given(method("PUT"))
        .and(path_regex(
            r"^/repos/acme/agent-lab/actions/workflows/[^/]+/(enable|disable)$",
        ))
        .respond_with(move |r: &Request| {
            let rest = r.url.path().trim_start_matches(base);
            let (wf, verb) = rest.rsplit_once('/').unwrap();
            let mut st = s.lock().unwrap();
            match st.get_mut(wf) {
                Some(state) => {
                    *state = if verb == "enable" {
                        "active".into()
                    } else {
                        "disabled_manually".into()
                    };
                    ResponseTemplate::new(204)
                }
                None => not_found(),
            }
        })
        .mount(server)
        .await;
    states
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/actions/workflows#get-a-workflow",
    }))
}

/// PagerDuty's Events v2 endpoint (`POST /v2/enqueue`, 202 as in its reference): every event
/// received, in order.
pub async fn pagerduty_events(server: &MockServer) -> Arc<Mutex<Vec<Value>>> {
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let e = events.clone();
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(move |r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            let key = body["dedup_key"].clone();
            e.lock().unwrap().push(body);
            ResponseTemplate::new(202).set_body_json(json!({
                "status": "success", "message": "Event processed", "dedup_key": key,
            }))
        })
        .mount(server)
        .await;
    events
}
