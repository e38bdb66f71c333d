//! `postgres` resources: a `pg_dump --format=custom` stream, stored as it
//! comes (the custom format is already compressed) with its SHA-256. A drill
//! downloads the dump into its scratch folder (verifying the SHA-256 as it
//! writes, so nothing unverified reaches the server), creates a scratch
//! database on the drill server, runs `pg_restore --jobs N` into it, checks
//! it, and drops it.
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

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Column, ConnectOptions, Connection, Executor, Row, TypeInfo, ValueRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tracing::{debug, info, warn};

use super::manifest::{ArtifactInfo, DatabaseInfo, Manifest, PostgresInfo};
use super::{ArtifactKeys, ResourceError, Restored, Scratch, Snapshot};
use crate::pipe::ChildOutput;
use crate::plan::SqlCheck;
use crate::vault::{HashingReader, Vault};

/// Every connection attempt gives up after this (the tools get it through
/// PGCONNECT_TIMEOUT unless the environment sets one).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The dump's name in a drill's scratch folder.
const DUMP_FILE: &str = "dump.pgdump";
/// How much of a tool's stderr an error message quotes.
const STDERR_SHOWN: usize = 2000;
/// pg_restore runs at most this many jobs, whatever the core count.
const MAX_JOBS: usize = 8;

/// A PostgreSQL server (and database) named by a plan's URL.
struct Target {
    url: String,
    options: PgConnectOptions,
}

impl Target {
    fn parse(key: &str, url: &str) -> Result<Target, ResourceError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ResourceError::Source(format!(
                "`{key}` must be a postgres:// URL, got `{}`",
                redact(url)
            )));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                ResourceError::Source(format!("`{key}` `{}` is not valid: {e}", redact(url)))
            })?
            .disable_statement_logging();
        Ok(Target {
            url: url.to_string(),
            options,
        })
    }

    /// `user@host:port/db`, for messages: never a password.
    fn describe(&self) -> String {
        let o = &self.options;
        let at = match o.get_socket() {
            Some(s) => format!("{} (socket {})", o.get_host(), s.display()),
            None => format!("{}:{}", o.get_host(), o.get_port()),
        };
        let db = o.get_database().unwrap_or(o.get_username());
        format!("{}@{at}/{db}", o.get_username())
    }

    async fn connect(&self, database: Option<&str>) -> Result<PgConnection, ResourceError> {
        let options = match database {
            Some(db) => self.options.clone().database(db),
            None => self.options.clone(),
        };
        let shown = match database {
            Some(db) => format!("{} (database {db})", self.describe()),
            None => self.describe(),
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Err(_) => Err(ResourceError::Source(format!(
                "cannot connect to PostgreSQL {shown}: no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))),
            Ok(Err(e)) => Err(ResourceError::Source(format!(
                "cannot connect to PostgreSQL {shown}: {}",
                connect_error(&e)
            ))),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    /// The URL with its database replaced, for the command-line tools.
    fn url_for(&self, database: &str) -> Result<String, ResourceError> {
        url_with_database(&self.url, database).map_err(ResourceError::Source)
    }
}

/// Why a connection failed, in the words an operator needs.
fn connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("28")) => format!(
            "authentication failed: {} (the password comes from PGPASSWORD, PGPASSFILE or ~/.pgpass)",
            d.message()
        ),
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => format!("server unreachable: {io}"),
        other => other.to_string(),
    }
}

/// A URL for messages: a password, should one slip through, is masked.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// `url` naming `database` instead of its own (any `dbname` query parameter,
/// which libpq would let override the path, is removed).
fn url_with_database(url: &str, database: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{}` is not a URL", redact(url)))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or("");
    let params: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty() && !p.starts_with("dbname="))
        .collect();
    let mut out = format!("{scheme}://{authority}/{database}");
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    Ok(out)
}

/// A PostgreSQL tool: `$LIFEBOAT_PG_BIN/NAME` when that is set (Debian keeps
/// each major version in /usr/lib/postgresql/N/bin), else NAME on the PATH.
fn tool(name: &str) -> Command {
    let program = match std::env::var_os("LIFEBOAT_PG_BIN") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join(name),
        _ => name.into(),
    };
    let mut cmd = Command::new(program);
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        cmd.env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT.as_secs().to_string());
    }
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

fn tool_missing(name: &str, e: &std::io::Error) -> ResourceError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ResourceError::Source(format!(
            "`{name}` was not found: install the PostgreSQL client tools (e.g. `apt-get install postgresql-client`), \
             of the server's major version or newer, or point LIFEBOAT_PG_BIN at their folder"
        ))
    } else {
        ResourceError::Source(format!("cannot run `{name}`: {e}"))
    }
}

/// `(major, full version text)` of a tool, from `NAME --version`
/// (`pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`).
async fn tool_version(name: &str) -> Result<(u32, String), ResourceError> {
    let out = tool(name)
        .arg("--version")
        .output()
        .await
        .map_err(|e| tool_missing(name, &e))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("");
    let major: String = version.chars().take_while(|c| c.is_ascii_digit()).collect();
    match major.parse() {
        Ok(m) if out.status.success() => Ok((m, version.to_string())),
        _ => Err(ResourceError::Source(format!(
            "cannot tell the version of `{name}` from `{text}`"
        ))),
    }
}

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

/// Collects the last part of a child's stderr (what explains a failure is
/// at the end), logging every line at debug level.
fn collect_stderr(stderr: Option<tokio::process::ChildStderr>) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let Some(mut stderr) = stderr else {
            return String::new();
        };
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 64 * 1024 {
                kept.drain(..kept.len() - 32 * 1024);
            }
        }
        let text = String::from_utf8_lossy(&kept).into_owned();
        for line in text.lines() {
            debug!(target: "lifeboat::postgres", "{line}");
        }
        text
    })
}

/// A tool's stderr as one line for a check's detail: its lines joined,
/// the end kept when it is long.
fn one_line(stderr: &str) -> String {
    let joined = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.len() <= STDERR_SHOWN {
        return joined;
    }
    let mut start = joined.len() - STDERR_SHOWN;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &joined[start..])
}

pub async fn snapshot(
    url: &str,
    vault: &Vault,
    keys: &ArtifactKeys,
    label: &str,
) -> Result<Snapshot, ResourceError> {
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
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            (crate::time::now_ms(), None, None)
        }
    };

    let mut cmd = tool("pg_dump");
    cmd.arg("--format=custom").arg("--no-password");
    if let Some(id) = &snapshot_id {
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
    // pg_dump has imported the snapshot long ago; now it may go.
    let _ = sqlx::raw_sql("COMMIT").execute(&mut conn).await;
    let _ = conn.close().await;
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
    let sha256 = digest.hex();
    let artifact = ArtifactInfo {
        sha256: sha256.clone(),
        size,
    };
    let manifest = Manifest {
        format: 1,
        kind: "postgres".into(),
        data_time: crate::time::rfc3339(data_time),
        artifact: artifact.clone(),
        file_count: 1,
        content_bytes: size,
        files: Vec::new(),
        // Stored as pg_dump wrote it: the dump is the artifact.
        database: Some(DatabaseInfo {
            size,
            sha256: sha256.clone(),
        }),
        postgres: Some(PostgresInfo {
            server_version: server_text,
            server_version_num: server_num,
            pg_dump_version: dump_version,
            format: "custom".into(),
            snapshot: snapshot_id,
            server_snapshot_time: server_time,
        }),
    };
    manifest.store(vault, &keys.manifest).await?;
    Ok(Snapshot {
        data_time,
        size_bytes: size,
        sha256,
        file_count: 1,
        content_bytes: size,
        flags: vec![],
    })
}

/// Starts a REPEATABLE READ transaction, takes its snapshot and exports it:
/// `(local time just before the snapshot, snapshot id, server time of it)`.
async fn export_snapshot(
    conn: &mut PgConnection,
) -> Result<(crate::time::Millis, String, String), sqlx::Error> {
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    // The snapshot is taken by the first statement of the transaction, not
    // by BEGIN: read the clock just before sending it.
    let before = crate::time::now_ms();
    let row = sqlx::raw_sql("SELECT pg_export_snapshot(), statement_timestamp()")
        .fetch_one(&mut *conn)
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

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub async fn restore(
    url: &str,
    drill_url: Option<&str>,
    vault: &Vault,
    keys: &ArtifactKeys,
    scratch: &Scratch,
    label: &str,
) -> Result<Restored, ResourceError> {
    let target = drill_target(url, drill_url)?;
    let manifest = Manifest::load(vault, &keys.manifest).await?;
    let location = vault.location(&keys.artifact);
    if manifest.kind != "postgres" {
        return Err(ResourceError::Corrupt {
            location,
            detail: format!("manifest is of kind `{}`, not postgres", manifest.kind),
        });
    }
    let (restore_major, _) = tool_version("pg_restore").await?;

    // The dump goes to a local file first: pg_restore needs a seekable file
    // to run several jobs, and nothing unverified may reach the server.
    let dest = &scratch.dir;
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(ResourceError::io("create", dest))?;
    let dump = dest.join(DUMP_FILE);
    let (size, sha) = download(vault, keys, &dump, &location).await?;
    if sha != manifest.artifact.sha256 || size != manifest.artifact.size {
        return Err(ResourceError::Corrupt {
            location,
            detail: format!(
                "dump does not match the manifest: expected {} bytes sha256 {}, got {size} bytes sha256 {sha}",
                manifest.artifact.size, manifest.artifact.sha256
            ),
        });
    }

    let db = scratch.database_name();
    let mut admin = target.connect(None).await?;
    let (server_num, _) = server_version(&mut admin).await.map_err(|e| {
        ResourceError::Source(format!(
            "cannot read the server version of {}: {e}",
            target.describe()
        ))
    })?;
    // A database of this name can only be left over from a drill of a
    // catalog since recreated: it is ours to replace.
    drop_database(&mut admin, &db, server_num).await?;
    sqlx::raw_sql(&format!(
        "CREATE DATABASE {} TEMPLATE template0",
        quote_ident(&db)
    ))
    .execute(&mut admin)
    .await
    .map_err(|e| {
        ResourceError::Source(format!(
            "cannot create the scratch database {db} on {}: {}",
            target.describe(),
            connect_error(&e)
        ))
    })?;
    let _ = admin.close().await;
    info!(resource = label, database = %db, server = %target.describe(), "scratch database created");

    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_JOBS);
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
    let status = child
        .wait()
        .await
        .map_err(|e| ResourceError::Other(format!("waiting for pg_restore: {e}")))?;
    let stderr = stderr.await.unwrap_or_default();
    if !status.success() {
        return Err(ResourceError::Source(format!(
            "pg_restore {restore_major} into scratch database {db} on {} failed ({status}): {}",
            target.describe(),
            one_line(&stderr)
        )));
    }
    Ok(Restored {
        location: dest.clone(),
        verification: format!(
            "dump of {size} bytes matches the manifest's sha256; restored into database {db} on {} by pg_restore --jobs={jobs}",
            target.describe()
        ),
        database: Some(db),
    })
}

/// Copies the artifact into `path`, hashing it on the way: `(size, sha256)`.
async fn download(
    vault: &Vault,
    keys: &ArtifactKeys,
    path: &Path,
    location: &str,
) -> Result<(u64, String), ResourceError> {
    let reader = vault.get(&keys.artifact).await?;
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
    // Never drop anything but a drill's scratch database.
    if !db.starts_with(super::SCRATCH_DATABASE_PREFIX) {
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
    sqlx::raw_sql(&format!(
        "DROP DATABASE IF EXISTS {}{force}",
        quote_ident(db)
    ))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
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

/// Runs a plan's SQL check in the scratch database. The query goes through
/// the simple-query protocol, so any result type comes back as the text
/// psql would show; booleans read `true` / `false`.
pub async fn sql_check(
    url: &str,
    drill_url: Option<&str>,
    restored: &Restored,
    check: &SqlCheck,
) -> Result<String, String> {
    let target = drill_target(url, drill_url).map_err(|e| e.to_string())?;
    let db = restored
        .database
        .as_deref()
        .ok_or("no scratch database was restored")?;
    let mut conn = target.connect(Some(db)).await.map_err(|e| e.to_string())?;
    // RawSql::fetch_optional of sqlx 0.8 fails on no row: use the executor's.
    let row = conn
        .fetch_optional(sqlx::raw_sql(&check.sql))
        .await
        .map_err(|e| format!("query failed: {e}"));
    let _ = conn.close().await;
    let Some(row) = row? else {
        return Err("query returned no row".into());
    };
    if row.columns().is_empty() {
        return Err("query returned no column".into());
    }
    let text = text_column(&row, 0).map_err(|e| format!("cannot read the first column: {e}"))?;
    let text = match (row.column(0).type_info().name(), text.as_deref()) {
        ("BOOL", Some("t")) => Some("true".to_string()),
        ("BOOL", Some("f")) => Some("false".to_string()),
        _ => text,
    };
    super::sql::judge(text.as_deref(), check.expect.as_deref())
}

/// Built-in check: every table the dump lists exists in the scratch
/// database (pg_restore --exit-on-error already failed on any error; this
/// proves the restore went where the checks look).
pub async fn tables_check(
    url: &str,
    drill_url: Option<&str>,
    restored: &Restored,
) -> Result<String, String> {
    let dump = restored.location.join(DUMP_FILE);
    let listed = dump_tables(&dump).await?;
    let target = drill_target(url, drill_url).map_err(|e| e.to_string())?;
    let db = restored
        .database
        .as_deref()
        .ok_or("no scratch database was restored")?;
    let mut conn = target.connect(Some(db)).await.map_err(|e| e.to_string())?;
    let found = async {
        let present: Vec<(String, String)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
        )
        .fetch_all(&mut conn)
        .await?;
        let counts: (i64, i64, String) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relkind = 'i' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                       AND n.nspname NOT LIKE 'pg_toast%'),
                    (SELECT count(*) FROM pg_class WHERE relkind = 'S'),
                    pg_size_pretty(pg_database_size(current_database()))",
        )
        .fetch_one(&mut conn)
        .await?;
        Ok::<_, sqlx::Error>((present, counts))
    }
    .await;
    let _ = conn.close().await;
    let (present, (indexes, sequences, size)) =
        found.map_err(|e| format!("cannot list the restored tables: {e}"))?;
    let present: BTreeSet<(String, String)> = present.into_iter().collect();
    let missing: Vec<String> = listed
        .iter()
        .filter(|t| !present.contains(*t))
        .map(|(s, n)| format!("{s}.{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} of the dump's {} tables are missing: {}",
            missing.len(),
            listed.len(),
            missing.join(", ")
        ));
    }
    let mut names: Vec<String> = listed.iter().map(|(s, n)| format!("{s}.{n}")).collect();
    if names.len() > 5 {
        let more = names.len() - 5;
        names.truncate(5);
        names.push(format!("… {more} more"));
    }
    Ok(format!(
        "all {} tables of the dump restored ({}); {indexes} indexes, {sequences} sequences; database size {size}",
        listed.len(),
        names.join(", ")
    ))
}

/// The tables a custom-format dump holds, from its table of contents
/// (`pg_restore --list`, which reads only the head of the file).
async fn dump_tables(dump: &Path) -> Result<BTreeSet<(String, String)>, String> {
    let out = tool("pg_restore")
        .arg("--list")
        .arg(dump)
        .output()
        .await
        .map_err(|e| tool_missing("pg_restore", &e).to_string())?;
    if !out.status.success() {
        return Err(format!(
            "pg_restore --list failed: {}",
            one_line(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(parse_toc_tables(&String::from_utf8_lossy(&out.stdout)))
}

/// `215; 1259 16386 TABLE public orders owner` → `(public, orders)`.
fn parse_toc_tables(toc: &str) -> BTreeSet<(String, String)> {
    toc.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let (_, rest) = l.split_once("; ")?;
            let mut parts = rest.splitn(3, ' ');
            let (_, _, desc) = (parts.next()?, parts.next()?, parts.next()?);
            let rest = desc.strip_prefix("TABLE ")?;
            if rest.starts_with("DATA ") {
                return None;
            }
            let (schema, rest) = rest.split_once(' ')?;
            // The owner is the last word; a name may hold spaces.
            let name = rest.rsplit_once(' ').map(|(n, _)| n).unwrap_or(rest);
            Some((schema.to_string(), name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            url_with_database("postgres://u@h:5432/prod", "x").unwrap(),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            url_with_database("postgresql://u@h", "x").unwrap(),
            "postgresql://u@h/x"
        );
        assert_eq!(
            url_with_database("postgres://u@h/prod?sslmode=require&dbname=prod", "x").unwrap(),
            "postgres://u@h/x?sslmode=require"
        );
        assert_eq!(
            url_with_database("postgres:///prod?host=/run/pg", "x").unwrap(),
            "postgres:///x?host=/run/pg"
        );
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn toc_tables_are_parsed() {
        let toc = ";\n; Archive created at 2026-01-01\n;\n\
            215; 1259 16386 TABLE public orders lifeboat\n\
            216; 1259 16390 SEQUENCE public orders_id_seq lifeboat\n\
            217; 1259 16391 TABLE sales order lines lifeboat\n\
            3350; 0 16386 TABLE DATA public orders lifeboat\n\
            3201; 1259 16400 INDEX public orders_total lifeboat\n";
        let t = parse_toc_tables(toc);
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            vec![
                ("public".to_string(), "orders".to_string()),
                ("sales".to_string(), "order lines".to_string())
            ]
        );
    }
}
