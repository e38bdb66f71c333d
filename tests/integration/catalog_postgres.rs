//! The catalog on PostgreSQL: what `--catalog postgres://…` accepts and
//! refuses, whatever engine the rest of this run puts its catalogs on.
//! (The behaviour of the catalog itself is covered by running the catalog
//! tests on both engines: `LIFEBOAT_TEST_CATALOG=postgres`.)

use std::process::Command;

use crate::common::*;
use crate::pg;

fn fresh_database(tag: &str) -> String {
    let db = format!("lifeboat_catalog_{tag}_{:08x}", rand::random::<u32>());
    pg::server().admin_sql(
        "postgres",
        &format!("CREATE DATABASE {db} OWNER {}", pg::USER),
    );
    db
}

/// `lifeboat` with `--catalog url` and the test role's password in
/// PGPASSWORD (as libpq's own tools take it).
fn with_catalog(env: &Env, url: &str, args: &[&str]) -> Command {
    let c = env.command_on(url, args);
    pg::with_pg_env(c, pg::PASSWORD)
}

#[test]
fn a_database_without_a_catalog_is_bad_input_until_a_backup_creates_one() {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &env.local_plan(""));
    let db = fresh_database("new");
    let url = pg::server().url(&db);

    let out = with_catalog(&env, &url, &["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("holds no Lifeboat catalog yet"), "{said}");
    // Reading created nothing.
    assert_eq!(
        pg::server().sql(&db, "SELECT to_regclass('points') IS NULL"),
        "t"
    );

    let out = with_catalog(&env, &url, &["backup", "run", "shop", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let backup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = backup["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{backup}");
    // What the command said is what the database holds.
    let complete = pg::server().sql(
        &db,
        "SELECT count(*) FROM points WHERE status = 'complete' AND plan = 'shop'",
    );
    assert_eq!(complete, points.len().to_string());
    let out = with_catalog(&env, &url, &["drill", "run", "shop", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(pg::server().sql(&db, "SELECT status FROM drills"), "passed");
}

#[test]
fn a_database_of_another_program_is_refused_untouched() {
    let env = Env::new();
    let db = fresh_database("foreign");
    pg::server().sql(
        &db,
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, checksum BYTEA);
         INSERT INTO _sqlx_migrations VALUES (1, '\\x00');",
    );
    let out = with_catalog(&env, &pg::server().url(&db), &["status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not Lifeboat's"), "{}", stderr(&out));
    assert_eq!(
        pg::server().sql(&db, "SELECT to_regclass('points') IS NULL"),
        "t"
    );
}

#[test]
fn the_password_of_a_catalog_url_never_reaches_a_message() {
    let env = Env::new();
    let secret = "s3cr3t-catalog-pw";
    // The right server, a database that does not exist.
    let url = format!(
        "postgres://{}:{secret}@127.0.0.1:{}/no_such_catalog",
        pg::USER,
        pg::server().port
    );
    let out = with_catalog(&env, &url, &["status"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(said.contains("no_such_catalog"), "{said}");
    assert!(said.contains("***"), "{said}");
    assert!(!said.contains(secret), "{said}");
}

#[test]
fn a_catalog_is_reached_over_verified_tls_and_a_wrong_certificate_is_refused() {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &env.local_plan(""));
    let db = fresh_database("tls");
    let server = pg::server();
    let with_root = |root: &std::path::Path| {
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            server.url(&db),
            root.display()
        )
    };
    // Trusting the server's own certificate: the backup records its points.
    let out = with_catalog(&env, &with_root(&server.ca), &["backup", "run", "shop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(
        pg::server().sql(&db, "SELECT count(*) FROM points WHERE status = 'complete'"),
        "0"
    );
    // Trusting another certificate: the connection is refused, so the
    // catalog was reached over TLS and its certificate checked.
    std::fs::create_dir_all(env.path("other-ca")).unwrap();
    let other = pg::test_ca(&env.path("other-ca"));
    let out = with_catalog(&env, &with_root(&other), &["status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("cannot open"), "{said}");
}
