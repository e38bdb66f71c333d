//! One conformance suite, run unchanged against every vault backend:
//! `file://` and `s3://` (moto's server, real SDK).

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::common::*;
use crate::moto::moto;
use lifeboat::vault::{Vault, VaultError, VaultTarget};

async fn read_all(v: &Vault, key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    v.get(key)
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

/// The cases every backend must pass. `other` is a second vault of the same
/// kind (another region) for copies.
async fn conformance(v: &Vault, other: &Vault) {
    // Round trips, small and multipart-sized.
    let small = b"hello vault".to_vec();
    assert_eq!(
        v.put("p/r/small.bin", &small[..]).await.unwrap(),
        small.len() as u64
    );
    assert_eq!(read_all(v, "p/r/small.bin").await, small);
    let big = pseudo_random(20 << 20, 11);
    assert_eq!(
        v.put("p/r/big.bin", &big[..]).await.unwrap(),
        big.len() as u64
    );
    let back = read_all(v, "p/r/big.bin").await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&big));
    assert_eq!(v.size("p/r/big.bin").await.unwrap(), big.len() as u64);

    // A failed put leaves nothing under the key (big enough to be multipart).
    assert!(v
        .put("p/r/failed.bin", FailingReader { left: 12 << 20 })
        .await
        .is_err());
    assert!(matches!(
        v.get("p/r/failed.bin").await,
        Err(VaultError::NotFound { .. })
    ));

    // Listing is sorted, prefix-filtered and paginates past 1000 objects.
    for i in 0..1005 {
        v.put(&format!("many/{i:05}"), &b"x"[..]).await.unwrap();
    }
    let listed = v.list("many/").await.unwrap();
    assert_eq!(listed.len(), 1005);
    assert_eq!(listed[0].key, "many/00000");
    assert_eq!(listed[1004].key, "many/01004");
    let listed = v.list("p/").await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, vec!["p/r/big.bin", "p/r/small.bin"]);

    // Copies to another vault keep every byte.
    let c = v
        .copy_to("p/r/big.bin", other, "p/r/big-copy.bin")
        .await
        .unwrap();
    assert_eq!(c.size, big.len() as u64);
    assert_eq!(
        Sha256::digest(read_all(other, "p/r/big-copy.bin").await),
        Sha256::digest(&big)
    );

    // Delete is idempotent; a missing object is NotFound.
    v.delete("p/r/small.bin").await.unwrap();
    v.delete("p/r/small.bin").await.unwrap();
    assert!(matches!(
        v.get("p/r/small.bin").await,
        Err(VaultError::NotFound { .. })
    ));

    // Keys cannot escape.
    assert!(v.put("../x", &b"x"[..]).await.is_err());
    assert!(v.put("/x", &b"x"[..]).await.is_err());
    assert!(v.put("a//b", &b"x"[..]).await.is_err());
}

#[tokio::test]
async fn file_vaults_pass_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let a = Vault::from_url(&format!("file://{}/a", dir.path().display())).unwrap();
    let b = Vault::from_url(&format!("file://{}/b", dir.path().display())).unwrap();
    conformance(&a, &b).await;
}

#[tokio::test]
async fn s3_vaults_pass_the_conformance_suite() {
    let m = moto();
    m.bucket("conf-east", "us-east-1").await;
    m.bucket("conf-west", "us-west-2").await;
    let aws = m.aws();
    let open = |url: &'static str, region: &'static str| {
        let aws = aws.clone();
        async move {
            Vault::open(VaultTarget {
                url,
                region,
                aws: Some(&aws),
                kms_key: None,
                object_lock: None,
            })
            .await
            .unwrap()
        }
    };
    let a = open("s3://conf-east/lifeboat", "us-east-1").await;
    let b = open("s3://conf-west/dr", "us-west-2").await;
    conformance(&a, &b).await;
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error_with_the_aws_code() {
    let m = moto();
    let aws = m.aws();
    let v = Vault::open(VaultTarget {
        url: "s3://no-such-bucket/x",
        region: "us-east-1",
        aws: Some(&aws),
        kms_key: None,
        object_lock: None,
    })
    .await
    .unwrap();
    let err = v.put("a/b", &b"x"[..]).await.unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket/x/a/b"), "{err}");
    assert!(err.contains("PutObject failed: NoSuchBucket"), "{err}");
}

#[test]
fn the_whole_loop_runs_on_s3_vaults_in_two_regions() {
    let env = Env::new();
    env.seed(50);
    let m = moto();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        m.bucket("loop-use1", "us-east-1").await;
        m.bucket("loop-usw2", "us-west-2").await;
    });
    let plan = env
        .local_plan("")
        .replace(
            "primary_region = \"primary\"",
            "primary_region = \"us-east-1\"",
        )
        .replace("copy_to = [\"dr\"]", "copy_to = [\"us-west-2\"]")
        .replace(
            &format!(
                "[regions.primary]\nvault = \"file://{}/primary\"",
                env.path("vaults").display()
            ),
            "[regions.us-east-1]\nvault = \"s3://loop-use1/lifeboat\"",
        )
        .replace(
            &format!(
                "[regions.dr]\nvault = \"file://{}/dr\"",
                env.path("vaults").display()
            ),
            "[regions.us-west-2]\nvault = \"s3://loop-usw2/lifeboat\"",
        )
        .replace("region = \"dr\"", "region = \"us-west-2\"")
        + &format!("\n[aws]\nendpoint_url = \"{}\"\n", m.endpoint);
    env.write_plan("shop.toml", &plan);
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let points = backup["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert!(points
        .iter()
        .all(|p| p["location"].as_str().unwrap().starts_with("s3://loop-us")));
    let (drill, code) = env.json(&["drill", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["region"], "us-west-2");
    assert_eq!(drill["checks"].as_array().unwrap().len(), 4);
    // Prune deletes the objects in S3 too.
    let plan2 = plan.replace(
        "[regions.us-east-1]",
        "[retention]\nkeep_last = 1\n\n[regions.us-east-1]",
    );
    env.write_plan("shop.toml", &plan2);
    env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(env.run(&["prune", "shop"]).status.code(), Some(0));
    let remaining = rt.block_on(async {
        let c = lifeboat::vault::s3_client("us-west-2", Some(&m.aws())).await;
        // Points only: drill evidence records live under evidence/.
        c.list_objects_v2()
            .bucket("loop-usw2")
            .prefix("lifeboat/shop/")
            .send()
            .await
            .unwrap()
            .key_count()
            .unwrap_or(0)
    });
    assert_eq!(
        remaining, 4,
        "one point per resource left: artifact + manifest each"
    );
}

/// An `s3://` vault on moto, and the SDK client behind it (same region).
async fn s3_vault(bucket: &str, region: &str) -> (Vault, aws_sdk_s3::Client) {
    let m = moto();
    m.bucket(bucket, region).await;
    let aws = m.aws();
    let url = format!("s3://{bucket}/lb");
    let v = Vault::open(VaultTarget {
        url: &url,
        region,
        aws: Some(&aws),
        kms_key: None,
        object_lock: None,
    })
    .await
    .unwrap();
    (v, lifeboat::vault::s3_client(region, Some(&aws)).await)
}

async fn etag(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let head = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    head.e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

#[tokio::test]
async fn s3_parallel_multipart_put_keeps_every_byte_and_aborts_cleanly() {
    let (v, client) = s3_vault("mp-put", "us-east-1").await;
    // Six parts (five of 8 MiB), uploaded in parallel, completed in order.
    let data = pseudo_random((40 << 20) + 4321, 23);
    assert_eq!(
        v.put("p/r/a.bin", &data[..]).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(
        Sha256::digest(read_all(&v, "p/r/a.bin").await),
        Sha256::digest(&data)
    );
    // A multipart object's ETag ends with its number of parts.
    assert!(
        etag(&client, "mp-put", "lb/p/r/a.bin")
            .await
            .ends_with("-6"),
        "expected a 6-part upload"
    );

    // The source fails after 30 MiB, with parts still in flight: no
    // object, and no multipart upload left holding parts.
    let err = v
        .put("p/r/failed.bin", FailingReader { left: 30 << 20 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("source died"), "{err}");
    assert!(matches!(
        v.get("p/r/failed.bin").await,
        Err(VaultError::NotFound { .. })
    ));
    let pending = client
        .list_multipart_uploads()
        .bucket("mp-put")
        .send()
        .await
        .unwrap();
    assert!(
        pending.uploads().is_empty(),
        "pending uploads: {:?}",
        pending.uploads()
    );
}

#[tokio::test]
async fn s3_copies_above_the_threshold_are_multipart_and_byte_identical() {
    let (src, _) = s3_vault("mpc-east", "us-east-1").await;
    let (dst, client) = s3_vault("mpc-west", "us-west-2").await;
    let Vault::S3(d) = dst else {
        unreachable!("an s3:// URL opens an S3 vault")
    };
    // Objects over 1 MiB are copied in 5 MiB ranges.
    let dst = Vault::S3(d.with_multipart_copy(1 << 20, 5 << 20));
    let data = pseudo_random((12 << 20) + 777, 31);
    src.put("p/r/big.bin", &data[..]).await.unwrap();
    let c = src
        .copy_to("p/r/big.bin", &dst, "p/r/copy.bin")
        .await
        .unwrap();
    assert_eq!(c.size, data.len() as u64);
    assert_eq!(
        Sha256::digest(read_all(&dst, "p/r/copy.bin").await),
        Sha256::digest(&data)
    );
    assert!(
        etag(&client, "mpc-west", "lb/p/r/copy.bin")
            .await
            .ends_with("-3"),
        "expected a 3-part copy"
    );
    // Below the threshold: one CopyObject (a plain ETag).
    src.put("p/r/small.bin", &b"small"[..]).await.unwrap();
    src.copy_to("p/r/small.bin", &dst, "p/r/small.bin")
        .await
        .unwrap();
    assert_eq!(read_all(&dst, "p/r/small.bin").await, b"small");
    assert!(!etag(&client, "mpc-west", "lb/p/r/small.bin")
        .await
        .contains('-'));
    let pending = client
        .list_multipart_uploads()
        .bucket("mpc-west")
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty());
}

#[tokio::test]
async fn s3_copies_from_a_prefix_that_needs_url_encoding_keep_every_byte() {
    let m = moto();
    m.bucket("enc-east", "us-east-1").await;
    m.bucket("enc-west", "us-west-2").await;
    let aws = m.aws();
    let open = |url: &'static str, region: &'static str| {
        let aws = aws.clone();
        async move {
            Vault::open(VaultTarget {
                url,
                region,
                aws: Some(&aws),
                kms_key: None,
                object_lock: None,
            })
            .await
            .unwrap()
        }
    };
    // A copy source is a URL path: the space, `+` and `%` of this prefix
    // must reach S3 encoded, or it copies another key (or none).
    let src = open("s3://enc-east/dr vault+%41", "us-east-1").await;
    let dst = open("s3://enc-west/lb", "us-west-2").await;
    src.put("p/r/x.bin", &b"encoded"[..]).await.unwrap();
    let c = src.copy_to("p/r/x.bin", &dst, "p/r/x.bin").await.unwrap();
    assert_eq!(c.size, 7);
    assert_eq!(read_all(&dst, "p/r/x.bin").await, b"encoded");
}
