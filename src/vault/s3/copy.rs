//! Server-side copies: S3 copies the bytes, which never pass through
//! Lifeboat. One CopyObject up to the destination's multipart threshold
//! (CopyObject's limit is 5 GiB), else a multipart upload of UploadPartCopy
//! ranges, [`PARALLEL_COPIES`] at a time. A copy never inherits its
//! source's retention: the destination's lock is asked for explicitly.

use std::sync::Arc;

use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedPart};

use super::error::remote;
use super::multipart::{Multipart, PartResult, UploadTarget, MAX_PARTS};
use super::S3Vault;
use crate::vault::{check_key, VaultError};

/// CopyObject copies at most 5 GiB; larger objects are copied by parts.
const COPY_OBJECT_MAX: u64 = 5 << 30;
/// Part size of multipart copies: parts are copied by S3 (no memory here),
/// so large parts mean fewer requests; 512 MiB copies a 5 GiB object in 11.
const COPY_PART: u64 = 512 << 20;
/// S3's smallest part (but the last).
const MIN_PART: u64 = 5 << 20;
/// Ranges copied at once: each is a server-side job of seconds, and a few
/// in parallel cut a large cross-region copy's time without S3 throttling.
const PARALLEL_COPIES: usize = 8;

/// What a copy source must escape: everything but unreserved characters
/// and `/`, which separates the key's parts.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// When copies into a vault are multipart, and in what ranges.
#[derive(Debug, Clone, Copy)]
pub(super) struct CopyParts {
    /// Objects larger than this are copied by parts.
    threshold: u64,
    /// The size of a range (grown for objects that would need more than
    /// S3's 10,000 parts).
    part: u64,
}

impl Default for CopyParts {
    fn default() -> Self {
        CopyParts {
            threshold: COPY_OBJECT_MAX,
            part: COPY_PART,
        }
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

/// The source of a server-side copy: `bucket/key`, and its ETag when known.
#[derive(Clone)]
struct CopySource {
    /// `bucket/key`, the key URL-encoded.
    path: String,
    /// Every part must come from this version of the source.
    etag: Option<String>,
}

impl CopySource {
    fn new(bucket: &str, key: &str, etag: Option<String>) -> CopySource {
        CopySource {
            path: format!(
                "{bucket}/{}",
                percent_encoding::utf8_percent_encode(key, COPY_SOURCE)
            ),
            etag,
        }
    }
}

impl S3Vault {
    /// Copies into this vault of objects over `threshold` bytes use
    /// UploadPartCopy ranges of `part_size` (at least 5 MiB, S3's minimum).
    /// For tests, to exercise the multipart copy on small objects.
    #[doc(hidden)]
    pub fn with_multipart_copy(mut self, threshold: u64, part_size: u64) -> S3Vault {
        self.copy_parts = CopyParts {
            threshold: threshold.min(COPY_OBJECT_MAX),
            part: part_size.max(MIN_PART),
        };
        self
    }

    /// Server-side copy into another S3 vault (any region). Returns the
    /// size of the copy, as the destination reports it.
    pub async fn copy_within_s3(
        &self,
        key: &str,
        dst: &S3Vault,
        dst_key: &str,
    ) -> Result<u64, VaultError> {
        check_key(key)?;
        check_key(dst_key)?;
        dst.check_object_lock().await?;
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| remote("HeadObject", self.location(key), e))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let source = CopySource::new(
            &self.bucket,
            &self.full_key(key),
            head.e_tag().map(String::from),
        );
        dst.copy_from(&source, size, dst_key, dst.location(dst_key))
            .await?;
        dst.size(dst_key).await
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
        let source = CopySource::new(src_bucket, src_key, if_match.map(String::from));
        // A failed CopyObject names its source: that is what went missing
        // or changed when a bucket is copied while in use.
        let error_location = format!("s3://{src_bucket}/{src_key}");
        self.copy_from(&source, size, dst_key, error_location).await
    }

    /// Copies `size` bytes of `source` into `dst_key` of this vault: one
    /// CopyObject (errors naming `error_location`) up to the threshold,
    /// else by parts.
    async fn copy_from(
        &self,
        source: &CopySource,
        size: u64,
        dst_key: &str,
        error_location: String,
    ) -> Result<CopiedObject, VaultError> {
        if size > self.copy_parts.threshold {
            self.copy_by_parts(source, size, dst_key).await?;
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
            .key(self.full_key(dst_key))
            .copy_source(&source.path)
            .set_copy_source_if_match(source.etag.clone())
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(self.encryption())
            .set_ssekms_key_id(self.kms_key.clone())
            .set_object_lock_mode(lock.map(|l| l.mode()))
            .set_object_lock_retain_until_date(lock.map(|l| l.date()))
            .send()
            .await
            .map_err(|e| remote("CopyObject", error_location, e))?;
        Ok(CopiedObject {
            sha256: out
                .copy_object_result()
                .and_then(|r| r.checksum_sha256())
                .map(String::from),
            source_version: out.copy_source_version_id().map(String::from),
        })
    }

    /// Multipart copy of `size` bytes of `source` into `dst_key` of this
    /// vault. S3 checksums every part (SHA-256, set on the upload) and the
    /// parts are completed in order.
    async fn copy_by_parts(
        &self,
        source: &CopySource,
        size: u64,
        dst_key: &str,
    ) -> Result<(), VaultError> {
        // Parts grow past the configured size only for objects that would
        // otherwise need more than S3's 10,000 parts (over 5 TB at 512 MiB).
        let part = self.copy_parts.part.max(size.div_ceil(MAX_PARTS as u64));
        let lock = self.write_lock();
        let mut upload = Multipart::create(
            self,
            dst_key,
            lock,
            PARALLEL_COPIES,
            ChecksumAlgorithm::Sha256,
        )
        .await?;
        let sent = copy_ranges(&mut upload, source, size, part).await;
        let ((), version) = upload.finish(sent).await?;
        if let Some(lock) = lock {
            self.confirm_lock(dst_key, version, lock).await?;
        }
        Ok(())
    }
}

/// Starts a copy of each `part`-sized range of the `size` bytes of `source`.
async fn copy_ranges(
    upload: &mut Multipart,
    source: &CopySource,
    size: u64,
    part: u64,
) -> Result<(), VaultError> {
    let mut start = 0u64;
    let mut number = 0i32;
    while start < size {
        let end = (start + part).min(size);
        number += 1;
        let (source, range) = (source.clone(), format!("bytes={start}-{}", end - 1));
        upload
            .start(|t| copy_part(t, source, number, range))
            .await?;
        start = end;
    }
    Ok(())
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
