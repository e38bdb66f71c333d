//! `path` resources: a folder (or file) archived as tar + zstd, with a
//! manifest recording every entry: type, name (its exact bytes), size,
//! SHA-256, mode, owner, time to the nanosecond, link target, hard-link
//! identity and holes.
//!
//! Backup (`walk`) reads each file once: the bytes go through SHA-256 into
//! the tar stream, through zstd, into the vault, in bounded memory.
//! Restore (`extract`) streams the archive back, refusing only what would
//! write outside the scratch folder, checks every file as it is written,
//! restores metadata and holes, then compares the restored tree with the
//! manifest (`fidelity`).

pub mod commit;
mod decode_ahead;
mod extract;
mod fidelity;
mod holes;
mod names;
mod sys;
#[cfg(test)]
mod tests;
mod walk;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use tokio_util::io::SyncIoBridge;

use super::flag::PointFlag;
use super::manifest::{ArtifactInfo, EntryType, FileEntry, Manifest};
use super::{ArtifactKeys, Kind, ResourceError, Restored, RestoredInto, Snapshot};
use crate::pipe::pipe;
use crate::vault::{HashingReader, Vault};
use extract::extract;
use walk::write_archive;

/// Archives `root` (a folder, or a single file), minus what `exclude`
/// matches, into `keys.artifact`; returns its manifest. `data_time` is
/// when reading starts. Links are stored as links, whatever they point
/// to; a second name of a file as a hard link; sockets, FIFOs and devices
/// are skipped (flag `special-skipped`); what vanishes while the tree is
/// read is left out (flag `vanished`). A file that moves while read (and,
/// if small, again when read once more) is flagged `changed-while-read`.
/// `label` names the progress bar.
pub async fn snapshot(
    root: &Path,
    exclude: &[String],
    vault: &Vault,
    keys: &ArtifactKeys,
    label: &str,
) -> Result<(Snapshot, Manifest), ResourceError> {
    let data_time = crate::time::now_ms();
    let meta = fs::symlink_metadata(root)
        .map_err(|e| ResourceError::Source(format!("cannot read path {}: {e}", root.display())))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(ResourceError::Source(format!(
            "path {} is neither a folder nor a file",
            root.display()
        )));
    }
    // The folder's own mode, owner and time, read before anything in it
    // is: a restore gives them to the folder it restores into.
    let root_entry = meta
        .is_dir()
        .then(|| walk::record(b".", EntryType::Dir, &meta));
    let globs = build_globs(exclude)?;
    let (files, artifact, flags) = archive(root, globs, vault, keys, label).await?;
    let file_count = files
        .iter()
        .filter(|f| f.entry_type == EntryType::File)
        .count() as u64;
    let content_bytes = files.iter().map(|f| f.size).sum();
    let manifest = Manifest {
        format: Manifest::FORMAT,
        point: None,
        kind: Kind::Path,
        data_time: crate::time::rfc3339(data_time),
        artifact: artifact.clone(),
        file_count,
        content_bytes,
        root: root_entry,
        files,
        database: None,
        postgres: None,
        bucket: None,
        objects: Vec::new(),
    };
    let snapshot = Snapshot {
        data_time,
        size_bytes: artifact.size,
        sha256: artifact.sha256,
        file_count,
        content_bytes,
        flags,
        manifest_sha256: None,
    };
    Ok((snapshot, manifest))
}

/// Streams `root` (minus what `globs` matches) as tar + zstd into
/// `keys.artifact`. Returns the entries, the artifact and the flags of
/// what changed while it was read.
async fn archive(
    root: &Path,
    globs: GlobSet,
    vault: &Vault,
    keys: &ArtifactKeys,
    label: &str,
) -> Result<(Vec<FileEntry>, ArtifactInfo, Vec<PointFlag>), ResourceError> {
    let (writer, reader) = pipe();
    // A bar with a total (and an ETA) costs a walk of the sizes first:
    // only when someone is watching.
    let total = if crate::progress::visible() {
        let (root, globs) = (root.to_path_buf(), globs.clone());
        tokio::task::spawn_blocking(move || walk::content_bytes(&root, &globs))
            .await
            .ok()
    } else {
        None
    };
    let progress = crate::progress::bytes(format!("backup {label}"), total);
    let root_owned = root.to_path_buf();
    let bar = progress.clone();
    let producer =
        tokio::task::spawn_blocking(move || write_archive(&root_owned, &globs, writer, &bar));
    let put = vault.put(&keys.artifact, reader);
    let (produced, put) = tokio::join!(producer, put);
    progress.finish_and_clear();
    let produced = produced
        .map_err(|e| ResourceError::Other(format!("archiving {} stopped: {e}", root.display())))?;
    // The producer's error explains a failed put better than the pipe's,
    // unless the producer only heard the pipe close.
    match (produced, put) {
        // A producer that only heard the upload stop: the vault's error
        // says why (a full vault, a refused write), not the source.
        (Err(e), put) => Err(match crate::pipe::cause(e, put.err()) {
            Ok(e) => e,
            Err(vault) => vault.into(),
        }),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(p), Ok(size)) => {
            debug_assert_eq!(size, p.1.size);
            Ok(p)
        }
    }
}

fn build_globs(exclude: &[String]) -> Result<GlobSet, ResourceError> {
    let mut b = GlobSetBuilder::new();
    for g in exclude {
        let glob = Glob::new(g)
            .map_err(|e| ResourceError::Source(format!("invalid exclude glob `{g}`: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| ResourceError::Source(format!("invalid exclude globs: {e}")))
}

/// Extracts the point at `keys` into `dest` (created if needed), checking
/// every entry against `manifest` (the point's, already bound to the
/// catalog's record) as it is written, the restored tree
/// against the manifest (types, names, sizes, modes, times, owners when
/// root, link targets, hard links, holes) and the whole artifact's
/// SHA-256 at the end. Refuses entries that would be written outside
/// `dest` (absolute names, `..`, through a symlink), entries the manifest
/// does not list or lists with another type, and a manifest entry the
/// archive lacks. On an error, what was written so far stays in `dest`:
/// the drill's clean-up removes it.
pub async fn restore(
    vault: &Vault,
    keys: &ArtifactKeys,
    manifest: &Manifest,
    dest: &Path,
    label: &str,
) -> Result<Restored, ResourceError> {
    let location = vault.location(&keys.artifact);
    let reader = vault.get(&keys.artifact).await?;
    let (reader, digest) = HashingReader::new(reader);
    let progress = crate::progress::bytes(format!("restore {label}"), Some(manifest.content_bytes));
    let dest_owned = dest.to_path_buf();
    let loc = location.clone();
    let m = manifest.clone();
    let bar = progress.clone();
    let extracted = tokio::task::spawn_blocking(move || {
        let sync = SyncIoBridge::new(reader);
        extract(sync, &m, &dest_owned, &loc, &bar)
    })
    .await
    .map_err(|e| ResourceError::Other(format!("restoring {location} stopped: {e}")))?;
    progress.finish_and_clear();
    let summary = extracted?;
    let sha = digest.hex();
    if sha != manifest.artifact.sha256 || digest.len() != manifest.artifact.size {
        return Err(ResourceError::Corrupt {
            location,
            detail: format!(
                "artifact checksum mismatch: manifest says {} bytes with sha256 {}, read {} bytes with sha256 {}",
                manifest.artifact.size,
                manifest.artifact.sha256,
                digest.len(),
                sha
            ),
        });
    }
    let root = match &manifest.root {
        Some(root) => {
            extract::apply_root(dest, root)?;
            "; the folder's own mode, owner and time too"
        }
        None => "",
    };
    Ok(Restored {
        verification: format!("{summary}{root}; artifact sha256 verified"),
        into: RestoredInto::Folder(dest.to_path_buf()),
    })
}

/// Removes a scratch folder: at once, and only when that fails (a restored
/// read-only folder) makes every folder in it writable and tries again —
/// one walk of the tree instead of two for the usual case. (Removing the
/// branches on several cores was tried: no faster on tmpfs, where
/// unlinking in one folder is serialised by the folder's lock.)
pub fn remove_scratch(dir: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(dir).is_err() || fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
        }
    }
    fs::remove_dir_all(dir)
}
