//! The last step of `lifeboat restore --to-db`: the database restored and
//! checked under its staging name (`lifeboat_restore_…`) takes the
//! target's name. An existing target is never dropped: with `--overwrite`
//! it is renamed aside (`NAME_replaced_YYYYMMDDHHMMSS`) and kept for the
//! operator to drop once satisfied.

use sqlx::{Connection, Executor};

use super::target::{connect_error, url_with_database, Target};
use super::{quote_ident, ResourceError};

/// The URL of the server of `url` on its maintenance database
/// (`postgres`): where databases are created and renamed from, since a
/// database cannot be renamed by a session connected to it.
pub fn maintenance_url(url: &str) -> Result<String, ResourceError> {
    url_with_database(url, "postgres")
}

/// The database `url` names (its path), if any.
pub fn database_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split('?').next()?.split_once('/')?.1;
    (!path.is_empty()).then(|| {
        percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned()
    })
}

/// Whether database `name` exists on the server of `server_url` (a
/// maintenance URL).
pub async fn database_exists(server_url: &str, name: &str) -> Result<bool, ResourceError> {
    let target = Target::parse("--to-url", server_url)?;
    let mut conn = target.connect(None).await?;
    let exists = exists(&mut conn, name).await;
    let _ = conn.close().await;
    exists
}

async fn exists(conn: &mut sqlx::PgConnection, name: &str) -> Result<bool, ResourceError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| ResourceError::Source(format!("cannot list databases: {}", connect_error(&e))))
}

/// Renames `staged` to `name` on the server of `server_url`; an existing
/// `name` is renamed aside first when `overwrite` (refused otherwise).
/// Returns what it did, for the output.
pub async fn promote(
    server_url: &str,
    staged: &str,
    name: &str,
    overwrite: bool,
    now_stamp: &str,
) -> Result<String, ResourceError> {
    let target = Target::parse("--to-url", server_url)?;
    let mut conn = target.connect(None).await?;
    let result = promote_on(&mut conn, staged, name, overwrite, now_stamp, &target).await;
    let _ = conn.close().await;
    result
}

async fn promote_on(
    conn: &mut sqlx::PgConnection,
    staged: &str,
    name: &str,
    overwrite: bool,
    now_stamp: &str,
    target: &Target,
) -> Result<String, ResourceError> {
    let rename = |from: &str, to: &str| {
        format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        )
    };
    let mut said = Vec::new();
    let mut moved_aside = None;
    if exists(conn, name).await? {
        if !overwrite {
            return Err(ResourceError::Other(format!(
                "database {name} exists on {}: restore to another name, or pass --overwrite to rename it aside",
                target.describe()
            )));
        }
        let aside = aside_name(name, now_stamp);
        conn.execute(sqlx::raw_sql(&rename(name, &aside)))
            .await
            .map_err(|e| {
                ResourceError::Source(format!(
                    "cannot rename the existing database {name} aside to {aside} on {}: {} (close the application's connections to it first; pg_stat_activity lists them)",
                    target.describe(),
                    connect_error(&e)
                ))
            })?;
        said.push(format!("the database that was {name} is now {aside}"));
        moved_aside = Some(aside);
    }
    if let Err(e) = conn.execute(sqlx::raw_sql(&rename(staged, name))).await {
        let mut message = format!(
            "cannot rename the restored database {staged} to {name} on {}: {}",
            target.describe(),
            connect_error(&e)
        );
        // Never leave the target's name empty: the old database goes back.
        if let Some(aside) = moved_aside {
            match conn.execute(sqlx::raw_sql(&rename(&aside, name))).await {
                Ok(_) => message.push_str(&format!("; {name} is as it was")),
                Err(e) => message.push_str(&format!(
                    "; the database that was {name} is still {aside}: {}",
                    connect_error(&e)
                )),
            }
        }
        return Err(ResourceError::Source(message));
    }
    said.insert(
        0,
        format!("restored into database {name} on {}", target.describe()),
    );
    Ok(said.join("; "))
}

/// `NAME_replaced_STAMP`, cut to PostgreSQL's 63 bytes.
fn aside_name(name: &str, stamp: &str) -> String {
    let suffix = format!("_replaced_{stamp}");
    let keep = 63usize.saturating_sub(suffix.len());
    let mut cut = name.len().min(keep);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aside_names_fit_postgres() {
        assert_eq!(
            aside_name("shop", "20261202101500"),
            "shop_replaced_20261202101500"
        );
        let long = "x".repeat(80);
        assert_eq!(aside_name(&long, "20261202101500").len(), 63);
    }

    #[test]
    fn the_database_of_a_url() {
        assert_eq!(
            database_of("postgres://u@h:5432/shop?sslmode=require").as_deref(),
            Some("shop")
        );
        assert_eq!(database_of("postgres://u@h:5432/"), None);
        assert_eq!(database_of("postgres://h"), None);
        assert_eq!(database_of("postgres://h/a%20b").as_deref(), Some("a b"));
    }
}
