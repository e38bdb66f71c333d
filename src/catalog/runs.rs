//! Backup runs: one row per run of a plan's backup, whatever its outcome.

use serde::Serialize;

use super::status::RunStatus;
use super::{Catalog, CatalogError};
use crate::time::Millis;

/// A row of `backup_runs`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BackupRun {
    /// The run's id; its points carry it as `run_id`.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// What started the run (`manual`, `schedule`).
    pub trigger: String,
    /// The cron slot a scheduled run belongs to; `None` for a manual run.
    #[serde(with = "crate::time::serde_ms::option")]
    pub slot: Option<Millis>,
    /// When the run started: the first one of a plan starts its
    /// protection (RPO exposure is counted from it).
    #[serde(with = "crate::time::serde_ms")]
    pub started_at: Millis,
    /// When it ended; `None` while `running`.
    #[serde(with = "crate::time::serde_ms::option")]
    pub finished_at: Option<Millis>,
    /// How it ended, or `running`.
    pub status: RunStatus,
    /// A summary of what failed (`2 point(s) failed`, `interrupted: …`).
    pub error: Option<String>,
}

impl Catalog {
    /// Records the start of a backup run; returns its id.
    pub async fn start_run(
        &self,
        plan: &str,
        trigger: &str,
        slot: Option<Millis>,
        now: Millis,
    ) -> Result<i64, CatalogError> {
        let id = on_pool!(self, |db| {
            sqlx::query_scalar(
            "INSERT INTO backup_runs (plan, trigger, slot, started_at, status) VALUES ($1, $2, $3, $4, 'running') RETURNING id",
        )
        .bind(plan)
        .bind(trigger)
        .bind(slot)
        .bind(now)
        .fetch_one(db)
        .await
        })?;
        Ok(id)
    }

    /// Records how a run ended, at `now`.
    pub async fn finish_run(
        &self,
        id: i64,
        status: RunStatus,
        error: Option<&str>,
        now: Millis,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE backup_runs SET status = $1, error = $2, finished_at = $3 WHERE id = $4"
        )
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the plan's `running` runs and points failed. Called while
    /// holding the plan's backup lock: anything still `running` then belongs
    /// to a process that died.
    pub async fn fail_interrupted_backups(
        &self,
        plan: &str,
        now: Millis,
    ) -> Result<u64, CatalogError> {
        let done = on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            let points = sqlx::query(
            "UPDATE points SET status = 'failed', error = 'interrupted: the process running this backup stopped before it finished', completed_at = NULL
             WHERE plan = $1 AND status = 'running'",
        )
        .bind(plan)
        .execute(&mut *tx)
        .await?
        .rows_affected();
            sqlx::query(
            "UPDATE backup_runs SET status = 'failed', finished_at = $1, error = 'interrupted: the process running this backup stopped before it finished'
             WHERE plan = $2 AND status = 'running'",
        )
        .bind(now)
        .bind(plan)
        .execute(&mut *tx)
        .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(points)
        })?;
        Ok(done)
    }

    /// How many runs of a plan started in `[from, to)`.
    pub async fn count_runs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM backup_runs WHERE plan = $1 AND started_at >= $2 AND started_at < $3",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_one(db)
        .await
        })?)
    }

    /// A plan's failed or partial runs started in `[from, to)`, oldest
    /// first (a partial index keeps this cheap however many runs succeeded).
    pub async fn troubled_runs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<BackupRun>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, BackupRun>(
            "SELECT * FROM backup_runs WHERE plan = $1 AND status IN ('failed', 'partial')
               AND started_at >= $2 AND started_at < $3 ORDER BY started_at, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await)?)
    }

    /// When protection of a plan started: its first backup attempt.
    pub async fn first_run_start(&self, plan: &str) -> Result<Option<Millis>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(started_at) FROM backup_runs WHERE plan = $1",
        )
        .bind(plan)
        .fetch_one(db)
        .await)?)
    }
}
