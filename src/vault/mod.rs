//! Vaults: where a region keeps artifact-based recovery points.
//!
//! A vault stores opaque objects under `/`-separated keys: streaming put and
//! get, copy to another vault, list, delete. Writes are atomic: an object is
//! either absent or whole, never half-written under its final key. The
//! backend is chosen from the URL scheme in [`Vault::open`]; schemes are
//! a closed set, so this is an enum rather than a trait object (no boxed
//! futures on every call, exhaustive matches over the backends).
//!
//! `file` holds the `file://` backend, `s3/` the `s3://` one (one module
//! per concern), `crypt` the client-side encryption a region's
//! `encryption` puts over either, and `hashing` the readers and writers
//! that hash data in the same pass that moves it.

mod crypt;
mod file;
mod hashing;
mod s3;

use std::pin::Pin;

use tokio::io::AsyncRead;

pub use crypt::{write_key_file, EncryptedVault, Key};
pub use file::FileVault;
pub use hashing::{HashingReader, HashingWriter};
pub use s3::{client as s3_client, S3Vault};

/// A readable object stream.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// A failed vault operation; each names the object's URL.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The object does not exist.
    #[error("{location}: no such object")]
    NotFound {
        /// The object's URL.
        location: String,
    },
    /// A local I/O failure: the file system, or the stream being stored.
    #[error("{location}: {op} failed: {source}")]
    Io {
        /// The step that failed (`write`, `list`, `read source`...).
        op: &'static str,
        /// The object's URL (the vault's, for a listing).
        location: String,
        /// The I/O error; its kind decides [`VaultError::is_retryable`].
        #[source]
        source: std::io::Error,
    },
    /// A vault URL with no backend.
    #[error("invalid vault URL `{0}`: expected file://PATH or s3://BUCKET/PREFIX")]
    InvalidUrl(String),
    /// A storage service refused or failed a request.
    #[error("{location}: {op} failed: {code}: {message}")]
    Remote {
        /// The service's operation (PutObject, DeleteObjects...).
        op: &'static str,
        /// The object's URL.
        location: String,
        /// The service's error code (AccessDenied, NoSuchBucket, SlowDown...).
        code: String,
        /// The service's own explanation.
        message: String,
        /// A transient fault (throttling, network), not a refusal.
        retryable: bool,
    },
    /// A key that is not relative, or has an empty, `.` or `..` segment.
    #[error("invalid object key `{0}`")]
    InvalidKey(String),
    /// An encrypted region's key cannot be loaded, or is not the key an
    /// object was encrypted with: a setting to fix, not damage.
    #[error("{0}")]
    Key(String),
    /// An encrypted object that does not authenticate (altered, cut
    /// short): a definitive finding about its data.
    #[error("{location}: {detail}")]
    Corrupt {
        /// The object's URL.
        location: String,
        /// What failed.
        detail: String,
    },
}

impl VaultError {
    /// Whether trying again may succeed (a transient fault), as opposed to a
    /// permanent one (missing object, bad URL, permission denied).
    pub fn is_retryable(&self) -> bool {
        match self {
            VaultError::Remote { retryable, .. } => *retryable,
            VaultError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }

    /// The error of a read of the object at `location` that failed half-way:
    /// [`VaultError::Corrupt`] when decryption found the data altered or cut
    /// short, else the I/O error (which says nothing of the bytes not read).
    pub fn reading(location: String, source: std::io::Error) -> VaultError {
        match crypt::damage(&source) {
            Some(detail) => VaultError::Corrupt { location, detail },
            None => VaultError::Io {
                op: "read",
                location,
                source,
            },
        }
    }
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The vault key (relative to the vault's root or prefix).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written, as the store says (file mtime,
    /// S3 `LastModified`), in milliseconds since the epoch.
    pub modified: Option<crate::time::Millis>,
}

/// What a copy between vaults established.
#[derive(Debug, Clone)]
pub struct CopyOutcome {
    /// Bytes in the copy.
    pub size: u64,
    /// SHA-256 of the bytes that went through Lifeboat (hex); `None` for a
    /// server-side copy, which the destination verified itself.
    pub sha256: Option<String>,
}

/// A region's vault, on one of the backends.
#[derive(Debug, Clone)]
pub enum Vault {
    /// `file://PATH`: files under a folder.
    File(FileVault),
    /// `s3://BUCKET/PREFIX`: objects in a bucket.
    S3(S3Vault),
    /// Either, its objects encrypted with the region's key (`encryption`).
    Encrypted(EncryptedVault),
}

/// Where a region's vault is and how to reach it.
#[derive(Debug, Clone, Copy)]
pub struct VaultTarget<'a> {
    /// `file://PATH` or `s3://BUCKET/PREFIX`.
    pub url: &'a str,
    /// The AWS region of an `s3://` vault (the plan's region name).
    pub region: &'a str,
    /// Endpoint and profile settings of an `s3://` vault.
    pub aws: Option<&'a crate::plan::AwsSpec>,
    /// The KMS key objects are encrypted with (`s3://`; else SSE-S3).
    pub kms_key: Option<&'a str>,
    /// S3 Object Lock on every object written (`s3://` vaults only).
    pub object_lock: Option<crate::plan::ObjectLock>,
}

impl Vault {
    /// A `file://` vault (no network, no credentials).
    pub fn from_url(url: &str) -> Result<Vault, VaultError> {
        match url.strip_prefix("file://") {
            Some(path) if !path.is_empty() => Ok(Vault::File(FileVault::new(path.into()))),
            _ => Err(VaultError::InvalidUrl(url.into())),
        }
    }

    /// The one place a vault URL becomes a backend.
    pub async fn open(t: VaultTarget<'_>) -> Result<Vault, VaultError> {
        if let Some(rest) = t.url.strip_prefix("s3://") {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(VaultError::InvalidUrl(t.url.into()));
            }
            let client = s3::client(t.region, t.aws).await;
            Ok(Vault::S3(
                S3Vault::new(client, rest, t.kms_key.map(String::from))
                    .with_object_lock(t.object_lock),
            ))
        } else if t.object_lock.is_some() {
            // Validation refuses this; never write unlocked what was
            // meant to be locked.
            Err(VaultError::InvalidUrl(format!(
                "{} (object_lock needs an s3:// vault)",
                t.url
            )))
        } else {
            Vault::from_url(t.url)
        }
    }

    /// The same vault, every object encrypted with `key` (see `crypt`).
    pub fn encrypted(self, key: std::sync::Arc<Key>) -> Vault {
        Vault::Encrypted(EncryptedVault::new(self, key))
    }

    /// The vault that stores the bytes: itself, or the store beneath an
    /// encrypted vault (which holds ciphertext).
    pub fn store(&self) -> std::borrow::Cow<'_, Vault> {
        match self {
            Vault::Encrypted(e) => std::borrow::Cow::Owned(e.store()),
            other => std::borrow::Cow::Borrowed(other),
        }
    }

    /// Whether writes can start: for a vault with an object lock, that its
    /// bucket has Object Lock enabled (asked once per vault).
    pub async fn check_writable(&self) -> Result<(), VaultError> {
        match self {
            Vault::File(_) => Ok(()),
            Vault::S3(v) => v.check_object_lock().await,
            Vault::Encrypted(e) => e.check_writable().await,
        }
    }

    /// Deletes remove every version of a key: for objects written while
    /// the region had an object lock (a versioned bucket), even if the
    /// plan no longer has one.
    pub fn with_versioned_deletes(self) -> Vault {
        match self {
            Vault::S3(v) => Vault::S3(v.with_versioned_deletes()),
            Vault::Encrypted(e) => Vault::Encrypted(e.with_versioned_deletes()),
            other => other,
        }
    }

    /// The URL of an object, as recorded in the catalog and shown to users.
    pub fn location(&self, key: &str) -> String {
        match self {
            Vault::File(v) => v.location(key),
            Vault::S3(v) => v.location(key),
            Vault::Encrypted(e) => e.location(key),
        }
    }

    /// Stores the whole stream under `key`, atomically. Returns the size.
    pub async fn put(
        &self,
        key: &str,
        reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        match self {
            Vault::File(v) => v.put(key, reader).await,
            Vault::S3(v) => v.put(key, reader).await,
            Vault::Encrypted(e) => e.put(key, reader).await,
        }
    }

    /// The object's bytes, streamed (decrypted, in an encrypted vault: a
    /// read error then may be damage, see [`VaultError::reading`]).
    pub async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        match self {
            Vault::File(v) => v.get(key).await,
            Vault::S3(v) => v.get(key).await,
            Vault::Encrypted(e) => e.get(key).await,
        }
    }

    /// The object's size in bytes (of its plaintext, in an encrypted vault).
    pub async fn size(&self, key: &str) -> Result<u64, VaultError> {
        match self {
            Vault::File(v) => v.size(key).await,
            Vault::S3(v) => v.size(key).await,
            Vault::Encrypted(e) => e.size(key).await,
        }
    }

    /// Copies an object into another vault (possibly another region):
    /// server-side between two S3 vaults (encrypted with one key, or not at
    /// all), else streamed and hashed — decrypted and encrypted again on
    /// the way when the two vaults' keys differ.
    pub async fn copy_to(
        &self,
        key: &str,
        dst: &Vault,
        dst_key: &str,
    ) -> Result<CopyOutcome, VaultError> {
        match (self, dst) {
            (Vault::S3(src), Vault::S3(d)) => {
                let size = src.copy_within_s3(key, d, dst_key).await?;
                return Ok(CopyOutcome { size, sha256: None });
            }
            (Vault::Encrypted(src), Vault::Encrypted(d)) if src.same_key(d) => {
                if let Some(size) = src.copy_within_s3(key, d, dst_key).await? {
                    return Ok(CopyOutcome { size, sha256: None });
                }
            }
            _ => {}
        }
        let reader = self.get(key).await?;
        let (hashing, digest) = HashingReader::new(reader);
        let size = dst.put(dst_key, hashing).await?;
        Ok(CopyOutcome {
            size,
            sha256: Some(digest.hex()),
        })
    }

    /// Every object whose key starts with `prefix`, sorted by key, with
    /// its stored size (ciphertext, in an encrypted vault: see
    /// [`Vault::with_own_sizes`]).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        match self {
            Vault::File(v) => v.list(prefix).await,
            Vault::S3(v) => v.list(prefix).await,
            Vault::Encrypted(e) => e.list(prefix).await,
        }
    }

    /// Listed objects with the sizes [`Vault::size`] gives: as listed,
    /// except in an encrypted vault, where each object's header is read
    /// (an object that does not authenticate keeps its stored size, which
    /// then matches nothing).
    pub async fn with_own_sizes(
        &self,
        mut objects: Vec<ObjectInfo>,
    ) -> Result<Vec<ObjectInfo>, VaultError> {
        if let Vault::Encrypted(e) = self {
            for o in &mut objects {
                match e.size(&o.key).await {
                    Ok(size) => o.size = size,
                    Err(VaultError::Corrupt { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(objects)
    }

    /// Deletes an object; deleting a missing object succeeds (idempotent).
    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        match self {
            Vault::File(v) => v.delete(key).await,
            Vault::S3(v) => v.delete(key).await,
            Vault::Encrypted(e) => e.delete(key).await,
        }
    }
}

/// Keys are relative, `/`-separated, with no empty, `.` or `..` segment.
pub(crate) fn check_key(key: &str) -> Result<(), VaultError> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|s| {
            !s.is_empty() && s != "." && s != ".." && !s.contains('\\') && !s.contains('\0')
        });
    if ok {
        Ok(())
    } else {
        Err(VaultError::InvalidKey(key.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_with_plain_segments() {
        for key in [
            "a",
            "plan/resource/2024-01-01T00-00-00Z.tar.zst",
            "a/.b/c..",
        ] {
            assert!(check_key(key).is_ok(), "{key}");
        }
        for key in [
            "", "/a", "a/", "a//b", ".", "a/./b", "../a", "a/..", "a\\b", "a\0b",
        ] {
            assert!(
                matches!(check_key(key), Err(VaultError::InvalidKey(k)) if k == key),
                "{key:?}"
            );
        }
    }

    #[test]
    fn only_transient_io_errors_are_retryable() {
        let io = |kind| VaultError::Io {
            op: "write",
            location: "file:///v/k".into(),
            source: std::io::Error::from(kind),
        };
        use std::io::ErrorKind::*;
        for kind in [
            Interrupted,
            TimedOut,
            WouldBlock,
            ConnectionReset,
            ConnectionAborted,
        ] {
            assert!(io(kind).is_retryable(), "{kind:?}");
        }
        for kind in [NotFound, PermissionDenied, StorageFull, InvalidData] {
            assert!(!io(kind).is_retryable(), "{kind:?}");
        }
        let missing = VaultError::NotFound {
            location: "file:///v/k".into(),
        };
        assert!(!missing.is_retryable());
    }
}
