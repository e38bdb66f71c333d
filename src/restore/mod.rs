//! `lifeboat restore`: puts a plan's points back where the operator says,
//! through the very steps a drill takes (choose → restore → check), so
//! that what the drills measured is what the operator runs. Only the last
//! step differs: a drill throws its scratch places away, a restore puts
//! its staging places in the targets — and only once every point is
//! restored, verified against its manifest and checked.
//!
//! A failed restore puts nothing in place and removes what it staged; a
//! restore killed midway leaves its staging places, which the next
//! restore of the plan removes (and records the killed one failed).

pub mod choose;
pub mod from_vault;
pub mod steps;
pub mod targets;

use std::path::PathBuf;
use std::time::Instant;

use tracing::{info, instrument, warn};

use crate::catalog::{
    Catalog, CatalogError, NewCheck, NewRestore, Point, PointStatus, RestoreRecord, RestoreStatus,
};
use crate::context::Context;
use crate::lease::{self, Lease, LeaseError};
use crate::plan::{Plan, PointChoice, Resource, ResourceSpec};
use crate::resource::target::Target;
use crate::resource::{self, Place, Scratch, ScratchFor};
use crate::time::{now_ms, rfc3339, Millis};
use choose::{Candidates, Moment};
use steps::RestoredResource;

/// Which moment to put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The newest moment the region's points allow (the default).
    Latest,
    /// The newest moment whose data is at or before this instant.
    At(Millis),
    /// This point (its resource), and the others at its moment.
    Point(i64),
}

impl Asked {
    /// As recorded and shown: `latest`, `at 2026-…`, `point 12`.
    pub fn describe(&self) -> String {
        match self {
            Asked::Latest => "latest".into(),
            Asked::At(t) => format!("at {}", rfc3339(*t)),
            Asked::Point(id) => format!("point {id}"),
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The region to restore from [default: the plan's drill region]; any
    /// region holding points, the primary included.
    pub region: Option<String>,
    /// Which moment.
    pub asked: Asked,
    /// The resources to restore; empty: every resource of the plan (or,
    /// with `Asked::Point`, the point's).
    pub resources: Vec<String>,
    /// Where each goes, as the command line said it.
    pub targets: targets::TargetArgs,
    /// Replace what the targets hold.
    pub overwrite: bool,
    /// Run the plan's checks on the restored data (the kinds' own checks
    /// and the verification against the manifest always run).
    pub checks: bool,
    /// `user@host`, recorded.
    pub by_whom: String,
}

/// Why a restore did not start, or stopped short of a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Bad input: nothing was done.
    #[error("{0}")]
    Invalid(String),
    /// Another restore of the plan is running, or a prune.
    #[error(transparent)]
    Lock(#[from] LeaseError),
    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A target could not be checked before the restore.
    #[error("{0}")]
    Target(String),
}

/// One resource of a prepared restore.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// The plan's resource.
    pub resource: &'a Resource,
    /// The point chosen.
    pub point: Point,
    /// Where it goes.
    pub target: Target,
}

/// What a restore will do: `--dry-run` shows it, [`run`] does it.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    /// The region restored from.
    pub region: String,
    /// What was asked.
    pub asked: Asked,
    /// The backup run all the points come from, when one run holds them.
    pub run: Option<i64>,
    /// Per resource: point and target.
    pub items: Vec<Item<'a>>,
    /// The RTO of the newest passing drill from this region: how long the
    /// restore can be expected to take.
    pub expected_ms: Option<i64>,
}

/// How one resource ended.
#[derive(Debug, Clone)]
pub struct ItemOutcome {
    /// The resource.
    pub resource: String,
    /// The point restored.
    pub point: i64,
    /// Its data time.
    pub data_time: Option<Millis>,
    /// Where it went.
    pub target: String,
    /// Put in place.
    pub placed: bool,
    /// What was done, or why not.
    pub detail: String,
}

/// A finished restore.
#[derive(Debug, Clone)]
pub struct RestoreRun {
    /// The restore as recorded.
    pub record: RestoreRecord,
    /// Per resource.
    pub items: Vec<ItemOutcome>,
    /// The verification of each restore (`restore` checks) and the checks
    /// run on the restored data, in order.
    pub checks: Vec<NewCheck>,
}

impl RestoreRun {
    /// Restored, verified, checked and put in place, every resource.
    pub fn succeeded(&self) -> bool {
        self.record.status == RestoreStatus::Succeeded
    }
}

/// Checks what the operator asked against the plan and the catalog:
/// region, resources, the points for the moment, the targets (refusing
/// any that holds data without `overwrite`). Changes nothing.
pub async fn prepare<'a>(
    ctx: &Context,
    plan: &'a Plan,
    opts: &RestoreOptions,
) -> Result<Prepared<'a>, RestoreError> {
    let cat = &ctx.catalog;
    let pinned = match opts.asked {
        Asked::Point(id) => Some(pinned_point(cat, plan, id).await?),
        _ => None,
    };
    let region = match (&opts.region, &pinned) {
        (Some(r), _) => r.clone(),
        (None, Some(p)) => p.region.clone(),
        (None, None) => plan.drill.region.clone(),
    };
    if !plan.point_regions().contains(&region.as_str()) {
        return Err(RestoreError::Invalid(format!(
            "plan `{}` keeps no points in region `{region}` (regions: {})",
            plan.name,
            plan.point_regions().join(", ")
        )));
    }
    if let Some(p) = &pinned {
        if p.region != region || p.status != PointStatus::Complete {
            return Err(RestoreError::Invalid(format!(
                "point {} is {} in region `{}`, not complete in region `{region}`",
                p.id,
                p.status.as_str(),
                p.region
            )));
        }
    }
    let resources = selected(plan, &opts.resources, pinned.as_ref())?;
    let mut candidates = Vec::new();
    for res in &resources {
        candidates.push(Candidates {
            resource: res.name.clone(),
            points: cat.complete_points(&plan.name, &res.name, &region).await?,
        });
    }
    let moment = match (&opts.asked, pinned) {
        (Asked::Latest, _) => Moment::Choice(PointChoice::Latest),
        (Asked::At(t), _) => Moment::At(*t),
        (Asked::Point(_), Some(p)) => Moment::Pinned(Box::new(p)),
        (Asked::Point(id), None) => {
            return Err(RestoreError::Invalid(format!(
                "plan `{}` has no point {id}",
                plan.name
            )))
        }
    };
    let chosen = choose::choose(&candidates, &moment);
    let place = Place::reading(plan, &region);
    let targets = targets::resolve(&resources, &opts.targets, &region, plan.aws.as_ref())
        .map_err(RestoreError::Invalid)?;
    let mut items = Vec::new();
    for ((res, point), target) in resources.iter().zip(chosen.points).zip(targets) {
        let Some(point) = point else {
            return Err(RestoreError::Invalid(format!(
                "no complete point of `{}` in region `{region}`{}",
                res.name,
                match opts.asked {
                    Asked::At(t) => format!(" at or before {}", rfc3339(t)),
                    _ => String::new(),
                }
            )));
        };
        target
            .preflight(&res.spec, &place, opts.overwrite)
            .await
            .map_err(|e| RestoreError::Target(format!("`{}`: {e}", res.name)))?;
        items.push(Item {
            resource: res,
            point,
            target,
        });
    }
    let expected_ms = cat
        .last_passed_drill(&plan.name, Millis::MAX)
        .await?
        .filter(|d| d.region == region)
        .and_then(|d| d.rto_ms);
    Ok(Prepared {
        region,
        asked: opts.asked,
        run: chosen.run,
        items,
        expected_ms,
    })
}

/// The point `--point` names, of this plan and of a resource it has.
async fn pinned_point(cat: &Catalog, plan: &Plan, id: i64) -> Result<Point, RestoreError> {
    steps::point_of_plan(cat, plan, id)
        .await?
        .map_err(RestoreError::Invalid)
}

/// The resources to restore, in the plan's order.
fn selected<'a>(
    plan: &'a Plan,
    names: &[String],
    pinned: Option<&Point>,
) -> Result<Vec<&'a Resource>, RestoreError> {
    for n in names {
        if plan.resource(n).is_none() {
            return Err(RestoreError::Invalid(format!(
                "plan `{}` has no resource `{n}` (resources: {})",
                plan.name,
                plan.resources
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let wanted = |r: &Resource| match (names.is_empty(), pinned) {
        (false, _) => names.contains(&r.name),
        (true, Some(p)) => r.name == p.resource,
        (true, None) => true,
    };
    let chosen: Vec<&Resource> = plan.resources.iter().filter(|r| wanted(r)).collect();
    if let Some(p) = pinned {
        if !chosen.iter().any(|r| r.name == p.resource) {
            return Err(RestoreError::Invalid(format!(
                "point {} is of resource `{}`, which --resource does not name",
                p.id, p.resource
            )));
        }
    }
    Ok(chosen)
}

/// Runs a prepared restore: takes the plan's restore lock, cleans up after
/// interrupted restores, records the restore, restores every point into
/// its staging place and verifies it, runs the checks, and puts everything
/// in place only if all passed.
#[instrument(skip_all, fields(plan = %plan.name))]
pub async fn run(
    ctx: &Context,
    plan: &Plan,
    prepared: &Prepared<'_>,
    opts: &RestoreOptions,
) -> Result<RestoreRun, RestoreError> {
    let _lease = Lease::acquire(&ctx.catalog, &plan.name, lease::RESTORE).await?;
    clean_up_interrupted(ctx, plan).await?;
    let cat = &ctx.catalog;
    let started_at = now_ms();
    let id = cat
        .start_restore(&NewRestore {
            plan: &plan.name,
            region: &prepared.region,
            by_whom: &opts.by_whom,
            moment: &prepared.asked.describe(),
            started_at,
            checks_run: opts.checks,
        })
        .await?;
    info!(restore = id, region = %prepared.region, "restore started");
    let place = Place::reading(plan, &prepared.region);
    let work = restore_dir(ctx, id);
    let staged: Vec<Scratch> = prepared
        .items
        .iter()
        .map(|i| i.target.staging(&plan.name, id, &i.resource.name, &work))
        .collect();
    for (item, scratch) in prepared.items.iter().zip(&staged) {
        cat.add_restore_point(
            id,
            &item.resource.name,
            Some(item.point.id),
            &item.target.describe(),
            Some(&staging_record(scratch)),
        )
        .await?;
    }

    // Restore and verify: the drill's steps.
    let mut checks = Vec::new();
    let mut restored = Vec::new();
    for (item, scratch) in prepared.items.iter().zip(&staged) {
        let t = Instant::now();
        let outcome = steps::restore_point(cat, item.resource, &item.point, &place, scratch).await;
        checks.push(NewCheck {
            name: "restore".into(),
            resource: item.resource.name.clone(),
            passed: outcome.is_ok(),
            detail: match &outcome {
                Ok(r) => format!("point {}: {}", item.point.id, r.verification),
                Err(e) => format!("point {}: {e}", item.point.id),
            },
            ms: t.elapsed().as_millis() as i64,
        });
        if let Ok(r) = outcome {
            restored.push(RestoredResource {
                resource: item.resource,
                restored: r,
                scratch: scratch.clone(),
            });
        }
    }
    let all_restored = restored.len() == prepared.items.len();
    if all_restored {
        let names: Vec<&str> = if opts.checks {
            prepared
                .items
                .iter()
                .map(|i| i.resource.name.as_str())
                .collect()
        } else {
            Vec::new()
        };
        // The kinds' own checks (integrity, tables, objects) always run;
        // --no-checks skips the plan's.
        let ran = steps::run_checks(plan, &place, &restored, &names).await;
        checks.extend(ran);
    }
    let passed = all_restored && checks.iter().all(|c| c.passed);

    // Put in place, or throw away.
    // Digits only: an unquoted name in psql stays as written.
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let mut items = Vec::new();
    let mut error = checks.iter().find(|c| !c.passed).map(|c| {
        format!(
            "check `{}` of `{}` failed: {}",
            c.name, c.resource, c.detail
        )
    });
    for (item, scratch) in prepared.items.iter().zip(&staged) {
        let done = restored
            .iter()
            .find(|r| r.resource.name == item.resource.name);
        let (placed, detail) = match done {
            Some(r) if passed => {
                let what = format!(
                    "point {} of {}/{}",
                    item.point.id, plan.name, item.resource.name
                );
                match item
                    .target
                    .commit(&place, &r.restored, scratch, opts.overwrite, &what, &stamp)
                    .await
                {
                    Ok(said) => (true, said),
                    Err(e) => {
                        discard(&item.resource.spec, &place, scratch).await;
                        let e = format!("cannot put it in place: {e}");
                        error.get_or_insert_with(|| format!("`{}`: {e}", item.resource.name));
                        (false, e)
                    }
                }
            }
            _ => {
                discard(&item.resource.spec, &place, scratch).await;
                (
                    false,
                    "not put in place: the restore did not pass".to_string(),
                )
            }
        };
        if let Err(e) = cat
            .set_restore_outcome(id, &item.resource.name, &detail)
            .await
        {
            warn!(restore = id, error = %e, "cannot record a restore's outcome");
        }
        items.push(ItemOutcome {
            resource: item.resource.name.clone(),
            point: item.point.id,
            data_time: item.point.data_time,
            target: item.target.describe(),
            placed,
            detail,
        });
    }
    let _ = tokio::fs::remove_dir_all(&work).await;
    let succeeded = passed && items.iter().all(|i| i.placed);
    let status = if succeeded {
        RestoreStatus::Succeeded
    } else {
        RestoreStatus::Failed
    };
    let checks_json = serde_json::to_string(&checks_json(&checks)).unwrap_or_else(|_| "[]".into());
    cat.finish_restore(id, status, now_ms(), &checks_json, error.as_deref())
        .await?;
    info!(restore = id, succeeded, "restore finished");
    let record = cat
        .restore(id)
        .await?
        .ok_or_else(|| RestoreError::Invalid(format!("restore {id} vanished from the catalog")))?;
    Ok(RestoreRun {
        record,
        items,
        checks,
    })
}

/// The checks as recorded in `restores.checks`.
fn checks_json(checks: &[NewCheck]) -> Vec<serde_json::Value> {
    checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "resource": c.resource,
                "passed": c.passed,
                "detail": c.detail,
                "seconds": c.ms as f64 / 1000.0,
            })
        })
        .collect()
}

/// `WORK/restores/ID`: a restore's downloads (database dumps).
fn restore_dir(ctx: &Context, id: i64) -> PathBuf {
    ctx.work_dir.join("restores").join(id.to_string())
}

/// Where a staging place is, as recorded: its folder, or for a database
/// the server it was staged on.
fn staging_record(s: &Scratch) -> String {
    match &s.server {
        Some(server) => server.clone(),
        None => s.dir.display().to_string(),
    }
}

/// Removes a staging place (whatever a failed restore got to create). An
/// RDS instance or cluster is the operator's target itself: never
/// deleted, even when its checks fail.
async fn discard(spec: &ResourceSpec, place: &Place<'_>, scratch: &Scratch) {
    if matches!(
        spec,
        ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. }
    ) {
        return;
    }
    if let Err(e) = resource::discard(spec, place, scratch).await {
        warn!(resource = %scratch.resource, error = %e, "cannot remove a restore's staging database");
    }
    let dir = scratch.dir.clone();
    let removed = tokio::task::spawn_blocking(move || resource::remove_scratch(&dir)).await;
    if let Ok(Err(e)) = removed {
        warn!(dir = %scratch.dir.display(), error = %e, "cannot remove a restore's staging folder");
    }
}

/// Records the plan's restores still `running` as failed and removes what
/// they staged. Call while holding the plan's restore lock.
pub async fn clean_up_interrupted(ctx: &Context, plan: &Plan) -> Result<(), CatalogError> {
    for (id, p) in ctx
        .catalog
        .fail_interrupted_restores(&plan.name, now_ms())
        .await?
    {
        let (Some(res), Some(staging)) = (plan.resource(&p.resource), p.staging.as_deref()) else {
            continue;
        };
        let region = ctx
            .catalog
            .restore(id)
            .await?
            .map(|r| r.region)
            .unwrap_or_else(|| plan.drill.region.clone());
        let place = Place::reading(plan, &region);
        let scratch = match &res.spec {
            ResourceSpec::Postgres { .. } => Scratch {
                dir: restore_dir(ctx, id).join(&res.name),
                plan: plan.name.clone(),
                drill_id: id,
                resource: res.name.clone(),
                purpose: ScratchFor::Restore,
                server: Some(staging.to_string()),
                instance: None,
            },
            _ => Scratch {
                dir: PathBuf::from(staging),
                plan: plan.name.clone(),
                drill_id: id,
                resource: res.name.clone(),
                purpose: ScratchFor::Restore,
                server: None,
                instance: None,
            },
        };
        warn!(restore = id, resource = %res.name, "removing what an interrupted restore staged");
        discard(&res.spec, &place, &scratch).await;
        let _ = tokio::fs::remove_dir_all(restore_dir(ctx, id)).await;
    }
    Ok(())
}
