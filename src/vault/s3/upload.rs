//! Puts, in bounded memory whatever the size: an object smaller than a
//! part goes in one PutObject; a larger one as a multipart upload of
//! [`PART`]-sized parts, up to [`PARALLEL_PARTS`] of them in flight while
//! the next one is read, so a put holds at most `PART × (PARALLEL_PARTS + 1)`.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedPart};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::error::{refused, remote};
use super::multipart::{Multipart, PartResult, UploadTarget, MAX_PARTS};
use super::S3Vault;
use crate::vault::{check_key, VaultError};

/// Part size of multipart uploads; also the largest single PutObject.
/// With S3's 10,000 parts, objects up to 78 GiB.
const PART: usize = 8 << 20;
/// Parts uploaded at once. One S3 request stream tops out well below what a
/// host can send (latency-bound on real S3), so throughput comes from
/// parallel parts, as in the AWS CLI (10) and rclone (4). Each part in
/// flight holds its buffer: a put holds at most `PART × (PARALLEL_PARTS + 1)`
/// = 72 MiB (the parts in flight and the one being read).
const PARALLEL_PARTS: usize = 8;
/// What S3 checks each uploaded body against. CRC32C, as the AWS SDKs and
/// CLI default to (CRC32) and not SHA-256: it guards the bytes in transit
/// (S3 rejects a part that does not match it) at a fraction of the CPU, on
/// both ends. The end-to-end guarantee is the artifact's SHA-256 in its
/// manifest, which every restore, drill and `verify --read-data` checks.
const UPLOAD_CHECKSUM: ChecksumAlgorithm = ChecksumAlgorithm::Crc32C;

impl S3Vault {
    /// Stores the whole stream under `key`, atomically: S3 shows an object
    /// only once its PutObject or CompleteMultipartUpload succeeded.
    /// Returns the size.
    pub async fn put(
        &self,
        key: &str,
        mut reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        check_key(key)?;
        self.check_object_lock().await?;
        let location = self.location(key);
        let first = read_part(&mut reader)
            .await
            .map_err(|e| read_error(&location, e))?;
        // The lock is dated from the start of the write.
        let lock = self.write_lock();
        if first.len() < PART {
            let size = first.len() as u64;
            // The checksum (see [`UPLOAD_CHECKSUM`]) is also the integrity
            // header S3 requires of a PutObject that sets a retention. It
            // is what guards the body, so the payload is not hashed a
            // second time for the signature (`UNSIGNED-PAYLOAD`): the SDK
            // puts the checksum of an in-memory body in a header before
            // signing, so the signed request still binds the body's bytes
            // (S3 rejects a body that does not match it), over TLS or not.
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full_key(key))
                .body(ByteStream::from(first))
                .checksum_algorithm(UPLOAD_CHECKSUM)
                .server_side_encryption(self.encryption())
                .set_ssekms_key_id(self.kms_key.clone())
                .set_object_lock_mode(lock.map(|l| l.mode()))
                .set_object_lock_retain_until_date(lock.map(|l| l.date()))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| remote("PutObject", location, e))?;
            return Ok(size);
        }
        let mut upload =
            Multipart::create(self, key, lock, PARALLEL_PARTS, UPLOAD_CHECKSUM).await?;
        let sent = upload_parts(&mut upload, first, &mut reader).await;
        let (size, version) = upload.finish(sent).await?;
        if let Some(lock) = lock {
            self.confirm_lock(key, version, lock).await?;
        }
        Ok(size)
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

/// Reads `reader` part by part (after `first`), starting an upload of
/// each as soon as it is read. Returns the total size.
async fn upload_parts(
    upload: &mut Multipart,
    first: Vec<u8>,
    reader: &mut (impl AsyncRead + Send + Unpin),
) -> Result<u64, VaultError> {
    let mut size = 0u64;
    let mut number = 0usize;
    let mut next = first;
    while !next.is_empty() {
        number += 1;
        if number > MAX_PARTS {
            return Err(refused(
                "UploadPart",
                upload.location().to_string(),
                "TooManyParts",
                format!(
                    "the object is larger than S3's {MAX_PARTS} parts of {} MiB",
                    PART >> 20
                ),
            ));
        }
        size += next.len() as u64;
        // MAX_PARTS fits an i32.
        let n = i32::try_from(number).unwrap_or(i32::MAX);
        upload.start(|t| upload_part(t, n, next)).await?;
        // Read the next part while the others upload.
        next = read_part(reader)
            .await
            .map_err(|e| read_error(upload.location(), e))?;
        upload.reap()?;
    }
    Ok(size)
}

async fn upload_part(t: Arc<UploadTarget>, number: i32, body: Vec<u8>) -> PartResult {
    let out = t
        .client
        .upload_part()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(&t.upload_id)
        .part_number(number)
        .checksum_algorithm(UPLOAD_CHECKSUM)
        .body(ByteStream::from(body))
        // As for PutObject above: the signed checksum header guards the
        // part, so it is hashed once, not a second time for the signature.
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .map_err(|e| remote("UploadPart", t.location.clone(), e))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(String::from))
        .set_checksum_crc32_c(out.checksum_crc32_c().map(String::from))
        .build())
}
