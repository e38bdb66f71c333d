//! A directory-format dump packed into one artifact, and fed back to
//! `pg_restore` from it.
//!
//! The artifact is a tar archive compressed with zstd, one zstd frame per
//! file (its tar header, bytes and padding) and a last frame with tar's end
//! blocks: `zstd -dc | tar -x` gives the folder back by hand, and the
//! manifest records where each file's frame starts and ends, so a restore
//! can decompress any file on its own. `toc.dat` comes first.
//!
//! A restore extracts the table of contents and the small files into the
//! scratch folder, and makes each large file a FIFO that a thread of ours
//! fills, from its frame, when a `pg_restore` worker opens it: the workers
//! read plain bytes (nothing to inflate), several tables load at once, and
//! the dump is never on disk uncompressed. Every byte fed is checked
//! against the file's SHA-256, and the whole artifact's SHA-256 was checked
//! before anything started.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::resource::manifest::DumpFile;

/// pg_dump's table of contents: first in the artifact, always a file.
pub const TOC: &str = "toc.dat";
/// Files at least this large are fed through a FIFO; smaller ones are
/// extracted (a FIFO per tiny table would only add threads).
const FIFO_MIN: u64 = 1 << 20;
/// At most this many FIFOs (a thread each); the largest files get them.
const MAX_FIFOS: usize = 64;
/// tar's block.
const BLOCK: u64 = 512;
/// zstd level: as fast as zstd goes while still compressing rows well.
const LEVEL: i32 = 1;

/// Packs the files of `dir` (a `pg_dump --format=directory` folder: flat,
/// regular files) into `out`, `toc.dat` first then by name; returns each
/// file's entry. zstd uses every core on large files.
pub fn pack(dir: &Path, out: impl Write) -> io::Result<Vec<DumpFile>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file: not a pg_dump directory",
                entry.path().display()
            )));
        }
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| io::Error::other(format!("file name {n:?} in the dump is not UTF-8")))?;
        names.push(name);
    }
    if !names.iter().any(|n| n == TOC) {
        return Err(io::Error::other(format!(
            "{} has no {TOC}: not a pg_dump directory",
            dir.display()
        )));
    }
    names.sort_by(|a, b| (a != TOC, a).cmp(&(b != TOC, b)));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let mut out = Counting { inner: out, at: 0 };
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let mut file = File::open(&path)?;
        let meta = file.metadata()?;
        let size = meta.len();
        let offset = out.at;
        let mut zstd = zstd::stream::write::Encoder::new(&mut out, LEVEL)?;
        zstd.include_checksum(true)?;
        if threads > 1 && size >= FIFO_MIN {
            zstd.multithread(threads)?;
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(&name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(
            meta.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        header.set_cksum();
        zstd.write_all(header.as_bytes())?;
        let mut hashing = HashingCopy::new(&mut zstd);
        let copied = io::copy(&mut (&mut file).take(size), &mut hashing)?;
        let sha256 = hashing.hex();
        if copied != size {
            return Err(io::Error::other(format!(
                "{} shrank while packed ({copied} of {size} bytes)",
                path.display()
            )));
        }
        zstd.write_all(&vec![0u8; padding(size) as usize])?;
        zstd.finish()?;
        files.push(DumpFile {
            name,
            size,
            sha256,
            offset,
            length: out.at - offset,
        });
    }
    // tar's end: two zero blocks, in a frame of their own.
    let mut zstd = zstd::stream::write::Encoder::new(&mut out, LEVEL)?;
    zstd.write_all(&[0u8; 2 * BLOCK as usize])?;
    zstd.finish()?;
    out.inner.flush()?;
    Ok(files)
}

/// The names a dump may hold: one level, nothing that leaves the folder.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::other(format!(
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
fn copy_member(artifact: &Path, file: &DumpFile, out: &mut impl Write) -> io::Result<()> {
    let mut source = File::open(artifact)?;
    source.seek(SeekFrom::Start(file.offset))?;
    let frame = io::BufReader::with_capacity(1 << 20, source.take(file.length));
    let mut zstd = zstd::stream::read::Decoder::with_buffer(frame)?.single_frame();
    let mut header = [0u8; BLOCK as usize];
    zstd.read_exact(&mut header)?;
    let header = tar::Header::from_byte_slice(&header);
    let (name, size) = (header.path_bytes(), header.size()?);
    if name.as_ref() != file.name.as_bytes() || size != file.size {
        return Err(io::Error::other(format!(
            "the frame of {} holds {} of {size} bytes, not {} of {} bytes",
            file.name,
            String::from_utf8_lossy(&name),
            file.name,
            file.size
        )));
    }
    let mut hashing = HashingCopy::new(out);
    let copied = io::copy(&mut (&mut zstd).take(size), &mut hashing)?;
    let sha256 = hashing.hex();
    let mut rest = Vec::new();
    zstd.read_to_end(&mut rest)?;
    if copied != size || sha256 != file.sha256 || rest.len() as u64 != padding(size) {
        return Err(io::Error::other(format!(
            "{} does not match the manifest: expected {} bytes sha256 {}, got {copied} bytes sha256 {sha256}",
            file.name, file.size, file.sha256
        )));
    }
    Ok(())
}

/// The dump folder a restore gives `pg_restore`: small files extracted,
/// large ones FIFOs, each with its feeding thread.
pub struct Unpacked {
    /// The folder.
    pub dir: PathBuf,
    feeders: Vec<Feeder>,
    stop: Arc<AtomicBool>,
}

struct Feeder {
    fifo: PathBuf,
    name: String,
    thread: JoinHandle<io::Result<bool>>,
}

/// Prepares `dir` from the (already verified) `artifact`: `toc.dat` and
/// the small files extracted and checked, a FIFO and a waiting thread for
/// each large one. Refuses names that are not plain file names.
pub fn unpack(artifact: &Path, files: &[DumpFile], dir: &Path) -> io::Result<Unpacked> {
    fs::create_dir_all(dir)?;
    if !files.iter().any(|f| f.name == TOC) {
        return Err(io::Error::other(format!("the manifest lists no {TOC}")));
    }
    for file in files {
        check_name(&file.name)?;
    }
    let mut by_size: Vec<&DumpFile> = files.iter().collect();
    by_size.sort_by_key(|f| std::cmp::Reverse(f.size));
    let stop = Arc::new(AtomicBool::new(false));
    let mut unpacked = Unpacked {
        dir: dir.to_path_buf(),
        feeders: Vec::new(),
        stop: stop.clone(),
    };
    for file in by_size {
        let path = dir.join(&file.name);
        let fifo = file.name != TOC && file.size >= FIFO_MIN && unpacked.feeders.len() < MAX_FIFOS;
        if !fifo {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            copy_member(artifact, file, &mut out)?;
            out.flush()?;
            continue;
        }
        make_fifo(&path)?;
        let (artifact, file, stop, fifo) = (
            artifact.to_path_buf(),
            file.clone(),
            stop.clone(),
            path.clone(),
        );
        let name = file.name.clone();
        let thread = std::thread::Builder::new()
            .name("pg-feed".into())
            .spawn(move || feed(&artifact, &file, &fifo, &stop))?;
        unpacked.feeders.push(Feeder {
            fifo: path,
            name,
            thread,
        });
    }
    Ok(unpacked)
}

/// Waits for a reader of `fifo`, then writes `file` into it: `Ok(true)`
/// when every byte went and matched, `Ok(false)` when the restore ended
/// without opening it.
fn feed(artifact: &Path, file: &DumpFile, fifo: &Path, stop: &AtomicBool) -> io::Result<bool> {
    let out = fs::OpenOptions::new().write(true).open(fifo)?;
    if stop.load(Ordering::SeqCst) {
        return Ok(false);
    }
    let mut out = BufWriter::with_capacity(1 << 20, out);
    copy_member(artifact, file, &mut out)?;
    out.flush()?;
    Ok(true)
}

impl Unpacked {
    /// After `pg_restore` ended: releases the threads still waiting for a
    /// reader, and says whether every file was fed whole. A file the
    /// restore never opened, or fed wrong, is an error: the database would
    /// lack what the dump holds.
    pub fn finish(mut self) -> Result<(), String> {
        let problems = self.release();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn release(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let mut problems = Vec::new();
        for feeder in std::mem::take(&mut self.feeders) {
            // A writer blocked in open() returns once a reader opens; ours
            // closes at once, and the writer sees `stop`.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !feeder.thread.is_finished() && Instant::now() < deadline {
                let _ = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&feeder.fifo);
                std::thread::sleep(Duration::from_millis(1));
            }
            if !feeder.thread.is_finished() {
                problems.push(format!("{}: its feeding thread did not stop", feeder.name));
                continue;
            }
            // Nothing may block on it later (a look at a kept scratch
            // folder): the FIFO goes.
            let _ = fs::remove_file(&feeder.fifo);
            match feeder.thread.join() {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    problems.push(format!("{}: pg_restore never read it", feeder.name))
                }
                Ok(Err(e)) => problems.push(format!("{}: {e}", feeder.name)),
                Err(_) => problems.push(format!("{}: its feeding thread failed", feeder.name)),
            }
        }
        problems
    }
}

/// An unpacked dump dropped without [`Unpacked::finish`] (a restore that
/// failed before pg_restore ran) leaves no thread waiting.
impl Drop for Unpacked {
    fn drop(&mut self) {
        self.release();
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("a path with a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

/// A writer that hashes what goes through it.
struct HashingCopy<W> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> HashingCopy<W> {
    fn new(inner: W) -> Self {
        HashingCopy {
            inner,
            sha: Sha256::new(),
        }
    }
    fn hex(self) -> String {
        hex::encode(self.sha.finalize())
    }
}

impl<W: Write> Write for HashingCopy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
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
        let large: Vec<u8> = (0..FIFO_MIN as usize * 3 + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        fs::write(dir.path().join(TOC), b"PGDMP toc").unwrap();
        fs::write(dir.path().join("3001.dat"), &large).unwrap();
        fs::write(dir.path().join("3000.dat"), b"1\tone\n\\.\n").unwrap();
        (dir, large)
    }

    fn packed() -> (tempfile::TempDir, PathBuf, Vec<DumpFile>, Vec<u8>) {
        let (dir, large) = dump_dir();
        let artifact = dir.path().join("artifact");
        let mut bytes = Vec::new();
        let files = pack(dir.path(), &mut bytes).unwrap();
        fs::write(&artifact, &bytes).unwrap();
        (dir, artifact, files, large)
    }

    #[test]
    fn the_artifact_is_a_plain_tar_zst_with_the_toc_first() {
        let (_dir, artifact, files, large) = packed();
        assert_eq!(
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            [TOC, "3000.dat", "3001.dat"]
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
        assert_eq!(seen[2], ("3001.dat".to_string(), large));
    }

    #[test]
    fn large_files_are_fed_through_fifos_and_small_ones_extracted() {
        let (dir, artifact, files, large) = packed();
        let out = dir.path().join("restore");
        let unpacked = unpack(&artifact, &files, &out).unwrap();
        assert_eq!(fs::read(out.join("3000.dat")).unwrap(), b"1\tone\n\\.\n");
        assert_eq!(fs::read(out.join(TOC)).unwrap(), b"PGDMP toc");
        use std::os::unix::fs::FileTypeExt;
        let fifo = out.join("3001.dat");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(fs::read(&fifo).unwrap(), large, "a reader gets the bytes");
        unpacked.finish().unwrap();
    }

    #[test]
    fn a_fifo_never_read_or_a_damaged_frame_fails_the_finish() {
        let (dir, artifact, files, _) = packed();
        let unread = unpack(&artifact, &files, &dir.path().join("a")).unwrap();
        let err = unread.finish().unwrap_err();
        assert!(err.contains("3001.dat: pg_restore never read it"), "{err}");

        // One byte of the large file's frame changed: the frame no longer
        // decodes, or decodes to other bytes; either way the reader is cut
        // short and the finish says so.
        let mut bytes = fs::read(&artifact).unwrap();
        let large = files.iter().find(|f| f.name == "3001.dat").unwrap();
        bytes[(large.offset + large.length / 2) as usize] ^= 0x40;
        fs::write(&artifact, &bytes).unwrap();
        let damaged = unpack(&artifact, &files, &dir.path().join("b")).unwrap();
        let _ = fs::read(dir.path().join("b/3001.dat"));
        let err = damaged.finish().unwrap_err();
        assert!(err.starts_with("3001.dat: "), "{err}");
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        let (dir, artifact, mut files, _) = packed();
        files[1].name = "../escape".into();
        let err = unpack(&artifact, &files, &dir.path().join("c"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a plain file name"), "{err}");
        assert!(!dir.path().join("escape").exists());
    }
}
