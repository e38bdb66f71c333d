//! DR plans: the validated model the rest of Lifeboat acts on.
//!
//! A plan file (`load`) is parsed into raw serde structs that keep every
//! value's position (`raw`), then checked section by section and turned
//! into a [`Plan`] (`validate`); each resource kind's keys are declared
//! once, in `kinds`. Invalid values cannot reach the rest of the program,
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

/// Whether `s` can be a placement label (`[placement] labels`, `daemon
/// --labels`): 1 to 63 of `a-z`, `0-9`, `-`, `_`, `.`. No comma: the
/// catalog keeps a daemon's labels comma-separated.
pub fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

use crate::schedule::Timing;

/// A validated DR plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Unique among the loaded plans; 1 to 63 of `a-z`, `0-9`, `-`. Names
    /// catalog rows, lock files, vault keys and AWS identifiers.
    pub name: String,
    /// Who answers for the plan (shown in reports); never empty.
    pub owner: String,
    /// Recovery time objective: a drill meets it when its RTO is at most
    /// this.
    pub rto: Duration,
    /// Recovery point objective: the most data loss (drill RPO, RPO
    /// exposure) the plan accepts.
    pub rpo: Duration,
    /// `[backup]`: when backups run and where their points go.
    pub backup: BackupSpec,
    /// `[retention]`: the rules of every region without its own.
    pub retention: Retention,
    /// Every `[regions.NAME]` table, by name.
    pub regions: BTreeMap<String, Region>,
    /// `[[resources]]`, in file order; at least one, names unique.
    pub resources: Vec<Resource>,
    /// `[drill]`, with defaults filled in when the table is missing.
    pub drill: DrillSpec,
    /// `[verify]`: when the daemon verifies the plan's points; `None`
    /// without the table (`lifeboat verify` by hand only).
    pub verify: Option<VerifySpec>,
    /// `[aws]`, when present.
    pub aws: Option<AwsSpec>,
    /// Webhooks told about failures and RPO breaches (`[[notify]]`).
    pub notify: Vec<Webhook>,
    /// `[placement] labels`: in a fleet, only a daemon carrying every one
    /// of them may own the plan (data only one host can read). Empty:
    /// any daemon.
    pub placement: Vec<String>,
    /// The file the plan was read from.
    pub source: PathBuf,
}

/// `[backup]`, validated.
#[derive(Debug, Clone)]
pub struct BackupSpec {
    /// Cron schedule, time zone (default UTC) and jitter.
    pub timing: Timing,
    /// A run not started by its slot + this is missed (default 10m).
    pub start_window: Duration,
    /// A run still going after this is cancelled and failed (default 2h);
    /// it also bounds each wait on a long AWS operation, and the daemon's
    /// drills.
    pub completion_window: Duration,
    /// Where points are taken; has a `[regions.X]` table.
    pub primary_region: String,
    /// Where copies go, in order (one region after the other); never the
    /// primary, each once, each with a `[regions.X]` table.
    pub copy_to: Vec<String>,
    /// `before`: run before the first point is taken (quiesce an
    /// application, flush a cache). If it fails, the run fails with its
    /// output and takes no point.
    pub before: Option<Hook>,
    /// `after`: run once the points and copies are done, and always when
    /// the run started (even if `before` or the backup failed), told how
    /// the run went. If it fails, the run is `partial`.
    pub after: Option<Hook>,
}

/// A program run around a backup (`[backup] before` / `after`): without a
/// shell, from the plan file's folder, with `LIFEBOAT_PLAN`,
/// `LIFEBOAT_RUN_ID` and `LIFEBOAT_HOOK` (and for `after`,
/// `LIFEBOAT_BACKUP_STATUS`) in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// How long it may run before it is killed and fails (`hook_timeout`,
    /// default 5m).
    pub timeout: Duration,
}

/// How many points to keep in a region. `None` everywhere keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N points.
    pub keep_last: Option<u32>,
    /// Keep the newest point of each of the N most recent hours (UTC)
    /// that have one.
    pub keep_hourly: Option<u32>,
    /// The same per day (UTC).
    pub keep_daily: Option<u32>,
    /// The same per ISO week.
    pub keep_weekly: Option<u32>,
    /// The same per calendar month (UTC).
    pub keep_monthly: Option<u32>,
    /// Drop points whose `data_time` is older than this, whatever keeps
    /// them (the newest point is always kept).
    pub max_age: Option<Duration>,
}

impl Retention {
    /// True when no rule is set: nothing is ever pruned.
    pub fn keeps_everything(&self) -> bool {
        *self == Retention::default()
    }
}

/// One `[regions.NAME]` table, validated.
#[derive(Debug, Clone)]
pub struct Region {
    /// The table's name: an AWS region (`us-east-1`) or, for local vaults,
    /// any label; 1 to 63 of `a-z A-Z 0-9 - _ .`.
    pub name: String,
    /// `file://…` or `s3://…`; `None` for a region that only holds RDS snapshots.
    /// A relative `file://` path is made absolute from the plan's folder.
    /// No two regions share a vault.
    pub vault: Option<String>,
    /// KMS key of this region (`alias/…`, id or ARN): server-side
    /// encryption of the vault's objects, and the key copies of encrypted
    /// RDS snapshots into this region are made with.
    pub kms_key: Option<String>,
    /// The region's own retention rules; when it sets none, the plan's
    /// apply (see [`Plan::retention_for`]).
    pub retention: Retention,
    /// S3 Object Lock on every object Lifeboat writes into the region's
    /// (`s3://`) vault.
    pub object_lock: Option<ObjectLock>,
    /// Client-side encryption of every object Lifeboat writes into the
    /// region's vault (`encryption = { key_file | key_env }`): where the
    /// region's age key is read from, when the vault is opened.
    pub encryption: Option<KeySource>,
}

/// Where a region's encryption key comes from, as the plan says. The key
/// itself is read only when the region's vault is opened, never by
/// validation, and never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `key_file`: an age identity file (`age-keygen` format, as
    /// `lifeboat key generate` writes it); relative to the plan's folder.
    File(PathBuf),
    /// `key_env`: an environment variable holding the identity (its
    /// `AGE-SECRET-KEY-1…` line, or a whole identity file).
    Env(String),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Env(name) => write!(f, "${name}"),
        }
    }
}

/// S3 Object Lock retention put on vault objects as they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// Governance or compliance: always stated in the plan, never assumed.
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

    /// The mode spelt `text` (`governance`, `compliance`), if any.
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

/// One `[[resources]]` entry, validated.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Unique in the plan; 1 to 63 of `a-z 0-9 - _`, and no two differ
    /// only by `-` and `_` (drill scratch names spell them alike).
    pub name: String,
    /// The kind and its keys.
    pub spec: ResourceSpec,
}

/// What a resource is; one variant per kind of DESIGN.md.
#[derive(Debug, Clone)]
pub enum ResourceSpec {
    /// `kind = "path"`: a folder or a single file.
    Path {
        /// What to archive; relative paths are resolved from the plan's
        /// folder.
        path: PathBuf,
        /// Glob patterns (already checked to compile) matched against
        /// names relative to `path`; a matching folder is skipped whole.
        exclude: Vec<String>,
    },
    /// `kind = "sqlite"`: a SQLite database file.
    Sqlite {
        /// The database file; relative paths are resolved from the plan's
        /// folder.
        path: PathBuf,
    },
    /// `kind = "postgres"`: one PostgreSQL database.
    Postgres {
        /// `postgres://` or `postgresql://` URL of the database, without a
        /// password (validation refuses one).
        url: String,
        /// The server drills restore into, when not the source's own; same
        /// form as `url`.
        drill_url: Option<String>,
        /// How pg_dump writes the dump (`dump_format`).
        dump_format: DumpFormat,
    },
    /// `kind = "s3"`: the objects of a bucket under a prefix.
    S3 {
        /// The source bucket, read in the primary region.
        bucket: String,
        /// Only keys starting with this; empty (the default) for the whole
        /// bucket.
        prefix: String,
    },
    /// `kind = "rds-instance"`: an RDS DB instance.
    RdsInstance {
        /// The DB instance identifier in the primary region.
        instance: String,
        /// Settings of the instance a drill restores.
        restore: RdsRestore,
    },
    /// `kind = "rds-cluster"`: an Aurora DB cluster.
    RdsCluster {
        /// The DB cluster identifier in the primary region.
        cluster: String,
        /// Settings of the cluster (and its one instance) a drill restores.
        restore: RdsRestore,
    },
}

/// Optional settings of the instance (or cluster) a drill restores into;
/// unset ones take RDS's defaults (for an instance, the snapshot's class).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdsRestore {
    /// `instance_class` of the restored instance; unset, an instance gets
    /// its snapshot's class and a cluster's drill instance `db.t4g.medium`.
    pub instance_class: Option<String>,
    /// `subnet_group`: the DB subnet group of the drill region to restore
    /// into.
    pub subnet_group: Option<String>,
    /// `security_groups`: VPC security group ids for the restored
    /// instance or cluster; empty for RDS's default.
    pub security_groups: Vec<String>,
}

/// How a `postgres` resource is dumped (`dump_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DumpFormat {
    /// `pg_dump --format=custom` streamed into the vault: no local disk,
    /// one core. The default: what plans had before the choice existed.
    #[default]
    Custom,
    /// `pg_dump --format=directory --jobs=2` into the work dir, each file
    /// packed into the vault as tar + zstd (a frame per file) once pg_dump
    /// closes it; restored with `pg_restore --jobs` from the files
    /// extracted on several threads. Needs room for the files being
    /// written in the work dir (backups) and for the whole dump
    /// uncompressed in the scratch folder (drills, restores).
    Directory,
}

impl DumpFormat {
    /// The plan's words, the default first.
    pub const NAMES: &'static [&'static str] = &["custom", "directory"];

    /// The format a validated word names.
    pub fn named(word: &str) -> DumpFormat {
        match word {
            "directory" => DumpFormat::Directory,
            _ => DumpFormat::Custom,
        }
    }

    /// Its word in plans and manifests.
    pub fn name(self) -> &'static str {
        match self {
            DumpFormat::Directory => "directory",
            DumpFormat::Custom => "custom",
        }
    }
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
    /// The newest complete point (the default; what DESIGN.md's drill RPO
    /// assumes).
    Latest,
    /// The oldest complete point: proves the far end of retention
    /// restores.
    Oldest,
    /// Any complete point, drawn at random.
    Random,
}

impl PointChoice {
    /// The choice spelt `text` (`latest`, `oldest`, `random`), if any.
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
    /// Whatever the outcome (the default).
    Always,
    /// Only when the drill passed: a failed one is kept to look at.
    OnSuccess,
    /// Never: scratch databases, instances and folders stay until removed
    /// by hand.
    Never,
}

/// `[drill]`, validated (or its defaults, when the plan has no such table).
#[derive(Debug, Clone)]
pub struct DrillSpec {
    /// `None`: drills only run when triggered by hand.
    pub timing: Option<Timing>,
    /// The region drills restore from: `region`, else the first `copy_to`
    /// region, else the primary. It holds points.
    pub region: String,
    /// Drills may not restore from the primary region (validated; checked
    /// again for a `--region` given on the command line).
    pub isolate_primary: bool,
    /// When a drill removes what it restored.
    pub cleanup: Cleanup,
    /// Which point a drill restores per resource (default latest).
    pub point: PointChoice,
    /// `[[drill.checks]]`, in file order; names unique.
    pub checks: Vec<DrillCheck>,
}

/// `[verify]`, validated: the daemon runs `lifeboat verify` on the plan
/// (every region, the primary included) on this schedule.
#[derive(Debug, Clone)]
pub struct VerifySpec {
    /// Cron schedule, time zone (default the backup's) and jitter.
    pub timing: Timing,
    /// How much of the data each run reads.
    pub depth: VerifyDepth,
}

/// How deep the daemon's verify runs check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyDepth {
    /// The data is there with the recorded size, and the manifest is the
    /// one the catalog recorded (the default: cheap).
    Presence,
    /// `read_data = true`: every byte of every point read again and hashed.
    ReadData,
    /// `read_data_subset = "1/M"`: every point's presence, and one part in
    /// `parts` read in full, the next part at each run, so `parts`
    /// consecutive runs read every point.
    ReadDataSubset {
        /// How many parts (M, at least 1).
        parts: u64,
    },
}

/// One `[[drill.checks]]`: run on the restored data by every drill and
/// every restore.
#[derive(Debug, Clone)]
pub enum DrillCheck {
    /// `sql = "…"`: a query against a restored database.
    Sql(SqlCheck),
    /// `command = [...]`: a program the application's owner wrote.
    Command(CommandCheck),
}

impl DrillCheck {
    /// The check's name in drill and restore records.
    pub fn name(&self) -> &str {
        match self {
            DrillCheck::Sql(c) => &c.name,
            DrillCheck::Command(c) => &c.name,
        }
    }

    /// The resource whose restore it checks.
    pub fn resource(&self) -> &str {
        match self {
            DrillCheck::Sql(c) => &c.resource,
            DrillCheck::Command(c) => &c.resource,
        }
    }
}

/// A program run on a restored resource, told where it is through its
/// environment (`LIFEBOAT_RESTORED_PATH`, `…_DATABASE_URL`, `…_BUCKET`,
/// `…_PREFIX`, `…_ENDPOINT`); it passes on exit 0.
#[derive(Debug, Clone)]
pub struct CommandCheck {
    /// The check's name: as given, else `RESOURCE-command-N`.
    pub name: String,
    /// The resource whose restore it checks.
    pub resource: String,
    /// The program and its arguments (not through a shell); a relative
    /// program path is from the plan file's folder, where it runs.
    pub argv: Vec<String>,
    /// How long it may run before it is killed and fails (default 5m).
    pub timeout: Duration,
}

/// A SQL check run against a restored database.
#[derive(Debug, Clone)]
pub struct SqlCheck {
    /// The check's name in drill records: as given, else
    /// `RESOURCE-sql-N` (N counts every check of the plan, from 1).
    pub name: String,
    /// The resource whose restore it queries; of a kind that supports
    /// SQL.
    pub resource: String,
    /// The query; only the first column of the first row is judged.
    pub sql: String,
    /// Compare the first column of the first row with this value (as text)
    /// instead of testing it for truth.
    pub expect: Option<String>,
    /// How long the check may run before it fails (default 5m).
    pub timeout: Duration,
}

/// `[aws]`: how Lifeboat reaches AWS or an S3/RDS-compatible server.
#[derive(Debug, Clone, Default)]
pub struct AwsSpec {
    /// Every AWS call goes to this endpoint instead of AWS's own (test
    /// servers, S3-compatible stores).
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing; unset, it is on exactly when a custom
    /// endpoint is set (here or in `AWS_ENDPOINT_URL[_S3]`).
    pub force_path_style: Option<bool>,
    /// The named profile of the shared AWS config files to take
    /// credentials from; unset, the standard chain decides.
    pub profile: Option<String>,
    /// First wait between two polls of a long AWS operation (snapshot
    /// available, copy done, instance available); it doubles up to
    /// [`AwsSpec::MAX_POLL_INTERVAL`], with jitter.
    pub poll_interval: Option<Duration>,
    /// Longest silence while waiting for an AWS answer before the attempt
    /// is cut off and retried; unset, [`AwsSpec::DEFAULT_READ_TIMEOUT`].
    /// Raised for slow S3-compatible stores, lowered by tests that stall.
    pub read_timeout: Option<Duration>,
}

impl AwsSpec {
    /// The first wait between polls when the plan sets no `poll_interval`.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
    /// The longest wait between polls, whatever `poll_interval` says.
    pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(60);
    /// The read timeout when the plan sets no `read_timeout`.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
}

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyEvent {
    /// A backup run failed or was partial (or its job could not run it).
    BackupFailed,
    /// A drill failed: a restore or a check failed.
    DrillFailed,
    /// A scheduled verify found damaged points, or could not check some.
    VerifyFailed,
    /// A region's RPO exposure went over the objective.
    RpoBreach,
    /// A region's RPO exposure came back within the objective.
    RpoRecovered,
    /// An operator's `lifeboat restore` finished, restored or failed.
    RestoreFinished,
}

impl NotifyEvent {
    /// Every event: what a webhook without `events` is told about.
    pub const ALL: [NotifyEvent; 6] = [
        NotifyEvent::BackupFailed,
        NotifyEvent::DrillFailed,
        NotifyEvent::VerifyFailed,
        NotifyEvent::RpoBreach,
        NotifyEvent::RpoRecovered,
        NotifyEvent::RestoreFinished,
    ];

    /// The name written in plans and sent in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::BackupFailed => "backup-failed",
            NotifyEvent::DrillFailed => "drill-failed",
            NotifyEvent::VerifyFailed => "verify-failed",
            NotifyEvent::RpoBreach => "rpo-breach",
            NotifyEvent::RpoRecovered => "rpo-recovered",
            NotifyEvent::RestoreFinished => "restore-finished",
        }
    }

    /// The event spelt `text` (as [`NotifyEvent::as_str`] writes it), if
    /// any.
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
    /// Where to send: a URL in the plan, or an environment variable.
    pub target: WebhookTarget,
    /// The events it is told about (every one unless `events` narrows it).
    pub events: Vec<NotifyEvent>,
}

impl Webhook {
    /// Whether this webhook is told about `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }
}

impl Plan {
    /// The retention rules that apply in `region`: the region's own when
    /// it sets any rule (they replace the plan's whole, they do not merge
    /// with them), else the plan's `[retention]`.
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

    /// The plan file's folder: where the programs it names (command
    /// checks, hooks) run and its relative paths are read from.
    pub fn dir(&self) -> &std::path::Path {
        self.source
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
    }

    /// The resource named `name`, if the plan (still) has it.
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
