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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use aws_sdk_s3::Client;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::{ObjectInfo, ObjectReader, VaultError};
use crate::plan::AwsSpec;

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
    /// Copies into this vault of objects larger than this are multipart.
    copy_threshold: u64,
    copy_part: u64,
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
            copy_threshold: COPY_OBJECT_MAX,
            copy_part: COPY_PART,
        }
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
        let location = self.location(key);
        let object = self.object_key(key);
        let first = read_part(&mut reader)
            .await
            .map_err(|e| read_error(&location, e))?;
        if first.len() < PART {
            let size = first.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&object)
                .body(ByteStream::from(first))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .server_side_encryption(self.encryption())
                .set_ssekms_key_id(self.kms_key.clone())
                .send()
                .await
                .map_err(|e| remote("PutObject", location.clone(), e))?;
            return Ok(size);
        }
        let upload = Multipart::create(self, object, location).await?;
        let mut uploads = JoinSet::new();
        let parts = upload_parts(&upload, &mut uploads, first, &mut reader).await;
        if parts.is_err() {
            // No part may land after the abort: stop them and wait.
            uploads.shutdown().await;
        }
        let size = parts.as_ref().map(|(_, size)| *size).unwrap_or(0);
        upload.finish(parts.map(|(parts, _)| parts)).await?;
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
            dst.client
                .copy_object()
                .bucket(&dst.bucket)
                .key(dst.object_key(dst_key))
                .copy_source(&source.path)
                .set_copy_source_if_match(source.etag.clone())
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .server_side_encryption(dst.encryption())
                .set_ssekms_key_id(dst.kms_key.clone())
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
        let upload =
            Multipart::create(self, self.object_key(dst_key), self.location(dst_key)).await?;
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
        upload.finish(parts).await
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
    ) -> Result<Multipart, VaultError> {
        let out = vault
            .client
            .create_multipart_upload()
            .bucket(&vault.bucket)
            .key(&key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(vault.encryption())
            .set_ssekms_key_id(vault.kms_key.clone())
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
    /// every part request first, so none lands after the abort.
    async fn finish(
        mut self,
        parts: Result<Vec<CompletedPart>, VaultError>,
    ) -> Result<(), VaultError> {
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
                    .map(|_| ())
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

/// What a copy source must escape: everything but unreserved characters
/// and `/`, which separates the key's parts.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
