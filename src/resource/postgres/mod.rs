//! `postgres` resources, dumped one of two ways (the plan's `dump_format`):
//!
//! - `custom` (the default): a `pg_dump --format=custom --compress=1`
//!   stream, stored as it comes with its SHA-256: no local disk, one core.
//!   A drill downloads it into its scratch folder (verifying the SHA-256 as
//!   it writes).
//! - `directory`: `pg_dump --format=directory --jobs=2 --compress=0` into a
//!   folder of the work dir, each file packed into the vault once pg_dump
//!   closes it (tar + zstd, a frame per file, each file's SHA-256 and frame
//!   in the manifest: `packed`). A drill downloads and checks the
//!   artifact, extracts the files on several threads, checking each, and
//!   `pg_restore --jobs N` reads the folder: its workers have nothing to
//!   inflate. `zstd -d | tar -x` gives the folder back by hand.
//!
//! Either way nothing unverified reaches the server: the drill creates a
//! scratch database on the drill server while the dump comes down, runs
//! `pg_restore --jobs N` into it once the dump is checked, checks it, and
//! drops it.
//!
//! Passwords never appear in plans (validation refuses them): the tools and
//! the checks take them from PGPASSWORD, PGPASSFILE or ~/.pgpass, as libpq
//! does. Both `pg_dump`/`pg_restore` and sqlx read the same libpq variables.
//!
//! `data_time`: the dump runs on a snapshot that Lifeboat exports from its
//! own REPEATABLE READ transaction (`pg_export_snapshot()`, then
//! `pg_dump --snapshot`), and `data_time` is the local clock read just
//! before the statement that takes that snapshot is sent. So every commit
//! before `data_time` is in the dump: `data_time` is a lower bound of the
//! snapshot instant, off by at most one round trip, on the same clock as the
//! drill's start (the server's own `statement_timestamp()` of that statement
//! goes into the manifest too). If the server refuses to export a snapshot,
//! pg_dump takes its own and `data_time` is the instant before it is spawned
//! (still a lower bound, looser by pg_dump's connection time).

mod checks;
mod packed;
pub mod promote;
mod target;
mod tools;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row, ValueRef};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

pub use checks::{endpoint_sql_check, sql_check, tables_check};
use target::{connect_error, Target};
use tools::{collect_stderr, one_line, tool, tool_missing, tool_version};

use super::manifest::{ArtifactInfo, DatabaseInfo, DumpFile, Manifest, PostgresInfo};
use super::{ArtifactKeys, Kind, ResourceError, Restored, RestoredInto, Scratch, Snapshot};
use crate::pipe::ChildOutput;
use crate::plan::DumpFormat;
use crate::vault::{HashingReader, HashingWriter, Vault};

/// A custom-format dump's name in a drill's scratch folder.
const DUMP_FILE: &str = "dump.pgdump";
/// A directory-format dump's packed artifact in a drill's scratch folder,
/// until it is unpacked.
const PACKED_FILE: &str = "dump.tar.zst";
/// A directory-format dump's folder in a drill's scratch folder.
const DUMP_FOLDER: &str = "dump";
/// pg_restore runs at most this many jobs, whatever the core count.
const MAX_JOBS: usize = 8;
/// pg_dump's workers for a directory-format dump: each holds a connection
/// (and a core of the server) besides the leader's. Two halve the dump of
/// a database with two large tables without leaning harder on the source.
const DUMP_JOBS: usize = 2;

/// `(server_version_num, server_version)`, e.g. `(150018, "15.18 (Debian …)")`.
async fn server_version(conn: &mut PgConnection) -> Result<(i64, String), sqlx::Error> {
    let num: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut *conn)
        .await?;
    let text: String = sqlx::query_scalar("SELECT current_setting('server_version')")
        .fetch_one(&mut *conn)
        .await?;
    Ok((num.trim().parse().unwrap_or(0), text))
}

/// Dumps the database at `url` with `pg_dump --format=custom` straight
/// into `keys.artifact` (hashed on the way); returns its manifest.
/// Refuses a `pg_dump` older than the server's major version. `data_time`
/// is as the module documentation explains. A `pg_dump` that fails
/// half-way fails the upload, so no truncated dump is stored as whole.
pub async fn snapshot(
    url: &str,
    format: DumpFormat,
    vault: &Vault,
    keys: &ArtifactKeys,
    work_dir: &Path,
    label: &str,
) -> Result<(Snapshot, Manifest), ResourceError> {
    let source = Target::parse("url", url)?;
    let (dump_major, dump_version) = tool_version("pg_dump").await?;
    let mut conn = source.connect(None).await?;
    let (server_num, server_text) = server_version(&mut conn).await.map_err(|e| {
        ResourceError::Source(format!(
            "cannot read the server version of {}: {e}",
            source.describe()
        ))
    })?;
    let server_major = (server_num / 10_000) as u32;
    if server_num >= 100_000 && dump_major < server_major {
        return Err(ResourceError::Source(format!(
            "pg_dump {dump_version} is older than the server ({server_text}) of {}: \
             install postgresql-client-{server_major} or newer",
            source.describe()
        )));
    }

    // Hold a snapshot open in our own transaction and make pg_dump use it:
    // then we know when the dump's snapshot was taken (see the module doc).
    let exported = export_snapshot(&mut conn).await;
    let (data_time, snapshot_id, server_time) = match exported {
        Ok((t, id, server_time)) => (t, Some(id), Some(server_time)),
        Err(e) => {
            warn!(resource = label, error = %e, "cannot export a snapshot; pg_dump takes its own");
            let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
            (crate::time::now_ms(), None, None)
        }
    };

    let dumped = match format {
        DumpFormat::Custom => {
            dump_custom(&source, snapshot_id.as_deref(), vault, keys, label).await
        }
        DumpFormat::Directory => {
            let no_sync = dump_major >= 10;
            dump_directory(
                &source,
                snapshot_id.as_deref(),
                no_sync,
                vault,
                keys,
                work_dir,
                label,
            )
            .await
        }
    };
    // pg_dump has imported the snapshot long ago; now it may go.
    let _ = conn.execute(sqlx::raw_sql("COMMIT")).await;
    let _ = conn.close().await;
    let (artifact, files) = dumped?;
    let content_bytes = match format {
        DumpFormat::Custom => artifact.size,
        DumpFormat::Directory => files.iter().map(|f| f.size).sum(),
    };
    let file_count = files.len().max(1) as u64;
    let manifest = Manifest {
        // A directory dump's manifest lists its files: a layout older
        // builds cannot read, and say so instead of calling it damaged.
        format: match format {
            DumpFormat::Custom => Manifest::FORMAT,
            DumpFormat::Directory => Manifest::FORMAT_DUMP_FILES,
        },
        point: None,
        kind: Kind::Postgres,
        data_time: crate::time::rfc3339(data_time),
        artifact: artifact.clone(),
        file_count,
        content_bytes,
        root: None,
        files: Vec::new(),
        database: (format == DumpFormat::Custom).then(|| DatabaseInfo {
            size: artifact.size,
            sha256: artifact.sha256.clone(),
        }),
        postgres: Some(PostgresInfo {
            server_version: server_text,
            server_version_num: server_num,
            pg_dump_version: dump_version,
            format: format.name().into(),
            snapshot: snapshot_id,
            server_snapshot_time: server_time,
            // A directory dump's files, each with its SHA-256 and frame
            // (none for the custom format: the dump is the artifact).
            files,
        }),
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
            flags: Vec::new(),
            manifest_sha256: None,
        },
        manifest,
    ))
}

/// `pg_dump --format=custom` streamed into `keys.artifact`, hashed on the
/// way. A `pg_dump` that fails half-way fails the upload, so no truncated
/// dump is stored as whole.
async fn dump_custom(
    source: &Target,
    snapshot_id: Option<&str>,
    vault: &Vault,
    keys: &ArtifactKeys,
    label: &str,
) -> Result<(ArtifactInfo, Vec<DumpFile>), ResourceError> {
    let mut cmd = tool("pg_dump");
    // Level 1, not pg_dump's default 6: on bench/postgres.sh's database the
    // dump is 2% larger and takes less than half the time (pg_dump
    // compresses on one core, and that is most of its work); pg_restore is
    // as fast. Every pg_dump version takes this spelling.
    cmd.arg("--format=custom")
        .arg("--compress=1")
        .arg("--no-password");
    if let Some(id) = snapshot_id {
        cmd.arg(format!("--snapshot={id}"));
    }
    cmd.arg(format!("--dbname={}", source.url))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| tool_missing("pg_dump", &e))?;
    info!(resource = label, server = %source.describe(), "pg_dump started");
    let stderr = collect_stderr(child.stderr.take());
    let output = ChildOutput::new(child, "pg_dump")
        .map_err(|e| ResourceError::Other(format!("pg_dump: {e}")))?;
    let (reader, digest) = HashingReader::new(output);
    let put = vault.put(&keys.artifact, reader).await;
    let stderr = stderr.await.unwrap_or_default();
    let size = match put {
        Ok(size) => size,
        Err(e) => {
            let why = one_line(&stderr);
            return Err(if why.is_empty() {
                e.into()
            } else {
                ResourceError::Source(format!(
                    "pg_dump of {} failed: {why} ({e})",
                    source.describe()
                ))
            });
        }
    };
    let artifact = ArtifactInfo {
        sha256: digest.hex(),
        size,
    };
    Ok((artifact, Vec::new()))
}

/// `pg_dump --format=directory --jobs=N --compress=0` into a folder of the
/// work dir (removed after), packed into `keys.artifact` as pg_dump
/// writes it (`packed`: tar + zstd, a frame per file as each is closed,
/// each file's SHA-256 and frame in the manifest). pg_dump compresses nothing: zstd is faster than its
/// gzip, and a restore feeds pg_restore's workers plain bytes.
async fn dump_directory(
    source: &Target,
    snapshot_id: Option<&str>,
    no_sync: bool,
    vault: &Vault,
    keys: &ArtifactKeys,
    work_dir: &Path,
    label: &str,
) -> Result<(ArtifactInfo, Vec<DumpFile>), ResourceError> {
    let tmp = super::work_folder::create(work_dir, super::work_folder::POSTGRES)?;
    let dir = tmp.path().join("dump");
    // pg_dump takes an existing empty folder; watched before it starts, so
    // each file is packed (and removed) as soon as pg_dump closes it.
    std::fs::create_dir(&dir).map_err(ResourceError::io("create", &dir))?;
    let watch = packed::watch(&dir).map_err(ResourceError::io("watch", &dir))?;
    // Workers share the exported snapshot; without one (a server that
    // refused to export it), one job: its own snapshot is then the dump's.
    let jobs = if snapshot_id.is_some() { DUMP_JOBS } else { 1 };
    let mut cmd = tool("pg_dump");
    cmd.arg("--format=directory")
        .arg(format!("--jobs={jobs}"))
        .arg("--compress=0")
        .arg("--no-password");
    // pg_dump 10+ fsyncs its files at the end, opening each for writing
    // again: the vault makes the packed dump durable, and a file is packed
    // (and removed) when first closed. Older ones do not sync.
    if no_sync {
        cmd.arg("--no-sync");
    }
    if let Some(id) = snapshot_id {
        cmd.arg(format!("--snapshot={id}"));
    }
    cmd.arg("--file")
        .arg(&dir)
        .arg(format!("--dbname={}", source.url))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| tool_missing("pg_dump", &e))?;
    info!(resource = label, server = %source.describe(), jobs, "pg_dump started");
    let stderr = collect_stderr(child.stderr.take());
    let progress = crate::progress::waiting(format!("pg_dump --jobs={jobs} {label}"));

    let done = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let (writer, reader) = crate::pipe::pipe();
    let packing = {
        let (done, failed) = (done.clone(), failed.clone());
        tokio::task::spawn_blocking(move || {
            let hashing = HashingWriter::new(writer);
            let mut out = std::io::BufWriter::with_capacity(1 << 20, hashing);
            let files = packed::pack_as_written(&dir, watch, &mut out, &done, &failed)?;
            let hashing = out.into_inner().map_err(|e| e.into_error())?;
            let (writer, sha256, size) = hashing.finish();
            writer.finish()?;
            Ok::<_, std::io::Error>((files, ArtifactInfo { sha256, size }))
        })
    };
    let dumping = async {
        let status = child.wait().await;
        let ok = matches!(&status, Ok(s) if s.success());
        // The packer's last pass starts only once pg_dump is gone.
        if ok {
            done.store(true, Ordering::SeqCst);
        } else {
            failed.store(true, Ordering::SeqCst);
        }
        status
    };
    let (status, packed, put) = tokio::join!(dumping, packing, vault.put(&keys.artifact, reader));
    progress.finish_and_clear();
    let status = status.map_err(|e| ResourceError::Other(format!("waiting for pg_dump: {e}")))?;
    let stderr = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(ResourceError::Source(format!(
            "pg_dump of {} failed ({status}): {}",
            source.describe(),
            one_line(&stderr)
        )));
    }
    let packed =
        packed.map_err(|e| ResourceError::Other(format!("packing the dump stopped: {e}")))?;
    match (packed, put) {
        // A packer that only heard the upload stop: the vault says why.
        (Err(e), put) => Err(match crate::pipe::cause(e, put.err()) {
            Ok(e) => ResourceError::Other(format!("packing the dump of {label}: {e}")),
            Err(vault) => vault.into(),
        }),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok((files, artifact)), Ok(size)) => {
            debug_assert_eq!(size, artifact.size);
            Ok((artifact, files))
        }
    }
}

/// Starts a REPEATABLE READ transaction, takes its snapshot and exports it:
/// `(local time just before the snapshot, snapshot id, server time of it)`.
async fn export_snapshot(
    conn: &mut PgConnection,
) -> Result<(crate::time::Millis, String, String), sqlx::Error> {
    conn.execute(sqlx::raw_sql(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    ))
    .await?;
    // The snapshot is taken by the first statement of the transaction, not
    // by BEGIN: read the clock just before sending it.
    let before = crate::time::now_ms();
    let row = conn
        .fetch_one(sqlx::raw_sql(
            "SELECT pg_export_snapshot(), statement_timestamp()",
        ))
        .await?;
    let id = text_column(&row, 0)?.unwrap_or_default();
    let server_time = text_column(&row, 1)?.unwrap_or_default();
    Ok((before, id, server_time))
}

/// A column of a simple-query row (text format) as text.
fn text_column(row: &sqlx::postgres::PgRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    let value = row.try_get_raw(i)?;
    if value.is_null() {
        return Ok(None);
    }
    value
        .as_str()
        .map(|s| Some(s.to_string()))
        .map_err(sqlx::Error::Decode)
}

/// The drill server: `drill_url`, else the resource's own server.
fn drill_target(url: &str, drill_url: Option<&str>) -> Result<Target, ResourceError> {
    match drill_url {
        Some(d) => Target::parse("drill_url", d),
        None => Target::parse("url", url),
    }
}

/// The URL of database `db` on the drill server (`drill_url`, else the
/// resource's `url`): what a command check is told. Never a password.
pub fn database_url(url: &str, drill_url: Option<&str>, db: &str) -> Result<String, ResourceError> {
    drill_target(url, drill_url)?.url_for(db)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Downloads the dump into the scratch folder while it (re)creates the
/// scratch database on the drill server (`drill_url`, else the resource's
/// own), checks the dump against `manifest` (the point's, already bound
/// to the catalog's record), then runs `pg_restore --jobs N --no-owner
/// --no-privileges --exit-on-error` into the database. A scratch database
/// left by a failed restore is for [`discard`] to drop.
pub async fn restore(
    url: &str,
    drill_url: Option<&str>,
    vault: &Vault,
    keys: &ArtifactKeys,
    manifest: &Manifest,
    scratch: &Scratch,
    label: &str,
) -> Result<Restored, ResourceError> {
    let target = drill_target(url, drill_url)?;
    let location = vault.location(&keys.artifact);
    if manifest.kind != Kind::Postgres {
        return Err(ResourceError::Corrupt {
            location,
            detail: format!("manifest is of kind `{}`, not postgres", manifest.kind),
        });
    }
    let (restore_major, _) = tool_version("pg_restore").await?;

    // The dump goes to the scratch folder first: pg_restore needs a
    // seekable file (or folder) to run several jobs, and nothing
    // unverified may reach the server.
    let dest = &scratch.dir;
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(ResourceError::io("create", dest))?;
    let db = scratch.database_name();
    let dump_files = match manifest.postgres.as_ref().map(|p| p.format.as_str()) {
        Some("directory") => manifest.postgres.as_ref().map(|p| p.files.clone()),
        // Manifests from before the format was recorded are custom dumps.
        Some("custom") | None => None,
        Some(other) => {
            return Err(ResourceError::Other(format!(
                "the point's dump is in format `{other}`, which this Lifeboat cannot restore: upgrade it"
            )))
        }
    };
    // The scratch database is made while the dump downloads: nothing is
    // restored into it before the dump is checked, and a database left by
    // a failed download is for [`discard`] to drop, as after any failure.
    let file = dest.join(if dump_files.is_some() {
        PACKED_FILE
    } else {
        DUMP_FILE
    });
    let (downloaded, created) = tokio::join!(
        download_checked(vault, keys, manifest, &file, label),
        create_scratch_database(&target, &db),
    );
    let size = downloaded?;
    created?;
    info!(resource = label, database = %db, server = %target.describe(), "scratch database created");
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_JOBS);
    // A directory dump: its files extracted, each checked, on as many
    // threads as pg_restore will have jobs.
    let dump = match dump_files {
        Some(files) => {
            let (artifact, dir) = (file.clone(), dest.join(DUMP_FOLDER));
            let into = dir.clone();
            let progress = crate::progress::waiting(format!("unpack {label}"));
            let unpacked =
                tokio::task::spawn_blocking(move || packed::unpack(&artifact, &files, &into, jobs))
                    .await;
            progress.finish_and_clear();
            let unpacked = unpacked
                .map_err(|e| ResourceError::Other(format!("unpacking the dump stopped: {e}")))?;
            match unpacked {
                Ok(()) => {}
                Err(packed::UnpackError::Damaged(detail)) => {
                    return Err(ResourceError::Corrupt {
                        location,
                        detail: format!("the dump's file {detail}"),
                    })
                }
                Err(packed::UnpackError::Io(detail)) => {
                    return Err(ResourceError::Other(format!(
                        "cannot unpack the dump into {}: {detail}",
                        dir.display()
                    )))
                }
            }
            // The artifact is not needed any more: the folder is the dump.
            let _ = tokio::fs::remove_file(&file).await;
            dir
        }
        None => file,
    };

    let mut child = tool("pg_restore")
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--no-password",
        ])
        .arg(format!("--jobs={jobs}"))
        .arg(format!("--dbname={}", target.url_for(&db)?))
        .arg(&dump)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool_missing("pg_restore", &e))?;
    let stderr = collect_stderr(child.stderr.take());
    let progress = crate::progress::waiting(format!("pg_restore --jobs={jobs} {label} into {db}"));
    let status = child.wait().await;
    progress.finish_and_clear();
    let status =
        status.map_err(|e| ResourceError::Other(format!("waiting for pg_restore: {e}")))?;
    let stderr = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(ResourceError::Source(format!(
            "pg_restore {restore_major} into scratch database {db} on {} failed ({status}): {}",
            target.describe(),
            one_line(&stderr)
        )));
    }
    Ok(Restored {
        verification: format!(
            "dump of {} matches the manifest's sha256{}; restored into database {db} on {} by pg_restore --jobs={jobs}",
            crate::units::size(size),
            if dump.is_dir() { ", and each of its files its own" } else { "" },
            target.describe()
        ),
        into: RestoredInto::Database {
            name: db,
            dump,
            url: url.to_string(),
            drill_url: drill_url.map(String::from),
        },
    })
}

/// (Re)creates the scratch database `db` on `target`, empty. A database
/// of this name can only be left over from a drill of a catalog since
/// recreated: it is ours to replace.
async fn create_scratch_database(target: &Target, db: &str) -> Result<(), ResourceError> {
    let mut admin = target.connect(None).await?;
    let (server_num, _) = server_version(&mut admin).await.map_err(|e| {
        ResourceError::Source(format!(
            "cannot read the server version of {}: {e}",
            target.describe()
        ))
    })?;
    drop_database(&mut admin, db, server_num).await?;
    let create = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(db));
    let created = admin.execute(sqlx::raw_sql(&create)).await.map_err(|e| {
        ResourceError::Source(format!(
            "cannot create the scratch database {db} on {}: {}",
            target.describe(),
            connect_error(&e)
        ))
    });
    let _ = admin.close().await;
    created.map(|_| ())
}

/// Downloads the artifact (a custom-format dump, or a packed directory)
/// into `file` and checks its size and SHA-256 against the manifest:
/// its size.
async fn download_checked(
    vault: &Vault,
    keys: &ArtifactKeys,
    manifest: &Manifest,
    file: &Path,
    label: &str,
) -> Result<u64, ResourceError> {
    let location = vault.location(&keys.artifact);
    let progress =
        crate::progress::bytes(format!("download {label}"), Some(manifest.artifact.size));
    let downloaded = download(vault, keys, file, &location, &progress).await;
    progress.finish_and_clear();
    let (size, sha) = downloaded?;
    if sha != manifest.artifact.sha256 || size != manifest.artifact.size {
        return Err(ResourceError::Corrupt {
            location,
            detail: format!(
                "dump does not match the manifest: expected {} bytes sha256 {}, got {size} bytes sha256 {sha}",
                manifest.artifact.size, manifest.artifact.sha256
            ),
        });
    }
    Ok(size)
}

/// Copies the artifact into `path`, hashing it on the way: `(size, sha256)`.
async fn download(
    vault: &Vault,
    keys: &ArtifactKeys,
    path: &Path,
    location: &str,
    progress: &indicatif::ProgressBar,
) -> Result<(u64, String), ResourceError> {
    let reader = progress.wrap_async_read(vault.get(&keys.artifact).await?);
    let (reader, digest) = HashingReader::new(reader);
    let mut reader = tokio::io::BufReader::with_capacity(1 << 20, reader);
    let file = tokio::fs::File::create(path)
        .await
        .map_err(ResourceError::io("create", path))?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    tokio::io::copy_buf(&mut reader, &mut file)
        .await
        .map_err(|e| ResourceError::Corrupt {
            location: location.to_string(),
            detail: format!("cannot download the dump to {}: {e}", path.display()),
        })?;
    file.flush()
        .await
        .map_err(ResourceError::io("write", path))?;
    Ok((digest.len(), digest.hex()))
}

/// Drops a scratch database if it exists (with FORCE from PostgreSQL 13, so
/// a connection left open cannot keep it alive).
async fn drop_database(
    conn: &mut PgConnection,
    db: &str,
    server_num: i64,
) -> Result<bool, ResourceError> {
    // Never drop anything but a drill's scratch database or a restore's
    // staging one.
    if !(db.starts_with(super::SCRATCH_DATABASE_PREFIX)
        || db.starts_with(super::RESTORE_DATABASE_PREFIX))
    {
        return Err(ResourceError::Other(format!(
            "refusing to drop `{db}`: not a drill's scratch database"
        )));
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(db)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| ResourceError::Source(format!("cannot list databases: {e}")))?;
    if !exists {
        return Ok(false);
    }
    let force = if server_num >= 130_000 {
        " WITH (FORCE)"
    } else {
        ""
    };
    let drop = format!("DROP DATABASE IF EXISTS {}{force}", quote_ident(db));
    conn.execute(sqlx::raw_sql(&drop)).await.map_err(|e| {
        ResourceError::Source(format!(
            "cannot drop scratch database {db}: {}",
            connect_error(&e)
        ))
    })?;
    Ok(true)
}

/// Drops a drill's scratch database, if it exists. Returns what it dropped.
pub async fn discard(
    url: &str,
    drill_url: Option<&str>,
    scratch: &Scratch,
) -> Result<Option<String>, ResourceError> {
    let target = drill_target(url, drill_url)?;
    let db = scratch.database_name();
    let mut admin = target.connect(None).await?;
    let (server_num, _) = server_version(&mut admin)
        .await
        .map_err(|e| ResourceError::Source(format!("cannot read the server version: {e}")))?;
    let dropped = drop_database(&mut admin, &db, server_num).await;
    let _ = admin.close().await;
    Ok(dropped?.then(|| format!("database {db} on {}", target.describe())))
}
