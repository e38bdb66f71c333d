//! Reads: an object's bytes, its size, and listings of a prefix.

use super::error::remote;
use super::S3Vault;
use crate::vault::{check_key, ObjectInfo, ObjectReader, VaultError};

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
        Ok(Box::pin(out.body.into_async_read()))
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
