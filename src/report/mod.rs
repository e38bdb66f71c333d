//! What stakeholders read: per plan, whether the objectives are met, from
//! the catalog's measured numbers (exposure per region, verified exposure,
//! drill history, backup runs). Built as data first ([`Report`]), then
//! rendered as JSON or Markdown.

mod chart;
mod csv;
pub mod exposure;
mod html;
mod markdown;
pub mod status;

use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{Catalog, CatalogError, DrillRecord};
use crate::plan::Plan;
use crate::time::{human_duration_secs, rfc3339, to_datetime, Millis};

pub use self::csv::render_csv;
pub use html::render_html;
pub use markdown::render_markdown;

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The JSON record of a drill (DESIGN.md's shape).
pub async fn drill_json(cat: &Catalog, d: &DrillRecord) -> Result<Value, CatalogError> {
    let checks = cat.drill_checks(d.id).await?;
    let points = cat.drill_point_ids(d.id).await?;
    Ok(json!({
        "id": d.id,
        "plan": d.plan,
        "region": d.region,
        "trigger": d.trigger,
        "status": d.status,
        "started_at": rfc3339(d.started_at),
        "finished_at": d.finished_at.map(rfc3339),
        "passed": d.passed(),
        "met_rto": d.met_rto(),
        "met_rpo": d.met_rpo(),
        "rto_seconds": d.rto_ms.map(secs),
        "rpo_seconds": d.rpo_ms.map(secs),
        "rto_objective_seconds": secs(d.rto_objective_ms),
        "rpo_objective_seconds": secs(d.rpo_objective_ms),
        "points": points,
        "phases": {
            "choose_seconds": d.choose_ms.map(secs),
            "restore_seconds": d.restore_ms.map(secs),
            "checks_seconds": d.checks_ms.map(secs),
            "cleanup_seconds": d.cleanup_ms.map(secs),
        },
        "checks": checks,
        "kept_path": d.kept_path,
        "error": d.error,
    }))
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub from: String,
    pub to: String,
    pub plans: Vec<PlanReport>,
}

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub name: String,
    pub owner: String,
    pub rto_objective_seconds: f64,
    pub rpo_objective_seconds: f64,
    pub compliant: bool,
    /// Why the plan is not compliant, in words.
    pub problems: Vec<String>,
    pub regions: Vec<RegionExposure>,
    pub verified: ExposureSummary,
    pub drills: DrillSummary,
    pub backups: BackupSummary,
    /// Complete points carrying a flag (e.g. `shrunk`) in the window.
    pub flagged_points: Vec<FlaggedPoint>,
    /// The drill evidence chain in the drill region's vault, verified.
    pub evidence: Option<crate::evidence::ChainStatus>,
}

#[derive(Debug, Serialize)]
pub struct RegionExposure {
    pub region: String,
    #[serde(flatten)]
    pub exposure: ExposureSummary,
    /// Periods in the window during which the exposure exceeded the RPO.
    pub breaches: Vec<BreachPeriod>,
    /// The exposure polyline `(t, exposure_ms)` for charts (only computed
    /// for them); too bulky for JSON.
    #[serde(skip)]
    pub timeline: Vec<(Millis, i64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreachPeriod {
    pub start: String,
    pub end: String,
    pub duration_seconds: f64,
    /// The worst exposure reached during the period.
    pub worst_exposure_seconds: f64,
}

/// One finished drill of the window, for the history chart and CSV.
#[derive(Debug, Clone, Serialize)]
pub struct DrillRow {
    pub id: i64,
    pub region: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub passed: bool,
    pub met_objectives: bool,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    pub error: Option<String>,
    /// The checks that failed, so a failed drill says what broke.
    pub failed_checks: Vec<crate::catalog::CheckRecord>,
    #[serde(skip)]
    pub started_ms: Millis,
}

/// A backup run that failed or was partial, or a job (backup, drill or
/// prune slot) that was missed or failed, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// `run` (a backup_runs row) or `job` (a daemon slot).
    pub source: &'static str,
    pub id: i64,
    /// backup | drill | prune
    pub kind: String,
    pub status: String,
    /// The run's start, or the job's scheduled start.
    pub at: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Default)]
pub struct ExposureSummary {
    pub newest_data_time: Option<String>,
    pub worst_exposure_seconds: Option<f64>,
    pub within_rpo_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct DrillSummary {
    pub count: usize,
    pub passed: usize,
    pub last: Option<Value>,
    pub rto_p50_seconds: Option<f64>,
    pub rto_p95_seconds: Option<f64>,
    pub rto_max_seconds: Option<f64>,
    pub rpo_max_seconds: Option<f64>,
    /// passed / count; `None` without drills.
    pub pass_rate: Option<f64>,
    /// The start of the newest passing drill up to the window's end (it may
    /// be older than the window).
    pub last_passed_at: Option<String>,
    /// Window end − `last_passed_at`.
    pub since_last_pass_seconds: Option<f64>,
    /// The longest gap between two slots of the `[drill]` schedule; `None`
    /// when the plan has no drill schedule.
    pub interval_seconds: Option<f64>,
    pub history: Vec<DrillRow>,
}

#[derive(Debug, Serialize)]
pub struct BackupSummary {
    pub runs: usize,
    pub failed: usize,
    pub missed: usize,
    /// Failed or partial runs and missed or failed slots, oldest first.
    pub incidents: Vec<Incident>,
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

#[derive(Debug, Serialize)]
pub struct FlaggedPoint {
    pub id: i64,
    pub resource: String,
    pub region: String,
    pub flags: Vec<String>,
    pub data_time: Option<String>,
}

/// Builds the report over `[from, to)` for `plans`. `with_charts` also
/// computes each region's exposure timeline (for the HTML charts).
pub async fn build(
    cat: &Catalog,
    plans: &[Plan],
    from: Millis,
    to: Millis,
    now: Millis,
    with_charts: bool,
) -> Result<Report, CatalogError> {
    // One plan at a time: on two cores, plans built at once only contend
    // (bench/report_scale.sh measured it); SQLite already reads on its own
    // thread while this task walks the points.
    let mut out = Vec::new();
    for plan in plans {
        out.push(plan_report(cat, plan, from, to, with_charts).await?);
    }
    Ok(Report {
        generated_at: rfc3339(now),
        from: rfc3339(from),
        to: rfc3339(to),
        plans: out,
    })
}

async fn plan_report(
    cat: &Catalog,
    plan: &Plan,
    from: Millis,
    to: Millis,
    with_charts: bool,
) -> Result<PlanReport, CatalogError> {
    let rpo_ms = plan.rpo.as_millis() as i64;
    let rto_ms = plan.rto.as_millis() as i64;
    let mut problems = Vec::new();
    let protection_start = cat.first_run_start(&plan.name).await?;
    let resource_index = |name: &str| plan.resources.iter().position(|r| r.name == name);
    let summarize = |e: Option<&exposure::Exposure>| match e {
        Some(e) => ExposureSummary {
            newest_data_time: e.newest_data_time.map(rfc3339),
            worst_exposure_seconds: Some(secs(e.worst_ms)),
            within_rpo_ratio: Some(e.within_ratio),
        },
        None => ExposureSummary::default(),
    };

    // Per region, one ordered pass over the points that can matter,
    // streamed from the catalog.
    let region_names = plan.point_regions();
    let resource_names: Vec<&str> = plan.resources.iter().map(|r| r.name.as_str()).collect();
    let mut walks = Vec::with_capacity(region_names.len());
    for region in &region_names {
        let mut walk = protection_start.and_then(|start| {
            exposure::region_walk(plan.resources.len(), start, from, to, rpo_ms, with_charts)
        });
        if let Some(w) = &mut walk {
            cat.for_each_usable_point(&plan.name, region, &resource_names, from, to, |p| {
                w.add(&exposure::Interval {
                    resource: p.resource,
                    data_time: p.data_time,
                    valid_from: p.completed_at,
                    valid_to: p.deleted_at,
                });
            })
            .await?;
        }
        walks.push(walk);
    }

    let mut regions = Vec::new();
    for (region, walk) in region_names.iter().zip(walks) {
        let (e, timeline) = match walk.map(exposure::finish_region) {
            Some((e, timeline)) => (Some(e), timeline),
            None => (None, Vec::new()),
        };
        let breaches = e
            .as_ref()
            .map(|e| {
                e.breaches
                    .iter()
                    .map(|b| BreachPeriod {
                        start: rfc3339(b.start),
                        end: rfc3339(b.end),
                        duration_seconds: secs(b.end - b.start),
                        worst_exposure_seconds: secs(b.worst_ms),
                    })
                    .collect()
            })
            .unwrap_or_default();
        match &e {
            None => problems.push(format!(
                "region {region}: no backup attempted before the end of the window"
            )),
            Some(e) if e.worst_ms > rpo_ms => problems.push(format!(
                "region {region}: RPO exposure reached {} (objective {})",
                crate::time::human_duration_secs(secs(e.worst_ms)),
                crate::time::human_duration_secs(secs(rpo_ms))
            )),
            _ => {}
        }
        regions.push(RegionExposure {
            region: region.to_string(),
            exposure: summarize(e.as_ref()),
            breaches,
            timeline,
        });
    }

    // Verified: only points a passing drill restored, usable from then on.
    let verified_intervals: Vec<exposure::Interval> = cat
        .verified_points(&plan.name)
        .await?
        .into_iter()
        .filter_map(
            |(resource, data_time, completed_at, deleted_at, verified_at)| {
                Some(exposure::Interval {
                    resource: resource_index(&resource)?,
                    data_time,
                    valid_from: verified_at.max(completed_at),
                    valid_to: deleted_at,
                })
            },
        )
        .collect();
    let verified = summarize(
        protection_start
            .and_then(|start| {
                exposure::compute(
                    plan.resources.len(),
                    &verified_intervals,
                    start,
                    from,
                    to,
                    rpo_ms,
                )
            })
            .as_ref(),
    );

    // Drills.
    let drills = cat.drills_between(Some(&plan.name), from, to).await?;
    let finished: Vec<&DrillRecord> = drills.iter().filter(|d| d.status != "running").collect();
    let mut rtos: Vec<i64> = finished.iter().filter_map(|d| d.rto_ms).collect();
    rtos.sort_unstable();
    let last = finished.last();
    let last_json = match last {
        Some(d) => Some(drill_json(cat, d).await?),
        None => None,
    };
    match last {
        None => problems.push("no drill in the window: nothing proves the points restore".into()),
        Some(d) if !d.passed() => problems.push(format!("last drill ({}) failed", d.id)),
        Some(d) if !d.met_objectives() => problems.push(format!(
            "last drill ({}) missed its objectives (RTO {} vs {}, RPO {} vs {})",
            d.id,
            d.rto_ms
                .map(|v| crate::time::human_duration_secs(secs(v)))
                .unwrap_or("-".into()),
            crate::time::human_duration_secs(secs(rto_ms)),
            d.rpo_ms
                .map(|v| crate::time::human_duration_secs(secs(v)))
                .unwrap_or("-".into()),
            crate::time::human_duration_secs(secs(rpo_ms)),
        )),
        _ => {}
    }
    let passed_count = finished.iter().filter(|d| d.passed()).count();
    // The newest passing drill may predate the window: look back from its end.
    let last_pass = cat.last_passed_drill(&plan.name, to).await?;
    let interval_ms = drill_interval_ms(plan, from);
    // Jitter moves each start up to `jitter` after its slot, so two on-time
    // drills can be that much further apart than their slots.
    let allowed_ms = interval_ms.map(|interval| {
        interval
            + plan
                .drill
                .timing
                .as_ref()
                .map_or(0, |t| t.jitter.as_millis() as i64)
    });
    let drill_interval_ok = match (allowed_ms, &last_pass) {
        (None, _) => true,
        (Some(allowed), Some(d)) if to - d.started_at <= allowed => true,
        (Some(allowed), Some(d)) => {
            problems.push(format!(
                "no passing drill within the drill interval ({}): the last one passed {} before the window's end",
                human_duration_secs(secs(allowed)),
                human_duration_secs(secs(to - d.started_at)),
            ));
            false
        }
        (Some(allowed), None) => {
            problems.push(format!(
                "no passing drill ever (drill interval {})",
                human_duration_secs(secs(allowed))
            ));
            false
        }
    };
    let mut history = Vec::with_capacity(finished.len());
    for d in &finished {
        let failed_checks = if d.passed() {
            Vec::new()
        } else {
            let mut checks = cat.drill_checks(d.id).await?;
            checks.retain(|c| c.passed == 0);
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
    let drills_summary = DrillSummary {
        count: finished.len(),
        passed: passed_count,
        last: last_json,
        rto_p50_seconds: percentile(&rtos, 50).map(secs),
        rto_p95_seconds: percentile(&rtos, 95).map(secs),
        rto_max_seconds: rtos.last().map(|v| secs(*v)),
        rpo_max_seconds: finished.iter().filter_map(|d| d.rpo_ms).max().map(secs),
        pass_rate: (!finished.is_empty()).then(|| passed_count as f64 / finished.len() as f64),
        last_passed_at: last_pass.as_ref().map(|d| rfc3339(d.started_at)),
        since_last_pass_seconds: last_pass.as_ref().map(|d| secs(to - d.started_at)),
        interval_seconds: interval_ms.map(secs),
        history,
    };

    let run_count = cat.count_runs_between(&plan.name, from, to).await?;
    let bad_runs = cat.troubled_runs_between(&plan.name, from, to).await?;
    let mut incidents: Vec<(Millis, Incident)> = bad_runs
        .iter()
        .map(|r| {
            (
                r.started_at,
                Incident {
                    source: "run",
                    id: r.id,
                    kind: "backup".into(),
                    status: r.status.clone(),
                    at: rfc3339(r.started_at),
                    reason: r.error.clone(),
                },
            )
        })
        .collect();
    for j in cat.troubled_jobs_between(&plan.name, from, to).await? {
        // A failed backup job's run is already listed with its own reason.
        if j.run_id
            .is_some_and(|id| bad_runs.iter().any(|r| r.id == id))
        {
            continue;
        }
        incidents.push((
            j.scheduled_start,
            Incident {
                source: "job",
                id: j.id,
                kind: j.kind.as_str().into(),
                status: j.status.as_str().into(),
                at: rfc3339(j.scheduled_start),
                reason: j.error.clone(),
            },
        ));
    }
    incidents.sort_by_key(|(t, i)| (*t, i.id));
    let backups = BackupSummary {
        runs: run_count as usize,
        failed: bad_runs.len(),
        missed: cat
            .missed_between(&plan.name, crate::catalog::JobKind::Backup, from, to)
            .await? as usize,
        incidents: incidents.into_iter().map(|(_, i)| i).collect(),
    };
    if backups.failed > 0 {
        problems.push(format!(
            "{} backup run(s) failed or were partial",
            backups.failed
        ));
    }

    let flagged_points: Vec<FlaggedPoint> = cat
        .flagged_points(&plan.name, from, to)
        .await?
        .iter()
        .map(|p| FlaggedPoint {
            id: p.id,
            resource: p.resource.clone(),
            region: p.region.clone(),
            flags: p.flag_list().iter().map(|s| s.to_string()).collect(),
            data_time: p.data_time.map(rfc3339),
        })
        .collect();
    if flagged_points
        .iter()
        .any(|f| f.flags.iter().any(|x| x == "shrunk"))
    {
        problems.push(
            "a point was flagged `shrunk`: far smaller than the one before it; check the source"
                .into(),
        );
    }

    let evidence = crate::evidence::verify(cat, plan).await;
    let evidence_ok = match &evidence {
        Some(chain) if !chain.intact => {
            problems.push(format!(
                "drill evidence chain in {} is broken: {}",
                chain.location,
                chain.problem.as_deref().unwrap_or("unknown")
            ));
            false
        }
        _ => true,
    };

    // Failed runs and flagged points are shown, but compliance is about the
    // objectives: exposure within RPO everywhere and the last drill meeting both.
    let compliant = regions.iter().all(|r| {
        r.exposure
            .worst_exposure_seconds
            .is_some_and(|w| w <= secs(rpo_ms))
    }) && last.is_some_and(|d| d.met_objectives())
        && drill_interval_ok
        && evidence_ok;
    Ok(PlanReport {
        name: plan.name.clone(),
        owner: plan.owner.clone(),
        rto_objective_seconds: secs(rto_ms),
        rpo_objective_seconds: secs(rpo_ms),
        compliant,
        problems,
        regions,
        verified,
        drills: drills_summary,
        backups,
        flagged_points,
        evidence,
    })
}

/// The longest gap between two slots of the plan's drill schedule, from the
/// window's start: a passing drill must be no older than that.
fn drill_interval_ms(plan: &Plan, from: Millis) -> Option<i64> {
    let timing = plan.drill.timing.as_ref()?;
    let (_, max) = timing.cron.gap_bounds(to_datetime(from), timing.timezone)?;
    Some(max.as_millis() as i64)
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
