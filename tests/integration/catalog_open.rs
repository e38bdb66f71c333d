//! Which commands may create a catalog, and what is refused at open: a
//! missing catalog for the commands that only use one, an empty file, a
//! file that is not SQLite, another program's database, a damaged
//! catalog. Refused files are left byte for byte as they were.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

/// Runs lifeboat on the catalog at `catalog`.
fn run_on(env: &Env, catalog: &Path, args: &[&str]) -> Output {
    env.command_on(catalog, args)
        .output()
        .expect("run lifeboat")
}

/// Every command that needs an existing catalog.
const USERS: &[&[&str]] = &[
    &["status"],
    &["status", "--json"],
    &["report"],
    &["report", "--format", "json"],
    &["points", "list"],
    &["drills", "list"],
    &["drill", "run", "shop"],
    &["prune"],
    &["prune", "shop", "--dry-run"],
];

fn env_with_plan() -> Env {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    env
}

/// The files in `dir` (a refused open must not leave -wal or -shm files).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_command_that_only_uses_a_catalog_never_creates_one() {
    let env = env_with_plan();
    // A typo in --catalog: neither the file nor its folder appear.
    let missing: PathBuf = env.path("typo/lifeboat.db");
    for args in USERS {
        let out = run_on(&env, &missing, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("catalog {} does not exist", missing.display()))
                && err.contains("backup run"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!env.path("typo").exists(), "{args:?} created the folder");
    }
    // `backup run` starts one, after which the others work.
    let catalog = env.path("new/lifeboat.db");
    let out = run_on(&env, &catalog, &["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(catalog.is_file());
    let out = run_on(&env, &catalog, &["points", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let points: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 4, "{points}");
}

#[test]
fn an_empty_a_text_or_a_foreign_file_is_refused_and_left_as_it_was() {
    let env = env_with_plan();
    let empty = env.path("empty/lifeboat.db");
    std::fs::create_dir_all(empty.parent().unwrap()).unwrap();
    std::fs::write(&empty, b"").unwrap();
    let text = env.path("text/lifeboat.db");
    std::fs::create_dir_all(text.parent().unwrap()).unwrap();
    std::fs::write(&text, "plans = here\n".repeat(100)).unwrap();
    // Another program's database, made by the sqlite3 tool.
    let foreign = env.path("foreign/lifeboat.db");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    sqlite(
        &foreign,
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts VALUES (1, 'a');",
    );
    // And one that marks itself as another application's.
    let marked = env.path("marked/lifeboat.db");
    std::fs::create_dir_all(marked.parent().unwrap()).unwrap();
    sqlite(&marked, "PRAGMA application_id = 42; CREATE TABLE t (x);");
    let cases = [
        (&empty, "is an empty file"),
        (&text, "is not a SQLite database"),
        (
            &foreign,
            "not a Lifeboat catalog (it has no Lifeboat migrations)",
        ),
        (&marked, "application_id is 0x0000002a"),
    ];
    for (path, expected) in cases {
        let before = std::fs::read(path).unwrap();
        let files = names_in(path.parent().unwrap());
        // The commands that create a catalog refuse too.
        for args in [&["backup", "run", "shop"][..], &["status"], &["report"]] {
            let out = run_on(&env, path, args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {expected}: {err}");
            assert!(
                err.contains(&path.display().to_string()) && err.contains(expected),
                "{args:?}: {err}"
            );
            assert_eq!(std::fs::read(path).unwrap(), before, "{args:?} changed it");
            assert_eq!(names_in(path.parent().unwrap()), files, "{args:?}");
        }
    }
    assert!(
        !env.path("vaults/primary/shop").exists(),
        "a refused backup wrote data"
    );
}

#[test]
fn a_catalog_with_a_damaged_page_is_refused_by_a_full_check() {
    let env = env_with_plan();
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Enough rows that the middle of the file is a table's page.
    let catalog = env.path("lifeboat.db");
    sqlite(
        &catalog,
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
         INSERT INTO backup_runs (plan, trigger, started_at, status, error)
         SELECT 'old', 'schedule', i, 'failed', printf('error %d of a long-gone plan', i) FROM s;
         PRAGMA wal_checkpoint(TRUNCATE);",
    );
    let len = std::fs::metadata(&catalog).unwrap().len();
    assert!(len > 400_000, "{len}");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&catalog)
            .unwrap();
        f.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
        f.write_all(&pseudo_random(4096, 3)).unwrap();
    }
    for args in [
        &["prune"][..],
        &["drill", "run", "shop"],
        &["backup", "run", "shop"],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("catalog {} is damaged", catalog.display()))
                && err.contains("SQLite says")
                && err.contains("catalog rebuild"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_catalog_path_may_hold_question_marks_and_percents() {
    let env = env_with_plan();
    let catalog = env.path("odd?mode=memory%20/cat?x=1%41.db");
    let out = run_on(&env, &catalog, &["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(catalog.is_file(), "{:?}", names_in(env.dir.path()));
    let out = run_on(&env, &catalog, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_on(&env, &catalog, &["points", "list", "--json"]);
    let points: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 4, "{points}");
    // Nothing was created under a name cut at the `?`.
    let names: Vec<String> = names_in(&env.path("odd?mode=memory%20"))
        .into_iter()
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(names, ["cat?x=1%41.db"]);
}

#[test]
fn a_half_made_catalog_a_killed_creator_left_is_removed_by_the_next_start() {
    let env = env_with_plan();
    let stale = env.path(".lifeboat.db.new-00000000deadbeef");
    let fresh = env.path(".lifeboat.db.new-00000000cafef00d");
    for f in [&stale, &fresh] {
        std::fs::write(f, b"half a catalog").unwrap();
    }
    // Killed an hour ago; the other is being created right now.
    let hour_ago = filetime::FileTime::from_system_time(
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    );
    filetime::set_file_mtime(&stale, hour_ago).unwrap();
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stale.exists(),
        "the stale half-made catalog is still there"
    );
    assert!(fresh.exists(), "a creator's file in use was removed");
}
