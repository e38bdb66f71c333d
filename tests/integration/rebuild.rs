//! `catalog rebuild`: a lost catalog's points come back from a vault's
//! manifests, bound to the vault's files, and drills pass on them.

use serde_json::Value;

use crate::common::*;

fn lose_catalog(env: &Env) {
    env.lose_catalog();
}

fn points(env: &Env, region: &str) -> Vec<Value> {
    let (v, code) = env.json(&[
        "points", "list", "--plan", "shop", "--region", region, "--json",
    ]);
    assert_eq!(code, 0, "{v}");
    v.as_array().unwrap().clone()
}

/// (resource, data time, sha256) of each point, sorted: what must survive.
fn identity(points: &[Value]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = points
        .iter()
        .map(|p| {
            (
                p["resource"].as_str().unwrap().to_string(),
                p["data_time"].as_str().unwrap().to_string(),
                p["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_lost_catalog_is_rebuilt_from_the_dr_vault_and_drills_pass() {
    let env = Env::new();
    env.seed(30);
    env.write_plan("shop.toml", &env.local_plan(""));
    for _ in 0..2 {
        let (b, code) = env.json(&["backup", "run", "shop", "--json"]);
        assert_eq!(code, 0, "{b}");
    }
    for _ in 0..2 {
        let (d, code) = env.json(&["drill", "run", "shop", "--json"]);
        assert_eq!(code, 0, "{d}");
    }
    let (drills_before, _) = env.json(&["drills", "list", "--plan", "shop", "--json"]);
    let before_dr = points(&env, "dr");
    let before_primary = points(&env, "primary");
    assert_eq!(before_dr.len(), 4);
    lose_catalog(&env);

    let (rebuilt, code) = env.json(&["catalog", "rebuild", "--from", "dr", "--json"]);
    assert_eq!(code, 0, "{rebuilt}");
    let r = &rebuilt["rebuilt"][0];
    assert_eq!(r["plan"], "shop");
    assert_eq!(r["points"].as_array().unwrap().len(), 4, "{rebuilt}");
    assert_eq!(r["resources"]["files"], 2);
    assert_eq!(r["resources"]["db"], 2);
    assert!(r["skipped"].as_array().unwrap().is_empty());

    assert_eq!(r["drills"], serde_json::json!([1, 2]), "{rebuilt}");
    assert!(r["evidence_problem"].is_null(), "{rebuilt}");
    // The drills come back as their evidence records hold them, and the
    // chain they are in reads as intact.
    let (drills_after, _) = env.json(&["drills", "list", "--plan", "shop", "--json"]);
    assert_eq!(drills_after, drills_before);
    let (report, _) = env.json(&["report", "--format", "json"]);
    let chain = &report["plans"][0]["evidence"];
    assert_eq!(chain["intact"], true, "{chain}");
    assert_eq!(chain["records"], 2, "{chain}");

    let after_dr = points(&env, "dr");
    assert_eq!(identity(&after_dr), identity(&before_dr));
    for p in &after_dr {
        assert_eq!(p["flags"], serde_json::json!(["rebuilt"]), "{p}");
        // Each copy is bound to the primary point that took its data.
        let origin = p["origin_point_id"].as_i64().unwrap();
        assert!(
            before_primary.iter().any(|q| q["id"] == origin),
            "{p} names a primary point"
        );
        let completed = p["completed_at"].as_str().unwrap();
        assert!(completed >= p["data_time"].as_str().unwrap(), "{p}");
    }

    // Drills restore from dr, as before the loss, bound to what was
    // rebuilt, and continue the chain.
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["id"], 3, "{drill}");
    let (report, _) = env.json(&["report", "--format", "json"]);
    let chain = &report["plans"][0]["evidence"];
    assert_eq!(
        (chain["intact"].as_bool(), chain["records"].as_u64()),
        (Some(true), Some(3)),
        "{chain}"
    );
    let details: Vec<&str> = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "restore")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 2);
    for d in details {
        assert!(d.contains("manifest is the one recorded for point"), "{d}");
    }

    // The primary region too: its points get back their own ids.
    let (rebuilt, code) = env.json(&["catalog", "rebuild", "--from", "primary", "--json"]);
    assert_eq!(code, 0, "{rebuilt}");
    let mut ids: Vec<i64> = points(&env, "primary")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    let mut before: Vec<i64> = before_primary
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    before.sort();
    assert_eq!(ids, before);

    // A second rebuild would record every point twice: refused.
    let out = env.run(&["catalog", "rebuild", "--from", "dr"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("already records points"),
        "{}",
        stderr(&out)
    );

    // New backups take ids above every rebuilt one.
    let (b, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{b}");
    let newest = b["points"][0]["id"].as_i64().unwrap();
    let highest = after_dr
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(newest > highest, "{newest} > {highest}");
}

#[test]
fn a_point_whose_data_is_gone_is_not_rebuilt_and_says_why() {
    let env = Env::new();
    env.seed(30);
    env.write_plan("shop.toml", &env.local_plan(""));
    let (b, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{b}");
    let files = b["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["region"] == "dr" && p["resource"] == "files")
        .unwrap();
    let artifact = files["location"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://");
    std::fs::remove_file(artifact).unwrap();
    lose_catalog(&env);

    let out = env.run(&["catalog", "rebuild", "--from", "dr"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 point(s) rebuilt (db 1)"), "{text}");
    assert!(text.contains("not rebuilt"), "{text}");
    assert!(text.contains("is missing"), "{text}");
    assert_eq!(points(&env, "dr").len(), 1);
}

#[test]
fn a_region_no_plan_uses_is_bad_input() {
    let env = Env::new();
    env.seed(1);
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(&["catalog", "rebuild", "--from", "mars"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("region `mars`"), "{}", stderr(&out));
}
