//! The dead man's switch: an optional URL pinged after each successful job,
//! so a daemon that died (or stopped succeeding) is noticed from outside.
//! Pings run in the background with a timeout and a few jittered retries;
//! a failing ping is logged and never delays or fails a backup. The URL
//! often carries a token, so only its host is ever logged.

use std::time::Duration;

use tracing::warn;

/// Why a heartbeat URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// Not a URL (the parser's reason).
    #[error("invalid heartbeat URL: {0}")]
    Url(String),
    /// The URL's scheme is neither `http` nor `https`.
    #[error("the heartbeat URL must be http:// or https://")]
    Scheme,
    /// The HTTP client could not be built (reqwest's reason).
    #[error("cannot build the heartbeat client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Pings one URL.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    client: reqwest::Client,
    url: reqwest::Url,
}

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_millis(500);

impl Heartbeat {
    /// Checks the URL and builds the client.
    pub fn new(url: &str) -> Result<Heartbeat, HeartbeatError> {
        let url = reqwest::Url::parse(url).map_err(|e| HeartbeatError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HeartbeatError::Scheme);
        }
        crate::tls::install_default_provider();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(HeartbeatError::Client)?;
        Ok(Heartbeat { client, url })
    }

    /// Where pings go, safe to log (no path, no query: they may hold a token).
    pub fn host(&self) -> String {
        format!(
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("?")
        )
    }

    /// Pings in the background.
    pub fn ping(&self) {
        let this = self.clone();
        tokio::spawn(async move { this.ping_now().await });
    }

    async fn ping_now(&self) -> bool {
        for attempt in 0..ATTEMPTS {
            match self.client.get(self.url.clone()).send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => {
                    warn!(host = %self.host(), status = %r.status(), attempt, "heartbeat ping refused")
                }
                Err(e) => {
                    warn!(host = %self.host(), error = %e.without_url(), attempt, "heartbeat ping failed")
                }
            }
            // Full jitter: sleep a random time up to base * 2^attempt.
            let cap = BACKOFF_BASE.as_millis() as u64 * (1 << attempt);
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % (cap + 1))).await;
        }
        false
    }
}
