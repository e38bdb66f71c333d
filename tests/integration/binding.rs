//! A point's files in the vault are bound to the catalog's record of it:
//! the manifest names its point and the catalog holds the manifest's hash,
//! so another point's valid pair of files cannot pass a drill in its place.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// The `file://` artifact path of a point and its manifest's path.
fn files_of(point: &Value) -> (String, String) {
    let artifact = point["location"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://")
        .to_string();
    let base = artifact
        .strip_suffix(".tar.zst")
        .or_else(|| artifact.strip_suffix(".sqlite.zst"))
        .expect("a path or sqlite artifact");
    let manifest = format!("{base}.manifest.json");
    (artifact, manifest)
}

fn point<'a>(backup: &'a Value, region: &str, resource: &str) -> &'a Value {
    backup["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["region"] == region && p["resource"] == resource)
        .unwrap_or_else(|| panic!("no {resource} point in {region}: {backup}"))
}

#[test]
fn every_manifest_names_its_point_and_the_catalog_holds_its_hash() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let (points, _) = env.json(&["points", "list", "--plan", "shop", "--json"]);
    for resource in ["files", "db"] {
        let primary = point(&backup, "primary", resource);
        let copy = point(&backup, "dr", resource);
        for p in [primary, copy] {
            let (_, manifest) = files_of(p);
            let bytes = std::fs::read(&manifest).unwrap();
            let listed = points
                .as_array()
                .unwrap()
                .iter()
                .find(|q| q["id"] == p["id"])
                .unwrap();
            assert_eq!(
                listed["manifest_sha256"].as_str().unwrap(),
                hex::encode(Sha256::digest(&bytes)),
                "the catalog records the hash of {manifest}"
            );
            let m: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(m["format"], 2);
            assert_eq!(m["point"]["plan"], "shop");
            assert_eq!(m["point"]["resource"], resource);
            // A copy carries the manifest of the point that took the data.
            assert_eq!(m["point"]["id"], primary["id"], "{m}");
        }
    }
}

#[test]
fn another_points_valid_files_put_in_its_place_fail_the_drill() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (older, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{older}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (newer, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{newer}");

    // The newest point in dr now holds the older point's artifact and
    // manifest: a pair that verifies against itself.
    let (old_artifact, old_manifest) = files_of(point(&older, "dr", "files"));
    let (new_artifact, new_manifest) = files_of(point(&newer, "dr", "files"));
    std::fs::copy(&old_artifact, &new_artifact).unwrap();
    std::fs::copy(&old_manifest, &new_manifest).unwrap();

    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    assert_eq!(drill["passed"], false);
    let restore = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore" && c["resource"] == "files")
        .unwrap();
    assert_eq!(restore["passed"], false, "{drill}");
    let detail = restore["detail"].as_str().unwrap();
    assert!(
        detail.contains("not the one the catalog recorded"),
        "{detail}"
    );

    // The drill found the point damaged: the next drill passes on the
    // older point and says it skipped the damaged one.
    let new_id = point(&newer, "dr", "files")["id"].as_i64().unwrap();
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert!(
        drill
            .to_string()
            .contains(&format!("point {new_id} skipped: damaged")),
        "{drill}"
    );

    // The manifest alone swapped, with an edited identity that would pass
    // a check without the recorded hash, is still not this point's.
    let mut m: Value = serde_json::from_slice(&std::fs::read(&old_manifest).unwrap()).unwrap();
    m["point"]["id"] = point(&newer, "primary", "files")["id"].clone();
    std::fs::write(&new_manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let out = env.run(&["verify", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("not the one the catalog recorded"),
        "{}",
        stdout(&out)
    );

    // The untouched older point still restores and passes.
    let id = point(&older, "dr", "files")["id"].as_i64().unwrap();
    let (drill, code) = env.json(&["drill", "run", "shop", "--point", &id.to_string(), "--json"]);
    assert_eq!(code, 0, "{drill}");
    let restore = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore" && c["resource"] == "files")
        .unwrap();
    let detail = restore["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("manifest is the one recorded for point {id}")),
        "{detail}"
    );
}
