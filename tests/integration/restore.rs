//! `lifeboat restore`: points put back into targets the operator names,
//! verified and checked before anything is put in place.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Every entry under `dir` (relative name → kind, size, mode, mtime, link
/// target, contents hash), to compare a restored tree with its source.
fn tree(dir: &Path) -> Vec<String> {
    use sha2::Digest;
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let m = e.path().symlink_metadata().unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(e.path()).unwrap().display())
            } else if m.is_dir() {
                "dir".to_string()
            } else {
                hex::encode(sha2::Sha256::digest(std::fs::read(e.path()).unwrap()))
            };
            // Folder times change as entries are added: compared for files.
            let time = if m.is_dir() { 0 } else { m.mtime() };
            format!("{rel} {what} mode {:o} mtime {time}", m.mode())
        })
        .collect();
    v.sort();
    v
}

fn backed_up() -> Env {
    let env = Env::new();
    env.seed(50);
    // A mode the restore's own folders never get by default.
    std::fs::set_permissions(
        env.path("data/files"),
        std::os::unix::fs::PermissionsExt::from_mode(0o751),
    )
    .unwrap();
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env
}

fn restore_json(env: &Env, args: &[&str]) -> (Value, i32) {
    let mut all = vec!["restore", "shop", "--json"];
    all.extend_from_slice(args);
    env.json(&all)
}

#[test]
fn a_restore_puts_every_resource_back_exactly_and_is_recorded() {
    let env = backed_up();
    let to_files = env.path("restored/files");
    let to_db = env.path("restored/app.db");
    let (v, code) = restore_json(
        &env,
        &[
            "--to",
            &format!("files={}", to_files.display()),
            "--to",
            &format!("db={}", to_db.display()),
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["status"], "succeeded");
    // From the drill region by default; both points of one backup run.
    assert_eq!(v["region"], "dr");
    let resources = v["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2);
    assert!(resources.iter().all(|r| r["placed"] == true), "{v:#}");
    // The source minus what the plan excludes.
    let mut source = tree(&env.path("data/files"));
    source.retain(|e| !e.starts_with("scratch.tmp"));
    assert_eq!(tree(&to_files), source);
    // The folder itself too: its mode and time are the source folder's.
    let (a, b) = (
        env.path("data/files").metadata().unwrap(),
        to_files.metadata().unwrap(),
    );
    assert_eq!(
        (b.mode() & 0o7777, b.mtime(), b.mtime_nsec()),
        (a.mode() & 0o7777, a.mtime(), a.mtime_nsec())
    );
    assert_eq!(
        sqlite(&to_db, "SELECT count(*), sum(total) FROM orders"),
        "50|8925"
    );
    // The checks ran on the restored data, the plan's among them.
    let checks: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        checks.contains(&"restore")
            && checks.contains(&"integrity_check")
            && checks.contains(&"orders-present"),
        "{checks:?}"
    );
    // Nothing of the staging is left beside the targets.
    let beside: Vec<String> = std::fs::read_dir(env.path("restored"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside.len(), 2, "{beside:?}");

    let (listed, code) = env.json(&["restores", "list", "--plan", "shop", "--json"]);
    assert_eq!(code, 0);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "succeeded");
    assert_eq!(listed[0]["resources"].as_array().unwrap().len(), 2);
    assert!(listed[0]["by_whom"].as_str().unwrap().contains('@'));

    // The report tells stakeholders about it.
    let (report, _) = env.json(&["report", "--format", "json"]);
    let restores = report["plans"][0]["restores"]
        .as_array()
        .expect("restores in the report");
    assert_eq!(restores.len(), 1, "{report:#}");
    assert_eq!(restores[0]["status"], "succeeded");
    let md = stdout(&env.run(&["report", "--format", "md"]));
    assert!(
        md.contains("Restores:") && md.contains("files: point"),
        "{md}"
    );
}

#[test]
fn a_target_holding_data_is_refused_unless_overwrite_which_replaces_only_the_points_files() {
    let env = backed_up();
    let to = env.path("live");
    std::fs::create_dir_all(to.join("nested")).unwrap();
    std::fs::write(to.join("nested/file-03.txt"), "changed since").unwrap();
    std::fs::write(to.join("not-in-the-point.txt"), "mine").unwrap();
    let out = env.run(&[
        "restore",
        "shop",
        "--resource",
        "files",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(to.join("nested/file-03.txt")).unwrap(),
        "changed since"
    );

    let (v, code) = restore_json(
        &env,
        &[
            "--resource",
            "files",
            "--to",
            to.to_str().unwrap(),
            "--overwrite",
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        std::fs::read(to.join("nested/file-03.txt")).unwrap(),
        std::fs::read(env.path("data/files/nested/file-03.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(to.join("not-in-the-point.txt")).unwrap(),
        "mine"
    );
    let left: Vec<String> = std::fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("lifeboat"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut source = tree(&env.path("data/files"));
    source.retain(|e| !e.starts_with("scratch.tmp"));
    let mut restored = tree(&to);
    restored.retain(|e| !e.starts_with("not-in-the-point"));
    assert_eq!(restored, source);
}

#[test]
fn include_restores_only_what_it_picks() {
    let env = backed_up();
    let to = env.path("picked");
    let (v, code) = restore_json(
        &env,
        &[
            "--resource",
            "files",
            "--to",
            to.to_str().unwrap(),
            "--include",
            "nested/deeper",
            "--include",
            "link-*",
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(files_under(&to), ["link-to-01", "nested/deeper/big.bin"]);
    assert_eq!(
        std::fs::read(to.join("nested/deeper/big.bin")).unwrap(),
        std::fs::read(env.path("data/files/nested/deeper/big.bin")).unwrap()
    );
}

#[test]
fn at_chooses_the_moment_and_a_dry_run_says_so_without_doing_anything() {
    let env = backed_up();
    let (first, _) = env.json(&[
        "points", "list", "--plan", "shop", "--region", "dr", "--json",
    ]);
    let first_db = first
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "db")
        .unwrap()
        .clone();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let between = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sqlite(&env.path("data/app.db"), "DELETE FROM orders WHERE id > 10");
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let to_db = env.path("then.db");
    let (plan, code) = restore_json(
        &env,
        &[
            "--resource",
            "db",
            "--to",
            to_db.to_str().unwrap(),
            "--at",
            &between,
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{plan:#}");
    assert_eq!(plan["resources"][0]["point"], first_db["id"], "{plan:#}");
    assert!(!to_db.exists(), "a dry run writes nothing");
    let (listed, _) = env.json(&["restores", "list", "--json"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "a dry run records nothing"
    );

    let (v, code) = restore_json(
        &env,
        &[
            "--resource",
            "db",
            "--to",
            to_db.to_str().unwrap(),
            "--at",
            &between,
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(sqlite(&to_db, "SELECT count(*) FROM orders"), "50");
    // Latest: the second backup.
    let now_db = env.path("now.db");
    let (v, code) = restore_json(
        &env,
        &["--resource", "db", "--to", now_db.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(sqlite(&now_db, "SELECT count(*) FROM orders"), "10");
}

#[test]
fn the_primary_region_of_an_isolated_plan_can_be_restored_from() {
    let env = backed_up();
    // Drills may not use the primary of an isolate_primary plan; an
    // operator on the worst day may.
    let to = env.path("from-primary.db");
    let (v, code) = restore_json(
        &env,
        &[
            "--region",
            "primary",
            "--resource",
            "db",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["region"], "primary");
    assert_eq!(sqlite(&to, "SELECT count(*) FROM orders"), "50");
}

#[test]
fn a_corrupt_point_is_refused_and_nothing_is_put_in_place() {
    let env = backed_up();
    // Flip a byte in the middle of the dr region's files artifact.
    let artifact = walkdir::WalkDir::new(env.path("vaults/dr"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| {
            e.file_type().is_file()
                && e.path().to_string_lossy().contains("files")
                && e.path().extension().is_some_and(|x| x == "zst")
        })
        .expect("the files artifact")
        .into_path();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&artifact, bytes).unwrap();

    let to_files = env.path("out/files");
    let to_db = env.path("out/app.db");
    let (v, code) = restore_json(
        &env,
        &[
            "--to",
            &format!("files={}", to_files.display()),
            "--to",
            &format!("db={}", to_db.display()),
        ],
    );
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["status"], "failed");
    // Neither resource is put in place: a restore is one moment or nothing.
    assert!(!to_files.exists() && !to_db.exists());
    let left: Vec<String> = std::fs::read_dir(env.path("out"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    // The point was found corrupt: marked damaged.
    let (points, _) = env.json(&[
        "points", "list", "--plan", "shop", "--region", "dr", "--json",
    ]);
    let files = points
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "files")
        .unwrap();
    assert_eq!(files["status"], "damaged", "{files:#}");
}

#[test]
fn a_resource_without_a_target_is_bad_input() {
    let env = backed_up();
    let out = env.run(&["restore", "shop", "--to", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("several resources take --to"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["restore", "shop", "--resource", "db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("needs a target: --to FILE"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["restore", "shop", "--resource", "nosuch", "--to", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no resource `nosuch`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_restore_killed_midway_leaves_no_target_and_the_next_one_cleans_up_and_succeeds() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let env = Env::new();
    env.seed(10);
    // Enough data that the restore is still writing when it is killed.
    let big = env.path("data/files/big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..6 {
        std::fs::write(
            big.join(format!("blob-{i}.bin")),
            pseudo_random(32 << 20, i),
        )
        .unwrap();
    }
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let parent = env.path("restored");
    std::fs::create_dir_all(&parent).unwrap();
    let to = parent.join("files");
    let mut child = env
        .command(&[
            "restore",
            "shop",
            "--resource",
            "files",
            "--to",
            to.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let staging = loop {
        let found = std::fs::read_dir(&parent)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().contains("lifeboat-restore"))
            .map(|e| e.path());
        // Wait until the staged tree holds a part of the big files.
        if let Some(s) = found.filter(|s| s.join("big").is_dir()) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore finished before it could be killed; make the data bigger"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!to.exists(), "a killed restore puts nothing at the target");
    assert!(staging.exists());

    let (v, code) = restore_json(&env, &["--resource", "files", "--to", to.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        !staging.exists(),
        "the next restore removes what the killed one staged"
    );
    assert_eq!(
        std::fs::read(to.join("big/blob-5.bin")).unwrap(),
        std::fs::read(big.join("blob-5.bin")).unwrap()
    );
    let (listed, _) = env.json(&["restores", "list", "--json"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["status"], "failed");
    assert!(
        listed[1]["error"].as_str().unwrap().contains("interrupted"),
        "{:#}",
        listed[1]
    );
}

#[test]
fn a_command_check_runs_on_what_drills_and_restores_put_back() {
    let env = Env::new();
    env.seed(20);
    // The check script lives beside the plan, as an application team
    // would keep it; it sees the restored folder and says what it found.
    std::fs::write(
        env.plans().join("smoke.sh"),
        "#!/bin/sh\nset -e\necho \"checking $LIFEBOAT_PLAN/$LIFEBOAT_RESOURCE\"\ntest -f \"$LIFEBOAT_RESTORED_PATH/nested/file-01.txt\"\ncount=$(find \"$LIFEBOAT_RESTORED_PATH\" -type f | wc -l)\necho \"$count files\"\n[ \"$count\" -ge 30 ]\n",
    )
    .unwrap();
    let script = env.plans().join("smoke.sh");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = r#"
[[drill.checks]]
name = "smoke"
resource = "files"
command = ["./smoke.sh"]
timeout = "30s"
"#;
    env.write_plan("shop.toml", &env.local_plan(extra));
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill:#}");
    let smoke = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "smoke")
        .unwrap()
        .clone();
    assert_eq!(smoke["passed"], true);
    assert!(
        smoke["detail"]
            .as_str()
            .unwrap()
            .contains("checking shop/files"),
        "{smoke}"
    );

    let to = env.path("back");
    let (v, code) = restore_json(&env, &["--resource", "files", "--to", to.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "smoke" && c["passed"] == true),
        "{v:#}"
    );

    // A check that fails fails the restore: nothing is put in place.
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'orders table is empty' >&2\nexit 4\n",
    )
    .unwrap();
    let to = env.path("back2");
    let (v, code) = restore_json(&env, &["--resource", "files", "--to", to.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}");
    assert!(!to.exists());
    let smoke = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "smoke")
        .unwrap()
        .clone();
    assert_eq!(smoke["detail"], "exit 4: orders table is empty", "{smoke}");
    // --no-checks skips the plan's checks (the verification still runs).
    let (v, code) = restore_json(
        &env,
        &[
            "--resource",
            "files",
            "--to",
            to.to_str().unwrap(),
            "--no-checks",
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "smoke"),
        "{v:#}"
    );
}

/// Removes the catalog and the work folder, as when the host that ran
/// Lifeboat is lost.
fn lose_the_host(env: &Env) {
    env.lose_catalog();
    let _ = std::fs::remove_dir_all(env.path("lifeboat-work"));
    assert!(!env.catalog_exists());
}

#[test]
fn with_the_catalog_lost_a_restore_reads_what_to_restore_from_the_vault() {
    let env = backed_up();
    lose_the_host(&env);
    let to_files = env.path("restored/files");
    let to_db = env.path("restored/app.db");
    let targets = [
        "--to".to_string(),
        format!("files={}", to_files.display()),
        "--to".to_string(),
        format!("db={}", to_db.display()),
    ];
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();

    // A dry run reads the vault and changes nothing, not even the catalog.
    let mut args = vec!["--from-vault", "dr", "--dry-run"];
    args.extend(&targets);
    let (dry, code) = restore_json(&env, &args);
    assert_eq!(code, 0, "{dry:#}");
    assert_eq!(dry["region"], "dr");
    assert_eq!(dry["resources"].as_array().unwrap().len(), 2, "{dry:#}");
    assert!(!env.catalog_exists());
    assert!(!to_files.exists() && !to_db.exists());

    let mut args = vec!["--from-vault", "dr"];
    args.extend(&targets);
    let out = env.run(&[&["restore", "shop"][..], &args].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("read 2 point(s) of plan shop from the vault"),
        "{}",
        stdout(&out)
    );
    let mut source = tree(&env.path("data/files"));
    source.retain(|e| !e.starts_with("scratch.tmp"));
    assert_eq!(tree(&to_files), source);
    assert_eq!(sqlite(&to_db, "SELECT count(*) FROM orders"), "50");
    // The points it read and the restore are in the new catalog.
    let (listed, _) = env.json(&["restores", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["status"], "succeeded");

    // Read twice, the points would be recorded twice: refused (a dry run
    // says so too), and the message says what to do instead.
    for dry in [true, false] {
        let mut args = vec!["restore", "shop", "--from-vault", "dr", "--overwrite"];
        args.extend(&targets);
        if dry {
            args.push("--dry-run");
        }
        let again = env.run(&args);
        assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
        assert!(
            stderr(&again).contains("restore without --from-vault"),
            "{}",
            stderr(&again)
        );
    }
}

#[test]
fn a_vault_moved_elsewhere_is_restored_from_under_its_region() {
    let env = backed_up();
    lose_the_host(&env);
    // The dr vault, copied elsewhere; the original is gone.
    let moved = env.path("moved-vault");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(env.path("vaults/dr"))
        .arg(&moved)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(env.path("vaults/dr")).unwrap();
    let url = format!("file://{}", moved.display());
    let to = env.path("restored.db");
    let without_region = env.run(&["restore", "shop", "--from-vault", &url, "--resource", "db"]);
    assert_eq!(without_region.status.code(), Some(2));
    assert!(
        stderr(&without_region).contains("--region"),
        "{}",
        stderr(&without_region)
    );
    let (v, code) = restore_json(
        &env,
        &[
            "--from-vault",
            &url,
            "--region",
            "dr",
            "--resource",
            "db",
            "--to",
            to.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(sqlite(&to, "SELECT count(*) FROM orders"), "50");
}
