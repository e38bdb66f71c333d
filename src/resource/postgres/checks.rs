//! Checks on a restored scratch database: the plan's SQL checks and the
//! built-in `tables` check.

use std::collections::BTreeSet;
use std::path::Path;

use sqlx::{Column, ConnectOptions, Connection, Executor, Row, TypeInfo};

use super::tools::dump_tables;
use super::{drill_target, text_column};
use crate::plan::SqlCheck;
use crate::resource::Verdict;

/// Runs a plan's SQL check in the scratch database. The query goes through
/// the simple-query protocol, so any result type comes back as the text
/// psql would show; booleans read `true` / `false`.
pub async fn sql_check(url: &str, drill_url: Option<&str>, db: &str, check: &SqlCheck) -> Verdict {
    let target = drill_target(url, drill_url).map_err(|e| e.to_string())?;
    let conn = target.connect(Some(db)).await.map_err(|e| e.to_string())?;
    run_check(conn, check).await
}

/// Runs a SQL check against a restored RDS endpoint (`host:port`) of a
/// PostgreSQL engine. Credentials and database come from the environment
/// the libpq way (PGUSER, PGPASSWORD or ~/.pgpass, PGDATABASE, PGSSLMODE),
/// never from the plan: the restored instance keeps its source's users.
pub async fn endpoint_sql_check(endpoint: &str, check: &SqlCheck) -> Verdict {
    let (host, port) = endpoint
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("endpoint `{endpoint}` is not HOST:PORT"))?;
    let options = sqlx::postgres::PgConnectOptions::new()
        .host(host)
        .port(port)
        .disable_statement_logging();
    let shown = format!("{host}:{port} as {}", options.get_username());
    let conn = tokio::time::timeout(
        super::target::CONNECT_TIMEOUT,
        sqlx::postgres::PgConnection::connect_with(&options),
    )
    .await
    .map_err(|_| format!("cannot connect to {shown}: timed out"))?
    .map_err(|e| {
        format!(
            "cannot connect to {shown}: {}",
            super::target::connect_error(&e)
        )
    })?;
    run_check(conn, check).await
}

async fn run_check(mut conn: sqlx::postgres::PgConnection, check: &SqlCheck) -> Verdict {
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
    crate::resource::sql::judge(text.as_deref(), check.expect.as_deref())
}

/// Built-in check: every table the dump lists exists in the scratch
/// database (pg_restore --exit-on-error already failed on any error; this
/// proves the restore went where the checks look).
pub async fn tables_check(url: &str, drill_url: Option<&str>, db: &str, dump: &Path) -> Verdict {
    let listed = dump_tables(dump).await?;
    let target = drill_target(url, drill_url).map_err(|e| e.to_string())?;
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
        )
        .into());
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
