//! Vaults: where a region keeps artifact-based recovery points.
//!
//! A vault stores opaque objects under `/`-separated keys: streaming put and
//! get, copy to another vault, list, delete. Writes are atomic: an object is
//! either absent or whole, never half-written under its final key. The
//! backend is chosen from the URL scheme in [`Vault::from_url`]; schemes are
//! a closed set, so this is an enum rather than a trait object (no boxed
//! futures on every call, exhaustive matches when S3 arrives).

mod file;
mod hashing;

use std::pin::Pin;

use tokio::io::AsyncRead;

pub use file::FileVault;
pub use hashing::{HashingReader, HashingWriter};

/// A readable object stream.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{location}: no such object")]
    NotFound { location: String },
    #[error("{location}: {op} failed: {source}")]
    Io {
        op: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid vault URL `{0}`: expected file://PATH or s3://BUCKET/PREFIX")]
    InvalidUrl(String),
    #[error("vault `{0}`: S3 vaults are not supported by this build yet")]
    Unsupported(String),
    #[error("invalid object key `{0}`")]
    InvalidKey(String),
}

impl VaultError {
    /// Whether trying again may succeed (a transient fault), as opposed to a
    /// permanent one (missing object, bad URL, permission denied).
    pub fn is_retryable(&self) -> bool {
        match self {
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
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// What a copy between vaults established.
#[derive(Debug, Clone)]
pub struct CopyOutcome {
    pub size: u64,
    /// SHA-256 of the bytes that went through Lifeboat (hex).
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub enum Vault {
    File(FileVault),
}

impl Vault {
    /// The one place a vault URL becomes a backend.
    pub fn from_url(url: &str) -> Result<Vault, VaultError> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(VaultError::InvalidUrl(url.into()));
            }
            Ok(Vault::File(FileVault::new(path.into())))
        } else if url.starts_with("s3://") {
            Err(VaultError::Unsupported(url.into()))
        } else {
            Err(VaultError::InvalidUrl(url.into()))
        }
    }

    /// The URL of an object, as recorded in the catalog and shown to users.
    pub fn location(&self, key: &str) -> String {
        match self {
            Vault::File(v) => v.location(key),
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
        }
    }

    pub async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        match self {
            Vault::File(v) => v.get(key).await,
        }
    }

    pub async fn size(&self, key: &str) -> Result<u64, VaultError> {
        match self {
            Vault::File(v) => v.size(key).await,
        }
    }

    /// Copies an object into another vault (possibly another region),
    /// streaming it and hashing what passes through.
    pub async fn copy_to(
        &self,
        key: &str,
        dst: &Vault,
        dst_key: &str,
    ) -> Result<CopyOutcome, VaultError> {
        let reader = self.get(key).await?;
        let (hashing, digest) = HashingReader::new(reader);
        let size = dst.put(dst_key, hashing).await?;
        Ok(CopyOutcome {
            size,
            sha256: digest.hex(),
        })
    }

    /// Every object whose key starts with `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        match self {
            Vault::File(v) => v.list(prefix).await,
        }
    }

    /// Deletes an object; deleting a missing object succeeds (idempotent).
    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        match self {
            Vault::File(v) => v.delete(key).await,
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
