//! The `s3` kind: a point of a bucket (or a prefix of it) is a server-side
//! copy of every object under it into the vault, one object per source
//! object, plus a manifest (key, size, ETag, version, SHA-256). S3 does the
//! copying and computes each copy's SHA-256; no byte passes through
//! Lifeboat. A drill copies the objects back under a scratch prefix of the
//! drill region's vault, under their own keys, and checks them against the
//! manifest; the drill's cleanup deletes that prefix (every version of
//! it, in a region with an object lock, whose scratch objects are written
//! without a lock).

use std::future::Future;

use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tracing::warn;

use super::manifest::{ArtifactInfo, BucketInfo, ObjectEntry};
use super::{
    ArtifactKeys, CheckFailed, Kind, Manifest, PointFlag, ResourceError, Restored, RestoredInto,
    Scratch, Snapshot, Verdict,
};
use crate::plan::AwsSpec;
use crate::time::now_ms;
use crate::vault::{CopyOutcome, S3Vault, Vault, VaultError};

/// Copies in flight at once per point: S3 copies are server-side and
/// mostly latency, so a few dozen keep a large bucket moving without
/// tripping request-rate limits (3,500 writes/s per prefix).
const PARALLEL_COPIES: usize = 32;

/// Where drills put restored objects, inside the drill region's vault.
pub const SCRATCH_PREFIX: &str = "lifeboat-drills";

fn s3_vault<'a>(vault: &'a Vault, what: &str) -> Result<&'a S3Vault, ResourceError> {
    match vault {
        Vault::S3(v) => Ok(v),
        Vault::File(_) => Err(ResourceError::Other(format!(
            "{what}: points of kind s3 live in s3:// vaults (objects are copied inside S3), not in {}",
            vault.location("")
        ))),
        // Plan validation refuses this: server-side copies would land in
        // plaintext in a region that promises encryption.
        Vault::Encrypted(_) => Err(ResourceError::Other(format!(
            "{what}: points of kind s3 are copied inside S3 and cannot be encrypted by Lifeboat; {} has `encryption`",
            vault.location("")
        ))),
    }
}

/// The key of the `n`th object of a point, under its objects prefix.
fn stored_key(keys: &ArtifactKeys, stored: &str) -> String {
    format!("{}/{stored}", keys.artifact)
}

/// Takes a point of `bucket/prefix` (in `region`) into `vault`; returns
/// its manifest, for the caller to store after the objects.
pub async fn snapshot(
    bucket: &str,
    prefix: &str,
    region: &str,
    aws: Option<&AwsSpec>,
    vault: &Vault,
    keys: &ArtifactKeys,
) -> Result<(Snapshot, Manifest), ResourceError> {
    let dst = s3_vault(vault, "snapshot")?;
    let source = crate::vault::s3_client(region, aws).await;
    // The data is the bucket as listed from this instant on.
    let data_time = now_ms();
    let mut listed = Vec::new();
    let mut pages = source
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            ResourceError::Source(format!(
                "listing s3://{bucket}/{prefix} in {region}: {}",
                crate::aws::AwsError::new("ListObjectsV2", e)
            ))
        })?;
        for o in page.contents() {
            if let Some(key) = o.key() {
                listed.push((
                    key.to_string(),
                    o.size().unwrap_or(0).max(0) as u64,
                    o.e_tag().unwrap_or("").to_string(),
                ));
            }
        }
    }

    let progress = crate::progress::bytes(
        format!("backup s3://{bucket}/{prefix}"),
        Some(listed.iter().map(|(_, size, _)| size).sum()),
    );
    let copies = bounded(listed.into_iter().enumerate(), |(n, (key, size, etag))| {
        let (dst, bar) = (dst.clone(), progress.clone());
        let bucket = bucket.to_string();
        let stored = format!("{n:08}");
        let dst_key = stored_key(keys, &stored);
        async move {
            let copied = dst
                .copy_in(&bucket, &key, &dst_key, size, Some(&etag))
                .await;
            let (copied, changed) = match copied {
                Ok(c) => (c, false),
                // Deleted since it was listed: the bucket as of
                // `data_time` had it, but it is gone; left out.
                Err(VaultError::NotFound { .. }) => return Ok(None),
                Err(VaultError::Remote { code, .. }) if code == "PreconditionFailed" => {
                    // Overwritten since it was listed: take the new one
                    // (or none, if it was deleted since).
                    match dst.copy_in(&bucket, &key, &dst_key, size, None).await {
                        Ok(c) => (c, true),
                        Err(VaultError::NotFound { .. }) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            let (size, etag) = if changed {
                let head = dst
                    .client()
                    .head_object()
                    .bucket(dst.bucket())
                    .key(dst.full_key(&dst_key))
                    .send()
                    .await
                    .map_err(|e| {
                        ResourceError::Other(format!(
                            "{}: {}",
                            dst.location(&dst_key),
                            crate::aws::AwsError::new("HeadObject", e)
                        ))
                    })?;
                (
                    head.content_length().unwrap_or(0).max(0) as u64,
                    head.e_tag().unwrap_or("").to_string(),
                )
            } else {
                (size, etag)
            };
            bar.inc(size);
            Ok(Some((
                ObjectEntry {
                    key,
                    size,
                    etag,
                    version_id: copied.source_version,
                    sha256: copied.sha256,
                    stored,
                },
                changed,
            )))
        }
    })
    .await;
    progress.finish_and_clear();
    let copies = copies?;
    let mut flags = Vec::new();
    let mut objects = Vec::with_capacity(copies.len());
    let listed_count = copies.len();
    for (entry, changed) in copies.into_iter().flatten() {
        if changed && !flags.contains(&PointFlag::ChangedWhileRead) {
            flags.push(PointFlag::ChangedWhileRead);
        }
        objects.push(entry);
    }
    if objects.len() < listed_count && !flags.contains(&PointFlag::ChangedWhileRead) {
        flags.push(PointFlag::ChangedWhileRead);
    }
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let mut manifest = Manifest {
        format: Manifest::FORMAT,
        point: None,
        kind: Kind::S3,
        data_time: crate::time::rfc3339(data_time),
        artifact: ArtifactInfo {
            sha256: String::new(),
            size: total,
        },
        file_count: objects.len() as u64,
        content_bytes: total,
        root: None,
        files: Vec::new(),
        database: None,
        postgres: None,
        bucket: Some(BucketInfo {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region: region.to_string(),
        }),
        objects,
    };
    // The point's hash is the hash of its object list (keys, sizes and
    // S3's SHA-256 of every object): it changes if any object does.
    let digest = objects_digest(&manifest.objects);
    manifest.artifact.sha256 = digest.clone();
    Ok((
        Snapshot {
            data_time,
            size_bytes: total,
            sha256: digest,
            file_count: manifest.file_count,
            content_bytes: total,
            flags,
            manifest_sha256: None,
        },
        manifest,
    ))
}

/// What a finished copy task gives back: its item's index and result.
type Joined<R> = Result<(usize, Result<R, ResourceError>), tokio::task::JoinError>;

/// Runs `task` on every item, at most [`PARALLEL_COPIES`] at once, and
/// returns the results in item order; the first error stops the rest.
/// (Tasks own their data: spawned, they keep the daemon's futures `Send`.)
async fn bounded<I, T, R, F, Fut>(items: I, task: F) -> Result<Vec<R>, ResourceError>
where
    I: IntoIterator<Item = T>,
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, ResourceError>> + Send + 'static,
    R: Send + 'static,
{
    let mut set = JoinSet::new();
    let mut out: Vec<Option<R>> = Vec::new();
    let place = |done: Option<Joined<R>>, out: &mut Vec<Option<R>>| -> Result<(), ResourceError> {
        match done {
            Some(Ok((i, Ok(r)))) => {
                out[i] = Some(r);
                Ok(())
            }
            Some(Ok((_, Err(e)))) => Err(e),
            Some(Err(e)) => Err(ResourceError::Other(format!("copy task failed: {e}"))),
            None => Ok(()),
        }
    };
    for (i, item) in items.into_iter().enumerate() {
        if set.len() >= PARALLEL_COPIES {
            place(set.join_next().await, &mut out)?;
        }
        out.push(None);
        let fut = task(item);
        set.spawn(async move { (i, fut.await) });
    }
    while let Some(done) = set.join_next().await {
        place(Some(done), &mut out)?;
    }
    Ok(out.into_iter().flatten().collect())
}

fn objects_digest(objects: &[ObjectEntry]) -> String {
    let mut h = Sha256::new();
    for o in objects {
        h.update(o.key.as_bytes());
        h.update([0]);
        h.update(o.size.to_le_bytes());
        h.update(o.sha256.as_deref().unwrap_or(&o.etag).as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Compares the SHA-256 S3 computed for a copy with the manifest's;
/// whether a comparison was made (a store that computes none, for the
/// manifest or the copy alike, has only sizes to go by). A manifest that
/// has one and a copy that came back without one is an error: nothing
/// would have been verified.
fn check_sha(entry: &ObjectEntry, got: Option<&str>, where_: &str) -> Result<bool, ResourceError> {
    let corrupt = |detail: String| ResourceError::Corrupt {
        location: where_.to_string(),
        detail,
    };
    match (entry.sha256.as_deref(), got) {
        (Some(want), Some(got)) if want != got => Err(corrupt(format!(
            "object `{}`: S3 computed SHA-256 {got}, the manifest has {want}",
            entry.key
        ))),
        (Some(_), Some(_)) => Ok(true),
        (Some(_), None) => Err(corrupt(format!(
            "object `{}`: the store returned no SHA-256 for the copy; it cannot be verified",
            entry.key
        ))),
        (None, _) => Ok(false),
    }
}

/// Copies a point's objects, then its manifest, into another S3 vault;
/// every copy's SHA-256 (computed by S3) must match the manifest's.
pub async fn copy(
    src: &Vault,
    keys: &ArtifactKeys,
    dst: &Vault,
) -> Result<CopyOutcome, ResourceError> {
    let (s, d) = (s3_vault(src, "copy")?, s3_vault(dst, "copy")?);
    let manifest = Manifest::load(src, &keys.manifest).await?;
    let progress = crate::progress::bytes(
        format!("copy {}", keys.artifact),
        Some(manifest.content_bytes),
    );
    let copied = bounded(manifest.objects.iter().cloned(), |entry| {
        let (s, d, bar) = (s.clone(), d.clone(), progress.clone());
        let key = stored_key(keys, &entry.stored);
        async move {
            let copied = d
                .copy_in(s.bucket(), &s.full_key(&key), &key, entry.size, None)
                .await?;
            bar.inc(entry.size);
            check_sha(&entry, copied.sha256.as_deref(), &d.location(&key))
        }
    })
    .await;
    progress.finish_and_clear();
    copied?;
    // The manifest goes last: a vault holding it holds every object.
    src.copy_to(&keys.manifest, dst, &keys.manifest).await?;
    Ok(CopyOutcome {
        size: manifest.content_bytes,
        sha256: None,
    })
}

/// The scratch prefix (a vault key) of a drill's restore of a resource.
pub fn scratch_prefix(scratch: &Scratch) -> String {
    format!("{SCRATCH_PREFIX}/{}", scratch.database_name())
}

/// Copies a point's objects, under their own keys, into the drill's
/// scratch prefix of `vault`, checking each against `manifest` (the
/// point's, already bound to the catalog's record).
pub async fn restore(
    vault: &Vault,
    keys: &ArtifactKeys,
    manifest: &Manifest,
    scratch: &Scratch,
) -> Result<Restored, ResourceError> {
    // Scratch objects are never locked, even in a region with an object
    // lock: the drill's cleanup must be able to delete them.
    let v = &s3_vault(vault, "restore")?.without_lock();
    let prefix = scratch_prefix(scratch);
    let progress = crate::progress::bytes(
        format!("restore {}", keys.artifact),
        Some(manifest.content_bytes),
    );
    let compared = bounded(manifest.objects.iter().cloned(), |entry| {
        let (v, bar) = (v.clone(), progress.clone());
        let from = v.full_key(&stored_key(keys, &entry.stored));
        let to = format!("{prefix}/{}", entry.key);
        async move {
            let copied = v.copy_in(v.bucket(), &from, &to, entry.size, None).await?;
            bar.inc(entry.size);
            check_sha(&entry, copied.sha256.as_deref(), &v.location(&to))
        }
    })
    .await;
    progress.finish_and_clear();
    let compared = compared?;
    let url = vault.location(&prefix);
    let checked = compared.iter().filter(|c| **c).count();
    Ok(Restored {
        verification: format!(
            "{} ({}) restored into {url}; {checked} SHA-256 checksums computed by S3 compared equal to the manifest's",
            crate::units::things(manifest.objects.len() as u64, "object", "objects"),
            crate::units::size(manifest.content_bytes)
        ),
        into: RestoredInto::Objects {
            url,
            manifest: Box::new(manifest.clone()),
        },
    })
}

/// The built-in check of a restored bucket: listing the scratch prefix
/// gives exactly the manifest's keys and sizes, nothing more or less.
pub async fn objects_check(vault: &Vault, scratch: &Scratch, manifest: &Manifest) -> Verdict {
    let prefix = scratch_prefix(scratch);
    let listed = vault
        .list(&format!("{prefix}/"))
        .await
        .map_err(|e| e.to_string())?;
    let strip = format!("{prefix}/");
    let mut got: Vec<(String, u64)> = listed
        .into_iter()
        .map(|o| {
            (
                o.key.strip_prefix(&strip).unwrap_or(&o.key).to_string(),
                o.size,
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u64)> = manifest
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.size))
        .collect();
    want.sort();
    if got == want {
        return Ok(format!(
            "{} objects listed, keys and sizes as in the manifest",
            got.len()
        ));
    }
    let missing = want.iter().find(|w| !got.contains(w));
    let extra = got.iter().find(|g| !want.contains(g));
    Err(CheckFailed(format!(
        "listing has {} objects, the manifest {}; first missing: {}; first unexpected: {}",
        got.len(),
        want.len(),
        missing
            .map(|(k, s)| format!("{k} ({s} bytes)"))
            .unwrap_or_else(|| "none".into()),
        extra
            .map(|(k, s)| format!("{k} ({s} bytes)"))
            .unwrap_or_else(|| "none".into()),
    )))
}

/// Deletes a drill's scratch prefix; what it removed, if anything.
pub async fn discard(vault: &Vault, scratch: &Scratch) -> Result<Option<String>, ResourceError> {
    let v = s3_vault(vault, "cleanup")?;
    let prefix = scratch_prefix(scratch);
    let n = v.delete_prefix(&format!("{prefix}/")).await?;
    Ok((n > 0).then(|| format!("{n} objects under {}", vault.location(&prefix))))
}

/// Deletes a point's objects from a vault: the manifest first, so a
/// vault holding a manifest always holds every object it lists.
pub async fn delete(vault: &Vault, keys: &ArtifactKeys) -> Result<(), VaultError> {
    vault.delete(&keys.manifest).await?;
    match vault.store().as_ref() {
        Vault::S3(v) => v
            .delete_prefix(&format!("{}/", keys.artifact))
            .await
            .map(|_| ()),
        Vault::File(_) | Vault::Encrypted(_) => Ok(()),
    }
}

/// Verifies an `s3` point in `vault` without restoring it: the manifest is
/// there and parses, its object list hashes to the catalog's SHA-256, and
/// every object it lists is under the point's prefix with its size (the
/// total the catalog recorded). With `read_data`, every object is read
/// again and hashed, and compared with the SHA-256 S3 computed when it
/// was copied (when the manifest has one that is not a multipart
/// composite). A missing or wrong object is damage
/// ([`ResourceError::Corrupt`]); a failed request is not.
pub async fn verify(
    vault: &Vault,
    keys: &ArtifactKeys,
    expect: &super::Binding,
    read_data: bool,
) -> Result<super::verify::Verified, ResourceError> {
    use super::verify::{base64, bound_manifest, damaged, hash_object, Verified};
    let manifest = bound_manifest(vault, keys, expect).await?;
    let at = |key: &str| vault.location(key);
    let list_hash = objects_digest(&manifest.objects);
    if list_hash != manifest.artifact.sha256 {
        return Err(damaged(
            at(&keys.manifest),
            format!(
                "the manifest's object list hashes to {list_hash}, it records {}",
                manifest.artifact.sha256
            ),
        ));
    }
    let total: u64 = manifest.objects.iter().map(|o| o.size).sum();
    if let Some(want) = expect.artifact_size.filter(|want| *want != total) {
        return Err(damaged(
            at(&keys.manifest),
            format!("the manifest lists {total} bytes of objects, the catalog recorded {want}"),
        ));
    }
    let listed: std::collections::HashMap<String, u64> = vault
        .list(&format!("{}/", keys.artifact))
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    for entry in &manifest.objects {
        let key = stored_key(keys, &entry.stored);
        match listed.get(&key) {
            None => return Err(damaged(at(&key), format!("object `{}` missing", entry.key))),
            Some(&size) if size != entry.size => {
                return Err(damaged(
                    at(&key),
                    format!(
                        "object `{}` is {size} bytes, the manifest has {}",
                        entry.key, entry.size
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let n = manifest.objects.len();
    if !read_data {
        return Ok(Verified {
            detail: format!(
                "{n} objects present with the manifest's sizes; object list hash matches"
            ),
            bytes_read: 0,
        });
    }
    let compared = bounded(manifest.objects.iter().cloned(), |entry| {
        let vault = vault.clone();
        let key = stored_key(keys, &entry.stored);
        async move {
            let (len, digest) = hash_object(&vault, &key, "object").await?;
            if len != entry.size {
                return Err(damaged(
                    vault.location(&key),
                    format!(
                        "object `{}` reads as {len} bytes, the manifest has {}",
                        entry.key, entry.size
                    ),
                ));
            }
            // A multipart copy's checksum is of its parts' checksums
            // (`…-N`): not comparable with the whole object's hash.
            match entry.sha256.as_deref().filter(|s| !s.contains('-')) {
                Some(want) if base64(&digest) != want => Err(damaged(
                    vault.location(&key),
                    format!(
                        "object `{}` hashes to {}, S3 computed {want} when it was copied",
                        entry.key,
                        base64(&digest)
                    ),
                )),
                Some(_) => Ok((len, true)),
                None => Ok((len, false)),
            }
        }
    })
    .await?;
    let bytes: u64 = compared.iter().map(|(len, _)| len).sum();
    let hashed = compared.iter().filter(|(_, c)| *c).count();
    Ok(Verified {
        detail: format!(
            "{} ({}) read; {hashed} SHA-256 match the manifest's, object list hash matches",
            crate::units::things(n as u64, "object", "objects"),
            crate::units::size(bytes)
        ),
        bytes_read: bytes,
    })
}

/// The last step of `lifeboat restore --to-bucket`: the point's objects,
/// restored and checked under a scratch prefix of `vault` (the drill's
/// own restore), are copied inside S3 into `target` under their own keys,
/// each copy's SHA-256 (computed by S3) compared with the manifest's
/// again; then the scratch prefix goes. Returns what it did.
pub async fn put_in_bucket(
    vault: &Vault,
    scratch: &Scratch,
    manifest: &Manifest,
    target: &Vault,
) -> Result<String, ResourceError> {
    let v = s3_vault(vault, "restore")?.clone();
    let t = s3_vault(target, "restore")?.clone();
    let prefix = scratch_prefix(scratch);
    let progress = crate::progress::bytes(
        format!("put in {}", target.location("")),
        Some(manifest.content_bytes),
    );
    let compared = bounded(manifest.objects.iter().cloned(), |entry| {
        let (v, t, bar) = (v.clone(), t.clone(), progress.clone());
        let from = v.full_key(&format!("{prefix}/{}", entry.key));
        async move {
            let copied = t
                .copy_in(v.bucket(), &from, &entry.key, entry.size, None)
                .await?;
            bar.inc(entry.size);
            check_sha(&entry, copied.sha256.as_deref(), &t.location(&entry.key))
        }
    })
    .await;
    progress.finish_and_clear();
    let compared = compared?;
    let checked = compared.iter().filter(|c| **c).count();
    if let Err(e) = discard(vault, scratch).await {
        warn!(error = %e, "cannot remove a restore's scratch objects");
    }
    Ok(format!(
        "{} ({}) put in {}; {checked} SHA-256 checksums computed by S3 compared equal to the manifest's",
        crate::units::things(manifest.objects.len() as u64, "object", "objects"),
        crate::units::size(manifest.content_bytes),
        target.location("")
    ))
}

/// Whether `vault` holds any object under its prefix: a restore does not
/// mix a point's objects with others' unless told to.
pub async fn holds_objects(vault: &Vault) -> Result<bool, ResourceError> {
    Ok(!vault.list("").await?.is_empty())
}
