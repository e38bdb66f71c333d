//! Deletes, of one key or of every object under a prefix (the `s3`
//! resource kind's points and scratch copies), idempotent.
//!
//! In a versioned bucket (an Object Lock bucket), a plain delete only adds
//! a delete marker and the bytes stay, billed. There every version is
//! deleted by id, then the delete markers. A version still under its lock
//! cannot be deleted (S3 answers AccessDenied); Lifeboat never asks to
//! bypass a governance lock.

use std::collections::HashSet;

use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::error::{refused, remote};
use super::S3Vault;
use crate::vault::{check_key, VaultError};

/// DeleteObjects takes at most this many keys per request.
const DELETE_BATCH: usize = 1000;

/// What a delete removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deletes {
    /// The current version: all there is in an unversioned bucket.
    Current,
    /// Every version and delete marker: for objects written under an
    /// object lock, whose bucket keeps versions.
    EveryVersion,
}

/// One version (or delete marker) of a key in a versioned bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VersionRef {
    key: String,
    version_id: String,
}

impl S3Vault {
    /// Deletes remove every version of a key (and its delete markers),
    /// whatever this vault's lock: for objects written while the region
    /// had an object lock.
    pub fn with_versioned_deletes(mut self) -> S3Vault {
        self.deletes = Deletes::EveryVersion;
        self
    }

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        check_key(key)?;
        let (object, location) = (self.full_key(key), self.location(key));
        match self.deletes {
            Deletes::EveryVersion => self
                .delete_versions(&object, true, location)
                .await
                .map(|_| ()),
            Deletes::Current => self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(object)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| remote("DeleteObject", location, e)),
        }
    }

    /// Deletes every object whose vault key starts with `prefix`, a page
    /// (up to 1,000 keys) per request; returns how many were deleted.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, VaultError> {
        let (full, location) = (self.full_key(prefix), self.location(prefix));
        if self.deletes == Deletes::EveryVersion {
            return self.delete_versions(&full, false, location).await;
        }
        let mut deleted = 0u64;
        loop {
            // Always the first page: what was deleted is gone from it.
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .send()
                .await
                .map_err(|e| remote("ListObjectsV2", location.clone(), e))?;
            let ids: Vec<ObjectIdentifier> = page
                .contents()
                .iter()
                .filter_map(|o| {
                    ObjectIdentifier::builder()
                        .set_key(o.key.clone())
                        .build()
                        .ok()
                })
                .collect();
            if ids.is_empty() {
                return Ok(deleted);
            }
            let n = ids.len() as u64;
            let out = self.delete_objects(ids, &location).await?;
            if let Some(e) = out.errors().first() {
                return Err(refused(
                    "DeleteObjects",
                    format!("s3://{}/{}", self.bucket, e.key().unwrap_or("?")),
                    e.code().unwrap_or("Unknown"),
                    e.message().unwrap_or(""),
                ));
            }
            deleted += n;
        }
    }

    /// One quiet DeleteObjects request (so the answer lists only errors).
    async fn delete_objects(
        &self,
        ids: Vec<ObjectIdentifier>,
        location: &str,
    ) -> Result<DeleteObjectsOutput, VaultError> {
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| {
                refused(
                    "DeleteObjects",
                    location.to_string(),
                    "Build",
                    e.to_string(),
                )
            })?;
        self.client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| remote("DeleteObjects", location.to_string(), e))
    }

    /// Every version and delete marker under the bucket key `prefix` (of
    /// the key `prefix` itself when `exact`), in pages of 1,000.
    async fn list_versions(
        &self,
        prefix: &str,
        exact: bool,
        location: &str,
    ) -> Result<(Vec<VersionRef>, Vec<VersionRef>), VaultError> {
        let (mut versions, mut markers) = (Vec::new(), Vec::new());
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| remote("ListObjectVersions", location.to_string(), e))?;
            let wanted = |key: Option<&str>, id: Option<&str>| match (key, id) {
                (Some(k), Some(id)) if !exact || k == prefix => Some(VersionRef {
                    key: k.to_string(),
                    version_id: id.to_string(),
                }),
                _ => None,
            };
            versions.extend(
                page.versions()
                    .iter()
                    .filter_map(|v| wanted(v.key(), v.version_id())),
            );
            markers.extend(
                page.delete_markers()
                    .iter()
                    .filter_map(|m| wanted(m.key(), m.version_id())),
            );
            if page.is_truncated() != Some(true) || page.next_key_marker().is_none() {
                return Ok((versions, markers));
            }
            key_marker = page.next_key_marker().map(String::from);
            version_marker = page.next_version_id_marker().map(String::from);
        }
    }

    /// Deletes every version of the keys under `prefix` (or of the key
    /// `prefix` when `exact`): the versions holding bytes first, then the
    /// delete markers, so a key whose locked version cannot go stays
    /// hidden behind its marker. Returns how many keys had bytes deleted.
    async fn delete_versions(
        &self,
        prefix: &str,
        exact: bool,
        location: String,
    ) -> Result<u64, VaultError> {
        let (versions, markers) = self.list_versions(prefix, exact, &location).await?;
        let keys: HashSet<&str> = versions.iter().map(|v| v.key.as_str()).collect();
        self.delete_version_batches(&versions, &location).await?;
        self.delete_version_batches(&markers, &location).await?;
        Ok(keys.len() as u64)
    }

    /// DeleteObjects by version id, 1,000 per request.
    async fn delete_version_batches(
        &self,
        versions: &[VersionRef],
        location: &str,
    ) -> Result<(), VaultError> {
        for batch in versions.chunks(DELETE_BATCH) {
            let ids = batch
                .iter()
                .map(|v| {
                    ObjectIdentifier::builder()
                        .key(&v.key)
                        .version_id(&v.version_id)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    refused(
                        "DeleteObjects",
                        location.to_string(),
                        "Build",
                        e.to_string(),
                    )
                })?;
            let out = self.delete_objects(ids, location).await?;
            if let Some(e) = out.errors().first() {
                let more = match out.errors().len() {
                    1 => String::new(),
                    n => format!(" ({} more versions not deleted)", n - 1),
                };
                let why = if e.code() == Some("AccessDenied") {
                    " (the version is under an object lock that has not expired, or s3:DeleteObjectVersion is not allowed)"
                } else {
                    ""
                };
                return Err(refused(
                    "DeleteObjects",
                    format!(
                        "s3://{}/{} version {}",
                        self.bucket,
                        e.key().unwrap_or("?"),
                        e.version_id().unwrap_or("?")
                    ),
                    e.code().unwrap_or("Unknown"),
                    format!("{}{why}{more}", e.message().unwrap_or("")),
                ));
            }
        }
        Ok(())
    }
}
