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
    /// A `path` point of a folder: the folder itself (named `.`), whose
    /// mode, owner and time a restore gives the folder it restores into.
    /// Absent for a single file, and from points taken before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<FileEntry>,
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
/// devices) are skipped by the backup (with a warning and the point's
/// `special-skipped` flag) and never appear.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A regular file, with its size and SHA-256.
    File,
    /// A folder.
    Dir,
    /// A symbolic link, stored as a link with its target's exact bytes.
    Symlink,
    /// A second (or later) name of a regular file of the point: `target`
    /// is the first name, archived as a file before it; restored as a hard
    /// link to it.
    Hardlink,
}

/// Bytes that are not UTF-8 (a Unix name or link target), kept exactly:
/// written in JSON as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawBytes(pub Vec<u8>);

impl Serialize for RawBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .map(RawBytes)
            .map_err(|e| serde::de::Error::custom(format!("bad hex bytes `{text}`: {e}")))
    }
}

/// A range of a sparse file that held no data (a hole), as
/// `lseek(SEEK_HOLE)` reported it when the file was read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hole {
    /// Offset of the hole's first byte.
    pub offset: u64,
    /// Bytes in the hole.
    pub len: u64,
}

impl Hole {
    /// Offset just past the hole.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// One entry of a `path` point, as archived. Entries written before
/// times and owners were recorded (format 1) lack `mtime`, `uid` and
/// `gid`, and hold names that are not UTF-8 lossily; they still load and
/// restore (see [`FileEntry::is_legacy`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// The archive name: relative to the resource's path, `/`-separated
    /// (the file's own name when the resource is a single file). A name
    /// that is not UTF-8 is shown here lossily and kept exactly in
    /// `path_hex`: read it with [`FileEntry::name_bytes`].
    pub path: String,
    /// The name's exact bytes, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<RawBytes>,
    /// File, folder, symlink or hard link; the restore refuses an archive
    /// entry of another type.
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    /// Bytes archived; 0 for folders, links and hard links (whose data is
    /// their first name's).
    #[serde(default)]
    pub size: u64,
    /// Permission bits (`mode & 0o7777`, with setuid, setgid and sticky).
    pub mode: u32,
    /// Modification time, whole seconds since the Unix epoch (negative
    /// before 1970).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
    /// Nanoseconds to add to `mtime`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtime_nsec: u32,
    /// Owner's user id (applied by a restore running as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Owner's group id (applied by a restore running as root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// SHA-256 (hex) of the archived bytes; files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target, or a hard link's first name; shown lossily if
    /// not UTF-8 (kept exactly in `target_hex`): read it with
    /// [`FileEntry::target_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The target's exact bytes, when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hex: Option<RawBytes>,
    /// A sparse file's holes, in order; restored as holes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<Hole>,
    /// The file changed while it was read, even after a second read (its
    /// size, modification or change time moved): the archived bytes may
    /// mix old and new data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_while_read: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `bytes` as a readable string, and the exact bytes when that string is
/// not them.
fn split_name(bytes: &[u8]) -> (String, Option<RawBytes>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(RawBytes(bytes.to_vec())),
        ),
    }
}

impl FileEntry {
    /// An entry named `name` (exact bytes) of type `entry_type`, with
    /// nothing else recorded yet.
    pub fn new(name: &[u8], entry_type: EntryType) -> FileEntry {
        let (path, path_hex) = split_name(name);
        FileEntry {
            path,
            path_hex,
            entry_type,
            size: 0,
            mode: 0,
            mtime: None,
            mtime_nsec: 0,
            uid: None,
            gid: None,
            sha256: None,
            target: None,
            target_hex: None,
            holes: Vec::new(),
            changed_while_read: false,
        }
    }

    /// The entry's name, exactly as on disk (lossy only for a legacy
    /// entry that recorded no exact bytes).
    pub fn name_bytes(&self) -> &[u8] {
        match &self.path_hex {
            Some(raw) => &raw.0,
            None => self.path.as_bytes(),
        }
    }

    /// Records a symlink's target or a hard link's first name.
    pub fn set_target(&mut self, target: &[u8]) {
        let (text, raw) = split_name(target);
        self.target = Some(text);
        self.target_hex = raw;
    }

    /// The symlink's target or hard link's first name, exactly.
    pub fn target_bytes(&self) -> Option<&[u8]> {
        match (&self.target_hex, &self.target) {
            (Some(raw), _) => Some(&raw.0),
            (None, Some(text)) => Some(text.as_bytes()),
            (None, None) => None,
        }
    }

    /// Written by a build that recorded no times or owners and kept
    /// names that are not UTF-8 lossily (manifest format 1): a restore
    /// matches such an entry's name and target loosely.
    pub fn is_legacy(&self) -> bool {
        self.mtime.is_none()
    }
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
    /// pg_dump's `--format`: `custom` or `directory`.
    pub format: String,
    /// The exported snapshot the dump ran on, when the server allowed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The server's `statement_timestamp()` of the statement that took that
    /// snapshot (server clock; `data_time` is on Lifeboat's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_snapshot_time: Option<String>,
    /// A `directory` dump's files in the artifact's order (as pg_dump
    /// closed them, `toc.dat` last).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<DumpFile>,
}

/// One file of a directory-format dump, and where its zstd frame lies in
/// the artifact (`resource/postgres/packed`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DumpFile {
    /// The file's name in the dump folder (`toc.dat`, `3364.dat`, ...).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Where its frame starts in the artifact.
    pub offset: u64,
    /// The frame's length in the artifact.
    pub length: u64,
}

impl Manifest {
    /// The layout new points are written in: 2 names the point.
    pub const FORMAT: u32 = 2;
    /// A `postgres` directory dump's layout: 2 and the dump's files
    /// (`PostgresInfo::files`).
    pub const FORMAT_DUMP_FILES: u32 = 3;
    /// The newest layout this build reads: a newer one is refused as
    /// unreadable here, not as damage (the point may be whole).
    pub const NEWEST: u32 = Self::FORMAT_DUMP_FILES;

    /// Refuses a manifest written in a layout newer than this build reads,
    /// saying so: not damage (the point may be whole), and never marked as
    /// such.
    fn readable_layout(bytes: &[u8], location: &str) -> Result<(), ResourceError> {
        #[derive(Deserialize)]
        struct Layout {
            format: u32,
        }
        match serde_json::from_slice::<Layout>(bytes) {
            Ok(Layout { format }) if format > Self::NEWEST => Err(ResourceError::Other(format!(
                "manifest {location} is in layout {format}, newer than this Lifeboat reads (up to {}): upgrade Lifeboat to restore or verify it",
                Self::NEWEST
            ))),
            _ => Ok(()),
        }
    }

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
            // vault's fault, not damage (unless decryption found damage).
            .map_err(|source| crate::vault::VaultError::reading(location.clone(), source))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Self::readable_layout(&bytes, &location)?;
        let manifest = serde_json::from_slice(&bytes).map_err(|e| ResourceError::Corrupt {
            location,
            detail: format!("manifest is not valid: {e}"),
        })?;
        Ok((manifest, sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_layout_is_refused_as_unreadable_not_as_damage() {
        let newer = format!(r#"{{"format": {}, "kind": "path"}}"#, Manifest::NEWEST + 1);
        let err = Manifest::readable_layout(newer.as_bytes(), "file:///v/m.json").unwrap_err();
        assert!(
            matches!(&err, ResourceError::Other(m) if m.contains("upgrade Lifeboat")),
            "{err:?}"
        );
        for ok in [
            format!(r#"{{"format": {}}}"#, Manifest::NEWEST),
            r#"{"format": 1}"#.to_string(),
            "not json".to_string(),
        ] {
            assert!(
                Manifest::readable_layout(ok.as_bytes(), "x").is_ok(),
                "{ok}"
            );
        }
    }
}
