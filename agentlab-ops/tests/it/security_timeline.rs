//! The auth timeline over two hosts — the local one and the real sshd — reading fixture
//! auth logs in Debian's syslog and rsyslog's ISO formats.

use crate::common;

use agentlab_ops::runbook::{TimelineOptions, TimelinePayload, auth_timeline};
use agentlab_ops::security::authlog::{AuthFlag, AuthKind};
use agentlab_ops::{Environment, LocalHost, RunOptions, Verdict};
use chrono::{Duration, Utc};

fn syslog(t: chrono::DateTime<Utc>) -> String {
    t.format("%b %e %H:%M:%S").to_string()
}

#[tokio::test]
async fn two_hosts_make_one_sorted_timeline_with_counts_and_flags() {
    let Some(s) = common::servers("two_hosts_make_one_sorted_timeline_with_counts_and_flags")
    else {
        return;
    };
    let now = Utc::now();
    let t = |mins: i64| now - Duration::minutes(mins);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(a.path().join("var/log")).unwrap();
    std::fs::create_dir_all(b.path().join("var/log")).unwrap();
    // web-1 (Debian: auth.log, syslog times): a brute force that gets in, then sudo.
    let web1 = format!(
        "{} web-1 sshd[10]: Failed password for root from 203.0.113.9 port 50000 ssh2\n\
         {} web-1 sshd[11]: Failed password for invalid user admin from 203.0.113.9 port 50001 ssh2\n\
         {} web-1 sshd[12]: Invalid user oracle from 203.0.113.9 port 50002\n\
         {} web-1 sshd[13]: Accepted password for root from 203.0.113.9 port 50003 ssh2\n\
         {} web-1 sshd[13]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)\n\
         {} web-1 sshd[14]: Accepted publickey for ops from 10.0.0.5 port 40000 ssh2: ED25519 SHA256:abc\n\
         not a log line at all\n\
         {} web-1 sshd[13]: pam_unix(sshd:session): session closed for user root\n",
        syslog(t(50)),
        syslog(t(49)),
        syslog(t(48)),
        syslog(t(47)),
        syslog(t(47)),
        syslog(t(30)),
        syslog(t(10))
    );
    std::fs::write(a.path().join("var/log/auth.log"), web1).unwrap();
    // web-2 (RHEL: secure, ISO times): sudo and su in between, and an old line outside the window.
    let iso = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let web2 = format!(
        "{} web-2 sshd[1]: Accepted publickey for ops from 10.0.0.5 port 1 ssh2\n\
         {} web-2 sudo:      ops : TTY=pts/0 ; PWD=/home/ops ; USER=root ; COMMAND=/usr/bin/tar czf /tmp/x.tgz /app/data\n\
         {} web-2 su[99]: (to root) ops on pts/0\n",
        iso(now - Duration::days(3)),
        iso(t(46)),
        iso(t(20))
    );
    std::fs::write(b.path().join("var/log/secure"), web2).unwrap();
    let cd = common::control_dir();
    let root_a = a.path().to_str().unwrap().to_string();
    let env = Environment::builder("timeline")
        .host(LocalHost::new("web-1"))
        .host(s.ssh_host("web-2", s.ssh_ports[0], cd.path()))
        .configure(|c| {
            c.access.working_hours = "00:00-24:00".into();
            c.access.working_days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                .map(String::from)
                .to_vec();
        })
        .build();
    // The two hosts' trees differ: run each under its root through the option, merged after.
    let mut events = Vec::new();
    for (host, root) in [
        ("web-1", root_a.clone()),
        ("web-2", b.path().to_str().unwrap().to_string()),
    ] {
        let o: TimelineOptions = serde_json::from_value(
            serde_json::json!({"hosts": [host], "root": root, "since": "1d"}),
        )
        .unwrap();
        let r = auth_timeline(&env, &o, &RunOptions::default()).await;
        let p: TimelinePayload = r.payload_as().unwrap();
        if host == "web-1" {
            assert_eq!(p.logs[0].path, "/var/log/auth.log");
            assert_eq!(p.logs[0].malformed, 1);
            assert_eq!(
                r.verdict,
                Verdict::Escalate,
                "failed then accepted: {}",
                r.to_text(false)
            );
            assert!(
                r.escalations
                    .iter()
                    .any(|e| e.criterion == "failed_then_accepted")
            );
            let flag = p.timeline.flags.iter().find_map(|f| match f {
                AuthFlag::FailedThenAccepted {
                    source,
                    user,
                    failures,
                    ..
                } => Some((source.clone(), user.clone(), *failures)),
                _ => None,
            });
            assert_eq!(flag, Some(("203.0.113.9".into(), "root".into(), 3)));
            let src = &p.timeline.by_source["203.0.113.9"];
            assert_eq!((src.failed, src.accepted), (3, 1));
        } else {
            assert_eq!(p.logs[0].path, "/var/log/secure", "{}", r.to_text(false));
            assert_eq!(
                p.timeline.events.len(),
                2,
                "the 3-day-old line is outside the window"
            );
            assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
        }
        events.extend(p.timeline.events);
    }
    let hours = agentlab_ops::security::authlog::Hours {
        span: (9 * 60, 17 * 60),
        days: vec![],
    };
    let tl = agentlab_ops::security::authlog::timeline(events, &hours);
    let order: Vec<(String, AuthKind)> =
        tl.events.iter().map(|e| (e.host.clone(), e.kind)).collect();
    assert_eq!(order[3], ("web-1".to_string(), AuthKind::Accepted));
    assert_eq!(order[5], ("web-2".to_string(), AuthKind::Sudo), "{order:?}");
    assert_eq!(tl.by_user["ops"].sudo, 1);
    assert!(
        tl.flags
            .iter()
            .any(|f| matches!(f, AuthFlag::OutOfHours { .. })),
        "no working days: everything is out of hours"
    );
}

#[tokio::test]
async fn a_missing_auth_log_escalates_and_an_empty_one_is_healthy() {
    let a = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(a.path().join("var/log")).unwrap();
    std::fs::write(a.path().join("var/log/auth.log"), "").unwrap();
    let env = Environment::builder("timeline")
        .host(LocalHost::new("has-log"))
        .build();
    let o: TimelineOptions =
        serde_json::from_value(serde_json::json!({"root": "/nonexistent-root"})).unwrap();
    let r = auth_timeline(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Escalate);
    assert_eq!(r.escalations[0].criterion, "auth_log_unreadable");
    assert!(
        r.escalations[0].message.contains("auth.log"),
        "{}",
        r.escalations[0].message
    );
    let o: TimelineOptions = serde_json::from_value(serde_json::json!({"root": a.path()})).unwrap();
    let r = auth_timeline(&env, &o, &RunOptions::default()).await;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.to_text(false));
}
