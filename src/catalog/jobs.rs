//! Daemon jobs: one row per (plan, kind, slot), whatever became of it.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::Millis;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub plan: String,
    pub kind: String,
    #[serde(with = "crate::time::serde_ms")]
    pub slot: Millis,
    #[serde(with = "crate::time::serde_ms")]
    pub scheduled_start: Millis,
    pub status: String,
    #[serde(with = "crate::time::serde_ms::option")]
    pub started_at: Option<Millis>,
    #[serde(with = "crate::time::serde_ms::option")]
    pub finished_at: Option<Millis>,
    pub run_id: Option<i64>,
    pub drill_id: Option<i64>,
    pub error: Option<String>,
}

impl Catalog {
    /// Claims a slot: inserts it as running. `None` when the slot already has
    /// a row (it ran, is running, or was recorded missed): never run twice.
    pub async fn claim_job(
        &self,
        plan: &str,
        kind: &str,
        slot: Millis,
        scheduled_start: Millis,
        now: Millis,
    ) -> Result<Option<i64>, CatalogError> {
        let result = sqlx::query(
            "INSERT INTO jobs (plan, kind, slot, scheduled_start, status, started_at)
             VALUES (?, ?, ?, ?, 'running', ?) ON CONFLICT (plan, kind, slot) DO NOTHING",
        )
        .bind(plan)
        .bind(kind)
        .bind(slot)
        .bind(scheduled_start)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok((result.rows_affected() == 1).then(|| result.last_insert_rowid()))
    }

    /// Records a slot that could not start, with why. Idempotent.
    pub async fn record_missed(
        &self,
        plan: &str,
        kind: &str,
        slot: Millis,
        scheduled_start: Millis,
        reason: &str,
        now: Millis,
    ) -> Result<bool, CatalogError> {
        let result = sqlx::query(
            "INSERT INTO jobs (plan, kind, slot, scheduled_start, status, finished_at, error)
             VALUES (?, ?, ?, ?, 'missed', ?, ?) ON CONFLICT (plan, kind, slot) DO NOTHING",
        )
        .bind(plan)
        .bind(kind)
        .bind(slot)
        .bind(scheduled_start)
        .bind(now)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn finish_job(
        &self,
        id: i64,
        status: &str,
        run_id: Option<i64>,
        drill_id: Option<i64>,
        error: Option<&str>,
        now: Millis,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE jobs SET status = ?, run_id = COALESCE(?, run_id), drill_id = COALESCE(?, drill_id),
                error = ?, finished_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(run_id)
        .bind(drill_id)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks every `running` job failed: called by a daemon at start-up,
    /// holding the catalog's daemon lock, so they belong to a dead process.
    pub async fn fail_interrupted_jobs(&self, now: Millis) -> Result<Vec<Job>, CatalogError> {
        let jobs = sqlx::query_as::<_, Job>("SELECT * FROM jobs WHERE status = 'running'")
            .fetch_all(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = ?, error = 'interrupted: the daemon stopped before the job finished'
             WHERE status = 'running'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(jobs)
    }

    /// The latest slot with a row for a plan's job kind.
    pub async fn last_job_slot(
        &self,
        plan: &str,
        kind: &str,
    ) -> Result<Option<Millis>, CatalogError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(slot) FROM jobs WHERE plan = ? AND kind = ?",
        )
        .bind(plan)
        .bind(kind)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn jobs(&self, plan: Option<&str>) -> Result<Vec<Job>, CatalogError> {
        Ok(sqlx::query_as::<_, Job>(
            "SELECT * FROM jobs WHERE (?1 IS NULL OR plan = ?1) ORDER BY slot, id",
        )
        .bind(plan)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Job counts by plan, kind and status (for metrics).
    pub async fn job_counts(&self) -> Result<Vec<(String, String, String, i64)>, CatalogError> {
        Ok(sqlx::query_as(
            "SELECT plan, kind, status, COUNT(*) FROM jobs GROUP BY plan, kind, status ORDER BY plan, kind, status",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Missed slots of a plan's kind started in `[from, to)`.
    pub async fn missed_between(
        &self,
        plan: &str,
        kind: &str,
        from: Millis,
        to: Millis,
    ) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE plan = ? AND kind = ? AND status = 'missed' AND scheduled_start >= ? AND scheduled_start < ?",
        )
        .bind(plan)
        .bind(kind)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A plan's jobs that were missed or failed, scheduled in `[from, to)`,
    /// oldest first: what the report lists with their reasons.
    pub async fn troubled_jobs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Job>, CatalogError> {
        Ok(sqlx::query_as::<_, Job>(
            "SELECT * FROM jobs WHERE plan = ? AND status IN ('missed', 'failed')
               AND scheduled_start >= ? AND scheduled_start < ? ORDER BY scheduled_start, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }
}
