//! What crashed processes leave behind: partial uploads in `file://`
//! vaults, SQLite snapshot folders in the work folder, and vault artifacts
//! no usable point owns. `verify` lists them, `prune` removes them once
//! old enough (and never under `--dry-run`), and the artifacts of complete
//! points are never touched.

use std::path::Path;

use filetime::{set_file_mtime, FileTime};

use crate::common::*;

/// Sets the modification time of `path` to `hours` ago.
fn age(path: &Path, hours: i64) {
    let then = chrono::Utc::now().timestamp() - hours * 3600;
    set_file_mtime(path, FileTime::from_unix_time(then, 0)).unwrap();
}

fn plant(path: &Path, bytes: &[u8], hours_old: i64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    age(path, hours_old);
}

/// A backed-up plan: `shop` with its points complete in both vaults.
fn backed_up() -> Env {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env
}

#[test]
fn prune_removes_old_temporaries_and_keeps_fresh_and_live_ones() {
    let env = backed_up();
    let files = env.path("vaults/primary/shop/files");
    let old_upload = files.join(".20260101T000000000Z-p9.tar.zst.tmp-00000000deadbeef");
    let fresh_upload = files.join(".20260101T000000000Z-p8.tar.zst.tmp-00000000cafebabe");
    plant(&old_upload, &pseudo_random(4096, 1), 2);
    plant(&fresh_upload, b"being written", 0);
    let tmp = env.path("work/tmp");
    // pid_max is at most 2^22: no process has this id.
    let dead = tmp.join("sqlite-snapshot-999999999-AbCdEf");
    let live = tmp.join(format!("sqlite-snapshot-{}-XyZabc", std::process::id()));
    let legacy_old = tmp.join("sqlite-snapshot-Qwerty");
    let legacy_fresh = tmp.join("sqlite-snapshot-Asdfgh");
    for (dir, hours) in [(&dead, 3), (&live, 3), (&legacy_old, 3), (&legacy_fresh, 0)] {
        plant(&dir.join("snapshot.db"), &pseudo_random(1000, 2), hours);
        age(dir, hours);
    }
    let complete_before = files_under(&env.path("vaults"));

    let out = env.run(&["prune", "shop", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "would remove partial upload {}",
            old_upload.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("would remove snapshot folder {}", dead.display())),
        "{text}"
    );
    for kept in [&old_upload, &fresh_upload, &dead.join("snapshot.db")] {
        assert!(kept.exists(), "a dry run removed {}", kept.display());
    }

    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("removed partial upload {}", old_upload.display())),
        "{text}"
    );
    assert!(!old_upload.exists());
    assert!(!dead.exists());
    assert!(!legacy_old.exists());
    assert!(fresh_upload.exists(), "a fresh upload may be live");
    assert!(live.exists(), "the snapshot of a live process is kept");
    assert!(legacy_fresh.exists(), "a fresh snapshot folder is kept");
    // Everything else in the vaults is as it was.
    let mut expected = complete_before;
    expected.retain(|f| !f.ends_with("deadbeef"));
    assert_eq!(files_under(&env.path("vaults")), expected);
}

#[test]
fn unowned_artifacts_are_listed_by_verify_and_removed_by_prune_after_the_grace() {
    let env = backed_up();
    let vault = env.path("vaults/primary");
    let files = vault.join("shop/files");
    // A backup that died between artifact and manifest, long ago and now.
    let orphan = files.join("20250101T000000000Z-p999.tar.zst");
    let young = files.join("20250101T000000000Z-p998.tar.zst");
    plant(&orphan, &pseudo_random(2048, 3), 48);
    plant(&young, &pseudo_random(2048, 4), 1);
    // A whole point this catalog has no row for: listed, never removed.
    let unrecorded = files.join("20250101T000000000Z-p997.tar.zst");
    let unrecorded_manifest = files.join("20250101T000000000Z-p997.manifest.json");
    plant(&unrecorded, &pseudo_random(2048, 5), 48);
    plant(&unrecorded_manifest, b"{}", 48);
    // A point whose row never reached complete: its backup failed.
    let catalog = env.path("lifeboat.db");
    let stored = sqlite(
        &catalog,
        "SELECT json_extract(stored, '$.artifact.key') FROM points
         WHERE resource = 'db' AND region = 'primary' ORDER BY id LIMIT 1",
    );
    assert!(stored.starts_with("shop/db/"), "{stored}");
    sqlite(
        &catalog,
        &format!(
            "UPDATE points SET status = 'failed', completed_at = NULL
             WHERE json_extract(stored, '$.artifact.key') = '{stored}' AND region = 'primary'"
        ),
    );
    let failed_artifact = vault.join(&stored);
    let failed_manifest = vault.join(stored.replace(".sqlite.zst", ".manifest.json"));
    age(&failed_artifact, 48);
    age(&failed_manifest, 48);
    let before = files_under(&env.path("vaults"));

    let (json, code) = env.json(&["verify", "shop", "--json"]);
    assert_eq!(code, 0, "{json}");
    let leftovers = json["leftovers"].as_array().expect("leftovers listed");
    let listed = |kind: &str| -> Vec<String> {
        leftovers
            .iter()
            .filter(|l| l["kind"] == kind)
            .map(|l| l["location"].as_str().unwrap().to_string())
            .collect()
    };
    let base = |p: &Path| {
        let s = p.display().to_string();
        format!(
            "file://{}",
            s.trim_end_matches(".tar.zst")
                .trim_end_matches(".sqlite.zst")
        )
    };
    let mut unowned = listed("unowned");
    unowned.sort();
    let mut expected = vec![base(&orphan), base(&failed_artifact)];
    expected.sort();
    assert_eq!(unowned, expected, "{json}");
    assert_eq!(listed("unrecorded"), vec![base(&unrecorded)], "{json}");
    let failed = leftovers
        .iter()
        .find(|l| l["location"] == base(&failed_artifact).as_str())
        .unwrap();
    assert_eq!(failed["objects"], 2, "artifact and manifest: {failed}");
    assert_eq!(failed["region"], "primary");
    let out = env.run(&["verify", "shop"]);
    assert!(
        stdout(&out).contains(&format!("unowned {} in primary", base(&orphan))),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        files_under(&env.path("vaults")),
        before,
        "verify removed something"
    );

    let out = env.run(&["prune", "shop", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("would remove unowned {}", base(&orphan))));
    assert_eq!(
        files_under(&env.path("vaults")),
        before,
        "a dry run removed something"
    );

    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("removed unowned {}", base(&orphan))),
        "{text}"
    );
    for gone in [&orphan, &failed_artifact, &failed_manifest] {
        assert!(!gone.exists(), "{} was kept", gone.display());
    }
    for kept in [&young, &unrecorded, &unrecorded_manifest] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    // The complete points' artifacts are all still there.
    let gone: Vec<String> = [&orphan, &failed_artifact, &failed_manifest]
        .iter()
        .map(|p| {
            p.strip_prefix(env.path("vaults"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    let mut expected = before;
    expected.retain(|f| !gone.contains(f));
    assert_eq!(files_under(&env.path("vaults")), expected);
    let (json, code) = env.json(&["verify", "shop", "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["summary"]["damaged"], 0, "{json}");

    // A shorter grace takes the young one too.
    let out = env.run(&["prune", "shop", "--unowned-grace", "30m"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!young.exists());
    assert!(unrecorded.exists());
}

#[test]
fn the_daemon_removes_old_temporaries_when_it_starts() {
    use crate::daemon::{wait_for, Daemon};
    use std::time::Duration;
    let env = Env::new();
    env.seed(5);
    // Backups every 15 minutes: none runs while the test looks.
    env.write_plan("shop.toml", &env.local_plan(""));
    let files = env.path("vaults/dr/shop/db");
    let old_upload = files.join(".20260101T000000000Z-p3.sqlite.zst.tmp-0000000000c0ffee");
    let fresh_upload = files.join(".20260101T000000000Z-p4.sqlite.zst.tmp-0000000000beef00");
    plant(&old_upload, &pseudo_random(1024, 6), 5);
    plant(&fresh_upload, b"being written", 0);
    let dead = env.path("work/tmp/sqlite-snapshot-999999998-Zxcvbn");
    plant(&dead.join("snapshot.db"), b"x", 5);
    age(&dead, 5);

    let daemon = Daemon::start(&env, &[]);
    wait_for("the old temporaries to go", Duration::from_secs(20), || {
        !old_upload.exists() && !dead.exists()
    });
    assert!(fresh_upload.exists(), "a fresh upload may be live");
    let (code, _) = daemon.stop();
    assert_eq!(code, 0);
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(
        log.contains("removed partial uploads and snapshot folders"),
        "{log}"
    );
}
