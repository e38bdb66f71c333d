//! Pruning: delete the points retention no longer keeps, in every region.
//!
//! Order matters for crash safety: the point is marked `deleting` (no longer
//! usable) first, then its data is deleted, then it is marked `deleted`. A
//! crash leaves at worst an orphan object, never a `complete` point without
//! its data; `deleting` points are retried on the next prune. The plan's
//! backup, drill and restore leases are held, so a prune never deletes a
//! point a running drill or restore restores or a backup copies.
//!
//! A point whose objects are under S3 Object Lock (`locked_until` in the
//! future) is not deleted: S3 would refuse. It is kept, and said so, and
//! deleted by the first prune after its lock expired, every version of its
//! objects (a locked bucket is versioned: a plain delete frees nothing).
//!
//! A prune is a pipeline: gather what to delete (interrupted prunes,
//! what retention drops, what failed backups left), then delete each.

use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, Point};
use crate::context::Context;
use crate::lease::{self, Lease, LeaseError};
use crate::plan::Plan;
use crate::resource::{self, Place, PointFlag, ResourceError};
use crate::retention::{decide, Candidate};
use crate::time::{now_ms, Millis};

/// Why a prune could not run. A point whose data could not be deleted is
/// not an error of the prune: it is reported in [`Pruned::result`].
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A backup, drill or restore of the plan holds its lease: prune waits
    /// its turn.
    #[error(transparent)]
    Lock(#[from] LeaseError),
    /// The catalog could not be read or written; points already marked
    /// `deleting` are retried by the next prune.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// One point pruned (or that would be, in a dry run).
#[derive(Debug)]
pub struct Pruned {
    /// The point as it was before this prune touched it.
    pub point: Point,
    /// Why it goes: the retention rules that no longer keep it, a retried
    /// interrupted prune, or the leftovers of a failed backup.
    pub reason: String,
    /// `Err` when the data could not be deleted (retried next time).
    pub result: Result<(), ResourceError>,
    /// `Some`: not deleted, because its objects are under S3 Object Lock
    /// until then (`result` is `Ok`); a later prune deletes it.
    pub locked_until: Option<Millis>,
}

/// Why a point is to be deleted.
enum Doomed {
    /// Retention drops it (or an interrupted prune started on it).
    Expired(Point, String),
    /// A failed backup left data behind.
    Leftover(Point),
}

/// Until when a point's objects are still locked at `now`.
fn still_locked(point: &Point, now: Millis) -> Option<Millis> {
    point.locked_until.filter(|until| *until > now)
}

/// Prunes `plan` as of `now`, holding its backup, drill and restore leases;
/// `dry_run` only says what retention would drop (interrupted prunes and
/// failed backups' leftovers are not listed) and changes nothing.
pub async fn run(
    ctx: &Context,
    plan: &Plan,
    now: Millis,
    dry_run: bool,
) -> Result<Vec<Pruned>, PruneError> {
    let _backup = Lease::acquire(&ctx.catalog, &plan.name, lease::BACKUP).await?;
    let _drill = Lease::acquire(&ctx.catalog, &plan.name, lease::DRILL).await?;
    let _restore = Lease::acquire(&ctx.catalog, &plan.name, lease::RESTORE).await?;
    let cat = &ctx.catalog;
    if !dry_run {
        // Drill evidence records whose write failed are retried here too.
        crate::evidence::write_all_pending(cat, plan).await;
    }
    let mut doomed = Vec::new();
    if !dry_run {
        for p in cat.failed_points_with_leftovers(&plan.name).await? {
            doomed.push(Doomed::Leftover(p));
        }
        for p in cat.deleting_points(&plan.name).await? {
            doomed.push(Doomed::Expired(p, "retrying an interrupted prune".into()));
        }
    }
    doomed.extend(dropped_by_retention(cat, plan, now).await?);
    let mut out = Vec::new();
    for d in doomed {
        out.push(prune_one(cat, plan, d, now, dry_run).await?);
    }
    Ok(out)
}

/// The complete points retention no longer keeps, region by region.
async fn dropped_by_retention(
    cat: &Catalog,
    plan: &Plan,
    now: Millis,
) -> Result<Vec<Doomed>, CatalogError> {
    let mut out = Vec::new();
    for region in plan.point_regions() {
        let rules = plan.retention_for(region);
        for res in &plan.resources {
            let mut points = cat.complete_points(&plan.name, &res.name, region).await?;
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
                if let Some(i) = points.iter().position(|p| p.id == d.id) {
                    out.push(Doomed::Expired(points.swap_remove(i), d.reasons.join(", ")));
                }
            }
            // A damaged point holds no slot of the rules above (the
            // complete ones are kept as if it did not exist); it goes when
            // the rules would drop it among the complete points.
            for p in cat.damaged_points(&plan.name, &res.name, region).await? {
                let mut with = candidates.clone();
                let data_time = p.data_time.unwrap_or(p.started_at);
                with.push(Candidate {
                    id: p.id,
                    data_time,
                });
                let dropped = decide(&with, rules, now)
                    .into_iter()
                    .find(|d| d.id == p.id && !d.keep);
                if let Some(d) = dropped {
                    let reason = format!("{} (damaged)", d.reasons.join(", "));
                    out.push(Doomed::Expired(p, reason));
                }
            }
        }
    }
    Ok(out)
}

/// Deletes one doomed point's data, unless locked or a dry run, and
/// records it.
async fn prune_one(
    cat: &Catalog,
    plan: &Plan,
    doomed: Doomed,
    now: Millis,
    dry_run: bool,
) -> Result<Pruned, CatalogError> {
    let (point, reason, leftover) = match doomed {
        Doomed::Expired(p, reason) => (p, reason, false),
        Doomed::Leftover(p) => {
            let what = leftover_of(&p);
            (p, format!("{what} of a failed backup"), true)
        }
    };
    let locked_until = still_locked(&point, now);
    if locked_until.is_some() || dry_run {
        return Ok(Pruned {
            point,
            reason,
            result: Ok(()),
            locked_until,
        });
    }
    if !leftover {
        cat.mark_point_deleting(point.id, now_ms()).await?;
    }
    let result = delete_data(cat, plan, &point, leftover).await?;
    match (&result, leftover) {
        (Ok(()), false) => {
            cat.mark_point_deleted(point.id, now_ms(), &reason).await?;
            info!(point = point.id, region = %point.region, %reason, "point pruned");
        }
        (Ok(()), true) => {
            cat.add_point_flag(point.id, PointFlag::LeftoversRemoved)
                .await?;
            info!(point = point.id, region = %point.region, %reason, "removed what a failed backup left");
        }
        (Err(e), _) => warn!(point = point.id, error = %e, "pruning failed; will retry"),
    }
    Ok(Pruned {
        point,
        reason,
        result,
        locked_until: None,
    })
}

/// What a failed point left, as prune reports it.
fn leftover_of(point: &Point) -> String {
    match &point.stored {
        Some(resource::Location::RdsSnapshot { id, .. }) => format!("snapshot {id}"),
        _ => format!("objects under {}", point.location.as_deref().unwrap_or("?")),
    }
}

/// Deletes what holds a point, by the point's own kind whatever the plan
/// says today. A failed point's leftovers are kept when a usable point of
/// the same region stands on the same data (a snapshot adopted by a retry
/// of the same slot).
async fn delete_data(
    cat: &Catalog,
    plan: &Plan,
    point: &Point,
    leftover: bool,
) -> Result<Result<(), ResourceError>, CatalogError> {
    let Some(stored) = &point.stored else {
        return Ok(Ok(()));
    };
    if leftover {
        let used = cat
            .complete_points(&plan.name, &point.resource, &point.region)
            .await?
            .iter()
            .any(|p| same_snapshot(p, stored));
        if used {
            return Ok(Ok(()));
        }
    }
    let place = Place::reading(plan, &point.region);
    // Written under a lock: the bucket keeps versions, and every one of
    // them goes (even if the plan has no object_lock any more).
    let versioned = point.locked_until.is_some();
    Ok(resource::delete(point.kind, &place, stored, versioned).await)
}

/// Whether point `p` is the snapshot `stored` names (the ARN is set only
/// once a snapshot completes, so only the identifiers are compared). Only
/// snapshots are ever shared, by a retry of the same slot adopting one;
/// vault keys carry their point's id.
fn same_snapshot(p: &Point, stored: &resource::Location) -> bool {
    use resource::Location::RdsSnapshot;
    match (&p.stored, stored) {
        (Some(RdsSnapshot { id: a, .. }), RdsSnapshot { id: b, .. }) => a == b,
        _ => false,
    }
}
