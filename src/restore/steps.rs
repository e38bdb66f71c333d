//! The steps a drill and a restore share, so that what the drills measured
//! is what the operator runs: restoring one point (bound to the catalog's
//! record, verified against its manifest, marked damaged when found
//! corrupt) and running the checks on what was restored.

use std::time::Instant;

use crate::catalog::{Catalog, NewCheck, Point};
use crate::plan::{DrillCheck, Plan, Resource};
use crate::resource::{self, command_check, Kind, Place, ResourceError, Restored, Scratch};

/// Point `id`, when it is of `plan` and of a resource the plan still has;
/// otherwise why not (bad input for `--point`).
pub async fn point_of_plan(
    cat: &Catalog,
    plan: &Plan,
    id: i64,
) -> Result<Result<Point, String>, crate::catalog::CatalogError> {
    let Some(p) = cat.point(id).await?.filter(|p| p.plan == plan.name) else {
        return Ok(Err(format!("plan `{}` has no point {id}", plan.name)));
    };
    if plan.resource(&p.resource).is_none() {
        return Ok(Err(format!(
            "point {id} is of resource `{}`, which plan `{}` no longer has",
            p.resource, plan.name
        )));
    }
    Ok(Ok(p))
}

/// Restores point `p` of `res` from `place` into `scratch` and verifies
/// it. A point found corrupt is marked damaged, and the error says so.
pub async fn restore_point(
    cat: &Catalog,
    res: &Resource,
    p: &Point,
    place: &Place<'_>,
    scratch: &Scratch,
) -> Result<Restored, String> {
    match restore_verified(res, p, place, scratch).await {
        Ok(r) => Ok(r),
        // Found corrupt: marked damaged where the failed check is
        // recorded, so later drills and `status` skip it.
        Err(e) => Err(match crate::verify::mark_if_damage(cat, p, &e).await {
            Some(_) => format!("{e}; the point is now marked damaged"),
            None => e.to_string(),
        }),
    }
}

async fn restore_verified(
    res: &Resource,
    p: &Point,
    place: &Place<'_>,
    scratch: &Scratch,
) -> Result<Restored, ResourceError> {
    let Some(stored) = &p.stored else {
        return Err(ResourceError::Other(format!(
            "point {} records no location",
            p.id
        )));
    };
    if p.kind != Kind::of(&res.spec) {
        return Err(ResourceError::Mismatch(format!(
            "point {} is of kind {}; the plan's `{}` is now of kind {}",
            p.id,
            p.kind,
            res.name,
            res.spec.kind()
        )));
    }
    resource::restore(&res.spec, place, stored, &p.binding(), scratch).await
}

/// One resource restored, where, for the checks.
pub struct RestoredResource<'a> {
    /// The plan's resource.
    pub resource: &'a Resource,
    /// What its restore put where.
    pub restored: Restored,
    /// The scratch (or staging) place it was restored into.
    pub scratch: Scratch,
}

/// The kinds' built-in checks on each restore, then the plan's SQL checks
/// of the resources in `chosen` (a check of a chosen resource that was
/// not restored fails; one of a resource not chosen is not run).
pub async fn run_checks(
    plan: &Plan,
    place: &Place<'_>,
    restored: &[RestoredResource<'_>],
    chosen: &[&str],
) -> Vec<NewCheck> {
    let mut checks = Vec::new();
    for r in restored {
        for c in resource::check(&r.restored, place, &r.scratch).await {
            checks.push(NewCheck {
                name: c.name.into(),
                resource: r.resource.name.clone(),
                passed: c.verdict.is_ok(),
                detail: c.verdict.unwrap_or_else(|e| e.0),
                ms: c.elapsed.as_millis() as i64,
            });
        }
    }
    // Commands run from the plan file's folder, as its paths are read.
    let plan_dir = plan.dir();
    for check in &plan.drill.checks {
        if !chosen.contains(&check.resource()) {
            continue;
        }
        let t = Instant::now();
        let verdict = match restored
            .iter()
            .find(|r| r.resource.name == check.resource())
        {
            None => Err(format!("not run: `{}` was not restored", check.resource()).into()),
            Some(r) => match check {
                DrillCheck::Sql(c) => resource::sql_check(&r.restored, c).await,
                DrillCheck::Command(c) => {
                    let env = command_check::environment(&plan.name, &r.resource.name, &r.restored);
                    command_check::run(c, &env, plan_dir).await
                }
            },
        };
        checks.push(NewCheck {
            name: check.name().to_string(),
            resource: check.resource().to_string(),
            passed: verdict.is_ok(),
            detail: verdict.unwrap_or_else(|e| e.0),
            ms: t.elapsed().as_millis() as i64,
        });
    }
    checks
}
