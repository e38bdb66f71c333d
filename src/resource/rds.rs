//! The `rds-instance` and `rds-cluster` kinds: points are RDS snapshots,
//! held by RDS itself (no vault).
//!
//! - A point is a DB (or cluster) snapshot with a deterministic identifier
//!   (plan, resource, slot), tagged with plan, resource and point, waited
//!   until `available`. Its `data_time` is RDS's `SnapshotCreateTime`.
//! - A copy is issued in the destination region with the source's ARN and
//!   the destination region's KMS key (the Rust SDK has no `SourceRegion`
//!   shortcut; real AWS refuses an encrypted copy without a destination
//!   key, which is checked here before calling, as test servers do not).
//! - A drill restores an instance (or a cluster and one instance in it)
//!   named after the drill from the copy in the drill region, waits until
//!   it is available, and the cleanup deletes it without a final snapshot.
//!   Everything it creates is named from the drill, so a crashed drill's
//!   leftovers are found and deleted by name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_rds::types::Tag;
use aws_sdk_rds::Client;

use super::{Kind, PointFlag, ResourceError, Restored, RestoredInto, Scratch, Snapshot};
use crate::aws::{rds_client, wait_until, AwsError, GaveUp};
use crate::plan::{AwsSpec, RdsRestore, ResourceSpec};
use crate::time::Millis;

/// Instance class of a cluster's drill instance when the plan sets none
/// (Aurora needs one; this is the smallest class both engines offer).
const DEFAULT_CLUSTER_INSTANCE_CLASS: &str = "db.t4g.medium";

/// The tag that tells a drill's create call from any other: its value is
/// new for each call.
const REQUEST_TAG: &str = "lifeboat:request";

/// The outcome of creating a drill instance or cluster `name`, as a
/// message that names the region. Drill ids are never reused: a namesake
/// is not ours to use (another catalog drilling the same plan?) unless it
/// carries this call's `request` tag — the SDK retried the create after
/// its answer was lost (a reset, a timeout), and the first try made it.
async fn drill_created<T>(
    r: Result<T, AwsError>,
    place: &RdsPlace<'_>,
    client: &Client,
    level: Level,
    name: &str,
    request: &str,
) -> Result<(), ResourceError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => {
            let ours = tags_of(client, level, name)
                .await
                .map_err(|e| in_region(e, place))?
                .iter()
                .any(|(k, v)| k == REQUEST_TAG && v == request);
            if ours {
                return Ok(());
            }
            Err(ResourceError::Aws(format!(
                "{e} (in {}): a drill of another catalog with the same plan?",
                place.region
            )))
        }
        Err(e) => Err(in_region(e, place)),
    }
}

/// The tags of the instance or cluster `name` (none if it is gone).
async fn tags_of(
    client: &Client,
    level: Level,
    name: &str,
) -> Result<Vec<(String, String)>, AwsError> {
    let arn = match level {
        Level::Instance => client
            .describe_db_instances()
            .db_instance_identifier(name)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeDBInstances", e))?
            .db_instances()
            .first()
            .and_then(|i| i.db_instance_arn().map(String::from)),
        Level::Cluster => client
            .describe_db_clusters()
            .db_cluster_identifier(name)
            .send()
            .await
            .map_err(|e| AwsError::new("DescribeDBClusters", e))?
            .db_clusters()
            .first()
            .and_then(|c| c.db_cluster_arn().map(String::from)),
    };
    let Some(arn) = arn else {
        return Ok(Vec::new());
    };
    let out = client
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| AwsError::new("ListTagsForResource", e))?;
    Ok(out
        .tag_list()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect())
}

/// An AWS error, saying in which region it happened.
fn in_region(e: impl std::fmt::Display, place: &RdsPlace<'_>) -> ResourceError {
    ResourceError::Aws(format!("{e} (in {})", place.region))
}

impl From<GaveUp> for ResourceError {
    fn from(e: GaveUp) -> Self {
        ResourceError::Aws(e.to_string())
    }
}

impl From<AwsError> for ResourceError {
    fn from(e: AwsError) -> Self {
        ResourceError::Aws(e.to_string())
    }
}

/// Tags put on what Lifeboat creates in AWS, to find it from the console.
pub fn labels(plan: &str, resource: &str, point: i64) -> Vec<(&'static str, String)> {
    vec![
        ("lifeboat:plan", plan.to_string()),
        ("lifeboat:resource", resource.to_string()),
        ("lifeboat:point", point.to_string()),
    ]
}

/// A region as RDS calls see it.
#[derive(Debug, Clone, Copy)]
pub struct RdsPlace<'a> {
    /// The AWS region the calls go to.
    pub region: &'a str,
    /// The plan's `[aws]` settings (endpoint, profile, poll interval).
    pub aws: Option<&'a AwsSpec>,
    /// The region's `kms_key`: copies of encrypted snapshots into this
    /// region are encrypted with it (and cannot be made without it).
    pub kms_key: Option<&'a str>,
    /// How long one long operation (snapshot, copy, restore, delete) may
    /// be waited for: the plan's completion window.
    pub budget: Duration,
}

impl RdsPlace<'_> {
    async fn client(&self) -> Client {
        rds_client(self.region, self.aws).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Instance,
    Cluster,
}

impl Level {
    /// The level of a point's own kind.
    fn of(kind: Kind) -> Result<Level, ResourceError> {
        match kind {
            Kind::RdsInstance => Ok(Level::Instance),
            Kind::RdsCluster => Ok(Level::Cluster),
            Kind::Path | Kind::Sqlite | Kind::Postgres | Kind::S3 => Err(ResourceError::Other(
                format!("kind `{kind}` has no RDS snapshot"),
            )),
        }
    }
}

fn level_of(spec: &ResourceSpec) -> Result<(Level, &str, &RdsRestore), ResourceError> {
    match spec {
        ResourceSpec::RdsInstance { instance, restore } => Ok((Level::Instance, instance, restore)),
        ResourceSpec::RdsCluster { cluster, restore } => Ok((Level::Cluster, cluster, restore)),
        ResourceSpec::Path { .. }
        | ResourceSpec::Sqlite { .. }
        | ResourceSpec::Postgres { .. }
        | ResourceSpec::S3 { .. } => Err(ResourceError::Other(format!(
            "kind `{}` is not an RDS kind",
            spec.kind()
        ))),
    }
}

/// An RDS identifier made of `parts`: ASCII letters, digits and single
/// hyphens, starting with a letter, at most `max` characters (cut and
/// ended with a hash of the whole when longer, so it stays unique).
fn identifier(parts: &[&str], max: usize) -> String {
    let mut out = String::new();
    for c in parts.join("-").chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let mut out = out.trim_end_matches('-').to_string();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert_str(0, "x-");
    }
    if out.len() > max {
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(out.as_bytes()));
        out.truncate(max - 9);
        let out = out.trim_end_matches('-');
        return format!("{out}-{}", &hash[..8]);
    }
    out
}

/// Six hex digits of a hash of the exact plan and resource names: names
/// that clean up alike (`orders_db`, `orders-db`; plan `a-b` + resource
/// `c` and plan `a` + resource `b-c`) still get different identifiers.
fn names_hash(plan: &str, resource: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{plan}\0{resource}").as_bytes());
    hex::encode(h)[..6].to_string()
}

/// The snapshot identifier of a point: `lifeboat-PLAN-RESOURCE-HASH-STAMP`,
/// from the slot of a scheduled run (or the start of a manual one), so the
/// same slot always names the same snapshot. At most 63 characters, the
/// limit of cluster snapshots.
pub fn snapshot_id(plan: &str, resource: &str, stamp: Millis) -> String {
    let stamp = crate::time::to_datetime(stamp)
        .format("%Y%m%dt%H%M%S%3fz")
        .to_string();
    let hash = names_hash(plan, resource);
    // The stamp and hash must survive a cut: the names part is cut first.
    let head = identifier(
        &["lifeboat", plan, resource],
        63 - stamp.len() - hash.len() - 2,
    );
    format!("{head}-{hash}-{stamp}")
}

/// The identifier of what a drill restores (the instance, or the cluster;
/// the cluster's instance adds `-i1`).
pub fn drill_identifier(scratch: &Scratch) -> String {
    let hash = names_hash(&scratch.plan, &scratch.resource);
    let head = identifier(
        &[
            "lifeboat-drill",
            &scratch.drill_id.to_string(),
            &scratch.plan,
            &scratch.resource,
        ],
        60 - hash.len() - 1,
    );
    format!("{head}-{hash}")
}

/// The identifier part of a snapshot ARN (`…:snapshot:NAME`).
pub fn id_of(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// What Lifeboat needs of a snapshot.
#[derive(Debug, Clone)]
struct SnapInfo {
    status: String,
    create_time: Option<Millis>,
    encrypted: bool,
    arn: String,
    allocated_gib: i64,
    engine: String,
    /// The instance or cluster the snapshot was taken of.
    source: String,
}

async fn describe_snapshot(
    client: &Client,
    level: Level,
    id: &str,
) -> Result<Option<SnapInfo>, AwsError> {
    let millis = |t: Option<&aws_sdk_rds::primitives::DateTime>| t.and_then(|t| t.to_millis().ok());
    let found = match level {
        Level::Instance => client
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map(|o| {
                o.db_snapshots().first().map(|s| SnapInfo {
                    status: s.status().unwrap_or("").to_string(),
                    create_time: millis(s.snapshot_create_time()),
                    encrypted: s.encrypted().unwrap_or(false),
                    arn: s.db_snapshot_arn().unwrap_or(id).to_string(),
                    allocated_gib: s.allocated_storage().unwrap_or(0) as i64,
                    engine: s.engine().unwrap_or("").to_string(),
                    source: s.db_instance_identifier().unwrap_or("").to_string(),
                })
            })
            .map_err(|e| AwsError::new("DescribeDBSnapshots", e)),
        Level::Cluster => client
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map(|o| {
                o.db_cluster_snapshots().first().map(|s| SnapInfo {
                    status: s.status().unwrap_or("").to_string(),
                    create_time: millis(s.snapshot_create_time()),
                    encrypted: s.storage_encrypted().unwrap_or(false),
                    arn: s.db_cluster_snapshot_arn().unwrap_or(id).to_string(),
                    allocated_gib: s.allocated_storage().unwrap_or(0) as i64,
                    engine: s.engine().unwrap_or("").to_string(),
                    source: s.db_cluster_identifier().unwrap_or("").to_string(),
                })
            })
            .map_err(|e| AwsError::new("DescribeDBClusterSnapshots", e)),
    };
    match found {
        Err(e) if e.is_not_found() => Ok(None),
        other => other,
    }
}

/// Waits until snapshot `id` is available; fails at once on a status from
/// which it never will be.
async fn wait_snapshot(
    client: &Client,
    place: &RdsPlace<'_>,
    level: Level,
    id: &str,
) -> Result<SnapInfo, ResourceError> {
    let what = format!("snapshot {id} in {} to be available", place.region);
    let progress = crate::progress::waiting(format!("waiting for {what}"));
    let failures = AtomicU32::new(0);
    let waited = wait_until(&what, place.aws, place.budget, || async {
        let described = match through_blips(describe_snapshot(client, level, id).await, &failures) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if let Some(s) = &described {
            progress.set_message(format!("waiting for {what} (now {})", s.status));
        }
        match described {
            Some(s) if s.status == "available" => Ok(Some(s)),
            Some(s) if matches!(s.status.as_str(), "failed" | "error" | "deleting") => Err(
                ResourceError::Aws(format!("snapshot {id} in {} is {}", place.region, s.status)),
            ),
            Some(_) => Ok(None),
            None => Err(ResourceError::Aws(format!(
                "snapshot {id} in {} has disappeared",
                place.region
            ))),
        }
    })
    .await;
    progress.finish_and_clear();
    waited
}

fn tags(pairs: &[(&str, String)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v.clone()).build())
        .collect()
}

/// Takes a snapshot of the resource named `id` in `place` (the primary
/// region) and waits until it is available; returns it and its ARN. If a
/// snapshot of that name exists already (the same slot, retried after a
/// crash), it is adopted rather than duplicated.
pub async fn snapshot(
    spec: &ResourceSpec,
    place: &RdsPlace<'_>,
    id: &str,
    labels: &[(&str, String)],
) -> Result<(Snapshot, String), ResourceError> {
    let (level, source, _) = level_of(spec)?;
    let client = place.client().await;
    // RDS reports SnapshotCreateTime; if it ever does not, the data is no
    // newer than this instant (never a later one: RPO must not flatter).
    let asked_at = crate::time::now_ms();
    let created = match level {
        Level::Instance => client
            .create_db_snapshot()
            .db_snapshot_identifier(id)
            .db_instance_identifier(source)
            .set_tags(Some(tags(labels)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("CreateDBSnapshot", e)),
        Level::Cluster => client
            .create_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .db_cluster_identifier(source)
            .set_tags(Some(tags(labels)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("CreateDBClusterSnapshot", e)),
    };
    let what = if level == Level::Instance {
        "instance"
    } else {
        "cluster"
    };
    match created {
        Ok(()) => {}
        // The same slot retried: adopt the snapshot, but only if it is of
        // this very instance or cluster.
        Err(e) if e.is_already_exists() => {
            let existing = describe_snapshot(&client, level, id)
                .await
                .map_err(|e| ResourceError::Source(e.to_string()))?;
            if let Some(other) = existing.filter(|s| s.source != source) {
                return Err(ResourceError::Source(format!(
                    "snapshot {id} in {} already exists, of {what} `{}`, not `{source}`",
                    place.region, other.source
                )));
            }
        }
        Err(e) => {
            return Err(ResourceError::Source(format!(
                "{} `{source}` in {}: {e}",
                if level == Level::Instance {
                    "instance"
                } else {
                    "cluster"
                },
                place.region
            )))
        }
    }
    let info = wait_snapshot(&client, place, level, id).await?;
    let bytes = (info.allocated_gib.max(0) as u64) << 30;
    Ok((
        Snapshot {
            data_time: info.create_time.unwrap_or(asked_at),
            size_bytes: bytes,
            sha256: String::new(),
            file_count: 0,
            content_bytes: bytes,
            flags: if info.encrypted {
                vec![PointFlag::Encrypted]
            } else {
                Vec::new()
            },
            manifest_sha256: None,
        },
        info.arn,
    ))
}

/// Copies the snapshot `src_arn` (in `src`) into `dst` under the same
/// identifier, and waits until the copy is available; returns its ARN.
pub async fn copy(
    kind: Kind,
    src: &RdsPlace<'_>,
    src_arn: &str,
    dst: &RdsPlace<'_>,
    labels: &[(&str, String)],
) -> Result<String, ResourceError> {
    let level = Level::of(kind)?;
    let id = id_of(src_arn);
    let source = describe_snapshot(&src.client().await, level, id)
        .await
        .map_err(|e| ResourceError::Aws(format!("{} in {}", e, src.region)))?
        .ok_or_else(|| ResourceError::Aws(format!("source snapshot {src_arn} no longer exists")))?;
    // Real AWS needs a key of the destination region to copy an encrypted
    // snapshot there (keys are regional); say so before asking.
    if source.encrypted && dst.kms_key.is_none() {
        return Err(ResourceError::Aws(format!(
            "snapshot {id} is encrypted: region {} needs a `kms_key` (a KMS key of that region) to copy it there",
            dst.region
        )));
    }
    // A key for an unencrypted snapshot is an error on AWS: only with one.
    let key = source
        .encrypted
        .then(|| dst.kms_key.map(String::from))
        .flatten();
    let client = dst.client().await;
    let sent = match level {
        Level::Instance => client
            .copy_db_snapshot()
            .source_db_snapshot_identifier(src_arn)
            .target_db_snapshot_identifier(id)
            .set_kms_key_id(key.clone())
            .set_tags(Some(tags(labels)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("CopyDBSnapshot", e)),
        Level::Cluster => client
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(src_arn)
            .target_db_cluster_snapshot_identifier(id)
            .set_kms_key_id(key.clone())
            .set_tags(Some(tags(labels)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("CopyDBClusterSnapshot", e)),
    };
    match sent {
        Ok(()) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(in_region(e, dst)),
    }
    Ok(wait_snapshot(&client, dst, level, id).await?.arn)
}

/// Deletes a point's snapshot (idempotent); `kind` is the point's own,
/// whatever the plan says today.
pub async fn delete_snapshot(
    kind: Kind,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<(), ResourceError> {
    let level = Level::of(kind)?;
    let client = place.client().await;
    let r = match level {
        Level::Instance => client
            .delete_db_snapshot()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("DeleteDBSnapshot", e)),
        Level::Cluster => client
            .delete_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::new("DeleteDBClusterSnapshot", e)),
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(in_region(e, place)),
    }
}

/// An instance's status and endpoint (`ENGINE-SCHEME://HOST:PORT`), or
/// `None` if it does not exist.
async fn describe_instance(
    client: &Client,
    id: &str,
) -> Result<Option<(String, Option<String>)>, AwsError> {
    match client
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
    {
        Ok(o) => Ok(o.db_instances().first().map(|i| {
            let scheme = endpoint_scheme(i.engine().unwrap_or(""));
            let endpoint = i.endpoint().map(|e| {
                format!(
                    "{scheme}://{}:{}",
                    e.address().unwrap_or("?"),
                    e.port().unwrap_or_default()
                )
            });
            (i.db_instance_status().unwrap_or("").to_string(), endpoint)
        })),
        Err(e) => {
            let e = AwsError::new("DescribeDBInstances", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// The scheme of a restored instance's endpoint: `postgres` and `mysql`
/// (for MySQL and MariaDB alike: one protocol) are the engines SQL checks
/// speak; any other engine is named as RDS names it.
fn endpoint_scheme(engine: &str) -> &str {
    if engine.contains("postgres") {
        "postgres"
    } else if engine.contains("mysql") || engine.contains("mariadb") {
        "mysql"
    } else if engine.is_empty() {
        "unknown"
    } else {
        engine
    }
}

async fn describe_cluster(client: &Client, id: &str) -> Result<Option<String>, AwsError> {
    match client
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
    {
        Ok(o) => Ok(o
            .db_clusters()
            .first()
            .map(|c| c.status().unwrap_or("").to_string())),
        Err(e) => {
            let e = AwsError::new("DescribeDBClusters", e);
            if e.is_not_found() {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Transient failures in a row a wait rides out before it fails.
const MAX_POLL_FAILURES: u32 = 5;

/// A poll's answer, with a transient failure taken as "not yet": one
/// throttled or dropped describe (the SDK's retries spent) must not fail a
/// snapshot or a restore that is fine. Up to [`MAX_POLL_FAILURES`] in a
/// row; then, or on any other failure, the error.
fn through_blips<T>(
    answer: Result<T, AwsError>,
    failures: &AtomicU32,
) -> Result<Option<T>, AwsError> {
    match answer {
        Ok(v) => {
            failures.store(0, Ordering::Relaxed);
            Ok(Some(v))
        }
        Err(e) if e.is_transient() && failures.load(Ordering::Relaxed) + 1 < MAX_POLL_FAILURES => {
            failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, failures = failures.load(Ordering::Relaxed), "a status poll failed; polling on");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Statuses an instance never becomes available from by itself.
fn hopeless(status: &str) -> bool {
    matches!(
        status,
        "failed"
            | "restore-error"
            | "storage-full"
            | "deleting"
            | "stopped"
            | "stopping"
            | "inaccessible-encryption-credentials"
    ) || status.starts_with("incompatible-")
}

async fn wait_instance_available(
    client: &Client,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<Option<String>, ResourceError> {
    let what = format!("instance {id} in {} to be available", place.region);
    let progress = crate::progress::waiting(format!("waiting for {what}"));
    let failures = AtomicU32::new(0);
    let waited = wait_until(&what, place.aws, place.budget, || async {
        let described = match through_blips(describe_instance(client, id).await, &failures) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if let Some((s, _)) = &described {
            progress.set_message(format!("waiting for {what} (now {s})"));
        }
        match described {
            Some((s, endpoint)) if s == "available" => Ok(Some(endpoint)),
            Some((s, _)) if hopeless(&s) => Err(ResourceError::Aws(format!(
                "instance {id} in {} is {s}",
                place.region
            ))),
            Some(_) => Ok(None),
            None => Err(ResourceError::Aws(format!(
                "instance {id} in {} has disappeared",
                place.region
            ))),
        }
    })
    .await;
    progress.finish_and_clear();
    waited
}

/// Restores the snapshot `id` (a point in the drill region) into an
/// instance or cluster named after the drill, and waits until it serves.
pub async fn restore(
    spec: &ResourceSpec,
    place: &RdsPlace<'_>,
    id: &str,
    scratch: &Scratch,
) -> Result<Restored, ResourceError> {
    let (level, _, drill_settings) = level_of(spec)?;
    let client = place.client().await;
    // A drill's instance is named from the drill; a restore's is the
    // operator's, with the operator's settings.
    let (name, settings, labels) = match &scratch.instance {
        Some(t) => (
            t.id.clone(),
            &t.settings,
            tags(&[
                ("lifeboat:plan", scratch.plan.clone()),
                ("lifeboat:restore", scratch.drill_id.to_string()),
            ]),
        ),
        None => (
            drill_identifier(scratch),
            drill_settings,
            tags(&[
                ("lifeboat:plan", scratch.plan.clone()),
                ("lifeboat:drill", scratch.drill_id.to_string()),
            ]),
        ),
    };
    let request = format!("{:016x}", rand::random::<u64>());
    let mut labels = labels;
    labels.extend(tags(&[(REQUEST_TAG, request.clone())]));
    let sgs = (!settings.security_groups.is_empty()).then(|| settings.security_groups.clone());
    let endpoint = match level {
        Level::Instance => {
            let r = client
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&name)
                .db_snapshot_identifier(id)
                .set_db_instance_class(settings.instance_class.clone())
                .set_db_subnet_group_name(settings.subnet_group.clone())
                .set_vpc_security_group_ids(sgs)
                .publicly_accessible(false)
                .deletion_protection(false)
                .set_tags(Some(labels))
                .send()
                .await
                .map_err(|e| AwsError::new("RestoreDBInstanceFromDBSnapshot", e));
            drill_created(r, place, &client, Level::Instance, &name, &request).await?;
            wait_instance_available(&client, place, &name).await?
        }
        Level::Cluster => {
            let snap = describe_snapshot(&client, level, id)
                .await?
                .ok_or_else(|| ResourceError::Aws(format!("snapshot {id} does not exist")))?;
            let r = client
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(&name)
                // The point is in this region: its name is enough (and
                // is what every RDS implementation accepts).
                .snapshot_identifier(id)
                .engine(&snap.engine)
                .set_db_subnet_group_name(settings.subnet_group.clone())
                .set_vpc_security_group_ids(sgs)
                .deletion_protection(false)
                .set_tags(Some(labels.clone()))
                .send()
                .await
                .map_err(|e| AwsError::new("RestoreDBClusterFromSnapshot", e));
            drill_created(r, place, &client, Level::Cluster, &name, &request).await?;
            wait_until(
                &format!("cluster {name} in {} to be available", place.region),
                place.aws,
                place.budget,
                || async {
                    match describe_cluster(&client, &name).await {
                        Ok(Some(s)) if s == "available" => Ok(Some(())),
                        Ok(Some(s)) if hopeless(&s) => Err(ResourceError::Aws(format!(
                            "cluster {name} in {} is {s}",
                            place.region
                        ))),
                        Ok(Some(_)) => Ok(None),
                        Ok(None) => Err(ResourceError::Aws(format!(
                            "cluster {name} has disappeared"
                        ))),
                        Err(e) => Err(e.into()),
                    }
                },
            )
            .await?;
            let instance = format!("{name}-i1");
            let r = client
                .create_db_instance()
                .db_instance_identifier(&instance)
                .db_cluster_identifier(&name)
                .engine(&snap.engine)
                .db_instance_class(
                    settings
                        .instance_class
                        .as_deref()
                        .unwrap_or(DEFAULT_CLUSTER_INSTANCE_CLASS),
                )
                .publicly_accessible(false)
                .set_tags(Some(labels))
                .send()
                .await
                .map_err(|e| AwsError::new("CreateDBInstance", e));
            drill_created(r, place, &client, Level::Instance, &instance, &request).await?;
            wait_instance_available(&client, place, &instance).await?
        }
    };
    let what = if level == Level::Instance {
        "instance"
    } else {
        "cluster"
    };
    Ok(Restored {
        verification: format!(
            "{what} {name} restored from {id} in {}: available at {}",
            place.region,
            endpoint.as_deref().unwrap_or("(no endpoint reported)")
        ),
        into: RestoredInto::Instance { url: endpoint },
    })
}

/// Whether an instance (`rds-instance`) or a cluster (`rds-cluster`)
/// named `id` exists in `place`: a restore never writes over one.
pub async fn exists(
    spec: &ResourceSpec,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<bool, ResourceError> {
    let (level, _, _) = level_of(spec)?;
    let client = place.client().await;
    let found = match level {
        Level::Instance => describe_instance(&client, id).await.map(|i| i.is_some()),
        Level::Cluster => describe_cluster(&client, id).await.map(|c| c.is_some()),
    };
    found.map_err(|e| in_region(e, place))
}

/// Deletes, without a final snapshot, whatever a drill restored (also
/// half-way or after a crash), and waits until it is gone; what it
/// deleted, if anything.
pub async fn discard(
    spec: &ResourceSpec,
    place: &RdsPlace<'_>,
    scratch: &Scratch,
) -> Result<Option<String>, ResourceError> {
    let (level, _, _) = level_of(spec)?;
    let client = place.client().await;
    let name = drill_identifier(scratch);
    let mut deleted = Vec::new();
    let instance = match level {
        Level::Instance => name.clone(),
        Level::Cluster => format!("{name}-i1"),
    };
    if delete_instance(&client, place, &instance).await? {
        deleted.push(format!("instance {instance}"));
    }
    if level == Level::Cluster && delete_cluster(&client, place, &name).await? {
        deleted.push(format!("cluster {name}"));
    }
    Ok((!deleted.is_empty()).then(|| format!("{} in {}", deleted.join(" and "), place.region)))
}

/// Deletes an instance without a final snapshot and waits until it is
/// gone; whether there was one.
async fn delete_instance(
    client: &Client,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<bool, ResourceError> {
    delete_until_gone(
        &format!("instance {id}"),
        place,
        "InvalidDBInstanceState",
        || async {
            Ok(describe_instance(client, id)
                .await?
                .map(|(status, _)| status))
        },
        || async {
            client
                .delete_db_instance()
                .db_instance_identifier(id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::new("DeleteDBInstance", e))
        },
    )
    .await
}

/// Deletes a drill cluster (its instance deleted first) without a final
/// snapshot and waits until it is gone; whether there was one.
async fn delete_cluster(
    client: &Client,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<bool, ResourceError> {
    delete_until_gone(
        &format!("cluster {id}"),
        place,
        "InvalidDBClusterState",
        || describe_cluster(client, id),
        || async {
            client
                .delete_db_cluster()
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::new("DeleteDBCluster", e))
        },
    )
    .await
}

/// Polls `describe` (the status, or `None` once gone) until the thing is
/// gone, asking `delete` again at every poll while it is not `deleting`:
/// RDS refuses to delete what is still being created, modified or backed
/// up (an error code starting with `busy`), so the delete is retried
/// until accepted. Whether there was anything to delete.
async fn delete_until_gone<D, DF, X, XF>(
    what: &str,
    place: &RdsPlace<'_>,
    busy: &str,
    describe: D,
    delete: X,
) -> Result<bool, ResourceError>
where
    D: Fn() -> DF,
    DF: std::future::Future<Output = Result<Option<String>, AwsError>>,
    X: Fn() -> XF,
    XF: std::future::Future<Output = Result<(), AwsError>>,
{
    let existed = std::sync::atomic::AtomicBool::new(false);
    wait_until(
        &format!("{what} in {} to be deleted", place.region),
        place.aws,
        place.budget,
        || async {
            let status = match describe().await {
                Ok(None) => return Ok(Some(())),
                Ok(Some(status)) => status,
                Err(e) => return Err(e.into()),
            };
            existed.store(true, std::sync::atomic::Ordering::Relaxed);
            if status == "deleting" {
                return Ok(None);
            }
            match delete().await {
                Ok(()) => Ok(None),
                Err(e) if e.is_not_found() => Ok(Some(())),
                Err(e) if e.code.starts_with(busy) => Ok(None),
                Err(e) => Err(in_region(e, place)),
            }
        },
    )
    .await?;
    Ok(existed.into_inner())
}

/// Verifies a point's snapshot without restoring it: RDS describes it, by
/// identifier in this region, as `available`. A snapshot RDS no longer
/// has, or reports failed or being deleted, is damage
/// ([`ResourceError::Corrupt`]); a failed request is not. RDS exposes no
/// bytes to hash: `--read-data` has nothing more to read.
pub async fn verify(
    kind: Kind,
    place: &RdsPlace<'_>,
    id: &str,
) -> Result<super::verify::Verified, ResourceError> {
    let level = Level::of(kind)?;
    let client = place.client().await;
    let gone = |detail: String| ResourceError::Corrupt {
        location: format!("snapshot {id} in {}", place.region),
        detail,
    };
    match describe_snapshot(&client, level, id).await {
        Err(e) => Err(in_region(e, place)),
        Ok(None) => Err(gone("snapshot missing".into())),
        Ok(Some(s)) if s.status == "available" => Ok(super::verify::Verified {
            detail: format!(
                "snapshot {} available ({} GiB allocated)",
                s.arn, s.allocated_gib
            ),
            bytes_read: 0,
        }),
        Ok(Some(s)) if matches!(s.status.as_str(), "failed" | "error" | "deleting") => {
            Err(gone(format!("snapshot is {}", s.status)))
        }
        // Copying, or being modified: not a verdict on the data yet.
        Ok(Some(s)) => Err(ResourceError::Aws(format!(
            "snapshot {id} in {} is {}, not available",
            place.region, s.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wait_rides_out_a_few_transient_poll_failures_only() {
        let failures = AtomicU32::new(0);
        let blip = || -> Result<(), AwsError> {
            Err(AwsError {
                op: "DescribeDBSnapshots",
                code: "Throttling".into(),
                message: "Rate exceeded".into(),
            })
        };
        for _ in 1..MAX_POLL_FAILURES {
            assert!(matches!(through_blips(blip(), &failures), Ok(None)));
        }
        assert!(through_blips(blip(), &failures).is_err());
        // An answer resets the count.
        failures.store(3, Ordering::Relaxed);
        assert!(matches!(through_blips(Ok(()), &failures), Ok(Some(()))));
        assert_eq!(failures.load(Ordering::Relaxed), 0);
        // A failure that will not pass is not ridden out.
        let denied: Result<(), AwsError> = Err(AwsError {
            op: "DescribeDBSnapshots",
            code: "AccessDenied".into(),
            message: "no".into(),
        });
        assert!(through_blips(denied, &failures).is_err());
    }

    use super::*;

    #[test]
    fn identifiers_follow_rds_rules() {
        let id = snapshot_id("Orders_DB", "main--db", 1_700_000_000_123);
        assert!(
            id.starts_with("lifeboat-orders-db-main-db-") && id.ends_with("-20231114t221320123z"),
            "{id}"
        );
        assert_eq!(id.len(), "lifeboat-orders-db-main-db-".len() + 7 + 19);
        let long = snapshot_id(&"p".repeat(70), &"r".repeat(70), 1_700_000_000_123);
        assert!(
            long.len() <= 63 && long.ends_with("-20231114t221320123z"),
            "{long}"
        );
        assert_ne!(
            snapshot_id("orders_db", "x", 0),
            snapshot_id("orders-db", "x", 0)
        );
        let long = identifier(&["lifeboat-drill", "12", &"a".repeat(80), "r"], 60);
        assert!(long.len() <= 60, "{long}");
        assert!(!long.contains("--") && !long.ends_with('-'));
        assert_eq!(identifier(&["9lives"], 60), "x-9lives");
        assert_eq!(
            id_of("arn:aws:rds:us-west-2:1:snapshot:lifeboat-x"),
            "lifeboat-x"
        );
    }
}
