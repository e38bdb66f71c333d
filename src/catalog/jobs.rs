//! Daemon jobs: one row per (plan, kind, slot), whatever became of it.
//!
//! A job's kind and status are enums stored as the TEXT values the schema
//! documents (`backup | drill | prune | verify`, `running | succeeded | failed |
//! missed`), so the rest of the program never compares strings.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// What a daemon job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum JobKind {
    /// A backup run: a point of every resource in the primary region, then
    /// the copies to the other regions. Follows `[backup]`'s schedule.
    Backup,
    /// A drill from the plan's drill region. Follows `[drill]`'s schedule;
    /// a plan without one has no drill jobs.
    Drill,
    /// Deletes the points retention no longer keeps, in every region. Not
    /// in the plan: hourly for every plan, jittered over ten minutes.
    Prune,
    /// Verifies every point of the plan where it is kept, in every region,
    /// and marks the damaged ones. Follows `[verify]`'s schedule; a plan
    /// without one has no verify jobs.
    Verify,
}

impl JobKind {
    /// Every kind, in the order the daemon builds its tracks.
    pub const ALL: [JobKind; 4] = [
        JobKind::Backup,
        JobKind::Drill,
        JobKind::Prune,
        JobKind::Verify,
    ];

    /// As stored in the catalog and shown in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Backup => "backup",
            JobKind::Drill => "drill",
            JobKind::Prune => "prune",
            JobKind::Verify => "verify",
        }
    }
}

/// Where a daemon job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum JobStatus {
    /// Claimed and started; a daemon that finds one at start-up knows its
    /// previous process died running it.
    Running,
    /// Finished well: the backup run succeeded, the drill passed its checks
    /// (whether or not it met the objectives), or the prune deleted every
    /// point it meant to.
    Succeeded,
    /// Finished badly (a backup run that did not fully succeed, a drill
    /// that did not pass, an error, the completion window exceeded), or
    /// interrupted by the daemon's death; `error` says which.
    Failed,
    /// Could not start inside its start window (DESIGN.md's missed slot).
    Missed,
    /// Started, and found nothing to do yet: a plan's scheduled drill
    /// before any point of every resource was ever complete in its drill
    /// region (a new plan's first backup is still running). Not a failure,
    /// not a miss, and no drill is recorded.
    Skipped,
}

impl JobStatus {
    /// As stored in the catalog and shown in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Missed => "missed",
            JobStatus::Skipped => "skipped",
        }
    }
}

/// One job row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    /// The row's id.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// What the job runs.
    pub kind: JobKind,
    /// The cron slot, or for a first-run backup the instant it was started
    /// (ms since the epoch, UTC). A plan has at most one row per kind and
    /// slot, so a slot never runs twice.
    #[serde(with = "crate::time::serde_ms")]
    pub slot: Millis,
    /// When the job was due: `slot` plus the stable jitter offset (ms since
    /// the epoch, UTC). Missed counts and the report's troubled jobs select
    /// on this time.
    #[serde(with = "crate::time::serde_ms")]
    pub scheduled_start: Millis,
    /// Where the job stands.
    pub status: JobStatus,
    /// When the daemon claimed the slot, before any wait for a concurrency
    /// place (ms since the epoch, UTC). `None` for a slot the scheduler
    /// recorded missed without claiming it.
    #[serde(with = "crate::time::serde_ms::option")]
    pub started_at: Option<Millis>,
    /// When the outcome, or the miss, was recorded (ms since the epoch,
    /// UTC); `None` while running.
    #[serde(with = "crate::time::serde_ms::option")]
    pub finished_at: Option<Millis>,
    /// The backup run the job made (`backup_runs.id`); `None` for other
    /// kinds and for a backup that stopped before recording a run.
    pub run_id: Option<i64>,
    /// The drill the job made (`drills.id`); `None` for other kinds and
    /// for a drill that stopped before recording one.
    pub drill_id: Option<i64>,
    /// Why the job failed, was missed or skipped; for a drill that passed, why its
    /// clean-up failed. `None` while running and when nothing went wrong.
    pub error: Option<String>,
}

impl Catalog {
    /// Claims a slot: inserts it as running. `None` when the slot already has
    /// a row (it ran, is running, or was recorded missed): never run twice.
    pub async fn claim_job(
        &self,
        plan: &str,
        kind: JobKind,
        slot: Millis,
        scheduled_start: Millis,
        now: Millis,
    ) -> Result<Option<i64>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "INSERT INTO jobs (plan, kind, slot, scheduled_start, status, started_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (plan, kind, slot) DO NOTHING
             RETURNING id",
        )
        .bind(plan)
        .bind(kind)
        .bind(slot)
        .bind(scheduled_start)
        .bind(JobStatus::Running)
        .bind(now)
        .fetch_optional(db)
        .await)?)
    }

    /// Records a slot that could not start, with why. Idempotent.
    pub async fn record_missed(
        &self,
        plan: &str,
        kind: JobKind,
        slot: Millis,
        scheduled_start: Millis,
        reason: &str,
        now: Millis,
    ) -> Result<bool, CatalogError> {
        let result = on_pool!(self, |db| sqlx::query(
            "INSERT INTO jobs (plan, kind, slot, scheduled_start, status, finished_at, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (plan, kind, slot) DO NOTHING",
        )
        .bind(plan)
        .bind(kind)
        .bind(slot)
        .bind(scheduled_start)
        .bind(JobStatus::Missed)
        .bind(now)
        .bind(reason)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(result == 1)
    }

    /// Records how a claimed job ended.
    pub async fn finish_job(
        &self,
        id: i64,
        status: JobStatus,
        run_id: Option<i64>,
        drill_id: Option<i64>,
        error: Option<&str>,
        now: Millis,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE jobs SET status = $1, run_id = COALESCE($2, run_id), drill_id = COALESCE($3, drill_id),
                error = $4, finished_at = $5 WHERE id = $6",
        )
        .bind(status)
        .bind(run_id)
        .bind(drill_id)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Marks every `running` job failed: called by a daemon at start-up,
    /// holding the catalog's daemon lease, so they belong to a daemon gone.
    pub async fn fail_interrupted_jobs(&self, now: Millis) -> Result<Vec<Job>, CatalogError> {
        let jobs = on_pool!(self, |db| sqlx::query_as::<_, Job>(
            "SELECT * FROM jobs WHERE status = $1"
        )
        .bind(JobStatus::Running)
        .fetch_all(db)
        .await)?;
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE jobs SET status = $1, finished_at = $2, error = 'interrupted: the daemon stopped before the job finished'
             WHERE status = $3",
        )
        .bind(JobStatus::Failed)
        .bind(now)
        .bind(JobStatus::Running)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(jobs)
    }

    /// Marks one plan's `running` jobs failed (a fleet daemon taking the
    /// plan over from a daemon that died); returns how many.
    pub async fn fail_interrupted_jobs_of(
        &self,
        plan: &str,
        now: Millis,
    ) -> Result<u64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query(
            "UPDATE jobs SET status = $1, finished_at = $2,
                 error = 'interrupted: the daemon that owned the plan stopped before the job finished'
             WHERE plan = $3 AND status = $4"
        )
        .bind(JobStatus::Failed)
        .bind(now)
        .bind(plan)
        .bind(JobStatus::Running)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
        })?)
    }

    /// The latest slot with a row for a plan's job kind.
    pub async fn last_job_slot(
        &self,
        plan: &str,
        kind: JobKind,
    ) -> Result<Option<Millis>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(slot) FROM jobs WHERE plan = $1 AND kind = $2",
        )
        .bind(plan)
        .bind(kind)
        .fetch_one(db)
        .await)?)
    }

    /// How many jobs of a plan's kind ran (succeeded or failed: claimed,
    /// not missed) for slots before `slot`: a verify job's place in its
    /// rotation through the parts of `read_data_subset`, so a missed slot
    /// does not skip a part.
    pub async fn jobs_ran_before(
        &self,
        plan: &str,
        kind: JobKind,
        slot: Millis,
    ) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE plan = $1 AND kind = $2 AND slot < $3 AND status IN ($4, $5)",
        )
        .bind(plan)
        .bind(kind)
        .bind(slot)
        .bind(JobStatus::Succeeded)
        .bind(JobStatus::Failed)
        .fetch_one(db)
        .await
        })?)
    }

    /// When the daemon first scheduled `plan`'s `kind` track: recorded as
    /// `now` the first time it is asked, then kept (migration 0013). Slots
    /// before it are not the plan's to miss.
    pub async fn track_first_seen(
        &self,
        plan: &str,
        kind: JobKind,
        now: Millis,
    ) -> Result<Millis, CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "INSERT INTO plans_first_seen (plan, kind, first_seen) VALUES ($1, $2, $3)
             ON CONFLICT (plan, kind) DO NOTHING",
        )
        .bind(plan)
        .bind(kind)
        .bind(now)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT first_seen FROM plans_first_seen WHERE plan = $1 AND kind = $2",
        )
        .bind(plan)
        .bind(kind)
        .fetch_one(db)
        .await)?)
    }

    /// Forgets when a track was first seen (every kind when `kind` is
    /// `None`): the daemon no longer schedules it, so should it come back
    /// it starts afresh, without the slots in between as misses.
    pub async fn forget_track(
        &self,
        plan: &str,
        kind: Option<JobKind>,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "DELETE FROM plans_first_seen WHERE plan = $1 AND ($2 IS NULL OR kind = $2)"
        )
        .bind(plan)
        .bind(kind)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every job of a plan (or of all plans), in slot order.
    pub async fn jobs(&self, plan: Option<&str>) -> Result<Vec<Job>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, Job>(
            "SELECT * FROM jobs WHERE ($1 IS NULL OR plan = $1) ORDER BY slot, id",
        )
        .bind(plan)
        .fetch_all(db)
        .await)?)
    }

    /// Job counts by plan, kind and status (for metrics).
    pub async fn job_counts(&self) -> Result<Vec<(String, JobKind, JobStatus, i64)>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as(
            "SELECT plan, kind, status, COUNT(*) FROM jobs GROUP BY plan, kind, status ORDER BY plan, kind, status",
        )
        .fetch_all(db)
        .await
        })?)
    }

    /// Missed slots of a plan's kind started in `[from, to)`.
    pub async fn missed_between(
        &self,
        plan: &str,
        kind: JobKind,
        from: Millis,
        to: Millis,
    ) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE plan = $1 AND kind = $2 AND status = $3 AND scheduled_start >= $4 AND scheduled_start < $5",
        )
        .bind(plan)
        .bind(kind)
        .bind(JobStatus::Missed)
        .bind(from)
        .bind(to)
        .fetch_one(db)
        .await
        })?)
    }

    /// A plan's jobs that were missed or failed, scheduled in `[from, to)`,
    /// oldest first: what the report lists with their reasons.
    pub async fn troubled_jobs_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Job>, CatalogError> {
        // The statuses are written out, not bound: SQLite uses the partial
        // index `jobs_troubled` only when it can see that the query's
        // condition implies the index's, which a bound value hides (it then
        // read all of a plan's jobs: 4.6 ms a plan on a year of history).
        Ok(on_pool!(self, |db| sqlx::query_as::<_, Job>(
            "SELECT * FROM jobs WHERE plan = $1 AND status IN ('missed', 'failed')
               AND scheduled_start >= $2 AND scheduled_start < $3 ORDER BY scheduled_start, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn kinds_and_statuses_are_stored_as_the_schema_documents() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        let id = cat
            .claim_job("shop", JobKind::Drill, 1_000, 1_500, 1_600)
            .await
            .unwrap()
            .unwrap();
        // A slot is claimed once.
        let again = cat.claim_job("shop", JobKind::Drill, 1_000, 1_500, 1_700);
        assert_eq!(again.await.unwrap(), None);
        cat.finish_job(id, JobStatus::Succeeded, None, None, None, 2_000)
            .await
            .unwrap();
        cat.record_missed("shop", JobKind::Prune, 1_000, 1_200, "why", 2_000)
            .await
            .unwrap();
        let raw = cat
            .query_text("SELECT kind || ' ' || status FROM jobs ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            raw,
            ["drill succeeded".to_string(), "prune missed".to_string()]
        );
        let jobs = cat.jobs(Some("shop")).await.unwrap();
        let typed: Vec<_> = jobs.iter().map(|j| (j.kind, j.status)).collect();
        assert_eq!(
            typed,
            [
                (JobKind::Drill, JobStatus::Succeeded),
                (JobKind::Prune, JobStatus::Missed)
            ]
        );
        let json = serde_json::to_value(&jobs[1]).unwrap();
        assert_eq!(
            (&json["kind"], &json["status"]),
            (&"prune".into(), &"missed".into())
        );
        assert_eq!(
            cat.missed_between("shop", JobKind::Prune, 1_200, 1_201)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            cat.last_job_slot("shop", JobKind::Backup).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_verify_job_s_place_in_its_rotation_counts_the_jobs_that_ran_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        for (slot, status) in [
            (1_000, JobStatus::Succeeded),
            (2_000, JobStatus::Failed),
            (4_000, JobStatus::Succeeded),
        ] {
            let id = cat
                .claim_job("shop", JobKind::Verify, slot, slot, slot)
                .await
                .unwrap()
                .unwrap();
            cat.finish_job(id, status, None, None, None, slot + 1)
                .await
                .unwrap();
        }
        // A missed slot, another plan's verify and this plan's prune do
        // not count.
        cat.record_missed("shop", JobKind::Verify, 3_000, 3_000, "why", 3_001)
            .await
            .unwrap();
        cat.claim_job("web", JobKind::Verify, 1_500, 1_500, 1_500)
            .await
            .unwrap();
        cat.claim_job("shop", JobKind::Prune, 1_500, 1_500, 1_500)
            .await
            .unwrap();
        let ran = |slot| cat.jobs_ran_before("shop", JobKind::Verify, slot);
        assert_eq!(ran(1_000).await.unwrap(), 0);
        assert_eq!(ran(3_500).await.unwrap(), 2);
        assert_eq!(ran(5_000).await.unwrap(), 3);
        let raw = cat
            .query_text("SELECT kind FROM jobs WHERE slot = 4000")
            .await
            .unwrap();
        assert_eq!(raw, ["verify"]);
    }
}
