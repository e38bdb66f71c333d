//! A directory-format dump packed into one artifact, and fed back to
//! `pg_restore` from it.
//!
//! The artifact is a tar archive compressed with zstd, one zstd frame per
//! file (its tar header, bytes and padding) and a last frame with tar's end
//! blocks: `zstd -dc | tar -x` gives the folder back by hand, and the
//! manifest records where each file's frame starts and ends, so a restore
//! can decompress any file on its own. Files are packed as pg_dump closes
//! them, `toc.dat` last.
//!
//! A restore extracts the files into the scratch folder on several
//! threads, largest first, each from its own frame, checking each file's
//! name, size and SHA-256; then `pg_restore --jobs` reads plain files
//! (nothing to inflate, and sizes it can schedule by: it starts the
//! largest tables first). The whole artifact's SHA-256 was checked before.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::resource::manifest::DumpFile;
use crate::vault::HashingWriter;

/// pg_dump's table of contents: first in the artifact, always a file.
pub const TOC: &str = "toc.dat";
/// Files at least this large are compressed on every core.
const LARGE: u64 = 1 << 20;
/// tar's block.
const BLOCK: u64 = 512;
/// zstd level: as fast as zstd goes while still compressing rows well.
const LEVEL: i32 = 1;

/// Packs what pg_dump writes into `dir` while it writes it: each file as
/// soon as pg_dump closes it (inotify), removed once packed, so the work
/// dir holds only the files being written; the rest (the table of
/// contents, written last) once `done` says pg_dump exited well. `failed`
/// set means pg_dump failed: packing stops with an error. Returns each
/// file's entry, in the artifact's order. `dir` must exist, empty, before
/// pg_dump starts.
pub fn pack_as_written(
    dir: &Path,
    mut inotify: inotify::Inotify,
    out: impl Write,
    done: &AtomicBool,
    failed: &AtomicBool,
) -> io::Result<Vec<DumpFile>> {
    let mut packer = Packer::new(out);
    let mut buffer = [0u8; 4096];
    loop {
        if failed.load(Ordering::SeqCst) {
            return Err(io::Error::other("pg_dump failed"));
        }
        // Read `done` before the events: a file closed before pg_dump
        // exited is then either among them or left for the final pass.
        let finished = done.load(Ordering::SeqCst);
        let closed: Vec<String> = match inotify.read_events(&mut buffer) {
            Ok(events) => events
                .filter_map(|e| e.name.and_then(|n| n.to_str()).map(String::from))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => return Err(e),
        };
        for name in closed {
            // The table of contents is written at the end: packed last.
            if name == TOC {
                continue;
            }
            if packer.has(&name) {
                return Err(io::Error::other(format!(
                    "pg_dump wrote {name} again after it was packed"
                )));
            }
            packer.add(dir, &name)?;
            fs::remove_file(dir.join(&name))?;
        }
        if finished {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // What is left: the table of contents, and anything closed before the
    // watch saw it. A name packed already means pg_dump wrote it twice.
    let mut rest = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?
            .file_name()
            .into_string()
            .map_err(|n| io::Error::other(format!("file name {n:?} in the dump is not UTF-8")))?;
        if packer.has(&name) {
            return Err(io::Error::other(format!(
                "pg_dump wrote {name} again after it was packed"
            )));
        }
        rest.push(name);
    }
    if !rest.iter().any(|n| n == TOC) {
        return Err(io::Error::other(format!(
            "{} has no {TOC}: not a pg_dump directory",
            dir.display()
        )));
    }
    rest.sort_by(|a, b| (a == TOC, a).cmp(&(b == TOC, b)));
    for name in rest {
        packer.add(dir, &name)?;
    }
    packer.finish()
}

/// Watches `dir` for files closed after writing: made before pg_dump
/// starts, so that no file it closes is missed.
pub fn watch(dir: &Path) -> io::Result<inotify::Inotify> {
    let inotify = inotify::Inotify::init()?;
    inotify
        .watches()
        .add(dir, inotify::WatchMask::CLOSE_WRITE)?;
    Ok(inotify)
}

/// Packs the files of `dir` (a finished `pg_dump --format=directory`
/// folder: flat, regular files), by name, `toc.dat` last.
#[cfg(test)]
pub fn pack(dir: &Path, out: impl Write) -> io::Result<Vec<DumpFile>> {
    let (done, failed) = (AtomicBool::new(true), AtomicBool::new(false));
    pack_as_written(dir, watch(dir)?, out, &done, &failed)
}

/// Writes files into the artifact, a zstd frame each.
struct Packer<W: Write> {
    out: Counting<W>,
    files: Vec<DumpFile>,
    threads: u32,
}

impl<W: Write> Packer<W> {
    fn new(out: W) -> Self {
        Packer {
            out: Counting { inner: out, at: 0 },
            files: Vec::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }

    /// Appends `dir/name` as one frame: its tar header, bytes, padding.
    fn add(&mut self, dir: &Path, name: &str) -> io::Result<()> {
        let path = dir.join(name);
        let mut file = File::open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file: not a pg_dump directory",
                path.display()
            )));
        }
        let size = meta.len();
        let offset = self.out.at;
        let mut zstd = zstd::stream::write::Encoder::new(&mut self.out, LEVEL)?;
        zstd.include_checksum(true)?;
        if self.threads > 1 && size >= LARGE {
            zstd.multithread(self.threads)?;
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        header.set_cksum();
        zstd.write_all(header.as_bytes())?;
        let mut hashing = HashingWriter::new(&mut zstd);
        let copied = io::copy(&mut (&mut file).take(size), &mut hashing)?;
        let (_, sha256, _) = hashing.finish();
        if copied != size {
            return Err(io::Error::other(format!(
                "{} shrank while packed ({copied} of {size} bytes)",
                path.display()
            )));
        }
        zstd.write_all(&vec![0u8; padding(size) as usize])?;
        zstd.finish()?;
        self.files.push(DumpFile {
            name: name.to_string(),
            size,
            sha256,
            offset,
            length: self.out.at - offset,
        });
        Ok(())
    }

    /// tar's end (two zero blocks, a frame of their own); the entries.
    fn finish(mut self) -> io::Result<Vec<DumpFile>> {
        let mut zstd = zstd::stream::write::Encoder::new(&mut self.out, LEVEL)?;
        zstd.write_all(&[0u8; 2 * BLOCK as usize])?;
        zstd.finish()?;
        self.out.inner.flush()?;
        Ok(self.files)
    }
}

/// Why a dump could not be unpacked: its bytes are not what the manifest
/// says, or the scratch folder could not take them.
#[derive(Debug)]
pub enum UnpackError {
    /// A frame that does not decompress, or holds another name, size or
    /// SHA-256 than the manifest's; a manifest naming files wrongly.
    Damaged(String),
    /// Reading the downloaded artifact or writing the scratch folder.
    Io(String),
}

impl std::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnpackError::Damaged(m) | UnpackError::Io(m) => f.write_str(m),
        }
    }
}

/// The names a dump may hold: one level, nothing that leaves the folder.
fn check_name(name: &str) -> Result<(), UnpackError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(UnpackError::Damaged(format!(
            "the manifest names a dump file `{name}`: not a plain file name"
        )));
    }
    Ok(())
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// Decompresses `file`'s frame of `artifact` into `out`, checking the tar
/// header's name and size and the bytes' SHA-256 against the entry.
fn copy_member(artifact: &Path, file: &DumpFile, out: &mut impl Write) -> Result<(), UnpackError> {
    let io = |e: io::Error| UnpackError::Io(format!("{}: {e}", file.name));
    let damaged = |what: String| UnpackError::Damaged(format!("{}: {what}", file.name));
    let mut source = File::open(artifact).map_err(io)?;
    source.seek(SeekFrom::Start(file.offset)).map_err(io)?;
    let frame = io::BufReader::with_capacity(1 << 20, source.take(file.length));
    let mut zstd = zstd::stream::read::Decoder::with_buffer(frame)
        .map_err(io)?
        .single_frame();
    let mut header = [0u8; BLOCK as usize];
    zstd.read_exact(&mut header)
        .map_err(|e| damaged(format!("its frame does not decompress: {e}")))?;
    let header = tar::Header::from_byte_slice(&header);
    let name = header.path_bytes();
    let size = header
        .size()
        .map_err(|e| damaged(format!("a bad tar header: {e}")))?;
    if name.as_ref() != file.name.as_bytes() || size != file.size {
        return Err(damaged(format!(
            "its frame holds {} of {size} bytes, not {} bytes",
            String::from_utf8_lossy(&name),
            file.size
        )));
    }
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = zstd
            .read(&mut buf[..want])
            .map_err(|e| damaged(format!("its frame does not decompress: {e}")))?;
        if n == 0 {
            return Err(damaged(format!(
                "its frame ends {left} bytes short of {size}"
            )));
        }
        sha.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    // The padding, and nothing after it.
    let mut rest = Vec::new();
    (&mut zstd)
        .take(BLOCK + 1)
        .read_to_end(&mut rest)
        .map_err(|e| damaged(format!("its frame does not decompress: {e}")))?;
    let sha256 = hex::encode(sha.finalize());
    if sha256 != file.sha256 || rest.len() as u64 != padding(size) {
        return Err(damaged(format!(
            "does not match the manifest: expected sha256 {}, got {sha256}",
            file.sha256
        )));
    }
    Ok(())
}

/// Extracts every file of the dump from the (already verified) `artifact`
/// into `dir`, on up to `threads` threads, the largest files first; each
/// checked against its entry. Refuses names that are not plain file names
/// or that repeat, and a list without `toc.dat`.
pub fn unpack(
    artifact: &Path,
    files: &[DumpFile],
    dir: &Path,
    threads: usize,
) -> Result<(), UnpackError> {
    let mut seen = HashSet::new();
    for file in files {
        check_name(&file.name)?;
        if !seen.insert(file.name.as_str()) {
            return Err(UnpackError::Damaged(format!(
                "the manifest lists the dump file {} twice",
                file.name
            )));
        }
    }
    if !seen.contains(TOC) {
        return Err(UnpackError::Damaged(format!("the manifest lists no {TOC}")));
    }
    fs::create_dir_all(dir).map_err(|e| UnpackError::Io(format!("{}: {e}", dir.display())))?;
    let mut by_size: Vec<&DumpFile> = files.iter().collect();
    by_size.sort_by_key(|f| std::cmp::Reverse(f.size));
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<UnpackError>> = Mutex::new(None);
    let extract = |file: &DumpFile| -> Result<(), UnpackError> {
        let io = |e: io::Error| UnpackError::Io(format!("{}: {e}", file.name));
        // A new file each: nothing in the folder is written twice.
        let out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(&file.name))
            .map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, out);
        copy_member(artifact, file, &mut out)?;
        out.flush().map_err(io)
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, by_size.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = by_size.get(i) else { return };
                if let Err(e) = extract(file) {
                    // The first error is the one to tell; the others stop.
                    failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                    next.store(by_size.len(), Ordering::Relaxed);
                    return;
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A writer that counts what went through it: the frames' offsets.
struct Counting<W> {
    inner: W,
    at: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.at += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake dump folder: a toc, a large file and a small one.
    fn dump_dir() -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let large: Vec<u8> = (0..LARGE as usize * 3 + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        fs::write(dir.path().join(TOC), b"PGDMP toc").unwrap();
        fs::write(dir.path().join("3001.dat"), &large).unwrap();
        fs::write(dir.path().join("3000.dat"), b"1\tone\n\\.\n").unwrap();
        (dir, large)
    }

    fn packed() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Vec<DumpFile>,
        Vec<u8>,
    ) {
        let (dir, large) = dump_dir();
        let artifact = dir.path().join("artifact");
        let mut bytes = Vec::new();
        let files = pack(dir.path(), &mut bytes).unwrap();
        fs::write(&artifact, &bytes).unwrap();
        (dir, artifact, files, large)
    }

    #[test]
    fn the_artifact_is_a_plain_tar_zst_with_the_toc_last() {
        let (_dir, artifact, files, large) = packed();
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["3000.dat", "3001.dat", TOC]
        );
        let tar_bytes = zstd::decode_all(File::open(&artifact).unwrap()).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), data));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], ("3001.dat".to_string(), large));
    }

    #[test]
    fn files_are_packed_and_removed_as_they_are_closed_and_the_toc_at_the_end() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("dump");
        fs::create_dir(&dir).unwrap();
        let watch = watch(&dir).unwrap();
        let (done, failed) = (AtomicBool::new(false), AtomicBool::new(false));
        let mut out = Vec::new();
        let files = std::thread::scope(|scope| {
            let packer = scope.spawn(|| pack_as_written(&dir, watch, &mut out, &done, &failed));
            // As pg_dump does: each data file written and closed, then
            // the table of contents.
            fs::write(dir.join("3001.dat"), vec![7u8; 3 << 20]).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while dir.join("3001.dat").exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(
                !dir.join("3001.dat").exists(),
                "packed and removed while pg_dump runs"
            );
            fs::write(dir.join("3000.dat"), b"1\n\\.\n").unwrap();
            fs::write(dir.join(TOC), b"PGDMP").unwrap();
            done.store(true, Ordering::SeqCst);
            packer.join().unwrap()
        })
        .unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.last(), Some(&TOC));
        assert_eq!(names.len(), 3);
        let artifact = work.path().join("artifact");
        fs::write(&artifact, &out).unwrap();
        unpack(&artifact, &files, &work.path().join("back"), 2).unwrap();
        assert_eq!(
            fs::read(work.path().join("back/3001.dat")).unwrap(),
            vec![7u8; 3 << 20]
        );
    }

    #[test]
    fn a_file_written_again_after_it_was_packed_or_a_failed_dump_stops_the_packing() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("dump");
        fs::create_dir(&dir).unwrap();
        let watch = watch(&dir).unwrap();
        let (done, failed) = (AtomicBool::new(false), AtomicBool::new(false));
        let err = std::thread::scope(|scope| {
            let packer = scope.spawn(|| pack_as_written(&dir, watch, io::sink(), &done, &failed));
            fs::write(dir.join("3001.dat"), b"first").unwrap();
            while dir.join("3001.dat").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            fs::write(dir.join("3001.dat"), b"second").unwrap();
            fs::write(dir.join(TOC), b"PGDMP").unwrap();
            done.store(true, Ordering::SeqCst);
            packer.join().unwrap()
        })
        .unwrap_err();
        assert!(err.to_string().contains("3001.dat again"), "{err}");

        let dir = work.path().join("failed");
        fs::create_dir(&dir).unwrap();
        let watching = super::watch(&dir).unwrap();
        let (done, failed) = (AtomicBool::new(false), AtomicBool::new(true));
        let err = pack_as_written(&dir, watching, io::sink(), &done, &failed).unwrap_err();
        assert!(err.to_string().contains("pg_dump failed"), "{err}");
    }

    #[test]
    fn every_file_is_extracted_and_checked_on_several_threads() {
        let (dir, artifact, files, large) = packed();
        let out = dir.path().join("restore");
        unpack(&artifact, &files, &out, 2).unwrap();
        assert_eq!(fs::read(out.join("3001.dat")).unwrap(), large);
        assert_eq!(fs::read(out.join("3000.dat")).unwrap(), b"1\tone\n\\.\n");
        assert_eq!(fs::read(out.join(TOC)).unwrap(), b"PGDMP toc");
    }

    #[test]
    fn a_damaged_frame_is_damage_and_a_full_folder_is_not() {
        let (dir, artifact, files, _) = packed();
        let mut bytes = fs::read(&artifact).unwrap();
        let large = files.iter().find(|f| f.name == "3001.dat").unwrap();
        bytes[(large.offset + large.length / 2) as usize] ^= 0x40;
        fs::write(&artifact, &bytes).unwrap();
        let err = unpack(&artifact, &files, &dir.path().join("b"), 2).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Damaged(m) if m.starts_with("3001.dat: ")),
            "{err:?}"
        );

        // A file already there (as a full or read-only folder would) is
        // the folder's trouble, not the dump's.
        let (dir, artifact, files, _) = packed();
        let out = dir.path().join("c");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("3000.dat"), b"in the way").unwrap();
        let err = unpack(&artifact, &files, &out, 1).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Io(m) if m.starts_with("3000.dat: ")),
            "{err:?}"
        );
    }

    #[test]
    fn names_that_leave_the_folder_or_repeat_are_refused() {
        let (dir, artifact, mut files, _) = packed();
        files[1].name = "../escape".into();
        let err = unpack(&artifact, &files, &dir.path().join("c"), 2).unwrap_err();
        assert!(err.to_string().contains("not a plain file name"), "{err}");
        assert!(!dir.path().join("escape").exists());
        files[1].name = files[2].name.clone();
        let err = unpack(&artifact, &files, &dir.path().join("d"), 2).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
