//! Drills, the points they restored and the checks they ran, and the one
//! shape in which a drill leaves the library: [`DrillView`], the record that
//! `drill run --json`, `drills list --json`, the report and the evidence
//! chain all show.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::{serde_ms, Millis};

/// Where a drill stands, stored as its lowercase name in `drills.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum DrillStatus {
    /// Started and not finished; or its process died, until the next drill
    /// of the plan marks it failed.
    Running,
    /// Every restore and check passed.
    Passed,
    /// A restore or a check failed, or the drill was interrupted.
    Failed,
}

impl DrillStatus {
    /// The name stored in the catalog and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Running => "running",
            DrillStatus::Passed => "passed",
            DrillStatus::Failed => "failed",
        }
    }

    /// The status of a finished drill whose checks all passed or not.
    pub fn verdict(passed: bool) -> DrillStatus {
        if passed {
            DrillStatus::Passed
        } else {
            DrillStatus::Failed
        }
    }
}

/// A `drills` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DrillRecord {
    /// Assigned by [`Catalog::start_drill`]; it also names the drill's
    /// scratch folder, scratch resources and evidence record.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The region restored from.
    pub region: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// `running` until [`Catalog::finish_drill`] (or, after a crash,
    /// [`Catalog::fail_interrupted_drills`]) settles it.
    pub status: DrillStatus,
    /// RTO and RPO are measured from this instant.
    pub started_at: Millis,
    /// When the outcome was recorded, after the clean-up; for an
    /// interrupted drill, when it was found and marked failed. `None`
    /// while running.
    pub finished_at: Option<Millis>,
    /// Time all checks passed − start; `None` when the drill failed.
    pub rto_ms: Option<i64>,
    /// Start − the oldest `data_time` among the points chosen (the worst
    /// resource). Also recorded when a restore or check failed; `None` when
    /// a resource had no point, or the drill stopped with an error or was
    /// interrupted.
    pub rpo_ms: Option<i64>,
    /// The plan's RTO objective when the drill ran: the drill is judged
    /// against it, whatever the plan says now.
    pub rto_objective_ms: i64,
    /// The plan's RPO objective when the drill ran.
    pub rpo_objective_ms: i64,
    /// How long choosing the points took. `None` while the drill runs or
    /// when it was interrupted; a finished drill records 0 for a phase it
    /// did not complete (one that stopped with an error, or never began).
    pub choose_ms: Option<i64>,
    /// How long restoring and verifying the chosen points took; `None` or
    /// 0 as for `choose_ms`.
    pub restore_ms: Option<i64>,
    /// How long the built-in and SQL checks took; `None` or 0 as for
    /// `choose_ms`.
    pub checks_ms: Option<i64>,
    /// How long removing (or keeping) what was restored took; `None` while
    /// running or when interrupted.
    pub cleanup_ms: Option<i64>,
    /// Where the restored data was kept (`--keep`, or the plan's cleanup);
    /// `None` when it was removed.
    pub kept_path: Option<String>,
    /// Why the drill failed: the error that stopped it, else the first
    /// failing check. On a drill that passed, why its clean-up failed (the
    /// verdict stands). `None` when nothing went wrong.
    pub error: Option<String>,
    /// For a drill recorded again from its evidence record (`catalog
    /// rebuild`): the point ids the record names, as JSON. `None` for the
    /// drills this catalog ran.
    pub recorded_points: Option<String>,
}

impl DrillRecord {
    /// Every restore and check passed.
    pub fn passed(&self) -> bool {
        self.status == DrillStatus::Passed
    }
    /// Started and not finished.
    pub fn is_running(&self) -> bool {
        self.status == DrillStatus::Running
    }
    /// Passed, with an RTO within the objective.
    pub fn met_rto(&self) -> bool {
        self.passed() && self.rto_ms.is_some_and(|r| r <= self.rto_objective_ms)
    }
    /// Passed, with an RPO within the objective.
    pub fn met_rpo(&self) -> bool {
        self.passed() && self.rpo_ms.is_some_and(|r| r <= self.rpo_objective_ms)
    }
    /// All checks passed and both objectives were met.
    pub fn met_objectives(&self) -> bool {
        self.met_rto() && self.met_rpo()
    }
}

/// A `drill_checks` row, serialised as DESIGN.md's check record.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CheckRecord {
    /// `restore`, a built-in check's name, or the plan's check name.
    pub name: String,
    /// The plan resource it checked.
    pub resource: String,
    /// Whether the check held; one failed check fails the drill.
    pub passed: bool,
    /// What was found, or why it failed.
    pub detail: String,
    /// How long it took, in milliseconds (`seconds` in JSON).
    #[serde(rename = "seconds", serialize_with = "ms_as_seconds")]
    pub ms: i64,
}

fn ms_as_seconds<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(secs(*v))
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A drill as users and the evidence chain see it: DESIGN.md's drill
/// record (times RFC 3339 UTC, durations in seconds).
#[derive(Debug, Clone, Serialize)]
pub struct DrillView {
    /// The drill's catalog id.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The region restored from.
    pub region: String,
    /// What started it: `manual` (the command line) or `schedule` (the
    /// daemon).
    pub trigger: String,
    /// `running` only while the drill runs (or until the next drill of the
    /// plan finds its process gone and marks it failed).
    pub status: DrillStatus,
    /// Drill start, from which RTO and RPO are measured.
    #[serde(with = "serde_ms")]
    pub started_at: Millis,
    /// When the outcome was recorded; null while running.
    #[serde(with = "serde_ms::option")]
    pub finished_at: Option<Millis>,
    /// Every restore and check passed.
    pub passed: bool,
    /// Passed with an RTO within the objective.
    pub met_rto: bool,
    /// Passed with an RPO within the objective.
    pub met_rpo: bool,
    /// `None` when the drill failed.
    pub rto_seconds: Option<f64>,
    /// Drill start − the oldest `data_time` chosen; may be set on a failed
    /// drill, `None` when a resource had no point or the drill stopped with
    /// an error.
    pub rpo_seconds: Option<f64>,
    /// The RTO objective the drill was judged against: the plan's when it
    /// ran.
    pub rto_objective_seconds: f64,
    /// The RPO objective the drill was judged against: the plan's when it
    /// ran.
    pub rpo_objective_seconds: f64,
    /// The points the drill restored.
    pub points: Vec<i64>,
    /// Time spent in each phase.
    pub phases: DrillPhases,
    /// Every check, in the order it ran.
    pub checks: Vec<CheckRecord>,
    /// Where the restored data was kept, if it was.
    pub kept_path: Option<String>,
    /// Why the drill failed (the error that stopped it, else the first
    /// failing check); on a drill that passed, why its clean-up failed.
    pub error: Option<String>,
}

/// How long each phase of a drill took, in seconds. `None` while the drill
/// runs or when it was interrupted; a finished drill shows 0 for a phase it
/// did not complete.
#[derive(Debug, Clone, Serialize)]
pub struct DrillPhases {
    /// Choosing a point per resource.
    pub choose_seconds: Option<f64>,
    /// Restoring each chosen point and verifying it against its manifest.
    pub restore_seconds: Option<f64>,
    /// The kinds' built-in checks, then the plan's SQL checks.
    pub checks_seconds: Option<f64>,
    /// Removing (or keeping) what was restored.
    pub cleanup_seconds: Option<f64>,
}

impl DrillView {
    /// The view of drill `d`, which restored `points` and ran `checks`.
    pub fn new(d: &DrillRecord, points: Vec<i64>, checks: Vec<CheckRecord>) -> DrillView {
        DrillView {
            id: d.id,
            plan: d.plan.clone(),
            region: d.region.clone(),
            trigger: d.trigger.clone(),
            status: d.status,
            started_at: d.started_at,
            finished_at: d.finished_at,
            passed: d.passed(),
            met_rto: d.met_rto(),
            met_rpo: d.met_rpo(),
            rto_seconds: d.rto_ms.map(secs),
            rpo_seconds: d.rpo_ms.map(secs),
            rto_objective_seconds: secs(d.rto_objective_ms),
            rpo_objective_seconds: secs(d.rpo_objective_ms),
            points,
            phases: DrillPhases {
                choose_seconds: d.choose_ms.map(secs),
                restore_seconds: d.restore_ms.map(secs),
                checks_seconds: d.checks_ms.map(secs),
                cleanup_seconds: d.cleanup_ms.map(secs),
            },
            checks,
            kept_path: d.kept_path.clone(),
            error: d.error.clone(),
        }
    }

    /// Both objectives met (which implies every check passed).
    pub fn met_objectives(&self) -> bool {
        self.met_rto && self.met_rpo
    }
}

/// A check's outcome, as a drill records it.
#[derive(Debug, Clone)]
pub struct NewCheck {
    /// `restore`, a built-in check's name, or the plan's check name.
    pub name: String,
    /// The plan resource it checked.
    pub resource: String,
    /// Whether the check held; one failed check fails the drill.
    pub passed: bool,
    /// What was found, or why it failed.
    pub detail: String,
    /// How long it took, in milliseconds.
    pub ms: i64,
}

/// Everything a finished drill records.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// `Passed` or `Failed`.
    pub status: DrillStatus,
    /// When the drill ended: after the clean-up.
    pub finished_at: Millis,
    /// Time all checks passed − drill start; `None` unless every check
    /// passed.
    pub rto_ms: Option<i64>,
    /// Drill start − the oldest `data_time` chosen; `None` when a resource
    /// had no point or a phase stopped with an error.
    pub rpo_ms: Option<i64>,
    /// Choosing the points, in milliseconds; 0 if the phase did not complete.
    pub choose_ms: i64,
    /// Restoring and verifying them; 0 if the phase did not complete.
    pub restore_ms: i64,
    /// The checks; 0 if the phase did not complete.
    pub checks_ms: i64,
    /// Removing (or keeping) what was restored.
    pub cleanup_ms: i64,
    /// The scratch folder left in place, if any.
    pub kept_path: Option<String>,
    /// Why the drill failed, or why a passing drill's clean-up failed.
    pub error: Option<String>,
}

impl Catalog {
    /// Records a drill as `running` from `started_at`; returns its id.
    pub async fn start_drill(
        &self,
        plan: &str,
        region: &str,
        trigger: &str,
        started_at: Millis,
        rto_objective_ms: i64,
        rpo_objective_ms: i64,
    ) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "INSERT INTO drills (plan, region, trigger, status, started_at, rto_objective_ms, rpo_objective_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(plan)
        .bind(region)
        .bind(trigger)
        .bind(DrillStatus::Running)
        .bind(started_at)
        .bind(rto_objective_ms)
        .bind(rpo_objective_ms)
        .fetch_one(db)
        .await
        })?)
    }

    /// Records that the drill restores `point`.
    pub async fn add_drill_point(&self, drill: i64, point: i64) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "INSERT INTO drill_points (drill_id, point_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(drill)
        .bind(point)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records one check of the drill.
    pub async fn add_check(&self, drill: i64, c: &NewCheck) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "INSERT INTO drill_checks (drill_id, name, resource, passed, detail, ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(drill)
        .bind(&c.name)
        .bind(&c.resource)
        .bind(c.passed)
        .bind(&c.detail)
        .bind(c.ms)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records how the drill ended.
    pub async fn finish_drill(&self, id: i64, o: &DrillOutcome) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE drills SET status = $1, finished_at = $2, rto_ms = $3, rpo_ms = $4, choose_ms = $5, restore_ms = $6,
                checks_ms = $7, cleanup_ms = $8, kept_path = $9, error = $10 WHERE id = $11",
        )
        .bind(o.status)
        .bind(o.finished_at)
        .bind(o.rto_ms)
        .bind(o.rpo_ms)
        .bind(o.choose_ms)
        .bind(o.restore_ms)
        .bind(o.checks_ms)
        .bind(o.cleanup_ms)
        .bind(&o.kept_path)
        .bind(&o.error)
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Marks a plan's `running` drills failed; called while holding the
    /// plan's drill lock, so they belong to a process that died.
    pub async fn fail_interrupted_drills(
        &self,
        plan: &str,
        now: Millis,
    ) -> Result<Vec<i64>, CatalogError> {
        let ids: Vec<i64> = on_pool!(self, |db| sqlx::query_scalar(
            "SELECT id FROM drills WHERE plan = $1 AND status = $2"
        )
        .bind(plan)
        .bind(DrillStatus::Running)
        .fetch_all(db)
        .await)?;
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE drills SET status = $1, finished_at = $2, error = 'interrupted: the process running this drill stopped before it finished'
             WHERE plan = $3 AND status = $4",
        )
        .bind(DrillStatus::Failed)
        .bind(now)
        .bind(plan)
        .bind(DrillStatus::Running)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(ids)
    }

    /// The drill `id`, if there is one.
    pub async fn drill(&self, id: i64) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(db)
        .await)?)
    }

    /// The full record of drill `d`: its row, its points and its checks.
    /// A drill rebuilt from its evidence record shows the point ids the
    /// record names (the lost catalog's), which `drill_points` links only
    /// in part.
    pub async fn drill_view(&self, d: &DrillRecord) -> Result<DrillView, CatalogError> {
        let recorded = d
            .recorded_points
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok());
        let points = match recorded {
            Some(ids) => ids,
            None => self.drill_point_ids(d.id).await?,
        };
        let checks = self.drill_checks(d.id).await?;
        Ok(DrillView::new(d, points, checks))
    }

    /// Drills of a plan (or all), started in `[from, to)`, oldest first.
    pub async fn drills_between(
        &self,
        plan: Option<&str>,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<DrillRecord>, CatalogError> {
        // Two statements, not `(?1 IS NULL OR plan = ?1)`: that one is
        // planned without knowing the plan, so it scans every drill.
        Ok(on_pool!(self, |db| {
            let query = match plan {
                Some(plan) => sqlx::query_as::<_, DrillRecord>(
                    "SELECT * FROM drills WHERE plan = $1 AND started_at >= $2 AND started_at < $3
                     ORDER BY started_at, id",
                )
                .bind(plan),
                None => sqlx::query_as::<_, DrillRecord>(
                    "SELECT * FROM drills WHERE started_at >= $1 AND started_at < $2
                     ORDER BY started_at, id",
                ),
            };
            query.bind(from).bind(to).fetch_all(db).await
        })?)
    }

    /// The newest passing drill of `plan` started before `before`.
    pub async fn last_passed_drill(
        &self,
        plan: &str,
        before: Millis,
    ) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE plan = $1 AND started_at < $2 AND status = $3
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(plan)
        .bind(before)
        .bind(DrillStatus::Passed)
        .fetch_optional(db)
        .await)?)
    }

    /// The newest finished drill of `plan`.
    pub async fn last_drill(&self, plan: &str) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE plan = $1 AND status != $2 ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(plan)
        .bind(DrillStatus::Running)
        .fetch_optional(db)
        .await
        })?)
    }

    /// The checks of a drill, in the order it ran them.
    pub async fn drill_checks(&self, drill: i64) -> Result<Vec<CheckRecord>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, CheckRecord>(
            "SELECT name, resource, passed, detail, ms FROM drill_checks WHERE drill_id = $1 ORDER BY id",
        )
        .bind(drill)
        .fetch_all(db)
        .await
        })?)
    }

    /// The ids of the points a drill restored, ascending.
    pub async fn drill_point_ids(&self, drill: i64) -> Result<Vec<i64>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT point_id FROM drill_points WHERE drill_id = $1 ORDER BY point_id",
        )
        .bind(drill)
        .fetch_all(db)
        .await)?)
    }

    /// Every point of a plan that a passing drill restored, with when it
    /// was first verified (the earliest passing drill's end): `(resource,
    /// data_time, completed_at, deleted_at, verified_at)`.
    pub async fn verified_points(
        &self,
        plan: &str,
    ) -> Result<Vec<(String, Millis, Millis, Option<Millis>, Millis)>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as(
            "SELECT p.resource, p.data_time, p.completed_at, p.deleted_at, MIN(d.finished_at)
             FROM drills d JOIN drill_points dp ON dp.drill_id = d.id JOIN points p ON p.id = dp.point_id
             WHERE d.plan = $1 AND d.status = $2 AND d.finished_at IS NOT NULL
               AND p.data_time IS NOT NULL AND p.completed_at IS NOT NULL
             GROUP BY p.id",
        )
        .bind(plan)
        .bind(DrillStatus::Passed)
        .fetch_all(db)
        .await
        })?)
    }
}
