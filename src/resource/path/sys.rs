//! The two system calls std does not wrap: `lseek` with `SEEK_DATA` /
//! `SEEK_HOLE` (to find a sparse file's holes) and `geteuid` (owners are
//! applied only by a restore running as root).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Whether this process runs as root (effective uid 0).
pub(super) fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Where the next data (`SEEK_DATA`) or hole (`SEEK_HOLE`) at or after
/// `offset` starts; `None` when there is no data from `offset` to the end
/// (`ENXIO`). Moves the file's offset.
fn seek(file: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let offset = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    // SAFETY: the descriptor is open for as long as `file` is borrowed;
    // lseek reads no memory of ours.
    let at = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    if at < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(at as u64))
}

/// The next offset at or after `offset` holding data, `None` if only holes
/// follow.
pub(super) fn next_data(file: &File, offset: u64) -> io::Result<Option<u64>> {
    seek(file, offset, libc::SEEK_DATA)
}

/// The next hole at or after `offset` (the file's end counts as one).
pub(super) fn next_hole(file: &File, offset: u64) -> io::Result<Option<u64>> {
    seek(file, offset, libc::SEEK_HOLE)
}
