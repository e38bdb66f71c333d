//! Instants as the catalog stores them (milliseconds since the Unix epoch,
//! UTC) and their RFC 3339 rendering for humans and JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch, UTC: the catalog's unit of time.
pub type Millis = i64;

/// The current instant in catalog units.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// A system time (a file's mtime) in catalog units.
pub fn from_system_time(t: std::time::SystemTime) -> Millis {
    DateTime::<Utc>::from(t).timestamp_millis()
}

/// Where the daemon reads the wall time, and how it turns a wall instant
/// into a tokio deadline to sleep until.
///
/// The daemon runs on the system clock. Its tests run on a clock that
/// follows tokio's: under `tokio::time::pause()` wall time stands still
/// until the test advances it, and every tokio timer (the scheduler's
/// sleeps, a job's timeouts) agrees with it. `Utc::now()` alone would not:
/// it keeps moving while tokio's clock is paused.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// Wall time `wall` at tokio instant `at`, moving with tokio's clock.
    #[cfg(test)]
    Tokio {
        /// The wall time the clock read when it was made.
        wall: DateTime<Utc>,
        /// The tokio instant it was made at; the clock reads `wall` plus
        /// the tokio time elapsed since.
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `wall` now and then moves with tokio's clock.
    #[cfg(test)]
    pub fn tokio_at(wall: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            wall,
            at: tokio::time::Instant::now(),
        }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            #[cfg(test)]
            Clock::Tokio { wall, at } => {
                *wall + chrono::Duration::from_std(at.elapsed()).unwrap_or_default()
            }
        }
    }

    /// The current instant in catalog units.
    pub fn now_ms(&self) -> Millis {
        self.now().timestamp_millis()
    }

    /// The tokio instant at which this clock reads `t` (now when `t` has
    /// passed). With the system clock it is only as good as the wall clock
    /// is steady: callers that sleep long re-check (see the scheduler).
    pub fn deadline(&self, t: DateTime<Utc>) -> tokio::time::Instant {
        let wait = (t - self.now()).to_std().unwrap_or_default();
        tokio::time::Instant::now() + wait
    }
}

/// Converts catalog millis to a `DateTime<Utc>`.
pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    // Out-of-range values cannot come from the catalog (it only stores values
    // produced by `timestamp_millis`); fall back to the epoch rather than panic.
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 3339, UTC, millisecond precision: `2026-11-25T14:03:17.123Z`.
pub fn rfc3339(ms: Millis) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration as people read it (`1h 5m 3s`), rounded to the second, or to
/// the millisecond below one second.
pub fn human_duration_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return "n/a".into();
    }
    let negative = secs < 0.0;
    let abs = secs.abs();
    let text = if abs < 1.0 {
        format!("{}ms", (abs * 1000.0).round() as u64)
    } else {
        let d = std::time::Duration::from_secs(abs.round() as u64);
        humantime::format_duration(d).to_string()
    };
    if negative {
        format!("-{text}")
    } else {
        text
    }
}

/// Text that is not an RFC 3339 instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z): {reason}")]
pub struct BadTime {
    /// The text as given.
    pub text: String,
    /// Why chrono rejected it.
    pub reason: String,
}

/// Parses an RFC 3339 instant given on the command line.
pub fn parse_rfc3339(text: &str) -> Result<Millis, BadTime> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|e| BadTime {
            text: text.to_string(),
            reason: e.to_string(),
        })
}

pub mod serde_ms {
    //! Serialises catalog millis as RFC 3339 strings in JSON output.
    use super::{rfc3339, Millis};
    use serde::Serializer;

    /// `#[serde(with = "crate::time::serde_ms")]` on a `Millis` field:
    /// written as [`rfc3339`] text.
    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    /// The same for an `Option<Millis>` field: `None` is written as null.
    pub mod option {
        use super::super::{rfc3339, Millis};
        use serde::Serializer;

        /// `#[serde(with = "crate::time::serde_ms::option")]`: RFC 3339
        /// text, or null.
        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&rfc3339(*ms)),
                None => s.serialize_none(),
            }
        }
    }
}
