//! DR plans: the validated model the rest of Lifeboat acts on.
//!
//! A plan file ([`load`]) is parsed into raw serde structs that keep every
//! value's position ([`raw`]), then checked section by section and turned
//! into a [`Plan`] ([`validate`]); each resource kind's keys are declared
//! once, in [`kinds`]. Invalid values cannot reach the rest of the program,
//! and every problem is reported as `FILE:LINE:COL: message`.

mod diagnostic;
mod kinds;
mod load;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{load_dir, load_file, parse_plan, LoadedPlans, PlanFileError};

use crate::schedule::Timing;

/// A validated DR plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub owner: String,
    pub rto: Duration,
    pub rpo: Duration,
    pub backup: BackupSpec,
    pub retention: Retention,
    pub regions: BTreeMap<String, Region>,
    pub resources: Vec<Resource>,
    pub drill: DrillSpec,
    pub aws: Option<AwsSpec>,
    /// Webhooks told about failures and RPO breaches (`[[notify]]`).
    pub notify: Vec<Webhook>,
    /// The file the plan was read from.
    pub source: PathBuf,
}

#[derive(Debug, Clone)]
pub struct BackupSpec {
    pub timing: Timing,
    pub start_window: Duration,
    pub completion_window: Duration,
    pub primary_region: String,
    pub copy_to: Vec<String>,
}

/// How many points to keep in a region. `None` everywhere keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub max_age: Option<Duration>,
}

impl Retention {
    /// True when no rule is set: nothing is ever pruned.
    pub fn keeps_everything(&self) -> bool {
        *self == Retention::default()
    }
}

#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    /// `file://…` or `s3://…`; `None` for a region that only holds RDS snapshots.
    pub vault: Option<String>,
    pub kms_key: Option<String>,
    pub retention: Retention,
    /// S3 Object Lock on every object Lifeboat writes into the region's
    /// (`s3://`) vault.
    pub object_lock: Option<ObjectLock>,
}

/// S3 Object Lock retention put on vault objects as they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub mode: LockMode,
    /// How long each object stays locked from the moment it is written.
    pub retain: Duration,
}

/// S3 Object Lock's two retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` can still delete a locked
    /// version or shorten its lock; nobody else can.
    Governance,
    /// Nobody can delete a locked version or shorten its lock before it
    /// expires, not even the account's root user.
    Compliance,
}

impl LockMode {
    /// As written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }

    pub fn parse(text: &str) -> Option<LockMode> {
        match text {
            "governance" => Some(LockMode::Governance),
            "compliance" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

impl ObjectLock {
    /// Until when an object written at `at` is locked: `at + retain`,
    /// rounded up to the second (S3 keeps whole seconds), so the date a
    /// write asks for and the one S3 reports compare equal.
    pub fn until(&self, at: crate::time::Millis) -> crate::time::Millis {
        let retain = i64::try_from(self.retain.as_millis()).unwrap_or(i64::MAX);
        let until = at.saturating_add(retain);
        until
            .saturating_add(999)
            .div_euclid(1000)
            .saturating_mul(1000)
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub spec: ResourceSpec,
}

/// What a resource is; one variant per kind of DESIGN.md.
#[derive(Debug, Clone)]
pub enum ResourceSpec {
    Path {
        path: PathBuf,
        exclude: Vec<String>,
    },
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        url: String,
        drill_url: Option<String>,
    },
    S3 {
        bucket: String,
        prefix: String,
    },
    RdsInstance {
        instance: String,
        restore: RdsRestore,
    },
    RdsCluster {
        cluster: String,
        restore: RdsRestore,
    },
}

/// Optional settings of the instance (or cluster) a drill restores into;
/// unset ones take RDS's defaults (for an instance, the snapshot's class).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdsRestore {
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
}

impl ResourceSpec {
    /// The `kind` key as written in plans.
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceSpec::Path { .. } => "path",
            ResourceSpec::Sqlite { .. } => "sqlite",
            ResourceSpec::Postgres { .. } => "postgres",
            ResourceSpec::S3 { .. } => "s3",
            ResourceSpec::RdsInstance { .. } => "rds-instance",
            ResourceSpec::RdsCluster { .. } => "rds-cluster",
        }
    }

    /// Whether points of this kind are artifacts in a vault (as opposed to
    /// snapshots held by RDS itself).
    pub fn uses_vault(&self) -> bool {
        !matches!(
            self,
            ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. }
        )
    }

    /// Whether SQL checks can run against a restore of this kind (for
    /// RDS, when the engine is PostgreSQL: known at drill time).
    pub fn supports_sql(&self) -> bool {
        !matches!(self, ResourceSpec::Path { .. } | ResourceSpec::S3 { .. })
    }
}

/// Which point a drill restores, per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointChoice {
    Latest,
    Oldest,
    Random,
}

impl PointChoice {
    pub fn parse(text: &str) -> Option<PointChoice> {
        match text {
            "latest" => Some(PointChoice::Latest),
            "oldest" => Some(PointChoice::Oldest),
            "random" => Some(PointChoice::Random),
            _ => None,
        }
    }
}

/// When a drill removes what it restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    Always,
    OnSuccess,
    Never,
}

#[derive(Debug, Clone)]
pub struct DrillSpec {
    /// `None`: drills only run when triggered by hand.
    pub timing: Option<Timing>,
    pub region: String,
    pub isolate_primary: bool,
    pub cleanup: Cleanup,
    pub point: PointChoice,
    pub checks: Vec<SqlCheck>,
}

/// A SQL check run against a restored database.
#[derive(Debug, Clone)]
pub struct SqlCheck {
    pub name: String,
    pub resource: String,
    pub sql: String,
    /// Compare the first column of the first row with this value (as text)
    /// instead of testing it for truth.
    pub expect: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct AwsSpec {
    pub endpoint_url: Option<String>,
    pub force_path_style: Option<bool>,
    pub profile: Option<String>,
    /// First wait between two polls of a long AWS operation (snapshot
    /// available, copy done, instance available); it doubles up to
    /// [`AwsSpec::MAX_POLL_INTERVAL`], with jitter.
    pub poll_interval: Option<Duration>,
}

impl AwsSpec {
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
    pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
}

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyEvent {
    /// A backup run failed or was partial (or its job could not run it).
    BackupFailed,
    /// A drill failed: a restore or a check failed.
    DrillFailed,
    /// A region's RPO exposure went over the objective.
    RpoBreach,
    /// A region's RPO exposure came back within the objective.
    RpoRecovered,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::BackupFailed,
        NotifyEvent::DrillFailed,
        NotifyEvent::RpoBreach,
        NotifyEvent::RpoRecovered,
    ];

    /// The name written in plans and sent in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::BackupFailed => "backup-failed",
            NotifyEvent::DrillFailed => "drill-failed",
            NotifyEvent::RpoBreach => "rpo-breach",
            NotifyEvent::RpoRecovered => "rpo-recovered",
        }
    }

    pub fn parse(text: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// A webhook URL. Such URLs usually carry a token, so it never prints
/// whole: `Debug` and [`SecretUrl::host`] show the scheme and host only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(reqwest::Url);

/// Why a webhook URL is refused. Messages never repeat the URL, and read
/// after the name of what was given: "the notification URL {error}".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretUrlError {
    /// Not a URL at all (the parser's reason says why, not the URL).
    #[error("not a URL ({0})")]
    NotAUrl(<reqwest::Url as std::str::FromStr>::Err),
    /// A URL of another scheme.
    #[error("must be an http:// or https:// URL")]
    NotHttp,
    /// `http://` with nothing to send to.
    #[error("names no host")]
    NoHost,
}

impl SecretUrl {
    /// An `http://` or `https://` URL.
    pub fn parse(text: &str) -> Result<SecretUrl, SecretUrlError> {
        let url = reqwest::Url::parse(text.trim()).map_err(SecretUrlError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SecretUrlError::NotHttp);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SecretUrlError::NoHost);
        }
        Ok(SecretUrl(url))
    }

    /// The whole URL, token included: only for sending requests.
    pub fn expose(&self) -> &reqwest::Url {
        &self.0
    }

    /// What is safe to log: `https://hooks.slack.com`.
    pub fn host(&self) -> String {
        let host = self.0.host_str().unwrap_or("?");
        match self.0.port() {
            Some(port) => format!("{}://{host}:{port}", self.0.scheme()),
            None => format!("{}://{host}", self.0.scheme()),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({}/…)", self.host())
    }
}

/// Where a webhook's URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookTarget {
    /// Written in the plan (`url`).
    Url(SecretUrl),
    /// Read from this environment variable when sending (`url_env`), so the
    /// token stays out of plan files.
    Env(String),
}

/// One `[[notify]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub target: WebhookTarget,
    /// The events it is told about (every one unless `events` narrows it).
    pub events: Vec<NotifyEvent>,
}

impl Webhook {
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }
}

impl Plan {
    /// The region a resource's retention applies in, with the region's override.
    pub fn retention_for(&self, region: &str) -> &Retention {
        match self.regions.get(region) {
            Some(r) if !r.retention.keeps_everything() => &r.retention,
            _ => &self.retention,
        }
    }

    /// Until when a point written into `region` now is locked, when that
    /// region's vault has an object lock.
    pub fn lock_until(
        &self,
        region: &str,
        now: crate::time::Millis,
    ) -> Option<crate::time::Millis> {
        let lock = self.regions.get(region)?.object_lock?;
        Some(lock.until(now))
    }

    /// Every region that holds points: the primary, then the copies in order.
    pub fn point_regions(&self) -> Vec<&str> {
        std::iter::once(self.backup.primary_region.as_str())
            .chain(self.backup.copy_to.iter().map(String::as_str))
            .collect()
    }

    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_ends_retain_after_the_write_rounded_up_to_the_second() {
        let lock = ObjectLock {
            mode: LockMode::Governance,
            retain: Duration::from_secs(30),
        };
        assert_eq!(lock.until(1_000), 31_000);
        assert_eq!(lock.until(1_001), 32_000);
        assert_eq!(lock.until(1_999), 32_000);
        let forever = ObjectLock {
            mode: LockMode::Compliance,
            retain: Duration::MAX,
        };
        assert!(forever.until(1_000) > 1_000, "saturates, never wraps");
    }
}
