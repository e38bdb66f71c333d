//! Reads: an object's bytes, its size, and listings of a prefix.
//!
//! A download whose connection fails half-way (reset, cut short, stalled)
//! resumes where it stopped with a ranged GET of the same version (its
//! ETag), a few times, rather than failing a whole restore or drill: the
//! SDK retries requests, never a body it has handed over.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::error::remote;
use super::S3Vault;
use crate::vault::{check_key, ObjectInfo, ObjectReader, VaultError};

/// How many times one download resumes after its body failed.
const MAX_RESUMES: u32 = 3;

/// Where a download stands.
struct Download {
    client: Client,
    bucket: String,
    key: String,
    /// The version being read: a resume must not splice in another.
    etag: Option<String>,
    /// The object's size, from the first answer.
    size: Option<u64>,
    /// Bytes handed over so far.
    pos: u64,
    body: ByteStream,
    resumes: u32,
    failed: bool,
}

impl Download {
    /// The next chunk, resuming after a failed body; `None` at the end.
    async fn next(&mut self) -> Option<std::io::Result<bytes::Bytes>> {
        loop {
            if self.failed {
                return None;
            }
            let e = match self.body.next().await {
                None => return None,
                Some(Ok(chunk)) => {
                    self.pos += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => e,
            };
            // The full chain: a bare "streaming error" names no cause.
            let cause = DisplayErrorContext(&e).to_string();
            // After the last byte, an error is the SDK's checksum of the
            // whole object disagreeing: damage, never resumed past.
            if self.size.is_some_and(|n| self.pos >= n) {
                self.failed = true;
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    cause,
                )));
            }
            if self.resumes >= MAX_RESUMES {
                return Some(Err(
                    self.fail(format!("{cause} (after {} resumes)", self.resumes))
                ));
            }
            self.resumes += 1;
            let resumed = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .range(format!("bytes={}-", self.pos))
                .set_if_match(self.etag.clone())
                .send()
                .await;
            match resumed {
                Ok(out) => self.body = out.body,
                Err(r) => {
                    return Some(Err(self.fail(format!(
                        "{cause}; resuming at byte {}: {}",
                        self.pos,
                        DisplayErrorContext(&r)
                    ))))
                }
            }
        }
    }

    fn fail(&mut self, message: String) -> std::io::Error {
        self.failed = true;
        // A connection that failed: worth another try later.
        std::io::Error::new(std::io::ErrorKind::ConnectionAborted, message)
    }
}

impl S3Vault {
    /// The object's bytes, streamed from S3.
    pub async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        check_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| remote("GetObject", self.location(key), e))?;
        let download = Download {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: self.full_key(key),
            etag: out.e_tag().map(String::from),
            size: out.content_length().and_then(|n| u64::try_from(n).ok()),
            pos: 0,
            body: out.body,
            resumes: 0,
            failed: false,
        };
        let chunks = futures_util::stream::unfold(download, |mut d| async move {
            let chunk = d.next().await?;
            Some((chunk, d))
        });
        Ok(Box::pin(tokio_util::io::StreamReader::new(chunks)))
    }

    /// The object's size in bytes (HeadObject).
    pub async fn size(&self, key: &str) -> Result<u64, VaultError> {
        check_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| remote("HeadObject", self.location(key), e))?;
        Ok(out.content_length().unwrap_or(0).max(0) as u64)
    }

    /// Every object whose vault key starts with `prefix`, sorted by key,
    /// through every page of ListObjectsV2.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
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
                        modified: o.last_modified().and_then(|t| t.to_millis().ok()),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
