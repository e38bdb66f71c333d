//! A PostgreSQL server named by a plan's URL: connecting with clear
//! errors, and the URL helpers the command-line tools need. Never shows a
//! password.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions;

use crate::resource::ResourceError;

/// Every connection attempt gives up after this (the tools get it through
/// PGCONNECT_TIMEOUT unless the environment sets one).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL server (and database) named by a plan's URL.
pub(super) struct Target {
    pub(super) url: String,
    options: PgConnectOptions,
}

impl Target {
    pub(super) fn parse(key: &str, url: &str) -> Result<Target, ResourceError> {
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
    pub(super) fn describe(&self) -> String {
        let o = &self.options;
        let at = match o.get_socket() {
            Some(s) => format!("{} (socket {})", o.get_host(), s.display()),
            None => format!("{}:{}", o.get_host(), o.get_port()),
        };
        let db = o.get_database().unwrap_or(o.get_username());
        format!("{}@{at}/{db}", o.get_username())
    }

    pub(super) async fn connect(
        &self,
        database: Option<&str>,
    ) -> Result<PgConnection, ResourceError> {
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
    pub(super) fn url_for(&self, database: &str) -> Result<String, ResourceError> {
        url_with_database(&self.url, database)
    }
}

/// Why a connection failed, in the words an operator needs.
pub(super) fn connect_error(e: &sqlx::Error) -> String {
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
pub(super) fn url_with_database(url: &str, database: &str) -> Result<String, ResourceError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| ResourceError::Source(format!("`{}` is not a URL", redact(url))))?;
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
}
