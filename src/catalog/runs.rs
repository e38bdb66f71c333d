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
        let id = sqlx::query(
            "INSERT INTO backup_runs (plan, trigger, slot, started_at, status) VALUES (?, ?, ?, ?, 'running')",
        )
        .bind(plan)
        .bind(trigger)
        .bind(slot)
        .bind(now)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
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
        sqlx::query("UPDATE backup_runs SET status = ?, error = ?, finished_at = ? WHERE id = ?")
            .bind(status)
            .bind(error)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
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
        let mut tx = self.pool.begin().await?;
        let points = sqlx::query(
            "UPDATE points SET status = 'failed', error = 'interrupted: the process running this backup stopped before it finished', completed_at = NULL
             WHERE plan = ? AND status = 'running'",
        )
        .bind(plan)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE backup_runs SET status = 'failed', finished_at = ?, error = 'interrupted: the process running this backup stopped before it finished'
             WHERE plan = ? AND status = 'running'",
        )
        .bind(now)
        .bind(plan)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(points)
    }

    /// How many runs of a plan started in `[from, to)`.
    pub async fn count_runs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM backup_runs WHERE plan = ? AND started_at >= ? AND started_at < ?",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?)
    }

    /// A plan's failed or partial runs started in `[from, to)`, oldest
    /// first (a partial index keeps this cheap however many runs succeeded).
    pub async fn troubled_runs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<BackupRun>, CatalogError> {
        Ok(sqlx::query_as::<_, BackupRun>(
            "SELECT * FROM backup_runs WHERE plan = ? AND status IN ('failed', 'partial')
               AND started_at >= ? AND started_at < ? ORDER BY started_at, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When protection of a plan started: its first backup attempt.
    pub async fn first_run_start(&self, plan: &str) -> Result<Option<Millis>, CatalogError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(started_at) FROM backup_runs WHERE plan = ?",
        )
        .bind(plan)
        .fetch_one(&self.pool)
        .await?)
    }
}
