//! The manifest stored beside every artifact: what the point holds, with
//! a SHA-256 for every file, so a restore can verify every byte.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Kind, ResourceError};
use crate::vault::Vault;

/// Manifests are small; refuse to load anything absurdly large.
const MAX_MANIFEST_BYTES: u64 = 2 << 30;

/// The JSON document stored as `….manifest.json` beside a point's
/// artifact (or objects prefix), written after the data and read before
/// any restore. Only the sections of the point's kind are present;
/// unknown fields are refused, so a manifest this build cannot fully read
/// fails loudly rather than half-verifies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Version of this layout: [`Manifest::FORMAT`] for new points; 1
    /// for points taken before manifests named their point.
    pub format: u32,
    /// The point this manifest belongs to (absent from format 1): a
    /// restore refuses a manifest that names another point, so a valid
    /// artifact and manifest pair of another point put in its place
    /// cannot vouch for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<PointIdentity>,
    /// The kind of the point, as plans spell it (`path`, `sqlite`,
    /// `postgres`, `s3`).
    pub kind: Kind,
    /// The point's `data_time`, RFC 3339 UTC with milliseconds.
    pub data_time: String,
    /// The artifact as stored in the vault.
    pub artifact: ArtifactInfo,
    /// Regular files held (1 for a database; objects for `s3`).
    pub file_count: u64,
    /// Uncompressed bytes held: the files' sizes, the database copy's,
    /// the dump's, or the objects' total.
    pub content_bytes: u64,
    /// A `path` point's entries, in archive order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// A `sqlite` or `postgres` point's database copy or dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    /// How a `postgres` point's dump was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresInfo>,
    /// Where an `s3` point's objects came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketInfo>,
    /// An `s3` point's objects, in listing order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectEntry>,
}

/// Which point a manifest belongs to: the plan, the resource and the id of
/// the point that took the data (in the primary region; its copies carry
/// the same manifest, byte for byte).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PointIdentity {
    /// The plan's name.
    pub plan: String,
    /// The resource's name in the plan.
    pub resource: String,
    /// The catalog id of the point that took the data.
    pub id: i64,
}

/// The bucket and prefix an `s3` point was taken from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BucketInfo {
    /// The source bucket's name.
    pub bucket: String,
    /// The key prefix listed; empty for the whole bucket.
    pub prefix: String,
    /// The region the bucket was read in (the plan's primary region).
    pub region: String,
}

/// One object of an `s3` point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectEntry {
    /// The object's key in the source bucket.
    pub key: String,
    /// Size in bytes of the copy taken (the listed size, or the size of
    /// the newer version when the object changed while the point was
    /// taken).
    pub size: u64,
    /// The source object's ETag, as S3 quotes it, of the version copied.
    pub etag: String,
    /// The source version copied, when the bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 (base64) that S3 computed for the stored copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the copy is, under the point's objects prefix: a sequence
    /// number, so no source key (any bytes S3 allows) has to fit our rules.
    pub stored: String,
}

/// The artifact's bytes as the vault holds them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    /// SHA-256 (hex) of the stored (compressed) bytes; for an `s3` point,
    /// the hash of its object list (keys, sizes and S3's checksums).
    pub sha256: String,
    /// Stored bytes; for an `s3` point, the objects' total.
    pub size: u64,
}

/// What a `path` entry is on disk. Other file types (sockets, FIFOs,
/// devices) are skipped by the backup and never appear.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A regular file, with its size and SHA-256.
    File,
    /// A folder.
    Dir,
    /// A symbolic link, stored as a link with its target.
    Symlink,
}

/// One entry of a `path` point, as archived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The archive name: relative to the resource's path, `/`-separated
    /// (the file's own name when the resource is a single file). Names
    /// that are not UTF-8 are stored lossily.
    pub path: String,
    /// File, folder or symlink; the restore refuses an archive entry of
    /// another type.
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Bytes archived (the size when the file was listed); 0 for folders
    /// and links.
    #[serde(default)]
    pub size: u64,
    /// Permission bits (`mode & 0o7777`), restored as recorded.
    pub mode: u32,
    /// SHA-256 (hex) of the archived bytes; files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, as read (lossily, if not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The file changed size while it was read (GNU tar's "file changed as
    /// we read it"); the archived bytes are consistent but may be torn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_while_read: bool,
}

/// A database dump or copy: the uncompressed file's size and hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseInfo {
    /// Bytes of the uncompressed copy (of the dump, for `postgres`).
    pub size: u64,
    /// SHA-256 (hex) of those bytes: checked again after decompression.
    pub sha256: String,
}

/// Where a PostgreSQL dump came from and how it was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresInfo {
    /// `SHOW server_version` of the dumped server, and its number form.
    pub server_version: String,
    /// `server_version_num` (e.g. 150018); 0 if the server gave none that
    /// parses.
    pub server_version_num: i64,
    /// The version of pg_dump that wrote the dump.
    pub pg_dump_version: String,
    /// pg_dump's `--format` (`custom`).
    pub format: String,
    /// The exported snapshot the dump ran on, when the server allowed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The server's `statement_timestamp()` of the statement that took that
    /// snapshot (server clock; `data_time` is on Lifeboat's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_snapshot_time: Option<String>,
}

impl Manifest {
    /// The layout new points are written in: 2 names the point.
    pub const FORMAT: u32 = 2;

    /// Writes the manifest as JSON at `key`; returns the SHA-256 (hex) of
    /// the bytes written, which the catalog records so a restore can tell
    /// this manifest from any other. Callers write it after the data it
    /// describes: a vault holding a manifest holds its artifact.
    pub async fn store(&self, vault: &Vault, key: &str) -> Result<String, ResourceError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| ResourceError::Other(format!("cannot encode manifest: {e}")))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        vault.put(key, std::io::Cursor::new(bytes)).await?;
        Ok(sha256)
    }

    /// Reads the manifest at `key`. One that cannot be parsed (or is
    /// larger than 2 GiB) is [`ResourceError::Corrupt`]; a missing one is
    /// the vault's not-found error, one whose read fails the vault's I/O
    /// error.
    pub async fn load(vault: &Vault, key: &str) -> Result<Manifest, ResourceError> {
        Ok(Manifest::load_hashed(vault, key).await?.0)
    }

    /// [`Manifest::load`], with the SHA-256 (hex) of the bytes read.
    pub async fn load_hashed(
        vault: &Vault,
        key: &str,
    ) -> Result<(Manifest, String), ResourceError> {
        use tokio::io::AsyncReadExt;
        let location = vault.location(key);
        let mut bytes = Vec::new();
        vault
            .get(key)
            .await?
            .take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut bytes)
            .await
            // A read that fails says nothing of the bytes not read: the
            // vault's fault, not damage.
            .map_err(|source| {
                ResourceError::Vault(crate::vault::VaultError::Io {
                    op: "read",
                    location: location.clone(),
                    source,
                })
            })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let manifest = serde_json::from_slice(&bytes).map_err(|e| ResourceError::Corrupt {
            location,
            detail: format!("manifest is not valid: {e}"),
        })?;
        Ok((manifest, sha256))
    }
}
