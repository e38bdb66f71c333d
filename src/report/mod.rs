//! What stakeholders read: per plan, whether the objectives are met, from
//! the catalog's measured numbers (exposure per region, verified exposure,
//! drill history, backup runs). Built as data first ([`Report`]), then
//! rendered as JSON or Markdown.

pub mod exposure;
mod markdown;
pub mod status;

use serde::Serialize;
use serde_json::{json, Value};

use crate::catalog::{Catalog, CatalogError, DrillRecord};
use crate::plan::Plan;
use crate::time::{rfc3339, Millis};

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
}

#[derive(Debug, Serialize)]
pub struct RegionExposure {
    pub region: String,
    #[serde(flatten)]
    pub exposure: ExposureSummary,
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
    pub rto_max_seconds: Option<f64>,
    pub rpo_max_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct BackupSummary {
    pub runs: usize,
    pub failed: usize,
    pub missed: usize,
}

#[derive(Debug, Serialize)]
pub struct FlaggedPoint {
    pub id: i64,
    pub resource: String,
    pub region: String,
    pub flags: Vec<String>,
    pub data_time: Option<String>,
}

/// Builds the report over `[from, to)` for `plans`.
pub async fn build(
    cat: &Catalog,
    plans: &[Plan],
    from: Millis,
    to: Millis,
    now: Millis,
) -> Result<Report, CatalogError> {
    let mut out = Vec::new();
    for plan in plans {
        out.push(plan_report(cat, plan, from, to).await?);
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
) -> Result<PlanReport, CatalogError> {
    let rpo_ms = plan.rpo.as_millis() as i64;
    let rto_ms = plan.rto.as_millis() as i64;
    let mut problems = Vec::new();
    let protection_start = cat.first_run_start(&plan.name).await?;
    let points = cat.ever_complete_points(&plan.name).await?;
    let resource_index = |name: &str| plan.resources.iter().position(|r| r.name == name);
    let summarize = |e: Option<exposure::Exposure>| match e {
        Some(e) => ExposureSummary {
            newest_data_time: e.newest_data_time.map(rfc3339),
            worst_exposure_seconds: Some(secs(e.worst_ms)),
            within_rpo_ratio: Some(e.within_ratio),
        },
        None => ExposureSummary::default(),
    };

    let mut regions = Vec::new();
    for region in plan.point_regions() {
        let intervals: Vec<exposure::Interval> = points
            .iter()
            .filter(|p| p.region == region)
            .filter_map(|p| {
                Some(exposure::Interval {
                    resource: resource_index(&p.resource)?,
                    data_time: p.data_time?,
                    valid_from: p.completed_at?,
                    valid_to: p.deleted_at,
                })
            })
            .collect();
        let e = protection_start.and_then(|start| {
            exposure::compute(plan.resources.len(), &intervals, start, from, to, rpo_ms)
        });
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
            exposure: summarize(e),
        });
    }

    // Verified: only points a passing drill restored, usable from then on.
    let verified_at: std::collections::HashMap<i64, Millis> =
        cat.verified_points(&plan.name).await?.into_iter().collect();
    let verified_intervals: Vec<exposure::Interval> = points
        .iter()
        .filter_map(|p| {
            let at = verified_at.get(&p.id)?;
            Some(exposure::Interval {
                resource: resource_index(&p.resource)?,
                data_time: p.data_time?,
                valid_from: (*at).max(p.completed_at?),
                valid_to: p.deleted_at,
            })
        })
        .collect();
    let verified = summarize(protection_start.and_then(|start| {
        exposure::compute(
            plan.resources.len(),
            &verified_intervals,
            start,
            from,
            to,
            rpo_ms,
        )
    }));

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
    let drills_summary = DrillSummary {
        count: finished.len(),
        passed: finished.iter().filter(|d| d.passed()).count(),
        last: last_json,
        rto_p50_seconds: (!rtos.is_empty()).then(|| secs(rtos[(rtos.len() - 1) / 2])),
        rto_max_seconds: rtos.last().map(|v| secs(*v)),
        rpo_max_seconds: finished.iter().filter_map(|d| d.rpo_ms).max().map(secs),
    };

    let runs = cat.runs_between(Some(&plan.name), from, to).await?;
    let backups = BackupSummary {
        runs: runs.len(),
        failed: runs
            .iter()
            .filter(|r| r.status == "failed" || r.status == "partial")
            .count(),
        missed: cat.missed_between(&plan.name, "backup", from, to).await? as usize,
    };
    if backups.failed > 0 {
        problems.push(format!(
            "{} backup run(s) failed or were partial",
            backups.failed
        ));
    }

    let flagged_points: Vec<FlaggedPoint> = points
        .iter()
        .filter(|p| !p.flags.is_empty() && p.completed_at.is_some_and(|c| c >= from && c < to))
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

    // Failed runs and flagged points are shown, but compliance is about the
    // objectives: exposure within RPO everywhere and the last drill meeting both.
    let compliant = regions.iter().all(|r| {
        r.exposure
            .worst_exposure_seconds
            .is_some_and(|w| w <= secs(rpo_ms))
    }) && last.is_some_and(|d| d.met_objectives());
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
    })
}
