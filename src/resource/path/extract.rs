//! The restore side of a `path` point: extracts the archive into the
//! scratch folder, checking every entry against the manifest as it is
//! written, then applies folders' metadata (deepest first) and compares
//! the whole restored tree with the manifest.
//!
//! Links are data: a symlink is restored with its exact target, whatever
//! it points to. What is refused is what would *write* outside the
//! folder: entry names that are absolute or hold `..`, hard links to
//! anything but a file this archive restored, and writing through a
//! symlink (a parent that is a link is refused, and files are created
//! with `O_EXCL`, which does not follow one).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use filetime::FileTime;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::super::manifest::{EntryType, FileEntry, Manifest};
use super::super::ResourceError;
use super::decode_ahead::decode_ahead;
use super::fidelity::{self, Summary};
use super::names::{self, shown};
use super::{holes, sys};

/// Blocking: extracts the archive under `dest`, verifying each entry
/// against the manifest, then the restored tree as a whole. Returns what
/// was restored and verified.
/// The artifact is read, hashed and decompressed on a second thread
/// ([`decode_ahead`]) while this one checks, hashes and writes the files.
pub(super) fn extract(
    reader: impl Read + Send,
    manifest: &Manifest,
    dest: &Path,
    location: &str,
    progress: &ProgressBar,
) -> Result<Summary, ResourceError> {
    fs::create_dir_all(dest).map_err(ResourceError::io("create", dest))?;
    let mut x = Extractor::new(&manifest.files, dest, location, progress);
    std::thread::scope(|scope| {
        let decoded = decode_ahead(scope, reader)
            .map_err(|e| x.corrupt(format!("cannot start decompression: {e}")))?;
        let mut archive = tar::Archive::new(decoded);
        let entries = archive
            .entries()
            .map_err(|e| x.corrupt(format!("cannot read archive: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| x.corrupt(format!("cannot read archive: {e}")))?;
            x.entry(&mut entry)?;
        }
        // Read to the end so the artifact's checksum covers every byte.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink())
            .map_err(|e| x.corrupt(format!("cannot read the end of the archive: {e}")))?;
        Ok::<(), ResourceError>(())
    })?;
    x.finish()
}

/// A manifest's entries by name. Names are unique in a manifest this
/// build writes; one written with lossy names (format 1) may hold two
/// alike, and matches archive names that are not UTF-8 by their lossy
/// form.
struct Index<'m> {
    first: HashMap<&'m [u8], usize>,
    /// Second and later entries of a name (legacy manifests only).
    more: HashMap<&'m [u8], Vec<usize>>,
}

impl<'m> Index<'m> {
    fn new(files: &'m [FileEntry]) -> Self {
        let mut first = HashMap::with_capacity(files.len());
        let mut more: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            match first.entry(f.name_bytes()) {
                Entry::Vacant(e) => {
                    e.insert(i);
                }
                Entry::Occupied(_) => more.entry(f.name_bytes()).or_default().push(i),
            }
        }
        Index { first, more }
    }

    fn all(&self, name: &[u8]) -> impl Iterator<Item = usize> + '_ {
        self.first
            .get(name)
            .copied()
            .into_iter()
            .chain(self.more.get(name).into_iter().flatten().copied())
    }

    /// The entry an archive entry named `name` restores: the first not yet
    /// seen with that name (or the first, seen: a duplicate), else a
    /// legacy entry with the name's lossy form.
    fn find(&self, name: &[u8], files: &[FileEntry], seen: &[bool]) -> Option<usize> {
        if let Some(i) = self.all(name).find(|i| !seen[*i]) {
            return Some(i);
        }
        if let Some(&i) = self.first.get(name) {
            return Some(i);
        }
        if std::str::from_utf8(name).is_ok() {
            return None;
        }
        let lossy = String::from_utf8_lossy(name);
        self.all(lossy.as_bytes())
            .find(|i| !seen[*i] && files[*i].is_legacy() && files[*i].path_hex.is_none())
    }
}

/// What the archive says of an entry's metadata; restored from here, so
/// the comparison with the manifest afterwards catches an archive and a
/// manifest that disagree.
#[derive(Debug, Clone, Copy)]
struct ArchiveMeta {
    mode: u32,
    mtime: i64,
    mtime_nsec: u32,
    /// Owner; none in archives of builds that did not record one.
    uid: Option<u32>,
    gid: Option<u32>,
}

impl ArchiveMeta {
    fn read<R: Read>(entry: &mut tar::Entry<R>) -> Result<ArchiveMeta, String> {
        let h = entry.header();
        let bad = |what: &str, e: &dyn std::fmt::Display| format!("bad {what} in header: {e}");
        let mode = h.mode().map_err(|e| bad("mode", &e))? & 0o7777;
        let id = |n: std::io::Result<u64>| n.ok().and_then(|n| u32::try_from(n).ok());
        let (uid, gid) = (id(h.uid()), id(h.gid()));
        let mut mtime = (h.mtime().map_err(|e| bad("mtime", &e))? as i64, 0);
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad("PAX record", &e))? {
            for ext in pax {
                let ext = ext.map_err(|e| bad("PAX record", &e))?;
                if ext.key_bytes() == b"mtime" {
                    let value = ext.value().unwrap_or("");
                    mtime = names::parse_pax_time(value)
                        .ok_or_else(|| format!("bad PAX mtime `{value}`"))?;
                }
            }
        }
        Ok(ArchiveMeta {
            mode,
            mtime: mtime.0,
            mtime_nsec: mtime.1,
            uid,
            gid,
        })
    }

    fn modified(&self) -> FileTime {
        FileTime::from_unix_time(self.mtime, self.mtime_nsec)
    }
}

struct Extractor<'m> {
    files: &'m [FileEntry],
    index: Index<'m>,
    /// Per manifest entry: restored yet?
    seen: Vec<bool>,
    /// Where a legacy entry was restored, when not at its (lossy) name.
    renamed: HashMap<usize, Vec<u8>>,
    dest: &'m Path,
    location: &'m str,
    progress: &'m ProgressBar,
    /// Folders known to be real folders this restore made or checked.
    safe_dirs: HashSet<PathBuf>,
    /// Folders, in archive order, with what to apply once their children
    /// are written; and whether their owner is recorded.
    dirs: Vec<(PathBuf, ArchiveMeta, bool)>,
    as_root: bool,
    /// Reused for every file.
    buf: Vec<u8>,
    summary: Summary,
}

impl<'m> Extractor<'m> {
    fn new(
        files: &'m [FileEntry],
        dest: &'m Path,
        location: &'m str,
        progress: &'m ProgressBar,
    ) -> Self {
        let as_root = sys::running_as_root();
        Extractor {
            files,
            index: Index::new(files),
            seen: vec![false; files.len()],
            renamed: HashMap::new(),
            dest,
            location,
            progress,
            safe_dirs: HashSet::from([dest.to_path_buf()]),
            dirs: Vec::new(),
            as_root,
            buf: vec![0u8; 256 * 1024],
            summary: Summary::new(files, as_root),
        }
    }

    fn corrupt(&self, detail: String) -> ResourceError {
        ResourceError::Corrupt {
            location: self.location.to_string(),
            detail,
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ResourceError> {
        let rel = {
            let raw = entry.path_bytes();
            names::safe_relative(&raw).ok_or_else(|| {
                self.corrupt(format!(
                    "entry `{}` would be written outside the restore folder; refused",
                    shown(&raw)
                ))
            })?
        };
        let files = self.files;
        let Some(i) = self.index.find(&rel, files, &self.seen) else {
            return Err(self.corrupt(format!("entry `{}` is not in the manifest", shown(&rel))));
        };
        if self.seen[i] {
            return Err(self.corrupt(format!("entry `{}` appears twice", shown(&rel))));
        }
        self.seen[i] = true;
        let want = &files[i];
        if rel != want.name_bytes() {
            self.renamed.insert(i, rel.clone());
        }
        let target = self.dest.join(names::as_path(&rel));
        ensure_parents(self.dest, &target, &mut self.safe_dirs)
            .map_err(|detail| self.corrupt(format!("entry `{}`: {detail}", shown(&rel))))?;
        let meta = ArchiveMeta::read(entry)
            .map_err(|detail| self.corrupt(format!("entry `{}`: {detail}", shown(&rel))))?;
        match (entry.header().entry_type(), want.entry_type) {
            (tar::EntryType::Directory, EntryType::Dir) => self.dir(&rel, target, meta, want),
            (tar::EntryType::Regular | tar::EntryType::Continuous, EntryType::File) => {
                self.file(entry, &rel, &target, meta, want)
            }
            (tar::EntryType::Symlink, EntryType::Symlink) => {
                self.symlink(entry, &rel, &target, meta, want)
            }
            (tar::EntryType::Link, EntryType::Hardlink) => {
                self.hard_link(entry, &rel, &target, want)
            }
            (t, _) => Err(self.corrupt(format!(
                "entry `{}` has type {t:?}, the manifest says {:?}",
                shown(&rel),
                want.entry_type
            ))),
        }
    }

    fn dir(
        &mut self,
        rel: &[u8],
        target: PathBuf,
        meta: ArchiveMeta,
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(self.corrupt(format!("entry `{}`: not a folder on disk", shown(rel))))
            }
            Err(_) => fs::create_dir(&target).map_err(ResourceError::io("create", &target))?,
        }
        self.safe_dirs.insert(target.clone());
        self.dirs.push((target, meta, want.uid.is_some()));
        self.summary.dirs += 1;
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        rel: &[u8],
        target: &Path,
        meta: ArchiveMeta,
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        if !holes::valid(&want.holes, want.size) {
            return Err(self.corrupt(format!(
                "the manifest's holes of `{}` do not fit its {} bytes",
                shown(rel),
                want.size
            )));
        }
        // `create_new` (O_EXCL) does not follow a link planted at the name.
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(ResourceError::io("create", target))?;
        let mut hasher = Sha256::new();
        let mut sparse = holes::HoleWriter::new(&want.holes);
        let mut size = 0u64;
        loop {
            let n = entry
                .read(&mut self.buf)
                .map_err(|e| self.corrupt(format!("entry `{}`: cannot read: {e}", shown(rel))))?;
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            if want.holes.is_empty() {
                out.write_all(chunk)
                    .map_err(ResourceError::io("write", target))?;
            } else {
                sparse.write(&out, size, chunk).map_err(|e| match e {
                    holes::WriteError::Io(e) => ResourceError::io("write", target)(e),
                    holes::WriteError::NotZero(at) => self.corrupt(format!(
                        "file `{}` holds data at byte {at}, inside a hole the manifest records",
                        shown(rel)
                    )),
                })?;
            }
            size += n as u64;
            self.progress.inc(n as u64);
        }
        let sha = hex::encode(hasher.finalize());
        if size != want.size || Some(&sha) != want.sha256.as_ref() {
            return Err(self.corrupt(format!(
                "file `{}` does not match the manifest: expected {} bytes sha256 {}, got {} bytes sha256 {}",
                shown(rel),
                want.size,
                want.sha256.as_deref().unwrap_or("?"),
                size,
                sha
            )));
        }
        if !want.holes.is_empty() {
            // A trailing hole was never written: the length makes it.
            out.set_len(size)
                .map_err(ResourceError::io("write", target))?;
            self.check_holes(&out, rel, want)?;
        }
        self.apply_to_file(&out, target, meta, want)?;
        self.summary.files += 1;
        self.summary.bytes += size;
        Ok(())
    }

    fn check_holes(
        &mut self,
        out: &File,
        rel: &[u8],
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        match holes::check(out, &want.holes) {
            holes::Restored::Kept => self.summary.sparse += 1,
            holes::Restored::Unknown => self.summary.holes_unchecked += 1,
            holes::Restored::Filled(at) => {
                return Err(ResourceError::Mismatch(format!(
                    "restored file `{}` of {} holds data in the hole the manifest records at byte {at} \
                     (does the restore folder's filesystem support sparse files?)",
                    shown(rel),
                    self.location
                )))
            }
        }
        Ok(())
    }

    /// Owner (as root, when recorded), then mode (a change of owner clears
    /// setuid), then time.
    fn apply_to_file(
        &self,
        out: &File,
        target: &Path,
        meta: ArchiveMeta,
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        if self.as_root && want.uid.is_some() {
            std::os::unix::fs::fchown(out, meta.uid, meta.gid)
                .map_err(ResourceError::io("chown", target))?;
        }
        out.set_permissions(fs::Permissions::from_mode(meta.mode))
            .map_err(ResourceError::io("chmod", target))?;
        let modified = names::system_time(meta.mtime, meta.mtime_nsec);
        out.set_times(FileTimes::new().set_modified(modified))
            .map_err(ResourceError::io("set times of", target))
    }

    fn symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        rel: &[u8],
        target: &Path,
        meta: ArchiveMeta,
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        let link = entry
            .link_name_bytes()
            .ok_or_else(|| self.corrupt(format!("symlink `{}` has no target", shown(rel))))?
            .into_owned();
        if !fidelity::same_target(want, &link) {
            return Err(self.corrupt(format!(
                "symlink `{}` points to `{}`, the manifest says `{}`",
                shown(rel),
                shown(&link),
                shown(want.target_bytes().unwrap_or_default())
            )));
        }
        std::os::unix::fs::symlink(names::as_path(&link), target)
            .map_err(ResourceError::io("symlink", target))?;
        if self.as_root && want.uid.is_some() {
            std::os::unix::fs::lchown(target, meta.uid, meta.gid)
                .map_err(ResourceError::io("chown", target))?;
        }
        filetime::set_symlink_file_times(target, meta.modified(), meta.modified())
            .map_err(ResourceError::io("set times of", target))?;
        self.summary.symlinks += 1;
        Ok(())
    }

    /// A second name of a file: only to a regular file this archive
    /// restored before it, inside the folder.
    fn hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        rel: &[u8],
        target: &Path,
        want: &FileEntry,
    ) -> Result<(), ResourceError> {
        let link = entry
            .link_name_bytes()
            .ok_or_else(|| self.corrupt(format!("hard link `{}` has no target", shown(rel))))?
            .into_owned();
        let refuse = |why: &str| {
            self.corrupt(format!(
                "hard link `{}` to `{}` {why}; refused",
                shown(rel),
                shown(&link)
            ))
        };
        let first =
            names::safe_relative(&link).ok_or_else(|| refuse("leaves the restore folder"))?;
        if want.target_bytes() != Some(&first[..]) {
            return Err(refuse("is not the link the manifest records"));
        }
        let restored = self
            .index
            .first
            .get(&first[..])
            .is_some_and(|&i| self.seen[i] && self.files[i].entry_type == EntryType::File);
        if !restored {
            return Err(refuse("is not a file restored before it"));
        }
        let original = self.dest.join(names::as_path(&first));
        fs::hard_link(&original, target).map_err(ResourceError::io("hard link", target))?;
        self.summary.hard_links += 1;
        Ok(())
    }

    /// Checks nothing is missing, applies folders' metadata, then compares
    /// the restored tree with the manifest.
    fn finish(self) -> Result<Summary, ResourceError> {
        let missing: Vec<&FileEntry> = self
            .files
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .map(|(f, _)| f)
            .collect();
        if let Some(first) = missing.first() {
            return Err(self.corrupt(format!(
                "{} entries of the manifest are missing from the archive, first `{}`",
                missing.len(),
                shown(first.name_bytes())
            )));
        }
        // Deepest first (the archive lists a folder before its children),
        // after every child is written: a read-only folder does not block
        // its children, and no child changes a folder's time after it is set.
        for (dir, meta, owned) in self.dirs.iter().rev() {
            if self.as_root && *owned {
                std::os::unix::fs::lchown(dir, meta.uid, meta.gid)
                    .map_err(ResourceError::io("chown", dir))?;
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(meta.mode))
                .map_err(ResourceError::io("chmod", dir))?;
            filetime::set_file_mtime(dir, meta.modified())
                .map_err(ResourceError::io("set times of", dir))?;
        }
        fidelity::compare(self.files, self.dest, &self.renamed, self.as_root).map_err(
            |differences| {
                ResourceError::Mismatch(format!(
                    "the files restored from {} differ from its manifest: {differences}",
                    self.location
                ))
            },
        )?;
        Ok(self.summary)
    }
}

/// Gives `dest`, the folder a point was restored into, the mode, owner
/// (when running as root) and time its source folder had, then checks
/// they hold.
pub(super) fn apply_root(dest: &Path, root: &FileEntry) -> Result<(), ResourceError> {
    use std::os::unix::fs::MetadataExt;
    if sys::running_as_root() {
        std::os::unix::fs::lchown(dest, root.uid, root.gid)
            .map_err(ResourceError::io("chown", dest))?;
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(root.mode))
        .map_err(ResourceError::io("chmod", dest))?;
    if let Some(sec) = root.mtime {
        filetime::set_file_mtime(dest, FileTime::from_unix_time(sec, root.mtime_nsec))
            .map_err(ResourceError::io("set times of", dest))?;
    }
    let got = fs::symlink_metadata(dest).map_err(ResourceError::io("read", dest))?;
    let time_ok = root
        .mtime
        .is_none_or(|s| got.mtime() == s && got.mtime_nsec() as u32 == root.mtime_nsec);
    if got.mode() & 0o7777 != root.mode || !time_ok {
        return Err(ResourceError::Mismatch(format!(
            "{} did not take its source folder's mode {:o} and time",
            dest.display(),
            root.mode
        )));
    }
    Ok(())
}

/// Why an archive entry may not be written where it asks to go.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Creates the parent folders of `target`, refusing to go through a symlink
/// (an archive could otherwise plant a link and write through it).
fn ensure_parents(root: &Path, target: &Path, safe: &mut HashSet<PathBuf>) -> Result<(), Refused> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    if safe.contains(parent) {
        return Ok(());
    }
    let rel = parent
        .strip_prefix(root)
        .map_err(|_| Refused("outside the restore folder".into()))?;
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        if safe.contains(&cur) {
            continue;
        }
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Refused(format!(
                    "path goes through symlink `{}`; refused",
                    cur.display()
                )))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Refused(format!("`{}` is not a folder", cur.display()))),
            Err(_) => fs::create_dir(&cur)
                .map_err(|e| Refused(format!("cannot create {}: {e}", cur.display())))?,
        }
        safe.insert(cur.clone());
    }
    Ok(())
}
