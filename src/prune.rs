//! Pruning: delete the points retention no longer keeps, in every region.
//!
//! Order matters for crash safety: the point is marked `deleting` (no longer
//! usable) first, then its manifest and artifact are deleted, then it is
//! marked `deleted`. A crash leaves at worst an orphan object, never a
//! `complete` point without its data; `deleting` points are retried on the
//! next prune. The plan's backup and drill locks are held, so a prune never
//! deletes a point a running drill restores or a backup copies.
//!
//! A point whose objects are under S3 Object Lock (`locked_until` in the
//! future) is not deleted: S3 would refuse. It is kept, and said so, and
//! deleted by the first prune after its lock expired, every version of its
//! objects (a locked bucket is versioned: a plain delete frees nothing).

use tracing::{info, warn};

use crate::backup::region_vault;
use crate::catalog::{CatalogError, Point};
use crate::context::Context;
use crate::locks::{LockError, PlanLock};
use crate::plan::Plan;
use crate::resource::{delete_artifacts, ArtifactKeys};
use crate::retention::{decide, Candidate};
use crate::time::{now_ms, Millis};
use crate::vault::Vault;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// One point pruned (or that would be, in a dry run).
#[derive(Debug)]
pub struct Pruned {
    pub point: Point,
    pub reason: String,
    /// `Err` when the objects could not be deleted (retried next time).
    pub result: Result<(), String>,
    /// `Some`: not deleted, because its objects are under S3 Object Lock
    /// until then (`result` is `Ok`); a later prune deletes it.
    pub locked_until: Option<Millis>,
}

/// Until when a point's objects are still locked at `now`.
fn still_locked(point: &Point, now: Millis) -> Option<Millis> {
    point.locked_until.filter(|until| *until > now)
}

pub async fn run(
    ctx: &Context,
    plan: &Plan,
    now: Millis,
    dry_run: bool,
) -> Result<Vec<Pruned>, PruneError> {
    let _backup = PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "backup")?;
    let _drill = PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "drill")?;
    let cat = &ctx.catalog;
    let mut out = Vec::new();
    let mut todo: Vec<(Point, String)> = Vec::new();
    if !dry_run {
        for p in cat.deleting_points(&plan.name).await? {
            todo.push((p, "retrying an interrupted prune".into()));
        }
    }
    for region in plan.point_regions() {
        let rules = plan.retention_for(region);
        for res in &plan.resources {
            let points = cat.complete_points(&plan.name, &res.name, region).await?;
            let candidates: Vec<Candidate> = points
                .iter()
                .map(|p| Candidate {
                    id: p.id,
                    data_time: p.data_time.unwrap_or(p.started_at),
                })
                .collect();
            for d in decide(&candidates, rules, now)
                .into_iter()
                .filter(|d| !d.keep)
            {
                if let Some(p) = points.iter().find(|p| p.id == d.id) {
                    todo.push((p.clone(), d.reasons.join(", ")));
                }
            }
        }
    }
    if !dry_run {
        out.extend(remove_failed_leftovers(ctx, plan, now).await?);
    }
    for (point, reason) in todo {
        if let Some(until) = still_locked(&point, now) {
            out.push(Pruned {
                point,
                reason,
                result: Ok(()),
                locked_until: Some(until),
            });
            continue;
        }
        if dry_run {
            out.push(Pruned {
                point,
                reason,
                result: Ok(()),
                locked_until: None,
            });
            continue;
        }
        cat.mark_point_deleting(point.id, now_ms()).await?;
        let result = delete_point(plan, &point).await;
        match &result {
            Ok(()) => {
                cat.mark_point_deleted(point.id, now_ms(), &reason).await?;
                info!(point = point.id, region = %point.region, %reason, "point pruned");
            }
            Err(e) => warn!(point = point.id, error = %e, "pruning failed; will retry"),
        }
        out.push(Pruned {
            point,
            reason,
            result,
            locked_until: None,
        });
    }
    Ok(out)
}

/// Deletes what failed or interrupted backups may have left: an RDS
/// snapshot that became available after its run gave up (or whose run
/// died), the objects an `s3` point had copied. They hold no usable point
/// and cost money. Such points had their location recorded before the
/// work started; once cleaned they are flagged `leftovers-removed`.
async fn remove_failed_leftovers(
    ctx: &Context,
    plan: &Plan,
    now: Millis,
) -> Result<Vec<Pruned>, PruneError> {
    let cat = &ctx.catalog;
    let mut out = Vec::new();
    for point in cat.failed_points_with_leftovers(&plan.name).await? {
        let Some(location) = point.location.clone() else {
            continue;
        };
        if let Some(until) = still_locked(&point, now) {
            out.push(Pruned {
                point,
                reason: format!("objects under {location} of a failed backup"),
                result: Ok(()),
                locked_until: Some(until),
            });
            continue;
        }
        let (what, result) = if point.kind.starts_with("rds-") {
            let name = crate::resource::rds::id_of(&location).to_string();
            // Never a snapshot a usable point of the same region stands on.
            let used = cat
                .complete_points(&plan.name, &point.resource, &point.region)
                .await?
                .iter()
                .any(|p| {
                    p.location.as_deref().map(crate::resource::rds::id_of) == Some(name.as_str())
                });
            let result = if used {
                Ok(())
            } else {
                crate::resource::rds::delete_snapshot(
                    &point.kind,
                    &crate::backup::rds_place(plan, &point.region),
                    &name,
                )
                .await
            };
            (format!("snapshot {name}"), result)
        } else {
            let result = match region_vault(plan, &point.region).await {
                Ok(vault) => delete_point_objects(&vault, &point).await,
                Err(e) => Err(e),
            };
            (format!("objects under {location}"), result)
        };
        if result.is_ok() {
            cat.add_point_flag(point.id, "leftovers-removed").await?;
            info!(point = point.id, region = %point.region, %what, "removed what a failed backup left");
        }
        out.push(Pruned {
            point,
            reason: format!("{what} of a failed backup"),
            result,
            locked_until: None,
        });
    }
    Ok(out)
}

/// Deletes what holds a point (by the point's own kind, whatever the plan
/// says today): its snapshot (RDS) or its vault objects.
async fn delete_point(plan: &Plan, point: &Point) -> Result<(), String> {
    if point.kind.starts_with("rds-") {
        return match point.location.as_deref() {
            Some(arn) => {
                crate::resource::rds::delete_snapshot(
                    &point.kind,
                    &crate::backup::rds_place(plan, &point.region),
                    arn,
                )
                .await
            }
            None => Ok(()),
        };
    }
    let vault = region_vault(plan, &point.region).await?;
    delete_point_objects(&vault, point).await
}

async fn delete_point_objects(vault: &Vault, point: &Point) -> Result<(), String> {
    let Some(location) = point.location.as_deref() else {
        return Ok(());
    };
    // Written under a lock: the bucket keeps versions, and every one of
    // them goes (even if the plan has no object_lock any more).
    let vault = if point.locked_until.is_some() {
        vault.clone().with_versioned_deletes()
    } else {
        vault.clone()
    };
    let vault = &vault;
    let root = vault.location("");
    let key = location
        .strip_prefix(root.trim_end_matches('/'))
        .ok_or_else(|| format!("location {location} is not in the region's vault"))?
        .trim_start_matches('/');
    delete_artifacts(&point.kind, vault, &ArtifactKeys::from_artifact_key(key))
        .await
        .map_err(|e| e.to_string())
}
