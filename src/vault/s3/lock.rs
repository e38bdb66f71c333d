//! S3 Object Lock on the writes of a vault whose region has `object_lock`:
//! the bucket is checked once for Object Lock, every write asks for the
//! retention (mode, until now + `retain`), and a multipart write is
//! confirmed to hold it, since some stores complete one without it.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
};

use super::delete::Deletes;
use super::error::{refused, remote};
use super::S3Vault;
use crate::plan::{LockMode, ObjectLock};
use crate::time::{now_ms, rfc3339, Millis};
use crate::vault::VaultError;

/// The retention one write asks for: its mode, and until when.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteLock {
    mode: LockMode,
    until: Millis,
}

impl WriteLock {
    /// The mode, as a write request names it.
    pub(super) fn mode(&self) -> ObjectLockMode {
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

    /// The retain-until date, as a write request names it.
    pub(super) fn date(&self) -> DateTime {
        DateTime::from_millis(self.until)
    }
}

impl S3Vault {
    /// Writes into this vault get `lock` (a region's `object_lock`), and
    /// deletes remove every version of a key.
    pub fn with_object_lock(mut self, lock: Option<ObjectLock>) -> S3Vault {
        if lock.is_some() {
            self.deletes = Deletes::EveryVersion;
        }
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

    /// The lock of a write starting now.
    pub(super) fn write_lock(&self) -> Option<WriteLock> {
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
        const OP: &str = "GetObjectLockConfiguration";
        let location = self.location("");
        let not_enabled = |code: &str| {
            refused(
                OP,
                location.clone(),
                code,
                format!(
                    "bucket {} has no Object Lock enabled, but the region's object_lock asks for locked objects; create the bucket with Object Lock (ObjectLockEnabledForBucket: `aws s3api create-bucket --object-lock-enabled-for-bucket`), or enable it on the versioned bucket (`aws s3api put-object-lock-configuration`)",
                    self.bucket
                ),
            )
        };
        let out = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| match remote(OP, location.clone(), e) {
                VaultError::Remote { code, .. }
                    if code == "ObjectLockConfigurationNotFoundError" =>
                {
                    not_enabled(&code)
                }
                other => other,
            })?;
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
    pub(super) async fn confirm_lock(
        &self,
        dst_key: &str,
        version: Option<String>,
        lock: WriteLock,
    ) -> Result<(), VaultError> {
        let (object, location) = (self.full_key(dst_key), self.location(dst_key));
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&object)
            .set_version_id(version.clone())
            .send()
            .await
            .map_err(|e| remote("HeadObject", location.clone(), e))?;
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
            .key(&object)
            .set_version_id(version)
            .retention(
                ObjectLockRetention::builder()
                    .mode(lock.retention_mode())
                    .retain_until_date(lock.date())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| remote("PutObjectRetention", location, e))?;
        Ok(())
    }
}
