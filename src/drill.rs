//! One drill: choose the points, restore them into scratch places, run the
//! checks, measure RTO and RPO exactly as DESIGN.md defines them, clean up
//! (whatever happened), and record everything.
//!
//! - Drill RPO = drill start − `data_time` of the point restored (the worst
//!   resource's).
//! - Drill RTO = time all checks passed − drill start; none if any fails.

use std::path::PathBuf;
use std::time::Instant;

use rand::seq::IndexedRandom;
use tracing::{info, instrument, warn};

use crate::backup::region_vault;
use crate::catalog::{CatalogError, DrillOutcome, DrillRecord, NewCheck, Point};
use crate::context::Context;
use crate::locks::{LockError, PlanLock};
use crate::plan::{Cleanup, Plan, PointChoice, Resource};
use crate::resource::{self, ArtifactKeys, Restored, Scratch};
use crate::time::now_ms;

/// Which points to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointSelector {
    Choice(PointChoice),
    /// A point id: pins that point's resource; the others use the plan's
    /// `[drill] point` choice.
    Id(i64),
}

impl PointSelector {
    pub fn parse(text: &str) -> Result<PointSelector, String> {
        if let Some(c) = PointChoice::parse(text) {
            return Ok(PointSelector::Choice(c));
        }
        text.parse::<i64>()
            .map(PointSelector::Id)
            .map_err(|_| format!("`{text}` is not a point id, nor latest, oldest or random"))
    }
}

#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub region: Option<String>,
    pub point: Option<PointSelector>,
    pub keep: bool,
    pub trigger: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Bad input: the drill did not start.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A finished drill as recorded.
#[derive(Debug)]
pub struct DrillRun {
    pub record: DrillRecord,
    pub kept: Option<PathBuf>,
    /// Scratch databases kept (`--keep`, or the plan's cleanup): where to
    /// look at the restored data.
    pub kept_databases: Vec<String>,
}

#[instrument(skip_all, fields(plan = %plan.name))]
pub async fn run(ctx: &Context, plan: &Plan, opts: &DrillOptions) -> Result<DrillRun, DrillError> {
    let region = opts
        .region
        .clone()
        .unwrap_or_else(|| plan.drill.region.clone());
    if !plan.point_regions().contains(&region.as_str()) {
        return Err(DrillError::Invalid(format!(
            "plan `{}` keeps no points in region `{region}` (regions: {})",
            plan.name,
            plan.point_regions().join(", ")
        )));
    }
    if plan.drill.isolate_primary && region == plan.backup.primary_region {
        return Err(DrillError::Invalid(format!(
            "plan `{}` sets isolate_primary: a drill may not restore from the primary region `{region}`",
            plan.name
        )));
    }
    let cat = &ctx.catalog;
    let pinned = match opts.point {
        Some(PointSelector::Id(id)) => {
            let p = cat
                .point(id)
                .await?
                .filter(|p| p.plan == plan.name)
                .ok_or_else(|| {
                    DrillError::Invalid(format!("plan `{}` has no point {id}", plan.name))
                })?;
            if plan.resource(&p.resource).is_none() {
                return Err(DrillError::Invalid(format!(
                    "point {id} is of resource `{}`, which plan `{}` no longer has",
                    p.resource, plan.name
                )));
            }
            if p.region != region || !p.is_complete() {
                return Err(DrillError::Invalid(format!(
                    "point {id} is {} in region `{}`; a drill in region `{region}` needs a complete point there",
                    p.status, p.region
                )));
            }
            Some(p)
        }
        _ => None,
    };
    let choice = match opts.point {
        Some(PointSelector::Choice(c)) => c,
        _ => plan.drill.point,
    };

    let _lock = PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "drill")?;
    clean_up_interrupted(ctx, plan).await?;

    // The drill starts now: RTO and RPO are measured from this instant.
    let started_at = now_ms();
    let clock = Instant::now();
    let drill_id = cat
        .start_drill(
            &plan.name,
            &region,
            &opts.trigger,
            started_at,
            plan.rto.as_millis() as i64,
            plan.rpo.as_millis() as i64,
        )
        .await?;
    info!(drill = drill_id, %region, "drill started");
    let scratch = ctx.drills_dir().join(drill_id.to_string());

    // Choose.
    let mut chosen: Vec<(&Resource, Option<Point>)> = Vec::new();
    for res in &plan.resources {
        let point = match &pinned {
            Some(p) if p.resource == res.name => Some(p.clone()),
            _ => {
                let candidates: Vec<Point> = cat
                    .complete_points(&plan.name, &res.name, &region)
                    .await?
                    .into_iter()
                    .filter(|p| p.completed_at.is_some_and(|c| c <= started_at))
                    .collect();
                pick(&candidates, choice)
            }
        };
        if let Some(p) = &point {
            cat.add_drill_point(drill_id, p.id).await?;
        }
        chosen.push((res, point));
    }
    let choose_ms = clock.elapsed().as_millis() as i64;

    // Restore and verify.
    let mut checks: Vec<NewCheck> = Vec::new();
    let mut restored: Vec<(&Resource, Option<Restored>)> = Vec::new();
    let vault = region_vault(plan, &region).await;
    let restore_clock = Instant::now();
    for (res, point) in &chosen {
        let t = Instant::now();
        let outcome: Result<Restored, String> = match (point, &vault) {
            (None, _) => Err(format!(
                "no complete point of `{}` in region `{region}` at drill start",
                res.name
            )),
            (Some(p), _) if !res.spec.uses_vault() => {
                let sc = scratch_of(plan, drill_id, &scratch, res, &region, None);
                match p.location.as_deref() {
                    Some(arn) => resource::rds::restore(&res.spec, &sc.rds_place(), arn, &sc)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err(format!("point {} has no snapshot ARN", p.id)),
                }
            }
            (_, Err(e)) => Err(e.clone()),
            (Some(p), Ok(vault)) => {
                let keys = point_keys(p, vault);
                match keys {
                    Some(keys) => resource::restore(
                        &res.spec,
                        vault,
                        &keys,
                        &scratch_of(plan, drill_id, &scratch, res, &region, Some(vault)),
                        &res.name,
                    )
                    .await
                    .map_err(|e| e.to_string()),
                    None => Err(format!(
                        "point {} has a location outside the region's vault: {}",
                        p.id,
                        p.location.as_deref().unwrap_or("none")
                    )),
                }
            }
        };
        let detail_prefix = point
            .as_ref()
            .map(|p| format!("point {}: ", p.id))
            .unwrap_or_default();
        checks.push(NewCheck {
            name: "restore".into(),
            resource: res.name.clone(),
            passed: outcome.is_ok(),
            detail: match &outcome {
                Ok(r) => format!("{detail_prefix}{}", r.verification),
                Err(e) => format!("{detail_prefix}{e}"),
            },
            ms: t.elapsed().as_millis() as i64,
        });
        restored.push((res, outcome.ok()));
    }
    let restore_ms = restore_clock.elapsed().as_millis() as i64;

    // Checks: built-in ones per kind, then the plan's SQL checks.
    let checks_clock = Instant::now();
    for (res, r) in &restored {
        if let Some(r) = r {
            let sc = scratch_of(plan, drill_id, &scratch, res, &region, vault.as_ref().ok());
            for c in resource::builtin_checks(&res.spec, r, &sc).await {
                checks.push(NewCheck {
                    name: c.name.into(),
                    resource: res.name.clone(),
                    passed: c.result.is_ok(),
                    detail: c.result.unwrap_or_else(|e| e),
                    ms: c.elapsed.as_millis() as i64,
                });
            }
        }
    }
    for check in &plan.drill.checks {
        let t = Instant::now();
        let target = restored.iter().find(|(r, _)| r.name == check.resource);
        let result = match target {
            Some((res, Some(r))) => resource::run_sql_check(&res.spec, r, check).await,
            _ => Err(format!("not run: `{}` was not restored", check.resource)),
        };
        checks.push(NewCheck {
            name: check.name.clone(),
            resource: check.resource.clone(),
            passed: result.is_ok(),
            detail: result.unwrap_or_else(|e| e),
            ms: t.elapsed().as_millis() as i64,
        });
    }
    let checks_ms = checks_clock.elapsed().as_millis() as i64;
    let passed = checks.iter().all(|c| c.passed);
    // RTO ends when the last check passed: now, before cleanup.
    let rto_ms = passed.then(|| clock.elapsed().as_millis() as i64);
    let rpo_ms = chosen
        .iter()
        .filter_map(|(_, p)| p.as_ref()?.data_time)
        .map(|dt| started_at - dt)
        .max()
        .filter(|_| chosen.iter().all(|(_, p)| p.is_some()));
    for c in &checks {
        cat.add_check(drill_id, c).await?;
    }

    // Clean up per the plan, whatever happened.
    let cleanup_clock = Instant::now();
    let keep = opts.keep
        || match plan.drill.cleanup {
            Cleanup::Always => false,
            Cleanup::OnSuccess => !passed,
            Cleanup::Never => true,
        };
    let mut kept = None;
    let mut kept_databases = Vec::new();
    let mut error = checks.iter().find(|c| !c.passed).map(|c| {
        format!(
            "check `{}` of `{}` failed: {}",
            c.name, c.resource, c.detail
        )
    });
    if keep {
        if scratch.exists() {
            kept = Some(scratch.clone());
        }
        kept_databases = restored
            .iter()
            .filter_map(|(_, r)| r.as_ref()?.database.clone())
            .collect();
        for db in &kept_databases {
            info!(drill = drill_id, database = %db, "scratch database kept");
        }
    } else {
        // Whatever each restore got to create, even if it failed half-way.
        for (res, point) in &chosen {
            if point.is_none() {
                continue;
            }
            let sc = scratch_of(plan, drill_id, &scratch, res, &region, vault.as_ref().ok());
            if let Err(e) = resource::discard(&res.spec, &sc).await {
                warn!(resource = %res.name, error = %e, "drill cleanup failed");
                error.get_or_insert_with(|| format!("cleanup of `{}` failed: {e}", res.name));
            }
        }
    }
    if !keep && scratch.exists() {
        let target = scratch.clone();
        let removed = tokio::task::spawn_blocking(move || resource::remove_scratch(&target))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = removed {
            warn!(dir = %scratch.display(), error = %e, "drill cleanup failed");
            error.get_or_insert_with(|| format!("cleanup of {} failed: {e}", scratch.display()));
        }
    }
    let cleanup_ms = cleanup_clock.elapsed().as_millis() as i64;

    cat.finish_drill(
        drill_id,
        &DrillOutcome {
            status: crate::catalog::DrillStatus::verdict(passed),
            finished_at: now_ms(),
            rto_ms,
            rpo_ms,
            choose_ms,
            restore_ms,
            checks_ms,
            cleanup_ms,
            kept_path: kept.as_ref().map(|p| p.display().to_string()),
            error,
        },
    )
    .await?;
    info!(drill = drill_id, passed, "drill finished");
    // The row was just written; it can only be missing if the catalog was
    // deleted under us.
    let record = cat.drill(drill_id).await?.ok_or_else(|| {
        DrillError::Invalid(format!("drill {drill_id} vanished from the catalog"))
    })?;
    // The drill's verdict stands in the catalog either way; a record that
    // could not be written shows as a gap in the chain the report verifies.
    match crate::evidence::write(cat, plan, &record).await {
        Ok(key) => info!(drill = drill_id, key, "drill evidence written"),
        Err(e) => warn!(drill = drill_id, error = %e, "cannot write drill evidence"),
    }
    Ok(DrillRun {
        record,
        kept,
        kept_databases,
    })
}

/// Where drill `drill_id` restores `res` (`dir` is the drill's folder) in
/// `region`, whose vault is `vault`.
fn scratch_of(
    plan: &Plan,
    drill_id: i64,
    dir: &std::path::Path,
    res: &Resource,
    region: &str,
    vault: Option<&crate::vault::Vault>,
) -> Scratch {
    Scratch {
        dir: dir.join(&res.name),
        plan: plan.name.clone(),
        drill_id,
        resource: res.name.clone(),
        region: region.to_string(),
        aws: plan.aws.clone(),
        vault: vault.cloned(),
        budget: plan.backup.completion_window,
    }
}

/// Records the plan's drills still `running` as failed and removes what
/// they restored. Call while holding the plan's drill lock: anything still
/// running then belongs to a process that died.
pub async fn clean_up_interrupted(ctx: &Context, plan: &Plan) -> Result<Vec<i64>, CatalogError> {
    let stale = ctx
        .catalog
        .fail_interrupted_drills(&plan.name, now_ms())
        .await?;
    for &stale_id in &stale {
        let dir = ctx.drills_dir().join(stale_id.to_string());
        let region = match ctx.catalog.drill(stale_id).await? {
            Some(d) => d.region,
            None => plan.drill.region.clone(),
        };
        // Only a plan with remote scratch places needs the drill region's
        // vault (and its credentials) to clean up.
        let remote = plan
            .resources
            .iter()
            .any(|r| matches!(r.spec, crate::plan::ResourceSpec::S3 { .. }));
        let vault = if remote {
            region_vault(plan, &region).await.ok()
        } else {
            None
        };
        // Scratch places are named from the drill id, so no record of
        // them is needed to find them; then the folder.
        for res in &plan.resources {
            let sc = scratch_of(plan, stale_id, &dir, res, &region, vault.as_ref());
            match resource::discard(&res.spec, &sc).await {
                Ok(Some(what)) => {
                    warn!(drill = stale_id, resource = %res.name, "dropped what an interrupted drill restored: {what}")
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(drill = stale_id, resource = %res.name, error = %e, "cannot clean up after an interrupted drill")
                }
            }
        }
        if dir.exists() {
            warn!(drill = stale_id, dir = %dir.display(), "removing what an interrupted drill restored");
            let _ = tokio::task::spawn_blocking(move || resource::remove_scratch(&dir)).await;
        }
    }
    Ok(stale)
}

/// Takes the plan's drill lock and cleans up after interrupted drills
/// (the daemon does this at start-up).
pub async fn recover(ctx: &Context, plan: &Plan) -> Result<Vec<i64>, DrillError> {
    let _lock = PlanLock::try_acquire(&ctx.locks_dir(), &plan.name, "drill")?;
    Ok(clean_up_interrupted(ctx, plan).await?)
}

/// Candidates are newest first.
fn pick(candidates: &[Point], choice: PointChoice) -> Option<Point> {
    match choice {
        PointChoice::Latest => candidates.first().cloned(),
        PointChoice::Oldest => candidates.last().cloned(),
        PointChoice::Random => candidates.choose(&mut rand::rng()).cloned(),
    }
}

/// The vault keys of a point, from its recorded location.
fn point_keys(p: &Point, vault: &crate::vault::Vault) -> Option<ArtifactKeys> {
    let location = p.location.as_deref()?;
    let root = vault.location("");
    let key = location
        .strip_prefix(root.trim_end_matches('/'))?
        .trim_start_matches('/');
    Some(ArtifactKeys::from_artifact_key(key))
}
