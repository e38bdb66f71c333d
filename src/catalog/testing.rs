//! Test support: a fresh, empty catalog on the engine the test run is for.
//!
//! `LIFEBOAT_TEST_CATALOG=postgres` runs every test that opens its catalog
//! here on PostgreSQL (a database of its own on the suite's throwaway
//! server); anything else, or nothing, on a SQLite file in the test's
//! folder. `scripts/test.sh` runs the catalog's tests both ways.

use std::path::{Path, PathBuf};

use super::Catalog;

#[allow(dead_code)]
#[path = "../../tests/integration/pg.rs"]
mod pg;

/// Whether this test run puts its catalogs on PostgreSQL.
pub fn on_postgres() -> bool {
    match std::env::var("LIFEBOAT_TEST_CATALOG").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("LIFEBOAT_TEST_CATALOG={other}: expected `sqlite` or `postgres`"),
    }
}

/// Where a test's catalog goes: a file in `dir`, or a new database on the
/// test server (as a `postgres://` URL, which `--catalog` accepts too).
pub fn location(dir: &Path) -> PathBuf {
    if !on_postgres() {
        return dir.join("lifeboat.db");
    }
    let server = pg::server();
    let db = format!("lifeboat_catalog_{:016x}", rand::random::<u64>());
    server.admin_sql(
        "postgres",
        &format!("CREATE DATABASE {db} OWNER {}", pg::USER),
    );
    PathBuf::from(format!(
        "postgres://{}:{}@127.0.0.1:{}/{db}",
        pg::USER,
        pg::PASSWORD,
        server.port
    ))
}

/// A new catalog at [`location`], opened and migrated.
pub async fn open(dir: &Path) -> Catalog {
    let at = location(dir);
    Catalog::open(&at)
        .await
        .unwrap_or_else(|e| panic!("open the test catalog: {e}"))
}
