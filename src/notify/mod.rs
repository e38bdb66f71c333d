//! Notifications: webhooks told when a backup fails, a drill fails, a
//! scheduled verify finds damage, or a region's RPO exposure goes over its
//! objective and back.
//!
//! [`Notifier::notify`] never waits: it picks the plan's webhooks that want
//! the event (plus the global `--notify-url`) and hands each delivery to a
//! background task. Each delivery has a timeout per attempt and is retried
//! on transient faults (connection errors, timeouts, 408, 429, 5xx) with
//! capped exponential backoff and full jitter; a permanent refusal (other
//! 4xx) is not retried. A failing or slow webhook is logged and never
//! delays or fails a backup or a drill. Webhook URLs usually carry a
//! token, so only their scheme and host are ever logged.

mod message;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use message::Notification;

use crate::plan::{Plan, SecretUrl, WebhookTarget};

/// Timeouts and retries of deliveries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries per delivery, the first included; 0 sends nothing.
    pub attempts: u32,
    /// Per attempt: connect, send, response.
    pub timeout: Duration,
    /// Backoff before retry n (from 0) is random in [0, min(cap, base · 2^n)].
    pub base: Duration,
    /// The longest wait between tries, also for a server's `Retry-After`.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            timeout: Duration::from_secs(10),
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: `random(0, min(cap, base · 2^attempt))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap);
        Duration::from_millis(rand::random_range(0..=ceiling.as_millis() as u64))
    }
}

/// Deliveries waiting or running at once; beyond that, new ones are
/// dropped (and logged) rather than piling up behind a dead webhook.
const MAX_PENDING: usize = 1000;
/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// Sends notifications in the background. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    global: Option<SecretUrl>,
    policy: RetryPolicy,
    tracker: TaskTracker,
    in_flight: Semaphore,
    pending: AtomicUsize,
}

/// The webhook HTTP client could not be built (its TLS backend or the
/// system configuration); the text names no URL.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct NotifierError(String);

impl Notifier {
    /// `global` gets every event of every plan, besides the plans' own
    /// `[[notify]]` webhooks.
    pub fn new(global: Option<SecretUrl>, policy: RetryPolicy) -> Result<Notifier, NotifierError> {
        crate::tls::install_default_provider();
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("lifeboat/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifierError(e.without_url().to_string()))?;
        Ok(Notifier {
            inner: Arc::new(Inner {
                client,
                global,
                policy,
                tracker: TaskTracker::new(),
                in_flight: Semaphore::new(MAX_IN_FLIGHT),
                pending: AtomicUsize::new(0),
            }),
        })
    }

    /// Whether anything would be told about this plan's events.
    pub fn has_targets(&self, plan: &Plan) -> bool {
        self.inner.global.is_some() || !plan.notify.is_empty()
    }

    /// Queues `n` for every webhook that wants it; returns at once. Must
    /// be called inside a tokio runtime.
    pub fn notify(&self, plan: &Plan, n: &Notification) {
        let mut urls: Vec<SecretUrl> = self.inner.global.iter().cloned().collect();
        for hook in plan.notify.iter().filter(|h| h.wants(n.event)) {
            match &hook.target {
                WebhookTarget::Url(u) => urls.push(u.clone()),
                WebhookTarget::Env(name) => match std::env::var(name) {
                    Ok(text) => match SecretUrl::parse(&text) {
                        Ok(u) => urls.push(u),
                        Err(e) => {
                            warn!(plan = %plan.name, env = %name, "webhook URL variable {e}; not notified")
                        }
                    },
                    Err(_) => {
                        warn!(plan = %plan.name, env = %name, "webhook URL variable is not set; not notified")
                    }
                },
            }
        }
        urls.dedup();
        if urls.is_empty() {
            return;
        }
        let body = match serde_json::to_vec(n) {
            Ok(b) => bytes::Bytes::from(b),
            Err(e) => {
                warn!(error = %e, "cannot encode a notification");
                return;
            }
        };
        for url in urls {
            if self.inner.pending.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING {
                self.inner.pending.fetch_sub(1, Ordering::SeqCst);
                warn!(webhook = %url.host(), plan = %n.plan, event = n.event.as_str(), "too many notifications waiting; this one is dropped");
                continue;
            }
            let inner = self.inner.clone();
            let body = body.clone();
            let (plan, event) = (n.plan.clone(), n.event.as_str());
            self.inner.tracker.spawn(async move {
                deliver(&inner, &url, body, &plan, event).await;
                inner.pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// Waits up to `within` for queued deliveries to finish (at shutdown,
    /// or at the end of a command); what is still retrying then is dropped.
    /// Returns whether everything finished.
    pub async fn drain(&self, within: Duration) -> bool {
        self.inner.tracker.close();
        let done = tokio::time::timeout(within, self.inner.tracker.wait())
            .await
            .is_ok();
        if !done {
            warn!(
                pending = self.inner.pending.load(Ordering::SeqCst),
                "webhook deliveries still retrying were abandoned"
            );
        }
        done
    }
}

/// Whether a refusal is worth retrying.
fn transient(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds, if the server sent one.
fn retry_after(r: &reqwest::Response) -> Option<Duration> {
    r.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

async fn deliver(inner: &Inner, url: &SecretUrl, body: bytes::Bytes, plan: &str, event: &str) {
    let policy = inner.policy;
    let host = url.host();
    for attempt in 0..policy.attempts {
        let sent = {
            // A permit bounds the connections held open by slow webhooks;
            // the closed semaphore cannot happen (it is never closed).
            let _permit = inner.in_flight.acquire().await;
            inner
                .client
                .post(url.expose().clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
        };
        let mut wait = policy.backoff(attempt);
        match sent {
            Ok(r) if r.status().is_success() => {
                info!(webhook = %host, plan, event, attempt, "notification delivered");
                return;
            }
            Ok(r) if !transient(r.status()) => {
                warn!(webhook = %host, plan, event, status = %r.status(), "webhook refused the notification; not retried (check its URL)");
                return;
            }
            Ok(r) => {
                if let Some(after) = retry_after(&r) {
                    wait = after.min(policy.cap);
                }
                warn!(webhook = %host, plan, event, status = %r.status(), attempt, "webhook failed; will retry");
            }
            Err(e) => {
                // `without_url`: the error's text would otherwise hold the token.
                warn!(webhook = %host, plan, event, error = %e.without_url(), attempt, "webhook unreachable; will retry");
            }
        }
        if attempt + 1 < policy.attempts {
            tokio::time::sleep(wait).await;
        }
    }
    warn!(webhook = %host, plan, event, attempts = policy.attempts, "notification abandoned after every retry");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_exponential_with_full_jitter() {
        let p = RetryPolicy {
            attempts: 6,
            timeout: Duration::from_secs(1),
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        for attempt in 0..40 {
            let ceiling = (100u64 << attempt.min(20)).min(1000);
            let samples: Vec<u64> = (0..200)
                .map(|_| p.backoff(attempt).as_millis() as u64)
                .collect();
            assert!(samples.iter().all(|s| *s <= ceiling), "attempt {attempt}");
            // Jittered: not always the ceiling, not always zero.
            assert!(
                samples.iter().any(|s| *s < ceiling / 2),
                "attempt {attempt}"
            );
            assert!(
                samples.iter().any(|s| *s > ceiling / 2),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn only_transient_refusals_are_retried() {
        use reqwest::StatusCode as S;
        for (status, retry) in [
            (S::INTERNAL_SERVER_ERROR, true),
            (S::SERVICE_UNAVAILABLE, true),
            (S::TOO_MANY_REQUESTS, true),
            (S::REQUEST_TIMEOUT, true),
            (S::NOT_FOUND, false),
            (S::FORBIDDEN, false),
            (S::BAD_REQUEST, false),
        ] {
            assert_eq!(transient(status), retry, "{status}");
        }
    }

    #[test]
    fn secret_urls_never_print_their_path_or_query() {
        let u =
            SecretUrl::parse("https://hooks.example.com/services/T0/B0/s3cr3t?token=x").unwrap();
        assert_eq!(u.host(), "https://hooks.example.com");
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("token"),
            "{debug}"
        );
        assert!(SecretUrl::parse("ftp://x/y").is_err());
        let e = SecretUrl::parse("not a url s3cr3t").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    }
}
