//! Puts, in bounded memory whatever the size: an object smaller than a
//! part goes in one PutObject; a larger one as a multipart upload of
//! [`PART`]-sized parts, up to [`PARALLEL_PARTS`] of them in flight while
//! the next one is read, so a put holds at most `PART × (PARALLEL_PARTS + 1)`.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedPart};
use bytes::{BufMut, Bytes};
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
        let buffers = PartBuffers::default();
        let first = read_part(&mut reader, &buffers)
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
                .body(first.into_stream())
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
        let sent = upload_parts(&mut upload, first, &mut reader, &buffers).await;
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

/// Reads one part into a buffer of `buffers`: exactly [`PART`] bytes,
/// fewer only at the end of the stream. The buffer is read into as it is
/// (never zeroed first) and never grows.
async fn read_part(
    reader: &mut (impl AsyncRead + Unpin),
    buffers: &PartBuffers,
) -> std::io::Result<Part> {
    let mut buf = buffers.take();
    while buf.len() < PART {
        let room = PART - buf.len();
        if reader.read_buf(&mut (&mut buf).limit(room)).await? == 0 {
            break;
        }
    }
    Ok(Part {
        buf,
        home: buffers.clone(),
    })
}

/// The part buffers of one put, reused: a part's buffer comes back when
/// the SDK drops its request body, so a put of any size allocates (and
/// the kernel zeroes) at most `PARALLEL_PARTS + 1` of them instead of one
/// per part. A `perf` profile of a 1 GiB backup into S3 had 7% of the
/// client's CPU in zeroing and faulting in fresh 8 MiB buffers; reused,
/// the backup's page faults went from ~80,000 to ~35,000.
#[derive(Clone, Default)]
struct PartBuffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl PartBuffers {
    fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().ok().and_then(|mut free| free.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(PART));
        buf.clear();
        buf
    }
}

/// A part's bytes, returned to its put's [`PartBuffers`] when dropped.
struct Part {
    buf: Vec<u8>,
    home: PartBuffers,
}

impl Part {
    fn len(&self) -> usize {
        self.buf.len()
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The body of a request, without a copy.
    fn into_stream(self) -> ByteStream {
        ByteStream::from(Bytes::from_owner(self))
    }
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if let Ok(mut free) = self.home.0.lock() {
            if free.len() <= PARALLEL_PARTS {
                free.push(std::mem::take(&mut self.buf));
            }
        }
    }
}

/// Reads `reader` part by part (after `first`), starting an upload of
/// each as soon as it is read. Returns the total size.
async fn upload_parts(
    upload: &mut Multipart,
    first: Part,
    reader: &mut (impl AsyncRead + Send + Unpin),
    buffers: &PartBuffers,
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
        next = read_part(reader, buffers)
            .await
            .map_err(|e| read_error(upload.location(), e))?;
        upload.reap()?;
    }
    Ok(size)
}

async fn upload_part(t: Arc<UploadTarget>, number: i32, body: Part) -> PartResult {
    let out = t
        .client
        .upload_part()
        .bucket(&t.bucket)
        .key(&t.key)
        .upload_id(&t.upload_id)
        .part_number(number)
        .checksum_algorithm(UPLOAD_CHECKSUM)
        .body(body.into_stream())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parts_are_read_whole_into_buffers_that_come_back_when_dropped() {
        let source: Vec<u8> = (0..PART + 1000).map(|i| (i % 251) as u8).collect();
        let mut reader = source.as_slice();
        let buffers = PartBuffers::default();
        let first = read_part(&mut reader, &buffers).await.unwrap();
        assert_eq!(first.len(), PART);
        assert_eq!(first.buf.capacity(), PART, "a part buffer never grows");
        assert_eq!(first.as_ref(), &source[..PART]);
        let address = first.buf.as_ptr();
        // The SDK holds the body as Bytes; dropping the last one returns
        // the buffer.
        let body = Bytes::from_owner(first);
        let clone = body.clone();
        drop(body);
        assert!(
            buffers.0.lock().unwrap().is_empty(),
            "still held by a clone"
        );
        drop(clone);
        let last = read_part(&mut reader, &buffers).await.unwrap();
        assert_eq!(last.buf.as_ptr(), address, "the buffer was reused");
        assert_eq!(last.as_ref(), &source[PART..]);
        drop(last);
        let end = read_part(&mut reader, &buffers).await.unwrap();
        assert!(end.is_empty());
    }

    #[test]
    fn the_free_buffers_are_bounded() {
        let buffers = PartBuffers::default();
        let parts: Vec<Part> = (0..PARALLEL_PARTS + 5)
            .map(|_| Part {
                buf: Vec::with_capacity(16),
                home: buffers.clone(),
            })
            .collect();
        drop(parts);
        assert_eq!(buffers.0.lock().unwrap().len(), PARALLEL_PARTS + 1);
    }
}
