//! The last step of `lifeboat restore --to DIR`: a tree restored and
//! verified in a staging folder is put in the target.
//!
//! - Into a target that does not exist: one `rename` of the whole staging
//!   folder (staged beside the target, so on its file system): the target
//!   appears complete or not at all.
//! - Otherwise (`--overwrite`, or `--include` picking part of the point):
//!   staged inside the target, then each entry renamed over its place
//!   (each file atomically replaced; folders merged). Files of the target
//!   the point does not hold stay. While entries move, a marker file
//!   (`.lifeboat-restore-incomplete`) in the target says so; a restore
//!   killed then leaves the marker, and running the restore again
//!   finishes the job. Folders get the point's modes, owners and times
//!   last, deepest first, since moving entries changes them.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use globset::GlobSet;

/// The marker left in a target while a restore moves entries into it.
pub const INCOMPLETE_MARKER: &str = ".lifeboat-restore-incomplete";

/// What was put in place.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Entries (files, links, folders) now in the target from the point.
    pub entries: u64,
    /// Of which replaced an entry that was there.
    pub replaced: u64,
}

/// Puts the tree in `staged` into `target`; with `include`, only the
/// entries it matches (or that lie under a folder it matches). `staged`
/// is beside `target` when `target` does not exist, else inside it.
pub fn commit(
    staged: &Path,
    target: &Path,
    include: Option<&GlobSet>,
    what: &str,
) -> io::Result<Committed> {
    if include.is_none() && fs::symlink_metadata(target).is_err() {
        fs::rename(staged, target)?;
        sync_dir(target.parent().unwrap_or(Path::new(".")));
        let entries = walkdir::WalkDir::new(target)
            .min_depth(1)
            .into_iter()
            .count() as u64;
        return Ok(Committed {
            entries,
            replaced: 0,
        });
    }
    fs::create_dir_all(target)?;
    let marker = target.join(INCOMPLETE_MARKER);
    fs::write(
        &marker,
        format!("a `lifeboat restore` of {what} is moving files into this folder; if this file is still here, it stopped half-way: run the restore again\n"),
    )?;
    let mut done = Committed::default();
    // Folders whose metadata is applied at the end: (target path, staged metadata).
    let mut folders: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    if include.is_none() {
        folders.push((target.to_path_buf(), fs::symlink_metadata(staged)?));
    }
    let mut walk = walkdir::WalkDir::new(staged)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(staged)
            .map_err(io::Error::other)?
            .to_path_buf();
        let dest = target.join(&rel);
        let is_dir = entry.file_type().is_dir();
        if !included(include, &rel) {
            continue;
        }
        // The folders above an included entry exist in the target, with
        // the point's metadata applied at the end.
        for ancestor in rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
        {
            let there = target.join(ancestor);
            if !fs::symlink_metadata(&there).is_ok_and(|m| m.is_dir()) {
                remove_any(&there)?;
                fs::create_dir(&there)?;
                folders.push((there, fs::symlink_metadata(staged.join(ancestor))?));
            }
        }
        let existing = fs::symlink_metadata(&dest).ok();
        if existing.is_some() {
            done.replaced += 1;
        }
        done.entries += 1;
        if is_dir {
            match existing {
                Some(m) if m.is_dir() => {
                    // Merged: its entries move one by one.
                    folders.push((dest, entry.metadata().map_err(io::Error::other)?));
                }
                other => {
                    if other.is_some() {
                        remove_any(&dest)?;
                    }
                    let moved = walkdir::WalkDir::new(entry.path())
                        .min_depth(1)
                        .into_iter()
                        .count();
                    fs::rename(entry.path(), &dest)?;
                    done.entries += moved as u64;
                    walk.skip_current_dir();
                }
            }
        } else {
            if existing.as_ref().is_some_and(|m| m.is_dir()) {
                remove_any(&dest)?;
            }
            // A file replaces the old one atomically.
            fs::rename(entry.path(), &dest)?;
        }
    }
    fs::remove_file(&marker)?;
    crate::resource::path::remove_scratch(staged)?;
    // Deepest first: setting a folder's time must come after its entries
    // changed, and a read-only folder after what goes into it.
    folders.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, meta) in &folders {
        apply_folder_metadata(path, meta)?;
    }
    sync_dir(target);
    Ok(done)
}

/// Whether `rel` is picked by `include`: matched itself, or under a
/// matched folder. No `include`: everything.
pub fn included(include: Option<&GlobSet>, rel: &Path) -> bool {
    match include {
        None => true,
        Some(set) => rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| set.is_match(a)),
    }
}

/// Removes a file, a link or a whole folder.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => crate::resource::path::remove_scratch(path),
        Ok(_) => fs::remove_file(path),
    }
}

/// Gives `path` the mode, owner (when root) and times of the staged
/// folder `meta` describes.
fn apply_folder_metadata(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if super::sys::running_as_root() {
        std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    let atime = filetime::FileTime::from_last_access_time(meta);
    let mtime = filetime::FileTime::from_last_modification_time(meta);
    filetime::set_file_times(path, atime, mtime)
}

/// Makes a folder's entries durable (best effort: some file systems do
/// not allow opening a folder for sync).
fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}
