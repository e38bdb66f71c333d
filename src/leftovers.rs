//! What crashed processes leave behind, found and removed: partial uploads
//! (the `.NAME.tmp-RANDOM` files a `file://` vault's put writes before its
//! rename), SQLite snapshot folders in the work folder's `tmp`, and vault
//! artifacts no usable point owns.
//!
//! Nothing here needs the plan's locks, so prune, the daemon's start-up and
//! `verify` call it without them: a temporary goes only once it is older
//! than [`TEMPORARY_GRACE`] (a live upload keeps writing its file; a
//! snapshot folder also needs its process gone), and an artifact only once
//! every object of it is older than the unowned grace
//! ([`UNOWNED_GRACE`] by default) and no running, complete, damaged or
//! deleting point names it (a backup records where its point goes before
//! writing there).
//!
//! An artifact is *unowned* when its point is known to the catalog as
//! failed or deleted, or when no point names it and it has no manifest (a
//! backup that died between artifact and manifest). An artifact with a
//! manifest that no point names at all is *unrecorded*: it is listed,
//! never removed — it is a whole point the catalog does not know (a
//! catalog recreated over the vault, which `catalog rebuild` can record).
//! Objects under S3 Object Lock are kept until their lock (written with
//! the region's `retain`) has ended, then every version goes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError, PointFilter, PointStatus};
use crate::context::Context;
use crate::plan::Plan;
use crate::resource::{self, ArtifactKeys, Place, MANIFEST_SUFFIX};
use crate::time::{from_system_time, Millis};
use crate::vault::Vault;

/// A temporary file or folder younger than this may belong to a live
/// upload or backup: it is kept.
pub const TEMPORARY_GRACE: Duration = Duration::from_secs(3600);

/// An artifact no point owns is removed once all of it is older than this
/// (`prune --unowned-grace` changes it).
pub const UNOWNED_GRACE: Duration = Duration::from_secs(86_400);

/// What a leftover is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftoverKind {
    /// A `file://` vault's temporary file of an upload that never finished.
    PartialUpload,
    /// A SQLite snapshot folder in the work folder of a backup that is gone.
    SnapshotFolder,
    /// Vault objects of a point that never completed, or was deleted.
    Unowned,
    /// A whole point (artifact and manifest) the catalog has no row for:
    /// listed, never removed.
    Unrecorded,
}

impl LeftoverKind {
    /// As people read it.
    pub fn as_str(self) -> &'static str {
        match self {
            LeftoverKind::PartialUpload => "partial upload",
            LeftoverKind::SnapshotFolder => "snapshot folder",
            LeftoverKind::Unowned => "unowned",
            LeftoverKind::Unrecorded => "unrecorded",
        }
    }
}

/// Something left behind.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    /// What it is.
    pub kind: LeftoverKind,
    /// Its path, or its vault URL (for an artifact, its keys' common base).
    pub location: String,
    /// The region whose vault holds it; `None` in the work folder.
    pub region: Option<String>,
    /// How many files or objects.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// When it was last written (the newest of its objects).
    #[serde(with = "crate::time::serde_ms::option")]
    pub modified: Option<Millis>,
    /// Under S3 Object Lock until then: kept until it ends.
    #[serde(with = "crate::time::serde_ms::option")]
    pub locked_until: Option<Millis>,
    #[serde(skip)]
    target: Target,
}

/// How to remove a leftover.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Folder(PathBuf),
    Objects {
        vault: Vault,
        keys: Vec<String>,
    },
    /// Never removed.
    Nothing,
}

/// What became of a leftover.
#[derive(Debug)]
pub enum Outcome {
    /// Removed.
    Removed,
    /// A dry run: would have been removed.
    WouldRemove,
    /// Kept: under object lock, or unrecorded.
    Kept,
    /// Could not be removed (retried next time).
    Failed(String),
}

/// The leftovers found, and what could not be looked at.
#[derive(Debug, Default)]
pub struct Found {
    /// Every leftover, in the order found.
    pub leftovers: Vec<Leftover>,
    /// Places that could not be read, with why (nothing found there).
    pub problems: Vec<String>,
}

/// Why leftovers could not be looked for at all.
#[derive(Debug, thiserror::Error)]
pub enum LeftoversError {
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Where to look in a plan's vaults, and how old an unowned artifact must be.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Only this region (else every region holding points).
    pub region: Option<&'a str>,
    /// Look for unowned and unrecorded artifacts too, removing the unowned
    /// ones older than this; `None`: partial uploads only.
    pub unowned_grace: Option<Duration>,
}

/// The plan's leftovers in its regions' vaults as of `now`: partial
/// uploads older than [`TEMPORARY_GRACE`], and (per `scope`) unowned and
/// unrecorded artifacts. A region whose vault cannot be listed is a
/// problem, not an error.
pub async fn in_vaults(
    cat: &Catalog,
    plan: &Plan,
    scope: Scope<'_>,
    now: Millis,
) -> Result<Found, LeftoversError> {
    let mut found = Found::default();
    for region in plan.point_regions() {
        if scope.region.is_some_and(|r| r != region) {
            continue;
        }
        let place = Place::reading(plan, region);
        let vault = match place.vault().await {
            Ok(v) => v.clone(),
            Err(e) => {
                found.problems.push(format!("region {region}: {e}"));
                continue;
            }
        };
        if let Vault::File(v) = &vault {
            let folder = v.root().join(&plan.name);
            match partial_uploads(&folder, now).await {
                Ok(l) => found.leftovers.extend(l.into_iter().map(|mut l| {
                    l.region = Some(region.to_string());
                    l
                })),
                Err(e) => found
                    .problems
                    .push(format!("region {region}: {}: {e}", folder.display())),
            }
        }
        if let Some(grace) = scope.unowned_grace {
            match artifacts(cat, plan, region, vault, grace, now).await {
                Ok(l) => found.leftovers.extend(l),
                Err(ArtifactsError::Vault(e)) => {
                    found.problems.push(format!("region {region}: {e}"))
                }
                Err(ArtifactsError::Catalog(e)) => return Err(e.into()),
            }
        }
    }
    Ok(found)
}

/// Snapshot folders in `tmp_dir` (the work folder's `tmp`) older than
/// [`TEMPORARY_GRACE`] whose process is gone.
pub async fn in_work_dir(tmp_dir: &Path, now: Millis) -> Found {
    let dir = tmp_dir.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || snapshot_folders(&dir, now)).await;
    match joined {
        Ok(Ok(leftovers)) => Found {
            leftovers,
            problems: Vec::new(),
        },
        Ok(Err(e)) => Found {
            leftovers: Vec::new(),
            problems: vec![format!("{}: {e}", tmp_dir.display())],
        },
        Err(e) => Found {
            leftovers: Vec::new(),
            problems: vec![format!("{}: {e}", tmp_dir.display())],
        },
    }
}

/// The daemon's start-up recovery: removes the partial uploads in every
/// plan's `file://` vaults and the snapshot folders in the work folder that
/// crashed processes left (unowned artifacts wait for a prune). Problems
/// are logged; returns how many were removed.
pub async fn remove_temporaries(ctx: &Context, plans: &[Plan], now: Millis) -> usize {
    let mut found = in_work_dir(&ctx.tmp_dir(), now).await;
    let scope = Scope {
        region: None,
        unowned_grace: None,
    };
    for plan in plans {
        match in_vaults(&ctx.catalog, plan, scope, now).await {
            Ok(f) => {
                found.leftovers.extend(f.leftovers);
                found.problems.extend(f.problems);
            }
            Err(e) => found.problems.push(format!("plan {}: {e}", plan.name)),
        }
    }
    for p in &found.problems {
        tracing::warn!(problem = %p, "cannot look for what crashed processes left");
    }
    let done = remove(found.leftovers, now, false).await;
    done.iter()
        .filter(|(_, o)| matches!(o, Outcome::Removed))
        .count()
}

/// A prune's sweep: removes the plan's partial uploads and the artifacts
/// no usable point owns older than `grace`, and the work folder's snapshot
/// folders of backups that are gone. Problems are logged.
pub async fn sweep(
    ctx: &Context,
    plan: &Plan,
    grace: Duration,
    now: Millis,
) -> Result<Vec<(Leftover, Outcome)>, LeftoversError> {
    let scope = Scope {
        region: None,
        unowned_grace: Some(grace),
    };
    let mut found = in_vaults(&ctx.catalog, plan, scope, now).await?;
    let work = in_work_dir(&ctx.tmp_dir(), now).await;
    found.leftovers.extend(work.leftovers);
    found.problems.extend(work.problems);
    for p in &found.problems {
        tracing::warn!(problem = %p, "cannot look for what crashed processes left");
    }
    Ok(remove(found.leftovers, now, false).await)
}

/// Removes each leftover (or, `dry_run`, says it would), except the
/// unrecorded ones and those still under object lock.
pub async fn remove(
    leftovers: Vec<Leftover>,
    now: Millis,
    dry_run: bool,
) -> Vec<(Leftover, Outcome)> {
    let mut out = Vec::with_capacity(leftovers.len());
    for l in leftovers {
        let locked = l.locked_until.is_some_and(|until| until > now);
        let outcome = match (&l.target, locked, dry_run) {
            (Target::Nothing, _, _) | (_, true, _) => Outcome::Kept,
            (_, false, true) => Outcome::WouldRemove,
            (target, false, false) => match remove_target(target).await {
                Ok(()) => Outcome::Removed,
                Err(e) => Outcome::Failed(e),
            },
        };
        match &outcome {
            Outcome::Removed => tracing::info!(
                kind = l.kind.as_str(),
                location = %l.location,
                bytes = l.bytes,
                "removed what a crashed process left"
            ),
            Outcome::Failed(e) => tracing::warn!(
                kind = l.kind.as_str(),
                location = %l.location,
                error = %e,
                "cannot remove what a crashed process left; will retry"
            ),
            _ => {}
        }
        out.push((l, outcome));
    }
    out
}

async fn remove_target(target: &Target) -> Result<(), String> {
    match target {
        Target::File(path) => match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
        Target::Folder(path) => match tokio::fs::remove_dir_all(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        },
        Target::Objects { vault, keys } => {
            for key in keys {
                vault.delete(key).await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Target::Nothing => Ok(()),
    }
}

/// Whether something last written at `modified` is older than `grace` at `now`.
fn older_than(modified: Option<Millis>, grace: Duration, now: Millis) -> bool {
    let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    modified.is_some_and(|m| m <= now.saturating_sub(grace))
}

fn modified_of(meta: &std::fs::Metadata) -> Option<Millis> {
    meta.modified().ok().map(from_system_time)
}

/// A `file://` vault's temporary: `.NAME.tmp-RANDOM` (see `vault::file`).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// The temporaries under `folder` (a plan's folder in a `file://` vault)
/// older than [`TEMPORARY_GRACE`].
async fn partial_uploads(folder: &Path, now: Millis) -> Result<Vec<Leftover>, std::io::Error> {
    let folder = folder.to_path_buf();
    let walked = tokio::task::spawn_blocking(move || -> Result<Vec<Leftover>, std::io::Error> {
        let mut out = Vec::new();
        if !folder.exists() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&folder).sort_by_file_name() {
            let entry = entry.map_err(std::io::Error::from)?;
            let name = entry.file_name().to_string_lossy();
            if !entry.file_type().is_file() || !is_temporary(&name) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let modified = modified_of(&meta);
            if older_than(modified, TEMPORARY_GRACE, now) {
                out.push(Leftover {
                    kind: LeftoverKind::PartialUpload,
                    location: entry.path().display().to_string(),
                    region: None,
                    objects: 1,
                    bytes: meta.len(),
                    modified,
                    locked_until: None,
                    target: Target::File(entry.path().to_path_buf()),
                });
            }
        }
        Ok(out)
    })
    .await;
    walked.map_err(std::io::Error::other)?
}

/// The snapshot folders of `tmp_dir` older than [`TEMPORARY_GRACE`] whose
/// process is gone (or unknown: folders named before they carried it).
fn snapshot_folders(tmp_dir: &Path, now: Millis) -> Result<Vec<Leftover>, std::io::Error> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(tmp_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = resource::snapshot_folder_pid(&name) else {
            continue;
        };
        if !entry.file_type()?.is_dir() || pid.is_some_and(process_is_alive) {
            continue;
        }
        // The newest write inside: a snapshot being written is fresh.
        let (mut objects, mut bytes, mut modified) = (0, 0, modified_of(&entry.metadata()?));
        for inner in walkdir::WalkDir::new(entry.path()).min_depth(1) {
            let Ok(inner) = inner else { continue };
            let Ok(meta) = inner.metadata() else { continue };
            if meta.is_file() {
                objects += 1;
                bytes += meta.len();
            }
            modified = modified.max(modified_of(&meta));
        }
        if older_than(modified, TEMPORARY_GRACE, now) {
            out.push(Leftover {
                kind: LeftoverKind::SnapshotFolder,
                location: entry.path().display().to_string(),
                region: None,
                objects,
                bytes,
                modified,
                locked_until: None,
                target: Target::Folder(entry.path()),
            });
        }
    }
    out.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(out)
}

/// Whether process `pid` exists (on this host, in this PID namespace).
fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only asks whether `pid` (a
    // single process: positive) exists and may be signalled.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[derive(Debug)]
enum ArtifactsError {
    Vault(crate::vault::VaultError),
    Catalog(CatalogError),
}

/// The base (`PLAN/RESOURCE/STAMP-pID`) of one of a point's vault keys:
/// its artifact, its manifest, or one of an `s3` point's objects; `None`
/// for a key Lifeboat did not name that way.
fn base_of(key: &str) -> Option<&str> {
    if let Some(base) = key.strip_suffix(MANIFEST_SUFFIX) {
        return Some(base);
    }
    if let Some((base, _)) = key.split_once(".objects/") {
        return Some(base);
    }
    let manifest = ArtifactKeys::from_artifact_key(key).manifest;
    let base = manifest.strip_suffix(MANIFEST_SUFFIX)?;
    (base != key).then(|| &key[..base.len()])
}

/// The plan's unowned and unrecorded artifacts in one region's vault.
async fn artifacts(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
    vault: Vault,
    grace: Duration,
    now: Millis,
) -> Result<Vec<Leftover>, ArtifactsError> {
    let filter = PointFilter {
        plan: Some(plan.name.clone()),
        region: Some(region.to_string()),
        resource: None,
        all_statuses: true,
    };
    let points = cat.points(&filter).await.map_err(ArtifactsError::Catalog)?;
    let mut owned: HashSet<String> = HashSet::new();
    let mut known: HashSet<String> = HashSet::new();
    for p in &points {
        let Some(keys) = p.stored.as_ref().and_then(resource::Location::vault_keys) else {
            continue;
        };
        let Some(base) = base_of(&keys.artifact) else {
            continue;
        };
        let usable_or_in_progress = matches!(
            p.status,
            PointStatus::Running
                | PointStatus::Complete
                | PointStatus::Damaged
                | PointStatus::Deleting
        );
        if usable_or_in_progress {
            owned.insert(base.to_string());
        }
        known.insert(base.to_string());
    }
    let listed = vault
        .list(&format!("{}/", plan.name))
        .await
        .map_err(ArtifactsError::Vault)?;
    let mut groups: BTreeMap<&str, Vec<&crate::vault::ObjectInfo>> = BTreeMap::new();
    for o in &listed {
        let Some(base) = base_of(&o.key) else {
            continue;
        };
        let named_for_plan = ArtifactKeys::parse_base(base).is_some_and(|(p, _, _)| p == plan.name);
        if named_for_plan && !owned.contains(base) {
            groups.entry(base).or_default().push(o);
        }
    }
    let lock = plan.regions.get(region).and_then(|r| r.object_lock);
    let deleting = if lock.is_some() {
        vault.clone().with_versioned_deletes()
    } else {
        vault.clone()
    };
    let mut out = Vec::new();
    for (base, objects) in groups {
        // Every object must be old: the newest decides. An object whose
        // time is unknown makes the whole artifact too young to judge.
        let modified = objects
            .iter()
            .map(|o| o.modified)
            .try_fold(i64::MIN, |newest, m| m.map(|m| newest.max(m)));
        if !older_than(modified, grace, now) {
            continue;
        }
        let has_manifest = objects.iter().any(|o| o.key.ends_with(MANIFEST_SUFFIX));
        let (kind, target) = if has_manifest && !known.contains(base) {
            (LeftoverKind::Unrecorded, Target::Nothing)
        } else {
            let keys = objects.iter().map(|o| o.key.clone()).collect();
            (
                LeftoverKind::Unowned,
                Target::Objects {
                    vault: deleting.clone(),
                    keys,
                },
            )
        };
        let locked_until = match (lock, modified) {
            (Some(lock), Some(m)) => Some(lock.until(m)),
            _ => None,
        };
        out.push(Leftover {
            kind,
            location: vault.location(base),
            region: Some(region.to_string()),
            objects: objects.len(),
            bytes: objects.iter().map(|o| o.size).sum(),
            modified,
            locked_until,
            target,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_point_has_its_base() {
        let base = "shop/files/20260101T000000000Z-p7";
        for key in [
            format!("{base}.tar.zst"),
            format!("{base}.sqlite.zst"),
            format!("{base}.pgdump"),
            format!("{base}.manifest.json"),
            format!("{base}.objects/00000001"),
        ] {
            assert_eq!(base_of(&key), Some(base), "{key}");
        }
        assert_eq!(base_of("shop/files/notes.txt"), None);
        assert_eq!(base_of("evidence/shop/000000000001.json"), None);
    }

    #[test]
    fn ages_are_judged_on_the_newest_write() {
        let hour = Duration::from_secs(3600);
        assert!(older_than(Some(0), hour, 3_600_000));
        assert!(!older_than(Some(1), hour, 3_600_000));
        assert!(!older_than(None, hour, i64::MAX));
        assert!(!older_than(Some(0), Duration::MAX, 0));
    }

    #[tokio::test]
    async fn locked_unrecorded_and_dry_run_leftovers_stay() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = |name: &str, locked_until, target: bool| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            Leftover {
                kind: LeftoverKind::Unowned,
                location: path.display().to_string(),
                region: None,
                objects: 1,
                bytes: 1,
                modified: Some(0),
                locked_until,
                target: if target {
                    Target::File(path)
                } else {
                    Target::Nothing
                },
            }
        };
        let now = 1_000;
        let all = vec![
            leftover("locked", Some(now + 1), true),
            leftover("lock-ended", Some(now), true),
            leftover("unrecorded", None, false),
        ];
        let dry = remove(all.clone(), now, true).await;
        assert!(matches!(dry[0].1, Outcome::Kept));
        assert!(matches!(dry[1].1, Outcome::WouldRemove));
        assert!(matches!(dry[2].1, Outcome::Kept));
        assert!(dir.path().join("lock-ended").exists());
        let done = remove(all, now, false).await;
        assert!(matches!(done[0].1, Outcome::Kept));
        assert!(matches!(done[1].1, Outcome::Removed));
        assert!(matches!(done[2].1, Outcome::Kept));
        assert!(dir.path().join("locked").exists());
        assert!(!dir.path().join("lock-ended").exists());
        assert!(dir.path().join("unrecorded").exists());
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(process_is_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_is_alive(pid));
        assert!(!process_is_alive(0));
        assert!(!process_is_alive(u32::MAX));
    }
}
