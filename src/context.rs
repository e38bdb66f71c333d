//! What every operation needs: the catalog and the working folders. Passed
//! explicitly, never global.

use std::path::PathBuf;

use crate::catalog::Catalog;

#[derive(Debug, Clone)]
pub struct Context {
    pub catalog: Catalog,
    /// Scratch space: drill restores, temporary copies, locks.
    pub work_dir: PathBuf,
}

impl Context {
    pub fn locks_dir(&self) -> PathBuf {
        self.work_dir.join("locks")
    }

    pub fn drills_dir(&self) -> PathBuf {
        self.work_dir.join("drills")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.work_dir.join("tmp")
    }
}
