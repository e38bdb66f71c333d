//! Restores an operator ran (`lifeboat restore`), each with the point put
//! back per resource, where, and how it ended: what `restores list`, the
//! report and the `restore-*` webhook events show.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::{serde_ms, Millis};

/// Where a restore stands, stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum RestoreStatus {
    /// Started and not finished; or its process died, until the next
    /// restore of the plan marks it failed.
    Running,
    /// Every point restored, verified, checked and put in place.
    Succeeded,
    /// Something failed: see the error and each resource's outcome.
    Failed,
}

/// A restore as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RestoreRecord {
    /// The restore's id (also in its staging names).
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The region restored from.
    pub region: String,
    /// `user@host` of whoever ran it.
    pub by_whom: String,
    /// What was asked for: `latest`, `at …`, `point N`.
    pub moment: String,
    /// How it ended (or `running`).
    pub status: RestoreStatus,
    /// When it started.
    #[serde(with = "serde_ms")]
    pub started_at: Millis,
    /// When it ended.
    #[serde(with = "serde_ms::option")]
    pub finished_at: Option<Millis>,
    /// Whether the plan's checks ran on the restored data.
    pub checks_run: bool,
    /// The checks run, as JSON.
    #[serde(skip)]
    pub checks: String,
    /// Why it failed.
    pub error: Option<String>,
}

impl RestoreRecord {
    /// How long it took, once finished.
    pub fn duration_ms(&self) -> Option<i64> {
        self.finished_at.map(|f| f - self.started_at)
    }
}

/// One resource of a restore.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RestorePoint {
    /// The resource's name.
    pub resource: String,
    /// The point restored; `None` when the resource had none to restore.
    pub point_id: Option<i64>,
    /// The point's data time (from the points table).
    #[serde(with = "serde_ms::option")]
    pub data_time: Option<Millis>,
    /// Where it was put.
    pub target: String,
    /// Where it was staged until verified.
    pub staging: Option<String>,
    /// What putting it in place did, or why not.
    pub outcome: Option<String>,
}

/// What starts a restore row.
#[derive(Debug, Clone)]
pub struct NewRestore<'a> {
    /// The plan's name.
    pub plan: &'a str,
    /// The region restored from.
    pub region: &'a str,
    /// `user@host`.
    pub by_whom: &'a str,
    /// What was asked for.
    pub moment: &'a str,
    /// When it started.
    pub started_at: Millis,
    /// Whether the checks will run.
    pub checks_run: bool,
}

impl Catalog {
    /// Records a restore as running; returns its id.
    pub async fn start_restore(&self, r: &NewRestore<'_>) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "INSERT INTO restores (plan, region, by_whom, moment, status, started_at, checks_run)
             VALUES ($1, $2, $3, $4, 'running', $5, $6) RETURNING id",
        )
        .bind(r.plan)
        .bind(r.region)
        .bind(r.by_whom)
        .bind(r.moment)
        .bind(r.started_at)
        .bind(r.checks_run)
        .fetch_one(db)
        .await)?)
    }

    /// Records that the restore puts `point` of `resource` at `target`,
    /// staged at `staging` first.
    pub async fn add_restore_point(
        &self,
        restore: i64,
        resource: &str,
        point: Option<i64>,
        target: &str,
        staging: Option<&str>,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "INSERT INTO restore_points (restore_id, resource, point_id, target, staging) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(restore)
        .bind(resource)
        .bind(point)
        .bind(target)
        .bind(staging)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records what became of one resource of a restore.
    pub async fn set_restore_outcome(
        &self,
        restore: i64,
        resource: &str,
        outcome: &str,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE restore_points SET outcome = $1 WHERE restore_id = $2 AND resource = $3"
        )
        .bind(outcome)
        .bind(restore)
        .bind(resource)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records how a restore ended.
    pub async fn finish_restore(
        &self,
        id: i64,
        status: RestoreStatus,
        finished_at: Millis,
        checks_json: &str,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE restores SET status = $1, finished_at = $2, checks = $3, error = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(finished_at)
        .bind(checks_json)
        .bind(error)
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Marks a plan's `running` restores failed (call while holding the
    /// plan's restore lock: they belong to a process that died) and
    /// returns their staging places, to be removed.
    pub async fn fail_interrupted_restores(
        &self,
        plan: &str,
        now: Millis,
    ) -> Result<Vec<(i64, RestorePoint)>, CatalogError> {
        let ids: Vec<i64> = on_pool!(self, |db| sqlx::query_scalar(
            "SELECT id FROM restores WHERE plan = $1 AND status = 'running'"
        )
        .bind(plan)
        .fetch_all(db)
        .await)?;
        let mut staged = Vec::new();
        for &id in &ids {
            for p in self.restore_points(id).await? {
                staged.push((id, p));
            }
        }
        on_pool!(self, |db| sqlx::query(
            "UPDATE restores SET status = 'failed', finished_at = $1,
                 error = 'interrupted: the process running this restore stopped before it finished'
             WHERE plan = $2 AND status = 'running'",
        )
        .bind(now)
        .bind(plan)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(staged)
    }

    /// The restore `id`, if any.
    pub async fn restore(&self, id: i64) -> Result<Option<RestoreRecord>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as(
            "SELECT * FROM restores WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(db)
        .await)?)
    }

    /// Restores, newest first: of `plan` (or every plan), at most `limit`.
    pub async fn restores(
        &self,
        plan: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RestoreRecord>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as(
            "SELECT * FROM restores WHERE ($1 IS NULL OR plan = $1) ORDER BY started_at DESC, id DESC LIMIT $2",
        )
        .bind(plan)
        .bind(limit)
        .fetch_all(db)
        .await
        })?)
    }

    /// Restores of `plan` started in `[from, to)`, oldest first (the report).
    pub async fn restores_between(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<RestoreRecord>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as(
            "SELECT * FROM restores WHERE plan = $1 AND started_at >= $2 AND started_at < $3 ORDER BY started_at, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
        })?)
    }

    /// The resources of restore `id`, with their points' data times.
    pub async fn restore_points(&self, id: i64) -> Result<Vec<RestorePoint>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as(
            "SELECT rp.resource, rp.point_id, p.data_time, rp.target, rp.staging, rp.outcome
             FROM restore_points rp LEFT JOIN points p ON p.id = rp.point_id
             WHERE rp.restore_id = $1 ORDER BY rp.resource",
        )
        .bind(id)
        .fetch_all(db)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_restore_is_recorded_and_an_interrupted_one_is_failed_with_its_staging() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        let new = NewRestore {
            plan: "shop",
            region: "dr",
            by_whom: "ops@host",
            moment: "latest",
            started_at: 1000,
            checks_run: true,
        };
        let done = cat.start_restore(&new).await.unwrap();
        cat.add_restore_point(
            done,
            "files",
            None,
            "/srv/files",
            Some("/srv/.files.staging"),
        )
        .await
        .unwrap();
        cat.set_restore_outcome(done, "files", "3 entries")
            .await
            .unwrap();
        cat.finish_restore(done, RestoreStatus::Succeeded, 1500, "[]", None)
            .await
            .unwrap();
        let crashed = cat
            .start_restore(&NewRestore {
                started_at: 2000,
                ..new
            })
            .await
            .unwrap();
        cat.add_restore_point(
            crashed,
            "db",
            None,
            "/srv/app.db",
            Some("/srv/.app.db.staging"),
        )
        .await
        .unwrap();

        let stale = cat.fail_interrupted_restores("shop", 3000).await.unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!(
            (stale[0].0, stale[0].1.staging.as_deref()),
            (crashed, Some("/srv/.app.db.staging"))
        );
        let listed = cat.restores(Some("shop"), 10).await.unwrap();
        assert_eq!(
            listed.iter().map(|r| r.id).collect::<Vec<_>>(),
            [crashed, done]
        );
        assert_eq!(listed[0].status, RestoreStatus::Failed);
        assert!(listed[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("interrupted"));
        assert_eq!(listed[1].status, RestoreStatus::Succeeded);
        assert_eq!(listed[1].duration_ms(), Some(500));
        let points = cat.restore_points(done).await.unwrap();
        assert_eq!(points[0].outcome.as_deref(), Some("3 entries"));
        assert!(cat.restores(Some("other"), 10).await.unwrap().is_empty());
    }
}
