//! The AWS kinds end to end, with the real `lifeboat` binary and the real
//! SDK against moto's server, through the proxy of `aws_proxy` (slow
//! polls, AWS rules moto skips, a log of which region was called).

use serde_json::Value;

use crate::aws_proxy::Proxy;
use crate::common::Env;
use crate::moto::moto;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";

async fn rds(region: &str) -> aws_sdk_rds::Client {
    lifeboat::aws::rds_client(region, Some(&moto().aws())).await
}

async fn s3(region: &str) -> aws_sdk_s3::Client {
    lifeboat::vault::s3_client(region, Some(&moto().aws())).await
}

/// An instance, a cluster and a bucket with `objects` objects under
/// `2026/` (and one outside it), all in the primary region; names carry
/// `tag` so tests sharing the moto server do not meet.
async fn seed(tag: &str, objects: usize) {
    let m = moto();
    let r = rds(PRIMARY).await;
    r.create_db_instance()
        .db_instance_identifier(format!("{tag}-orders"))
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("create instance");
    r.create_db_cluster()
        .db_cluster_identifier(format!("{tag}-aurora"))
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("create cluster");
    for b in [
        format!("{tag}-data"),
        format!("{tag}-vault-east"),
        format!("{tag}-vault-west"),
    ] {
        m.bucket(&b, if b.ends_with("west") { DR } else { PRIMARY })
            .await;
    }
    let c = s3(PRIMARY).await;
    let bucket = format!("{tag}-data");
    let puts = (0..objects).map(|i| {
        let c = c.clone();
        let bucket = bucket.clone();
        async move {
            // Keys that need escaping in a copy source, and sizes that vary.
            let key = format!("2026/inv oice+{i:04}é.txt");
            c.put_object()
                .bucket(bucket)
                .key(key)
                .body(vec![b'x'; i % 97].into())
                .send()
                .await
                .expect("put object");
        }
    });
    futures_util::future::join_all(puts).await;
    c.put_object()
        .bucket(&bucket)
        .key("2025/outside.txt")
        .body(b"not in the prefix".to_vec().into())
        .send()
        .await
        .unwrap();
}

fn plan(env: &Env, tag: &str, endpoint: &str, extra_resources: &str) -> String {
    let text = format!(
        r#"
name = "{tag}"
owner = "dba@example.com"
rto = "1h"
rpo = "1d"

[backup]
schedule = "0 * * * *"
primary_region = "{PRIMARY}"
copy_to = ["{DR}"]

[regions.{PRIMARY}]
vault = "s3://{tag}-vault-east/lifeboat"

[regions.{DR}]
vault = "s3://{tag}-vault-west/lifeboat"

[[resources]]
name = "invoices"
kind = "s3"
bucket = "{tag}-data"
prefix = "2026/"

[[resources]]
name = "orders-db"
kind = "rds-instance"
instance = "{tag}-orders"

[[resources]]
name = "aurora"
kind = "rds-cluster"
cluster = "{tag}-aurora"
instance_class = "db.r6g.large"
{extra_resources}
[drill]
region = "{DR}"
isolate_primary = true

[aws]
endpoint_url = "{endpoint}"
poll_interval = "20ms"
"#
    );
    env.write_plan(&format!("{tag}.toml"), &text);
    text
}

fn backup(env: &Env, tag: &str) -> (Value, i32) {
    env.json(&["backup", "run", tag, "--json"])
}

/// Names of drill leftovers in the drill region: instances, clusters and
/// scratch objects.
async fn leftovers(tag: &str) -> Vec<String> {
    let r = rds(DR).await;
    let mut out = Vec::new();
    for i in r
        .describe_db_instances()
        .send()
        .await
        .unwrap()
        .db_instances()
    {
        let id = i.db_instance_identifier().unwrap_or("");
        if id.starts_with("lifeboat-drill") && id.contains(tag) {
            out.push(format!("instance {id}"));
        }
    }
    for c in r.describe_db_clusters().send().await.unwrap().db_clusters() {
        let id = c.db_cluster_identifier().unwrap_or("");
        if id.starts_with("lifeboat-drill") && id.contains(tag) {
            out.push(format!("cluster {id}"));
        }
    }
    let listed = s3(DR)
        .await
        .list_objects_v2()
        .bucket(format!("{tag}-vault-west"))
        .prefix("lifeboat/lifeboat-drills/")
        .send()
        .await
        .unwrap();
    for o in listed.contents() {
        out.push(format!("object {}", o.key().unwrap_or("")));
    }
    out
}

async fn snapshot_count(region: &str, tag: &str) -> usize {
    let r = rds(region).await;
    let db = r.describe_db_snapshots().send().await.unwrap();
    let cl = r.describe_db_cluster_snapshots().send().await.unwrap();
    db.db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .chain(
            cl.db_cluster_snapshots()
                .iter()
                .filter_map(|s| s.db_cluster_snapshot_identifier()),
        )
        .filter(|id| id.starts_with(&format!("lifeboat-{tag}-")))
        .count()
}

#[test]
fn a_bucket_an_instance_and_a_cluster_are_copied_drilled_in_isolation_and_pruned() {
    let env = Env::new();
    let tag = "awsfull";
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Past 1,000 objects: listing and copying must page.
    rt.block_on(seed(tag, 1005));
    let proxy = Proxy::start(&moto().endpoint, 3, false);
    let text = plan(&env, tag, &proxy.endpoint, "");

    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");
    let points = out["points"].as_array().unwrap();
    assert_eq!(points.len(), 6, "{out}");
    assert!(points.iter().all(|p| p["status"] == "complete"), "{out}");
    let invoices: Vec<&Value> = points
        .iter()
        .filter(|p| p["resource"] == "invoices")
        .collect();
    assert_eq!(invoices[0]["file_count"], 1005, "{out}");
    assert!(invoices[1]["location"]
        .as_str()
        .unwrap()
        .starts_with(&format!("s3://{tag}-vault-west/lifeboat/{tag}/invoices/")));
    let db: Vec<&Value> = points
        .iter()
        .filter(|p| p["resource"] == "orders-db")
        .collect();
    assert!(
        db[0]["location"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:rds:us-east-1:"),
        "{out}"
    );
    assert!(
        db[1]["location"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:rds:us-west-2:"),
        "{out}"
    );
    assert!(
        proxy.rewrites() >= 4,
        "waits must poll past not-yet-available answers; {} held back",
        proxy.rewrites()
    );
    assert_eq!(rt.block_on(snapshot_count(DR, tag)), 2);

    // The drill runs from us-west-2 alone.
    proxy.clear_calls();
    let (drill, code) = env.json(&["drill", "run", tag, "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["status"], "passed", "{drill}");
    let checks = drill["checks"].as_array().unwrap();
    let objects = checks
        .iter()
        .find(|c| c["name"] == "objects")
        .expect("objects check");
    assert_eq!(objects["passed"], true, "{drill}");
    assert!(
        objects["detail"].as_str().unwrap().contains("1005 objects"),
        "{drill}"
    );
    let calls = proxy.calls();
    assert!(
        calls.iter().any(|c| c.region == DR && c.service == "rds"),
        "{calls:?}"
    );
    let primary: Vec<_> = calls.iter().filter(|c| c.region == PRIMARY).collect();
    assert!(
        primary.is_empty(),
        "an isolated drill called the primary region: {primary:?}"
    );
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());

    // Retention deletes snapshots and objects in every region.
    let keep_one = text.replace(
        "[regions.us-east-1]",
        "[retention]\nkeep_last = 1\n\n[regions.us-east-1]",
    );
    env.write_plan(&format!("{tag}.toml"), &keep_one);
    let (again, code) = backup(&env, tag);
    assert_eq!(code, 0, "{again}");
    assert_eq!(rt.block_on(snapshot_count(PRIMARY, tag)), 4);
    let prune = env.run(&["prune", tag]);
    assert_eq!(
        prune.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&prune)
    );
    assert_eq!(rt.block_on(snapshot_count(PRIMARY, tag)), 2);
    assert_eq!(rt.block_on(snapshot_count(DR, tag)), 2);
    let old = invoices[1]["location"].as_str().unwrap();
    let old_prefix = old
        .strip_prefix(&format!("s3://{tag}-vault-west/"))
        .unwrap();
    let left = rt
        .block_on(async {
            s3(DR)
                .await
                .list_objects_v2()
                .bucket(format!("{tag}-vault-west"))
                .prefix(old_prefix)
                .send()
                .await
        })
        .unwrap();
    assert_eq!(
        left.key_count(),
        Some(0),
        "objects of a pruned point remain"
    );
}

#[test]
fn a_drill_that_fails_half_way_still_deletes_what_it_restored() {
    let env = Env::new();
    let tag = "awsfail";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 3));
    let ok = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &ok.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    let failing = Proxy::start(&moto().endpoint, 0, true);
    plan(&env, tag, &failing.endpoint, "");
    let (drill, code) = env.json(&["drill", "run", tag, "--json"]);
    assert_ne!(code, 0, "{drill}");
    assert_eq!(drill["status"], "failed", "{drill}");
    let restore = drill["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "orders-db" && c["name"] == "restore")
        .cloned()
        .unwrap();
    assert!(
        restore["detail"]
            .as_str()
            .unwrap()
            .contains("incompatible-restore"),
        "{restore}"
    );
    let deletes: Vec<_> = failing
        .calls()
        .into_iter()
        .filter(|c| c.action.starts_with("DeleteDB"))
        .collect();
    assert!(deletes.iter().all(|c| c.region == DR), "{deletes:?}");
    assert!(
        deletes.len() >= 3,
        "instance, cluster instance and cluster: {deletes:?}"
    );
    assert!(failing.refused().is_empty(), "{:?}", failing.refused());
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());
}

#[test]
fn a_missing_instance_or_bucket_is_a_failed_point_with_the_aws_code() {
    let env = Env::new();
    let tag = "awsmiss";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        moto().bucket("awsmiss-vault-east", PRIMARY).await;
        moto().bucket("awsmiss-vault-west", DR).await;
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &proxy.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_ne!(code, 0, "{out}");
    let points = out["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "no copies of failed points: {out}");
    assert!(points.iter().all(|p| p["status"] == "failed"), "{out}");
    let error = |r: &str| {
        points.iter().find(|p| p["resource"] == r).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let db = error("orders-db");
    assert!(
        db.contains("awsmiss-orders") && db.contains("us-east-1"),
        "{db}"
    );
    assert!(
        db.contains("CreateDBSnapshot failed: DBInstanceNotFound"),
        "{db}"
    );
    let cl = error("aurora");
    assert!(
        cl.contains("CreateDBClusterSnapshot failed: DBClusterNotFound"),
        "{cl}"
    );
    let bucket = error("invoices");
    assert!(
        bucket.contains("ListObjectsV2 failed: NoSuchBucket"),
        "{bucket}"
    );
    // Recorded as such.
    let (list, _) = env.json(&["points", "list", "--plan", tag, "--all", "--json"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed"),
        "{list}"
    );
}

#[test]
fn an_s3_resource_needs_s3_vaults() {
    let env = Env::new();
    let text = plan(&env, "awsval", "http://127.0.0.1:9", "")
        .replace("s3://awsval-vault-west/lifeboat", "file:///tmp/x");
    env.write_plan("awsval.toml", &text);
    let out = env.run(&["plan", "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::stderr(&out);
    assert!(
        err.contains("awsval.toml:15:") && err.contains("give the region an s3:// vault"),
        "{err}"
    );
}

#[test]
fn a_drill_killed_mid_restore_is_cleaned_up_by_the_next_one() {
    let env = Env::new();
    let tag = "awscrash";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 2));
    let ok = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &ok.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    // Instances never come up through this proxy: the drill waits, and is
    // killed while it does.
    let stuck = Proxy::start(&moto().endpoint, usize::MAX, false);
    plan(&env, tag, &stuck.endpoint, "");
    let mut child = env
        .command(&["drill", "run", tag])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !stuck
        .calls()
        .iter()
        .any(|c| c.action == "RestoreDBInstanceFromDBSnapshot")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the drill never restored"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        rt.block_on(leftovers(tag))
            .iter()
            .any(|l| l.starts_with("instance lifeboat-drill-1-")),
        "the killed drill should have left its instance"
    );

    plan(&env, tag, &ok.endpoint, "");
    let (drill, code) = env.json(&["drill", "run", tag, "--json"]);
    assert_eq!(code, 0, "{drill}");
    assert_eq!(drill["id"], 2, "{drill}");
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());
    let (list, _) = env.json(&["drills", "list", "--plan", tag, "--json"]);
    let first = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == 1)
        .cloned()
        .unwrap();
    assert_eq!(first["status"], "failed", "{first}");
}

#[test]
fn an_encrypted_snapshot_is_not_copied_to_a_region_without_a_key() {
    let env = Env::new();
    let tag = "awsenc";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        moto().bucket("awsenc-vault-east", PRIMARY).await;
        moto().bucket("awsenc-vault-west", DR).await;
        rds(PRIMARY)
            .await
            .create_db_instance()
            .db_instance_identifier("awsenc-orders")
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .storage_encrypted(true)
            .master_username("admin")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("create encrypted instance");
    });
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    let text = plan(&env, tag, &proxy.endpoint, "");
    // Only the instance: moto would copy it without a key; AWS would not.
    let only_db = instance_only(&text, tag, "");
    env.write_plan(&format!("{tag}.toml"), &only_db);
    let (out, code) = backup(&env, tag);
    assert_ne!(code, 0, "{out}");
    let points = out["points"].as_array().unwrap();
    assert_eq!(points[0]["status"], "complete", "{out}");
    assert_eq!(points[1]["status"], "failed", "{out}");
    let e = points[1]["error"].as_str().unwrap();
    assert!(
        e.contains("is encrypted: region us-west-2 needs a `kms_key`"),
        "{e}"
    );
    assert!(
        !proxy.calls().iter().any(|c| c.action == "CopyDBSnapshot"),
        "the copy must be refused before asking AWS"
    );
}

/// The plan of `plan()` with only its RDS instance, and `checks` appended
/// to its [drill].
fn instance_only(text: &str, tag: &str, checks: &str) -> String {
    let text = text
        .replace(
            &format!("[[resources]]\nname = \"invoices\"\nkind = \"s3\"\nbucket = \"{tag}-data\"\nprefix = \"2026/\"\n"),
            "",
        )
        .replace(
            &format!("[[resources]]\nname = \"aurora\"\nkind = \"rds-cluster\"\ncluster = \"{tag}-aurora\"\ninstance_class = \"db.r6g.large\"\n"),
            "",
        );
    assert!(!text.contains("aurora") && !text.contains("invoices"));
    text.replace("\n[aws]", &format!("\n{checks}\n[aws]"))
}

#[test]
fn sql_checks_run_against_the_restored_endpoint_with_credentials_from_the_environment() {
    use crate::pg::{self, server, PASSWORD, USER};
    let env = Env::new();
    let tag = "awssql";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 1));
    // The "restored instance" the proxy points the drill at is a real
    // PostgreSQL server holding the data the checks look for.
    let pg = server();
    pg.create_shop("awssql_shop", 250);
    let proxy = Proxy::start(&moto().endpoint, 1, false);
    proxy.override_endpoint("127.0.0.1", pg.port);
    let text = plan(&env, tag, &proxy.endpoint, "");
    let checks = r#"
[[drill.checks]]
name = "orders"
resource = "orders-db"
sql = "SELECT count(*) FROM orders"
expect = 250
"#;
    env.write_plan(&format!("{tag}.toml"), &instance_only(&text, tag, checks));
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    let drill = |password: &str| {
        let mut cmd = pg::with_pg_env(env.command(&["drill", "run", tag, "--json"]), password);
        cmd.env("PGUSER", USER).env("PGDATABASE", "awssql_shop");
        let out = cmd.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("not JSON: {}", crate::common::stderr(&out));
        });
        (v, out.status.code())
    };
    let (ok, code) = drill(PASSWORD);
    assert_eq!(code, Some(0), "{ok}");
    let check = ok["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders")
        .cloned()
        .unwrap();
    assert_eq!(check["passed"], true, "{check}");
    assert!(check["detail"].as_str().unwrap().contains("250"), "{check}");

    // Wrong credentials: the check fails, says why without the password,
    // and the instance is still deleted.
    let (bad, code) = drill("wrong-password-5d1");
    assert_ne!(code, Some(0), "{bad}");
    let text = bad.to_string();
    assert!(text.contains("cannot connect to 127.0.0.1"), "{text}");
    assert!(!text.contains("wrong-password-5d1"), "{text}");
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());
}

#[test]
fn sql_checks_run_on_a_restored_mariadb_instance_with_the_mysql_clients_credentials() {
    use crate::mariadb::{self, server, PASSWORD};
    let env = Env::new();
    let tag = "awsmaria";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        rds(PRIMARY)
            .await
            .create_db_instance()
            .db_instance_identifier(format!("{tag}-orders"))
            .engine("mariadb")
            // moto knows no default version for mariadb.
            .engine_version("10.11.9")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("admin")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("create instance");
        for (b, region) in [("vault-east", PRIMARY), ("vault-west", DR)] {
            moto().bucket(&format!("{tag}-{b}"), region).await;
        }
    });
    // The "restored instance" is a real MariaDB server holding the data.
    let maria = server();
    maria.create_shop("awsmaria_shop", 250);
    let proxy = Proxy::start(&moto().endpoint, 1, false);
    proxy.override_endpoint("127.0.0.1", maria.port);
    let text = plan(&env, tag, &proxy.endpoint, "");
    let checks = r#"
[[drill.checks]]
name = "orders"
resource = "orders-db"
sql = "SELECT count(*) FROM awsmaria_shop.orders WHERE total >= 0"
expect = 250

[[drill.checks]]
name = "has-orders"
resource = "orders-db"
sql = "SELECT count(*) > 0 FROM awsmaria_shop.orders"
"#;
    env.write_plan(&format!("{tag}.toml"), &instance_only(&text, tag, checks));
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    let drill = |password: &str| {
        let cmd = mariadb::with_mysql_env(env.command(&["drill", "run", tag, "--json"]), password);
        let out = { cmd }.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("not JSON: {}", crate::common::stderr(&out));
        });
        (v, out.status.code())
    };
    let (ok, code) = drill(PASSWORD);
    assert_eq!(code, Some(0), "{ok}");
    for name in ["orders", "has-orders"] {
        let check = ok["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {ok}"));
        assert_eq!(check["passed"], true, "{check}");
    }

    // Wrong credentials: the check fails, says why without the password,
    // and the instance is still deleted.
    let (bad, code) = drill("wrong-password-77c");
    assert_ne!(code, Some(0), "{bad}");
    let text = bad.to_string();
    assert!(text.contains("cannot connect to 127.0.0.1"), "{text}");
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("wrong-password-77c"), "{text}");
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());
}

#[test]
fn prune_removes_the_snapshot_a_failed_backup_left() {
    let env = Env::new();
    let tag = "awsleft";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 1));
    // The snapshot never looks available through this proxy, and the plan
    // gives a backup one second: the point fails, its snapshot remains.
    let stuck = Proxy::start(&moto().endpoint, usize::MAX, false);
    let text = plan(&env, tag, &stuck.endpoint, "").replace(
        "primary_region =",
        "completion_window = \"1s\"\nprimary_region =",
    );
    env.write_plan(&format!("{tag}.toml"), &instance_only(&text, tag, ""));
    let (out, code) = backup(&env, tag);
    assert_ne!(code, 0, "{out}");
    let error = out["points"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("gave up waiting for snapshot lifeboat-awsleft-orders-db-"),
        "{error}"
    );
    assert_eq!(rt.block_on(snapshot_count(PRIMARY, tag)), 1);

    let ok = Proxy::start(&moto().endpoint, 0, false);
    env.write_plan(
        &format!("{tag}.toml"),
        &instance_only(&text.replace(&stuck.endpoint, &ok.endpoint), tag, ""),
    );
    let prune = env.run(&["prune", tag]);
    assert_eq!(
        prune.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&prune)
    );
    assert!(
        crate::common::stdout(&prune).contains("of a failed backup"),
        "{}",
        crate::common::stdout(&prune)
    );
    assert_eq!(rt.block_on(snapshot_count(PRIMARY, tag)), 0);
    // Done once: the next prune has nothing to do.
    let again = env.run(&["prune", tag]);
    assert!(
        crate::common::stdout(&again).contains("nothing to prune"),
        "{}",
        crate::common::stdout(&again)
    );
}

#[test]
fn prune_removes_the_objects_a_failed_bucket_backup_copied() {
    let env = Env::new();
    let tag = "awss3left";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 40));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    proxy.refuse_copies_after(25);
    let text = plan(&env, tag, &proxy.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_ne!(code, 0, "{out}");
    let point = out["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "invoices")
        .cloned()
        .unwrap();
    assert_eq!(point["status"], "failed", "{point}");
    let error = point["error"].as_str().unwrap();
    assert!(error.contains("CopyObject failed: AccessDenied"), "{error}");
    let stored = || {
        rt.block_on(async {
            s3(PRIMARY)
                .await
                .list_objects_v2()
                .bucket(format!("{tag}-vault-east"))
                .prefix(format!("lifeboat/{tag}/invoices/"))
                .send()
                .await
                .unwrap()
                .key_count()
                .unwrap_or(0)
        })
    };
    assert!(stored() > 0, "the failed run copied some objects");
    let ok = Proxy::start(&moto().endpoint, 0, false);
    env.write_plan(
        &format!("{tag}.toml"),
        &text.replace(&proxy.endpoint, &ok.endpoint),
    );
    let prune = env.run(&["prune", tag]);
    assert_eq!(
        prune.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&prune)
    );
    assert_eq!(stored(), 0, "{}", crate::common::stdout(&prune));
}

/// Every object of `bucket` (in `region`): key → body.
async fn objects(region: &str, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let c = s3(region).await;
    let listed = c
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        let body = c
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes().to_vec();
        out.push((key, bytes));
    }
    out.sort();
    out
}

#[test]
fn restore_copies_a_buckets_point_into_a_bucket_of_the_dr_region() {
    let env = Env::new();
    let tag = "awsrestore";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 7));
    rt.block_on(moto().bucket(&format!("{tag}-back"), DR));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &proxy.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    let to = format!("{tag}-back");
    let (v, code) = env.json(&[
        "restore",
        tag,
        "--resource",
        "invoices",
        "--to-bucket",
        &to,
        "--json",
    ]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["region"], DR);
    let source = rt.block_on(objects(PRIMARY, &format!("{tag}-data"), "2026/"));
    assert_eq!(source.len(), 7);
    assert_eq!(rt.block_on(objects(DR, &to, "")), source);
    // The objects check ran on the restored objects, as in a drill.
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "objects" && c["passed"] == true),
        "{v:#}"
    );
    // Nothing of the staging is left in the vault.
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());

    // A bucket holding objects is refused without --overwrite.
    let out = env.run(&["restore", tag, "--resource", "invoices", "--to-bucket", &to]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        crate::common::stderr(&out)
    );
    assert!(crate::common::stderr(&out).contains("holds objects"));
    // Under another prefix, it goes in beside them.
    let (v, code) = env.json(&[
        "restore",
        tag,
        "--resource",
        "invoices",
        "--to-bucket",
        &to,
        "--to-prefix",
        "again/",
        "--json",
    ]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(rt.block_on(objects(DR, &to, "again/")).len(), 7);
}

#[test]
fn restore_creates_an_instance_and_a_cluster_it_never_deletes_and_never_overwrites() {
    let env = Env::new();
    let tag = "awsrdsrestore";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag, 1));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &proxy.endpoint, "");
    let (out, code) = backup(&env, tag);
    assert_eq!(code, 0, "{out}");

    let instance = format!("{tag}-orders-back");
    let cluster = format!("{tag}-aurora-back");
    let (v, code) = env.json(&[
        "restore",
        tag,
        "--resource",
        "orders-db",
        "--resource",
        "aurora",
        "--to-instance",
        &instance,
        "--to-cluster",
        &cluster,
        "--instance-class",
        "db.r6g.large",
        "--json",
    ]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["region"], DR);
    let r = rt.block_on(rds(DR));
    let found = rt.block_on(async {
        r.describe_db_instances()
            .db_instance_identifier(&instance)
            .send()
            .await
            .unwrap()
            .db_instances()
            .len()
    });
    assert_eq!(found, 1, "the instance is in the DR region");
    let clusters = rt.block_on(async {
        r.describe_db_clusters()
            .db_cluster_identifier(&cluster)
            .send()
            .await
            .unwrap()
            .db_clusters()
            .len()
    });
    assert_eq!(clusters, 1);
    for res in v["resources"].as_array().unwrap() {
        assert!(
            res["detail"].as_str().unwrap().contains("available at"),
            "{res}"
        );
    }
    // Never over an existing one.
    let out = env.run(&[
        "restore",
        tag,
        "--resource",
        "orders-db",
        "--to-instance",
        &instance,
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        crate::common::stderr(&out)
    );
    assert!(
        crate::common::stderr(&out).contains("exists"),
        "{}",
        crate::common::stderr(&out)
    );
    // No drill leftovers, and what the restore created is still there.
    assert_eq!(rt.block_on(leftovers(tag)), Vec::<String>::new());
}
