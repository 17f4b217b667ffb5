//! The conformance suite of [`AlertSource`]: Alertmanager and the memory double.

use std::time::Duration;

use chrono::Utc;

use crate::alerts::{AlertSource, AlertState, Matcher};
use crate::error::ErrorKind;

async fn state_of(s: &dyn AlertSource, name: &str, want: AlertState) -> AlertState {
    let mut last = AlertState::Unprocessed;
    for _ in 0..40 {
        let all = s.alerts().await.expect("alerts()");
        if let Some(a) = all.iter().find(|a| a.name() == name) {
            last = a.state;
            if last == want {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Run every check on a source where an alert named `firing` fires (and nothing silences it).
pub async fn alert_source_conformance(s: &dyn AlertSource, firing: &str) {
    assert!(!s.describe().is_empty());
    let all = s.alerts().await.expect("alerts()");
    let a = all
        .iter()
        .find(|a| a.name() == firing)
        .unwrap_or_else(|| panic!("no alert {firing:?} in {all:?}"));
    assert!(
        a.starts_at <= Utc::now() && !a.fingerprint.is_empty(),
        "{a:?}"
    );
    let m = [Matcher {
        name: "alertname".into(),
        value: firing.into(),
        is_regex: false,
        is_equal: true,
    }];
    let until = Utc::now() + chrono::Duration::hours(1);
    let id = s
        .silence(&m, until, "agentlab-ops-conformance", "conformance")
        .await
        .expect("silence()");
    assert!(
        s.silences()
            .await
            .expect("silences()")
            .iter()
            .any(|x| x.id == id),
        "the new silence is not listed"
    );
    assert_eq!(
        state_of(s, firing, AlertState::Suppressed).await,
        AlertState::Suppressed
    );
    s.expire(&id).await.expect("expire()");
    let left = s.silences().await.expect("silences()");
    assert!(
        !left.iter().any(|x| x.id == id),
        "an expired silence is still listed: {left:?}"
    );
    assert_eq!(
        state_of(s, firing, AlertState::Active).await,
        AlertState::Active
    );
    let e = s
        .expire("00000000-0000-4000-8000-000000000000")
        .await
        .expect_err("expiring an unknown silence");
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = s
        .silence(&[], until, "x", "x")
        .await
        .expect_err("a silence without matchers");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
}
