//! The backup side of a `path` point: walks the tree and writes every
//! entry into the tar stream with its metadata (mode, owner, time to the
//! nanosecond in a PAX record), recording it in the manifest with its
//! name's exact bytes.
//!
//! A file is read once into the archive, then checked against its listing
//! with one `fstat`: small files are read into a buffer first and re-read
//! once if they moved, large ones are streamed and flagged. What vanished
//! between listing and reading is left out (and the point flagged); what
//! is neither a file, a folder nor a link is skipped (and flagged).

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use globset::GlobSet;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

use super::super::manifest::{ArtifactInfo, EntryType, FileEntry};
use super::super::{PointFlag, ResourceError};
use super::{holes, names};
use crate::pipe::PipeWriter;
use crate::vault::HashingWriter;

const ZSTD_LEVEL: i32 = 1;

/// Files up to this size are read into memory, checked unchanged (and
/// re-read once if not) before being archived: a consistent copy, or a
/// flag. Larger ones are streamed (bounded memory) and only flagged.
pub(super) const BUFFERED_MAX: u64 = 4 << 20;

/// Blocking: walks `root`, writes tar + zstd into the pipe. Returns the
/// manifest entries, the artifact's size and SHA-256, and the point's
/// flags (`changed-while-read`, `vanished`, `special-skipped`).
pub(super) fn write_archive(
    root: &Path,
    globs: &GlobSet,
    writer: PipeWriter,
    progress: &ProgressBar,
) -> Result<(Vec<FileEntry>, ArtifactInfo, Vec<PointFlag>), ResourceError> {
    let hashing = HashingWriter::new(writer);
    let result = (|| -> Result<(Walked, HashingWriter<PipeWriter>), ResourceError> {
        let io_err = |e: io::Error| ResourceError::Other(format!("compressing archive: {e}"));
        let mut encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_err)?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as u32;
        if threads > 1 {
            encoder.multithread(threads).map_err(io_err)?;
        }
        let mut builder = tar::Builder::new(encoder);
        builder.follow_symlinks(false);
        let walked = append_tree(&mut builder, root, globs, progress)?;
        let encoder = builder
            .into_inner()
            .map_err(|e| ResourceError::Other(format!("finishing archive: {e}")))?;
        let hashing = encoder.finish().map_err(io_err)?;
        Ok((walked, hashing))
    })();
    // On error the HashingWriter (and its PipeWriter) is dropped inside the
    // closure, which aborts the pipe: the vault discards the partial object.
    let (walked, hashing) = result?;
    let (writer, sha256, size) = hashing.finish();
    writer
        .finish()
        .map_err(|e| ResourceError::Other(format!("sending archive to the vault: {e}")))?;
    let flags = walked.flags();
    Ok((walked.entries, ArtifactInfo { sha256, size }, flags))
}

/// What a walk archived and what it left out.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// The manifest's entries, in archive order.
    pub(super) entries: Vec<FileEntry>,
    /// Files and folders that disappeared between listing and reading.
    pub(super) vanished: u64,
    /// Sockets, FIFOs and devices skipped.
    pub(super) specials: u64,
}

impl Walked {
    /// The point's flags for what the walk saw.
    pub(super) fn flags(&self) -> Vec<PointFlag> {
        let mut flags = Vec::new();
        if self.entries.iter().any(|e| e.changed_while_read) {
            flags.push(PointFlag::ChangedWhileRead);
        }
        if self.vanished > 0 {
            flags.push(PointFlag::Vanished);
        }
        if self.specials > 0 {
            flags.push(PointFlag::SpecialSkipped);
        }
        flags
    }
}

/// Every entry under `root` (or `root` itself, a file) that `globs` does
/// not exclude, in the order the archive holds them.
/// Also says whether `root` is a file.
fn entries<'a>(
    root: &'a Path,
    globs: &'a GlobSet,
) -> (
    bool,
    walkdir::FilterEntry<walkdir::IntoIter, impl FnMut(&walkdir::DirEntry) -> bool + 'a>,
) {
    let root_is_file = fs::symlink_metadata(root)
        .map(|m| m.is_file())
        .unwrap_or(false);
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(if root_is_file { 0 } else { 1 })
        .into_iter()
        .filter_entry(move |e| !globs.is_match(rel_path(root, e.path(), root_is_file)));
    (root_is_file, walk)
}

/// The bytes of file content a backup of `root` will read (each file
/// once, whatever its number of names): the total of its progress bar.
/// Only sizes are read; an entry that cannot be read counts nothing.
pub(super) fn content_bytes(root: &Path, globs: &GlobSet) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut linked = std::collections::HashSet::new();
    entries(root, globs)
        .1
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .filter(|m| m.nlink() < 2 || linked.insert((m.dev(), m.ino())))
        .map(|m| m.len())
        .sum()
}

/// Archives every entry under `root` (or `root` itself, a file) that
/// `globs` does not exclude.
pub(super) fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    globs: &GlobSet,
    progress: &ProgressBar,
) -> Result<Walked, ResourceError> {
    let (root_is_file, mut walk) = entries(root, globs);
    let mut walker = Walker {
        builder,
        progress,
        walked: Walked::default(),
        first_names: HashMap::new(),
        buf: Vec::new(),
    };
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.depth() > 0 && e.io_error().is_some_and(gone) => {
                walker.vanished(e.path().unwrap_or(root));
                continue;
            }
            Err(e) => {
                return Err(ResourceError::Source(format!(
                    "cannot read {}: {e}",
                    e.path().unwrap_or(root).display()
                )))
            }
        };
        let path = entry.path();
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => {
                walker.vanished(path);
                if entry.file_type().is_dir() {
                    // Not a second `vanished` for failing to list it.
                    walk.skip_current_dir();
                }
                continue;
            }
            Err(e) => {
                return Err(ResourceError::Source(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let name = rel_path(root, path, root_is_file).as_os_str().as_bytes();
        walker.entry(path, name, &meta)?;
    }
    Ok(walker.walked)
}

/// Whether an error says the entry is no longer there (or no longer what
/// was listed: a file replaced by a link is refused by `O_NOFOLLOW`).
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP)
}

/// Archive name of a walked path: relative to the root (the file's own
/// name when the root is a file).
fn rel_path<'a>(root: &Path, path: &'a Path, root_is_file: bool) -> &'a Path {
    if root_is_file {
        return path.file_name().map(Path::new).unwrap_or(path);
    }
    path.strip_prefix(root).unwrap_or(path)
}

/// What makes a file's listing: if any of it moves while the file is
/// read, the bytes read may not be one version of the file.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// A tar header for an entry with `meta`'s mode, owner and time (whole
/// seconds: [`Walker::append_time`] adds the rest).
fn header(meta: &Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_size(size);
    h
}

/// A manifest entry for `name` with `meta`'s mode, owner and time.
pub(super) fn record(name: &[u8], kind: EntryType, meta: &Metadata) -> FileEntry {
    let mut e = FileEntry::new(name, kind);
    e.mode = meta.mode() & 0o7777;
    e.mtime = Some(meta.mtime());
    e.mtime_nsec = meta.mtime_nsec() as u32;
    e.uid = Some(meta.uid());
    e.gid = Some(meta.gid());
    e
}

struct Walker<'a, W: Write> {
    builder: &'a mut tar::Builder<W>,
    progress: &'a ProgressBar,
    walked: Walked,
    /// (device, inode) of files with more than one name, to the index of
    /// the entry of the first name archived.
    first_names: HashMap<(u64, u64), usize>,
    /// Reused for every small file.
    buf: Vec<u8>,
}

impl<W: Write> Walker<'_, W> {
    fn vanished(&mut self, path: &Path) {
        tracing::warn!(file = %path.display(), "vanished before it could be read; left out of the point");
        self.walked.vanished += 1;
    }

    fn entry(&mut self, path: &Path, name: &[u8], meta: &Metadata) -> Result<(), ResourceError> {
        let ft = meta.file_type();
        let archive_err = ResourceError::io("archive", path);
        if ft.is_dir() {
            let mut h = header(meta, tar::EntryType::Directory, 0);
            self.append_time(meta)
                .map_err(ResourceError::io("archive", path))?;
            self.builder
                .append_data(&mut h, names::as_path(name), io::empty())
                .map_err(archive_err)?;
            self.walked.entries.push(record(name, EntryType::Dir, meta));
        } else if ft.is_symlink() {
            let target = match fs::read_link(path) {
                Ok(t) => t,
                Err(e) if gone(&e) || e.kind() == io::ErrorKind::InvalidInput => {
                    // Gone, or no longer a link (replaced since listed).
                    self.vanished(path);
                    return Ok(());
                }
                Err(e) => return Err(ResourceError::io("read link", path)(e)),
            };
            let mut h = header(meta, tar::EntryType::Symlink, 0);
            self.append_time(meta)
                .map_err(ResourceError::io("archive", path))?;
            self.builder
                .append_link(&mut h, names::as_path(name), &target)
                .map_err(archive_err)?;
            let mut e = record(name, EntryType::Symlink, meta);
            e.set_target(target.as_os_str().as_bytes());
            self.walked.entries.push(e);
        } else if ft.is_file() {
            let inode = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(&first) = self.first_names.get(&inode) {
                    return self.hard_link(path, name, first);
                }
            }
            match self.file(path, name, meta)? {
                Some(e) => {
                    if meta.nlink() > 1 {
                        self.first_names.insert(inode, self.walked.entries.len());
                    }
                    self.walked.entries.push(e);
                }
                None => self.vanished(path),
            }
        } else {
            tracing::warn!(file = %path.display(), "skipping special file (socket, FIFO or device)");
            self.walked.specials += 1;
        }
        Ok(())
    }

    /// Adds a PAX record with the exact time before an entry whose time
    /// the header cannot hold (a fraction of a second, before 1970).
    fn append_time(&mut self, meta: &Metadata) -> io::Result<()> {
        if meta.mtime_nsec() == 0 && meta.mtime() >= 0 {
            return Ok(());
        }
        let time = names::pax_time(meta.mtime(), meta.mtime_nsec() as u32);
        self.builder
            .append_pax_extensions([("mtime", time.as_bytes())])
    }

    /// Another name of the file archived as entry `first`: a hard link to
    /// it, with its metadata (one inode has one).
    fn hard_link(&mut self, path: &Path, name: &[u8], first: usize) -> Result<(), ResourceError> {
        let target = &self.walked.entries[first];
        let mut e = FileEntry::new(name, EntryType::Hardlink);
        e.mode = target.mode;
        e.mtime = target.mtime;
        e.mtime_nsec = target.mtime_nsec;
        e.uid = target.uid;
        e.gid = target.gid;
        e.set_target(target.name_bytes());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_mode(e.mode);
        h.set_mtime(e.mtime.unwrap_or(0).max(0) as u64);
        h.set_uid(u64::from(e.uid.unwrap_or(0)));
        h.set_gid(u64::from(e.gid.unwrap_or(0)));
        h.set_size(0);
        self.builder
            .append_link(
                &mut h,
                names::as_path(name),
                names::as_path(target.name_bytes()),
            )
            .map_err(ResourceError::io("archive", path))?;
        self.walked.entries.push(e);
        Ok(())
    }

    /// Archives a regular file; `None` if it vanished before it was
    /// opened.
    fn file(
        &mut self,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
    ) -> Result<Option<FileEntry>, ResourceError> {
        let read_err =
            |e: io::Error| ResourceError::Source(format!("cannot read {}: {e}", path.display()));
        hook::run(Stage::BeforeOpen, path);
        // No following a link that replaced the file since it was listed,
        // no blocking on a FIFO that did.
        let file = match fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(read_err(e)),
        };
        let found = if meta.blocks().saturating_mul(512) < meta.len() {
            let found = holes::find(&file, meta.len());
            (&file).rewind().map_err(read_err)?;
            found
        } else {
            Vec::new()
        };
        let entry = if meta.len() <= BUFFERED_MAX {
            self.buffered(&file, path, name, meta)?
        } else {
            Some(self.streamed(file, path, name, meta)?)
        };
        Ok(entry.map(|mut e| {
            e.holes = holes::clip(found, e.size);
            if e.changed_while_read {
                tracing::warn!(file = %path.display(), "file changed while being read; archived as read and flagged");
            }
            e
        }))
    }

    /// Reads a small file whole, checks it did not move while read (and
    /// reads it once more if it did), then archives what was read.
    fn buffered(
        &mut self,
        mut file: &File,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
    ) -> Result<Option<FileEntry>, ResourceError> {
        let read_err =
            |e: io::Error| ResourceError::Source(format!("cannot read {}: {e}", path.display()));
        let mut expect = Stamp::of(meta);
        let mut tries = 0;
        let (stat, changed) = loop {
            tries += 1;
            self.buf.clear();
            self.buf.reserve(expect.size as usize + 1);
            file.take(expect.size + 1)
                .read_to_end(&mut self.buf)
                .map_err(read_err)?;
            hook::run(Stage::AfterRead, path);
            let stat = file.metadata().map_err(read_err)?;
            if !stat.is_file() {
                return Ok(None);
            }
            let now = Stamp::of(&stat);
            let moved = now != expect || self.buf.len() as u64 != expect.size;
            if !moved || tries == 2 {
                break (stat, moved);
            }
            expect = now;
            file.rewind().map_err(read_err)?;
        };
        let size = self.buf.len() as u64;
        let mut h = header(&stat, tar::EntryType::Regular, size);
        self.append_time(&stat).map_err(read_err)?;
        self.builder
            .append_data(&mut h, names::as_path(name), &self.buf[..])
            .map_err(ResourceError::io("archive", path))?;
        self.progress.inc(size);
        let mut e = record(name, EntryType::File, &stat);
        e.size = size;
        e.sha256 = Some(hex::encode(Sha256::digest(&self.buf)));
        e.changed_while_read = changed;
        Ok(Some(e))
    }

    /// Streams a large file into the archive at the size it was listed
    /// with, then checks it did not move while read.
    fn streamed(
        &mut self,
        file: File,
        path: &Path,
        name: &[u8],
        meta: &Metadata,
    ) -> Result<FileEntry, ResourceError> {
        let read_err =
            |e: io::Error| ResourceError::Source(format!("cannot read {}: {e}", path.display()));
        let size = meta.len();
        let mut h = header(meta, tar::EntryType::Regular, size);
        self.append_time(meta).map_err(read_err)?;
        let mut reader = PaddedHashingReader::new(file, size, self.progress);
        self.builder
            .append_data(&mut h, names::as_path(name), &mut reader)
            .map_err(read_err)?;
        hook::run(Stage::AfterRead, path);
        let stat = reader.file.get_ref().metadata().map_err(read_err)?;
        let changed = reader.changed() || Stamp::of(&stat) != Stamp::of(meta);
        let mut e = record(name, EntryType::File, meta);
        e.size = size;
        e.sha256 = Some(reader.hex());
        e.changed_while_read = changed;
        Ok(e)
    }
}

/// Reads exactly `size` bytes of a file, hashing them: a file that grew is
/// cut at the size in the tar header, one that shrank is padded with zeros
/// (as GNU tar does), so the archive stays well-formed.
struct PaddedHashingReader<'a> {
    file: io::Take<File>,
    remaining: u64,
    hasher: Sha256,
    padded: bool,
    progress: &'a ProgressBar,
}

impl<'a> PaddedHashingReader<'a> {
    fn new(file: File, size: u64, progress: &'a ProgressBar) -> Self {
        PaddedHashingReader {
            file: file.take(size),
            remaining: size,
            hasher: Sha256::new(),
            padded: false,
            progress,
        }
    }

    fn changed(&mut self) -> bool {
        // A file that grew has unread bytes left.
        let mut probe = [0u8; 1];
        let grew = matches!(self.file.get_mut().read(&mut probe), Ok(1));
        self.padded || grew
    }

    fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl Read for PaddedHashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.remaining as usize);
        let mut n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            buf[..want].fill(0);
            n = want;
            self.padded = true;
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// Moments of reading a file at which a test can change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Listed, about to be opened.
    BeforeOpen,
    /// Read (once more, for a re-read), about to be checked.
    AfterRead,
}

/// Lets a unit test act on a file at a [`Stage`] (delete it, rewrite
/// it) in the walking thread; nothing outside tests.
#[cfg(test)]
pub(super) mod hook {
    use std::cell::RefCell;
    use std::path::Path;

    use super::Stage;

    type Hook = Box<dyn FnMut(Stage, &Path)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Runs `body` with `hook` called at every stage of every file read
    /// on this thread.
    pub(in super::super) fn with<R>(
        hook: impl FnMut(Stage, &Path) + 'static,
        body: impl FnOnce() -> R,
    ) -> R {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        let result = body();
        HOOK.with(|h| *h.borrow_mut() = None);
        result
    }

    pub(super) fn run(stage: Stage, path: &Path) {
        HOOK.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(stage, path);
            }
        });
    }
}

#[cfg(not(test))]
mod hook {
    use std::path::Path;

    #[inline(always)]
    pub(super) fn run(_: super::Stage, _: &Path) {}
}
