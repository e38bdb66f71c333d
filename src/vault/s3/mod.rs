//! `s3://bucket/prefix` vaults, through the real `aws-sdk-s3` client.
//!
//! Puts stream in bounded memory: small objects go in one PutObject, larger
//! ones as a multipart upload whose parts are uploaded several at a time
//! while the next one is read (aborted on any error or cancellation, so a
//! failed put never leaves a visible object nor stored parts). Every part
//! carries a CRC32C checksum that S3 verifies (server-side copies a
//! SHA-256, which S3 computes), and objects are encrypted at
//! rest (SSE-S3, or SSE-KMS with the region's key). A copy between two S3
//! vaults is done by S3 itself (CopyObject, or UploadPartCopy ranges above
//! CopyObject's 5 GiB limit); bytes never pass through Lifeboat.
//!
//! A vault of a region with `object_lock` writes every object with an S3
//! Object Lock retention (mode, and until now + `retain`), after checking
//! once that the bucket has Object Lock enabled. Such a bucket keeps
//! versions, so deleting a key there deletes every version of it (and its
//! delete markers): a plain delete would only hide the bytes. Versions
//! still locked cannot be deleted, and Lifeboat never asks to bypass a
//! governance lock.
//!
//! This module holds the [`S3Vault`] type and how vault keys map to bucket
//! keys; each concern is its own module, adding its methods to `S3Vault`:
//!
//! - `client`: the cached SDK clients, one per region and endpoint settings;
//! - `error`: what an S3 answer means as a
//!   [`VaultError`](crate::vault::VaultError) (missing, retryable,
//!   permanent);
//! - `read`: get, size, list;
//! - `upload`: put, in one PutObject or as a streamed multipart upload;
//! - `multipart`: an open multipart upload, its parts in flight, and its
//!   completion or abort (shared by `upload` and `copy`);
//! - `copy`: server-side copies, between vaults and into a vault from any
//!   bucket (the `s3` resource kind);
//! - `lock`: Object Lock checks and the retention of each write;
//! - `delete`: plain and versioned deletes, of a key or a prefix.

mod client;
mod copy;
mod delete;
mod error;
mod lock;
mod multipart;
mod read;
mod upload;

use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;

use crate::plan::ObjectLock;

pub use client::client;

/// An `s3://bucket/prefix` vault. Cloning is cheap (the SDK client is
/// shared), and clones share whether the bucket's Object Lock was checked.
#[derive(Debug, Clone)]
pub struct S3Vault {
    client: Client,
    bucket: String,
    /// The vault's folder in the bucket, without leading or trailing `/`.
    prefix: String,
    kms_key: Option<String>,
    /// The Object Lock retention every object written here gets.
    lock: Option<ObjectLock>,
    /// Set once the bucket's Object Lock configuration was found enabled;
    /// shared by the clones of this vault (parallel copies ask once).
    lock_checked: std::sync::Arc<tokio::sync::OnceCell<()>>,
    /// What a delete removes: the current version, or every version.
    deletes: delete::Deletes,
    /// When and in what ranges copies into this vault are multipart.
    copy_parts: copy::CopyParts,
}

impl S3Vault {
    /// `rest` is what follows `s3://`: `bucket[/prefix]`.
    pub fn new(client: Client, rest: &str, kms_key: Option<String>) -> S3Vault {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Vault {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            kms_key,
            lock: None,
            lock_checked: Default::default(),
            deletes: delete::Deletes::Current,
            copy_parts: copy::CopyParts::default(),
        }
    }

    /// The SDK client this vault uses (its region and endpoint).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket key of a vault key.
    pub(crate) fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// The URL of an object (of the vault itself for an empty key).
    pub fn location(&self, key: &str) -> String {
        if key.is_empty() {
            format!("s3://{}/{}", self.bucket, self.prefix)
        } else {
            format!("s3://{}/{}", self.bucket, self.full_key(key))
        }
    }

    /// The encryption at rest every write asks for.
    fn encryption(&self) -> ServerSideEncryption {
        if self.kms_key.is_some() {
            ServerSideEncryption::AwsKms
        } else {
            ServerSideEncryption::Aes256
        }
    }
}
