//! The nginx router against a real nginx on 127.0.0.1 (started by scripts/test.sh): after each
//! weight change, the share of 2,000 requests that reach green follows the weight within ±5
//! points; a configuration check that fails puts the previous upstream file back.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use agentlab_ops::deploy::{NginxRouter, TrafficRouter};
use agentlab_ops::{ErrorKind, LocalHost};

struct Nginx {
    dir: String,
    port: u16,
    blue: u16,
    green: u16,
}

fn nginx() -> Option<Nginx> {
    // Same contract as the S3/SSH servers: present under scripts/test.sh, skipped only on purpose.
    common::servers("nginx")?;
    let var =
        |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} (scripts/test-servers.sh)"));
    Some(Nginx {
        dir: var("AGENTLAB_TEST_NGINX_DIR"),
        port: var("AGENTLAB_TEST_NGINX_PORT").parse().unwrap(),
        blue: var("AGENTLAB_TEST_NGINX_BLUE_PORT").parse().unwrap(),
        green: var("AGENTLAB_TEST_NGINX_GREEN_PORT").parse().unwrap(),
    })
}

async fn backend(port: u16, name: &'static str) {
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { name }));
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
}

fn router(n: &Nginx, check: Vec<String>) -> NginxRouter {
    let nginx = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "/usr/sbin/nginx".into(),
            "-e".into(),
            format!("{}/logs/error.log", n.dir),
            "-c".into(),
            format!("{}/nginx.conf", n.dir),
            "-p".into(),
            n.dir.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let check = if check.is_empty() {
        nginx(&["-t", "-q"])
    } else {
        check
    };
    NginxRouter::new(
        Arc::new(LocalHost::new("lb")),
        format!("{}/upstream.conf", n.dir),
        "agentlab",
        format!("127.0.0.1:{}", n.blue),
        format!("127.0.0.1:{}", n.green),
        check,
        nginx(&["-s", "reload"]),
    )
}

/// Percent of `n` requests (each on a new connection) answered by green.
async fn green_share(port: u16, n: usize) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut green = 0usize;
    let mut done = 0usize;
    let batches: Vec<usize> = (0..n).collect();
    for chunk in batches.chunks(50) {
        let answers = futures::future::join_all(chunk.iter().map(|_| {
            let (c, u) = (client.clone(), url.clone());
            async move { c.get(u).send().await.unwrap().text().await.unwrap() }
        }))
        .await;
        for a in answers {
            done += 1;
            green += usize::from(a == "green");
        }
    }
    100.0 * green as f64 / done as f64
}

/// Wait until nginx serves the new weights: a reload replaces the workers gracefully.
async fn settle(port: u16, want: f64) {
    for _ in 0..50 {
        if (green_share(port, 100).await - want).abs() <= 10.0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn weights_steer_real_traffic() {
    let Some(n) = nginx() else { return };
    backend(n.blue, "blue").await;
    backend(n.green, "green").await;
    let r = router(&n, vec![]);
    for w in [10u8, 25, 50, 100, 0] {
        r.set_green(w).await.unwrap();
        assert_eq!(r.green().await.unwrap(), w);
        settle(n.port, w as f64).await;
        let share = green_share(n.port, 2000).await;
        assert!(
            (share - w as f64).abs() <= 5.0,
            "green weight {w}%: {share:.1}% of 2000 requests reached green"
        );
    }

    // A configuration nginx rejects is never left in place.
    let before = std::fs::read_to_string(format!("{}/upstream.conf", n.dir)).unwrap();
    let bad = router(&n, vec!["false".into()]);
    let e = bad.set_green(30).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unexpected);
    assert!(e.to_string().contains("configuration check"), "{e}");
    let after = std::fs::read_to_string(format!("{}/upstream.conf", n.dir)).unwrap();
    assert_eq!(before, after);
    assert_eq!(r.green().await.unwrap(), 0);

    // The router conformance suite, on the real nginx (the memory double passes it too).
    agentlab_ops::testing::traffic_router_conformance(&r).await;
}
