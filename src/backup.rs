//! One backup run of a plan: a point for every resource in the primary
//! region, then a copy of each into every `copy_to` region, one region after
//! the other. Every point is written `running` first and marked complete
//! only once its artifact and manifest are durable in the vault.

use tracing::{info, instrument, warn};

use crate::catalog::{CatalogError, NewPoint, Point, PointCompletion};
use crate::context::Context;
use crate::locks::{LockError, PlanLock};
use crate::plan::{Plan, Resource};
use crate::resource::{self, rds, ArtifactKeys};
use crate::time::now_ms;
use crate::vault::{Vault, VaultTarget};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What a run did; failed points are in `points` with their error.
#[derive(Debug)]
pub struct BackupOutcome {
    pub run_id: i64,
    /// succeeded | partial | failed
    pub status: &'static str,
    pub points: Vec<Point>,
}

/// A point is flagged `shrunk` when it holds less than this fraction of the
/// previous point's files or bytes (an emptied source, a wrong mount,
/// ransomware), provided the previous one was not tiny.
const SHRINK_RATIO: f64 = 0.5;
const SHRINK_MIN_BYTES: i64 = 64 * 1024;
const SHRINK_MIN_FILES: i64 = 10;

#[instrument(skip_all, fields(plan = %plan.name))]
/// `slot` is the cron slot a scheduled run belongs to (recorded with the run).
pub async fn run(
    ctx: &Context,
    plan: &Plan,
    trigger: &str,
    slot: Option<crate::time::Millis>,
) -> Result<BackupOutcome, BackupError> {
    let _lock = PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "backup")?;
    let cat = &ctx.catalog;
    let interrupted = fail_interrupted(cat, plan).await?;
    if interrupted > 0 {
        warn!(
            points = interrupted,
            "marked points of an interrupted earlier backup as failed"
        );
    }
    let run_id = cat.start_run(&plan.name, trigger, slot, now_ms()).await?;
    info!(run_id, "backup started");

    let primary = &plan.backup.primary_region;
    let primary_vault = writable_vault(plan, primary).await;
    let mut point_ids = Vec::new();
    let mut taken: Vec<(i64, &Resource, ArtifactKeys)> = Vec::new();
    let mut failures = 0usize;

    for res in &plan.resources {
        let started_at = now_ms();
        let id = cat
            .insert_point(NewPoint {
                plan: &plan.name,
                resource: &res.name,
                kind: res.spec.kind(),
                region: primary,
                run_id: Some(run_id),
                source_point_id: None,
                started_at,
            })
            .await?;
        point_ids.push(id);
        let keys = ArtifactKeys::new(&plan.name, &res.name, &res.spec, started_at, id);
        let result = if !res.spec.uses_vault() {
            // RDS keeps the snapshot; its name comes from the slot, so a
            // retry of the same slot finds it instead of taking another.
            let snapshot_id = rds::snapshot_id(&plan.name, &res.name, slot.unwrap_or(started_at));
            // Recorded first: if this run fails or dies, prune finds the
            // snapshot by this name and removes it.
            cat.set_point_location(id, &snapshot_id).await?;
            let labels = labels(plan, res, id);
            rds::snapshot(&res.spec, &rds_place(plan, primary), &snapshot_id, &labels)
                .await
                .map_err(|e| e.to_string())
        } else {
            if let (crate::plan::ResourceSpec::S3 { .. }, Ok(vault)) = (&res.spec, &primary_vault) {
                // Many objects, copied one by one: recorded first, so a
                // failed or killed run's copies are found and removed.
                cat.set_point_location(id, &vault.location(&keys.artifact))
                    .await?;
            }
            match &primary_vault {
                Ok(vault) => resource::snapshot(
                    &res.spec,
                    vault,
                    &keys,
                    &ctx.tmp_dir(),
                    &res.name,
                    primary,
                    plan.aws.as_ref(),
                )
                .await
                .map_err(|e| e.to_string())
                .map(|s| (s, vault.location(&keys.artifact))),
                Err(e) => Err(e.clone()),
            }
        };
        // Every object this point wrote is locked until at most now +
        // retain: recorded before the point is complete (or failed), so
        // prune never asks to delete a version still locked.
        if res.spec.uses_vault() && primary_vault.is_ok() {
            if let Some(until) = plan.lock_until(primary, now_ms()) {
                cat.set_point_locked_until(id, until).await?;
            }
        }
        match result {
            Ok((snap, location)) => {
                let mut flags = snap.flags.clone();
                if let Some(prev) = cat
                    .newest_complete_point(&plan.name, &res.name, primary)
                    .await?
                {
                    if shrunk(&prev, snap.file_count as i64, snap.content_bytes as i64) {
                        warn!(resource = %res.name, previous = prev.id, "point is far smaller than the previous one: flagged `shrunk`");
                        flags.push("shrunk".into());
                    }
                }
                cat.complete_point(
                    id,
                    &PointCompletion {
                        data_time: snap.data_time,
                        completed_at: now_ms(),
                        size_bytes: snap.size_bytes,
                        content_bytes: snap.content_bytes,
                        file_count: snap.file_count,
                        sha256: snap.sha256,
                        location,
                        flags,
                    },
                )
                .await?;
                info!(resource = %res.name, point = id, region = %primary, "point complete");
                taken.push((id, res, keys));
            }
            Err(e) => {
                warn!(resource = %res.name, region = %primary, error = %e, "snapshot failed");
                cat.fail_point(id, &format!("snapshot in region {primary}: {e}"), None)
                    .await?;
                failures += 1;
            }
        }
    }

    // Copies: one region after the other, so a slow or failing region does
    // not compete with the others for the same source.
    {
        for region in &plan.backup.copy_to {
            let needs_vault = taken.iter().any(|(_, r, _)| r.spec.uses_vault());
            let dst_vault = if needs_vault {
                writable_vault(plan, region).await
            } else {
                Err(String::new())
            };
            for (source_id, res, keys) in &taken {
                let Some(source) = cat.point(*source_id).await? else {
                    continue;
                };
                let id = cat
                    .insert_point(NewPoint {
                        plan: &plan.name,
                        resource: &res.name,
                        kind: res.spec.kind(),
                        region,
                        run_id: Some(run_id),
                        source_point_id: Some(*source_id),
                        started_at: now_ms(),
                    })
                    .await?;
                point_ids.push(id);
                let copied = if !res.spec.uses_vault() {
                    if let Some(arn) = source.location.as_deref() {
                        cat.set_point_location(id, rds::id_of(arn)).await?;
                    }
                    let labels = labels(plan, res, id);
                    match source.location.as_deref() {
                        Some(arn) => rds::copy(
                            &res.spec,
                            &rds_place(plan, primary),
                            arn,
                            &rds_place(plan, region),
                            &labels,
                        )
                        .await
                        .map(|arn| {
                            let size = source.size_bytes.unwrap_or(0).max(0) as u64;
                            (crate::vault::CopyOutcome { size, sha256: None }, arn)
                        }),
                        None => Err(format!("point {source_id} has no snapshot ARN")),
                    }
                } else {
                    match (&primary_vault, &dst_vault) {
                        (Ok(src_vault), Ok(dst)) => {
                            if matches!(res.spec, crate::plan::ResourceSpec::S3 { .. }) {
                                cat.set_point_location(id, &dst.location(&keys.artifact))
                                    .await?;
                            }
                            resource::copy_artifacts(&res.spec, src_vault, keys, dst)
                                .await
                                .and_then(|c| verify_copy(&source, c))
                                .map(|c| (c, dst.location(&keys.artifact)))
                        }
                        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                    }
                };
                if res.spec.uses_vault() && primary_vault.is_ok() && dst_vault.is_ok() {
                    if let Some(until) = plan.lock_until(region, now_ms()) {
                        cat.set_point_locked_until(id, until).await?;
                    }
                }
                match copied {
                    Ok((c, location)) => {
                        cat.complete_point(
                            id,
                            &PointCompletion {
                                // A copy holds its source's data.
                                data_time: source.data_time.unwrap_or(source.started_at),
                                completed_at: now_ms(),
                                size_bytes: c.size,
                                content_bytes: source.content_bytes.unwrap_or(0) as u64,
                                file_count: source.file_count.unwrap_or(0) as u64,
                                sha256: c.sha256.unwrap_or_default(),
                                location,
                                flags: source.flag_list().iter().map(|s| s.to_string()).collect(),
                            },
                        )
                        .await?;
                        info!(resource = %res.name, point = id, %region, "copy complete");
                    }
                    Err(e) => {
                        warn!(resource = %res.name, %region, error = %e, "copy failed");
                        cat.fail_point(
                            id,
                            &format!("copy of point {source_id} to region {region}: {e}"),
                            source.data_time,
                        )
                        .await?;
                        failures += 1;
                    }
                }
            }
        }
    }

    let status = if failures == 0 {
        "succeeded"
    } else if taken.is_empty() {
        "failed"
    } else {
        "partial"
    };
    let error = (failures > 0).then(|| format!("{failures} point(s) failed"));
    cat.finish_run(run_id, status, error.as_deref(), now_ms())
        .await?;
    info!(run_id, status, "backup finished");
    let mut points = Vec::new();
    for id in point_ids {
        if let Some(p) = cat.point(id).await? {
            points.push(p);
        }
    }
    Ok(BackupOutcome {
        run_id,
        status,
        points,
    })
}

/// Records the plan's `running` backups and points as failed
/// (interrupted): call holding the plan's backup lock, when anything still
/// running belongs to a process that stopped. A point of a locked region
/// may have written locked objects before it died, each locked until at
/// most now + retain: that bound is recorded first, so prune waits for it
/// before removing what the point left. Returns how many points failed.
pub async fn fail_interrupted(
    cat: &crate::catalog::Catalog,
    plan: &Plan,
) -> Result<u64, CatalogError> {
    let now = now_ms();
    for region in plan.point_regions() {
        if let Some(until) = plan.lock_until(region, now) {
            cat.bound_lock_of_running_points(&plan.name, region, until)
                .await?;
        }
    }
    cat.fail_interrupted_backups(&plan.name, now).await
}

/// A plan's region as RDS calls see it; long waits are bounded by the
/// plan's completion window.
pub fn rds_place<'a>(plan: &'a Plan, region: &'a str) -> rds::RdsPlace<'a> {
    rds::RdsPlace {
        region,
        aws: plan.aws.as_ref(),
        kms_key: plan.regions.get(region).and_then(|r| r.kms_key.as_deref()),
        budget: plan.backup.completion_window,
    }
}

/// Tags put on what Lifeboat creates in AWS, to find it from the console.
fn labels(plan: &Plan, res: &Resource, point: i64) -> Vec<(&'static str, String)> {
    vec![
        ("lifeboat:plan", plan.name.clone()),
        ("lifeboat:resource", res.name.clone()),
        ("lifeboat:point", point.to_string()),
    ]
}

/// The vault of a plan's region, or why there is none.
pub async fn region_vault(plan: &Plan, region: &str) -> Result<Vault, String> {
    let r = plan
        .regions
        .get(region)
        .ok_or_else(|| format!("plan has no region {region}"))?;
    let url = r
        .vault
        .as_deref()
        .ok_or_else(|| format!("region {region} has no vault"))?;
    Vault::open(VaultTarget {
        url,
        region,
        aws: plan.aws.as_ref(),
        kms_key: r.kms_key.as_deref(),
        object_lock: r.object_lock,
    })
    .await
    .map_err(|e| e.to_string())
}

/// The vault of a region a backup writes into, checked first: a region
/// whose `object_lock` the bucket cannot honour fails its points before
/// any object is written.
pub async fn writable_vault(plan: &Plan, region: &str) -> Result<Vault, String> {
    let vault = region_vault(plan, region).await?;
    vault.check_writable().await.map_err(|e| e.to_string())?;
    Ok(vault)
}

/// A streamed copy must hash like its source; a server-side copy (no hash
/// of ours: the store verified its checksums) must at least have its size.
fn verify_copy(
    source: &Point,
    c: crate::vault::CopyOutcome,
) -> Result<crate::vault::CopyOutcome, String> {
    match &c.sha256 {
        Some(sha) if Some(sha) != source.sha256.as_ref() => Err(format!(
            "copied bytes have sha256 {sha}, the source point recorded {}",
            source.sha256.as_deref().unwrap_or("?")
        )),
        None if source.size_bytes != Some(c.size as i64) => Err(format!(
            "server-side copy has {} bytes, the source point {}",
            c.size,
            source.size_bytes.unwrap_or(0)
        )),
        Some(_) => Ok(c),
        None => Ok(crate::vault::CopyOutcome {
            size: c.size,
            sha256: source.sha256.clone(),
        }),
    }
}

fn shrunk(prev: &Point, files: i64, bytes: i64) -> bool {
    let prev_files = prev.file_count.unwrap_or(0);
    let prev_bytes = prev.content_bytes.unwrap_or(0);
    (prev_bytes >= SHRINK_MIN_BYTES && (bytes as f64) < prev_bytes as f64 * SHRINK_RATIO)
        || (prev_files >= SHRINK_MIN_FILES && (files as f64) < prev_files as f64 * SHRINK_RATIO)
}
