//! AWS plumbing shared by `s3://` vaults and the s3 and RDS resource kinds:
//!
//! - one SDK configuration per region and endpoint settings, from the
//!   standard credential chain (env, profile, SSO, IMDS, ECS), with explicit
//!   timeouts and the SDK's standard retry mode. That mode is the only
//!   per-request retry layer: full-jitter backoff, and a token-bucket retry
//!   quota shared by every client of a service and region, which is the
//!   retry budget that keeps retries from multiplying load during an outage.
//!   It is set explicitly so a change of SDK default does not change us.
//! - error text that names the operation and carries the AWS error code;
//! - polling of long operations (snapshot available, copy done, instance
//!   available) with capped exponential backoff plus jitter, bounded.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_rds::error::ProvideErrorMetadata;
use rand::Rng;

use crate::plan::AwsSpec;

/// Per-request timeouts: a request that hangs is retried (or fails), it
/// never stalls a run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one attempt of an operation may take before it is cut off.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// One try and three retries, the SDK's standard-mode default, pinned.
const MAX_ATTEMPTS: u32 = 4;

/// The endpoint a plan or the environment points at, if not AWS itself.
pub fn custom_endpoint(aws: Option<&AwsSpec>, service_env: &str) -> Option<String> {
    aws.and_then(|a| a.endpoint_url.clone())
        .or_else(|| std::env::var(service_env).ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty())
}

fn configs() -> &'static tokio::sync::Mutex<HashMap<String, SdkConfig>> {
    static CONFIGS: OnceLock<tokio::sync::Mutex<HashMap<String, SdkConfig>>> = OnceLock::new();
    CONFIGS.get_or_init(Default::default)
}

/// The SDK configuration for `region`: built once per region and settings
/// (building one reads the credential chain), then shared.
pub async fn sdk_config(region: &str, aws: Option<&AwsSpec>) -> SdkConfig {
    let endpoint = aws.and_then(|a| a.endpoint_url.clone());
    let profile = aws.and_then(|a| a.profile.clone());
    let read_timeout = aws
        .and_then(|a| a.read_timeout)
        .unwrap_or(AwsSpec::DEFAULT_READ_TIMEOUT);
    let key = format!("{region}|{endpoint:?}|{profile:?}|{read_timeout:?}");
    let mut cache = configs().lock().await;
    if let Some(c) = cache.get(&key) {
        return c.clone();
    }
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(read_timeout)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(p) = &profile {
        loader = loader.profile_name(p);
    }
    if let Some(e) = &endpoint {
        loader = loader.endpoint_url(e);
    }
    let config = loader.load().await;
    cache.insert(key, config.clone());
    config
}

fn rds_clients() -> &'static Mutex<HashMap<String, aws_sdk_rds::Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, aws_sdk_rds::Client>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// The RDS client of `region`, cached.
pub async fn rds_client(region: &str, aws: Option<&AwsSpec>) -> aws_sdk_rds::Client {
    let key = format!(
        "{region}|{:?}|{:?}",
        aws.and_then(|a| a.endpoint_url.as_ref()),
        aws.and_then(|a| a.profile.as_ref())
    );
    if let Some(c) = rds_clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return c.clone();
    }
    let client = aws_sdk_rds::Client::new(&sdk_config(region, aws).await);
    rds_clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, client.clone());
    client
}

/// A failed AWS call: which operation, the service's error code
/// (AccessDenied, DBSnapshotNotFound, SnapshotQuotaExceeded, ...) and its
/// message. The SDK has already retried what was worth retrying.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} failed: {code}: {message}")]
pub struct AwsError {
    /// The API operation, as AWS names it (`CreateDBSnapshot`).
    pub op: &'static str,
    /// The service's error code, `Transport` when no response came back
    /// (connection refused, timeout), `HTTP <status>` when the answer had
    /// no body to carry one (a HEAD), `Unknown` when it had neither.
    pub code: String,
    /// The service's message, or the whole transport error chain.
    pub message: String,
}

impl AwsError {
    /// Names the failure of `op` from the SDK's error (after the SDK's own
    /// retries).
    pub fn new<E>(op: &'static str, e: aws_sdk_rds::error::SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match e.as_service_error() {
            Some(s) => AwsError {
                op,
                code: match (s.code(), e.raw_response()) {
                    (Some(code), _) => code.to_string(),
                    (None, Some(r)) => format!("HTTP {}", r.status().as_u16()),
                    (None, None) => "Unknown".to_string(),
                },
                message: s.message().unwrap_or("").to_string(),
            },
            None => AwsError {
                op,
                code: "Transport".into(),
                // The whole chain (e.g. "connection refused"), not just
                // "dispatch failure".
                message: aws_sdk_rds::error::DisplayErrorContext(&e).to_string(),
            },
        }
    }

    /// Whether the error says the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code.ends_with("NotFound")
            || self.code.ends_with("NotFoundFault")
            || self.code == "NoSuchKey"
            || self.code == "NoSuchBucket"
    }

    /// Whether the failure is one that passes by itself: no answer came
    /// back, the service was busy or throttled us, or it failed inside.
    /// (The SDK's own retries are spent by the time we see it.)
    pub fn is_transient(&self) -> bool {
        self.code == "Transport"
            || self.code.starts_with("HTTP 5")
            || matches!(
                self.code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
                    | "SlowDown"
                    | "ServiceUnavailable"
                    | "InternalFailure"
                    | "InternalError"
                    | "RequestTimeout"
            )
    }

    /// Whether the error says the thing to create exists already (a retry
    /// after a crash, or a name someone else uses).
    pub fn is_already_exists(&self) -> bool {
        self.code.ends_with("AlreadyExists") || self.code.ends_with("AlreadyExistsFault")
    }
}

/// How long to wait between polls: `first`, doubling up to `cap`, each
/// wait drawn in its upper half (jitter, so many runs waiting on the same
/// service do not poll in step).
pub fn poll_delays(first: Duration, cap: Duration) -> impl Iterator<Item = Duration> {
    let first = first.max(Duration::from_millis(10));
    let cap = cap.max(first);
    std::iter::successors(Some(first), move |d| Some((*d * 2).min(cap))).map(|d| {
        let half = d / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    })
}

/// A wait that ran out of time: what was waited for, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gave up waiting for {what} after {}", humantime::format_duration(*.after))]
pub struct GaveUp {
    /// What was waited for, as a phrase ("snapshot X in R to be
    /// available").
    pub what: String,
    /// How long was waited, whole seconds.
    pub after: Duration,
}

/// Polls `check` until it returns `Some`, an error, or `budget` has passed
/// (then the error says what was being waited for, and for how long).
pub async fn wait_until<T, E, F, Fut>(
    what: &str,
    aws: Option<&AwsSpec>,
    budget: Duration,
    mut check: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: From<GaveUp>,
{
    let first = aws
        .and_then(|a| a.poll_interval)
        .unwrap_or(AwsSpec::DEFAULT_POLL_INTERVAL);
    let start = tokio::time::Instant::now();
    let mut delays = poll_delays(first, AwsSpec::MAX_POLL_INTERVAL);
    loop {
        if let Some(done) = check().await? {
            return Ok(done);
        }
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return Err(GaveUp {
                what: what.to_string(),
                after: Duration::from_secs(elapsed.as_secs()),
            }
            .into());
        }
        let delay = delays.next().unwrap_or(AwsSpec::MAX_POLL_INTERVAL);
        tokio::time::sleep(delay.min(budget - elapsed)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_delays_grow_to_the_cap_with_jitter() {
        let d: Vec<Duration> = poll_delays(Duration::from_secs(1), Duration::from_secs(8))
            .take(6)
            .collect();
        let bounds = [1, 2, 4, 8, 8, 8];
        for (got, full) in d.iter().zip(bounds) {
            let full = Duration::from_secs(full);
            assert!(
                *got >= full / 2 && *got <= full,
                "{got:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    #[tokio::test]
    async fn wait_until_gives_up_after_its_budget() {
        let aws = AwsSpec {
            poll_interval: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        let mut polls = 0;
        let r: Result<(), GaveUp> =
            wait_until("the moon", Some(&aws), Duration::from_millis(100), || {
                polls += 1;
                async { Ok(None) }
            })
            .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("gave up waiting for the moon after 0s"), "{e}");
        assert!(polls >= 3, "polled {polls} times");
    }

    #[tokio::test]
    async fn wait_until_returns_what_the_check_found() {
        let mut polls = 0;
        let aws = AwsSpec {
            poll_interval: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        let r: Result<i32, GaveUp> = wait_until("x", Some(&aws), Duration::from_secs(10), || {
            polls += 1;
            let n = polls;
            async move { Ok((n == 3).then_some(n)) }
        })
        .await;
        assert_eq!(r, Ok(3));
    }
}
