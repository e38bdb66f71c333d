//! Temporary folders a backup writes under the work dir before they go to
//! the vault: a SQLite copy, a PostgreSQL directory-format dump. Named
//! `PREFIX-PID-RANDOM`, so what a dead backup left can be told from what a
//! live one is writing (`crate::leftovers`).

use std::path::Path;

use super::ResourceError;

/// A SQLite database's `VACUUM INTO` copy.
pub const SQLITE: &str = "sqlite-snapshot-";
/// A `pg_dump --format=directory` dump.
pub const POSTGRES: &str = "pg-dump-";

/// Creates a folder named `{prefix}{pid}-RANDOM` in `work_dir` (created if
/// needed); removed when the returned value is dropped.
pub fn create(work_dir: &Path, prefix: &str) -> Result<tempfile::TempDir, ResourceError> {
    std::fs::create_dir_all(work_dir).map_err(ResourceError::io("create", work_dir))?;
    tempfile::Builder::new()
        .prefix(&format!("{prefix}{}-", std::process::id()))
        .tempdir_in(work_dir)
        .map_err(ResourceError::io("create temporary folder in", work_dir))
}

/// `Some` for a work folder's name, with the id of the process that made
/// it (`None` inside: a folder named before names carried it).
pub fn pid_of(name: &str) -> Option<Option<u32>> {
    let rest = [SQLITE, POSTGRES]
        .iter()
        .find_map(|p| name.strip_prefix(p))?;
    Some(rest.split_once('-').and_then(|(pid, _)| pid.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_folders_are_told_by_name_with_their_process() {
        assert_eq!(pid_of("sqlite-snapshot-42-aB3x"), Some(Some(42)));
        assert_eq!(pid_of("pg-dump-7-Qz9"), Some(Some(7)));
        assert_eq!(pid_of("sqlite-snapshot-old"), Some(None));
        assert_eq!(pid_of("restore-1-x"), None);
    }

    #[test]
    fn a_created_folder_carries_this_process_id() {
        let work = tempfile::tempdir().unwrap();
        let dir = create(&work.path().join("new"), POSTGRES).unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(pid_of(name), Some(Some(std::process::id())));
    }
}
