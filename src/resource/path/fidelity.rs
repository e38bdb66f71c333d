//! After a restore: the restored tree compared with the manifest, entry
//! by entry (type, exact name, size, mode, time, owner when root, link
//! targets, hard-link identity), and the sentence that says what was
//! verified. Contents and holes are checked as each file is written.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::super::manifest::{EntryType, FileEntry};
use super::names::{self, shown};

/// Differences named in an error; the rest are counted.
const SHOWN_DIFFERENCES: usize = 5;

/// What a restore restored and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) dirs: u64,
    pub(super) symlinks: u64,
    pub(super) hard_links: u64,
    /// Files restored with their holes (checked to be holes).
    pub(super) sparse: u64,
    /// Sparse files whose holes the restore folder's filesystem could not
    /// report.
    pub(super) holes_unchecked: u64,
    /// The manifest records times and owners (not a format-1 point).
    timed: bool,
    owners_recorded: bool,
    as_root: bool,
}

impl Summary {
    pub(super) fn new(files: &[FileEntry], as_root: bool) -> Summary {
        Summary {
            files: 0,
            bytes: 0,
            dirs: 0,
            symlinks: 0,
            hard_links: 0,
            sparse: 0,
            holes_unchecked: 0,
            timed: files.iter().all(|f| !f.is_legacy()),
            owners_recorded: files.iter().any(|f| f.uid.is_some()),
            as_root,
        }
    }
}

/// E.g. "3,204 files (1.2 GiB), 12 symlinks, 3 hard links, 1 sparse file:
/// contents, names, modes, times and owners match the manifest".
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!(
            "{} ({})",
            crate::units::things(self.files, "file", "files"),
            crate::units::size(self.bytes)
        )];
        for (n, one, many) in [
            (self.dirs, "folder", "folders"),
            (self.symlinks, "symlink", "symlinks"),
            (self.hard_links, "hard link", "hard links"),
            (self.sparse, "sparse file", "sparse files"),
        ] {
            if n > 0 {
                parts.push(crate::units::things(n, one, many));
            }
        }
        write!(f, "{}: ", parts.join(", "))?;
        if !self.timed {
            f.write_str(
                "contents (sha256), names and modes match the manifest \
                 (this point's manifest records no times or owners)",
            )?;
        } else if self.as_root || !self.owners_recorded {
            f.write_str("contents (sha256), names, modes, times and owners match the manifest")?;
        } else {
            f.write_str(
                "contents (sha256), names, modes and times match the manifest; \
                 owners were not applied (not running as root)",
            )?;
        }
        if self.holes_unchecked > 0 {
            write!(
                f,
                "; the holes of {} could not be checked (the restore folder's filesystem does not report holes)",
                crate::units::things(self.holes_unchecked, "sparse file", "sparse files")
            )?;
        }
        Ok(())
    }
}

/// Whether a restored link's target is the one the manifest records
/// (a legacy entry recorded it lossily).
pub(super) fn same_target(want: &FileEntry, target: &[u8]) -> bool {
    match want.target_bytes() {
        Some(t) if t == target => true,
        Some(t) if want.is_legacy() && want.target_hex.is_none() => {
            t == String::from_utf8_lossy(target).as_bytes()
        }
        _ => false,
    }
}

/// The differences found, for an error message.
#[derive(Debug)]
pub(super) struct Differences {
    count: usize,
    shown: Vec<String>,
}

impl Differences {
    fn add(&mut self, name: &[u8], what: String) {
        self.count += 1;
        if self.shown.len() < SHOWN_DIFFERENCES {
            self.shown.push(format!("`{}`: {what}", shown(name)));
        }
    }
}

impl fmt::Display for Differences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shown.join("; "))?;
        if self.count > self.shown.len() {
            write!(f, "; and {} more", self.count - self.shown.len())?;
        }
        Ok(())
    }
}

fn type_name(t: EntryType) -> &'static str {
    match t {
        EntryType::File | EntryType::Hardlink => "file",
        EntryType::Dir => "folder",
        EntryType::Symlink => "symlink",
    }
}

/// Compares the tree restored under `dest` with the manifest's entries.
/// `renamed` says where a legacy entry (a lossy name) was restored.
/// Owners are compared only when running as root (else not applied).
pub(super) fn compare(
    files: &[FileEntry],
    dest: &Path,
    renamed: &HashMap<usize, Vec<u8>>,
    as_root: bool,
) -> Result<(), Differences> {
    let mut diff = Differences {
        count: 0,
        shown: Vec::new(),
    };
    // Only the first names of hard links need their inode kept.
    let linked: HashSet<&[u8]> = files
        .iter()
        .filter(|f| f.entry_type == EntryType::Hardlink)
        .filter_map(FileEntry::target_bytes)
        .collect();
    let mut inodes: HashMap<&[u8], (u64, u64)> = HashMap::new();
    for (i, want) in files.iter().enumerate() {
        let name = renamed.get(&i).map_or(want.name_bytes(), Vec::as_slice);
        let path = dest.join(names::as_path(name));
        let m = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                diff.add(name, format!("not restored ({e})"));
                continue;
            }
        };
        let ft = m.file_type();
        let right_type = match want.entry_type {
            EntryType::File | EntryType::Hardlink => ft.is_file(),
            EntryType::Dir => ft.is_dir(),
            EntryType::Symlink => ft.is_symlink(),
        };
        if !right_type {
            diff.add(
                name,
                format!("not a {} on disk", type_name(want.entry_type)),
            );
            continue;
        }
        match want.entry_type {
            EntryType::File => {
                if m.len() != want.size {
                    diff.add(
                        name,
                        format!("{} bytes, the manifest says {}", m.len(), want.size),
                    );
                }
                if linked.contains(name) {
                    inodes.insert(name, (m.dev(), m.ino()));
                }
            }
            EntryType::Hardlink => {
                // One inode, one set of metadata: checked at its first name.
                let first = want.target_bytes().unwrap_or_default();
                if inodes.get(first) != Some(&(m.dev(), m.ino())) {
                    diff.add(
                        name,
                        format!("not the same file as `{}` (a hard link)", shown(first)),
                    );
                }
                continue;
            }
            EntryType::Symlink => match fs::read_link(&path) {
                Ok(t) if same_target(want, t.as_os_str().as_bytes()) => {}
                Ok(t) => diff.add(
                    name,
                    format!(
                        "points to `{}`, the manifest says `{}`",
                        shown(t.as_os_str().as_bytes()),
                        shown(want.target_bytes().unwrap_or_default())
                    ),
                ),
                Err(e) => diff.add(name, format!("cannot read the link ({e})")),
            },
            EntryType::Dir => {}
        }
        // A symlink's own mode means nothing on Linux (always 0777).
        if want.entry_type != EntryType::Symlink && m.mode() & 0o7777 != want.mode {
            diff.add(
                name,
                format!(
                    "mode {:04o}, the manifest says {:04o}",
                    m.mode() & 0o7777,
                    want.mode
                ),
            );
        }
        if let Some(sec) = want.mtime {
            if (m.mtime(), m.mtime_nsec()) != (sec, i64::from(want.mtime_nsec)) {
                diff.add(
                    name,
                    format!(
                        "modified {}, the manifest says {}",
                        names::shown_time(m.mtime(), m.mtime_nsec()),
                        names::shown_time(sec, i64::from(want.mtime_nsec))
                    ),
                );
            }
        }
        if let (true, Some(uid), Some(gid)) = (as_root, want.uid, want.gid) {
            if (m.uid(), m.gid()) != (uid, gid) {
                diff.add(
                    name,
                    format!(
                        "owner {}:{}, the manifest says {uid}:{gid}",
                        m.uid(),
                        m.gid()
                    ),
                );
            }
        }
    }
    if diff.count == 0 {
        Ok(())
    } else {
        Err(diff)
    }
}
