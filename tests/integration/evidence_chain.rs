//! The drill evidence chain: a record that could not be written is written
//! by the next drill or prune, in order; a drill killed mid-restore gets an
//! interrupted record once recovered; a chain deleted, cut short or edited
//! in any field is reported broken, saying what; a lost head update is
//! adopted; records of `drill run --region X` are verified in X.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// The plan's evidence as the report verified it.
fn evidence(env: &Env) -> Value {
    let (r, code) = env.json(&["report", "--format", "json"]);
    assert_eq!(code, 0, "{r}");
    r["plans"][0]["evidence"].clone()
}

fn intact(env: &Env, records: u64) {
    let chain = evidence(env);
    assert_eq!(
        (chain["intact"].as_bool(), chain["records"].as_u64()),
        (Some(true), Some(records)),
        "{chain}"
    );
}

/// The chain is broken, with a problem containing every one of `words`.
fn broken(env: &Env, words: &[&str]) -> String {
    let chain = evidence(env);
    assert_eq!(chain["intact"], false, "{chain}");
    let problem = chain["problem"].as_str().unwrap().to_string();
    for w in words {
        assert!(problem.contains(w), "`{w}` not in: {problem}");
    }
    problem
}

fn drill(env: &Env, args: &[&str]) -> Value {
    let mut all = vec!["drill", "run", "shop", "--json"];
    all.extend_from_slice(args);
    let (d, code) = env.json(&all);
    assert_eq!(code, 0, "{d}");
    d
}

fn record(env: &Env, region: &str, drill: i64) -> (std::path::PathBuf, Value) {
    let path = env.path(&format!("vaults/{region}/evidence/shop/{drill:012}.json"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, serde_json::from_slice(&text).unwrap())
}

/// Sample data backed up with the local plan, as `edit` changes it.
fn backed_up(edit: impl Fn(String) -> String) -> Env {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &edit(env.local_plan("")));
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env
}

#[test]
fn a_record_that_could_not_be_written_is_written_by_the_next_drill_or_prune() {
    let env = backed_up(|p| p);
    // A file where the chain's folder goes: every write fails (the tests
    // may run as root, whom permissions do not stop).
    let chain = env.path("vaults/dr/evidence/shop");
    std::fs::create_dir_all(chain.parent().unwrap()).unwrap();
    std::fs::write(&chain, b"in the way").unwrap();
    let first = drill(&env, &[])["id"].as_i64().unwrap();
    let second = drill(&env, &[])["id"].as_i64().unwrap();
    // The verdicts stand; the chain says what is missing and that it heals.
    broken(
        &env,
        &[
            &format!("drill(s) {first}, {second} have no evidence record yet"),
            "next drill or prune",
        ],
    );
    // Prune writes both, in drill order.
    std::fs::remove_file(&chain).unwrap();
    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    intact(&env, 2);
    let (_, r1) = record(&env, "dr", first);
    let (_, r2) = record(&env, "dr", second);
    assert_eq!(r1["prev_key"], Value::Null);
    assert_eq!(r2["prev_key"], format!("evidence/shop/{first:012}.json"));
    assert_eq!(r2["drill"]["passed"], true);

    // Fails again for one drill only (a folder where its record goes); the
    // next drill writes it before its own.
    let blocker = chain.join(format!("{:012}.json", second + 1));
    std::fs::create_dir_all(blocker.join("x")).unwrap();
    let third = drill(&env, &[])["id"].as_i64().unwrap();
    assert_eq!(third, second + 1);
    broken(
        &env,
        &[&format!("drill(s) {third} have no evidence record yet")],
    );
    std::fs::remove_dir_all(&blocker).unwrap();
    let fourth = drill(&env, &[])["id"].as_i64().unwrap();
    intact(&env, 4);
    let (_, r3) = record(&env, "dr", third);
    let (_, r4) = record(&env, "dr", fourth);
    assert_eq!(r3["prev_key"], format!("evidence/shop/{second:012}.json"));
    assert_eq!(r4["prev_key"], format!("evidence/shop/{third:012}.json"));
}

#[test]
fn a_drill_killed_mid_restore_gets_an_interrupted_record_once_recovered() {
    let env = Env::new();
    env.seed(10);
    // Enough data that the drill is still restoring when it is killed.
    let big = env.path("data/files/big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..4 {
        std::fs::write(
            big.join(format!("blob-{i}.bin")),
            pseudo_random(32 << 20, i),
        )
        .unwrap();
    }
    env.write_plan("shop.toml", &env.local_plan(""));
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let mut child = env
        .command(&["drill", "run", "shop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let drills = env.path("work/drills");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restoring = std::fs::read_dir(&drills)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .any(|e| !files_under(&e.path()).is_empty())
            })
            .unwrap_or(false);
        if restoring {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drill never started restoring"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the drill finished before it could be killed; make the data bigger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (listed, _) = env.json(&["drills", "list", "--json"]);
    let killed = &listed[0];
    assert_eq!(killed["status"], "running", "{listed}");
    let killed = killed["id"].as_i64().unwrap();

    // The next drill recovers it: its record first, then its own.
    let next = drill(&env, &[])["id"].as_i64().unwrap();
    let (_, r) = record(&env, "dr", killed);
    assert_eq!(r["drill"]["status"], "failed", "{r}");
    assert_eq!(r["drill"]["passed"], false, "{r}");
    assert!(
        r["drill"]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{r}"
    );
    let (_, n) = record(&env, "dr", next);
    assert_eq!(n["prev_key"], format!("evidence/shop/{killed:012}.json"));
    intact(&env, 2);
}

#[test]
fn a_chain_deleted_cut_short_or_edited_in_any_field_is_broken_saying_what() {
    let env = backed_up(|p| p);
    let first = drill(&env, &[])["id"].as_i64().unwrap();
    let second = drill(&env, &[])["id"].as_i64().unwrap();
    intact(&env, 2);
    let (newest, value) = record(&env, "dr", second);
    let original = std::fs::read(&newest).unwrap();
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = value.clone();
        f(&mut v);
        std::fs::write(&newest, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    };

    // A field other than the verdict, in the newest record (no record
    // after it to notice): named, with both values.
    edit(&|v| v["drill"]["rpo_seconds"] = Value::from(1.5));
    broken(
        &env,
        &[
            &format!("{second:012}.json"),
            "`rpo_seconds` is 1.5 in the record",
        ],
    );
    edit(&|v| v["drill"]["checks"][0]["detail"] = Value::from("all good"));
    broken(&env, &["`checks[0].detail` is \"all good\" in the record"]);
    // Reformatted but equal in every field: the hash still tells.
    edit(&|_| {});
    broken(&env, &["newest record", "was changed after it was written"]);
    std::fs::write(&newest, &original).unwrap();
    intact(&env, 2);

    // The newest record deleted: every remaining link holds, the head tells.
    std::fs::remove_file(&newest).unwrap();
    broken(
        &env,
        &[&format!(
            "the newest record evidence/shop/{second:012}.json is missing"
        )],
    );
    std::fs::write(&newest, &original).unwrap();
    // The oldest deleted.
    let (oldest, _) = record(&env, "dr", first);
    let oldest_bytes = std::fs::read(&oldest).unwrap();
    std::fs::remove_file(&oldest).unwrap();
    broken(&env, &[&format!("{first:012}.json, which"), "is missing"]);
    std::fs::write(&oldest, &oldest_bytes).unwrap();
    intact(&env, 2);
    // The whole chain deleted.
    std::fs::remove_dir_all(env.path("vaults/dr/evidence")).unwrap();
    broken(&env, &["is missing", "records were deleted"]);
}

#[test]
fn a_record_whose_head_update_was_lost_is_adopted_and_an_old_chain_too() {
    let env = backed_up(|p| p);
    let first = drill(&env, &[])["id"].as_i64().unwrap();
    let second = drill(&env, &[])["id"].as_i64().unwrap();
    // A crash after the second record was written, before the head moved.
    let (p1, _) = record(&env, "dr", first);
    let sha1 = hex::encode(Sha256::digest(std::fs::read(&p1).unwrap()));
    env.sql(&format!(
        "UPDATE evidence_heads SET key = 'evidence/shop/{first:012}.json', sha256 = '{sha1}', length = 1;
         UPDATE drills SET evidence_written = FALSE WHERE id = {second};"
    ));
    intact(&env, 2);
    let third = drill(&env, &[])["id"].as_i64().unwrap();
    intact(&env, 3);
    assert_eq!(
        env.sql("SELECT key, length FROM evidence_heads"),
        format!("evidence/shop/{third:012}.json|3")
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM drills WHERE evidence_written = FALSE"),
        "0"
    );
    // A catalog from before the head existed: its chain is taken as found.
    env.sql("DELETE FROM evidence_heads;");
    intact(&env, 3);
    // But not a chain cut short before the head existed and a drill since.
    let (p3, _) = record(&env, "dr", third);
    std::fs::remove_file(&p3).unwrap();
    broken(
        &env,
        &[&format!(
            "drill(s) {third} have no evidence record in the chain"
        )],
    );
}

#[test]
fn records_of_a_drill_in_another_region_are_verified_there() {
    let env = backed_up(|p| p.replace("isolate_primary = true", "isolate_primary = false"));
    let in_primary = drill(&env, &["--region", "primary"])["id"]
        .as_i64()
        .unwrap();
    let in_dr = drill(&env, &[])["id"].as_i64().unwrap();
    let (primary_record, value) = record(&env, "primary", in_primary);
    assert_eq!(value["drill"]["region"], "primary");
    record(&env, "dr", in_dr);
    let chain = evidence(&env);
    assert_eq!(
        (chain["intact"].as_bool(), chain["records"].as_u64()),
        (Some(true), Some(2)),
        "{chain}"
    );
    let location = chain["location"].as_str().unwrap();
    assert!(
        location.contains("vaults/primary/evidence/shop/")
            && location.contains("vaults/dr/evidence/shop/"),
        "{location}"
    );
    let mut edited = value.clone();
    edited["drill"]["rpo_seconds"] = Value::from(0.5);
    std::fs::write(&primary_record, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    broken(&env, &["region `primary`", "`rpo_seconds`"]);
}

#[test]
fn a_new_catalog_never_overwrites_the_evidence_of_a_lost_one() {
    let env = backed_up(|p| p);
    let first = drill(&env, &[])["id"].as_i64().unwrap();
    let (path, _) = record(&env, "dr", first);
    let old = std::fs::read(&path).unwrap();
    // The catalog is lost; a new one starts, and its drill ids with it.
    env.lose_catalog();
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    let again = drill(&env, &[])["id"].as_i64().unwrap();
    assert_eq!(again, first);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        old,
        "the old record was overwritten"
    );
    broken(
        &env,
        &[&format!(
            "{first:012}.json does not start a chain of this catalog's drills"
        )],
    );
}
