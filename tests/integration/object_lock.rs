//! S3 Object Lock on vault objects, end to end with the real binary and the
//! real SDK against moto (through `aws_proxy`, which refuses any request
//! bypassing a governance lock).
//!
//! What moto enforces, as these tests rely on it: it refuses to delete a
//! locked version (AccessDenied), refuses lock headers on a bucket without
//! Object Lock, and keeps the retention a PutObject or CopyObject asks
//! for. What it does not: it completes a multipart upload without the lock
//! its CreateMultipartUpload asked for (Lifeboat then sets it with
//! PutObjectRetention, which these tests see), and it lets a governance
//! lock be shortened without the bypass permission (Lifeboat never tries).

use std::time::Duration;

use aws_sdk_s3::Client;
use serde_json::Value;

use crate::aws_proxy::Proxy;
use crate::common::{self, Env};
use crate::moto::moto;

const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";

async fn s3(region: &str) -> Client {
    lifeboat::vault::s3_client(region, Some(&moto().aws())).await
}

/// A bucket, with Object Lock enabled when `locked`.
async fn bucket(name: &str, region: &str, locked: bool) {
    let mut req = s3(region)
        .await
        .create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(locked);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send().await.expect("create bucket");
}

/// A source bucket for the `s3` kind, with `n` objects under `2026/`.
/// The plan's two vault buckets, `{tag}-vault-east` and `-west`.
async fn vault_buckets(tag: &str, locked: bool) {
    bucket(&format!("{tag}-vault-east"), EAST, locked).await;
    bucket(&format!("{tag}-vault-west"), WEST, locked).await;
}

async fn source_bucket(tag: &str, n: usize) {
    let name = format!("{tag}-data");
    bucket(&name, EAST, false).await;
    let c = s3(EAST).await;
    for i in 0..n {
        c.put_object()
            .bucket(&name)
            .key(format!("2026/invoice-{i}.txt"))
            .body(format!("invoice {i}\n").repeat(i + 1).into_bytes().into())
            .send()
            .await
            .expect("put object");
    }
}

/// `object_lock` lines per region ("" for none), the resources' TOML.
fn plan(
    env: &Env,
    tag: &str,
    endpoint: &str,
    east_lock: &str,
    west_lock: &str,
    resources: &str,
    retention: &str,
) {
    let text = format!(
        r#"name = "{tag}"
owner = "sre@example.com"
rto = "1h"
rpo = "1d"

[backup]
schedule = "0 * * * *"
primary_region = "{EAST}"
copy_to = ["{WEST}"]
{retention}
[regions.{EAST}]
vault = "s3://{tag}-vault-east/lifeboat"
{east_lock}

[regions.{WEST}]
vault = "s3://{tag}-vault-west/lifeboat"
{west_lock}

{resources}

[drill]
region = "{WEST}"
isolate_primary = true

[aws]
endpoint_url = "{endpoint}"
"#
    );
    env.write_plan(&format!("{tag}.toml"), &text);
}

fn files_resource(env: &Env) -> String {
    format!(
        "[[resources]]\nname = \"files\"\nkind = \"path\"\npath = \"{}\"\n",
        env.path("data/files").display()
    )
}

/// Every key (with its versions) under `prefix` of `bucket`.
async fn keys(region: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let c = s3(region).await;
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        token = page.next_continuation_token().map(String::from);
        if token.is_none() {
            return out;
        }
    }
}

/// (versions holding bytes, delete markers) under `prefix`.
async fn versions(region: &str, bucket: &str, prefix: &str) -> (Vec<String>, Vec<String>) {
    let out = s3(region)
        .await
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let name =
        |k: Option<&str>, v: Option<&str>| format!("{} {}", k.unwrap_or(""), v.unwrap_or(""));
    (
        out.versions()
            .iter()
            .map(|v| name(v.key(), v.version_id()))
            .collect(),
        out.delete_markers()
            .iter()
            .map(|m| name(m.key(), m.version_id()))
            .collect(),
    )
}

/// The lock S3 reports on an object: mode and retain-until (ms).
async fn lock_of(region: &str, bucket: &str, key: &str) -> (Option<String>, Option<i64>) {
    let head = s3(region)
        .await
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {bucket}/{key}: {e:?}"));
    (
        head.object_lock_mode().map(|m| m.as_str().to_string()),
        head.object_lock_retain_until_date()
            .map(|d| d.to_millis().unwrap()),
    )
}

fn points(v: &Value) -> Vec<Value> {
    v["points"].as_array().cloned().unwrap_or_default()
}

/// The newest `locked_until` among complete points of a region.
fn max_locked_until(points: &[Value], region: &str) -> i64 {
    points
        .iter()
        .filter(|p| p["region"] == region && p["status"] == "complete")
        .map(|p| common::ms(&p["locked_until"]))
        .max()
        .expect("complete points in the region")
}

#[test]
fn every_object_written_into_a_locked_region_is_locked_and_drill_scratch_is_not() {
    let env = Env::new();
    env.seed(20);
    // Big enough (random bytes do not compress) for a multipart upload.
    std::fs::write(
        env.path("data/files/nested/random.bin"),
        common::pseudo_random(10 << 20, 5),
    )
    .unwrap();
    let tag = "olfull";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        vault_buckets(tag, true).await;
        source_bucket(tag, 3).await;
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let resources = format!(
        "{}\n[[resources]]\nname = \"db\"\nkind = \"sqlite\"\npath = \"{}\"\n\n[[resources]]\nname = \"invoices\"\nkind = \"s3\"\nbucket = \"{tag}-data\"\nprefix = \"2026/\"\n",
        files_resource(&env),
        env.path("data/app.db").display()
    );
    plan(
        &env,
        tag,
        &proxy.endpoint,
        "object_lock = { mode = \"governance\", retain = \"1h\" }",
        "object_lock = { mode = \"compliance\", retain = \"2h\" }",
        &resources,
        "",
    );

    let t0 = common::now_ms();
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    let t1 = common::now_ms();
    assert_eq!(code, 0, "{out}");
    let points = points(&out);
    assert_eq!(points.len(), 6, "{out}");

    for (region, mode, retain) in [
        (EAST, "GOVERNANCE", 3_600_000),
        (WEST, "COMPLIANCE", 7_200_000),
    ] {
        let bucket = format!(
            "{tag}-vault-{}",
            if region == EAST { "east" } else { "west" }
        );
        let recorded = max_locked_until(&points, region);
        assert!(
            recorded >= t0 + retain && recorded <= t1 + retain + 1_000,
            "{region}: locked_until {recorded} not within the backup's time + retain"
        );
        let stored = rt.block_on(keys(region, &bucket, &format!("lifeboat/{tag}/")));
        // Artifact + manifest of files and db, the 3 objects and manifest of invoices.
        assert_eq!(stored.len(), 8, "{stored:?}");
        for key in &stored {
            let (got_mode, until) = rt.block_on(lock_of(region, &bucket, key));
            assert_eq!(got_mode.as_deref(), Some(mode), "{bucket}/{key}");
            let until = until.unwrap_or_else(|| panic!("{bucket}/{key} has no retain-until"));
            // Dated from its own write (whole seconds), never past what the
            // catalog recorded for prune.
            assert!(
                until >= t0 + retain - 1_000 && until <= t1 + retain + 1_000,
                "{bucket}/{key}: retain-until {until} vs backup {t0}..{t1} + {retain}"
            );
            assert!(until <= recorded, "{bucket}/{key}: {until} > {recorded}");
        }
    }
    // The files artifact went up as a multipart upload, whose
    // CreateMultipartUpload asked for the lock itself.
    let calls = proxy.calls();
    let creates: Vec<_> = calls
        .iter()
        .filter(|c| c.action.starts_with("POST ") && c.query.starts_with("uploads"))
        .collect();
    assert!(
        creates
            .iter()
            .any(|c| c.lock_mode.as_deref() == Some("GOVERNANCE")),
        "{creates:?}"
    );
    // Copies into us-west-2 ask for its lock.
    assert!(
        calls
            .iter()
            .any(|c| c.region == WEST && c.lock_mode.as_deref() == Some("COMPLIANCE")),
        "no locked write in {WEST}"
    );

    // The drill restores the bucket's objects into scratch objects of the
    // locked us-west-2 vault, unlocked, and deletes every version of them.
    proxy.clear_calls();
    let (drill, code) = env.json(&["drill", "run", tag, "--json"]);
    assert_eq!(code, 0, "{drill}");
    let objects = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "objects")
        .cloned()
        .expect("objects check");
    assert_eq!(objects["passed"], true, "{drill}");
    assert!(
        objects["detail"].as_str().unwrap().contains("3 objects"),
        "{objects}"
    );
    let scratch_writes: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|c| c.action.contains("/lifeboat-drills/") && c.action.starts_with("PUT "))
        .collect();
    assert_eq!(scratch_writes.len(), 3, "{scratch_writes:?}");
    assert!(
        scratch_writes.iter().all(|c| c.lock_mode.is_none()),
        "scratch objects were locked: {scratch_writes:?}"
    );
    let west = format!("{tag}-vault-west");
    let (left, markers) = rt.block_on(versions(WEST, &west, "lifeboat/lifeboat-drills/"));
    assert!(
        left.is_empty() && markers.is_empty(),
        "drill scratch left versions {left:?} and delete markers {markers:?}"
    );
    // The drill's evidence record is locked like the points.
    let evidence = rt.block_on(keys(WEST, &west, &format!("lifeboat/evidence/{tag}/")));
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    let (mode, _) = rt.block_on(lock_of(WEST, &west, &evidence[0]));
    assert_eq!(mode.as_deref(), Some("COMPLIANCE"));
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

/// A plan `tag` whose two regions lock for `retain` (governance) and keep
/// one point, after two backups: the first point is prunable but locked.
fn two_locked_points(
    tag: &str,
    retain: &str,
) -> (Env, tokio::runtime::Runtime, Proxy, Value, Value) {
    let env = Env::new();
    env.seed(5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        vault_buckets(tag, true).await;
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let lock = format!("object_lock = {{ mode = \"governance\", retain = \"{retain}\" }}");
    plan(
        &env,
        tag,
        &proxy.endpoint,
        &lock,
        &lock,
        &files_resource(&env),
        "\n[retention]\nkeep_last = 1\n",
    );
    let (first, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 0, "{first}");
    let (second, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 0, "{second}");
    (env, rt, proxy, first, second)
}

#[test]
fn prune_keeps_a_locked_point_and_deletes_every_version_once_its_lock_expired() {
    let tag = "olprune";
    let (env, rt, proxy, first, second) = two_locked_points(tag, "3s");
    let old = points(&first);
    let locked_until = max_locked_until(&old, EAST).max(max_locked_until(&old, WEST));

    // Before the lock ends: both old points kept, saying why, nothing deleted.
    let dry = env.run(&["prune", tag, "--dry-run"]);
    let out = common::stdout(&dry);
    assert_eq!(dry.status.code(), Some(0), "{out}");
    assert!(
        out.contains("kept point 1 (") && out.contains("object lock until 20"),
        "{out}"
    );
    let pruned = env.run(&["prune", tag]);
    let out = common::stdout(&pruned);
    assert_eq!(
        pruned.status.code(),
        Some(0),
        "{out}{}",
        common::stderr(&pruned)
    );
    for id in [1, 2] {
        assert!(
            out.contains(&format!("kept point {id} (")),
            "point {id} not kept: {out}"
        );
    }
    assert!(out.contains("to delete then: kept by no rule"), "{out}");
    assert!(!out.contains("deleted point"), "{out}");
    let prefix = |p: &Value| {
        // s3://BUCKET/KEY.tar.zst -> KEY. (artifact and manifest)
        let location = p["location"].as_str().unwrap();
        let key = location.splitn(4, '/').nth(3).unwrap();
        key.strip_suffix("tar.zst").unwrap().to_string()
    };
    let regions = [
        (EAST, format!("{tag}-vault-east")),
        (WEST, format!("{tag}-vault-west")),
    ];
    for (p, (region, bucket)) in old.iter().zip(&regions) {
        let (v, _) = rt.block_on(versions(region, bucket, &prefix(p)));
        assert_eq!(v.len(), 2, "{region}: artifact and manifest stay: {v:?}");
    }
    let (listed, _) = env.json(&["points", "list", "--plan", tag, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");

    // Once the lock expired, the next prune deletes them, every version.
    let wait = locked_until - common::now_ms() + 1_500;
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let pruned = env.run(&["prune", tag]);
    let out = common::stdout(&pruned);
    assert_eq!(
        pruned.status.code(),
        Some(0),
        "{out}{}",
        common::stderr(&pruned)
    );
    assert!(
        out.contains("deleted point 1 (") && out.contains("deleted point 2 ("),
        "{out}"
    );
    assert!(!out.contains("kept point"), "{out}");
    for (p, (region, bucket)) in old.iter().zip(&regions) {
        let (v, markers) = rt.block_on(versions(region, bucket, &prefix(p)));
        assert!(
            v.is_empty() && markers.is_empty(),
            "{region}: versions {v:?} and delete markers {markers:?} left"
        );
    }
    // The newer points are untouched.
    for p in points(&second) {
        let (region, bucket) = if p["region"] == EAST {
            &regions[0]
        } else {
            &regions[1]
        };
        let (v, _) = rt.block_on(versions(region, bucket, &prefix(&p)));
        assert_eq!(v.len(), 2, "{p}");
    }
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

#[test]
fn a_locked_version_survives_an_attempt_to_delete_it() {
    let tag = "oldeny";
    let (env, rt, proxy, first, _second) = two_locked_points(tag, "1h");
    let listed = common::stdout(&env.run(&["points", "list", "--plan", tag]));
    assert_eq!(
        listed.matches("S3 Object Lock until 20").count(),
        4,
        "two points in two regions, each locked: {listed}"
    );
    // A catalog that lost the lock of point 1: prune tries, S3 refuses.
    env.sql("UPDATE points SET locked_until = NULL WHERE id = 1");
    let pruned = env.run(&["prune", tag]);
    let (out, err) = (common::stdout(&pruned), common::stderr(&pruned));
    assert_eq!(pruned.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("FAILED to delete point 1 ("), "{out}");
    assert!(
        err.contains("DeleteObjects failed: AccessDenied") && err.contains("object lock"),
        "{err}"
    );
    assert!(
        err.contains("it will be retried by the next prune"),
        "{err}"
    );
    // Its bytes are all still there, and readable.
    let bucket = format!("{tag}-vault-east");
    let location = points(&first)[0]["location"].as_str().unwrap().to_string();
    let key = location.splitn(4, '/').nth(3).unwrap().to_string();
    let (v, _) = rt.block_on(versions(EAST, &bucket, &key));
    assert_eq!(v.len(), 1, "{v:?}");
    let version = v[0].split(' ').nth(1).unwrap().to_string();
    let c = rt.block_on(s3(EAST));
    let got = rt
        .block_on(async {
            c.get_object()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
        })
        .unwrap();
    assert_eq!(
        got.into_bytes().len() as i64,
        points(&first)[0]["size_bytes"].as_i64().unwrap()
    );
    // And S3 (moto) refuses a direct delete of that version as well.
    let denied = rt
        .block_on(
            c.delete_object()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .send(),
        )
        .unwrap_err();
    use aws_sdk_s3::error::ProvideErrorMetadata;
    assert_eq!(denied.code(), Some("AccessDenied"), "{denied:?}");
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

#[test]
fn a_locked_region_whose_bucket_has_no_object_lock_fails_before_writing() {
    let env = Env::new();
    env.seed(5);
    let tag = "olnone";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        vault_buckets(tag, false).await;
        source_bucket(tag, 2).await;
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let lock = "object_lock = { mode = \"governance\", retain = \"1h\" }";
    let resources = format!(
        "{}\n[[resources]]\nname = \"invoices\"\nkind = \"s3\"\nbucket = \"{tag}-data\"\nprefix = \"2026/\"\n",
        files_resource(&env)
    );
    plan(&env, tag, &proxy.endpoint, lock, "", &resources, "");
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["status"], "failed", "{out}");
    let failed = points(&out);
    assert_eq!(failed.len(), 2, "no copies of failed points: {out}");
    for p in &failed {
        assert_eq!(p["status"], "failed", "{p}");
        let e = p["error"].as_str().unwrap();
        assert!(
            e.contains("snapshot in region us-east-1")
                && e.contains("s3://olnone-vault-east/lifeboat")
                && e.contains(
                    "GetObjectLockConfiguration failed: ObjectLockConfigurationNotFoundError"
                )
                && e.contains("bucket olnone-vault-east has no Object Lock enabled"),
            "{e}"
        );
    }
    assert!(
        rt.block_on(keys(EAST, &format!("{tag}-vault-east"), ""))
            .is_empty(),
        "something was written"
    );
    assert!(
        !proxy
            .calls()
            .iter()
            .any(|c| matches!(&c.action[..4], "PUT " | "POST") && c.action.contains("-vault-")),
        "a write was attempted: {:?}",
        proxy.calls()
    );
    let (listed, _) = env.json(&["points", "list", "--plan", tag, "--all", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed"),
        "{listed}"
    );

    // A copy region whose bucket cannot lock: the copies fail, naming it.
    plan(&env, tag, &proxy.endpoint, "", lock, &resources, "");
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out["status"], "partial", "{out}");
    let copies: Vec<Value> = points(&out)
        .into_iter()
        .filter(|p| p["region"] == WEST)
        .collect();
    assert_eq!(copies.len(), 2, "{out}");
    for p in &copies {
        let e = p["error"].as_str().unwrap();
        assert!(
            e.contains("to region us-west-2")
                && e.contains("bucket olnone-vault-west has no Object Lock enabled"),
            "{e}"
        );
    }
    assert!(
        rt.block_on(keys(WEST, &format!("{tag}-vault-west"), ""))
            .is_empty(),
        "something was written into us-west-2"
    );
}

/// The multipart copy (UploadPartCopy, above 5 GiB in production) into a
/// locked vault: the new object holds the destination's lock.
#[tokio::test]
async fn a_multipart_copy_into_a_locked_vault_is_locked() {
    use lifeboat::plan::{LockMode, ObjectLock};
    use lifeboat::vault::{Vault, VaultTarget};
    bucket("olmpc-east", EAST, true).await;
    bucket("olmpc-west", WEST, true).await;
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let aws = lifeboat::plan::AwsSpec {
        endpoint_url: Some(proxy.endpoint.clone()),
        force_path_style: Some(true),
        ..Default::default()
    };
    let open = |url: &'static str, region: &'static str, mode: LockMode| {
        let aws = aws.clone();
        async move {
            Vault::open(VaultTarget {
                url,
                region,
                aws: Some(&aws),
                kms_key: None,
                object_lock: Some(ObjectLock {
                    mode,
                    retain: Duration::from_secs(600),
                }),
            })
            .await
            .unwrap()
        }
    };
    let src = open("s3://olmpc-east/lb", EAST, LockMode::Governance).await;
    let Vault::S3(d) = open("s3://olmpc-west/lb", WEST, LockMode::Compliance).await else {
        unreachable!("an s3:// URL opens an S3 vault")
    };
    let dst = Vault::S3(d.with_multipart_copy(1 << 20, 5 << 20));
    let data = common::pseudo_random((11 << 20) + 3, 9);
    let t0 = common::now_ms();
    src.put("p/r/big.bin", &data[..]).await.unwrap();
    src.copy_to("p/r/big.bin", &dst, "p/r/big.bin")
        .await
        .unwrap();
    let t1 = common::now_ms();
    for (region, bucket, mode) in [
        (EAST, "olmpc-east", "GOVERNANCE"),
        (WEST, "olmpc-west", "COMPLIANCE"),
    ] {
        let (got, until) = lock_of(region, bucket, "lb/p/r/big.bin").await;
        assert_eq!(got.as_deref(), Some(mode), "{bucket}");
        let until = until.unwrap();
        assert!(
            until >= t0 + 600_000 - 1_000 && until <= t1 + 600_000 + 1_000,
            "{bucket}: {until}"
        );
    }
    let head = s3(WEST)
        .await
        .head_object()
        .bucket("olmpc-west")
        .key("lb/p/r/big.bin")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or("").trim_matches('"').ends_with("-3"),
        "expected a 3-part copy: {:?}",
        head.e_tag()
    );
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

#[test]
fn what_a_killed_backup_wrote_in_a_locked_region_is_kept_until_its_lock_ends() {
    let env = Env::new();
    let tag = "olkill";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        vault_buckets(tag, true).await;
        source_bucket(tag, 1).await;
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let lock = "object_lock = { mode = \"governance\", retain = \"1h\" }";
    let resources = format!(
        "[[resources]]\nname = \"invoices\"\nkind = \"s3\"\nbucket = \"{tag}-data\"\nprefix = \"2026/\"\n"
    );
    plan(&env, tag, &proxy.endpoint, lock, lock, &resources, "");
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 0, "{out}");
    // A backup killed while copying objects leaves a `running` point whose
    // location was recorded first (what a kill -9 leaves in the catalog).
    let key = format!("{tag}/invoices/20261125T000000000Z-p99.objects");
    let location = format!("s3://{tag}-vault-east/lifeboat/{key}");
    env.sql(&format!(
            "INSERT INTO points (id, plan, resource, kind, region, status, started_at, location, stored)
             VALUES (99, '{tag}', 'invoices', 's3', '{EAST}', 'running', 0, '{location}',
                     '{{\"objects\":{{\"key\":\"{key}\"}}}}')"
        ),
    );
    let t0 = common::now_ms();
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    let t1 = common::now_ms();
    assert_eq!(code, 0, "{out}");
    let (all, _) = env.json(&["points", "list", "--plan", tag, "--all", "--json"]);
    let killed = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == 99)
        .cloned()
        .unwrap();
    assert_eq!(killed["status"], "failed", "{killed}");
    let until = common::ms(&killed["locked_until"]);
    assert!(
        until >= t0 + 3_600_000 && until <= t1 + 3_600_000 + 1_000,
        "{killed}"
    );
    let pruned = env.run(&["prune", tag]);
    let out = common::stdout(&pruned);
    assert_eq!(
        pruned.status.code(),
        Some(0),
        "{out}{}",
        common::stderr(&pruned)
    );
    assert!(
        out.contains("kept point 99 (")
            && out.contains(&format!(
                "to delete then: objects under {location} of a failed backup"
            )),
        "{out}"
    );
}
