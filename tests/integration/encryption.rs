//! Client-side encryption at rest (`encryption = { key_file | key_env }`):
//! a plan whose regions are encrypted backs up, copies between keys, drills
//! and verifies; nothing in its vaults is plaintext; the `age` tool reads
//! an artifact without Lifeboat; a wrong or missing key is a clear error;
//! a flipped byte fails the drill and verify marks the point damaged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

/// A file name and a line of content found in the source data, and so in
/// the plaintext of its manifest and artifact.
const MARKER_NAME: &str = "marker-7f3a9c1e-plaintext-name.txt";
const MARKER_TEXT: &str = "lifeboat-marker-0c5d2b8e-plaintext-content";
const DR_KEY_ENV: &str = "LIFEBOAT_TEST_DR_KEY";

struct Encrypted {
    env: Env,
    primary_key: PathBuf,
    dr_key: String,
}

impl Encrypted {
    /// Seeded data with the markers, a key file for the primary region
    /// (`key generate -o`), a key for dr in an environment variable
    /// (`key generate` on stdout), and the plan.
    fn new() -> Encrypted {
        let env = Env::new();
        env.seed(40);
        std::fs::write(
            env.path("data/files").join(MARKER_NAME),
            format!("{MARKER_TEXT}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(env.path("keys")).unwrap();
        let primary_key = env.path("keys/primary.key");
        let out = env.run(&["key", "generate", "-o", primary_key.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).starts_with("Public key: age1"),
            "{}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "the key goes to the file only");
        let dr_key = generated_key(&env);
        let plan = env
            .local_plan("")
            .replace(
                "/primary\"\n",
                &format!(
                    "/primary\"\nencryption = {{ key_file = \"{}\" }}\n",
                    primary_key.display()
                ),
            )
            .replace(
                "/dr\"\n",
                &format!("/dr\"\nencryption = {{ key_env = \"{DR_KEY_ENV}\" }}\n"),
            );
        assert_eq!(plan.matches("encryption = ").count(), 2, "{plan}");
        env.write_plan("shop.toml", &plan);
        Encrypted {
            env,
            primary_key,
            dr_key,
        }
    }

    fn run_with(&self, dr_key: &str, args: &[&str]) -> Output {
        self.env
            .command(args)
            .env(DR_KEY_ENV, dr_key)
            .output()
            .expect("run lifeboat")
    }

    fn json_with(&self, dr_key: &str, args: &[&str]) -> (Value, i32) {
        let out = self.run_with(dr_key, args);
        let code = out.status.code().unwrap_or(-1);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of {args:?} is not JSON ({e}); exit {code}\nstderr: {}",
                stderr(&out)
            )
        });
        (v, code)
    }

    fn json(&self, args: &[&str]) -> (Value, i32) {
        self.json_with(&self.dr_key, args)
    }
}

/// A new key from `key generate` on stdout, in age-keygen's format.
fn generated_key(env: &Env) -> String {
    let out = env.run(&["key", "generate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("# created: "), "{text}");
    assert!(lines[1].starts_with("# public key: age1"), "{text}");
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"), "{text}");
    text
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn point<'a>(points: &'a [Value], resource: &str, region: &str) -> &'a Value {
    points
        .iter()
        .find(|p| p["resource"] == resource && p["region"] == region)
        .unwrap_or_else(|| panic!("no {resource} point in {region}: {points:?}"))
}

fn artifact(p: &Value) -> PathBuf {
    PathBuf::from(
        p["location"]
            .as_str()
            .unwrap()
            .strip_prefix("file://")
            .unwrap(),
    )
}

/// `age -d -i KEY FILE`: the plaintext, read without Lifeboat.
fn age_decrypt(key: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(file)
        .output()
        .expect("the age command is needed by the tests (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "age -d {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn check<'a>(drill: &'a Value, name: &str, resource: &str) -> &'a Value {
    drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && c["resource"] == resource)
        .unwrap_or_else(|| panic!("no {name} check of {resource} in {drill}"))
}

fn verdicts(v: &Value) -> Vec<(i64, String)> {
    v["points"]
        .as_array()
        .unwrap_or_else(|| panic!("no points in {v}"))
        .iter()
        .map(|p| {
            (
                p["point"].as_i64().unwrap(),
                p["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_encrypted_plan_backs_up_copies_drills_and_verifies_with_no_plaintext_stored() {
    let e = Encrypted::new();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&e.primary_key).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the key file is its owner's only");

    let (backup, code) = e.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let points = backup["points"].as_array().unwrap().clone();
    assert_eq!(points.len(), 4, "{backup}");

    // Every object of both vaults is an age file, and no marker shows.
    let stored = files_under(&e.env.path("vaults"));
    assert!(stored.len() >= 8, "{stored:?}");
    for f in &stored {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1\n"),
            "{} is not an age file",
            f.display()
        );
        for marker in [MARKER_NAME, MARKER_TEXT, "orders", "\"kind\""] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{} holds `{marker}` in plaintext",
                f.display()
            );
        }
    }

    // The age tool reads them without Lifeboat: the artifact is the one
    // the catalog recorded (its plaintext hash), in the primary region
    // (key file) and in dr (the key from the environment, re-encrypted on
    // copy), and the manifest lists the marker file.
    let dr_key_file = e.env.path("keys/dr.key");
    std::fs::write(&dr_key_file, &e.dr_key).unwrap();
    for (region, key) in [("primary", &e.primary_key), ("dr", &dr_key_file)] {
        let p = point(&points, "files", region);
        let plain = age_decrypt(key, &artifact(p));
        assert_eq!(
            hex::encode(Sha256::digest(&plain)),
            p["sha256"].as_str().unwrap(),
            "{region}: {p}"
        );
        let manifest_file = PathBuf::from(
            artifact(p)
                .to_str()
                .unwrap()
                .replace(".tar.zst", ".manifest.json"),
        );
        let manifest = age_decrypt(key, &manifest_file);
        let manifest: Value = serde_json::from_slice(&manifest).unwrap();
        assert!(manifest.to_string().contains(MARKER_NAME), "{region}");
    }
    // The sqlite artifact too, through zstd back to a database.
    let db = point(&points, "db", "dr");
    let plain = age_decrypt(&dr_key_file, &artifact(db));
    assert_eq!(
        hex::encode(Sha256::digest(&plain)),
        db["sha256"].as_str().unwrap()
    );

    // Drills restore through the key, and pass.
    let (drill, code) = e.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["passed"], true, "{drill}");

    // Verify, by size and header, and reading every byte.
    for args in [
        &["verify", "--json"][..],
        &["verify", "--read-data", "--json"][..],
    ] {
        let (v, code) = e.json(args);
        assert_eq!(code, 0, "{args:?}: {v}");
        let all = verdicts(&v);
        assert_eq!(all.len(), 4, "{v}");
        assert!(all.iter().all(|p| p.1 == "ok"), "{args:?}: {v}");
    }

    // The wrong key for dr: a clear error, naming where the key came
    // from; the drill fails its restore checks, verify marks nothing.
    let other = generated_key(&e.env);
    let (drill, code) = e.json_with(&other, &["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    let detail = check(&drill, "restore", "files")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&format!(
            "with the key in ${DR_KEY_ENV}: it is not the key this region was encrypted with"
        )),
        "{detail}"
    );
    assert!(!drill.to_string().contains("AGE-SECRET-KEY"), "{drill}");
    let (v, code) = e.json_with(&other, &["verify", "--region", "dr", "--json"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        verdicts(&v).iter().all(|p| p.1 == "unchecked"),
        "a wrong key says nothing of the data: {v}"
    );

    // A missing key file: the backup fails, saying which file.
    let moved = e.env.path("keys/moved.key");
    std::fs::rename(&e.primary_key, &moved).unwrap();
    let out = e.run_with(&e.dr_key, &["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains(&format!(
            "cannot read the key file {} of region `primary`",
            e.primary_key.display()
        )),
        "{said}"
    );
    std::fs::rename(&moved, &e.primary_key).unwrap();

    // A flipped byte in dr's files artifact: the drill's restore check
    // fails, and reading the data marks the point damaged.
    let flipped = point(&points, "files", "dr");
    let path = artifact(flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let (drill, code) = e.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 1, "{drill}");
    let restore = check(&drill, "restore", "files");
    assert_eq!(restore["passed"], false, "{drill}");
    assert!(
        restore["detail"]
            .as_str()
            .unwrap()
            .contains("does not authenticate"),
        "{restore}"
    );
    let (v, code) = e.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 1, "{v}");
    let id = flipped["id"].as_i64().unwrap();
    let verdict = verdicts(&v).into_iter().find(|p| p.0 == id).unwrap().1;
    assert_eq!(verdict, "damaged", "{v}");
    assert_eq!(v["summary"]["damaged"], 1, "{v}");
}

#[test]
fn a_lost_catalog_is_rebuilt_from_an_encrypted_vault() {
    let e = Encrypted::new();
    let (backup, code) = e.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let (drill, code) = e.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    e.env.lose_catalog();
    let (rebuilt, code) = e.json(&["catalog", "rebuild", "--from", "dr", "--json"]);
    assert_eq!(code, 0, "{rebuilt}");
    let r = &rebuilt["rebuilt"][0];
    assert_eq!(r["points"].as_array().unwrap().len(), 2, "{rebuilt}");
    assert!(r["skipped"].as_array().unwrap().is_empty(), "{rebuilt}");
    assert_eq!(r["drills"], serde_json::json!([1]), "{rebuilt}");
    let (drill, code) = e.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
}

/// On S3 (moto): both regions encrypted with one key, so copies go
/// server-side as ciphertext and their size is read back from the copy's
/// header; every object in both buckets is an age file.
#[test]
fn s3_vaults_with_one_key_copy_ciphertext_inside_s3_and_drill() {
    let tag = "encs3";
    let m = crate::moto::moto();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (east, west) = rt.block_on(async {
        m.bucket(&format!("{tag}-east"), "us-east-1").await;
        m.bucket(&format!("{tag}-west"), "us-west-2").await;
        (
            lifeboat::vault::s3_client("us-east-1", Some(&m.aws())).await,
            lifeboat::vault::s3_client("us-west-2", Some(&m.aws())).await,
        )
    });
    let env = Env::new();
    env.seed(30);
    std::fs::write(
        env.path("data/files").join(MARKER_NAME),
        format!("{MARKER_TEXT}\n"),
    )
    .unwrap();
    let key = env.path("shared.key");
    let out = env.run(&["key", "generate", "-o", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = env
        .local_plan("")
        .replace(
            &format!("file://{}/primary\"", env.path("vaults").display()),
            &format!(
                "s3://{tag}-east/lb\"\nencryption = {{ key_file = \"{}\" }}",
                key.display()
            ),
        )
        .replace(
            &format!("file://{}/dr\"", env.path("vaults").display()),
            &format!(
                "s3://{tag}-west/lb\"\nencryption = {{ key_file = \"{}\" }}",
                key.display()
            ),
        )
        .replace("[regions.primary]", "[regions.us-east-1]")
        .replace("[regions.dr]", "[regions.us-west-2]")
        .replace(
            "primary_region = \"primary\"",
            "primary_region = \"us-east-1\"",
        )
        .replace("copy_to = [\"dr\"]", "copy_to = [\"us-west-2\"]")
        .replace("region = \"dr\"", "region = \"us-west-2\"")
        + &format!("\n[aws]\nendpoint_url = \"{}\"\n", m.endpoint);
    assert_eq!(plan.matches("encryption = ").count(), 2, "{plan}");
    env.write_plan("shop.toml", &plan);

    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let points = backup["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "{backup}");
    for p in points {
        assert_eq!(p["status"], "complete", "{p}");
    }
    let copy = point(points, "files", "us-west-2");
    let source = point(points, "files", "us-east-1");
    assert_eq!(copy["size_bytes"], source["size_bytes"], "{backup}");

    for (client, bucket) in [
        (&east, format!("{tag}-east")),
        (&west, format!("{tag}-west")),
    ] {
        let keys: Vec<String> = rt.block_on(async {
            client
                .list_objects_v2()
                .bucket(&bucket)
                .send()
                .await
                .unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(String::from))
                .collect()
        });
        assert!(keys.len() >= 4, "{bucket}: {keys:?}");
        for k in keys {
            let body = rt.block_on(async {
                client
                    .get_object()
                    .bucket(&bucket)
                    .key(&k)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes()
            });
            assert!(body.starts_with(b"age-encryption.org/v1\n"), "{bucket}/{k}");
            assert!(
                !body
                    .windows(MARKER_NAME.len())
                    .any(|w| w == MARKER_NAME.as_bytes()),
                "{bucket}/{k} holds the marker in plaintext"
            );
        }
    }

    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    let (v, code) = env.json(&["verify", "--read-data", "--json"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["summary"]["ok"], 4, "{v}");
}
