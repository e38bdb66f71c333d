//! SQL checks on a restored RDS instance of a MySQL or MariaDB engine
//! (`mysql`, `mariadb`, `aurora-mysql`).
//!
//! Credentials never come from the plan: the restored instance keeps its
//! source's users, and the operator's environment says which to use, the
//! way the `mysql` client finds them: `~/.my.cnf` (its `[client]` group's
//! `user`, `password`, `database`), overridden by `MYSQL_USER` (a name
//! the official images use; the client itself falls back to the login
//! name, and so does this), `MYSQL_PWD` and `MYSQL_DATABASE`. Without a
//! database, checks name their tables in full (`SELECT count(*) FROM
//! shop.orders`).
//!
//! The query goes through the text protocol, so any result type comes
//! back as the text the `mysql` client shows: `SELECT count(*) > 0` is
//! `1`, which [`crate::resource::sql::judge`] reads as true.

use std::path::Path;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{ConnectOptions, Connection, Executor, Row};

use crate::plan::SqlCheck;
use crate::resource::Verdict;

/// How long to wait for the server to answer a connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Who to connect as, and to which database.
#[derive(Debug, Default, PartialEq, Eq)]
struct Login {
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
}

/// Runs a plan's SQL check against a restored endpoint (`host:port`).
pub async fn endpoint_sql_check(endpoint: &str, check: &SqlCheck) -> Verdict {
    let (host, port) = endpoint
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("endpoint `{endpoint}` is not HOST:PORT"))?;
    let login = login_from_environment();
    let user = login.user.unwrap_or_else(crate::host::user);
    let mut options = MySqlConnectOptions::new()
        .host(host)
        .port(port)
        .username(&user)
        .disable_statement_logging();
    if let Some(p) = &login.password {
        options = options.password(p);
    }
    if let Some(db) = &login.database {
        options = options.database(db);
    }
    let shown = format!("{host}:{port} as {user}");
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&options))
        .await
        .map_err(|_| format!("cannot connect to {shown}: timed out"))?
        .map_err(|e| format!("cannot connect to {shown}: {}", connect_error(&e)))?;
    run_check(conn, check).await
}

/// The server's own words, without the driver's wrapping (and never a
/// password: the driver does not echo it).
fn connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

async fn run_check(mut conn: MySqlConnection, check: &SqlCheck) -> Verdict {
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
    let text = first_column(&row).map_err(|e| format!("cannot read the first column: {e}"))?;
    crate::resource::sql::judge(text.as_deref(), check.expect.as_deref())
}

/// The first column as the text the server sent. Unchecked: in the text
/// protocol every type arrives as text, which is what the judge reads.
fn first_column(row: &MySqlRow) -> Result<Option<String>, sqlx::Error> {
    row.try_get_unchecked::<Option<String>, _>(0)
}

/// `~/.my.cnf`, then the environment over it.
fn login_from_environment() -> Login {
    let mut login = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".my.cnf"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| client_group(&text))
        .unwrap_or_default();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(u) = var("MYSQL_USER") {
        login.user = Some(u);
    }
    if let Some(p) = var("MYSQL_PWD") {
        login.password = Some(p);
    }
    if let Some(d) = var("MYSQL_DATABASE") {
        login.database = Some(d);
    }
    login
}

/// `user`, `password` and `database` of an option file's `[client]`
/// group (`key = value`, optionally quoted; `#` and `;` start comments).
fn client_group(text: &str) -> Login {
    let mut login = Login::default();
    let mut in_client = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_client = group.trim() == "client";
            continue;
        }
        let Some((key, value)) = line.split_once('=').filter(|_| in_client) else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_string();
        match key.trim().replace('-', "_").as_str() {
            "user" => login.user = Some(value),
            "password" => login.password = Some(value),
            "database" => login.database = Some(value),
            _ => {}
        }
    }
    login
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_group_of_an_option_file_gives_the_login() {
        let text = "\
# the operator's file
[mysqld]
user = mysql
[client]
user = reader
password = \"s3cr#t\"
; comment
database='shop'
[mysqldump]
user = dumper
";
        assert_eq!(
            client_group(text),
            Login {
                user: Some("reader".into()),
                password: Some("s3cr#t".into()),
                database: Some("shop".into()),
            }
        );
        assert_eq!(client_group("user = nobody\n"), Login::default());
    }
}
