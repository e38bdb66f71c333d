//! What stakeholders read: per plan, whether the objectives are met, from
//! the catalog's measured numbers (exposure per region, verified exposure,
//! drill history, backup runs). Built as data first ([`Report`]), then
//! rendered as JSON, Markdown, HTML or CSV.
//!
//! The report reads only the catalog: the drill evidence chain, which lives
//! in a vault, is verified by the caller ([`crate::evidence::verify`]) and
//! handed in with each plan ([`PlanInput`]).

mod chart;
mod compliance;
mod csv;
pub mod daily;
pub mod exposure;
pub mod fleet;
mod html;
mod markdown;
mod plan;
pub mod status;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError, CheckRecord, DrillView};
use crate::evidence::ChainStatus;
use crate::plan::Plan;
use crate::time::{rfc3339, Millis};

pub use self::csv::render_csv;
pub use html::render_html;
pub use markdown::render_markdown;
pub use plan::keep_days;

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The whole report: every plan over one window.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the report was built (the `now` given to [`build`]), RFC 3339.
    pub generated_at: String,
    /// The window is `[from, to)`; both RFC 3339.
    pub from: String,
    /// The window's end, excluded.
    pub to: String,
    /// One entry per plan, in the order given to [`build`].
    pub plans: Vec<PlanReport>,
}

/// One plan's numbers and verdict.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    /// The plan's name.
    pub name: String,
    /// The plan's `owner`: who answers for it.
    pub owner: String,
    /// The plan's RTO objective as it is now, in seconds.
    pub rto_objective_seconds: f64,
    /// The plan's RPO objective as it is now, in seconds.
    pub rpo_objective_seconds: f64,
    /// Exposure within the RPO in every region, the last drill meeting
    /// both objectives, a passing drill within the drill interval and an
    /// intact evidence chain.
    pub compliant: bool,
    /// Why the plan is not compliant, and what else needs a look, in words.
    pub problems: Vec<String>,
    /// Exposure in each region that holds points: the primary, then
    /// `copy_to` in order.
    pub regions: Vec<RegionExposure>,
    /// Exposure counting only the points a passing drill restored, each
    /// from when it was first verified, whatever its region.
    pub verified: ExposureSummary,
    /// The drills started in the window.
    pub drills: DrillSummary,
    /// Backup runs started in the window, and troubled daemon slots.
    pub backups: BackupSummary,
    /// Complete points carrying a flag (e.g. `shrunk`) in the window.
    pub flagged_points: Vec<FlaggedPoint>,
    /// The drill evidence chain in the drill region's vault, verified.
    pub evidence: Option<ChainStatus>,
    /// Restores (`lifeboat restore`) started in the window, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<RestoreSummary>,
}

/// A restore an operator ran in the window.
#[derive(Debug, Serialize)]
pub struct RestoreSummary {
    /// The restore's id (`restores list`).
    pub id: i64,
    /// When it started, RFC 3339.
    pub started_at: String,
    /// `user@host`.
    pub by_whom: String,
    /// The region restored from.
    pub region: String,
    /// What was asked: `latest`, `at …`, `point N`.
    pub moment: String,
    /// `succeeded`, `failed` or `running`.
    pub status: String,
    /// How long it took, once finished.
    pub duration_seconds: Option<f64>,
    /// `resource: point N (data T) → target`, per resource.
    pub resources: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// RPO exposure in one region over the window.
#[derive(Debug, Serialize)]
pub struct RegionExposure {
    /// The region's name.
    pub region: String,
    /// Flattened into the region's JSON object.
    #[serde(flatten)]
    pub exposure: ExposureSummary,
    /// Periods in the window during which the exposure exceeded the RPO.
    pub breaches: Vec<BreachPeriod>,
    /// The exposure polyline `(t, exposure_ms)` for charts (only computed
    /// for them); too bulky for JSON.
    #[serde(skip)]
    pub timeline: Vec<(Millis, i64)>,
}

/// A period during which a region's exposure exceeded the RPO.
#[derive(Debug, Clone, Serialize)]
pub struct BreachPeriod {
    /// The period is `[start, end)`, both RFC 3339.
    pub start: String,
    /// When a newer point brought the exposure back within the RPO, or the
    /// window's end.
    pub end: String,
    /// `end − start`, in seconds.
    pub duration_seconds: f64,
    /// The worst exposure reached during the period.
    pub worst_exposure_seconds: f64,
}

/// One finished drill of the window, for the history chart and CSV.
#[derive(Debug, Clone, Serialize)]
pub struct DrillRow {
    /// The drill's catalog id.
    pub id: i64,
    /// The region restored from.
    pub region: String,
    /// Drill start, RFC 3339.
    pub started_at: String,
    /// When its outcome was recorded, RFC 3339.
    pub finished_at: Option<String>,
    /// Every restore and check passed.
    pub passed: bool,
    /// Passed, with RTO and RPO within the objectives recorded when it ran.
    pub met_objectives: bool,
    /// Measured RTO in seconds; `None` when the drill failed.
    pub rto_seconds: Option<f64>,
    /// Measured RPO in seconds; `None` when a resource had no point or the
    /// drill stopped with an error.
    pub rpo_seconds: Option<f64>,
    /// Why it failed, or why a passing drill's clean-up failed.
    pub error: Option<String>,
    /// The checks that failed, so a failed drill says what broke.
    pub failed_checks: Vec<CheckRecord>,
    /// `started_at` in catalog milliseconds, for the charts; not in JSON.
    #[serde(skip)]
    pub started_ms: Millis,
}

/// A backup run that failed or was partial, or a job (backup, drill or
/// prune slot) that was missed or failed, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// `run` (a backup_runs row) or `job` (a daemon slot).
    pub source: &'static str,
    /// The `backup_runs` or `jobs` row id, as `source` says.
    pub id: i64,
    /// backup | drill | prune
    pub kind: String,
    /// A run's `failed` or `partial`; a job's `missed` or `failed`.
    pub status: String,
    /// The run's start, or the job's scheduled start.
    pub at: String,
    /// Why, as recorded; `None` when nothing was.
    pub reason: Option<String>,
}

/// The exposure numbers of a region, or of the verified points; all
/// `None` when the window ends before protection started.
#[derive(Debug, Serialize, Default)]
pub struct ExposureSummary {
    /// The newest data time usable at the window's end (worst resource).
    pub newest_data_time: Option<String>,
    /// The worst exposure reached in the window.
    pub worst_exposure_seconds: Option<f64>,
    /// The share of the window the exposure stayed within the RPO.
    pub within_rpo_ratio: Option<f64>,
}

/// The drills of the window.
#[derive(Debug, Serialize)]
pub struct DrillSummary {
    /// Finished drills started in the window.
    pub count: usize,
    /// Of those, the ones that passed.
    pub passed: usize,
    /// The newest finished drill of the window.
    pub last: Option<DrillView>,
    /// Nearest-rank percentiles of the measured RTOs: always a measured value.
    pub rto_p50_seconds: Option<f64>,
    /// The 95th percentile, nearest rank, of the measured RTOs.
    pub rto_p95_seconds: Option<f64>,
    /// The longest measured RTO.
    pub rto_max_seconds: Option<f64>,
    /// The worst RPO any finished drill of the window measured, failed
    /// drills included.
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
    /// Every finished drill of the window, oldest first.
    pub history: Vec<DrillRow>,
}

/// The backup runs and slots of the window.
#[derive(Debug, Serialize)]
pub struct BackupSummary {
    /// Backup runs started in the window.
    pub runs: usize,
    /// Of those, the failed or partial ones.
    pub failed: usize,
    /// Backup slots recorded as missed.
    pub missed: usize,
    /// Failed or partial runs and missed or failed slots, oldest first.
    pub incidents: Vec<Incident>,
}

/// A complete point of the window carrying a flag.
#[derive(Debug, Serialize)]
pub struct FlaggedPoint {
    /// The point's id.
    pub id: i64,
    /// The resource it holds.
    pub resource: String,
    /// The region it is in.
    pub region: String,
    /// Its flags, as stored (e.g. `shrunk`).
    pub flags: Vec<String>,
    /// The point's `data_time`, RFC 3339; `None` if none was recorded.
    pub data_time: Option<String>,
}

/// One plan to report on.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The validated plan.
    pub plan: &'a Plan,
    /// Its drill evidence chain as [`crate::evidence::verify`] found it;
    /// `None` when the drill region has no vault to read it from.
    pub evidence: Option<ChainStatus>,
}

/// Builds the report over `[from, to)` for `plans`, in catalog
/// milliseconds; `now` only stamps `generated_at`. `with_charts` also
/// computes each region's exposure timeline (for the HTML charts).
pub async fn build(
    cat: &Catalog,
    plans: &[PlanInput<'_>],
    from: Millis,
    to: Millis,
    now: Millis,
    with_charts: bool,
) -> Result<Report, CatalogError> {
    // One plan at a time: on two cores, plans built at once only contend
    // (bench/report_scale.sh measured it); SQLite already reads on its own
    // thread while this task walks the points.
    let mut out = Vec::with_capacity(plans.len());
    for input in plans {
        out.push(plan::plan_report(cat, input, from, to, now, with_charts).await?);
    }
    Ok(Report {
        generated_at: rfc3339(now),
        from: rfc3339(from),
        to: rfc3339(to),
        plans: out,
    })
}
