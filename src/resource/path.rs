//! `path` resources: a folder (or file) archived as tar + zstd, with a
//! manifest holding every file's size, mode and SHA-256.
//!
//! Backup reads each file once: the bytes go through SHA-256 into the tar
//! stream, through zstd, into the vault, in bounded memory. Restore streams
//! the archive back, refuses entries that would land outside the scratch
//! folder, and checks every file against the manifest.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio_util::io::SyncIoBridge;

use super::manifest::{ArtifactInfo, EntryType, FileEntry, Manifest};
use super::{ArtifactKeys, Kind, PointFlag, ResourceError, Restored, RestoredInto, Snapshot};
use crate::pipe::{pipe, PipeWriter};
use crate::vault::{HashingReader, HashingWriter, Vault};

const ZSTD_LEVEL: i32 = 1;

/// Archives `root` (a folder, or a single file), minus what `exclude`
/// matches, into `keys.artifact`; returns its manifest. `data_time` is
/// when reading starts. Links are stored as links; sockets, FIFOs and
/// devices are skipped. A file that changes size while read is cut or
/// zero-padded to the size it had when listed (as GNU tar does) and the
/// point is flagged `changed-while-read`. `label` names the progress bar.
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
    let globs = build_globs(exclude)?;
    let (writer, reader) = pipe();
    let progress = crate::progress::bytes(format!("backup {label}"), None);
    let root_owned = root.to_path_buf();
    let bar = progress.clone();
    let producer =
        tokio::task::spawn_blocking(move || write_archive(&root_owned, &globs, writer, &bar));
    let put = vault.put(&keys.artifact, reader);
    let (produced, put) = tokio::join!(producer, put);
    progress.finish_and_clear();
    let produced = produced
        .map_err(|e| ResourceError::Other(format!("archiving {} stopped: {e}", root.display())))?;
    // The producer's error explains a failed put better than the pipe's.
    let (files, artifact) = match (produced, put) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(e)) => return Err(e.into()),
        (Ok(p), Ok(size)) => {
            debug_assert_eq!(size, p.1.size);
            p
        }
    };
    let file_count = files
        .iter()
        .filter(|f| f.entry_type == EntryType::File)
        .count() as u64;
    let content_bytes = files.iter().map(|f| f.size).sum();
    let changed = files.iter().any(|f| f.changed_while_read);
    let manifest = Manifest {
        format: Manifest::FORMAT,
        point: None,
        kind: Kind::Path,
        data_time: crate::time::rfc3339(data_time),
        artifact: artifact.clone(),
        file_count,
        content_bytes,
        files,
        database: None,
        postgres: None,
        bucket: None,
        objects: Vec::new(),
    };
    Ok((
        Snapshot {
            data_time,
            size_bytes: artifact.size,
            sha256: artifact.sha256,
            file_count,
            content_bytes,
            flags: if changed {
                vec![PointFlag::ChangedWhileRead]
            } else {
                vec![]
            },
            manifest_sha256: None,
        },
        manifest,
    ))
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

/// Blocking: walks `root`, writes tar + zstd into the pipe. Returns the
/// manifest entries and the artifact's size and SHA-256.
fn write_archive(
    root: &Path,
    globs: &GlobSet,
    writer: PipeWriter,
    progress: &ProgressBar,
) -> Result<(Vec<FileEntry>, ArtifactInfo), ResourceError> {
    let hashing = HashingWriter::new(writer);
    let result = (|| -> Result<(Vec<FileEntry>, HashingWriter<PipeWriter>), ResourceError> {
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
        let entries = append_tree(&mut builder, root, globs, progress)?;
        let encoder = builder
            .into_inner()
            .map_err(|e| ResourceError::Other(format!("finishing archive: {e}")))?;
        let hashing = encoder.finish().map_err(io_err)?;
        Ok((entries, hashing))
    })();
    // On error the HashingWriter (and its PipeWriter) is dropped inside the
    // closure, which aborts the pipe: the vault discards the partial object.
    let (entries, hashing) = result?;
    let (writer, sha256, size) = hashing.finish();
    writer
        .finish()
        .map_err(|e| ResourceError::Other(format!("sending archive to the vault: {e}")))?;
    Ok((entries, ArtifactInfo { sha256, size }))
}

fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    globs: &GlobSet,
    progress: &ProgressBar,
) -> Result<Vec<FileEntry>, ResourceError> {
    let mut entries = Vec::new();
    let root_is_file = fs::symlink_metadata(root)
        .map(|m| m.is_file())
        .unwrap_or(false);
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(if root_is_file { 0 } else { 1 });
    let walk = walk.into_iter().filter_entry(|e| {
        let rel = rel_name(root, e.path(), root_is_file);
        !globs.is_match(&rel)
    });
    for entry in walk {
        let entry = entry
            .map_err(|e| ResourceError::Source(format!("cannot read {}: {e}", root.display())))?;
        let path = entry.path();
        let rel = rel_name(root, path, root_is_file);
        let meta = entry
            .metadata()
            .map_err(|e| ResourceError::Source(format!("cannot read {}: {e}", path.display())))?;
        let mode = meta.mode() & 0o7777;
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_mtime(meta.mtime().max(0) as u64);
        let ft = entry.file_type();
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(ResourceError::io("archive", path))?;
            entries.push(FileEntry {
                path: rel,
                entry_type: EntryType::Dir,
                size: 0,
                mode,
                sha256: None,
                target: None,
                changed_while_read: false,
            });
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(ResourceError::io("read link", path))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(ResourceError::io("archive", path))?;
            entries.push(FileEntry {
                path: rel,
                entry_type: EntryType::Symlink,
                size: 0,
                mode,
                sha256: None,
                target: Some(target.to_string_lossy().into_owned()),
                changed_while_read: false,
            });
        } else if ft.is_file() {
            let file = fs::File::open(path).map_err(|e| {
                ResourceError::Source(format!("cannot read {}: {e}", path.display()))
            })?;
            let size = meta.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            let mut reader = PaddedHashingReader::new(file, size, progress);
            builder
                .append_data(&mut header, &rel, &mut reader)
                .map_err(|e| {
                    ResourceError::Source(format!("cannot read {}: {e}", path.display()))
                })?;
            let changed = reader.changed();
            if changed {
                tracing::warn!(file = %path.display(), "file changed size while being read; archived as GNU tar does (truncated or zero-padded)");
            }
            entries.push(FileEntry {
                path: rel,
                entry_type: EntryType::File,
                size,
                mode,
                sha256: Some(reader.hex()),
                target: None,
                changed_while_read: changed,
            });
        } else {
            tracing::warn!(file = %path.display(), "skipping special file (socket, fifo or device)");
        }
    }
    Ok(entries)
}

/// Archive name of a walked path: relative to the root, `/`-separated.
fn rel_name(root: &Path, path: &Path, root_is_file: bool) -> String {
    if root_is_file {
        return path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads exactly `size` bytes of a file, hashing them: a file that grew is
/// cut at the size in the tar header, one that shrank is padded with zeros
/// (as GNU tar does), so the archive stays well-formed.
struct PaddedHashingReader<'a> {
    file: io::Take<fs::File>,
    remaining: u64,
    hasher: Sha256,
    padded: bool,
    progress: &'a ProgressBar,
}

impl<'a> PaddedHashingReader<'a> {
    fn new(file: fs::File, size: u64, progress: &'a ProgressBar) -> Self {
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

/// Extracts the point at `keys` into `dest` (created if needed), checking
/// every entry against `manifest` (the point's, already bound to the
/// catalog's record) as it is written and the whole
/// artifact's SHA-256 at the end. Refuses entries outside `dest`, links
/// that resolve outside it or through another link, entries the manifest
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
    let (files, bytes) = extracted?;
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
    Ok(Restored {
        verification: format!(
            "{files} files ({bytes} bytes) match the manifest's sha256; artifact sha256 verified"
        ),
        into: RestoredInto::Folder(dest.to_path_buf()),
    })
}

/// Blocking: extracts the archive under `dest`, verifying each entry
/// against the manifest. Returns (files, bytes) restored.
fn extract(
    reader: impl Read,
    manifest: &Manifest,
    dest: &Path,
    location: &str,
    progress: &ProgressBar,
) -> Result<(u64, u64), ResourceError> {
    let corrupt = |detail: String| ResourceError::Corrupt {
        location: location.to_string(),
        detail,
    };
    fs::create_dir_all(dest).map_err(ResourceError::io("create", dest))?;
    let expected: HashMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut safe_dirs: HashSet<PathBuf> = HashSet::new();
    safe_dirs.insert(dest.to_path_buf());
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let (mut files, mut bytes) = (0u64, 0u64);

    let decoder = zstd::stream::read::Decoder::new(reader)
        .map_err(|e| corrupt(format!("cannot start decompression: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .map_err(|e| corrupt(format!("cannot read archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("cannot read archive: {e}")))?;
        let raw_path = entry
            .path()
            .map_err(|e| corrupt(format!("bad entry name: {e}")))?
            .into_owned();
        let rel = safe_relative(&raw_path).ok_or_else(|| {
            corrupt(format!(
                "entry `{}` would be written outside the restore folder; refused",
                raw_path.display()
            ))
        })?;
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let Some(want) = expected.get(name.as_str()) else {
            return Err(corrupt(format!("entry `{name}` is not in the manifest")));
        };
        if !seen.insert(name.clone()) {
            return Err(corrupt(format!("entry `{name}` appears twice")));
        }
        let target = dest.join(&rel);
        ensure_parents(dest, &target, &mut safe_dirs)
            .map_err(|detail| corrupt(format!("entry `{name}`: {detail}")))?;
        match (entry.header().entry_type(), want.entry_type) {
            (tar::EntryType::Directory, EntryType::Dir) => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(corrupt(format!("entry `{name}`: not a folder on disk"))),
                    Err(_) => {
                        fs::create_dir(&target).map_err(ResourceError::io("create", &target))?
                    }
                }
                safe_dirs.insert(target.clone());
                dir_modes.push((target, want.mode));
            }
            (tar::EntryType::Regular, EntryType::File) => {
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(ResourceError::io("create", &target))?;
                let mut hasher = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                let mut size = 0u64;
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| corrupt(format!("entry `{name}`: cannot read: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    out.write_all(&buf[..n])
                        .map_err(ResourceError::io("write", &target))?;
                    size += n as u64;
                    progress.inc(n as u64);
                }
                let sha = hex::encode(hasher.finalize());
                if size != want.size || Some(&sha) != want.sha256.as_ref() {
                    return Err(corrupt(format!(
                        "file `{name}` does not match the manifest: expected {} bytes sha256 {}, got {} bytes sha256 {}",
                        want.size,
                        want.sha256.as_deref().unwrap_or("?"),
                        size,
                        sha
                    )));
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(want.mode))
                    .map_err(ResourceError::io("chmod", &target))?;
                files += 1;
                bytes += size;
            }
            (tar::EntryType::Symlink, EntryType::Symlink) => {
                let link = entry
                    .link_name()
                    .map_err(|e| corrupt(format!("entry `{name}`: bad link: {e}")))?
                    .ok_or_else(|| corrupt(format!("entry `{name}`: link without target")))?
                    .into_owned();
                if !link_stays_inside(&rel, &link) {
                    return Err(corrupt(format!(
                        "symlink `{name}` points to `{}`, outside the restore folder; refused",
                        link.display()
                    )));
                }
                if want.target.as_deref() != Some(&*link.to_string_lossy()) {
                    return Err(corrupt(format!(
                        "symlink `{name}` does not match the manifest"
                    )));
                }
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(ResourceError::io("symlink", &target))?;
                links.push((rel.clone(), link));
            }
            (t, _) => {
                return Err(corrupt(format!(
                    "entry `{name}` has type {t:?}, the manifest says {:?}",
                    want.entry_type
                )))
            }
        }
    }
    // Read to the end so the artifact's checksum covers every byte.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| corrupt(format!("cannot read the end of the archive: {e}")))?;
    // A link may only resolve through real folders: a chain of links (each
    // harmless on its own) could otherwise point outside the restore folder.
    for (rel, link) in &links {
        if let Err(detail) = link_resolves_inside(dest, rel, link) {
            for (r, _) in &links {
                let _ = fs::remove_file(dest.join(r));
            }
            return Err(corrupt(format!(
                "symlink `{}` -> `{}` {detail}; refused",
                rel.display(),
                link.display()
            )));
        }
    }
    let missing: Vec<&str> = manifest
        .files
        .iter()
        .filter(|f| !seen.contains(&f.path))
        .map(|f| f.path.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(corrupt(format!(
            "{} entries of the manifest are missing from the archive, first `{}`",
            missing.len(),
            missing[0]
        )));
    }
    // Folder modes last, deepest first, so a read-only folder does not
    // block writing its children.
    for (dir, mode) in dir_modes.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
            .map_err(ResourceError::io("chmod", dir))?;
    }
    Ok((files, bytes))
}

/// The entry's path if it is a plain relative path (no root, no `..`).
fn safe_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Whether a relative symlink at `entry` pointing to `link` resolves inside
/// the restore root (lexically; parents are checked to be real folders).
fn link_stays_inside(entry: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in link.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Why an archive entry may not be written where it asks to go.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Walks a link's target from the link's folder: it must stay inside
/// `root` and may not pass through another symlink.
fn link_resolves_inside(root: &Path, rel: &Path, link: &Path) -> Result<(), Refused> {
    if link.is_absolute() {
        return Err(Refused("is absolute".into()));
    }
    let mut cur: Vec<std::ffi::OsString> = rel
        .parent()
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_os_string())
                .collect()
        })
        .unwrap_or_default();
    let components: Vec<Component> = link.components().collect();
    for (i, c) in components.iter().enumerate() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if cur.pop().is_none() {
                    return Err(Refused("points outside the restore folder".into()));
                }
            }
            Component::Normal(name) => {
                cur.push(name.to_os_string());
                let is_last = i + 1 == components.len();
                let path: PathBuf = cur.iter().fold(root.to_path_buf(), |p, c| p.join(c));
                if !is_last && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
                {
                    return Err(Refused(format!(
                        "goes through another symlink `{}`",
                        path.display()
                    )));
                }
            }
            _ => return Err(Refused("is not a plain relative path".into())),
        }
    }
    Ok(())
}

/// Removes a scratch folder, first making every folder in it writable (a
/// restored read-only folder would otherwise block the clean-up).
pub fn remove_scratch(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_refused() {
        assert!(safe_relative(Path::new("../etc/passwd")).is_none());
        assert!(safe_relative(Path::new("/etc/passwd")).is_none());
        assert!(safe_relative(Path::new("a/../../b")).is_none());
        assert_eq!(
            safe_relative(Path::new("./a/b")),
            Some(PathBuf::from("a/b"))
        );
    }

    #[test]
    fn link_chains_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::os::unix::fs::symlink(".", root.join("y")).unwrap();
        std::os::unix::fs::symlink("y/..", root.join("u1")).unwrap();
        // Each link looks harmless lexically...
        assert!(link_stays_inside(Path::new("u1"), Path::new("y/..")));
        // ...but resolving through `y` is refused.
        assert!(link_resolves_inside(root, Path::new("u1"), Path::new("y/..")).is_err());
        assert!(link_resolves_inside(root, Path::new("pw"), Path::new("u1/etc/passwd")).is_err());
        assert!(link_resolves_inside(root, Path::new("a/l"), Path::new("../b")).is_ok());
        assert!(link_resolves_inside(root, Path::new("l"), Path::new("../x")).is_err());
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside(Path::new("a/l"), Path::new("../b")));
        assert!(link_stays_inside(Path::new("a/l"), Path::new("c/d")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("../x")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../x")));
        assert!(!link_stays_inside(
            Path::new("a/l"),
            Path::new("/etc/passwd")
        ));
    }
}
