//! The SQLite catalog: every backup run, recovery point, drill and check.
//!
//! Opened through sqlx with the migrations of `migrations/` applied on first
//! use, in WAL mode so readers (`status`, `report`) never block a backup.
//! The orchestration (backup, drill, prune) writes it; reports read it.
//! A step is written as `running` before it acts and only marked complete
//! once its effect is durable, so a crash never leaves a false `complete`.

mod alerts;
mod drills;
mod jobs;
mod points;
mod rebuild;
mod runs;
mod status;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use alerts::AlertState;
pub use drills::{
    CheckRecord, DrillOutcome, DrillPhases, DrillRecord, DrillStatus, DrillView, NewCheck,
};
pub use jobs::{Job, JobKind, JobStatus};
pub use points::{NewPoint, Point, PointCompletion, PointFilter, UsablePoint};
pub use rebuild::RebuiltPoint;
pub use runs::BackupRun;
pub use status::{Flags, PointStatus, RunStatus, UnknownFlag};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the catalog could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The database file (or its folder) could not be created or opened.
    #[error("catalog {path}: cannot open: {source}")]
    Open {
        /// The catalog's path.
        path: PathBuf,
        /// Why it did not open.
        source: sqlx::Error,
    },
    /// The migrations could not be applied (for instance a catalog written
    /// by a newer build, with migrations this one does not know).
    #[error("catalog {path}: cannot apply migrations: {source}")]
    Migrate {
        /// The catalog's path.
        path: PathBuf,
        /// The migration that failed and why.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed: the file is busy past the 30 s busy timeout,
    /// unreadable, full, or holds a value this build cannot decode.
    #[error("catalog: {0}")]
    Query(#[from] sqlx::Error),
}

/// A handle on the catalog database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: SqlitePool,
    path: PathBuf,
}

impl Catalog {
    /// Opens (creating and migrating if needed) the catalog at `path`.
    pub async fn open(path: &Path) -> Result<Catalog, CatalogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| CatalogError::Open {
                path: path.to_path_buf(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|source| CatalogError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // Rows cross from SQLite's thread to ours through a bounded
            // channel; sqlx's default of 50 makes the two threads hand over
            // (and wake each other) every few rows when the report streams
            // millions of them. Catalog rows are small, so a deeper channel
            // costs little memory.
            .row_buffer_size(1024);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| CatalogError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| CatalogError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Catalog {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// The database file, as given to [`Catalog::open`], for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool (at most 4 connections), for queries outside
    /// this module such as the daemon's readiness probe.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
