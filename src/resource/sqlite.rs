//! `sqlite` resources: a consistent online copy (`VACUUM INTO`, never a byte
//! copy of a live file), compressed with zstd, with the copy's SHA-256.
//! A drill decompresses it to a scratch file (temporary name, then rename),
//! runs `PRAGMA integrity_check`, then the plan's SQL checks.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use tokio_util::io::SyncIoBridge;

use super::manifest::{ArtifactInfo, DatabaseInfo, Manifest};
use super::{ArtifactKeys, Kind, ResourceError, Restored, RestoredInto, Snapshot, Verdict};
use crate::pipe::{pipe, PipeWriter};
use crate::plan::SqlCheck;
use crate::vault::{HashingReader, HashingWriter, Vault};

const ZSTD_LEVEL: i32 = 3;

async fn open_read_only(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .disable_statement_logging()
        .connect()
        .await
}

/// Copies the database at `db` with `VACUUM INTO` into a temporary folder
/// under `work_dir` (removed when done), then streams it through zstd into
/// `keys.artifact`; returns the manifest (the copy's size and SHA-256)
/// for the caller to store. `data_time` is read just before the `VACUUM INTO`, whose one
/// read transaction makes the copy consistent. Needs free space in
/// `work_dir` for a full uncompressed copy.
pub async fn snapshot(
    db: &Path,
    vault: &Vault,
    keys: &ArtifactKeys,
    work_dir: &Path,
    label: &str,
) -> Result<(Snapshot, Manifest), ResourceError> {
    if !db.is_file() {
        return Err(ResourceError::Source(format!(
            "SQLite database {} does not exist",
            db.display()
        )));
    }
    let tmp = super::work_folder::create(work_dir, super::work_folder::SQLITE)?;
    let copy = tmp.path().join("snapshot.db");
    let mut conn = open_read_only(db).await.map_err(|e| {
        ResourceError::Source(format!("cannot open SQLite database {}: {e}", db.display()))
    })?;
    // VACUUM INTO reads the database in one read transaction: the copy is
    // the database as of this instant.
    let data_time = crate::time::now_ms();
    sqlx::query("VACUUM INTO ?")
        .bind(copy.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .map_err(|e| {
            ResourceError::Source(format!(
                "online copy of SQLite database {} failed: {e}",
                db.display()
            ))
        })?;
    let _ = conn.close().await;

    let (writer, reader) = pipe();
    let progress = crate::progress::bytes(
        format!("backup {label}"),
        fs::metadata(&copy).ok().map(|m| m.len()),
    );
    let bar = progress.clone();
    let copy_path = copy.clone();
    let producer = tokio::task::spawn_blocking(move || compress(&copy_path, writer, &bar));
    let (produced, put) = tokio::join!(producer, vault.put(&keys.artifact, reader));
    progress.finish_and_clear();
    let produced =
        produced.map_err(|e| ResourceError::Other(format!("compressing stopped: {e}")))?;
    let (database, artifact) = match (produced, put) {
        // A producer that only heard the upload stop: the vault's error
        // says why (a full vault, a refused write), not the source.
        (Err(e), put) => {
            return Err(match crate::pipe::cause(e, put.err()) {
                Ok(e) => e,
                Err(vault) => vault.into(),
            })
        }
        (Ok(_), Err(e)) => return Err(e.into()),
        (Ok(p), Ok(_)) => p,
    };
    let manifest = Manifest {
        format: Manifest::FORMAT,
        point: None,
        kind: Kind::Sqlite,
        data_time: crate::time::rfc3339(data_time),
        artifact: artifact.clone(),
        file_count: 1,
        content_bytes: database.size,
        root: None,
        files: Vec::new(),
        database: Some(database.clone()),
        postgres: None,
        bucket: None,
        objects: Vec::new(),
    };
    Ok((
        Snapshot {
            data_time,
            size_bytes: artifact.size,
            sha256: artifact.sha256,
            file_count: 1,
            content_bytes: database.size,
            flags: Vec::new(),
            manifest_sha256: None,
        },
        manifest,
    ))
}

fn compress(
    path: &Path,
    writer: PipeWriter,
    progress: &indicatif::ProgressBar,
) -> Result<(DatabaseInfo, ArtifactInfo), ResourceError> {
    let hashing = HashingWriter::new(writer);
    let result = (|| -> Result<(DatabaseInfo, HashingWriter<PipeWriter>), ResourceError> {
        let mut file = fs::File::open(path).map_err(ResourceError::io("open", path))?;
        let io_err = |e: io::Error| ResourceError::Other(format!("compressing database copy: {e}"));
        let mut encoder = zstd::stream::write::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(ResourceError::io("read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            encoder.write_all(&buf[..n]).map_err(io_err)?;
            size += n as u64;
            progress.inc(n as u64);
        }
        let hashing = encoder.finish().map_err(io_err)?;
        Ok((
            DatabaseInfo {
                size,
                sha256: hex::encode(hasher.finalize()),
            },
            hashing,
        ))
    })();
    let (database, hashing) = result?;
    let (writer, sha256, size) = hashing.finish();
    writer
        .finish()
        .map_err(|e| ResourceError::Other(format!("sending database copy to the vault: {e}")))?;
    Ok((database, ArtifactInfo { sha256, size }))
}

/// Decompresses the point at `keys` into `dest/restored.db` (written as
/// `restored.db.partial`, renamed only once the artifact's and the copy's
/// SHA-256 and size match `manifest`, the point's, already bound to the
/// catalog's record; removed otherwise).
pub async fn restore(
    vault: &Vault,
    keys: &ArtifactKeys,
    manifest: &Manifest,
    dest: &Path,
    label: &str,
) -> Result<Restored, ResourceError> {
    let location = vault.location(&keys.artifact);
    let Some(database) = manifest.database.clone() else {
        return Err(ResourceError::Corrupt {
            location,
            detail: "manifest describes no database".into(),
        });
    };
    fs::create_dir_all(dest).map_err(ResourceError::io("create", dest))?;
    let final_path = dest.join("restored.db");
    let partial = dest.join("restored.db.partial");
    let reader = vault.get(&keys.artifact).await?;
    let (reader, digest) = HashingReader::new(reader);
    let progress = crate::progress::bytes(format!("restore {label}"), Some(database.size));
    let bar = progress.clone();
    let partial_owned = partial.clone();
    let loc = location.clone();
    let written = tokio::task::spawn_blocking(move || -> Result<(u64, String), ResourceError> {
        let sync = SyncIoBridge::new(reader);
        let mut decoder =
            zstd::stream::read::Decoder::new(sync).map_err(|e| ResourceError::Corrupt {
                location: loc.clone(),
                detail: format!("cannot start decompression: {e}"),
            })?;
        let mut out = fs::File::create(&partial_owned)
            .map_err(ResourceError::io("create", &partial_owned))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = decoder.read(&mut buf).map_err(|e| ResourceError::Corrupt {
                location: loc.clone(),
                detail: format!("cannot decompress: {e}"),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(ResourceError::io("write", &partial_owned))?;
            size += n as u64;
            bar.inc(n as u64);
        }
        // Drain any trailing bytes so the artifact checksum covers them.
        let mut rest = decoder.finish();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| ResourceError::Corrupt {
            location: loc.clone(),
            detail: format!("cannot read the end of the artifact: {e}"),
        })?;
        out.sync_all()
            .map_err(ResourceError::io("fsync", &partial_owned))?;
        Ok((size, hex::encode(hasher.finalize())))
    })
    .await
    .map_err(|e| ResourceError::Other(format!("restoring {location} stopped: {e}")))?;
    progress.finish_and_clear();
    let cleanup_partial = |p: &PathBuf| {
        let _ = fs::remove_file(p);
    };
    let (size, sha) = match written {
        Ok(w) => w,
        Err(e) => {
            cleanup_partial(&partial);
            return Err(e);
        }
    };
    let artifact_sha = digest.hex();
    if artifact_sha != manifest.artifact.sha256 || size != database.size || sha != database.sha256 {
        cleanup_partial(&partial);
        return Err(ResourceError::Corrupt {
            location,
            detail: format!(
                "database copy does not match the manifest: expected {} bytes sha256 {}, got {} bytes sha256 {} (artifact sha256 {}, expected {})",
                database.size, database.sha256, size, sha, artifact_sha, manifest.artifact.sha256
            ),
        });
    }
    fs::rename(&partial, &final_path).map_err(ResourceError::io("rename", &partial))?;
    Ok(Restored {
        verification: format!(
            "database copy of {} matches the manifest's sha256; artifact sha256 verified",
            crate::units::size(size)
        ),
        into: RestoredInto::File(final_path),
    })
}

/// `PRAGMA integrity_check` on a restored database.
pub async fn integrity_check(db: &Path) -> Verdict {
    let mut conn = open_read_only(db)
        .await
        .map_err(|e| format!("cannot open restored database: {e}"))?;
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| format!("integrity_check failed to run: {e}"))?;
    let _ = conn.close().await;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok("PRAGMA integrity_check: ok".into())
    } else {
        Err(format!(
            "PRAGMA integrity_check reported {} problem(s): {}",
            rows.len(),
            rows.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        )
        .into())
    }
}

/// Runs a plan's SQL check on a restored database file.
pub async fn sql_check(db: &Path, check: &SqlCheck) -> Verdict {
    let mut conn = open_read_only(db)
        .await
        .map_err(|e| format!("cannot open restored database: {e}"))?;
    let row = sqlx::query(&check.sql)
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| format!("query failed: {e}"));
    let _ = conn.close().await;
    let Some(row) = row? else {
        return Err("query returned no row".into());
    };
    judge_first_column(&row, check.expect.as_deref())
}

/// The first column as text (NULL as `None`), for [`super::sql::judge`].
fn judge_first_column(row: &SqliteRow, expect: Option<&str>) -> Verdict {
    if row.columns().is_empty() {
        return Err("query returned no column".into());
    }
    let text: Option<String> = if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        v.map(|v| v.to_string())
    } else if let Ok(v) = row.try_get::<Option<f64>, _>(0) {
        v.map(|v| v.to_string())
    } else if let Ok(v) = row.try_get::<Option<String>, _>(0) {
        v
    } else {
        return Err("first column is neither a number nor text".into());
    };
    super::sql::judge(text.as_deref(), expect)
}
