//! `s3://bucket/prefix` vaults, through the real `aws-sdk-s3` client.
//!
//! Puts stream: up to one part (8 MiB) is buffered; small objects go in one
//! PutObject, larger ones as a multipart upload (aborted on any error, so a
//! failed put never leaves a visible object). Every part carries a SHA-256
//! checksum that S3 verifies, and objects are encrypted at rest (SSE-S3, or
//! SSE-KMS with the region's key). A copy between two S3 vaults is done by
//! S3 itself (CopyObject); bytes never pass through Lifeboat.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use aws_sdk_s3::Client;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ObjectInfo, ObjectReader, VaultError};
use crate::plan::AwsSpec;

/// Part size of multipart uploads; also the largest single PutObject.
const PART: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct S3Vault {
    client: Client,
    bucket: String,
    prefix: String,
    kms_key: Option<String>,
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
        }
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

    pub async fn put(
        &self,
        key: &str,
        mut reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        super::check_key(key)?;
        let location = self.location(key);
        let object = self.object_key(key);
        let read_err = |e: std::io::Error| VaultError::Io {
            op: "read source",
            location: location.clone(),
            source: e,
        };
        let first = read_part(&mut reader).await.map_err(read_err)?;
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
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&object)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(self.encryption())
            .set_ssekms_key_id(self.kms_key.clone())
            .send()
            .await
            .map_err(|e| remote("CreateMultipartUpload", location.clone(), e))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let result = self
            .upload_parts(&object, &upload_id, first, &mut reader, &location)
            .await;
        match result {
            Ok(size) => Ok(size),
            Err(e) => {
                // Abort so no half object (nor its parts' storage) remains.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&object)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        object: &str,
        upload_id: &str,
        first: Vec<u8>,
        reader: &mut (impl AsyncRead + Send + Unpin),
        location: &str,
    ) -> Result<u64, VaultError> {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut chunk = first;
        let mut number = 1;
        loop {
            if chunk.is_empty() {
                break;
            }
            size += chunk.len() as u64;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .body(ByteStream::from(chunk))
                .send()
                .await
                .map_err(|e| remote("UploadPart", location.to_string(), e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(String::from))
                    .set_checksum_sha256(out.checksum_sha256().map(String::from))
                    .build(),
            );
            number += 1;
            chunk = read_part(reader).await.map_err(|e| VaultError::Io {
                op: "read source",
                location: location.to_string(),
                source: e,
            })?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| remote("CompleteMultipartUpload", location.to_string(), e))?;
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

    /// Server-side copy into another S3 vault (any region).
    pub async fn copy_within_s3(
        &self,
        key: &str,
        dst: &S3Vault,
        dst_key: &str,
    ) -> Result<u64, VaultError> {
        super::check_key(dst_key)?;
        // Keys are made of plan/resource names and timestamps: no character
        // needs URL-encoding in the copy source.
        let source = format!("{}/{}", self.bucket, self.object_key(key));
        dst.client
            .copy_object()
            .bucket(&dst.bucket)
            .key(dst.object_key(dst_key))
            .copy_source(source)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .server_side_encryption(dst.encryption())
            .set_ssekms_key_id(dst.kms_key.clone())
            .send()
            .await
            .map_err(|e| remote("CopyObject", dst.location(dst_key), e))?;
        dst.size(dst_key).await
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

/// Reads up to one part; shorter only at the end of the stream.
async fn read_part(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(PART);
    (&mut *reader)
        .take(PART as u64)
        .read_to_end(&mut buf)
        .await?;
    Ok(buf)
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
    /// source is no longer that ETag.
    pub(crate) async fn copy_in(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_key: &str,
        if_match: Option<&str>,
    ) -> Result<CopiedObject, VaultError> {
        let source = format!(
            "{src_bucket}/{}",
            percent_encoding::utf8_percent_encode(src_key, COPY_SOURCE)
        );
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
