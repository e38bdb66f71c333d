//! Sparse files: their holes are found with `lseek(SEEK_DATA/SEEK_HOLE)`
//! when read (only for files with fewer blocks than bytes, so ordinary
//! files cost nothing), recorded in the manifest, and skipped (never
//! written) on restore, so a sparse file comes back sparse. The archive
//! holds the plain full file: zeros compress to almost nothing.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::super::manifest::Hole;
use super::sys;

/// A file fragmented past this many holes keeps the first ones; the rest
/// come back as written zeros (same bytes, more blocks).
const MAX_HOLES: usize = 65_536;

/// The holes of `file` (of `size` bytes), in order. A filesystem that
/// cannot tell (no `SEEK_HOLE`) reports none: the file is archived and
/// restored as a plain one. Moves the file's offset.
pub(super) fn find(file: &File, size: u64) -> Vec<Hole> {
    let mut holes = Vec::new();
    let mut pos = 0;
    while pos < size && holes.len() < MAX_HOLES {
        let data = match sys::next_data(file, pos) {
            Ok(Some(at)) => at.min(size),
            Ok(None) => size,
            Err(_) => break,
        };
        if data > pos {
            holes.push(Hole {
                offset: pos,
                len: data - pos,
            });
        }
        if data >= size {
            break;
        }
        pos = match sys::next_hole(file, data) {
            Ok(Some(at)) if at > data => at,
            _ => break,
        };
    }
    holes
}

/// Holes that fit a file of `size` bytes (one archived shorter than it
/// was when its holes were found keeps those before its end).
pub(super) fn clip(mut holes: Vec<Hole>, size: u64) -> Vec<Hole> {
    holes.retain_mut(|h| {
        if h.end() > size {
            h.len = size.saturating_sub(h.offset);
        }
        h.len > 0
    });
    holes
}

/// Whether recorded holes make sense for a file of `size` bytes: in
/// order, apart, not empty, inside the file.
pub(super) fn valid(holes: &[Hole], size: u64) -> bool {
    let mut end = 0;
    for h in holes {
        if h.len == 0 || h.offset < end || h.offset.checked_add(h.len).is_none_or(|e| e > size) {
            return false;
        }
        end = h.end();
    }
    true
}

/// Why a sparse write stopped.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The archive holds a byte other than zero at this offset, inside a
    /// recorded hole.
    NotZero(u64),
    /// Writing failed.
    Io(io::Error),
}

/// Writes a file's bytes at their offsets, skipping the recorded holes
/// (whose bytes must be zeros).
pub(super) struct HoleWriter<'a> {
    holes: &'a [Hole],
    next: usize,
}

impl<'a> HoleWriter<'a> {
    /// A writer for a file with `holes` (validated by [`valid`]).
    pub(super) fn new(holes: &'a [Hole]) -> Self {
        HoleWriter { holes, next: 0 }
    }

    /// Writes `data`, which starts at offset `pos` of the file.
    pub(super) fn write(
        &mut self,
        out: &File,
        mut pos: u64,
        mut data: &[u8],
    ) -> Result<(), WriteError> {
        while !data.is_empty() {
            while self.next < self.holes.len() && self.holes[self.next].end() <= pos {
                self.next += 1;
            }
            let (n, in_hole) = match self.holes.get(self.next) {
                Some(h) if h.offset <= pos => (h.end() - pos, true),
                Some(h) => (h.offset - pos, false),
                None => (data.len() as u64, false),
            };
            let n = n.min(data.len() as u64) as usize;
            let (part, rest) = data.split_at(n);
            if in_hole {
                if let Some(i) = part.iter().position(|b| *b != 0) {
                    return Err(WriteError::NotZero(pos + i as u64));
                }
            } else {
                out.write_all_at(part, pos).map_err(WriteError::Io)?;
            }
            pos += n as u64;
            data = rest;
        }
        Ok(())
    }
}

/// What a restored file's recorded holes are on disk.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Restored {
    /// Every recorded hole is a hole.
    Kept,
    /// The filesystem cannot report holes (`SEEK_DATA` unsupported).
    Unknown,
    /// The hole at this offset holds data (the filesystem may not support
    /// sparse files).
    Filled(u64),
}

/// Checks that each recorded hole of the restored `file` is a hole:
/// `SEEK_DATA` from its start lands at or past its end.
pub(super) fn check(file: &File, holes: &[Hole]) -> Restored {
    for h in holes {
        match sys::next_data(file, h.offset) {
            Ok(None) => {}
            Ok(Some(at)) if at >= h.end() => {}
            Ok(Some(_)) => return Restored::Filled(h.offset),
            Err(_) => return Restored::Unknown,
        }
    }
    Restored::Kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hole(offset: u64, len: u64) -> Hole {
        Hole { offset, len }
    }

    #[test]
    fn recorded_holes_must_fit_the_file() {
        assert!(valid(&[], 0));
        assert!(valid(&[hole(0, 4096), hole(8192, 4096)], 12288));
        assert!(!valid(&[hole(0, 4096)], 100), "past the end");
        assert!(!valid(&[hole(8192, 10), hole(0, 10)], 9000), "out of order");
        assert!(!valid(&[hole(0, 10), hole(5, 10)], 9000), "overlapping");
        assert!(!valid(&[hole(0, 0)], 9000), "empty");
        assert!(!valid(&[hole(u64::MAX, 2)], u64::MAX), "overflowing");
        assert_eq!(
            clip(vec![hole(0, 10), hole(20, 10), hole(40, 10)], 25),
            vec![hole(0, 10), hole(20, 5)]
        );
    }

    #[test]
    fn a_sparse_file_is_found_written_and_checked_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mib = 1u64 << 20;
        let file = File::create(&path).unwrap();
        file.write_all_at(b"head", 0).unwrap();
        file.write_all_at(b"middle", 8 * mib).unwrap();
        file.set_len(16 * mib).unwrap();
        let found = find(&file, 16 * mib);
        assert!(
            found.len() >= 2 && found.iter().map(|h| h.len).sum::<u64>() >= 14 * mib,
            "{found:?}"
        );
        assert!(valid(&found, 16 * mib));

        // Written back through the holes: same bytes, as sparse.
        let copy_path = dir.path().join("copy");
        let copy = File::create_new(&copy_path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut w = HoleWriter::new(&found);
        for (i, chunk) in bytes.chunks(100_000).enumerate() {
            w.write(&copy, (i * 100_000) as u64, chunk).unwrap();
        }
        copy.set_len(16 * mib).unwrap();
        assert_eq!(std::fs::read(&copy_path).unwrap(), bytes);
        assert_eq!(check(&copy, &found), Restored::Kept);
        use std::os::unix::fs::MetadataExt;
        assert!(copy.metadata().unwrap().blocks() * 512 < 2 * mib);

        // The plain file holds data where the holes were recorded.
        assert_eq!(check(&File::open(&path).unwrap(), &[]), Restored::Kept);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, &bytes).unwrap();
        assert!(matches!(
            check(&File::open(&plain).unwrap(), &found),
            Restored::Filled(_)
        ));

        // Data inside a recorded hole is refused.
        let bad = File::create_new(dir.path().join("bad")).unwrap();
        let err = HoleWriter::new(&[hole(10, 10)])
            .write(&bad, 0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
            .unwrap_err();
        assert!(matches!(err, WriteError::NotZero(12)), "{err:?}");
    }
}
