//! One plan's report, as a sequence of the definitions in DESIGN.md:
//! exposure per region, verified exposure, drill statistics, backup counts,
//! flagged points, then compliance over all of them.

use super::compliance::{self, DrillCadence};
use super::daily;
use super::exposure::{self, Exposure, Interval};
use super::{
    secs, BackupSummary, BreachPeriod, DrillRow, DrillSummary, ExposureSummary, FlaggedPoint,
    Incident, PlanInput, PlanReport, RegionExposure,
};
use crate::catalog::{Catalog, CatalogError, DrillRecord};
use crate::plan::Plan;
use crate::time::{rfc3339, to_datetime, Millis};

/// The span a plan's report covers: `[from, to)`, and since when the plan
/// has been protected (its first backup attempt), if ever.
#[derive(Debug, Clone, Copy)]
struct Window {
    protection_start: Option<Millis>,
    from: Millis,
    to: Millis,
    /// When the report is built: the days over by then can be kept.
    now: Millis,
}

/// One plan's report over `[from, to)` (catalog ms), compliance judged;
/// `with_charts` also keeps each region's exposure polyline.
pub(super) async fn plan_report(
    cat: &Catalog,
    input: &PlanInput<'_>,
    from: Millis,
    to: Millis,
    now: Millis,
    with_charts: bool,
) -> Result<PlanReport, CatalogError> {
    let plan = input.plan;
    let window = Window {
        protection_start: cat.first_run_start(&plan.name).await?,
        from,
        to,
        now,
    };
    let regions = exposure_per_region(cat, plan, window, with_charts).await?;
    let verified = verified_exposure(cat, plan, window).await?;
    let (drills, cadence) = drill_stats(cat, plan, window).await?;
    let backups = backup_counts(cat, plan, window).await?;
    let flagged_points = flagged_points(cat, plan, window).await?;
    let restores = restores(cat, plan, window).await?;
    let mut report = PlanReport {
        name: plan.name.clone(),
        owner: plan.owner.clone(),
        rto_objective_seconds: secs(rto_ms(plan)),
        rpo_objective_seconds: secs(rpo_ms(plan)),
        compliant: false,
        problems: Vec::new(),
        regions,
        verified,
        drills,
        backups,
        flagged_points,
        evidence: input.evidence.clone(),
        restores,
    };
    let verdict = compliance::judge(&report, &cadence);
    report.compliant = verdict.compliant;
    report.problems = verdict.problems;
    Ok(report)
}

/// Stores the exposure of every UTC day of `plan` that ended in the last
/// `days` days and is not kept yet, in each region that holds points: what
/// a report over those days would otherwise walk first. The daemon calls
/// it after each midnight, so no report pays that walk.
pub async fn keep_days(
    cat: &Catalog,
    plan: &Plan,
    days: i64,
    now: Millis,
) -> Result<(), CatalogError> {
    let Some(protection_start) = cat.first_run_start(&plan.name).await? else {
        return Ok(());
    };
    let resources: Vec<&str> = plan.resources.iter().map(|r| r.name.as_str()).collect();
    for region in plan.point_regions() {
        let ask = daily::Ask {
            plan: &plan.name,
            region,
            resources: &resources,
            protection_start,
            rpo_ms: rpo_ms(plan),
            from: now - days * 86_400_000,
            // Up to now, so the window's whole days run to yesterday's end.
            to: now,
            now,
        };
        daily::region_exposure(cat, &ask).await?;
    }
    Ok(())
}

fn rto_ms(plan: &Plan) -> i64 {
    plan.rto.as_millis() as i64
}

fn rpo_ms(plan: &Plan) -> i64 {
    plan.rpo.as_millis() as i64
}

fn summarize(e: Option<&Exposure>) -> ExposureSummary {
    match e {
        Some(e) => ExposureSummary {
            newest_data_time: e.newest_data_time.map(rfc3339),
            worst_exposure_seconds: Some(secs(e.worst_ms)),
            within_rpo_ratio: Some(e.within_ratio),
        },
        None => ExposureSummary::default(),
    }
}

/// RPO exposure of the plan in each region that holds points.
async fn exposure_per_region(
    cat: &Catalog,
    plan: &Plan,
    window: Window,
    with_charts: bool,
) -> Result<Vec<RegionExposure>, CatalogError> {
    let mut regions = Vec::new();
    for region in plan.point_regions() {
        regions.push(region_exposure(cat, plan, region, window, with_charts).await?);
    }
    Ok(regions)
}

/// A region's exposure: for a chart, one ordered pass over the points of
/// `region` that can matter, streamed from the catalog, which also draws
/// the line; otherwise from the days the catalog keeps ([`daily`]).
async fn region_exposure(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
    w: Window,
    with_charts: bool,
) -> Result<RegionExposure, CatalogError> {
    let resources: Vec<&str> = plan.resources.iter().map(|r| r.name.as_str()).collect();
    let (e, timeline) = match w.protection_start {
        None => (None, Vec::new()),
        Some(start) => {
            let ask = daily::Ask {
                plan: &plan.name,
                region,
                resources: &resources,
                protection_start: start,
                rpo_ms: rpo_ms(plan),
                from: w.from,
                to: w.to,
                now: w.now,
            };
            let walk = with_charts
                .then(|| {
                    exposure::region_walk(resources.len(), start, w.from, w.to, ask.rpo_ms, true)
                })
                .flatten();
            match walk {
                Some(mut walk) => {
                    daily::feed(cat, &ask, w.from, w.to, &mut walk).await?;
                    let (e, timeline) = exposure::finish_region(walk);
                    (Some(e), timeline)
                }
                None => (daily::region_exposure(cat, &ask).await?, Vec::new()),
            }
        }
    };
    let breaches = e.iter().flat_map(|e| &e.breaches).map(|b| BreachPeriod {
        start: rfc3339(b.start),
        end: rfc3339(b.end),
        duration_seconds: secs(b.end - b.start),
        worst_exposure_seconds: secs(b.worst_ms),
    });
    Ok(RegionExposure {
        region: region.to_string(),
        exposure: summarize(e.as_ref()),
        breaches: breaches.collect(),
        timeline,
    })
}

/// Exposure counting only the points a passing drill restored, each usable
/// from when it was first verified.
async fn verified_exposure(
    cat: &Catalog,
    plan: &Plan,
    w: Window,
) -> Result<ExposureSummary, CatalogError> {
    let resource_index = |name: &str| plan.resources.iter().position(|r| r.name == name);
    let intervals: Vec<Interval> = cat
        .verified_points(&plan.name)
        .await?
        .into_iter()
        .filter_map(
            |(resource, data_time, completed_at, deleted_at, verified_at)| {
                Some(Interval {
                    resource: resource_index(&resource)?,
                    data_time,
                    valid_from: verified_at.max(completed_at),
                    valid_to: deleted_at,
                })
            },
        )
        .collect();
    let e = w.protection_start.and_then(|start| {
        let n = plan.resources.len();
        exposure::compute(n, &intervals, start, w.from, w.to, rpo_ms(plan))
    });
    Ok(summarize(e.as_ref()))
}

/// Nearest-rank percentile of sorted values (p in 0..=100): the smallest
/// value with at least p% of the values at or below it, so it is always a
/// measured value, never an interpolation.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The finished drills of the window: counts, RTO percentiles, the worst
/// RPO, the last drill in full, and how long since one last passed (which
/// may be before the window).
async fn drill_stats(
    cat: &Catalog,
    plan: &Plan,
    w: Window,
) -> Result<(DrillSummary, DrillCadence), CatalogError> {
    let drills = cat.drills_between(Some(&plan.name), w.from, w.to).await?;
    let finished: Vec<&DrillRecord> = drills.iter().filter(|d| !d.is_running()).collect();
    let mut rtos: Vec<i64> = finished.iter().filter_map(|d| d.rto_ms).collect();
    rtos.sort_unstable();
    let last = match finished.last() {
        Some(d) => Some(cat.drill_view(d).await?),
        None => None,
    };
    let passed = finished.iter().filter(|d| d.passed()).count();
    let last_pass = cat.last_passed_drill(&plan.name, w.to).await?;
    let interval_ms = drill_interval_ms(plan, w.from);
    let cadence = DrillCadence {
        // Jitter moves each start up to `jitter` after its slot, so two
        // on-time drills can be that much further apart than their slots.
        allowed_gap_ms: interval_ms.map(|interval| {
            let jitter = plan.drill.timing.as_ref().map(|t| t.jitter);
            interval + jitter.map_or(0, |j| j.as_millis() as i64)
        }),
        since_last_pass_ms: last_pass.as_ref().map(|d| w.to - d.started_at),
    };
    let summary = DrillSummary {
        count: finished.len(),
        passed,
        last,
        rto_p50_seconds: percentile(&rtos, 50).map(secs),
        rto_p95_seconds: percentile(&rtos, 95).map(secs),
        rto_max_seconds: rtos.last().map(|v| secs(*v)),
        rpo_max_seconds: finished.iter().filter_map(|d| d.rpo_ms).max().map(secs),
        pass_rate: (!finished.is_empty()).then(|| passed as f64 / finished.len() as f64),
        last_passed_at: last_pass.as_ref().map(|d| rfc3339(d.started_at)),
        since_last_pass_seconds: cadence.since_last_pass_ms.map(secs),
        interval_seconds: interval_ms.map(secs),
        history: drill_history(cat, &finished).await?,
    };
    Ok((summary, cadence))
}

/// The longest gap between two slots of the plan's drill schedule, from the
/// window's start: a passing drill must be no older than that.
fn drill_interval_ms(plan: &Plan, from: Millis) -> Option<i64> {
    let timing = plan.drill.timing.as_ref()?;
    let (_, max) = timing.cron.gap_bounds(to_datetime(from), timing.timezone)?;
    Some(max.as_millis() as i64)
}

/// One row per finished drill; only a failed drill's checks are read, to
/// say what broke.
async fn drill_history(
    cat: &Catalog,
    finished: &[&DrillRecord],
) -> Result<Vec<DrillRow>, CatalogError> {
    let mut history = Vec::with_capacity(finished.len());
    for d in finished {
        let failed_checks = if d.passed() {
            Vec::new()
        } else {
            let mut checks = cat.drill_checks(d.id).await?;
            checks.retain(|c| !c.passed);
            checks
        };
        history.push(DrillRow {
            id: d.id,
            region: d.region.clone(),
            started_at: rfc3339(d.started_at),
            finished_at: d.finished_at.map(rfc3339),
            passed: d.passed(),
            met_objectives: d.met_objectives(),
            rto_seconds: d.rto_ms.map(secs),
            rpo_seconds: d.rpo_ms.map(secs),
            error: d.error.clone(),
            failed_checks,
            started_ms: d.started_at,
        });
    }
    Ok(history)
}

/// Backup runs of the window, and the incidents among them and the
/// daemon's slots, oldest first.
async fn backup_counts(
    cat: &Catalog,
    plan: &Plan,
    w: Window,
) -> Result<BackupSummary, CatalogError> {
    let (name, from, to) = (plan.name.as_str(), w.from, w.to);
    let bad_runs = cat.troubled_runs_between(name, from, to).await?;
    let mut incidents: Vec<(Millis, Incident)> = bad_runs
        .iter()
        .map(|r| {
            let incident = Incident {
                source: "run",
                id: r.id,
                kind: "backup".into(),
                status: r.status.as_str().to_string(),
                at: rfc3339(r.started_at),
                reason: r.error.clone(),
            };
            (r.started_at, incident)
        })
        .collect();
    for j in cat.troubled_jobs_between(name, from, to).await? {
        // A failed backup job's run is already listed with its own reason.
        if j.run_id
            .is_some_and(|id| bad_runs.iter().any(|r| r.id == id))
        {
            continue;
        }
        let incident = Incident {
            source: "job",
            id: j.id,
            kind: j.kind.as_str().into(),
            status: j.status.as_str().into(),
            at: rfc3339(j.scheduled_start),
            reason: j.error.clone(),
        };
        incidents.push((j.scheduled_start, incident));
    }
    incidents.sort_by_key(|(t, i)| (*t, i.id));
    Ok(BackupSummary {
        runs: cat.count_runs_between(name, from, to).await? as usize,
        failed: bad_runs.len(),
        missed: cat
            .missed_between(name, crate::catalog::JobKind::Backup, from, to)
            .await? as usize,
        incidents: incidents.into_iter().map(|(_, i)| i).collect(),
    })
}

/// Complete points of the window carrying a flag (e.g. `shrunk`).
async fn flagged_points(
    cat: &Catalog,
    plan: &Plan,
    w: Window,
) -> Result<Vec<FlaggedPoint>, CatalogError> {
    let points = cat.flagged_points(&plan.name, w.from, w.to).await?;
    Ok(points
        .iter()
        .map(|p| FlaggedPoint {
            id: p.id,
            resource: p.resource.clone(),
            region: p.region.clone(),
            flags: p.flag_list().iter().map(|s| s.to_string()).collect(),
            data_time: p.data_time.map(rfc3339),
        })
        .collect())
}

/// Restores of the window, each with what it put where.
async fn restores(
    cat: &Catalog,
    plan: &Plan,
    w: Window,
) -> Result<Vec<super::RestoreSummary>, CatalogError> {
    let mut out = Vec::new();
    for r in cat.restores_between(&plan.name, w.from, w.to).await? {
        let resources = cat
            .restore_points(r.id)
            .await?
            .into_iter()
            .map(|p| {
                format!(
                    "{}: point {} (data {}) → {}",
                    p.resource,
                    p.point_id.map_or_else(|| "—".into(), |i| i.to_string()),
                    p.data_time.map_or_else(|| "—".into(), rfc3339),
                    p.target
                )
            })
            .collect();
        out.push(super::RestoreSummary {
            id: r.id,
            started_at: rfc3339(r.started_at),
            by_whom: r.by_whom.clone(),
            region: r.region.clone(),
            moment: r.moment.clone(),
            status: match r.status {
                crate::catalog::RestoreStatus::Running => "running",
                crate::catalog::RestoreStatus::Succeeded => "succeeded",
                crate::catalog::RestoreStatus::Failed => "failed",
            }
            .into(),
            duration_seconds: r.duration_ms().map(secs),
            resources,
            error: r.error.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&v, 100), Some(20));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }
}
