//! Backups in S3 (aws-sdk-s3), or any S3-compatible store (MinIO, Ceph, moto).
//!
//! Credentials come only from the standard AWS chain (environment, profile, SSO, instance
//! role) — never from the config file. Listing is paginated and streamed, one page in memory
//! at a time. Temporary failures (503 SlowDown, 5xx, timeouts, connection resets) are retried
//! by [`crate::retry`] with backoff and jitter (the SDK's own retries are turned off so there is
//! one retry policy); errors carry the bucket and key.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as AwsByteStream;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use crate::backup::{BackupStore, ByteStream, ObjectMeta, validate_key, validate_prefix};
use crate::config::BackupsConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, retry};

/// A bucket (and optional key prefix) holding backups.
#[derive(Debug, Clone)]
pub struct S3BackupStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    policy: RetryPolicy,
    /// Where errors say the store is: the endpoint, or `s3://bucket`.
    place: String,
}

/// Settings of an [`S3BackupStore`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct S3Options {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (empty or ending in `/`).
    pub prefix: String,
    /// Region; from the AWS chain when None.
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store.
    pub endpoint_url: Option<String>,
    /// Path-style addressing.
    pub force_path_style: bool,
    /// Retries and per-attempt timeout.
    pub policy: RetryPolicy,
}

impl S3Options {
    /// Options for `bucket` with defaults.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Options {
            bucket: bucket.into(),
            ..S3Options::default()
        }
    }
    /// From `[backups]`.
    pub fn from_config(c: &BackupsConfig) -> Result<Self> {
        Ok(S3Options {
            bucket: c
                .bucket
                .clone()
                .ok_or_else(|| Error::config("backups.bucket: required when store = \"s3\""))?,
            prefix: c.prefix.clone().unwrap_or_default(),
            region: c.region.clone(),
            endpoint_url: c.endpoint_url.clone(),
            force_path_style: c.force_path_style,
            policy: RetryPolicy::new(c.attempts, c.timeout.0),
        })
    }
}

impl S3BackupStore {
    /// Build a client from the standard AWS chain plus these options.
    pub async fn connect(opts: S3Options) -> Result<Self> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(r) = &opts.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::config(
                "backups.region: no region configured and none found in the AWS chain (AWS_REGION, profile)",
            )
            .with_operation("backup.build"));
        }
        let mut b = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(opts.force_path_style);
        if let Some(u) = &opts.endpoint_url {
            b = b.endpoint_url(u.clone());
        }
        Ok(Self::from_client(
            aws_sdk_s3::Client::from_conf(b.build()),
            opts,
        ))
    }

    /// Wrap an existing client (tests, custom credentials providers).
    pub fn from_client(client: aws_sdk_s3::Client, opts: S3Options) -> Self {
        let place = match &opts.endpoint_url {
            Some(u) => format!("S3 at {u}"),
            None => format!("S3 bucket {}", opts.bucket),
        };
        S3BackupStore {
            client,
            bucket: opts.bucket,
            prefix: opts.prefix,
            policy: opts.policy,
            place,
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The underlying client (to create buckets in tests, for instance).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An SDK error as one readable line (`S3 at http://...: connection refused`), naming the
    /// real key (with the configured prefix); the SDK's whole chain is in the `detail` context.
    fn err<E>(
        &self,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        op: &'static str,
        full_key: &str,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mapped = map_sdk_error(e, op);
        let line = format!("{}: {}", self.place, mapped.message());
        mapped
            .with_message(line)
            .with_context("bucket", self.bucket.clone())
            .with_context("key", full_key.to_string())
    }
}

/// Map an SDK error into the core kinds; temporary ones are retried.
pub fn map_sdk_error<E>(
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    op: &'static str,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = crate::secret::redact(&DisplayErrorContext(&e).to_string());
    let (kind, temporary) = match &e {
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, true),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                (ErrorKind::Timeout, true)
            } else {
                (ErrorKind::Unavailable, true)
            }
        }
        SdkError::ResponseError(_) => (ErrorKind::InvalidResponse, true),
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match (s.err().code(), status) {
                (Some("NoSuchKey" | "NoSuchBucket" | "NotFound"), _) | (_, 404) => {
                    (ErrorKind::NotFound, false)
                }
                (
                    Some(
                        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded",
                    ),
                    _,
                )
                | (_, 429) => (ErrorKind::RateLimited, true),
                (
                    Some(
                        "InvalidAccessKeyId"
                        | "SignatureDoesNotMatch"
                        | "ExpiredToken"
                        | "InvalidToken",
                    ),
                    _,
                ) => (ErrorKind::Unauthenticated, false),
                (Some("AccessDenied" | "AllAccessDisabled"), _) | (_, 403) => {
                    (ErrorKind::PermissionDenied, false)
                }
                (_, 500..=599) => (ErrorKind::Unavailable, true),
                _ => (ErrorKind::Unexpected, false),
            }
        }
        _ => (ErrorKind::Unexpected, false),
    };
    let msg = match kind {
        ErrorKind::NotFound => "no such object".to_string(),
        _ => summarize(&e),
    };
    tracing::debug!(operation = op, detail = %detail, "S3 error");
    Error::new(kind, msg)
        .set_temporary(temporary)
        .with_operation(op)
        .with_detail(detail)
        .with_source(e)
}

/// What happened, in a few words: the SDK's own Display is a nested debug dump.
fn summarize<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        SdkError::TimeoutError(_) => "the request timed out".into(),
        SdkError::DispatchFailure(d) => {
            let root = root_cause(e);
            let lower = root.to_ascii_lowercase();
            if d.is_timeout() || lower.contains("timed out") {
                "the connection timed out".into()
            } else if lower.contains("refused") {
                "connection refused".into()
            } else if lower.contains("reset") || lower.contains("closed") || lower.contains("eof") {
                format!("the connection was closed ({root})")
            } else if lower.contains("dns") || lower.contains("resolve") || lower.contains("lookup")
            {
                format!("cannot resolve the endpoint ({root})")
            } else {
                format!("cannot connect ({root})")
            }
        }
        SdkError::ResponseError(_) => {
            format!("the answer could not be understood ({})", root_cause(e))
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            match (s.err().code(), s.err().message()) {
                (Some(c), Some(m)) => format!("{c}: {m} (HTTP {status})"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                _ => format!("HTTP {status}"),
            }
        }
        _ => root_cause(e),
    }
}

/// The innermost error of a chain, on one line.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    crate::secret::redact(text.lines().next().unwrap_or("").trim())
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

struct ListState {
    store: S3BackupStore,
    prefix: String,
    token: Option<String>,
    page: std::vec::IntoIter<ObjectMeta>,
    done: bool,
}

#[async_trait::async_trait]
impl BackupStore for S3BackupStore {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return stream::once(async move { Err(e.with_operation("backup.list")) }).boxed();
        }
        let st = ListState {
            store: self.clone(),
            prefix: prefix.to_string(),
            token: None,
            page: Vec::new().into_iter(),
            done: false,
        };
        stream::unfold(st, |mut st| async move {
            loop {
                if let Some(m) = st.page.next() {
                    return Some((Ok(m), st));
                }
                if st.done {
                    return None;
                }
                let full = st.store.full(&st.prefix);
                let token = st.token.clone();
                let store = st.store.clone();
                let r = retry(&store.policy, "backup.list", || {
                    let mut req = store
                        .client
                        .list_objects_v2()
                        .bucket(&store.bucket)
                        .prefix(&full);
                    if let Some(t) = &token {
                        req = req.continuation_token(t);
                    }
                    let store = store.clone();
                    let full = full.clone();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| store.err(e, "backup.list", &full))
                    }
                })
                .await;
                match r {
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    Ok(out) => {
                        let strip = st.store.prefix.len();
                        let items: Vec<ObjectMeta> = out
                            .contents()
                            .iter()
                            .filter_map(|o| {
                                let k = o.key()?;
                                Some(ObjectMeta {
                                    key: k.get(strip..)?.to_string(),
                                    size: o.size().unwrap_or(0).max(0) as u64,
                                    last_modified: o.last_modified().and_then(to_chrono),
                                })
                            })
                            .collect();
                        st.page = items.into_iter();
                        st.token = out.next_continuation_token().map(str::to_string);
                        st.done = !out.is_truncated().unwrap_or(false) || st.token.is_none();
                    }
                }
            }
        })
        .boxed()
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        validate_key(key).map_err(|e| e.with_operation("backup.head"))?;
        let full = self.full(key);
        let out = retry(&self.policy, "backup.head", || async {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(|e| self.err(e, "backup.head", &full))
        })
        .await?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: out.last_modified().and_then(to_chrono),
        })
    }

    async fn get(&self, key: &str) -> Result<ByteStream> {
        validate_key(key).map_err(|e| e.with_operation("backup.get"))?;
        let full = self.full(key);
        let out = retry(&self.policy, "backup.get", || async {
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
                .map_err(|e| self.err(e, "backup.get", &full))
        })
        .await?;
        let (bucket, key) = (self.bucket.clone(), full.clone());
        let body = out.body;
        Ok(stream::unfold(Some(body), move |body| {
            let (bucket, key) = (bucket.clone(), key.clone());
            async move {
                let mut body = body?;
                match body.try_next().await {
                    Ok(Some(b)) => Some((Ok(b), Some(body))),
                    Ok(None) => None,
                    Err(e) => Some((
                        Err(Error::new(
                            ErrorKind::Unavailable,
                            format!("reading the object failed: {e}"),
                        )
                        .with_operation("backup.get")
                        .with_context("bucket", bucket)
                        .with_context("key", key)),
                        None,
                    )),
                }
            }
        })
        .boxed())
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        validate_key(key).map_err(|e| e.with_operation("backup.put"))?;
        let full = self.full(key);
        retry(&self.policy, "backup.put", || async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&full)
                .body(AwsByteStream::from(data.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.err(e, "backup.put", &full))
        })
        .await
    }
}
