//! `status`: per plan and region, how old the newest point is against the
//! RPO, and how the last drill went.

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::plan::Plan;
use crate::time::{rfc3339, Millis};

#[derive(Debug, Serialize)]
pub struct PlanStatus {
    pub plan: String,
    pub rpo_objective_seconds: f64,
    pub rto_objective_seconds: f64,
    pub regions: Vec<RegionStatus>,
    pub last_drill: Option<LastDrill>,
}

#[derive(Debug, Serialize)]
pub struct RegionStatus {
    pub region: String,
    /// Newest data time of the worst resource (all resources need a point).
    pub newest_data_time: Option<String>,
    pub age_seconds: Option<f64>,
    pub within_rpo: bool,
    /// Resources with no complete point in this region.
    pub missing: Vec<String>,
    /// Flags of the newest points (e.g. `shrunk`), as `resource: flag`.
    pub flags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LastDrill {
    pub id: i64,
    pub started_at: String,
    pub passed: bool,
    pub met_objectives: bool,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
}

pub async fn build(
    cat: &Catalog,
    plans: &[Plan],
    now: Millis,
) -> Result<Vec<PlanStatus>, CatalogError> {
    let mut out = Vec::new();
    for plan in plans {
        let rpo_s = plan.rpo.as_secs_f64();
        let mut regions = Vec::new();
        for region in plan.point_regions() {
            let mut oldest_newest: Option<Millis> = None;
            let mut missing = Vec::new();
            let mut flags = Vec::new();
            for res in &plan.resources {
                let newest = cat
                    .newest_complete_point(&plan.name, &res.name, region)
                    .await?;
                match newest {
                    Some(p) => {
                        let dt = p.data_time.unwrap_or(p.started_at);
                        oldest_newest = Some(oldest_newest.map_or(dt, |o| o.min(dt)));
                        for f in p.flag_list() {
                            flags.push(format!("{}: {f}", res.name));
                        }
                    }
                    None => missing.push(res.name.clone()),
                }
            }
            let newest = if missing.is_empty() {
                oldest_newest
            } else {
                None
            };
            let age = newest.map(|t| (now - t) as f64 / 1000.0);
            regions.push(RegionStatus {
                region: region.to_string(),
                newest_data_time: newest.map(rfc3339),
                age_seconds: age,
                within_rpo: age.is_some_and(|a| a <= rpo_s),
                missing,
                flags,
            });
        }
        let last_drill = cat.last_drill(&plan.name).await?.map(|d| LastDrill {
            id: d.id,
            started_at: rfc3339(d.started_at),
            passed: d.passed(),
            met_objectives: d.met_objectives(),
            rto_seconds: d.rto_ms.map(|v| v as f64 / 1000.0),
            rpo_seconds: d.rpo_ms.map(|v| v as f64 / 1000.0),
        });
        out.push(PlanStatus {
            plan: plan.name.clone(),
            rpo_objective_seconds: rpo_s,
            rto_objective_seconds: plan.rto.as_secs_f64(),
            regions,
            last_drill,
        });
    }
    Ok(out)
}
