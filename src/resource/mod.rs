//! Resource kinds: how a point of each kind is taken, restored and checked.
//!
//! Kinds are a closed set known at compile time, so one enum ([`ResourceSpec`])
//! dispatches to one module per kind, each with the same steps: snapshot
//! (into a vault), restore (into a scratch place) and check. Resource kinds
//! do data work only; they know nothing of the catalog.

pub mod manifest;
mod path;
mod postgres;
pub mod rds;
pub mod s3;
mod sql;
mod sqlite;

pub use path::remove_scratch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::{AwsSpec, ResourceSpec, SqlCheck};
use crate::time::Millis;
use crate::vault::{Vault, VaultError};

pub use manifest::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("artifact {location} is corrupt: {detail}")]
    Corrupt { location: String, detail: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("resource kind `{0}` is not supported by this build yet")]
    Unsupported(&'static str),
    #[error("{0}")]
    Other(String),
}

impl ResourceError {
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| ResourceError::Io { op, path, source }
    }
}

/// What a snapshot put into the vault.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the consistent snapshot of the data was taken.
    pub data_time: Millis,
    /// Artifact (compressed) size and SHA-256.
    pub size_bytes: u64,
    pub sha256: String,
    /// Data held: files and uncompressed bytes.
    pub file_count: u64,
    pub content_bytes: u64,
    /// Notes for the point, e.g. `changed-while-read`.
    pub flags: Vec<String>,
}

/// Keys of a point's two objects in a vault.
#[derive(Debug, Clone)]
pub struct ArtifactKeys {
    pub artifact: String,
    pub manifest: String,
}

impl ArtifactKeys {
    /// `PLAN/RESOURCE/STAMP-pID.EXT` and its `.manifest.json`. The stamp keeps
    /// keys unique even if a catalog is recreated over an existing vault.
    pub fn new(
        plan: &str,
        resource: &str,
        spec: &ResourceSpec,
        started_at: Millis,
        point_id: i64,
    ) -> Self {
        let stamp = crate::time::to_datetime(started_at).format("%Y%m%dT%H%M%S%3fZ");
        let ext = match spec {
            ResourceSpec::Sqlite { .. } => "sqlite.zst",
            // pg_dump's custom format is compressed already: stored as is.
            ResourceSpec::Postgres { .. } => "pgdump",
            // A prefix holding one object per source object.
            ResourceSpec::S3 { .. } => "objects",
            _ => "tar.zst",
        };
        let base = format!("{plan}/{resource}/{stamp}-p{point_id}");
        ArtifactKeys {
            artifact: format!("{base}.{ext}"),
            manifest: format!("{base}.manifest.json"),
        }
    }

    /// The keys of a point from its artifact location's key.
    pub fn from_artifact_key(artifact: &str) -> Self {
        let base = artifact
            .strip_suffix(".tar.zst")
            .or_else(|| artifact.strip_suffix(".sqlite.zst"))
            .or_else(|| artifact.strip_suffix(".pgdump"))
            .or_else(|| artifact.strip_suffix(".objects"))
            .unwrap_or(artifact);
        ArtifactKeys {
            artifact: artifact.to_string(),
            manifest: format!("{base}.manifest.json"),
        }
    }
}

/// Takes a point of a resource into `vault` (of `region`, the primary).
pub async fn snapshot(
    spec: &ResourceSpec,
    vault: &Vault,
    keys: &ArtifactKeys,
    work_dir: &Path,
    label: &str,
    region: &str,
    aws: Option<&AwsSpec>,
) -> Result<Snapshot, ResourceError> {
    match spec {
        ResourceSpec::S3 { bucket, prefix } => {
            s3::snapshot(bucket, prefix, region, aws, vault, keys).await
        }
        ResourceSpec::Path { path, exclude } => {
            path::snapshot(path, exclude, vault, keys, label).await
        }
        ResourceSpec::Sqlite { path } => sqlite::snapshot(path, vault, keys, work_dir, label).await,
        ResourceSpec::Postgres { url, .. } => postgres::snapshot(url, vault, keys, label).await,
        other => Err(ResourceError::Unsupported(other.kind())),
    }
}

/// A restored resource in a scratch place.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Where the data is (folder or database file).
    pub location: PathBuf,
    /// The built-in verification that ran during the restore.
    pub verification: String,
    /// The scratch database the data went into, for kinds restored into a
    /// database server (postgres); [`discard`] drops it.
    pub database: Option<String>,
    /// Where a remote restore is: the scratch prefix of an `s3` restore,
    /// the endpoint of a restored RDS instance.
    pub url: Option<String>,
    /// The point's manifest, for the checks that compare against it.
    pub manifest: Option<Manifest>,
}

/// Scratch databases of drills are named `lifeboat_drill_…`; nothing else
/// is ever dropped.
pub const SCRATCH_DATABASE_PREFIX: &str = "lifeboat_drill_";

/// Where one drill restores one resource. Everything a drill creates is
/// named from these, deterministically, so it can be removed by name after
/// a failed restore or a crash, without any record of having created it.
#[derive(Debug, Clone)]
pub struct Scratch {
    /// A folder that does not exist yet, removed by the drill's cleanup.
    pub dir: PathBuf,
    pub plan: String,
    pub drill_id: i64,
    pub resource: String,
    /// The drill's region, and its vault when it has one: remote scratch
    /// places (an S3 prefix, an RDS instance) are made there.
    pub region: String,
    pub aws: Option<AwsSpec>,
    pub vault: Option<Vault>,
    /// How long one long AWS operation may be waited for.
    pub budget: Duration,
}

impl Scratch {
    /// `lifeboat_drill_<drill id>_<plan>_<resource>`: the drill id alone
    /// would collide when a plan has two databases on one drill server, or
    /// two catalogs drill into one server. PostgreSQL names are at most 63
    /// bytes: a longer name is cut and ends with a hash of the whole.
    pub fn database_name(&self) -> String {
        let full = format!(
            "{SCRATCH_DATABASE_PREFIX}{}_{}_{}",
            self.drill_id, self.plan, self.resource
        )
        .replace('-', "_")
        .to_ascii_lowercase();
        if full.len() <= 63 {
            return full;
        }
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(full.as_bytes()));
        format!("{}_{}", &full[..54], &hash[..8])
    }
}

/// Restores a point into `scratch` and verifies it against its manifest.
pub async fn restore(
    spec: &ResourceSpec,
    vault: &Vault,
    keys: &ArtifactKeys,
    scratch: &Scratch,
    label: &str,
) -> Result<Restored, ResourceError> {
    match spec {
        ResourceSpec::Path { .. } => path::restore(vault, keys, &scratch.dir, label).await,
        ResourceSpec::Sqlite { .. } => sqlite::restore(vault, keys, &scratch.dir, label).await,
        ResourceSpec::Postgres { url, drill_url } => {
            postgres::restore(url, drill_url.as_deref(), vault, keys, scratch, label).await
        }
        ResourceSpec::S3 { .. } => s3::restore(vault, keys, scratch).await,
        other => Err(ResourceError::Unsupported(other.kind())),
    }
}

impl Scratch {
    /// The drill region as RDS calls see it.
    pub fn rds_place(&self) -> rds::RdsPlace<'_> {
        rds::RdsPlace {
            region: &self.region,
            aws: self.aws.as_ref(),
            kms_key: None,
            budget: self.budget,
        }
    }
}

/// Removes what a restore created outside its scratch folder (a postgres
/// scratch database), whether the restore succeeded, failed half-way or
/// was interrupted by a crash. Idempotent; returns what it removed. The
/// scratch folder itself is the drill's to remove.
pub async fn discard(
    spec: &ResourceSpec,
    scratch: &Scratch,
) -> Result<Option<String>, ResourceError> {
    match spec {
        ResourceSpec::Postgres { url, drill_url } => {
            postgres::discard(url, drill_url.as_deref(), scratch).await
        }
        ResourceSpec::S3 { .. } => match &scratch.vault {
            Some(vault) => s3::discard(vault, scratch).await,
            None => Ok(None),
        },
        ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
            rds::discard(spec, &scratch.rds_place(), scratch).await
        }
        _ => Ok(None),
    }
}

/// Runs a SQL check against a restored resource: passes when the first
/// column of the first row is true / non-zero (or equals `expect`).
pub async fn run_sql_check(
    spec: &ResourceSpec,
    restored: &Restored,
    check: &SqlCheck,
) -> Result<String, String> {
    let fut = async {
        match spec {
            ResourceSpec::Sqlite { .. } => sqlite::sql_check(&restored.location, check).await,
            ResourceSpec::Postgres { url, drill_url } => {
                postgres::sql_check(url, drill_url.as_deref(), restored, check).await
            }
            ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
                match restored.url.as_deref() {
                    Some(url) => match url.strip_prefix("postgres://") {
                        Some(endpoint) => postgres::endpoint_sql_check(endpoint, check).await,
                        None => Err(format!(
                            "SQL checks run on PostgreSQL engines only; the restore is {url}"
                        )),
                    },
                    None => Err("the restore reported no endpoint".into()),
                }
            }
            other => Err(format!(
                "SQL checks on kind `{}` are not supported yet",
                other.kind()
            )),
        }
    };
    match tokio::time::timeout(check.timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "timed out after {}",
            humantime::format_duration(check.timeout)
        )),
    }
}

/// Deletes a point's objects from a vault (idempotent). The manifest goes
/// first: a vault holding a manifest always holds its artifact.
/// `kind` is the point's own, whatever the plan says today.
pub async fn delete_artifacts(
    kind: &str,
    vault: &Vault,
    keys: &ArtifactKeys,
) -> Result<(), VaultError> {
    if kind == "s3" {
        return s3::delete(vault, keys).await;
    }
    vault.delete(&keys.manifest).await?;
    vault.delete(&keys.artifact).await
}

/// Copies a point's objects to another vault; returns the artifact's copy
/// outcome (size and SHA-256 of the bytes copied).
pub async fn copy_artifacts(
    spec: &ResourceSpec,
    src: &Vault,
    keys: &ArtifactKeys,
    dst: &Vault,
) -> Result<crate::vault::CopyOutcome, String> {
    if let ResourceSpec::S3 { .. } = spec {
        return s3::copy(src, keys, dst).await;
    }
    copy_one_artifact(src, keys, dst)
        .await
        .map_err(|e| e.to_string())
}

async fn copy_one_artifact(
    src: &Vault,
    keys: &ArtifactKeys,
    dst: &Vault,
) -> Result<crate::vault::CopyOutcome, VaultError> {
    let outcome = src.copy_to(&keys.artifact, dst, &keys.artifact).await?;
    // The manifest goes last: a vault holding a manifest holds the artifact.
    src.copy_to(&keys.manifest, dst, &keys.manifest).await?;
    Ok(outcome)
}

/// Default per-check timeout when a plan gives none.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// A check that comes with a kind.
#[derive(Debug, Clone)]
pub struct BuiltinCheck {
    pub name: &'static str,
    pub result: Result<String, String>,
    pub elapsed: Duration,
}

/// Checks that come with a kind and run after every restore (beyond the
/// manifest verification the restore itself does), each timed.
pub async fn builtin_checks(
    spec: &ResourceSpec,
    restored: &Restored,
    scratch: &Scratch,
) -> Vec<BuiltinCheck> {
    let start = std::time::Instant::now();
    let (name, result) = match spec {
        ResourceSpec::S3 { .. } => (
            "objects",
            match (&scratch.vault, &restored.manifest) {
                (Some(vault), Some(manifest)) => s3::objects_check(vault, scratch, manifest).await,
                _ => Err("no vault or manifest to check the restored objects against".into()),
            },
        ),
        ResourceSpec::Sqlite { .. } => (
            "integrity_check",
            sqlite::integrity_check(&restored.location).await,
        ),
        ResourceSpec::Postgres { url, drill_url } => (
            "tables",
            postgres::tables_check(url, drill_url.as_deref(), restored).await,
        ),
        _ => return Vec::new(),
    };
    vec![BuiltinCheck {
        name,
        result,
        elapsed: start.elapsed(),
    }]
}
