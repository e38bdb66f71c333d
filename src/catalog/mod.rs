//! The catalog: every backup run, recovery point, drill and check.
//!
//! Two engines hold it: SQLite, the embedded default (a file), and
//! PostgreSQL (`--catalog postgres://…`), which many daemons on several
//! hosts share (`docs/fleet.md`). Each query is written once, in the SQL
//! both speak (`$1` placeholders, `ON CONFLICT`, `RETURNING`), and
//! compiled once per engine by [`on_pool!`]; the few statements that must
//! differ ask [`Catalog::is_sqlite`]. The SQLite file:
//!
//! Opened through sqlx with the migrations of `migrations/` applied on open,
//! in WAL mode so readers (`status`, `report`) never block a backup. Only
//! the commands that start a catalog create the file ([`OpenMode`]); an
//! empty, foreign or damaged file is refused, never made into a catalog.
//! The orchestration (backup, drill, prune) writes it; reports read it.
//! A step is written as `running` before it acts and only marked complete
//! once its effect is durable, so a crash never leaves a false `complete`.

/// Runs `$body` with `$p` bound to the catalog's pool (written like a
/// closure, `on_pool!(self, |db| …)`, so rustfmt formats it), whichever engine it
/// is on: the body is compiled once per engine, so each query is written
/// once and both engines run the same SQL. The body's value must not
/// depend on the engine (map a `QueryResult` to its `rows_affected()`).
macro_rules! on_pool {
    ($cat:expr, |$p:ident| $body:expr) => {
        match &$cat.pool {
            $crate::catalog::Pool::Sqlite($p) => $body,
            $crate::catalog::Pool::Postgres($p) => $body,
        }
    };
}

mod alerts;
mod daemons;
mod drills;
mod evidence_head;
mod exposure_days;
mod jobs;
mod leases;
mod metrics;
mod points;
mod rebuild;
mod restores;
mod runs;
mod status;
#[cfg(test)]
pub(crate) mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use alerts::AlertState;
pub use daemons::DaemonRecord;
pub use drills::{
    CheckRecord, DrillOutcome, DrillPhases, DrillRecord, DrillStatus, DrillView, NewCheck,
};
pub use evidence_head::EvidenceHead;
pub use exposure_days::ExposureDay;
pub use jobs::{Job, JobKind, JobStatus};
pub use leases::{LeaseRecord, NewLease};
pub use metrics::{RunSource, RunStats, RunTally, WrittenBytes, DURATION_BUCKETS};
pub use points::{NewPoint, Point, PointCompletion, PointFilter, UsablePoint};
pub use rebuild::{RebuiltDrill, RebuiltPoint};
pub use restores::{NewRestore, RestorePoint, RestoreRecord, RestoreStatus};
pub use runs::BackupRun;
pub use status::{Flags, PointStatus, RunStatus, UnknownFlag};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL catalog's migrations: the same schema as SQLite's, in
/// PostgreSQL's types (`BIGINT` ids from identities, `BOOLEAN` flags,
/// PL/pgSQL triggers), from one first migration since PostgreSQL catalogs
/// have no history of their own to replay.
static MIGRATOR_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `PRAGMA application_id` of a Lifeboat catalog ('LFBT'), set by migration
/// 0009: a SQLite file with another id is some other program's.
pub const APPLICATION_ID: u32 = 0x4C46_4254;

/// What to say about a catalog that is damaged.
const DAMAGED_HINT: &str = "restore it from its own backup, or rebuild it from a vault with `lifeboat catalog rebuild --from REGION`";

/// What to say about a catalog that is missing or is not one.
const CREATED_BY: &str =
    "only `backup run`, `daemon`, `demo` and `catalog rebuild` create a catalog; check --catalog or LIFEBOAT_CATALOG";

/// Whether opening may create the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create (and migrate) the catalog when the file does not exist: for
    /// the commands that start one (`backup`, `daemon`, `demo`, `catalog
    /// rebuild`).
    Create,
    /// Open only a catalog that exists: every other command. A missing file
    /// is [`CatalogError::Missing`], and nothing is created.
    Existing,
}

/// How much of the file is checked for damage when it is opened.
///
/// `PRAGMA quick_check` reads every page: measured at 0.2–0.3 s on a
/// 143 MB catalog of 288,000 points (`bench/report_scale.sh` with 10 plans
/// over 100 days; 2 busy cores, warm cache; several seconds cold), so
/// 7–11 s or more on the 5.1 GB, 10.5 M-point catalog of the full bench —
/// far too slow for `report` (under 2 s) and `status` (under 0.2 s), and
/// acceptable once for a command that writes or for the daemon's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// `PRAGMA quick_check` of the whole file: the daemon's start and the
    /// commands that write (backup, prune, drill run, catalog rebuild).
    Full,
    /// `quick_check` of the small tables only (drills, their checks and
    /// points, evidence heads, alerts, the schema): 3–4 ms on the same
    /// catalog, and it does not grow with the number of points. A damaged page of the large tables (points,
    /// runs, jobs) is reported by SQLite when a read meets it, and shown
    /// as damage ([`CatalogError::Query`]).
    Light,
}

/// The tables [`Integrity::Light`] checks: those that stay small.
const SMALL_TABLES: &[&str] = &[
    "sqlite_schema",
    "_sqlx_migrations",
    "drills",
    "drill_points",
    "drill_checks",
    "evidence_heads",
    "rpo_alerts",
    "leases",
    "daemons",
];

/// Why the catalog could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog does not exist and this command does not create one.
    #[error("catalog {} does not exist; {CREATED_BY}", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The PostgreSQL database exists but holds no catalog, and this
    /// command does not create one.
    #[error("catalog {}: the database holds no Lifeboat catalog yet; {CREATED_BY}", path.display())]
    NoneInDatabase {
        /// The URL given, without its password.
        path: PathBuf,
    },
    /// The file is empty: not a catalog, and not made into one.
    #[error("catalog {} is an empty file, not a Lifeboat catalog; refusing to use it (delete it to start a new catalog: {CREATED_BY})", path.display())]
    Empty {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a SQLite database.
    #[error("catalog {} is not a SQLite database, so not a Lifeboat catalog; refusing to touch it ({CREATED_BY})", path.display())]
    NotSqlite {
        /// The path given.
        path: PathBuf,
    },
    /// A database (SQLite or PostgreSQL), but some other program's.
    #[error("catalog {} is a database but not a Lifeboat catalog ({why}); refusing to touch it ({CREATED_BY})", path.display())]
    Foreign {
        /// The path given.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// SQLite found damage in the file.
    #[error("catalog {} is damaged: SQLite says: {report}; {DAMAGED_HINT}", path.display())]
    Damaged {
        /// The path given.
        path: PathBuf,
        /// What SQLite's check (or the failed read) said.
        report: String,
    },
    /// The database file (or its folder) could not be created or opened.
    #[error("catalog {}: cannot open: {}", path.display(), explain(source))]
    Open {
        /// The catalog's path.
        path: PathBuf,
        /// Why it did not open.
        source: sqlx::Error,
    },
    /// The migrations could not be applied (for instance a catalog written
    /// by a newer build, with migrations this one does not know).
    #[error("catalog {}: cannot apply migrations: {source}", path.display())]
    Migrate {
        /// The catalog's path.
        path: PathBuf,
        /// The migration that failed and why.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed: the file is busy past the 30 s busy timeout,
    /// unreadable, full, damaged, or holds a value this build cannot decode.
    #[error("catalog: {}", explain(.0))]
    Query(#[from] sqlx::Error),
}

impl CatalogError {
    /// The path named is not a catalog (missing, empty, not SQLite, another
    /// program's): the user's input is wrong, not the operation.
    pub fn is_bad_path(&self) -> bool {
        matches!(
            self,
            CatalogError::Missing { .. }
                | CatalogError::NoneInDatabase { .. }
                | CatalogError::Empty { .. }
                | CatalogError::NotSqlite { .. }
                | CatalogError::Foreign { .. }
        )
    }
}

/// SQLite's extended result code of an error, if it is one.
fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(d) => {
            sqlx::error::DatabaseError::code(d.try_downcast_ref::<sqlx::sqlite::SqliteError>()?)?
                .parse()
                .ok()
        }
        _ => None,
    }
}

/// SQLITE_CORRUPT (with its extended codes) and SQLITE_NOTADB.
fn is_damage(e: &sqlx::Error) -> bool {
    sqlite_code(e).is_some_and(|c| c & 0xff == 11 || c & 0xff == 26)
}

/// The error, with what it most likely means when SQLite's words are
/// obscure: "disk I/O error (code 4874)" is the shared-memory file failing
/// to grow, almost always a full disk.
fn explain(e: &sqlx::Error) -> String {
    match sqlite_code(e) {
        Some(13) | Some(4874) => format!("{e} (the disk holding the catalog is probably full)"),
        _ if matches!(e, sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull) => {
            format!("{e} (the disk holding the catalog is full)")
        }
        _ if is_damage(e) => format!("{e} (the catalog is damaged: {DAMAGED_HINT})"),
        _ => e.to_string(),
    }
}

/// What the first bytes of the file say it is.
enum Found {
    /// No file: only [`OpenMode::Create`] makes one.
    Missing,
    /// A SQLite database marked as a Lifeboat catalog.
    Catalog,
    /// A SQLite database without an application id: a catalog from before
    /// migration 0009, or another program's.
    Unmarked,
}

/// Reads the file's SQLite header (never through SQLite, which would
/// change a foreign file by opening it in WAL mode).
fn inspect(path: &Path) -> Result<Found, CatalogError> {
    use std::io::Read;
    let open_error = |e: std::io::Error| CatalogError::Open {
        path: path.to_path_buf(),
        source: sqlx::Error::Io(e),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(open_error(e)),
    };
    if meta.is_dir() {
        return Err(CatalogError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    if meta.len() == 0 {
        return Err(CatalogError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(open_error)?;
    if header.len() < 100 || !header.starts_with(b"SQLite format 3\0") {
        return Err(CatalogError::NotSqlite {
            path: path.to_path_buf(),
        });
    }
    let id = u32::from_be_bytes([header[68], header[69], header[70], header[71]]);
    match id {
        APPLICATION_ID => Ok(Found::Catalog),
        0 => Ok(Found::Unmarked),
        other => Err(CatalogError::Foreign {
            path: path.to_path_buf(),
            why: format!("its application_id is {other:#010x}, another program's"),
        }),
    }
}

/// Whether an unmarked database is a catalog from before migration 0009:
/// one whose first applied migration is ours. Read through a read-only
/// connection, which leaves the file as it is.
async fn is_unmarked_catalog(path: &Path) -> Result<(), CatalogError> {
    use sqlx::{ConnectOptions, Connection};
    let foreign = |why: &str| CatalogError::Foreign {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    let opened = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await;
    let mut conn = match opened {
        Ok(c) => c,
        Err(e) => return Err(read_error(path, e)),
    };
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| read_error(path, e))?;
    if tables == 0 {
        let _ = conn.close().await;
        return Err(foreign("it has no Lifeboat migrations"));
    }
    let first: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 1")
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| read_error(path, e))?;
    let _ = conn.close().await;
    let ours = MIGRATOR.migrations.first().map(|m| m.checksum.as_ref());
    match first {
        Some(sum) if Some(sum.as_slice()) == ours => Ok(()),
        _ => Err(foreign("its migrations are not Lifeboat's")),
    }
}

/// Makes a new, migrated catalog at `path`, whole or not at all: it is
/// built under a temporary name beside `path` and only then linked into
/// place. Created in place, a process killed half-way (kill -9 in its first
/// second) left an empty or unmarked file that every later start refused
/// as not a catalog. A link, unlike a rename, never replaces a catalog
/// another process created meanwhile: that one is kept and used.
async fn create_new(path: &Path) -> Result<(), CatalogError> {
    use sqlx::{ConnectOptions, Connection};
    let open_error = |e: std::io::Error| CatalogError::Open {
        path: path.to_path_buf(),
        source: sqlx::Error::Io(e),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.new-{:016x}", rand::random::<u64>()));
    let made = async {
        // A rollback journal while it is private: the finished file then
        // holds everything, with no WAL beside it to carry along.
        let mut conn = SqliteConnectOptions::new()
            .filename(&tmp)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Delete)
            .foreign_keys(true)
            .connect()
            .await
            .map_err(|e| read_error(&tmp, e))?;
        let migrated = MIGRATOR.run(&mut conn).await;
        let _ = conn.close().await;
        migrated.map_err(|source| CatalogError::Migrate {
            path: path.to_path_buf(),
            source,
        })?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(open_error)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(open_error(e)),
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(open_error)?;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&tmp);
    made
}

/// How old a half-made catalog must be before it counts as a crashed
/// creator's: another process creating the catalog right now takes a
/// second at most.
const STALE_NEW_FILE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the `.NAME.new-*` files that creators killed before they
/// finished (`kill -9` between creating and linking) left beside `path`.
fn remove_stale_new_files(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.new-");
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_NEW_FILE);
        if stale && e.file_name().to_string_lossy().starts_with(&prefix) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::info!(file = %e.path().display(), "removed a half-made catalog a killed process left")
                }
                Err(err) => {
                    tracing::warn!(file = %e.path().display(), error = %err, "cannot remove a half-made catalog")
                }
            }
        }
    }
}

/// A failed read while opening: damage is named as such.
fn read_error(path: &Path, source: sqlx::Error) -> CatalogError {
    if is_damage(&source) {
        CatalogError::Damaged {
            path: path.to_path_buf(),
            report: source.to_string(),
        }
    } else {
        CatalogError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Runs SQLite's `quick_check` on the whole file or on its small tables,
/// through a connection of its own, before the pool opens and migrations
/// run (a migration must not write into a damaged file; and the pool's
/// connections must not have read the schema from before the migrations,
/// or sqlx reads rows of `SELECT *` with the old columns). Anything but
/// `ok` is [`CatalogError::Damaged`].
async fn check_integrity(path: &Path, integrity: Integrity) -> Result<(), CatalogError> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(30))
        // A full check of a large catalog takes seconds by design: not a
        // "slow statement" to warn the user about.
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| read_error(path, e))?;
    let result = run_checks(&mut conn, path, integrity).await;
    let _ = conn.close().await;
    result
}

async fn run_checks(
    conn: &mut sqlx::SqliteConnection,
    path: &Path,
    integrity: Integrity,
) -> Result<(), CatalogError> {
    let mut statements = Vec::new();
    match integrity {
        Integrity::Full => statements.push("PRAGMA quick_check(20)".to_string()),
        Integrity::Light => {
            let present: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| read_error(path, e))?;
            for t in SMALL_TABLES {
                if *t == "sqlite_schema" || present.iter().any(|p| p == t) {
                    statements.push(format!("PRAGMA quick_check(\"{t}\")"));
                }
            }
        }
    }
    for sql in statements {
        let report: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| read_error(path, e))?;
        if report.len() != 1 || report[0] != "ok" {
            return Err(CatalogError::Damaged {
                path: path.to_path_buf(),
                report: report.join("; "),
            });
        }
    }
    Ok(())
}

/// Opens the catalog in the PostgreSQL database `url` names (user,
/// password, TLS from the URL, the libpq environment — `PGPASSWORD`,
/// `PGSSLMODE`… — or `~/.pgpass`), creating its tables when `mode` allows
/// and the database holds none yet. A database whose `_sqlx_migrations`
/// are not Lifeboat's is refused untouched. Migrations take PostgreSQL's
/// advisory lock, so daemons starting together migrate once.
/// The advisory lock key that serialises opening a PostgreSQL catalog
/// ("LIFEBOAT" in ASCII).
const OPEN_LOCK_KEY: i64 = 0x4c49_4645_424f_4154;

async fn open_postgres(url: &Path, mode: OpenMode) -> Result<Catalog, CatalogError> {
    use std::str::FromStr;
    let shown = PathBuf::from(display_location(url));
    let open_error = |source: sqlx::Error| CatalogError::Open {
        path: shown.clone(),
        source,
    };
    let options = PgConnectOptions::from_str(&url.to_string_lossy()).map_err(open_error)?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(open_error)?;
    // Daemons of a fleet often start together on a new database: one
    // must not read the migrations table while another is filling it
    // (it would look foreign). A session lock serialises the check and
    // the migration; sqlx's own migration lock uses another key.
    let mut guard = pool.acquire().await.map_err(open_error)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(OPEN_LOCK_KEY)
        .execute(&mut *guard)
        .await
        .map_err(open_error)?;
    let checked = async {
        let present: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&pool)
                .await
                .map_err(open_error)?;
        if present.is_some() {
            let first: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = 1")
                    .fetch_optional(&pool)
                    .await
                    .map_err(open_error)?;
            let ours = MIGRATOR_PG.migrations.first().map(|m| m.checksum.as_ref());
            if first.as_deref() != ours {
                return Err(CatalogError::Foreign {
                    path: shown.clone(),
                    why: "its migrations are not Lifeboat's".to_string(),
                });
            }
        } else if mode == OpenMode::Existing {
            return Err(CatalogError::NoneInDatabase {
                path: shown.clone(),
            });
        }
        MIGRATOR_PG
            .run(&pool)
            .await
            .map_err(|source| CatalogError::Migrate {
                path: shown.clone(),
                source,
            })
    }
    .await;
    // Closing the connection would release it too; unlock so the pooled
    // connection is clean for whoever takes it next.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(OPEN_LOCK_KEY)
        .execute(&mut *guard)
        .await;
    drop(guard);
    if let Err(e) = checked {
        pool.close().await;
        return Err(e);
    }
    Ok(Catalog {
        pool: Pool::Postgres(pool),
        path: shown,
    })
}

/// The connections to the catalog, on one engine or the other.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// The embedded default: a file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database, shared by the daemons of a fleet.
    Postgres(PgPool),
}

/// Whether `--catalog` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(location: &Path) -> bool {
    let text = location.to_string_lossy();
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The catalog's location as it may be shown: a path as it is, a URL
/// without its password (which must never reach a log or a message).
pub fn display_location(location: &Path) -> String {
    let text = location.to_string_lossy();
    if !is_postgres_url(location) {
        return text.into_owned();
    }
    match url::Url::parse(&text) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "postgres://(unparsable URL)".to_string(),
    }
}

/// A handle on the catalog database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: Pool,
    /// The path, or the URL without its password.
    path: PathBuf,
}

impl Catalog {
    /// Opens the catalog at `path`, creating and migrating it if the file
    /// does not exist, with a full integrity check: what the commands that
    /// start a catalog use, and the tests.
    pub async fn open(path: &Path) -> Result<Catalog, CatalogError> {
        Catalog::open_with(path, OpenMode::Create, Integrity::Full).await
    }

    /// Opens the catalog at `path` only if it exists (migrating it if this
    /// build has newer migrations); a missing file is
    /// [`CatalogError::Missing`] and is not created.
    pub async fn open_existing(path: &Path, integrity: Integrity) -> Result<Catalog, CatalogError> {
        Catalog::open_with(path, OpenMode::Existing, integrity).await
    }

    /// Opens the catalog at `path`. Whatever the mode, an empty file, a
    /// file that is not SQLite and a SQLite database that is not a
    /// Lifeboat catalog are refused untouched, and a damaged one is
    /// refused naming what SQLite found.
    pub async fn open_with(
        path: &Path,
        mode: OpenMode,
        integrity: Integrity,
    ) -> Result<Catalog, CatalogError> {
        if is_postgres_url(path) {
            return open_postgres(path, mode).await;
        }
        let found = inspect(path)?;
        if mode == OpenMode::Create {
            // The commands that start a catalog are the ones whose killed
            // runs can leave half-made ones.
            remove_stale_new_files(path);
        }
        match (&found, mode) {
            (Found::Missing, OpenMode::Existing) => {
                return Err(CatalogError::Missing {
                    path: path.to_path_buf(),
                })
            }
            (Found::Missing, OpenMode::Create) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| CatalogError::Open {
                        path: path.to_path_buf(),
                        source: sqlx::Error::Io(e),
                    })?;
                }
                create_new(path).await?;
            }
            (Found::Unmarked, _) => {
                is_unmarked_catalog(path).await?;
                check_integrity(path, integrity).await?;
            }
            (Found::Catalog, _) => check_integrity(path, integrity).await?,
        }
        // `filename`, not a URL: `?` and `%` are ordinary characters in a
        // path.
        let options = SqliteConnectOptions::new()
            .filename(path)
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
            // A connection to a local file cannot go stale; the ping sqlx
            // sends before lending one out is a round trip to SQLite's
            // thread per query (`status` makes 400 of them).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| read_error(path, e))?;
        if let Err(source) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(CatalogError::Migrate {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(Catalog {
            pool: Pool::Sqlite(pool),
            path: path.to_path_buf(),
        })
    }

    /// Whether the catalog is the embedded SQLite file (for the few
    /// statements the engines must word differently).
    pub fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(_))
    }

    /// The database file as given to [`Catalog::open`], or the URL
    /// without its password: for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one statement that returns nothing: the daemon's readiness
    /// probe (`SELECT 1`), and the tests that put a catalog in a state
    /// the program never would. Returns the rows it changed.
    pub async fn execute(&self, sql: &str) -> Result<u64, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query(sql)
            .execute(db)
            .await?
            .rows_affected()))
    }

    /// Runs one query that returns one integer (or none): for tests that
    /// look at what the catalog holds.
    pub async fn query_i64(&self, sql: &str) -> Result<Option<i64>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(sql)
            .fetch_optional(db)
            .await?))
    }

    /// Runs one query and returns its first column as text, row by row:
    /// for tests that look at what the catalog holds.
    pub async fn query_text(&self, sql: &str) -> Result<Vec<String>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(sql)
            .fetch_all(db)
            .await?))
    }

    /// Closes the pool (on SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        on_pool!(self, |db| db.close().await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_catalog_is_marked_and_opens_again_as_existing() {
        let dir = tempfile::tempdir().unwrap();
        // `?` and `%` are part of the name, not a URL's query or escape.
        let path = dir.path().join("sub/cat?mode=ro%20.db");
        let cat = Catalog::open(&path).await.unwrap();
        cat.close().await;
        let header = std::fs::read(&path).unwrap();
        assert_eq!(&header[68..72], APPLICATION_ID.to_be_bytes());
        let cat = Catalog::open_existing(&path, Integrity::Full)
            .await
            .unwrap();
        cat.close().await;
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".db"))
            .collect();
        assert_eq!(names, ["cat?mode=ro%20.db"]);
    }

    #[tokio::test]
    async fn a_missing_empty_or_foreign_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let e = Catalog::open_existing(&missing, Integrity::Light)
            .await
            .unwrap_err();
        assert!(
            matches!(e, CatalogError::Missing { .. }) && e.is_bad_path(),
            "{e}"
        );
        assert!(!missing.exists());
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let e = Catalog::open(&empty).await.unwrap_err();
        assert!(matches!(e, CatalogError::Empty { .. }), "{e}");
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
        // A SQLite database of another program that uses sqlx migrations.
        let foreign = dir.path().join("foreign.db");
        {
            use sqlx::{ConnectOptions, Connection, Executor};
            let mut conn = SqliteConnectOptions::new()
                .filename(&foreign)
                .create_if_missing(true)
                .connect()
                .await
                .unwrap();
            conn.execute(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, checksum BLOB);
                 INSERT INTO _sqlx_migrations VALUES (1, x'00');",
            )
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        let before = std::fs::read(&foreign).unwrap();
        let e = Catalog::open(&foreign).await.unwrap_err();
        assert!(matches!(e, CatalogError::Foreign { .. }), "{e}");
        assert!(e.to_string().contains("not Lifeboat's"), "{e}");
        assert_eq!(std::fs::read(&foreign).unwrap(), before);
    }
}
