//! Drills, the points they restored and the checks they ran.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DrillRecord {
    pub id: i64,
    pub plan: String,
    pub region: String,
    pub trigger: String,
    pub status: String,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    pub rto_ms: Option<i64>,
    pub rpo_ms: Option<i64>,
    pub rto_objective_ms: i64,
    pub rpo_objective_ms: i64,
    pub choose_ms: Option<i64>,
    pub restore_ms: Option<i64>,
    pub checks_ms: Option<i64>,
    pub cleanup_ms: Option<i64>,
    pub kept_path: Option<String>,
    pub error: Option<String>,
}

impl DrillRecord {
    pub fn passed(&self) -> bool {
        self.status == "passed"
    }
    pub fn met_rto(&self) -> bool {
        self.passed() && self.rto_ms.is_some_and(|r| r <= self.rto_objective_ms)
    }
    pub fn met_rpo(&self) -> bool {
        self.passed() && self.rpo_ms.is_some_and(|r| r <= self.rpo_objective_ms)
    }
    /// All checks passed and both objectives were met.
    pub fn met_objectives(&self) -> bool {
        self.met_rto() && self.met_rpo()
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct CheckRecord {
    pub name: String,
    pub resource: String,
    #[serde(serialize_with = "as_bool")]
    pub passed: i64,
    pub detail: String,
    #[serde(rename = "seconds", serialize_with = "ms_as_seconds")]
    pub ms: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

fn ms_as_seconds<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*v as f64 / 1000.0)
}

/// A check's outcome, as a drill records it.
#[derive(Debug, Clone)]
pub struct NewCheck {
    pub name: String,
    pub resource: String,
    pub passed: bool,
    pub detail: String,
    pub ms: i64,
}

/// Everything a finished drill records.
#[derive(Debug, Clone, Default)]
pub struct DrillOutcome {
    pub status: &'static str,
    pub finished_at: Millis,
    pub rto_ms: Option<i64>,
    pub rpo_ms: Option<i64>,
    pub choose_ms: i64,
    pub restore_ms: i64,
    pub checks_ms: i64,
    pub cleanup_ms: i64,
    pub kept_path: Option<String>,
    pub error: Option<String>,
}

impl Catalog {
    pub async fn start_drill(
        &self,
        plan: &str,
        region: &str,
        trigger: &str,
        started_at: Millis,
        rto_objective_ms: i64,
        rpo_objective_ms: i64,
    ) -> Result<i64, CatalogError> {
        Ok(sqlx::query(
            "INSERT INTO drills (plan, region, trigger, status, started_at, rto_objective_ms, rpo_objective_ms)
             VALUES (?, ?, ?, 'running', ?, ?, ?)",
        )
        .bind(plan)
        .bind(region)
        .bind(trigger)
        .bind(started_at)
        .bind(rto_objective_ms)
        .bind(rpo_objective_ms)
        .execute(&self.pool)
        .await?
        .last_insert_rowid())
    }

    pub async fn add_drill_point(&self, drill: i64, point: i64) -> Result<(), CatalogError> {
        sqlx::query("INSERT OR IGNORE INTO drill_points (drill_id, point_id) VALUES (?, ?)")
            .bind(drill)
            .bind(point)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn add_check(&self, drill: i64, c: &NewCheck) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO drill_checks (drill_id, name, resource, passed, detail, ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(drill)
        .bind(&c.name)
        .bind(&c.resource)
        .bind(c.passed)
        .bind(&c.detail)
        .bind(c.ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_drill(&self, id: i64, o: &DrillOutcome) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE drills SET status = ?, finished_at = ?, rto_ms = ?, rpo_ms = ?, choose_ms = ?, restore_ms = ?,
                checks_ms = ?, cleanup_ms = ?, kept_path = ?, error = ? WHERE id = ?",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a plan's `running` drills failed; called while holding the
    /// plan's drill lock, so they belong to a process that died.
    pub async fn fail_interrupted_drills(
        &self,
        plan: &str,
        now: Millis,
    ) -> Result<Vec<i64>, CatalogError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM drills WHERE plan = ? AND status = 'running'")
                .bind(plan)
                .fetch_all(&self.pool)
                .await?;
        sqlx::query(
            "UPDATE drills SET status = 'failed', finished_at = ?, error = 'interrupted: the process running this drill stopped before it finished'
             WHERE plan = ? AND status = 'running'",
        )
        .bind(now)
        .bind(plan)
        .execute(&self.pool)
        .await?;
        Ok(ids)
    }

    pub async fn drill(&self, id: i64) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(
            sqlx::query_as::<_, DrillRecord>("SELECT * FROM drills WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Drills of a plan (or all), started in `[from, to)`, oldest first.
    pub async fn drills_between(
        &self,
        plan: Option<&str>,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<DrillRecord>, CatalogError> {
        Ok(sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE (?1 IS NULL OR plan = ?1) AND started_at >= ?2 AND started_at < ?3
             ORDER BY started_at, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The newest passing drill of `plan` started before `before`.
    pub async fn last_passed_drill(
        &self,
        plan: &str,
        before: Millis,
    ) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE plan = ? AND started_at < ? AND status = 'passed'
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(plan)
        .bind(before)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn last_drill(&self, plan: &str) -> Result<Option<DrillRecord>, CatalogError> {
        Ok(sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE plan = ? AND status != 'running' ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(plan)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn drill_checks(&self, drill: i64) -> Result<Vec<CheckRecord>, CatalogError> {
        Ok(sqlx::query_as::<_, CheckRecord>(
            "SELECT name, resource, passed, detail, ms FROM drill_checks WHERE drill_id = ? ORDER BY id",
        )
        .bind(drill)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn drill_point_ids(&self, drill: i64) -> Result<Vec<i64>, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT point_id FROM drill_points WHERE drill_id = ? ORDER BY point_id",
        )
        .bind(drill)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every point of a plan that a passing drill restored, with when it
    /// was first verified (the earliest passing drill's end): `(resource,
    /// data_time, completed_at, deleted_at, verified_at)`.
    pub async fn verified_points(
        &self,
        plan: &str,
    ) -> Result<Vec<(String, Millis, Millis, Option<Millis>, Millis)>, CatalogError> {
        Ok(sqlx::query_as(
            "SELECT p.resource, p.data_time, p.completed_at, p.deleted_at, MIN(d.finished_at)
             FROM drills d JOIN drill_points dp ON dp.drill_id = d.id JOIN points p ON p.id = dp.point_id
             WHERE d.plan = ? AND d.status = 'passed' AND d.finished_at IS NOT NULL
               AND p.data_time IS NOT NULL AND p.completed_at IS NOT NULL
             GROUP BY dp.point_id",
        )
        .bind(plan)
        .fetch_all(&self.pool)
        .await?)
    }
}
