//! The `postgres` kind against a real PostgreSQL server (see `pg.rs`):
//! pg_dump into the vault, copies, drills into scratch databases that never
//! outlive the drill, and the errors an operator meets.

use std::process::Output;

use serde_json::Value;

use crate::common::*;
use crate::pg::{self, server, PASSWORD};

/// A plan with one postgres resource (`db`) backed up to `primary`, copied
/// to `dr`, drilled from `dr`.
fn pg_plan(env: &Env, plan: &str, url: &str, extra: &str) -> String {
    let vaults = env.path("vaults");
    format!(
        r#"name = "{plan}"
owner = "dba@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "0 * * * *"
primary_region = "primary"
copy_to = ["dr"]

[regions.primary]
vault = "file://{v}/primary"

[regions.dr]
vault = "file://{v}/dr"

[[resources]]
name = "db"
kind = "postgres"
url = "{url}"

[drill]
region = "dr"
{extra}
"#,
        v = vaults.display()
    )
}

fn run_pg(env: &Env, args: &[&str], password: &str) -> Output {
    pg::with_pg_env(env.command(args), password)
        .output()
        .expect("run lifeboat")
}

fn json_pg(env: &Env, args: &[&str], password: &str) -> (Value, i32) {
    let out = run_pg(env, args, password);
    let code = out.status.code().unwrap_or(-1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout of {args:?} is not JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        )
    });
    (v, code)
}

fn check<'a>(drill: &'a Value, name: &str) -> &'a Value {
    drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {drill}"))
}

#[test]
fn backup_and_drill_restore_the_snapshot_and_not_later_changes() {
    backup_and_drill("custom");
}

#[test]
fn a_directory_dump_backs_up_and_drills_the_same() {
    backup_and_drill("directory");
}

/// The whole loop with `dump_format = FORMAT`: backup, copy, a drill of
/// the snapshot and not of later changes, `--keep`.
fn backup_and_drill(format: &str) {
    let pg = server();
    let env = Env::new();
    let plan = &format!("loop-{format}");
    let source = &format!("pg_loop_{format}");
    pg.create_shop(source, 100_000);
    let checks = r#"
[[drill.checks]]
name = "orders-count"
resource = "db"
sql = "SELECT count(*) FROM orders"
expect = 100000

[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"

[[drill.checks]]
name = "sequence"
resource = "db"
sql = "SELECT last_value FROM invoice_numbers"
expect = 1234

[[drill.checks]]
name = "index"
resource = "db"
sql = "SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_customer'"
expect = 1

[[drill.checks]]
name = "no-later-table"
resource = "db"
sql = "SELECT to_regclass('public.later') IS NULL"
expect = true
"#;
    let text = pg_plan(&env, plan, &pg.url(source), checks).replace(
        "kind = \"postgres\"\n",
        &format!("kind = \"postgres\"\ndump_format = \"{format}\"\n"),
    );
    env.write_plan("pg.toml", &text);

    let before = now_ms();
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    let after = now_ms();
    assert_eq!(code, 0, "{backup}");
    let points = backup["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "a point in primary and its copy in dr");
    for p in points {
        assert_eq!(p["status"], "complete", "{p}");
        assert_eq!(p["kind"], "postgres");
        assert!(p["location"].as_str().unwrap().ends_with(".pgdump"), "{p}");
        let dt = ms(&p["data_time"]);
        assert!(before <= dt && dt <= after, "data_time within the backup");
    }
    assert_eq!(points[0]["data_time"], points[1]["data_time"]);
    assert_eq!(points[0]["sha256"], points[1]["sha256"]);
    // The manifest records the server the dump came from.
    let location = points[0]["location"].as_str().unwrap();
    let manifest_path = location
        .strip_prefix("file://")
        .unwrap()
        .replace(".pgdump", ".manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["kind"], "postgres");
    assert!(
        manifest["postgres"]["server_version_num"].as_i64().unwrap() >= 100_000,
        "{manifest}"
    );
    assert!(manifest["postgres"]["snapshot"].is_string(), "{manifest}");
    assert_eq!(manifest["postgres"]["format"], format, "{manifest}");
    if format == "directory" {
        // Packed a frame per file as pg_dump closed each, with each file's
        // SHA-256, the table of contents last; its folder in the work dir
        // is gone.
        assert_eq!(manifest["format"], 3, "a layout older builds refuse");
        let files = manifest["postgres"]["files"].as_array().unwrap();
        assert_eq!(files.last().unwrap()["name"], "toc.dat", "{manifest}");
        let data: u64 = files.iter().map(|f| f["size"].as_u64().unwrap()).sum();
        assert_eq!(manifest["content_bytes"].as_u64().unwrap(), data);
        assert!(
            files.iter().any(|f| f["size"].as_u64().unwrap() >= 1 << 20),
            "a file large enough for zstd's threads: {files:?}"
        );
        let left: Vec<String> = std::fs::read_dir(env.path("work").join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pg-dump-"))
            .collect();
        assert!(left.is_empty(), "the dump's folder is removed: {left:?}");
    } else {
        // The dump is the artifact.
        assert_eq!(manifest["database"]["sha256"], points[0]["sha256"]);
        assert!(manifest["postgres"].get("files").is_none(), "{manifest}");
    }

    // Changes after the backup must not show up in the drill.
    pg.sql(
        source,
        "INSERT INTO orders (customer_id, total) SELECT 1, 1 FROM generate_series(1, 500);
         SELECT setval('invoice_numbers', 5000);
         CREATE TABLE later (id int);",
    );

    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["passed"], true, "{drill}");
    let names: Vec<&str> = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "restore",
            "tables",
            "orders-count",
            "orders-present",
            "sequence",
            "index",
            "no-later-table"
        ]
    );
    for c in drill["checks"].as_array().unwrap() {
        assert!(c["seconds"].as_f64().is_some(), "{c}");
    }
    assert!(
        check(&drill, "restore")["detail"]
            .as_str()
            .unwrap()
            .contains("sha256"),
        "{drill}"
    );
    let tables = check(&drill, "tables")["detail"].as_str().unwrap();
    // A partitioned table and its partition count as two.
    assert!(tables.contains("all 4 tables"), "{tables}");
    assert_eq!(
        check(&drill, "orders-count")["detail"],
        "returned 100000, as expected"
    );
    let rpo = drill["rpo_seconds"].as_f64().unwrap();
    let dt = ms(&points[1]["data_time"]);
    let started = ms(&drill["started_at"]);
    assert!(
        (rpo - (started - dt) as f64 / 1000.0).abs() < 0.002,
        "RPO = drill start - data_time: {drill}"
    );
    assert!(
        pg.scratch_databases(plan).is_empty(),
        "the scratch database is dropped"
    );

    // --keep keeps the scratch database and names it.
    let (kept, code) = json_pg(&env, &["drill", "run", plan, "--keep", "--json"], PASSWORD);
    assert_eq!(code, 0, "{kept}");
    let dbs = kept["kept_databases"].as_array().expect("kept databases");
    assert_eq!(dbs.len(), 1, "{kept}");
    let db = dbs[0].as_str().unwrap();
    assert_eq!(pg.scratch_databases(plan), vec![db.to_string()]);
    assert_eq!(pg.admin_sql(db, "SELECT count(*) FROM orders"), "100000");
    pg.admin_sql("postgres", &format!("DROP DATABASE {db}"));

    // The human output names a kept database too.
    let out = run_pg(&env, &["drill", "run", plan, "--keep"], PASSWORD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("restored database kept: lifeboat_drill_"),
        "{}",
        stdout(&out)
    );
    for db in pg.scratch_databases(plan) {
        pg.admin_sql("postgres", &format!("DROP DATABASE {db}"));
    }
}

#[test]
fn a_false_or_broken_check_fails_the_drill_and_the_database_is_dropped() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-false";
    pg.create_shop("pg_false", 1000);
    let checks = r#"
[[drill.checks]]
name = "none-left"
resource = "db"
sql = "SELECT count(*) = 0 FROM orders"

[[drill.checks]]
name = "wrong-count"
resource = "db"
sql = "SELECT count(*) FROM orders"
expect = 999

[[drill.checks]]
name = "missing-table"
resource = "db"
sql = "SELECT count(*) FROM no_such_table"
"#;
    env.write_plan("pg.toml", &pg_plan(&env, plan, &pg.url("pg_false"), checks));
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{backup}");
    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 1, "{drill}");
    assert_eq!(drill["passed"], false);
    assert!(drill["rto_seconds"].is_null(), "a failed drill has no RTO");
    assert_eq!(check(&drill, "restore")["passed"], true);
    assert_eq!(
        check(&drill, "none-left")["detail"],
        "returned false, which is not true"
    );
    assert_eq!(
        check(&drill, "wrong-count")["detail"],
        "returned 1000, expected 999"
    );
    let missing = check(&drill, "missing-table");
    assert_eq!(missing["passed"], false);
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{missing}"
    );
    assert!(pg.scratch_databases(plan).is_empty());
}

#[test]
fn a_wrong_password_or_a_dead_server_fails_the_point_clearly() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-auth";
    pg.create_shop("pg_auth", 10);
    env.write_plan("pg.toml", &pg_plan(&env, plan, &pg.url("pg_auth"), ""));
    let wrong = "not-the-password-5e2";
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], wrong);
    assert_eq!(code, 1, "{backup}");
    assert_eq!(backup["status"], "failed");
    let point = &backup["points"][0];
    assert_eq!(point["status"], "failed", "{point}");
    let error = point["error"].as_str().unwrap();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(error.contains("PGPASSWORD"), "{error}");
    assert!(!error.contains(wrong), "never show the password: {error}");
    // The failure is recorded, with the same error.
    let (list, code) = json_pg(&env, &["points", "list", "--all", "--json"], wrong);
    assert_eq!(code, 0, "{list}");
    let recorded = list.as_array().unwrap();
    assert_eq!(recorded.len(), 1, "{list}");
    assert_eq!(recorded[0]["status"], "failed");
    assert_eq!(recorded[0]["error"], point["error"]);

    // A server that does not answer.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    env.write_plan(
        "pg.toml",
        &pg_plan(
            &env,
            plan,
            &format!("postgres://lifeboat@127.0.0.1:{closed}/pg_auth"),
            "",
        ),
    );
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 1, "{backup}");
    let error = backup["points"][0]["error"].as_str().unwrap();
    assert!(error.contains("server unreachable"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{closed}")), "{error}");
}

#[test]
fn a_missing_pg_dump_says_what_to_install() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-nodump";
    env.write_plan("pg.toml", &pg_plan(&env, plan, &pg.url("pg_nodump"), ""));
    let empty = env.path("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = pg::with_pg_env(env.command(&["backup", "run", plan, "--json"]), PASSWORD);
    cmd.env("PATH", &empty);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = v["points"][0]["error"].as_str().unwrap();
    assert!(error.contains("`pg_dump` was not found"), "{error}");
    assert!(error.contains("postgresql-client"), "{error}");
}

#[test]
fn the_next_drill_drops_the_database_of_an_interrupted_one() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-crash";
    pg.create_shop("pg_crash", 100);
    env.write_plan("pg.toml", &pg_plan(&env, plan, &pg.url("pg_crash"), ""));
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{backup}");
    // A drill that died mid-restore: its row says running, its scratch
    // database exists.
    env.sql(&format!(
            "INSERT INTO drills (plan, region, trigger, status, started_at, rto_objective_ms, rpo_objective_ms)
             VALUES ('{plan}', 'dr', 'manual', 'running', {}, 600000, 3600000)",
        now_ms()
    ));
    let stale: i64 = env.sql("SELECT max(id) FROM drills").parse().unwrap();
    let stale_db = format!("lifeboat_drill_{stale}_pg_crash_db");
    pg.admin_sql(
        "postgres",
        &format!("CREATE DATABASE {stale_db} OWNER lifeboat"),
    );
    assert_eq!(pg.scratch_databases(plan), vec![stale_db.clone()]);

    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{drill}");
    assert!(
        pg.scratch_databases(plan).is_empty(),
        "the interrupted drill's database is dropped"
    );
    let (drills, _) = json_pg(
        &env,
        &["drills", "list", "--plan", plan, "--json"],
        PASSWORD,
    );
    let old = drills
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == stale)
        .expect("the interrupted drill is listed");
    assert_eq!(old["passed"], false);
}

#[test]
fn a_failing_pg_restore_is_reported_and_its_database_dropped() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-corrupt";
    pg.create_shop("pg_corrupt", 5000);
    // The custom format (the default): one compressed file that the
    // manifest describes as a whole, so a damage made to agree with it
    // reaches pg_restore.
    env.write_plan("pg.toml", &pg_plan(&env, plan, &pg.url("pg_corrupt"), ""));
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{backup}");
    // Damage the dr copy's compressed table data, then make the manifest
    // and the catalog agree with the damage: only pg_restore can notice.
    let copy = backup["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["region"] == "dr")
        .unwrap();
    let artifact = copy["location"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_string();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let at = bytes.len() * 6 / 10;
    for b in &mut bytes[at..at + 256] {
        *b = !*b;
    }
    std::fs::write(&artifact, &bytes).unwrap();
    // The download notices first: the dump no longer matches its
    // manifest. The scratch database, made while the dump downloaded, is
    // dropped with the failed restore (and the point marked damaged: the
    // catalog is made to agree below).
    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 1, "{drill}");
    let detail = check(&drill, "restore")["detail"].as_str().unwrap();
    assert!(detail.contains("does not match the manifest"), "{detail}");
    assert!(
        pg.scratch_databases(plan).is_empty(),
        "the scratch database of a dump that failed its check is dropped"
    );
    agree_with_the_artifact(&env, copy, &artifact);

    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 1, "{drill}");
    let restore = check(&drill, "restore");
    assert_eq!(restore["passed"], false);
    let detail = restore["detail"].as_str().unwrap();
    assert!(detail.contains("pg_restore"), "{detail}");
    assert!(detail.contains("failed"), "{detail}");
    assert!(
        pg.scratch_databases(plan).is_empty(),
        "a failed restore's database is dropped"
    );
}

#[test]
fn a_damaged_file_of_a_directory_dump_fails_the_drill_even_with_a_matching_checksum() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-dir-damage";
    pg.create_shop("pg_dir_damage", 40_000);
    let text = pg_plan(&env, plan, &pg.url("pg_dir_damage"), "").replace(
        "kind = \"postgres\"\n",
        "kind = \"postgres\"\ndump_format = \"directory\"\n",
    );
    env.write_plan("pg.toml", &text);
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{backup}");
    let copy = backup["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["region"] == "dr")
        .unwrap()
        .clone();
    let artifact = copy["location"].as_str().unwrap()["file://".len()..].to_string();
    // Change one byte inside the frame of the largest table's file, and
    // give the artifact's new SHA-256 to the manifest and the catalog:
    // only the frame's own check and the file's SHA-256 still tell, as the
    // files are extracted, before pg_restore runs.
    let manifest_path = artifact.replace(".pgdump", ".manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let largest = manifest["postgres"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|f| f["size"].as_u64().unwrap())
        .unwrap()
        .clone();
    let name = largest["name"].as_str().unwrap();
    assert!(
        largest["size"].as_u64().unwrap() >= 1 << 20,
        "{largest}: compressed on several threads"
    );
    let mut damaged = std::fs::read(&artifact).unwrap();
    let at = largest["offset"].as_u64().unwrap() + largest["length"].as_u64().unwrap() / 2;
    damaged[at as usize] ^= 0x20;
    std::fs::write(&artifact, &damaged).unwrap();
    agree_with_the_artifact(&env, &copy, &artifact);

    let (drill, code) = json_pg(&env, &["drill", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 1, "{drill}");
    let restore = check(&drill, "restore");
    assert_eq!(restore["passed"], false, "{drill}");
    let detail = restore["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("the dump's file {name}: ")),
        "{detail}"
    );
    assert!(
        !detail.contains("pg_restore"),
        "caught before pg_restore: {detail}"
    );
    assert!(
        pg.scratch_databases(plan).is_empty(),
        "the scratch database of a failed restore is dropped"
    );
}

/// Makes the manifest beside `artifact` and the catalog's row of point
/// `point` agree with the artifact's bytes as they now are (its SHA-256
/// and size; the dump's own for a custom dump), the point complete again:
/// only what checks inside the artifact can still tell a damage.
fn agree_with_the_artifact(env: &Env, point: &Value, artifact: &str) {
    use sha2::Digest;
    let bytes = std::fs::read(artifact).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let manifest_path = artifact.replace(".pgdump", ".manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["artifact"]["sha256"] = sha.clone().into();
    manifest["artifact"]["size"] = bytes.len().into();
    if manifest["database"].is_object() {
        manifest["database"]["sha256"] = sha.clone().into();
    }
    let manifest = serde_json::to_vec(&manifest).unwrap();
    std::fs::write(&manifest_path, &manifest).unwrap();
    let manifest_sha = hex::encode(sha2::Sha256::digest(&manifest));
    env.sql(&format!(
        "UPDATE points SET sha256 = '{sha}', manifest_sha256 = '{manifest_sha}', size_bytes = {},
                status = 'complete', damaged_at = NULL, damage = NULL WHERE id = {}",
        bytes.len(),
        point["id"]
    ));
}

/// Databases on the test server whose name starts with `prefix`.
fn databases_like(pg: &pg::PgServer, prefix: &str) -> Vec<String> {
    pg.admin_sql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
        .lines()
        .filter(|d| d.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

#[test]
fn restore_puts_a_database_back_under_a_new_name_and_renames_an_old_one_aside() {
    let pg = server();
    let env = Env::new();
    let plan = "pg-restore";
    pg.create_shop("pg_restore_src", 1000);
    // A check that fails on this data: a restore that fails its checks
    // puts nothing in place.
    let checks = r#"
[[drill.checks]]
name = "too-many-orders"
resource = "db"
sql = "SELECT count(*) FROM orders"
expect = 5
"#;
    env.write_plan(
        "pg.toml",
        &pg_plan(&env, plan, &pg.url("pg_restore_src"), checks),
    );
    let (backup, code) = json_pg(&env, &["backup", "run", plan, "--json"], PASSWORD);
    assert_eq!(code, 0, "{backup}");
    for db in databases_like(pg, "pg_restored") {
        pg.admin_sql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }

    let (failed, code) = json_pg(
        &env,
        &["restore", plan, "--to-db", "pg_restored", "--json"],
        PASSWORD,
    );
    assert_eq!(code, 1, "{failed:#}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("too-many-orders"),
        "{failed:#}"
    );
    assert!(
        databases_like(pg, "pg_restored").is_empty(),
        "nothing put in place"
    );
    assert!(
        databases_like(pg, "lifeboat_restore_").is_empty(),
        "staging dropped"
    );

    let (done, code) = json_pg(
        &env,
        &[
            "restore",
            plan,
            "--to-db",
            "pg_restored",
            "--no-checks",
            "--json",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{done:#}");
    assert_eq!(pg.sql("pg_restored", "SELECT count(*) FROM orders"), "1000");
    assert_eq!(
        pg.sql("pg_restored", "SELECT last_value FROM invoice_numbers"),
        "1234"
    );
    assert!(databases_like(pg, "lifeboat_restore_").is_empty());

    // An existing database is refused, then renamed aside with --overwrite.
    let out = run_pg(
        &env,
        &["restore", plan, "--to-db", "pg_restored", "--no-checks"],
        PASSWORD,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("database pg_restored exists"),
        "{}",
        stderr(&out)
    );
    pg.sql("pg_restored", "DELETE FROM orders WHERE id > 10");
    let (over, code) = json_pg(
        &env,
        &[
            "restore",
            plan,
            "--to-db",
            "pg_restored",
            "--no-checks",
            "--overwrite",
            "--json",
        ],
        PASSWORD,
    );
    assert_eq!(code, 0, "{over:#}");
    assert_eq!(pg.sql("pg_restored", "SELECT count(*) FROM orders"), "1000");
    let aside = databases_like(pg, "pg_restored_replaced_");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(pg.sql(&aside[0], "SELECT count(*) FROM orders"), "10");
    let detail = over["resources"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&aside[0]),
        "the output names where the old one went: {detail}"
    );
    for db in databases_like(pg, "pg_restored") {
        pg.admin_sql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
    }
}
