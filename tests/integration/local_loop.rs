//! The whole loop on local vaults: backup → copy → drill → report.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn points_of(v: &Value) -> &Vec<Value> {
    v["points"].as_array().expect("points array")
}

#[test]
fn full_loop_with_both_kinds_and_two_regions() {
    let env = Env::new();
    env.seed(500);
    env.write_plan("shop.toml", &env.local_plan(""));

    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    assert_eq!(backup["status"], "succeeded");
    let points = points_of(&backup);
    assert_eq!(
        points.len(),
        4,
        "a point per resource in each of two regions"
    );
    for p in points {
        assert_eq!(p["status"], "complete", "{p}");
        for key in [
            "id",
            "plan",
            "resource",
            "kind",
            "region",
            "data_time",
            "completed_at",
            "size_bytes",
            "location",
            "source_point_id",
            "flags",
        ] {
            assert!(p.get(key).is_some(), "point JSON lacks {key}: {p}");
        }
    }
    let primary: Vec<&Value> = points.iter().filter(|p| p["region"] == "primary").collect();
    let dr: Vec<&Value> = points.iter().filter(|p| p["region"] == "dr").collect();
    assert_eq!((primary.len(), dr.len()), (2, 2));
    for copy in &dr {
        let source = primary
            .iter()
            .find(|p| p["id"] == copy["source_point_id"])
            .expect("a copy names its source");
        assert_eq!(
            copy["data_time"], source["data_time"],
            "a copy keeps its source's data_time"
        );
        assert!(ms(&copy["completed_at"]) >= ms(&source["completed_at"]));
        assert!(copy["location"].as_str().unwrap().contains("/vaults/dr/"));
    }
    // The excluded file is not in the archive; the manifest counts 31 files.
    let files_point = primary.iter().find(|p| p["resource"] == "files").unwrap();
    assert_eq!(files_point["file_count"], 31);

    // Drill from dr, keeping the data so the test can compare it.
    let (drill, code) = env.json(&["drill", "run", "shop", "--keep", "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["passed"], true);
    assert_eq!(drill["region"], "dr");
    assert_eq!(drill["met_rto"], true);
    assert_eq!(drill["met_rpo"], true);
    let mut restored: Vec<i64> = drill["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    restored.sort();
    let mut dr_ids: Vec<i64> = dr.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    dr_ids.sort();
    assert_eq!(restored, dr_ids, "the drill restores the dr copies");
    let names: Vec<&str> = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["restore", "restore", "integrity_check", "orders-present"]
    );
    for phase in [
        "choose_seconds",
        "restore_seconds",
        "checks_seconds",
        "cleanup_seconds",
    ] {
        assert!(
            drill["phases"][phase].as_f64().is_some(),
            "phase {phase} missing: {drill}"
        );
    }

    // What came back is what was backed up, byte for byte.
    let kept = std::path::PathBuf::from(drill["kept_path"].as_str().expect("kept path"));
    let restored_files = kept.join("files");
    let mut expected = files_under(&env.path("data/files"));
    expected.retain(|f| !f.ends_with(".tmp"));
    assert_eq!(files_under(&restored_files), expected);
    for f in &expected {
        let a = std::fs::read(env.path("data/files").join(f)).unwrap();
        let b = std::fs::read(restored_files.join(f)).unwrap();
        assert!(a == b, "{f} differs after restore");
    }
    assert_eq!(
        std::fs::read_link(restored_files.join("link-to-01")).unwrap(),
        std::path::PathBuf::from("nested/file-01.txt")
    );
    assert_eq!(
        sqlite(&kept.join("db/restored.db"), "SELECT count(*) FROM orders"),
        "500"
    );

    // Listing, status and the report agree.
    let (list, code) = env.json(&[
        "points", "list", "--plan", "shop", "--region", "dr", "--json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (drills, _) = env.json(&["drills", "list", "--json"]);
    assert_eq!(drills.as_array().unwrap().len(), 1);
    let (status, code) = env.json(&["status", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(status[0]["regions"][1]["region"], "dr");
    assert_eq!(status[0]["regions"][1]["within_rpo"], true);
    assert_eq!(status[0]["last_drill"]["passed"], true);
    let (report, code) = env.json(&["report", "--format", "json", "--fail-on-breach"]);
    assert_eq!(code, 0, "{report}");
    let plan = &report["plans"][0];
    assert_eq!(plan["name"], "shop");
    assert_eq!(plan["compliant"], true, "{plan}");
    assert_eq!(plan["drills"]["count"], 1);
    assert_eq!(plan["drills"]["passed"], 1);
    assert_eq!(plan["backups"]["runs"], 1);
    assert_eq!(plan["regions"].as_array().unwrap().len(), 2);
    assert!(plan["verified"]["worst_exposure_seconds"]
        .as_f64()
        .is_some());
    let md = stdout(&env.run(&["report"]));
    assert!(
        md.contains("| shop | sre@example.com | ✅ compliant"),
        "{md}"
    );
}

#[test]
fn rto_and_rpo_match_times_the_test_measured() {
    let env = Env::new();
    env.seed(50);
    env.write_plan("shop.toml", &env.local_plan(""));
    let t0 = now_ms();
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    let t1 = now_ms();
    assert_eq!(code, 0, "{backup}");
    std::thread::sleep(Duration::from_millis(1500));
    let d0 = now_ms();
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    let d1 = now_ms();
    assert_eq!(code, 0, "{drill}");

    let started = ms(&drill["started_at"]);
    assert!((d0..=d1).contains(&started));
    // RPO = drill start − data_time of the restored point (the worst resource).
    let rpo_ms = (drill["rpo_seconds"].as_f64().unwrap() * 1000.0).round() as i64;
    assert!(
        rpo_ms >= d0 - t1 && rpo_ms <= d1 - t0,
        "rpo {rpo_ms} outside [{}, {}]",
        d0 - t1,
        d1 - t0
    );
    assert!(rpo_ms >= 1500);
    let restored: Vec<&Value> = points_of(&backup)
        .iter()
        .filter(|p| drill["points"].as_array().unwrap().contains(&p["id"]))
        .collect();
    let oldest = restored.iter().map(|p| ms(&p["data_time"])).min().unwrap();
    assert_eq!(
        rpo_ms,
        started - oldest,
        "RPO is exactly drill start − oldest data_time"
    );
    for p in &restored {
        assert!((t0..=t1).contains(&ms(&p["data_time"])));
    }
    // RTO = time all checks passed − drill start: positive, within the command's run.
    let rto_ms = (drill["rto_seconds"].as_f64().unwrap() * 1000.0).round() as i64;
    assert!(
        rto_ms > 0 && rto_ms <= d1 - d0,
        "rto {rto_ms} vs command {}",
        d1 - d0
    );
    let finished = ms(&drill["finished_at"]);
    assert!(started + rto_ms <= finished);
    assert_eq!(drill["rto_objective_seconds"], 600.0);
    assert_eq!(drill["rpo_objective_seconds"], 3600.0);
}

#[test]
fn a_corrupted_artifact_fails_the_drill_and_names_the_file() {
    let env = Env::new();
    env.seed(50);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (backup, _) = env.json(&["backup", "run", "shop", "--json"]);
    let artifact = points_of(&backup)
        .iter()
        .find(|p| p["region"] == "dr" && p["resource"] == "files")
        .map(|p| {
            p["location"]
                .as_str()
                .unwrap()
                .trim_start_matches("file://")
                .to_string()
        })
        .unwrap();
    let mut bytes = std::fs::read(&artifact).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xA5;
    }
    std::fs::write(&artifact, bytes).unwrap();

    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    assert_eq!(drill["passed"], false);
    assert!(drill["rto_seconds"].is_null(), "a failed drill has no RTO");
    let failed: Vec<&Value> = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{drill}");
    assert_eq!(failed[0]["resource"], "files");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&artifact),
        "the message names the file: {detail}"
    );
    // Cleaned up even though it failed.
    assert!(files_under(&env.path("work/drills")).is_empty());
}

#[test]
fn a_failing_sql_check_fails_the_drill() {
    let env = Env::new();
    env.seed(10);
    let extra = r#"
[[drill.checks]]
name = "enough-orders"
resource = "db"
sql = "SELECT count(*) >= 1000000 FROM orders"
"#;
    env.write_plan("shop.toml", &env.local_plan(extra));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(drill["passed"], false);
    assert_eq!(drill["met_rto"], false);
    // What was measured still compares truthfully with its objective.
    assert_eq!(drill["rpo_within_objective"], true, "{drill}");
    assert!(drill["rto_within_objective"].is_null(), "{drill}");
    let check = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "enough-orders")
        .unwrap();
    assert_eq!(check["passed"], false);
    assert_eq!(check["detail"], "returned 0, which is not true");
    assert!(check["seconds"].as_f64().is_some());
    // The other checks still ran and passed.
    let ok = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == true)
        .count();
    assert_eq!(ok, 4);
    // Human output says FAILED and exit is 1 as well.
    let out = env.run(&["drill", "run", "shop"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAILED"), "{text}");
    // Its RPO is well within the objective and says so; a failed drill
    // has no RTO; nothing is called MISSED.
    assert!(
        text.contains("(objective 1h, met)")
            && text.contains("RTO — (objective 10m, not measured)")
            && !text.contains("MISSED"),
        "{text}"
    );
    let (report, code) = env.json(&["report", "--format", "json", "--fail-on-breach"]);
    assert_eq!(code, 1, "a failed last drill is a breach");
    assert_eq!(report["plans"][0]["compliant"], false);
}

#[test]
fn a_drill_without_points_fails_clearly() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    // Without a catalog there is nothing to drill: bad input, and no
    // catalog is made up.
    let out = env.run(&["drill", "run", "shop", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!env.catalog_exists());
    // A catalog whose only backup failed: no point to restore.
    std::fs::remove_dir_all(env.path("data")).unwrap();
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(1));
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(drill["passed"], false);
    let detail = drill["checks"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("no complete point of `files` in region `dr`"),
        "{detail}"
    );
}

#[test]
fn point_selection_latest_oldest_and_pinned() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (first, _) = env.json(&["backup", "run", "shop", "--json"]);
    let (second, _) = env.json(&["backup", "run", "shop", "--json"]);
    let dr_ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = points_of(v)
            .iter()
            .filter(|p| p["region"] == "dr")
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let ids_of = |d: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = d["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let (latest, _) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(ids_of(&latest), dr_ids(&second));
    let (oldest, code) = env.json(&["drill", "run", "shop", "--point", "oldest", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(ids_of(&oldest), dr_ids(&first));
    let pinned_id = dr_ids(&first)[0];
    let (pinned, code) = env.json(&[
        "drill",
        "run",
        "shop",
        "--point",
        &pinned_id.to_string(),
        "--json",
    ]);
    assert_eq!(code, 0);
    // A pinned point brings the rest of its backup run: one moment.
    assert_eq!(ids_of(&pinned), dr_ids(&first));
    // A primary point cannot be drilled from dr; an unknown point is bad input.
    let primary_id = points_of(&first)
        .iter()
        .find(|p| p["region"] == "primary")
        .unwrap()["id"]
        .to_string();
    let out = env.run(&["drill", "run", "shop", "--point", &primary_id]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = env.run(&["drill", "run", "shop", "--point", "4242"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no point 4242"));
    // isolate_primary forbids drilling the primary region.
    let out = env.run(&["drill", "run", "shop", "--region", "primary"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("isolate_primary"));
}

#[test]
fn a_suspiciously_small_point_is_completed_but_flagged() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    // Ransomware-like: most files gone.
    std::fs::remove_dir_all(env.path("data/files/nested")).unwrap();
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "a shrunk point is still a complete point");
    let flagged: Vec<&Value> = points_of(&backup)
        .iter()
        .filter(|p| p["flags"].as_array().unwrap().iter().any(|f| f == "shrunk"))
        .collect();
    assert_eq!(
        flagged.len(),
        2,
        "flagged in primary and on its copy: {backup}"
    );
    assert!(flagged
        .iter()
        .all(|p| p["resource"] == "files" && p["status"] == "complete"));
    let (status, _) = env.json(&["status", "--json"]);
    assert_eq!(status[0]["regions"][0]["flags"][0], "files: shrunk");
    let (report, _) = env.json(&["report", "--format", "json"]);
    assert_eq!(
        report["plans"][0]["flagged_points"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let text = stdout(&env.run(&["status"]));
    assert!(text.contains("files: shrunk"), "{text}");
}

#[test]
fn a_missing_source_fails_the_point_and_the_run_is_recorded() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    std::fs::remove_file(env.path("data/app.db")).unwrap();
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(backup["status"], "partial");
    let failed = points_of(&backup)
        .iter()
        .find(|p| p["status"] == "failed")
        .expect("a failed point");
    assert_eq!(failed["resource"], "db");
    assert!(
        failed["error"].as_str().unwrap().contains("does not exist"),
        "{failed}"
    );
    // Failed points are never listed as usable, but --all shows them.
    let (complete, _) = env.json(&["points", "list", "--json"]);
    assert!(complete
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "complete"));
    let (all, _) = env.json(&["points", "list", "--all", "--json"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["status"] == "failed"));
    let (report, _) = env.json(&["report", "--format", "json"]);
    assert_eq!(report["plans"][0]["backups"]["failed"], 1);
}

#[test]
fn prune_deletes_what_retention_drops_in_every_region() {
    let env = Env::new();
    env.seed(10);
    let plan = env.local_plan("").replace(
        "[regions.primary]",
        "[retention]\nkeep_last = 1\n\n[regions.primary]",
    );
    env.write_plan("shop.toml", &plan);
    let (first, _) = env.json(&["backup", "run", "shop", "--json"]);
    env.json(&["backup", "run", "shop", "--json"]);
    let dry = env.run(&["prune", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0));
    assert_eq!(
        stdout(&dry).matches("would delete").count(),
        4,
        "{}",
        stdout(&dry)
    );
    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for p in points_of(&first) {
        let loc = p["location"]
            .as_str()
            .unwrap()
            .trim_start_matches("file://");
        assert!(
            !std::path::Path::new(loc).exists(),
            "{loc} should be deleted"
        );
    }
    let (left, _) = env.json(&["points", "list", "--json"]);
    assert_eq!(left.as_array().unwrap().len(), 4);
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
}

#[test]
fn only_one_drill_of_a_plan_runs_at_a_time() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    // Hold the plan's drill lease as a running drill of another host would.
    let now = now_ms();
    env.sql(&format!(
            "INSERT INTO leases (plan, kind, owner, pid, host, node, acquired_at, heartbeat_at, expires_at)
             VALUES ('shop', 'drill', 'theirs', 4242, 'db-2', 'db-2', {now}, {now}, {})",
            now + 60_000
        ),
    );
    let out = env.run(&["drill", "run", "shop"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a drill of plan `shop` is already running"),
        "{}",
        stderr(&out)
    );
    env.sql("DELETE FROM leases");
    assert_eq!(env.run(&["drill", "run", "shop"]).status.code(), Some(0));
}

#[test]
fn relative_plan_paths_resolve_the_same_from_any_folder() {
    let env = Env::new();
    env.seed(10);
    // Vaults and data relative to the plan file.
    let plan = env
        .local_plan("")
        .replace(&env.path("data").display().to_string(), "../data")
        .replace(&env.path("vaults").display().to_string(), "../vaults");
    env.write_plan("shop.toml", &plan);
    let out = std::process::Command::new(BIN)
        .current_dir(env.path(""))
        .args([
            "--catalog",
            "lifeboat.db",
            "--plans",
            "plans",
            "--work-dir",
            "work",
            "backup",
            "run",
            "shop",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let backup: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let location = backup["points"][0]["location"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        location.starts_with(&format!(
            "file://{}",
            env.path("vaults").canonicalize().unwrap().display()
        )),
        "{location}"
    );
    // Another working folder, absolute --plans: the drill finds the points.
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
}
