//! An open multipart upload: created with the vault's encryption, checksum
//! and lock; its part requests (uploaded bytes or server-side copied
//! ranges) run a bounded number at a time; it ends completed or aborted.
//! It owns its part requests, so none can land after the abort.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use tokio::task::JoinSet;

use super::error::{refused, remote};
use super::lock::WriteLock;
use super::S3Vault;
use crate::vault::VaultError;

/// S3's limit on the parts of one multipart upload.
pub(super) const MAX_PARTS: usize = 10_000;

/// What every part request of one multipart upload names.
pub(super) struct UploadTarget {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) bucket: String,
    pub(super) key: String,
    pub(super) upload_id: String,
    /// The object's URL, for error messages.
    pub(super) location: String,
}

/// The outcome of one part request.
pub(super) type PartResult = Result<CompletedPart, VaultError>;

/// An open multipart upload and its part requests in flight. It ends
/// completed or aborted: [`Multipart::finish`] aborts it on any error, and
/// dropping it unfinished (the write's future cancelled, e.g. a backup past
/// its completion window) aborts it in the background, so no upload is
/// left holding stored, billed parts.
pub(super) struct Multipart {
    target: Arc<UploadTarget>,
    parts: JoinSet<PartResult>,
    done: Vec<CompletedPart>,
    /// Part requests in flight at most.
    parallel: usize,
    finished: bool,
}

impl Multipart {
    /// Starts a multipart upload of `dst_key` into `vault`, with up to
    /// `parallel` part requests at once, each part checked by S3 against
    /// its `checksum` (which every part request must then carry).
    pub(super) async fn create(
        vault: &S3Vault,
        dst_key: &str,
        lock: Option<WriteLock>,
        parallel: usize,
        checksum: ChecksumAlgorithm,
    ) -> Result<Multipart, VaultError> {
        const OP: &str = "CreateMultipartUpload";
        let (key, location) = (vault.full_key(dst_key), vault.location(dst_key));
        let out = vault
            .client
            .create_multipart_upload()
            .bucket(&vault.bucket)
            .key(&key)
            .checksum_algorithm(checksum)
            .server_side_encryption(vault.encryption())
            .set_ssekms_key_id(vault.kms_key.clone())
            .set_object_lock_mode(lock.map(|l| l.mode()))
            .set_object_lock_retain_until_date(lock.map(|l| l.date()))
            .send()
            .await
            .map_err(|e| remote(OP, location.clone(), e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_string();
        if upload_id.is_empty() {
            return Err(refused(
                OP,
                location,
                "MissingUploadId",
                "the response has no upload id",
            ));
        }
        Ok(Multipart {
            target: Arc::new(UploadTarget {
                client: vault.client.clone(),
                bucket: vault.bucket.clone(),
                key,
                upload_id,
                location,
            }),
            parts: JoinSet::new(),
            done: Vec::new(),
            parallel: parallel.max(1),
            finished: false,
        })
    }

    /// The object's URL, for error messages.
    pub(super) fn location(&self) -> &str {
        &self.target.location
    }

    /// Starts the part request `part` builds, once fewer than `parallel`
    /// are in flight. Fails with the error of a part that failed meanwhile.
    pub(super) async fn start<F>(
        &mut self,
        part: impl FnOnce(Arc<UploadTarget>) -> F,
    ) -> Result<(), VaultError>
    where
        F: Future<Output = PartResult> + Send + 'static,
    {
        while self.parts.len() >= self.parallel {
            let next = self.parts.join_next().await;
            self.record(next)?;
        }
        self.parts.spawn(part(self.target.clone()));
        Ok(())
    }

    /// Records the parts already done, without waiting: a failed part is
    /// noticed now rather than when the last one is started.
    pub(super) fn reap(&mut self) -> Result<(), VaultError> {
        while let Some(done) = self.parts.try_join_next() {
            self.record(Some(done))?;
        }
        Ok(())
    }

    /// Records one finished part request. A task that panicked or was
    /// cancelled is an error, never a panic of the caller.
    fn record(
        &mut self,
        done: Option<Result<PartResult, tokio::task::JoinError>>,
    ) -> Result<(), VaultError> {
        let part = match done {
            Some(Ok(part)) => part,
            Some(Err(e)) => Err(self.task_failed(format!("the part's task failed: {e}"))),
            None => Err(self.task_failed("no part upload was running".into())),
        };
        self.done.push(part?);
        Ok(())
    }

    fn task_failed(&self, why: String) -> VaultError {
        VaultError::Io {
            op: "upload part",
            location: self.target.location.clone(),
            source: std::io::Error::other(why),
        }
    }

    /// Ends the upload after the caller started its last part (`sent` is
    /// `Ok`) or failed to (`Err`): waits for the parts and completes it in
    /// part order, or, on any error, stops every part request still in
    /// flight and aborts it. Returns what was sent, with the new object's
    /// version (versioned buckets).
    pub(super) async fn finish<T>(
        mut self,
        sent: Result<T, VaultError>,
    ) -> Result<(T, Option<String>), VaultError> {
        let result = match sent {
            Ok(sent) => self.complete().await.map(|version| (sent, version)),
            Err(e) => Err(e),
        };
        if result.is_err() {
            // No part may land after the abort: stop them and wait.
            self.parts.shutdown().await;
            abort(&self.target).await;
        }
        // Only now: cancelled before this point, Drop still aborts.
        self.finished = true;
        result
    }

    async fn complete(&mut self) -> Result<Option<String>, VaultError> {
        while let Some(done) = self.parts.join_next().await {
            self.record(Some(done))?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let t = &self.target;
        let out = t
            .client
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
            .map_err(|e| remote("CompleteMultipartUpload", t.location.clone(), e))?;
        Ok(out.version_id().map(String::from))
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Cancelled mid-upload: stop the parts, then abort without
        // blocking (no runtime means the process is shutting down; S3
        // lifecycle rules are the backstop).
        self.parts.abort_all();
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
