//! The manifest stored beside every artifact: what the point holds, with
//! a SHA-256 for every file, so a restore can verify every byte.

use serde::{Deserialize, Serialize};

use super::ResourceError;
use crate::vault::Vault;

/// Manifests are small; refuse to load anything absurdly large.
const MAX_MANIFEST_BYTES: u64 = 2 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub kind: String,
    pub data_time: String,
    pub artifact: ArtifactInfo,
    pub file_count: u64,
    pub content_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectEntry>,
}

/// The bucket and prefix an `s3` point was taken from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BucketInfo {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
}

/// One object of an `s3` point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ObjectEntry {
    /// The object's key in the source bucket.
    pub key: String,
    pub size: u64,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 (base64) that S3 computed for the stored copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the copy is, under the point's objects prefix: a sequence
    /// number, so no source key (any bytes S3 allows) has to fit our rules.
    pub stored: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInfo {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    #[serde(default)]
    pub size: u64,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
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
    pub size: u64,
    pub sha256: String,
}

/// Where a PostgreSQL dump came from and how it was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresInfo {
    /// `SHOW server_version` of the dumped server, and its number form.
    pub server_version: String,
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
    pub async fn store(&self, vault: &Vault, key: &str) -> Result<(), ResourceError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| ResourceError::Other(format!("cannot encode manifest: {e}")))?;
        vault.put(key, std::io::Cursor::new(bytes)).await?;
        Ok(())
    }

    pub async fn load(vault: &Vault, key: &str) -> Result<Manifest, ResourceError> {
        use tokio::io::AsyncReadExt;
        let location = vault.location(key);
        let mut bytes = Vec::new();
        vault
            .get(key)
            .await?
            .take(MAX_MANIFEST_BYTES)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ResourceError::Corrupt {
                location: location.clone(),
                detail: format!("cannot read manifest: {e}"),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ResourceError::Corrupt {
            location,
            detail: format!("manifest is not valid: {e}"),
        })
    }
}
