//! S3 error handling against a scripted HTTP server: 503 SlowDown is retried, 403 is not, and
//! garbage is an error — never a panic.

use std::time::Duration;

use agentlab_ops::ErrorKind;
use agentlab_ops::backup::{BackupStore, S3BackupStore, S3Options};
use agentlab_ops::retry::RetryPolicy;
use futures::TryStreamExt;
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SLOW_DOWN: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"#;
const DENIED: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"#;
const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>sessions/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>sessions/a.json</Key><Size>3</Size></Contents><Contents><Key>sessions/b.json</Key><Size>5</Size></Contents></ListBucketResult>"#;

fn store(s: &MockServer) -> S3BackupStore {
    // Static test credentials through the client (the config file never carries any).
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .endpoint_url(s.uri())
        .force_path_style(true)
        .build();
    let mut o = S3Options::new("b");
    o.policy = RetryPolicy {
        attempts: 3,
        attempt_timeout: Duration::from_secs(5),
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    S3BackupStore::from_client(aws_sdk_s3::Client::from_conf(conf), o)
}

#[tokio::test]
async fn slow_down_is_retried() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("list-type", "2"))
        .respond_with(ResponseTemplate::new(503).set_body_string(SLOW_DOWN))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("GET"))
        .and(query_param("list-type", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_string(PAGE))
        .with_priority(5)
        .mount(&s)
        .await;
    let st = store(&s);
    let keys: Vec<String> = st
        .list("sessions/")
        .map_ok(|m| m.key)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys, vec!["sessions/a.json", "sessions/b.json"]);
    assert_eq!(s.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn access_denied_is_not_retried() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(DENIED))
        .mount(&s)
        .await;
    let st = store(&s);
    let e = st
        .list("sessions/")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("bucket=b"), "{e}");
    assert_eq!(s.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn persistent_slow_down_reports_rate_limited_with_attempts() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string(SLOW_DOWN))
        .mount(&s)
        .await;
    let e = store(&s)
        .list("x/")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert!(e.to_string().contains("attempts=3"), "{e}");
}

#[tokio::test]
async fn garbage_listing_is_an_error_not_a_panic() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"))
        .mount(&s)
        .await;
    let r = store(&s).list("x/").try_collect::<Vec<_>>().await;
    assert!(r.is_err());
}
