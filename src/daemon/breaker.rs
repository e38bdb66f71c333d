//! Circuit breakers, one per service and region: after `threshold`
//! consecutive failures a breaker opens and the slots it stops are recorded
//! as missed (not hammering a failing endpoint); after a jittered cool-down
//! one probe is let through (half-open); success closes it, failure opens it
//! again with a doubled cool-down (capped).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::time::Millis;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go ahead; consecutive failures are counted.
    Closed,
    /// Calls are refused until `until`; the first call after it becomes
    /// the half-open probe.
    Open {
        /// When the cool-down ends (ms since the epoch, UTC).
        until: Millis,
    },
    /// One probe has been let through and every other call is refused
    /// until its outcome is recorded: success closes the breaker, failure
    /// opens it again with a doubled cool-down.
    HalfOpen,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: State,
    failures: u32,
    cooldown: Duration,
}

/// Why a breaker stops a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The breaker is open and its cool-down has not ended.
    #[error("circuit open for {key} after {failures} consecutive failures; next probe at {}", crate::time::rfc3339(*.until))]
    Open {
        /// The breaker's key (the daemon's: `vault REGION URL`).
        key: String,
        /// Consecutive failures recorded so far.
        failures: u32,
        /// When the next probe may go (ms since the epoch, UTC).
        until: Millis,
    },
    /// The breaker is half-open and its one probe has not reported yet.
    #[error("circuit half-open for {key}: a probe is in progress")]
    Probing {
        /// The breaker's key (the daemon's: `vault REGION URL`).
        key: String,
    },
}

/// Every breaker of the daemon, by key (service and region).
#[derive(Debug)]
pub struct Breakers {
    map: Mutex<BTreeMap<String, Breaker>>,
    threshold: u32,
    base_cooldown: Duration,
    max_cooldown: Duration,
}

impl Breakers {
    /// Breakers that open after `threshold` consecutive failures, for
    /// `base_cooldown` at first.
    pub fn new(threshold: u32, base_cooldown: Duration) -> Breakers {
        Breakers {
            map: Mutex::new(BTreeMap::new()),
            threshold: threshold.max(1),
            base_cooldown,
            max_cooldown: base_cooldown
                .max(Duration::from_secs(3600))
                .min(base_cooldown * 64),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Breaker>> {
        // A poisoned lock only means a panic while holding it; the map is
        // still consistent (every update is a single assignment).
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok` when a call may go ahead (closed, or the half-open probe);
    /// `Err` when the breaker stops it.
    pub fn allow(&self, key: &str, now: Millis) -> Result<(), Refusal> {
        let mut map = self.lock();
        let Some(b) = map.get_mut(key) else {
            return Ok(());
        };
        match b.state {
            State::Closed => Ok(()),
            State::Open { until } if now < until => Err(Refusal::Open {
                key: key.to_string(),
                failures: b.failures,
                until,
            }),
            State::Open { .. } => {
                b.state = State::HalfOpen;
                Ok(())
            }
            State::HalfOpen => Err(Refusal::Probing {
                key: key.to_string(),
            }),
        }
    }

    /// Records how a call went.
    pub fn record(&self, key: &str, success: bool, now: Millis) {
        let mut map = self.lock();
        let b = map.entry(key.to_string()).or_insert(Breaker {
            state: State::Closed,
            failures: 0,
            cooldown: self.base_cooldown,
        });
        if success {
            b.state = State::Closed;
            b.failures = 0;
            b.cooldown = self.base_cooldown;
            return;
        }
        b.failures += 1;
        if b.state == State::HalfOpen || b.failures >= self.threshold {
            // Equal jitter: half the cool-down fixed, half random, so the
            // breakers of many plans do not probe in lockstep.
            let cool = b.cooldown.as_millis() as i64;
            let jittered = cool / 2 + (rand::random::<u64>() % (cool as u64 / 2 + 1)) as i64;
            b.state = State::Open {
                until: now + jittered,
            };
            b.cooldown = (b.cooldown * 2).min(self.max_cooldown);
        }
    }

    /// Every breaker with its state, for metrics.
    pub fn snapshot(&self) -> Vec<(String, State, u32)> {
        self.lock()
            .iter()
            .map(|(k, b)| (k.clone(), b.state, b.failures))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_after_cooldown_and_closes_on_success() {
        let b = Breakers::new(3, Duration::from_secs(10));
        let k = "vault:primary";
        assert!(b.allow(k, 0).is_ok());
        b.record(k, false, 0);
        b.record(k, false, 1);
        assert!(b.allow(k, 2).is_ok(), "still closed after 2 failures");
        b.record(k, false, 2);
        let err = b.allow(k, 3).unwrap_err();
        assert!(matches!(err, Refusal::Open { failures: 3, .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(
                "circuit open for vault:primary after 3 consecutive failures; next probe at "
            ),
            "{err}"
        );
        // Cool-down is between 5 and 10 seconds (equal jitter).
        assert!(b.allow(k, 2 + 4_999).is_err());
        assert!(b.allow(k, 2 + 10_001).is_ok(), "half-open probe");
        assert_eq!(
            b.allow(k, 2 + 10_002),
            Err(Refusal::Probing { key: k.into() }),
            "one probe at a time"
        );
        b.record(k, false, 2 + 10_003);
        // Re-opened with a doubled cool-down (10..20 s).
        assert!(b.allow(k, 2 + 10_003 + 9_999).is_err());
        assert!(b.allow(k, 2 + 10_003 + 20_001).is_ok());
        b.record(k, true, 40_000);
        assert!(b.allow(k, 40_001).is_ok());
        assert_eq!(b.snapshot()[0].1, State::Closed);
    }
}
