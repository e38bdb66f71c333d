//! `s3://bucket/prefix` vaults, through the real `aws-sdk-s3` client.
//!
//! Puts stream in bounded memory: small objects go in one PutObject, larger
//! ones as a multipart upload whose parts are uploaded several at a time
//! while the next one is read (aborted on any error or cancellation, so a
//! failed put never leaves a visible object nor stored parts). Every part
//! carries a SHA-256 checksum that S3 verifies, and objects are encrypted at
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockEnabled, ObjectLockMode,
    ObjectLockRetention, ObjectLockRetentionMode, ServerSideEncryption,
};
use aws_sdk_s3::Client;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::{ObjectInfo, ObjectReader, VaultError};
use crate::plan::{AwsSpec, LockMode, ObjectLock};
use crate::time::{now_ms, rfc3339, Millis};

/// Part size of multipart uploads; also the largest single PutObject.
/// With S3's 10,000 parts, objects up to 78 GiB.
const PART: usize = 8 << 20;
/// Parts uploaded at once. One S3 request stream tops out well below what a
/// host can send (latency-bound on real S3), so throughput comes from
/// parallel parts, as in the AWS CLI (10) and rclone (4). Each part in
/// flight holds its buffer: a put holds at most `PART × (PARALLEL_PARTS + 1)`
/// = 72 MiB (the parts in flight and the one being read).
const PARALLEL_PARTS: usize = 8;
/// S3's limit on the parts of one multipart upload.
const MAX_PARTS: usize = 10_000;
/// CopyObject copies at most 5 GiB; larger objects are copied by parts.
const COPY_OBJECT_MAX: u64 = 5 << 30;
/// Part size of multipart copies: parts are copied by S3 (no memory here),
/// so large parts mean fewer requests; 512 MiB copies a 5 GiB object in 11.
const COPY_PART: u64 = 512 << 20;
/// Ranges copied at once: each is a server-side job of seconds, and a few
/// in parallel cut a large cross-region copy's time without S3 throttling.
const PARALLEL_COPIES: usize = 8;

#[derive(Debug, Clone)]
pub struct S3Vault {
    client: Client,
    bucket: String,
    prefix: String,
    kms_key: Option<String>,
    /// The Object Lock retention every object written here gets.
    lock: Option<ObjectLock>,
    /// The bucket keeps versions (Object Lock turns versioning on): a
    /// delete removes every version of the key, not only the current one.
    versioned: bool,
    /// Set once the bucket's Object Lock configuration was found enabled;
    /// shared by the clones of this vault (parallel copies ask once).
    lock_checked: Arc<tokio::sync::OnceCell<()>>,
    /// Copies into this vault of objects larger than this are multipart.
    copy_threshold: u64,
    copy_part: u64,
}

/// The retention one write asks for: its mode, and until when.
#[derive(Debug, Clone, Copy)]
struct WriteLock {
    mode: LockMode,
    until: Millis,
}

impl WriteLock {
    fn mode(&self) -> ObjectLockMode {
        match self.mode {
            LockMode::Governance => ObjectLockMode::Governance,
            LockMode::Compliance => ObjectLockMode::Compliance,
        }
    }

    fn retention_mode(&self) -> ObjectLockRetentionMode {
        match self.mode {
            LockMode::Governance => ObjectLockRetentionMode::Governance,
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
        }
    }

    fn date(&self) -> DateTime {
        DateTime::from_millis(self.until)
    }
}

/// Clients are cached per region and endpoint settings: building one reads
/// the credential chain, which should happen once, not per object.
fn clients() -> &'static Mutex<HashMap<String, Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// An S3 client for `region`, on the shared SDK configuration of
/// [`crate::aws::sdk_config`] (credential chain, timeouts, retry mode).
pub async fn client(region: &str, aws: Option<&AwsSpec>) -> Client {
    let endpoint = aws.and_then(|a| a.endpoint_url.clone());
    let profile = aws.and_then(|a| a.profile.clone());
    let env_endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok();
    // A custom endpoint (S3-compatible store, test server) implies path-style.
    let path_style = aws
        .and_then(|a| a.force_path_style)
        .unwrap_or(endpoint.is_some() || env_endpoint.is_some());
    let key = format!("{region}|{endpoint:?}|{profile:?}|{env_endpoint:?}|{path_style}");
    if let Some(c) = clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
    {
        return c.clone();
    }
    let shared = crate::aws::sdk_config(region, aws).await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(path_style)
        .build();
    let c = Client::from_conf(config);
    clients()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, c.clone());
    c
}

fn remote<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    location: String,
    e: aws_sdk_s3::error::SdkError<E>,
) -> VaultError {
    let (code, message) = match e.as_service_error() {
        Some(s) => (
            s.code().unwrap_or("Unknown").to_string(),
            s.message().unwrap_or("").to_string(),
        ),
        None => ("Transport".to_string(), aws_smithy_error_text(&e)),
    };
    let retryable = matches!(
        code.as_str(),
        "Transport" | "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout"
    );
    if matches!(code.as_str(), "NoSuchKey" | "NotFound") {
        return VaultError::NotFound { location };
    }
    VaultError::Remote {
        op,
        location,
        code,
        message,
        retryable,
    }
}

fn aws_smithy_error_text<E: std::error::Error + Send + Sync + 'static>(
    e: &aws_sdk_s3::error::SdkError<E>,
) -> String {
    // DisplayErrorContext prints the whole chain (e.g. connection refused).
    format!("{}", aws_sdk_s3::error::DisplayErrorContext(e))
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
            versioned: false,
            lock_checked: Arc::new(tokio::sync::OnceCell::new()),
            copy_threshold: COPY_OBJECT_MAX,
            copy_part: COPY_PART,
        }
    }

    /// Writes into this vault get `lock` (a region's `object_lock`), and
    /// deletes remove every version of a key.
    pub fn with_object_lock(mut self, lock: Option<ObjectLock>) -> S3Vault {
        self.versioned |= lock.is_some();
        self.lock = lock;
        self
    }

    /// This vault without the lock on writes, for scratch objects that
    /// must be deletable (a drill's restore); deletes still remove every
    /// version.
    pub(crate) fn without_lock(&self) -> S3Vault {
        S3Vault {
            lock: None,
            ..self.clone()
        }
    }

    /// Deletes remove every version of a key (and its delete markers),
    /// whatever this vault's lock: for objects written while the region
    /// had an object lock.
    pub fn with_versioned_deletes(mut self) -> S3Vault {
        self.versioned = true;
        self
    }

    /// The lock of a write starting now.
    fn write_lock(&self) -> Option<WriteLock> {
        self.lock.map(|l| WriteLock {
            mode: l.mode,
            until: l.until(now_ms()),
        })
    }

    /// Before the first locked write: the bucket must have Object Lock
    /// enabled, or S3 refuses (or a store ignores) the retention. Asked
    /// once per vault (GetObjectLockConfiguration), success remembered.
    pub async fn check_object_lock(&self) -> Result<(), VaultError> {
        if self.lock.is_none() {
            return Ok(());
        }
        self.lock_checked
            .get_or_try_init(|| self.fetch_lock_configuration())
            .await
            .map(|_| ())
    }

    async fn fetch_lock_configuration(&self) -> Result<(), VaultError> {
        let location = self.location("");
        let not_enabled = |code: &str| {
            VaultError::Remote {
            op: "GetObjectLockConfiguration",
            location: location.clone(),
            code: code.to_string(),
            message: format!(
                "bucket {} has no Object Lock enabled, but the region's object_lock asks for locked objects; create the bucket with Object Lock (ObjectLockEnabledForBucket: `aws s3api create-bucket --object-lock-enabled-for-bucket`), or enable it on the versioned bucket (`aws s3api put-object-lock-configuration`)",
                self.bucket
            ),
            retryable: false,
        }
        };
        let out = match self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or("")
                    .to_string();
                if code == "ObjectLockConfigurationNotFoundError" {
                    return Err(not_enabled(&code));
                }
                return Err(remote("GetObjectLockConfiguration", location, e));
            }
        };
        let config = out.object_lock_configuration();
        if config.and_then(|c| c.object_lock_enabled()) != Some(&ObjectLockEnabled::Enabled) {
            return Err(not_enabled("ObjectLockNotEnabled"));
        }
        if let Some(d) = config
            .and_then(|c| c.rule())
            .and_then(|r| r.default_retention())
        {
            tracing::warn!(
                bucket = %self.bucket,
                mode = ?d.mode(),
                days = ?d.days(),
                years = ?d.years(),
                "the bucket has a default retention: objects Lifeboat writes without a lock (the scratch copies of a drill of an s3 resource) get it too and cannot be deleted until it expires; Lifeboat locks point objects itself, the default rule is not needed"
            );
        }
        Ok(())
    }

    /// After a multipart upload (or copy): the object must hold the lock
    /// CreateMultipartUpload asked for. Some stores complete the upload
    /// without it (moto does); then it is set on the new version with
    /// PutObjectRetention, before the write counts as done.
    async fn confirm_lock(
        &self,
        object: &str,
        location: &str,
        version: Option<String>,
        lock: WriteLock,
    ) -> Result<(), VaultError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(object)
            .set_version_id(version.clone())
            .send()
            .await
            .map_err(|e| remote("HeadObject", location.to_string(), e))?;
        let held = head.object_lock_mode() == Some(&lock.mode())
            && head
                .object_lock_retain_until_date()
                .and_then(|d| d.to_millis().ok())
                .is_some_and(|until| until >= lock.until);
        if held {
            return Ok(());
        }
        tracing::info!(
            %location,
            until = %rfc3339(lock.until),
            "the multipart upload came out without its object lock; setting it with PutObjectRetention"
        );
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(object)
            .set_version_id(version)
            .retention(
                ObjectLockRetention::builder()
                    .mode(lock.retention_mode())
                    .retain_until_date(lock.date())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| remote("PutObjectRetention", location.to_string(), e))?;
        Ok(())
    }

    /// Copies into this vault of objects over `threshold` bytes use
    /// UploadPartCopy ranges of `part_size` (at least 5 MiB, S3's minimum).
    /// For tests, to exercise the multipart copy on small objects.
    #[doc(hidden)]
    pub fn with_multipart_copy(mut self, threshold: u64, part_size: u64) -> S3Vault {
        self.copy_threshold = threshold.min(COPY_OBJECT_MAX);
        self.copy_part = part_size.max(5 << 20);
        self
    }

    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    pub fn location(&self, key: &str) -> String {
        if key.is_empty() {
            format!("s3://{}/{}", self.bucket, self.prefix)
        } else {
            format!("s3://{}/{}", self.bucket, self.object_key(key))
        }
    }

    fn encryption(&self) -> ServerSideEncryption {
        if self.kms_key.is_some() {
            ServerSideEncryption::AwsKms
        } else {
            ServerSideEncryption::Aes256
        }
    }

    /// Stores the whole stream under `key`. Small objects go in one
    /// PutObject; larger ones as a multipart upload of [`PART`]-sized parts,
    /// up to [`PARALLEL_PARTS`] of them in flight while the next one is read,
    /// so memory stays within `PART × (PARALLEL_PARTS + 1)` whatever the size.
    pub async fn put(
        &self,
        key: &str,
        mut reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        super::check_key(key)?;
        self.check_object_lock().await?;
        let location = self.location(key);
        let object = self.object_key(key);
        let first = read_part(&mut reader)
            .await
            .map_err(|e| read_error(&location, e))?;
        // The lock is dated from the start of the write.
        let lock = self.write_lock();
        if first.len() < PART {
            let size = first.len() as u64;
            // The SHA-256 checksum is also the integrity header S3 requires
            // of a PutObject that sets a retention.
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&object)
                .body(ByteStream::from(first))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .server_side_encryption(self.encryption())
                .set_ssekms_key_id(self.kms_key.clone())
                .set_object_lock_mode(lock.map(|l| l.mode()))
                .set_object_lock_retain_until_date(lock.map(|l| l.date()))
                .send()
                .await
                .map_err(|e| remote("PutObject", location.clone(), e))?;
            return Ok(size);
        }
        let upload = Multipart::create(self, object.clone(), location.clone(), lock).await?;
        let mut uploads = JoinSet::new();
        let parts = upload_parts(&upload, &mut uploads, first, &mut reader).await;
        if parts.is_err() {
            // No part may land after the abort: stop them and wait.
            uploads.shutdown().await;
        }
        let size = parts.as_ref().map(|(_, size)| *size).unwrap_or(0);
        let version = upload.finish(parts.map(|(parts, _)| parts)).await?;
        if let Some(lock) = lock {
            self.confirm_lock(&object, &location, version, lock).await?;
        }
        Ok(size)
    }

    pub async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        super::check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| remote("GetObject", self.location(key), e))?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    pub async fn size(&self, key: &str) -> Result<u64, VaultError> {
        super::check_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| remote("HeadObject", self.location(key), e))?;
        Ok(out.content_length().unwrap_or(0).max(0) as u64)
    }

    /// Server-side copy into another S3 vault (any region): one CopyObject
    /// up to the destination's multipart-copy threshold (CopyObject's limit
    /// is 5 GiB), else a multipart upload of UploadPartCopy ranges.
    pub async fn copy_within_s3(
        &self,
        key: &str,
        dst: &S3Vault,
        dst_key: &str,
    ) -> Result<u64, VaultError> {
        super::check_key(key)?;
        super::check_key(dst_key)?;
        dst.check_object_lock().await?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| remote("HeadObject", self.location(key), e))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        // Keys are made of plan/resource names and timestamps: no character
        // needs URL-encoding in the copy source.
        let source = CopySource {
            path: format!("{}/{}", self.bucket, self.object_key(key)),
            // Every part must come from the same version of the source.
            etag: head.e_tag().map(String::from),
        };
        if size > dst.copy_threshold {
            dst.copy_parts(&source, size, dst_key).await?;
        } else {
            // A copy never inherits its source's retention: the
            // destination's lock is asked for explicitly.
            let lock = dst.write_lock();
            dst.client
                .copy_object()
                .bucket(&dst.bucket)
                .key(dst.object_key(dst_key))
                .copy_source(&source.path)
                .set_copy_source_if_match(source.etag.clone())
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .server_side_encryption(dst.encryption())
                .set_ssekms_key_id(dst.kms_key.clone())
                .set_object_lock_mode(lock.map(|l| l.mode()))
                .set_object_lock_retain_until_date(lock.map(|l| l.date()))
                .send()
                .await
                .map_err(|e| remote("CopyObject", dst.location(dst_key), e))?;
        }
        dst.size(dst_key).await
    }

    /// Multipart copy of `size` bytes of `source` into `dst_key` of this
    /// vault, [`PARALLEL_COPIES`] ranges at a time. S3 checksums every part
    /// (SHA-256, set on the upload) and the parts are completed in order.
    async fn copy_parts(
        &self,
        source: &CopySource,
        size: u64,
        dst_key: &str,
    ) -> Result<(), VaultError> {
        // Parts grow past `copy_part` only for objects that would otherwise
        // need more than S3's 10,000 parts (over 5 TB at 512 MiB).
        let part = self.copy_part.max(size.div_ceil(MAX_PARTS as u64));
        let lock = self.write_lock();
        let (object, location) = (self.object_key(dst_key), self.location(dst_key));
        let upload = Multipart::create(self, object.clone(), location.clone(), lock).await?;
        let mut copies = JoinSet::new();
        let parts = async {
            let mut parts = Vec::new();
            let mut start = 0u64;
            let mut number = 0i32;
            while start < size {
                let end = (start + part).min(size);
                number += 1;
                while copies.len() >= PARALLEL_COPIES {
                    parts.push(joined(copies.join_next().await, &upload.target.location)?);
                }
                copies.spawn(copy_part(
                    upload.target.clone(),
                    source.clone(),
                    number,
                    format!("bytes={start}-{}", end - 1),
                ));
                start = end;
            }
            while let Some(done) = copies.join_next().await {
                parts.push(joined(Some(done), &upload.target.location)?);
            }
            Ok(parts)
        }
        .await;
        if parts.is_err() {
            copies.shutdown().await;
        }
        let version = upload.finish(parts).await?;
        if let Some(lock) = lock {
            self.confirm_lock(&object, &location, version, lock).await?;
        }
        Ok(())
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        let full = self.object_key(prefix);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| remote("ListObjectsV2", self.location(prefix), e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectInfo {
                        key: k.strip_prefix(&strip).unwrap_or(k).to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        super::check_key(key)?;
        if self.versioned {
            let object = self.object_key(key);
            return self
                .delete_versions(&object, true, self.location(key))
                .await
                .map(|_| ());
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| remote("DeleteObject", self.location(key), e))?;
        Ok(())
    }
}

fn read_error(location: &str, e: std::io::Error) -> VaultError {
    VaultError::Io {
        op: "read source",
        location: location.to_string(),
        source: e,
    }
}

/// Reads one part: exactly [`PART`] bytes, fewer only at the end of the
/// stream. The buffer is allocated at its final size and never grows.
async fn read_part(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; PART];
    let mut filled = 0;
    while filled < PART {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// What every part request of one multipart upload names.
struct UploadTarget {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    /// The object's URL, for error messages.
    location: String,
}

/// An open multipart upload. It ends completed or aborted: [`Multipart::finish`]
/// aborts it on any error, and dropping it unfinished (the put's future
/// cancelled, e.g. a backup past its completion window) aborts it in the
/// background, so no upload is left holding stored, billed parts.
struct Multipart {
    target: Arc<UploadTarget>,
    finished: bool,
}

impl Multipart {
    async fn create(
        vault: &S3Vault,
        key: String,
        location: String,
        lock: Option<WriteLock>,
    ) -> Result<Multipart, VaultError> {
        let out = vault
            .client
            .create_multipart_upload()
            .bucket(&vault.bucket)
            .key(&key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(vault.encryption())
            .set_ssekms_key_id(vault.kms_key.clone())
            .set_object_lock_mode(lock.map(|l| l.mode()))
            .set_object_lock_retain_until_date(lock.map(|l| l.date()))
            .send()
            .await
            .map_err(|e| remote("CreateMultipartUpload", location.clone(), e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_string();
        if upload_id.is_empty() {
            return Err(VaultError::Remote {
                op: "CreateMultipartUpload",
                location,
                code: "MissingUploadId".into(),
                message: "the response has no upload id".into(),
                retryable: false,
            });
        }
        Ok(Multipart {
            target: Arc::new(UploadTarget {
                client: vault.client.clone(),
                bucket: vault.bucket.clone(),
                key,
                upload_id,
                location,
            }),
            finished: false,
        })
    }

    /// Completes the upload with `parts` (in part order), or aborts it when
    /// they failed or the completion fails. The caller must have stopped
    /// every part request first, so none lands after the abort. Returns
    /// the new object's version (versioned buckets).
    async fn finish(
        mut self,
        parts: Result<Vec<CompletedPart>, VaultError>,
    ) -> Result<Option<String>, VaultError> {
        let t = &self.target;
        let result = match parts {
            Ok(mut parts) => {
                parts.sort_by_key(|p| p.part_number());
                t.client
                    .complete_multipart_upload()
                    .bucket(&t.bucket)
                    .key(&t.key)
                    .upload_id(&t.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map(|out| out.version_id().map(String::from))
                    .map_err(|e| remote("CompleteMultipartUpload", t.location.clone(), e))
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            abort(t).await;
        }
        // Only now: cancelled before this point, Drop still aborts.
        self.finished = true;
        result
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Cancelled mid-upload: abort without blocking (no runtime means
        // the process is shutting down; S3 lifecycle rules are the backstop).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let target = self.target.clone();
            rt.spawn(async move { abort(&target).await });
        }
    }
}

async fn abort(t: &UploadTarget) {
    let aborted = t
        .client
        .abort_multipart_upload()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(&t.upload_id)
        .send()
        .await;
    if let Err(e) = aborted {
        tracing::warn!(
            location = %t.location,
            upload_id = %t.upload_id,
            error = %remote("AbortMultipartUpload", t.location.clone(), e),
            "could not abort a failed multipart upload; its parts stay stored until a lifecycle rule removes them"
        );
    }
}

type PartResult = Result<CompletedPart, VaultError>;

/// Reads `reader` part by part (after `first`), uploading up to
/// [`PARALLEL_PARTS`] at once. Returns the parts and the total size.
async fn upload_parts(
    upload: &Multipart,
    uploads: &mut JoinSet<PartResult>,
    first: Vec<u8>,
    reader: &mut (impl AsyncRead + Send + Unpin),
) -> Result<(Vec<CompletedPart>, u64), VaultError> {
    let location = &upload.target.location;
    let mut parts = Vec::new();
    let mut size = 0u64;
    let mut number = 0usize;
    let mut next = first;
    while !next.is_empty() {
        number += 1;
        if number > MAX_PARTS {
            return Err(VaultError::Remote {
                op: "UploadPart",
                location: location.clone(),
                code: "TooManyParts".into(),
                message: format!(
                    "the object is larger than S3's {MAX_PARTS} parts of {} MiB",
                    PART >> 20
                ),
                retryable: false,
            });
        }
        size += next.len() as u64;
        // Room for this part: at most PARALLEL_PARTS in flight.
        while uploads.len() >= PARALLEL_PARTS {
            parts.push(joined(uploads.join_next().await, location)?);
        }
        let n = i32::try_from(number).unwrap_or(i32::MAX);
        uploads.spawn(upload_part(upload.target.clone(), n, next));
        // Read the next part while the others upload.
        next = read_part(reader)
            .await
            .map_err(|e| read_error(location, e))?;
        // Notice a failed part now rather than at the end.
        while let Some(done) = uploads.try_join_next() {
            parts.push(joined(Some(done), location)?);
        }
    }
    while let Some(done) = uploads.join_next().await {
        parts.push(joined(Some(done), location)?);
    }
    Ok((parts, size))
}

async fn upload_part(t: Arc<UploadTarget>, number: i32, body: Vec<u8>) -> PartResult {
    let out = t
        .client
        .upload_part()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(&t.upload_id)
        .part_number(number)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| remote("UploadPart", t.location.clone(), e))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(String::from))
        .set_checksum_sha256(out.checksum_sha256().map(String::from))
        .build())
}

/// The source of a server-side copy: `bucket/key`, and its ETag when known.
#[derive(Clone)]
struct CopySource {
    path: String,
    etag: Option<String>,
}

async fn copy_part(
    t: Arc<UploadTarget>,
    source: CopySource,
    number: i32,
    range: String,
) -> PartResult {
    let out = t
        .client
        .upload_part_copy()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(&t.upload_id)
        .part_number(number)
        .copy_source(source.path)
        .set_copy_source_if_match(source.etag)
        .copy_source_range(range)
        .send()
        .await
        .map_err(|e| remote("UploadPartCopy", t.location.clone(), e))?;
    let result = out.copy_part_result();
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(result.and_then(|r| r.e_tag()).map(String::from))
        .set_checksum_sha256(result.and_then(|r| r.checksum_sha256()).map(String::from))
        .build())
}

/// The outcome of one part task; a task that panicked or was cancelled is
/// an error, never a panic of the caller.
fn joined(done: Option<Result<PartResult, tokio::task::JoinError>>, location: &str) -> PartResult {
    match done {
        Some(Ok(part)) => part,
        Some(Err(e)) => Err(VaultError::Io {
            op: "upload part",
            location: location.to_string(),
            source: std::io::Error::other(format!("the part's task failed: {e}")),
        }),
        None => Err(VaultError::Io {
            op: "upload part",
            location: location.to_string(),
            source: std::io::Error::other("no part upload was running"),
        }),
    }
}

/// An object copied by S3 itself, as the copy reported it.
#[derive(Debug, Clone)]
pub struct CopiedObject {
    /// SHA-256 of the new object, base64, computed by S3 from its bytes.
    pub sha256: Option<String>,
    /// The version of the source that was copied (versioned buckets).
    pub source_version: Option<String>,
}

/// Object-level operations for the `s3` resource kind, whose points are
/// many objects under a prefix rather than one artifact.
impl S3Vault {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket key of a vault key.
    pub(crate) fn full_key(&self, key: &str) -> String {
        self.object_key(key)
    }

    /// S3 copies `src_bucket/src_key` (any key: it is URL-encoded) into
    /// this vault at `dst_key` (a vault key, or a scratch key that keeps a
    /// source object's name), asking S3 for a SHA-256 of the new object.
    /// With `if_match`, the copy fails with PreconditionFailed if the
    /// source is no longer that ETag. An object of more than 5 GiB (its
    /// `size` as listed) is copied in parts; S3 then keeps per-part
    /// checksums only, so no SHA-256 of the whole comes back.
    pub(crate) async fn copy_in(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_key: &str,
        size: u64,
        if_match: Option<&str>,
    ) -> Result<CopiedObject, VaultError> {
        self.check_object_lock().await?;
        let source = format!(
            "{src_bucket}/{}",
            percent_encoding::utf8_percent_encode(src_key, COPY_SOURCE)
        );
        if size > self.copy_threshold {
            let source = CopySource {
                path: source,
                etag: if_match.map(String::from),
            };
            self.copy_parts(&source, size, dst_key).await?;
            return Ok(CopiedObject {
                sha256: None,
                source_version: None,
            });
        }
        let lock = self.write_lock();
        let out = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(self.object_key(dst_key))
            .copy_source(source)
            .set_copy_source_if_match(if_match.map(String::from))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(self.encryption())
            .set_ssekms_key_id(self.kms_key.clone())
            .set_object_lock_mode(lock.map(|l| l.mode()))
            .set_object_lock_retain_until_date(lock.map(|l| l.date()))
            .send()
            .await
            .map_err(|e| remote("CopyObject", format!("s3://{src_bucket}/{src_key}"), e))?;
        Ok(CopiedObject {
            sha256: out
                .copy_object_result()
                .and_then(|r| r.checksum_sha256())
                .map(String::from),
            source_version: out.copy_source_version_id().map(String::from),
        })
    }

    /// Deletes every object whose vault key starts with `prefix`, a page
    /// (up to 1,000 keys) per request; returns how many were deleted.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, VaultError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let full = self.object_key(prefix);
        if self.versioned {
            return self
                .delete_versions(&full, false, self.location(prefix))
                .await;
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
                .map_err(|e| remote("ListObjectsV2", self.location(prefix), e))?;
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
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| VaultError::Remote {
                    op: "DeleteObjects",
                    location: self.location(prefix),
                    code: "Build".into(),
                    message: e.to_string(),
                    retryable: false,
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| remote("DeleteObjects", self.location(prefix), e))?;
            if let Some(e) = out.errors().first() {
                return Err(VaultError::Remote {
                    op: "DeleteObjects",
                    location: format!("s3://{}/{}", self.bucket, e.key().unwrap_or("?")),
                    code: e.code().unwrap_or("Unknown").to_string(),
                    message: e.message().unwrap_or("").to_string(),
                    retryable: false,
                });
            }
            deleted += n;
        }
    }
}

/// One version (or delete marker) of a key in a versioned bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VersionRef {
    key: String,
    version_id: String,
}

/// Deletes in a versioned bucket (an Object Lock bucket): a plain delete
/// only adds a delete marker and the bytes stay, billed. These delete
/// every version by id, then the delete markers. A version still under
/// its lock cannot be deleted (S3 answers AccessDenied); Lifeboat never
/// asks to bypass a governance lock.
impl S3Vault {
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
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let build_error = |e: aws_sdk_s3::error::BuildError| VaultError::Remote {
            op: "DeleteObjects",
            location: location.to_string(),
            code: "Build".into(),
            message: e.to_string(),
            retryable: false,
        };
        for batch in versions.chunks(1000) {
            let ids = batch
                .iter()
                .map(|v| {
                    ObjectIdentifier::builder()
                        .key(&v.key)
                        .version_id(&v.version_id)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(build_error)?;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(build_error)?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| remote("DeleteObjects", location.to_string(), e))?;
            if let Some(e) = out.errors().first() {
                let code = e.code().unwrap_or("Unknown").to_string();
                let more = match out.errors().len() {
                    1 => String::new(),
                    n => format!(" ({} more versions not deleted)", n - 1),
                };
                let why = if code == "AccessDenied" {
                    " (the version is under an object lock that has not expired, or s3:DeleteObjectVersion is not allowed)"
                } else {
                    ""
                };
                return Err(VaultError::Remote {
                    op: "DeleteObjects",
                    location: format!(
                        "s3://{}/{} version {}",
                        self.bucket,
                        e.key().unwrap_or("?"),
                        e.version_id().unwrap_or("?")
                    ),
                    code,
                    message: format!("{}{why}{more}", e.message().unwrap_or("")),
                    retryable: false,
                });
            }
        }
        Ok(())
    }
}

/// What a copy source must escape: everything but unreserved characters
/// and `/`, which separates the key's parts.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
