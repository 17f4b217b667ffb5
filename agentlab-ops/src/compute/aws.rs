//! What the EC2, ELB and Cost Explorer clients share: the SDK config from the standard chain and
//! `[aws]`, and one mapping of SDK errors (and waiter errors) into [`Error`].

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::waiters::error::WaiterError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::AwsConfig;
use crate::error::{Error, ErrorKind, Result};

/// The shared SDK config: the standard credential chain, `[aws] region`, SDK retries off (one
/// retry policy: [`super::RetriedCompute`]).
pub(crate) async fn load(c: &AwsConfig) -> Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(r) = &c.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &c.endpoint_url {
        loader = loader.endpoint_url(u.clone());
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::config(
            "aws.region: no region configured and none found in the AWS chain (AWS_REGION, profile)",
        )
        .with_operation("compute.build"));
    }
    Ok(sdk)
}

/// The kind of an AWS error code, and whether it is worth retrying.
fn classify(code: Option<&str>, status: u16) -> (ErrorKind, bool) {
    match (code, status) {
        (Some(c), _) if c.ends_with(".NotFound") || c == "LoadBalancerNotFound" => {
            (ErrorKind::NotFound, false)
        }
        (Some("TargetGroupNotFound" | "InvalidTarget" | "InvalidInstance"), _) => {
            (ErrorKind::NotFound, false)
        }
        (Some("IncorrectInstanceState" | "IncorrectState" | "InvalidState"), _) => {
            (ErrorKind::Conflict, false)
        }
        (Some("InsufficientInstanceCapacity" | "InsufficientCapacity"), _) => {
            (ErrorKind::Unavailable, false)
        }
        (
            Some(
                "RequestLimitExceeded"
                | "Throttling"
                | "ThrottlingException"
                | "LimitExceededException",
            ),
            _,
        )
        | (_, 429) => (ErrorKind::RateLimited, true),
        (
            Some(
                "AuthFailure"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredToken",
            ),
            _,
        ) => (ErrorKind::Unauthenticated, false),
        (Some("UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException"), _)
        | (_, 403) => (ErrorKind::PermissionDenied, false),
        (Some(c), _) if c.starts_with("Invalid") || c.starts_with("Validation") => {
            (ErrorKind::ConfigInvalid, false)
        }
        (_, 500..=599) => (ErrorKind::Unavailable, true),
        _ => (ErrorKind::Unexpected, false),
    }
}

/// An SDK error as one readable line (`EC2 us-east-1: IncorrectInstanceState: ...`); the whole
/// chain is in the `detail` context.
pub(crate) fn map<E>(e: SdkError<E, HttpResponse>, op: &'static str, place: &str) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = crate::secret::redact(&DisplayErrorContext(&e).to_string());
    let (kind, temporary, line) = match &e {
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, true, "timed out".to_string()),
        SdkError::DispatchFailure(d) => {
            let k = if d.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            (k, true, "could not connect".to_string())
        }
        SdkError::ResponseError(_) => (
            ErrorKind::InvalidResponse,
            true,
            "unreadable answer".to_string(),
        ),
        SdkError::ServiceError(s) => {
            let code = s.err().code();
            let (k, t) = classify(code, s.raw().status().as_u16());
            let msg = s.err().message().unwrap_or("");
            (k, t, format!("{}: {msg}", code.unwrap_or("error")))
        }
        _ => (ErrorKind::Unexpected, false, "request not sent".to_string()),
    };
    tracing::debug!(operation = op, detail = %detail, "AWS error");
    Error::new(kind, format!("{place}: {}", crate::secret::redact(&line)))
        .set_temporary(temporary)
        .with_operation(op)
        .with_detail(detail)
        .with_source(e)
}

/// A waiter's error: `timeout` when the wait ran out, `conflict` when the resource reached a
/// state it will not leave (terminated), else the failed poll's error.
pub(crate) fn map_wait<O, E>(
    e: WaiterError<O, E>,
    op: &'static str,
    place: &str,
    what: &str,
) -> Error
where
    O: std::fmt::Debug + Send + Sync + 'static,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match e {
        WaiterError::ExceededMaxWait(w) => Error::new(
            ErrorKind::Timeout,
            format!(
                "{place}: {what}: not reached after {}",
                crate::units::format_duration(w.max_wait())
            ),
        )
        .with_operation(op),
        WaiterError::FailureState(_) => Error::new(
            ErrorKind::Conflict,
            format!("{place}: {what}: reached a state it cannot leave"),
        )
        .with_operation(op),
        WaiterError::OperationFailed(f) => map(f.into_error(), op, place),
        other => Error::new(ErrorKind::Unexpected, format!("{place}: {what}: {other}"))
            .with_operation(op),
    }
}
