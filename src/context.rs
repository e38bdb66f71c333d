//! What every operation needs: the catalog and the working folders. Passed
//! explicitly, never global.

use std::path::PathBuf;

use crate::catalog::Catalog;

/// The catalog and the working folder of one process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where every run, point and drill is recorded.
    pub catalog: Catalog,
    /// Scratch space: drill restores, temporary copies. Exclusion is not
    /// kept here but in the catalog (`crate::lease`): processes with
    /// different work folders still exclude each other.
    pub work_dir: PathBuf,
}

impl Context {
    /// `WORK/drills`: one `ID/RESOURCE` scratch folder per drill and
    /// resource, removed by the drill's clean-up unless kept.
    pub fn drills_dir(&self) -> PathBuf {
        self.work_dir.join("drills")
    }

    /// `WORK/tmp`: temporary copies made during backups (a SQLite
    /// snapshot before it is compressed); needs room for the largest one.
    pub fn tmp_dir(&self) -> PathBuf {
        self.work_dir.join("tmp")
    }
}
