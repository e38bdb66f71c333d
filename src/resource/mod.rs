//! Resource kinds: every step of a point's life, for every kind.
//!
//! Kinds are a closed set known at compile time ([`Kind`], and the plan's
//! [`ResourceSpec`]), so each step below is one exhaustive `match` that
//! hands the work to the kind's own module (`path`, `sqlite`, `postgres`,
//! `s3`, `rds`). The steps, in the order a point meets them:
//!
//! - [`new_location`]: where a new point's data will be, known before any
//!   work starts (deterministic names: a retry or a crash finds it again);
//! - [`snapshot`]: take the point in the primary region;
//! - [`copy`]: copy it into another region;
//! - [`restore`]: put it back into a scratch place (a drill) and verify it;
//! - [`check`] and [`sql_check`]: the kind's built-in checks and the
//!   plan's SQL checks on what was restored;
//! - [`discard`]: remove what a restore created, also half-way or after a
//!   crash, found by name;
//! - [`delete`]: remove a point's data (retention, failed leftovers);
//! - [`verify`]: check a point where it is kept, without restoring it.
//!
//! Orchestrators (`backup`, `drill`, `prune`) call these and never ask
//! which kind they hold. Resource kinds do data work only: they know
//! nothing of the catalog.

mod binding;
pub mod command_check;
mod flag;
mod kind;
mod location;
pub mod manifest;
mod mysql;
mod path;
mod place;
mod postgres;
pub mod rds;
pub mod s3;
mod scratch;
mod sql;
mod sqlite;
pub mod target;
mod verify;
mod work_folder;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use binding::Binding;
pub use flag::PointFlag;
pub use kind::Kind;
pub use location::{ArtifactKeys, Location, MANIFEST_SUFFIX};
pub use manifest::{Manifest, PointIdentity};
pub use path::remove_scratch;
pub use place::{region_vault, Place, RegionVaultError};
pub use postgres::promote as postgres_promote;
pub use scratch::{
    InstanceTarget, Scratch, ScratchFor, RESTORE_DATABASE_PREFIX, SCRATCH_DATABASE_PREFIX,
};
pub use verify::{reachable, Verified};
pub use work_folder::pid_of as snapshot_folder_pid;

use crate::plan::{Resource, ResourceSpec, SqlCheck};
use crate::time::Millis;
use crate::vault::VaultError;

/// Why a step of a kind failed.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The source could not be read (a missing folder, a refused
    /// connection, an AWS error naming the resource).
    #[error("{0}")]
    Source(String),
    /// A vault operation failed; the only variant that may be retryable.
    #[error(transparent)]
    Vault(VaultError),
    /// The region has no vault this step can use.
    #[error("{0}")]
    NoVault(String),
    /// What the vault holds does not match its manifest (or the manifest
    /// cannot be read): the point cannot be trusted.
    #[error("artifact {location} is corrupt: {detail}")]
    Corrupt {
        /// The artifact's URL in the vault.
        location: String,
        /// What did not match, with expected and actual values.
        detail: String,
    },
    /// A local file operation failed (scratch folder, temporary copy).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `write`, `rename`, …).
        op: &'static str,
        /// The local path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An AWS operation failed or did not finish in time.
    #[error("{0}")]
    Aws(String),
    /// A copy or restore does not match what the point recorded.
    #[error("{0}")]
    Mismatch(String),
    /// Anything else: a catalog that does not fit the plan, a task that
    /// stopped, a kind asked of a step it has not.
    #[error("{0}")]
    Other(String),
}

/// An encrypted object that does not authenticate is damage, like any
/// other data that is not what was written.
impl From<VaultError> for ResourceError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Corrupt { location, detail } => ResourceError::Corrupt { location, detail },
            other => ResourceError::Vault(other),
        }
    }
}

impl ResourceError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| ResourceError::Io { op, path, source }
    }

    /// Whether trying again later may succeed: a transient fault of a
    /// vault; everything else needs someone to change something first.
    pub fn is_retryable(&self) -> bool {
        match self {
            ResourceError::Vault(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// A check that failed, with what it saw (not an error of Lifeboat: the
/// verdict of a drill).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

impl From<String> for CheckFailed {
    fn from(detail: String) -> Self {
        CheckFailed(detail)
    }
}

impl From<&str> for CheckFailed {
    fn from(detail: &str) -> Self {
        CheckFailed(detail.to_string())
    }
}

/// A check that could not run fails, saying why.
impl From<ResourceError> for CheckFailed {
    fn from(e: ResourceError) -> Self {
        CheckFailed(e.to_string())
    }
}

/// A check's verdict: passed with what it saw, or failed saying why.
pub type Verdict = Result<String, CheckFailed>;

/// What a snapshot took.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the consistent snapshot of the data was taken.
    pub data_time: Millis,
    /// Artifact (compressed) size and SHA-256 (empty for a snapshot RDS
    /// holds: RDS does not expose one).
    pub size_bytes: u64,
    /// SHA-256 (hex) of the artifact; for `s3`, of its object list; empty
    /// for RDS.
    pub sha256: String,
    /// Data held: files and uncompressed bytes.
    pub file_count: u64,
    /// Uncompressed bytes held (for RDS, the allocated storage).
    pub content_bytes: u64,
    /// Notes for the point, e.g. `changed-while-read`.
    pub flags: Vec<PointFlag>,
    /// SHA-256 (hex) of the manifest as stored; `None` for RDS, which
    /// keeps its own snapshots.
    pub manifest_sha256: Option<String>,
}

/// What a copy into another region established.
#[derive(Debug, Clone)]
pub struct Copied {
    /// Where the copy is in its region.
    pub location: Location,
    /// Bytes copied.
    pub size: u64,
    /// SHA-256 of the bytes copied, when they went through Lifeboat (a
    /// server-side copy is verified by the store's own checksums).
    pub sha256: Option<String>,
    /// SHA-256 of the manifest copied, when it went through Lifeboat.
    pub manifest_sha256: Option<String>,
}

/// Where a new point of `res` will be. `point_id` and `started_at` make
/// vault keys unique; an RDS snapshot is named from the `slot` of a
/// scheduled run (or the start of a manual one), so a retry of the same
/// slot finds the snapshot instead of taking another.
pub fn new_location(
    plan: &str,
    res: &Resource,
    started_at: Millis,
    slot: Option<Millis>,
    point_id: i64,
) -> Location {
    let base = ArtifactKeys::base(plan, &res.name, started_at, point_id);
    // Only the kinds RDS keeps have no place in a vault.
    Location::in_vault(Kind::of(&res.spec), &base).unwrap_or_else(|| Location::RdsSnapshot {
        id: rds::snapshot_id(plan, &res.name, slot.unwrap_or(started_at)),
        arn: None,
    })
}

/// A location of the wrong shape for its kind: only a catalog edited by
/// hand (or a kind that changed under a point) gets here.
fn misplaced(kind: Kind, location: &Location) -> ResourceError {
    ResourceError::Other(format!(
        "a point of kind {kind} cannot be at {location:?}; was the catalog edited?"
    ))
}

/// The vault keys of a vault location, or why there are none.
fn keys_of(kind: Kind, location: &Location) -> Result<ArtifactKeys, ResourceError> {
    location
        .vault_keys()
        .ok_or_else(|| misplaced(kind, location))
}

/// The snapshot identifier and ARN of a snapshot location.
fn snapshot_of(kind: Kind, location: &Location) -> Result<(&str, Option<&str>), ResourceError> {
    match location {
        Location::RdsSnapshot { id, arn } => Ok((id, arn.as_deref())),
        other => Err(misplaced(kind, other)),
    }
}

/// What must hold before a point of `kind` is written into `place`: its
/// vault opens (and, with an object lock, can honour it). RDS keeps its
/// own snapshots and reports its own errors: nothing to check first.
pub async fn preflight(kind: Kind, place: &Place<'_>) -> Result<(), ResourceError> {
    match kind {
        Kind::Path | Kind::Sqlite | Kind::Postgres | Kind::S3 => place.vault().await.map(|_| ()),
        Kind::RdsInstance | Kind::RdsCluster => Ok(()),
    }
}

/// Takes a point of `res` at `at` into `place` (the primary region);
/// returns it and where it is now (an RDS snapshot gains its ARN).
/// `point_id` tags what is created in AWS, to find it from the console.
pub async fn snapshot(
    res: &Resource,
    place: &Place<'_>,
    at: &Location,
    point_id: i64,
    work_dir: &Path,
) -> Result<(Snapshot, Location), ResourceError> {
    let kind = Kind::of(&res.spec);
    let label = res.name.as_str();
    let taken = match &res.spec {
        ResourceSpec::Path { path, exclude } => {
            path::snapshot(
                path,
                exclude,
                place.vault().await?,
                &keys_of(kind, at)?,
                label,
            )
            .await
        }
        ResourceSpec::Sqlite { path } => {
            let keys = keys_of(kind, at)?;
            sqlite::snapshot(path, place.vault().await?, &keys, work_dir, label).await
        }
        ResourceSpec::Postgres {
            url, dump_format, ..
        } => {
            let keys = keys_of(kind, at)?;
            let vault = place.vault().await?;
            postgres::snapshot(url, *dump_format, vault, &keys, work_dir, label).await
        }
        ResourceSpec::S3 { bucket, prefix } => {
            let keys = keys_of(kind, at)?;
            let aws = place.plan.aws.as_ref();
            let vault = place.vault().await?;
            s3::snapshot(bucket, prefix, place.region, aws, vault, &keys).await
        }
        ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
            let (id, _) = snapshot_of(kind, at)?;
            let labels = rds::labels(&place.plan.name, label, point_id);
            let (snap, arn) = rds::snapshot(&res.spec, &place.rds(), id, &labels).await?;
            let location = Location::RdsSnapshot {
                id: id.to_string(),
                arn: Some(arn),
            };
            return Ok((snap, location));
        }
    };
    // A vault kind's manifest names its point, and goes last: a vault
    // holding a manifest holds its data.
    let (mut snap, mut manifest) = taken?;
    manifest.point = Some(PointIdentity {
        plan: place.plan.name.clone(),
        resource: res.name.clone(),
        id: point_id,
    });
    let sha256 = manifest
        .store(place.vault().await?, &keys_of(kind, at)?.manifest)
        .await?;
    snap.manifest_sha256 = Some(sha256);
    Ok((snap, at.clone()))
}

/// Copies the point of kind `kind` at `from` (in region `src`) into `dst`,
/// and checks the copy. `source_size` is the source point's recorded size
/// (what a copy RDS makes is known by).
pub async fn copy(
    kind: Kind,
    resource: &str,
    src: &Place<'_>,
    from: &Location,
    dst: &Place<'_>,
    point_id: i64,
    source_size: u64,
) -> Result<Copied, ResourceError> {
    let to = from.for_copy();
    match kind {
        Kind::Path | Kind::Sqlite | Kind::Postgres => {
            let keys = keys_of(kind, from)?;
            let (s, d) = (src.vault().await?, dst.vault().await?);
            let outcome = s.copy_to(&keys.artifact, d, &keys.artifact).await?;
            // The manifest goes last: a vault holding a manifest holds
            // the artifact.
            let manifest = s.copy_to(&keys.manifest, d, &keys.manifest).await?;
            Ok(Copied {
                location: to,
                size: outcome.size,
                sha256: outcome.sha256,
                manifest_sha256: manifest.sha256,
            })
        }
        Kind::S3 => {
            let keys = keys_of(kind, from)?;
            let outcome = s3::copy(src.vault().await?, &keys, dst.vault().await?).await?;
            Ok(Copied {
                location: to,
                size: outcome.size,
                sha256: outcome.sha256,
                manifest_sha256: None,
            })
        }
        Kind::RdsInstance | Kind::RdsCluster => {
            let (id, arn) = snapshot_of(kind, from)?;
            let arn = arn.ok_or_else(|| {
                ResourceError::Other("the source point has no snapshot ARN".into())
            })?;
            let labels = rds::labels(&src.plan.name, resource, point_id);
            let arn = rds::copy(kind, &src.rds(), arn, &dst.rds(), &labels).await?;
            Ok(Copied {
                location: Location::RdsSnapshot {
                    id: id.to_string(),
                    arn: Some(arn),
                },
                size: source_size,
                sha256: None,
                manifest_sha256: None,
            })
        }
    }
}

/// A point put back into a scratch place, verified against its manifest.
#[derive(Debug, Clone)]
pub struct Restored {
    /// What the restore itself verified, for the drill's `restore` check.
    pub verification: String,
    /// Where the data now is: what the checks and the clean-up look at.
    pub into: RestoredInto,
}

/// Where a restore put the data, per kind: what its checks look at.
#[derive(Debug, Clone)]
pub enum RestoredInto {
    /// A `path` point: the tree, under the scratch folder.
    Folder(PathBuf),
    /// A `sqlite` point: the database file.
    File(PathBuf),
    /// A `postgres` point: the scratch database on the drill server (from
    /// the resource's `url` and `drill_url`), and the dump it came from.
    Database {
        /// The scratch database (`lifeboat_drill_…`).
        name: String,
        /// The downloaded dump, in the scratch folder; the `tables` check
        /// reads its table of contents.
        dump: PathBuf,
        /// The resource's `url`.
        url: String,
        /// The resource's `drill_url`, when it has one.
        drill_url: Option<String>,
    },
    /// An `s3` point: the objects under the drill's scratch prefix.
    Objects {
        /// The scratch prefix's URL in the drill region's vault.
        url: String,
        /// The point's manifest, which the `objects` check lists against.
        manifest: Box<Manifest>,
    },
    /// An RDS point: the instance restored, serving at `url`
    /// (`ENGINE://HOST:PORT`) when RDS reported an endpoint.
    Instance {
        /// `postgres://HOST:PORT`, `mysql://HOST:PORT` (MySQL and MariaDB
        /// engines) or `ENGINE://HOST:PORT` for others; `None` without
        /// endpoint.
        url: Option<String>,
    },
}

impl Restored {
    /// The same, its verification preceded by `note` (what bound it).
    fn noting(self, note: String) -> Restored {
        Restored {
            verification: format!("{note}; {}", self.verification),
            ..self
        }
    }

    /// The scratch database kept for a look, if the restore made one.
    pub fn database(&self) -> Option<&str> {
        match &self.into {
            RestoredInto::Database { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Restores the point at `at` (in region `place`) into `scratch`, and
/// verifies it: the manifest against the catalog's record (`bound`), then
/// every restored byte against the manifest.
pub async fn restore(
    spec: &ResourceSpec,
    place: &Place<'_>,
    at: &Location,
    bound: &Binding,
    scratch: &Scratch,
) -> Result<Restored, ResourceError> {
    let kind = Kind::of(spec);
    let label = scratch.resource.as_str();
    match spec {
        ResourceSpec::Path { .. } => {
            let (vault, keys) = (place.vault().await?, keys_of(kind, at)?);
            let (manifest, note) = bound.load(vault, &keys).await?;
            let restored = path::restore(vault, &keys, &manifest, &scratch.dir, label).await?;
            Ok(restored.noting(note))
        }
        ResourceSpec::Sqlite { .. } => {
            let (vault, keys) = (place.vault().await?, keys_of(kind, at)?);
            let (manifest, note) = bound.load(vault, &keys).await?;
            let restored = sqlite::restore(vault, &keys, &manifest, &scratch.dir, label).await?;
            Ok(restored.noting(note))
        }
        ResourceSpec::Postgres { url, drill_url, .. } => {
            let (vault, keys) = (place.vault().await?, keys_of(kind, at)?);
            let (manifest, note) = bound.load(vault, &keys).await?;
            // A restore stages on its target's server.
            let drill_url = scratch.server.as_deref().or(drill_url.as_deref());
            let restored =
                postgres::restore(url, drill_url, vault, &keys, &manifest, scratch, label).await?;
            Ok(restored.noting(note))
        }
        ResourceSpec::S3 { .. } => {
            let (vault, keys) = (place.vault().await?, keys_of(kind, at)?);
            let (manifest, note) = bound.load(vault, &keys).await?;
            Ok(s3::restore(vault, &keys, &manifest, scratch)
                .await?
                .noting(note))
        }
        ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
            // RDS keeps the snapshot: the catalog's identifier is the binding.
            let (id, _) = snapshot_of(kind, at)?;
            rds::restore(spec, &place.rds(), id, scratch).await
        }
    }
}

/// A check that comes with a kind.
#[derive(Debug, Clone)]
pub struct BuiltinCheck {
    /// The check's name in the drill record: `integrity_check`, `tables`
    /// or `objects`.
    pub name: &'static str,
    /// Passed with what it saw, or failed saying why.
    pub verdict: Verdict,
    /// How long the check took (recorded as the check's seconds).
    pub elapsed: Duration,
}

/// The checks that come with a kind and run after every restore, beyond
/// the manifest verification the restore itself did; each timed. A
/// restored folder or instance has none.
pub async fn check(restored: &Restored, place: &Place<'_>, scratch: &Scratch) -> Vec<BuiltinCheck> {
    let start = Instant::now();
    let (name, verdict) = match &restored.into {
        RestoredInto::Objects { manifest, .. } => (
            "objects",
            match place.vault().await {
                Ok(vault) => s3::objects_check(vault, scratch, manifest).await,
                Err(e) => Err(CheckFailed(format!(
                    "cannot list the restored objects: {e}"
                ))),
            },
        ),
        RestoredInto::File(file) => ("integrity_check", sqlite::integrity_check(file).await),
        RestoredInto::Database {
            name,
            dump,
            url,
            drill_url,
        } => (
            "tables",
            postgres::tables_check(url, drill_url.as_deref(), name, dump).await,
        ),
        RestoredInto::Folder(_) | RestoredInto::Instance { .. } => return Vec::new(),
    };
    vec![BuiltinCheck {
        name,
        verdict,
        elapsed: start.elapsed(),
    }]
}

/// Runs a plan's SQL check against a restored database: passes when the
/// first column of the first row is true / non-zero (or equals `expect`).
pub async fn sql_check(restored: &Restored, check: &SqlCheck) -> Verdict {
    let run = async {
        match &restored.into {
            RestoredInto::File(file) => sqlite::sql_check(file, check).await,
            RestoredInto::Database {
                name,
                url,
                drill_url,
                ..
            } => postgres::sql_check(url, drill_url.as_deref(), name, check).await,
            RestoredInto::Instance { url: Some(url) } => match url.split_once("://") {
                Some(("postgres", endpoint)) => postgres::endpoint_sql_check(endpoint, check).await,
                Some(("mysql", endpoint)) => mysql::endpoint_sql_check(endpoint, check).await,
                _ => Err(CheckFailed(format!(
                    "SQL checks run on PostgreSQL, MySQL and MariaDB engines; the restore is {url}"
                ))),
            },
            RestoredInto::Instance { url: None } => {
                Err(CheckFailed("the restore reported no endpoint".into()))
            }
            RestoredInto::Folder(_) | RestoredInto::Objects { .. } => Err(CheckFailed(
                "SQL checks run on databases only; this restore holds files".into(),
            )),
        }
    };
    match tokio::time::timeout(check.timeout, run).await {
        Ok(verdict) => verdict,
        Err(_) => Err(CheckFailed(format!(
            "timed out after {}",
            humantime::format_duration(check.timeout)
        ))),
    }
}

/// Removes what a restore of `spec` created outside its scratch folder
/// (a scratch database, a scratch prefix, a drill instance), whether the
/// restore succeeded, failed half-way or was interrupted by a crash: it is
/// found by name. Idempotent; says what it removed. The scratch folder
/// itself is the drill's to remove.
pub async fn discard(
    spec: &ResourceSpec,
    place: &Place<'_>,
    scratch: &Scratch,
) -> Result<Option<String>, ResourceError> {
    match spec {
        ResourceSpec::Path { .. } | ResourceSpec::Sqlite { .. } => Ok(None),
        ResourceSpec::Postgres { url, drill_url, .. } => {
            let drill_url = scratch.server.as_deref().or(drill_url.as_deref());
            postgres::discard(url, drill_url, scratch).await
        }
        ResourceSpec::S3 { .. } => s3::discard(place.vault().await?, scratch).await,
        ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
            rds::discard(spec, &place.rds(), scratch).await
        }
    }
}

/// Deletes the data of a point of kind `kind` at `at` in `place`
/// (idempotent). The manifest goes first: a vault holding a manifest
/// always holds its artifact. `versioned`: the objects were written under
/// an object lock, so every version of them goes.
pub async fn delete(
    kind: Kind,
    place: &Place<'_>,
    at: &Location,
    versioned: bool,
) -> Result<(), ResourceError> {
    let vault = || async {
        let vault = place.vault().await?.clone();
        Ok::<_, ResourceError>(if versioned {
            vault.with_versioned_deletes()
        } else {
            vault
        })
    };
    match kind {
        Kind::Path | Kind::Sqlite | Kind::Postgres => {
            let keys = keys_of(kind, at)?;
            let vault = vault().await?;
            vault.delete(&keys.manifest).await?;
            Ok(vault.delete(&keys.artifact).await?)
        }
        Kind::S3 => {
            let keys = keys_of(kind, at)?;
            Ok(s3::delete(&vault().await?, &keys).await?)
        }
        Kind::RdsInstance | Kind::RdsCluster => {
            let (id, _) = snapshot_of(kind, at)?;
            rds::delete_snapshot(kind, &place.rds(), id).await
        }
    }
}

/// Verifies the point of kind `kind` at `at` in `place` without restoring
/// it, against what the catalog recorded (`expect`): by default that its
/// data is there with the recorded size; with `read_data`, every byte is
/// read again and hashed. [`ResourceError::Corrupt`] is a definitive
/// finding that the data is not what was recorded; any other error means
/// the point could not be checked (see `crate::verify`).
pub async fn verify(
    kind: Kind,
    place: &Place<'_>,
    at: &Location,
    expect: &Binding,
    read_data: bool,
) -> Result<Verified, ResourceError> {
    match kind {
        Kind::Path | Kind::Sqlite | Kind::Postgres => {
            let keys = keys_of(kind, at)?;
            verify::artifact(place.vault().await?, &keys, expect, read_data).await
        }
        Kind::S3 => {
            let keys = keys_of(kind, at)?;
            s3::verify(place.vault().await?, &keys, expect, read_data).await
        }
        Kind::RdsInstance | Kind::RdsCluster => {
            let (id, _) = snapshot_of(kind, at)?;
            rds::verify(kind, &place.rds(), id).await
        }
    }
}
