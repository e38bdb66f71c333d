//! Per-plan exclusive locks (one backup and one drill of a plan at a time),
//! held as OS file locks so a crashed process releases them by dying: a
//! `running` row found while holding the lock belongs to a dead process.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Why a plan's lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or task) holds it; nothing waits for it.
    #[error("a {what} of plan `{plan}` is already running (lock {path})")]
    Busy {
        /// Which lock: `backup`, `drill` or `verify`.
        what: &'static str,
        /// The plan's name.
        plan: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock folder or file could not be created, opened or locked.
    #[error("cannot open lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A plan's exclusive lock, held for as long as the value lives (the OS
/// releases it when the file is closed, or the process dies).
#[derive(Debug)]
pub struct PlanLock {
    _file: File,
}

impl PlanLock {
    /// Takes the `what` (backup, drill, verify) lock of `plan`, without
    /// waiting.
    pub fn try_acquire(dir: &Path, plan: &str, what: &'static str) -> Result<PlanLock, LockError> {
        let path = dir.join(format!("{plan}.{what}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(PlanLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy {
                what,
                plan: plan.to_string(),
                path,
            }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}
