//! `lifeboat verify` on `file://` vaults (and `s3://` on moto): damage is
//! found, marked, skipped by drills and dropped from `status` and the
//! exposure; an outage is not damage; a point whose data comes back is
//! complete again.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

/// Every point of `verify --json`, by id: (verdict, read_data, region).
fn verdicts(v: &Value) -> Vec<(i64, String, bool, String)> {
    v["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {v}"))
        .iter()
        .map(|p| {
            (
                p["point"].as_i64().unwrap(),
                p["verdict"].as_str().unwrap().to_string(),
                p["read_data"].as_bool().unwrap(),
                p["region"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict_of(v: &Value, id: i64) -> String {
    verdicts(v)
        .into_iter()
        .find(|p| p.0 == id)
        .unwrap_or_else(|| panic!("point {id} not in {v}"))
        .1
}

/// The complete points of `backup run --json`.
fn backed_up(env: &Env) -> Vec<Value> {
    let (out, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{out}");
    out["points"].as_array().unwrap().clone()
}

/// The point of `resource` in `region` among `points`.
fn find<'a>(points: &'a [Value], resource: &str, region: &str) -> &'a Value {
    points
        .iter()
        .find(|p| p["resource"] == resource && p["region"] == region)
        .unwrap_or_else(|| panic!("no {resource} point in {region}: {points:?}"))
}

/// The artifact file of a point in a `file://` vault.
fn artifact(p: &Value) -> PathBuf {
    PathBuf::from(
        p["location"]
            .as_str()
            .unwrap()
            .strip_prefix("file://")
            .unwrap(),
    )
}

fn id(p: &Value) -> i64 {
    p["id"].as_i64().unwrap()
}

/// Every point of `points list --all --json`, by id: its status.
fn statuses(env: &Env) -> Vec<(i64, String, Value)> {
    let (list, code) = env.json(&["points", "list", "--all", "--json"]);
    assert_eq!(code, 0, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| (id(p), p["status"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

fn status_of(env: &Env, point: i64) -> (String, Value) {
    statuses(env)
        .into_iter()
        .find(|p| p.0 == point)
        .map(|p| (p.1, p.2))
        .unwrap_or_else(|| panic!("no point {point}"))
}

/// `status --json`: the newest data time of `region`, if every resource
/// has a point there.
fn newest_in(env: &Env, region: &str) -> Value {
    let (status, code) = env.json(&["status", "--json"]);
    assert_eq!(code, 0, "{status}");
    status[0]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == region)
        .unwrap_or_else(|| panic!("no {region} in {status}"))["newest_data_time"]
        .clone()
}

/// What `status` shows as a region's newest data time when `points` are
/// the newest of each resource: the worst resource's.
fn oldest_data(points: &[Value], region: &str) -> i64 {
    points
        .iter()
        .filter(|p| p["region"] == region)
        .map(|p| ms(&p["data_time"]))
        .min()
        .unwrap()
}

#[test]
fn damage_is_found_marked_and_no_longer_relied_on() {
    let env = Env::new();
    env.seed(50);
    env.write_plan("shop.toml", &env.local_plan(""));
    let old = backed_up(&env);
    // The second backup's data is newer (data times are milliseconds).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let new = backed_up(&env);

    // A clean plan verifies, in both regions (the primary too, though the
    // plan isolates it from drills).
    let (clean, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 0, "{clean}");
    let all = verdicts(&clean);
    assert_eq!(all.len(), 8, "{clean}");
    assert!(all.iter().all(|p| p.1 == "ok" && !p.2), "{clean}");
    assert_eq!(all.iter().filter(|p| p.3 == "primary").count(), 4);
    assert_eq!(clean["summary"]["ok"], 8, "{clean}");

    // Deleted, truncated, and a byte flipped (same size).
    let deleted = find(&new, "files", "dr");
    let truncated = find(&new, "db", "dr");
    let flipped = find(&new, "files", "primary");
    std::fs::remove_file(artifact(deleted)).unwrap();
    let bytes = std::fs::read(artifact(truncated)).unwrap();
    std::fs::write(artifact(truncated), &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = std::fs::read(artifact(flipped)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(artifact(flipped), &bytes).unwrap();

    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("artifact missing") && text.contains("verified 8 point(s): 6 ok"),
        "{text}"
    );
    assert!(text.contains("2 damaged"), "{text}");
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(verdict_of(&v, id(deleted)), "damaged", "{v}");
    assert_eq!(verdict_of(&v, id(truncated)), "damaged", "{v}");
    // Only reading the data finds a flipped byte.
    assert_eq!(verdict_of(&v, id(flipped)), "ok", "{v}");
    let (v, code) = env.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(verdict_of(&v, id(flipped)), "damaged", "{v}");
    assert_eq!(v["summary"]["damaged"], 3, "{v}");
    let good = verdicts(&v).into_iter().filter(|p| p.1 == "ok").count();
    assert_eq!(good, 5, "{v}");
    assert!(v["summary"]["bytes_read"].as_u64().unwrap() > 0, "{v}");

    // The catalog says so, with the reason and since when.
    for p in [deleted, truncated, flipped] {
        let (status, row) = status_of(&env, id(p));
        assert_eq!(status, "damaged", "{row}");
        assert!(row["damaged_at"].is_string(), "{row}");
    }
    let (_, row) = status_of(&env, id(deleted));
    assert!(
        row["damage"].as_str().unwrap().contains("artifact missing"),
        "{row}"
    );
    let (_, row) = status_of(&env, id(truncated));
    assert!(row["damage"].as_str().unwrap().contains("bytes"), "{row}");
    // `points list` shows damaged points without --all.
    let listed = stdout(&env.run(&["points", "list"]));
    assert!(listed.contains("damaged (artifact missing"), "{listed}");

    // `status`: the newest point of dr is now the older backup's.
    assert_eq!(ms(&newest_in(&env, "dr")), oldest_data(&old, "dr"));
    assert_eq!(
        ms(&newest_in(&env, "primary")),
        oldest_data(&old, "primary")
    );

    // The next drill passes on the older points, saying what it skipped.
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    let mut restored: Vec<i64> = drill["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    restored.sort();
    let mut older = vec![id(find(&old, "files", "dr")), id(find(&old, "db", "dr"))];
    older.sort();
    assert_eq!(restored, older, "{drill}");
    let details = drill["checks"].to_string();
    assert!(
        details.contains(&format!(
            "point {} skipped: damaged (artifact missing",
            id(deleted)
        )),
        "{details}"
    );
    assert!(
        details.contains(&format!("point {} skipped: damaged", id(truncated))),
        "{details}"
    );

    // A damaged point pinned on the command line is refused: bad input.
    let out = env.run(&["drill", "run", "shop", "--point", &id(deleted).to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("damaged (artifact missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_read_data_subset_reads_every_point_exactly_once_over_its_parts() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    backed_up(&env);
    backed_up(&env);
    backed_up(&env);
    let m = 4;
    let mut read: Vec<i64> = Vec::new();
    for n in 1..=m {
        let (v, code) = env.json(&[
            "verify",
            "--read-data-subset",
            &format!("{n}/{m}"),
            "--json",
        ]);
        assert_eq!(code, 0, "{v}");
        let all = verdicts(&v);
        // Every point is checked every time; only the part is read.
        assert_eq!(all.len(), 12, "{v}");
        assert!(all.iter().all(|p| p.1 == "ok"), "{v}");
        read.extend(all.iter().filter(|p| p.2).map(|p| p.0));
    }
    read.sort();
    let ids: Vec<i64> = statuses(&env).into_iter().map(|p| p.0).collect();
    assert_eq!(
        read, ids,
        "each point read exactly once over 1/{m}..{m}/{m}"
    );

    for bad in ["0/4", "5/4", "x"] {
        let out = env.run(&["verify", "--read-data-subset", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
    let out = env.run(&["verify", "shop", "--region", "mars"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn an_unreachable_vault_is_not_damage_and_data_that_comes_back_is_complete_again() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &env.local_plan(""));
    let points = backed_up(&env);

    // The dr vault's folder replaced by a file: an outage, not damage.
    let dr = env.path("vaults/dr");
    let away = env.path("vaults/dr-away");
    std::fs::rename(&dr, &away).unwrap();
    std::fs::write(&dr, b"not a folder").unwrap();
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 1, "{v}");
    for (point, verdict, _, region) in verdicts(&v) {
        let want = if region == "dr" { "unchecked" } else { "ok" };
        assert_eq!(verdict, want, "point {point} in {region}: {v}");
    }
    assert_eq!(v["summary"]["unchecked"], 2, "{v}");
    // And an absent folder (an unmounted disk) neither.
    std::fs::remove_file(&dr).unwrap();
    let (v, code) = env.json(&["verify", "--region", "dr", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(verdicts(&v).iter().all(|p| p.1 == "unchecked"), "{v}");
    assert!(
        statuses(&env).iter().all(|p| p.1 == "complete"),
        "an outage marks nothing"
    );
    std::fs::rename(&away, &dr).unwrap();

    // A missing artifact is damage; once it is back, the point is
    // complete again, and says so.
    let files = find(&points, "files", "dr");
    let saved = env.path("saved-artifact");
    std::fs::rename(artifact(files), &saved).unwrap();
    let (v, code) = env.json(&["verify", "shop", "--region", "dr", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(verdict_of(&v, id(files)), "damaged");
    assert_eq!(
        newest_in(&env, "dr"),
        Value::Null,
        "files has no usable point in dr"
    );
    std::fs::rename(&saved, artifact(files)).unwrap();
    let out = env.run(&["verify", "shop", "--region", "dr", "--read-data"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the point is complete again"),
        "{}",
        stdout(&out)
    );
    assert_eq!(status_of(&env, id(files)).0, "complete");
    assert_eq!(ms(&newest_in(&env, "dr")), oldest_data(&points, "dr"));
}

#[test]
fn a_drill_that_restores_a_corrupt_artifact_marks_the_point_damaged() {
    let env = Env::new();
    env.seed(200);
    env.write_plan("shop.toml", &env.local_plan(""));
    let points = backed_up(&env);
    let db = find(&points, "db", "dr");
    let mut bytes = std::fs::read(artifact(db)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(artifact(db), &bytes).unwrap();

    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    assert!(
        drill["error"]
            .as_str()
            .unwrap()
            .contains("now marked damaged"),
        "{drill}"
    );
    let (status, row) = status_of(&env, id(db));
    assert_eq!(status, "damaged", "{row}");
    // The next drill does not rely on it, and says why.
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    let details = drill["checks"].to_string();
    assert!(
        details.contains(&format!("point {} skipped: damaged", id(db)))
            && details.contains("no complete point of `db`"),
        "{details}"
    );
}

/// A damaged point counts as never having been usable in the exposure
/// walk (it may never have been restorable), whatever happens to it next:
/// pruned, or found whole again (then it counts again, as it was).
#[tokio::test]
async fn the_exposure_walk_treats_damaged_points_as_never_there() {
    use lifeboat::catalog::{Catalog, Flags, NewPoint, PointCompletion};
    use lifeboat::report::exposure::{compute, finish_region, region_walk, Interval};
    use lifeboat::resource::{Kind, Location};

    const M: i64 = 60_000;
    const T0: i64 = 1_767_225_600_000;
    let env = Env::new();
    let cat = Catalog::open(&env.catalog_with_password()).await.unwrap();
    let mut seed: u64 = 0xda3a;
    let mut rand = |n: i64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as i64
    };
    let mut kept: Vec<Interval> = Vec::new();
    let mut damaged = 0;
    for i in 0..200i64 {
        let data = T0 + i * 10 * M + rand(5 * M);
        let done = data + M + rand(20 * M);
        let id = cat
            .insert_point(NewPoint {
                plan: "shop",
                resource: "db",
                kind: Kind::Sqlite,
                region: "dr",
                run_id: None,
                source_point_id: None,
                started_at: data,
            })
            .await
            .unwrap();
        cat.complete_point(
            id,
            &PointCompletion {
                data_time: data,
                completed_at: done,
                size_bytes: 1,
                content_bytes: 1,
                file_count: 1,
                sha256: "00".into(),
                manifest_sha256: None,
                location: "file:///v".into(),
                stored: Location::Artifact {
                    key: format!("shop/db/{id}.sqlite.zst"),
                },
                flags: Flags::default(),
            },
        )
        .await
        .unwrap();
        let deleted = (rand(3) == 0).then(|| done + rand(6 * 60 * M));
        // Found damaged later: sometimes pruned since, sometimes repaired.
        let fate = rand(5);
        if fate <= 1 {
            assert!(cat
                .mark_point_damaged(id, "artifact missing", done + 5 * M)
                .await
                .unwrap());
        }
        if fate == 1 {
            assert!(cat.mark_point_repaired(id).await.unwrap());
        }
        if let Some(at) = deleted {
            cat.mark_point_deleting(id, at).await.unwrap();
            cat.mark_point_deleted(id, at, "test").await.unwrap();
        }
        if fate == 0 {
            damaged += 1;
            continue;
        }
        kept.push(Interval {
            resource: 0,
            data_time: data,
            valid_from: done,
            valid_to: deleted,
        });
    }
    assert!(damaged > 20 && kept.len() > 100, "{damaged} damaged");
    let end = T0 + 200 * 10 * M;
    for (from, to) in [
        (T0 - 60 * M, end),
        (T0 + 300 * M, T0 + 700 * M),
        (end - 90 * M, end + 24 * 60 * M),
    ] {
        let mut walk = region_walk(1, T0, from, to, 30 * M, true).unwrap();
        cat.for_each_usable_point("shop", "dr", &["db"], from, to, |p| {
            walk.add(&Interval {
                resource: p.resource,
                data_time: p.data_time,
                valid_from: p.completed_at,
                valid_to: p.deleted_at,
            });
        })
        .await
        .unwrap();
        let (got, _) = finish_region(walk);
        let want = compute(1, &kept, T0, from, to, 30 * M).unwrap();
        assert_eq!(got, want, "window {from}..{to}");
    }
    cat.close().await;
}

/// A plan on moto: a folder and a bucket's objects, in an `s3://` vault.
fn s3_plan(env: &Env, tag: &str) {
    let endpoint = &crate::moto::moto().endpoint;
    std::fs::create_dir_all(env.path("data/files")).unwrap();
    std::fs::write(env.path("data/files/a.txt"), b"some data").unwrap();
    let text = format!(
        r#"name = "shop"
owner = "sre@example.com"
rto = "10m"
rpo = "1h"

[backup]
schedule = "0 * * * *"
primary_region = "us-east-1"

[regions.us-east-1]
vault = "s3://{tag}-vault/lb"

[[resources]]
name = "files"
kind = "path"
path = "{data}/files"

[[resources]]
name = "invoices"
kind = "s3"
bucket = "{tag}-data"
prefix = "2026/"

[drill]
region = "us-east-1"

[aws]
endpoint_url = "{endpoint}"
"#,
        data = env.path("data").display()
    );
    env.write_plan("shop.toml", &text);
}

/// The key of an object under a point's `s3://BUCKET/…` location.
fn s3_key(p: &Value, tag: &str) -> String {
    let location = p["location"].as_str().unwrap();
    location
        .strip_prefix(&format!("s3://{tag}-vault/"))
        .unwrap_or_else(|| panic!("{location}"))
        .to_string()
}

#[test]
fn on_s3_a_missing_artifact_and_a_wrong_object_are_damage() {
    let tag = "verifys3";
    let m = crate::moto::moto();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        m.bucket(&format!("{tag}-vault"), "us-east-1").await;
        m.bucket(&format!("{tag}-data"), "us-east-1").await;
        lifeboat::vault::s3_client("us-east-1", Some(&m.aws())).await
    });
    let put = |bucket: &str, key: &str, body: &[u8]| {
        rt.block_on(
            client
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.to_vec().into())
                .send(),
        )
        .expect("put object");
    };
    for i in 0..5 {
        put(
            &format!("{tag}-data"),
            &format!("2026/inv-{i}.txt"),
            format!("invoice {i}").as_bytes(),
        );
    }
    let env = Env::new();
    s3_plan(&env, tag);
    let points = backed_up(&env);
    assert_eq!(points.len(), 2);
    let (v, code) = env.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["summary"]["ok"], 2, "{v}");
    let detail = v["points"].to_string();
    assert!(
        detail.contains("5 SHA-256 match the manifest's"),
        "{detail}"
    );

    // An object of the `s3` point rewritten with other bytes of the same
    // size: present with its size, and only reading it finds it.
    let invoices = find(&points, "invoices", "us-east-1");
    let prefix = s3_key(invoices, tag);
    let third = format!("{prefix}/00000002");
    put(&format!("{tag}-vault"), &third, b"invoice X");
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 0, "{v}");
    let (v, code) = env.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(verdict_of(&v, id(invoices)), "damaged", "{v}");
    // Put back, it verifies again; deleted, even the default check finds it.
    put(&format!("{tag}-vault"), &third, b"invoice 2");
    let (v, code) = env.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(verdict_of(&v, id(invoices)), "repaired", "{v}");
    rt.block_on(
        client
            .delete_object()
            .bucket(format!("{tag}-vault"))
            .key(&third)
            .send(),
    )
    .unwrap();
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["points"]
            .to_string()
            .contains("object `2026/inv-2.txt` missing"),
        "{v}"
    );

    // The folder's artifact deleted: damage, found by the default check.
    let files = find(&points, "files", "us-east-1");
    rt.block_on(
        client
            .delete_object()
            .bucket(format!("{tag}-vault"))
            .key(s3_key(files, tag))
            .send(),
    )
    .unwrap();
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(verdict_of(&v, id(files)), "damaged", "{v}");
    assert_eq!(status_of(&env, id(files)).0, "damaged");

    // A vault whose bucket is gone is an outage, not damage: the points
    // stay as they were.
    let gone = std::fs::read_to_string(env.plans().join("shop.toml"))
        .unwrap()
        .replace(
            &format!("s3://{tag}-vault/"),
            &format!("s3://{tag}-nobucket/"),
        );
    env.write_plan("shop.toml", &gone);
    let (v, code) = env.json(&["verify", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(verdicts(&v).iter().all(|p| p.1 == "unchecked"), "{v}");
    assert_eq!(status_of(&env, id(files)).0, "damaged");
    assert_eq!(status_of(&env, id(invoices)).0, "damaged");
}

#[test]
fn a_damaged_point_holds_no_retention_slot_and_prune_deletes_it_when_expired() {
    let env = Env::new();
    env.seed(10);
    let plan = env.local_plan("").replace(
        "[regions.primary]",
        "[retention]\nkeep_last = 1\n\n[regions.primary]",
    );
    env.write_plan("shop.toml", &plan);
    let a = backed_up(&env);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = backed_up(&env);
    let damaged = find(&b, "files", "dr");
    std::fs::remove_file(artifact(damaged)).unwrap();
    assert_eq!(env.run(&["verify"]).status.code(), Some(1));

    // keep_last = 1 keeps the newest complete point (a's, in dr), as if
    // the damaged one were not there; the damaged one, newest of all, is
    // kept too while nothing newer exists.
    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(status_of(&env, id(find(&a, "files", "dr"))).0, "complete");
    assert_eq!(status_of(&env, id(damaged)).0, "damaged");

    std::thread::sleep(std::time::Duration::from_millis(20));
    backed_up(&env);
    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("(damaged)"), "{}", stdout(&out));
    let (status, row) = status_of(&env, id(damaged));
    assert_eq!(status, "deleted", "{row}");
    // It never counted as usable, pruned or not.
    assert_eq!(row["deleted_at"], row["completed_at"], "{row}");
    assert_eq!(status_of(&env, id(find(&a, "files", "dr"))).0, "deleted");
}
