//! The conformance suite of [`TrafficRouter`]: every router, nginx or the memory double.

use crate::deploy::TrafficRouter;
use crate::error::ErrorKind;

/// Run every router check. The router's traffic is changed (and left on blue, 0%).
pub async fn traffic_router_conformance(r: &dyn TrafficRouter) {
    router_reports_what_was_set(r).await;
    router_refuses_more_than_100_percent(r).await;
    assert!(!r.describe().is_empty(), "describe() names the router");
}

/// `green()` answers the share last set, through a whole rollout and back.
pub async fn router_reports_what_was_set(r: &dyn TrafficRouter) {
    for p in [0u8, 10, 25, 50, 100, 0] {
        r.set_green(p)
            .await
            .unwrap_or_else(|e| panic!("set_green({p}): {e}"));
        assert_eq!(
            r.green().await.expect("green()"),
            p,
            "{}: green() after set_green({p})",
            r.describe()
        );
    }
}

/// A share above 100% is a `config_invalid` error, and the traffic does not move.
pub async fn router_refuses_more_than_100_percent(r: &dyn TrafficRouter) {
    r.set_green(25).await.expect("set_green(25)");
    let e = r
        .set_green(101)
        .await
        .expect_err("set_green(101) must fail");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
    assert_eq!(
        r.green().await.expect("green()"),
        25,
        "a refused share leaves the traffic as it was"
    );
    r.set_green(0).await.expect("set_green(0)");
}
