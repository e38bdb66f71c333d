//! Recovery points: one row per restorable copy of a resource in a region.

use serde::Serialize;

use super::status::{Flags, PointStatus};
use super::{Catalog, CatalogError};
use crate::resource::{Binding, Kind, Location, PointFlag};
use crate::time::Millis;

/// A row of `points`: one recovery point (a primary point or a copy) of one
/// resource in one region, whatever its status. Serialises as the
/// `--json` point of DESIGN.md (times RFC 3339), without `stored`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Point {
    /// The point's id, referenced by copies, drills and `--point`.
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The resource's name in the plan (which may since have dropped it).
    pub resource: String,
    /// The kind the point was taken as; steps on the point follow it, not
    /// what the plan says today.
    pub kind: Kind,
    /// The region holding the point.
    pub region: String,
    /// The backup run that took or copied it (the column is nullable;
    /// this build always sets it).
    pub run_id: Option<i64>,
    /// For a copy, the point it was copied from; `None` for a primary
    /// point.
    pub source_point_id: Option<i64>,
    /// For a point rebuilt from a vault (`catalog rebuild`), the point
    /// that took the data, as its manifest names it.
    pub origin_point_id: Option<i64>,
    /// Where the point is in its life; only `complete` points are used.
    pub status: PointStatus,
    /// When the row was written, before any work.
    #[serde(with = "crate::time::serde_ms")]
    pub started_at: Millis,
    /// The instant whose data the point holds; a copy has its source's.
    /// Set on completion; a failed copy keeps its source's too, a failed
    /// snapshot has none.
    #[serde(with = "crate::time::serde_ms::option")]
    pub data_time: Option<Millis>,
    /// When the point became usable in its region. Kept after it is
    /// pruned (exposure needs it); `None` if it never completed.
    #[serde(with = "crate::time::serde_ms::option")]
    pub completed_at: Option<Millis>,
    /// When prune marked it `deleting`: it stopped being usable then.
    #[serde(with = "crate::time::serde_ms::option")]
    pub deleted_at: Option<Millis>,
    /// Bytes stored: the artifact's (compressed) size, an `s3` point's
    /// objects, or an RDS snapshot's allocated storage.
    pub size_bytes: Option<i64>,
    /// Uncompressed bytes held (RDS: the allocated storage).
    pub content_bytes: Option<i64>,
    /// Regular files held (1 for a database, the objects for `s3`, 0 for
    /// RDS).
    pub file_count: Option<i64>,
    /// SHA-256 (hex) of the artifact (`s3`: of its object list); empty for
    /// RDS snapshots.
    pub sha256: Option<String>,
    /// SHA-256 (hex) of the manifest as written beside the artifact (a
    /// copy's is its source's: same bytes); `None` for RDS and for points
    /// taken before Lifeboat recorded it.
    pub manifest_sha256: Option<String>,
    /// Where the data is, as shown to users: a vault URL, a snapshot ARN.
    pub location: Option<String>,
    /// Where the data is, as data: what drills, copies and prune use.
    #[serde(skip)]
    pub stored: Option<Location>,
    /// Notes on the point (`shrunk`, `changed-while-read`, …).
    pub flags: Flags,
    /// Why the point failed; `None` otherwise.
    pub error: Option<String>,
    /// Until when the point's objects are under S3 Object Lock (a region
    /// with `object_lock`): prune does not delete it before.
    #[serde(with = "crate::time::serde_ms::option")]
    pub locked_until: Option<Millis>,
    /// When the point was first found damaged (status `damaged`, or
    /// pruned since); `None` for a point never found damaged, or whose
    /// data a later verify found whole again.
    #[serde(with = "crate::time::serde_ms::option")]
    pub damaged_at: Option<Millis>,
    /// What was found wrong with the point's data (`artifact missing`, a
    /// hash that does not match, …), with `damaged_at`.
    pub damage: Option<String>,
}

impl Point {
    /// What the vault's files must match before this point is restored:
    /// the catalog's record of it (see [`Binding`]).
    pub fn binding(&self) -> Binding {
        Binding {
            plan: self.plan.clone(),
            resource: self.resource.clone(),
            point: self.id,
            origin: self
                .origin_point_id
                .or(self.source_point_id)
                .unwrap_or(self.id),
            kind: self.kind,
            data_time: self.data_time,
            artifact_sha256: self.sha256.clone(),
            artifact_size: self.size_bytes.and_then(|s| u64::try_from(s).ok()),
            manifest_sha256: self.manifest_sha256.clone(),
        }
    }

    /// The flags as words, for printing.
    pub fn flag_list(&self) -> Vec<&'static str> {
        self.flags.iter().map(PointFlag::as_str).collect()
    }

    /// Whether the point is usable: complete, not failed or being pruned.
    pub fn is_complete(&self) -> bool {
        self.status == PointStatus::Complete
    }
}

/// A point about to be taken or copied.
#[derive(Debug, Clone)]
pub struct NewPoint<'a> {
    /// The plan's name.
    pub plan: &'a str,
    /// The resource's name.
    pub resource: &'a str,
    /// The resource's kind now, recorded for the point's whole life.
    pub kind: Kind,
    /// The region the point will be in.
    pub region: &'a str,
    /// The backup run taking it.
    pub run_id: Option<i64>,
    /// The point a copy is made from; `None` for a primary point.
    pub source_point_id: Option<i64>,
    /// Now: when the work on the point starts.
    pub started_at: Millis,
}

/// What a finished snapshot or copy established.
#[derive(Debug, Clone)]
pub struct PointCompletion {
    /// The instant whose data the point holds (a copy: its source's).
    pub data_time: Millis,
    /// Now: when the data became durable in the region.
    pub completed_at: Millis,
    /// See [`Point::size_bytes`].
    pub size_bytes: u64,
    /// See [`Point::content_bytes`].
    pub content_bytes: u64,
    /// See [`Point::file_count`].
    pub file_count: u64,
    /// See [`Point::sha256`]; empty when there is none.
    pub sha256: String,
    /// See [`Point::manifest_sha256`].
    pub manifest_sha256: Option<String>,
    /// Where the data is: as shown to users, and as data.
    pub location: String,
    /// Where the data is, as data (see [`Point::stored`]).
    pub stored: Location,
    /// The flags the point ends with (replacing any it had).
    pub flags: Flags,
}

/// Filters of `points list`.
#[derive(Debug, Clone, Default)]
pub struct PointFilter {
    /// Only this plan's points.
    pub plan: Option<String>,
    /// Only points in this region.
    pub region: Option<String>,
    /// Only this resource's points.
    pub resource: Option<String>,
    /// Include deleted and failed points.
    pub all_statuses: bool,
}

impl Catalog {
    /// `INDEXED BY` the two indexes of the exposure walk on SQLite, whose
    /// planner otherwise picks the other index for these queries and reads
    /// a plan's whole history; nothing on PostgreSQL (no such clause, and
    /// a planner that chooses well from its statistics).
    fn point_indexes(&self) -> (&'static str, &'static str) {
        if self.is_sqlite() {
            (
                "INDEXED BY points_plan_region_completed",
                "INDEXED BY points_plan_region_resource_deleted",
            )
        } else {
            ("", "")
        }
    }

    /// Records a new point as `running`; returns its id (which the kinds
    /// use to name what they write).
    pub async fn insert_point(&self, p: NewPoint<'_>) -> Result<i64, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "INSERT INTO points (plan, resource, kind, region, run_id, source_point_id, status, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'running', $7) RETURNING id",
        )
        .bind(p.plan)
        .bind(p.resource)
        .bind(p.kind)
        .bind(p.region)
        .bind(p.run_id)
        .bind(p.source_point_id)
        .bind(p.started_at)
        .fetch_one(db)
        .await
        })?)
    }

    /// Marks a running point complete: only called once its artifact is durable.
    pub async fn complete_point(&self, id: i64, c: &PointCompletion) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "UPDATE points SET status = 'complete', data_time = $1, completed_at = $2, size_bytes = $3,
                content_bytes = $4, file_count = $5, sha256 = $6, manifest_sha256 = $7, location = $8,
                stored = $9, flags = $10, error = NULL
             WHERE id = $11 AND status = 'running'",
        )
        .bind(c.data_time)
        .bind(c.completed_at)
        .bind(c.size_bytes as i64)
        .bind(c.content_bytes as i64)
        .bind(c.file_count as i64)
        .bind(&c.sha256)
        .bind(&c.manifest_sha256)
        .bind(&c.location)
        .bind(&c.stored)
        .bind(&c.flags)
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Marks a point failed with `error`. `data_time` is recorded as given
    /// (a failed copy keeps its source's; `None` clears it). Unlike
    /// completion, this applies to a point in any status.
    pub async fn fail_point(
        &self,
        id: i64,
        error: &str,
        data_time: Option<Millis>,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE points SET status = 'failed', error = $1, data_time = $2 WHERE id = $3"
        )
        .bind(error)
        .bind(data_time)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// First step of pruning: the point stops being usable before any of
    /// its objects is touched, so a crash half-way never leaves a
    /// `complete` point without its data. A damaged point keeps its
    /// `deleted_at` (its `completed_at`): it never counted as usable.
    pub async fn mark_point_deleting(&self, id: i64, now: Millis) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE points SET status = 'deleting',
                deleted_at = CASE WHEN status = 'damaged' THEN deleted_at ELSE $1 END
             WHERE id = $2 AND status IN ('complete', 'damaged')",
        )
        .bind(now)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks a complete (or already damaged) point `damaged`, saying why:
    /// it stops being usable, and stops counting as ever having been
    /// (`deleted_at` = `completed_at`: the exposure walk skips a point
    /// usable over an empty interval). `damaged_at` keeps the first time
    /// it was found so; `damage` says the latest reason. Returns whether
    /// the point was marked (a point pruned meanwhile is left alone).
    pub async fn mark_point_damaged(
        &self,
        id: i64,
        damage: &str,
        now: Millis,
    ) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| sqlx::query(
            "UPDATE points SET status = 'damaged', damaged_at = COALESCE(damaged_at, $1),
                damage = $2, deleted_at = completed_at
             WHERE id = $3 AND status IN ('complete', 'damaged') AND completed_at IS NOT NULL",
        )
        .bind(now)
        .bind(damage)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Makes a damaged point complete again, once its data was found
    /// whole (its vault came back, or was repaired): usable as it was,
    /// from its completion on. Returns whether it was damaged.
    pub async fn mark_point_repaired(&self, id: i64) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| {
            sqlx::query(
            "UPDATE points SET status = 'complete', damaged_at = NULL, damage = NULL, deleted_at = NULL
             WHERE id = $1 AND status = 'damaged'",
        )
        .bind(id)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// The points `lifeboat verify` checks in one region of a plan: the
    /// complete ones and the damaged ones (whose data may have come back),
    /// by id.
    pub async fn points_to_verify(
        &self,
        plan: &str,
        region: &str,
    ) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND region = $2 AND status IN ('complete', 'damaged')
             ORDER BY id",
        )
        .bind(plan)
        .bind(region)
        .fetch_all(db)
        .await
        })?)
    }

    /// Damaged points of one resource in one region, newest data first:
    /// what drills skip and say so, and what prune may delete.
    pub async fn damaged_points(
        &self,
        plan: &str,
        resource: &str,
        region: &str,
    ) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND resource = $2 AND region = $3 AND status = 'damaged'
             ORDER BY data_time DESC, id DESC",
        )
        .bind(plan)
        .bind(resource)
        .bind(region)
        .fetch_all(db)
        .await
        })?)
    }

    /// Points whose pruning started but did not finish (to retry).
    pub async fn deleting_points(&self, plan: &str) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND status = 'deleting' ORDER BY id",
        )
        .bind(plan)
        .fetch_all(db)
        .await)?)
    }

    /// Last step of pruning, once the objects are gone.
    pub async fn mark_point_deleted(
        &self,
        id: i64,
        now: Millis,
        reason: &str,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            sqlx::query("UPDATE points SET status = 'deleted', deleted_at = COALESCE(deleted_at, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO prune_log (point_id, pruned_at, reason) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(now)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// One point by id, whatever its status; `None` if there is no such
    /// point.
    pub async fn point(&self, id: i64) -> Result<Option<Point>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(db)
        .await)?)
    }

    /// The points `f` selects, oldest started first: only `complete` and
    /// `damaged` ones unless `f.all_statuses` (a damaged point is shown so
    /// its damage is seen, never used).
    pub async fn points(&self, f: &PointFilter) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points
             WHERE ($1 IS NULL OR plan = $1) AND ($2 IS NULL OR region = $2) AND ($3 IS NULL OR resource = $3)
               AND ($4 OR status IN ('complete', 'damaged'))
             ORDER BY started_at, id",
        )
        .bind(&f.plan)
        .bind(&f.region)
        .bind(&f.resource)
        .bind(f.all_statuses)
        .fetch_all(db)
        .await
        })?)
    }

    /// Complete points of one resource in one region, newest data first.
    pub async fn complete_points(
        &self,
        plan: &str,
        resource: &str,
        region: &str,
    ) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND resource = $2 AND region = $3 AND status = 'complete'
             ORDER BY data_time DESC, id DESC",
        )
        .bind(plan)
        .bind(resource)
        .bind(region)
        .fetch_all(db)
        .await
        })?)
    }

    /// The newest complete point of one resource in one region.
    pub async fn newest_complete_point(
        &self,
        plan: &str,
        resource: &str,
        region: &str,
    ) -> Result<Option<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND resource = $2 AND region = $3 AND status = 'complete'
             ORDER BY data_time DESC, id DESC LIMIT 1",
        )
        .bind(plan)
        .bind(resource)
        .bind(region)
        .fetch_optional(db)
        .await
        })?)
    }

    /// Whether the catalog holds anything of `plan` (a backup run, a point,
    /// a drill or a restore): the history commands accept a plan whose file
    /// is gone as long as its records remain.
    pub async fn plan_has_records(&self, plan: &str) -> Result<bool, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM backup_runs WHERE plan = $1)
                 OR EXISTS (SELECT 1 FROM points WHERE plan = $1)
                 OR EXISTS (SELECT 1 FROM drills WHERE plan = $1)
                 OR EXISTS (SELECT 1 FROM restores WHERE plan = $1)",
        )
        .bind(plan)
        .fetch_one(db)
        .await)?)
    }

    /// Whether a point of one resource in one region was ever complete
    /// (whatever became of it since): a plan's first drill waits for one.
    pub async fn ever_complete(
        &self,
        plan: &str,
        resource: &str,
        region: &str,
    ) -> Result<bool, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM points WHERE plan = $1 AND resource = $2 AND region = $3
               AND completed_at IS NOT NULL)",
        )
        .bind(plan)
        .bind(resource)
        .bind(region)
        .fetch_one(db)
        .await)?)
    }

    /// Plans with points or drills still marked running.
    pub async fn plans_with_running_work(&self) -> Result<Vec<String>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT plan FROM points WHERE status = 'running'
             UNION SELECT plan FROM backup_runs WHERE status = 'running'
             UNION SELECT plan FROM drills WHERE status = 'running'",
        )
        .fetch_all(db)
        .await)?)
    }

    /// Calls `f`, in the order they became usable, for the points of
    /// `plan` in `region` that can be the newest usable point of one of
    /// `resources` at some instant of `[from, to)`: every point completed
    /// in the window, and of those already usable at `from`, only the ones
    /// no other point outlives with data at least as new (per resource, a
    /// handful of index lookups; a point outlived by a newer one can never
    /// be the newest usable). Rows are streamed from covering indexes
    /// (migration 0006): memory does not grow with the catalog's history.
    pub async fn for_each_usable_point(
        &self,
        plan: &str,
        region: &str,
        resources: &[&str],
        from: Millis,
        to: Millis,
        mut f: impl FnMut(UsablePoint),
    ) -> Result<(), CatalogError> {
        if resources.is_empty() {
            return Ok(());
        }
        for (index, resource) in resources.iter().enumerate() {
            for p in self
                .usable_at_and_outliving(plan, region, resource, from, to)
                .await?
            {
                f(UsablePoint {
                    resource: index,
                    data_time: p.0,
                    completed_at: p.1,
                    deleted_at: p.2,
                });
            }
        }
        // `completed_at` is only set once a point is complete (and cleared
        // if an interrupted backup is failed), so it alone tells which
        // points were ever usable, whatever their status now. The rows come
        // packed, one text value per slice of the window
        // (`index,data_time,completed_at,deleted_at;…`), not a row per
        // point: sqlx copies every value of every row it hands over (a
        // malloc each, and a hand-over between threads), which was most of
        // the HTML report's time (it walks every point of its window).
        // The resource comes back as its index in `resources`, and not at
        // all when there is one; a resource no longer in the plan makes the
        // whole tuple NULL, which the aggregate skips (not part of the
        // plan's exposure).
        let text = |column: &str| format!("CAST({column} AS TEXT)");
        let (resource_column, resource_filter) = match resources {
            [_] => (String::new(), "AND resource = $5"),
            _ => {
                let case: String = (0..resources.len())
                    .map(|i| format!(" WHEN ${} THEN '{i},'", i + 5))
                    .collect();
                (format!("CASE resource{case} END || "), "")
            }
        };
        let (by_completed, _) = self.point_indexes();
        // `string_agg`: PostgreSQL, and SQLite from 3.44. Without an ORDER
        // BY, which SQLite would honour with a sort of its own: the rows
        // come in the index's order, and are put in order here if not.
        let sql = format!(
            "SELECT string_agg({resource_column}{} || ',' || {} || ',' || COALESCE({}, ''), ';')
               FROM points {by_completed}
              WHERE plan = $1 AND region = $2 AND completed_at >= $3 AND completed_at < $4
                AND data_time IS NOT NULL {resource_filter}",
            text("data_time"),
            text("completed_at"),
            text("deleted_at"),
        );
        let with_index = resources.len() > 1;
        let mut points = Vec::new();
        let mut slice_from = from;
        while slice_from < to {
            // Slices bound the text's size whatever the window (a month of
            // one-minute points is about 2 MB).
            let slice_to = to.min(slice_from.saturating_add(PACKED_SLICE));
            let packed: Option<String> = on_pool!(self, |db| {
                let mut query = sqlx::query_scalar(&sql)
                    .bind(plan)
                    .bind(region)
                    .bind(slice_from)
                    .bind(slice_to);
                for resource in resources {
                    query = query.bind(*resource);
                }
                query.fetch_one(db).await
            })?;
            points.clear();
            for tuple in packed.iter().flat_map(|p| p.split(';')) {
                points.push(unpack(tuple, with_index)?);
            }
            if !points.is_sorted_by_key(|p| p.completed_at) {
                points.sort_by_key(|p| p.completed_at);
            }
            points.iter().copied().for_each(&mut f);
            slice_from = slice_to;
        }
        Ok(())
    }

    /// The points of one resource usable at `from` that can still be the
    /// newest usable one at some instant before `to`, as `(data_time,
    /// completed_at, deleted_at)`: the newest usable at `from`, then the
    /// newest among those outliving it, and so on until one lives past
    /// `to`. Any other point usable at `from` dies no later than one of
    /// these and holds older data, so it never sets the exposure.
    async fn usable_at_and_outliving(
        &self,
        plan: &str,
        region: &str,
        resource: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, Millis, Option<Millis>)>, CatalogError> {
        type Row = (Millis, Millis, Option<Millis>);
        // The newest usable at `from`, found near `from` in completion
        // order: take the last point completed before `from` and still
        // usable then; a point with newer data completed after that data
        // time (data is always read before it completes), so only the
        // points completed since can hold newer data. Ties on data time:
        // the longest-lived one, which covers the others.
        let (by_completed, by_deleted) = self.point_indexes();
        let first: Option<Row> = on_pool!(self, |db| sqlx::query_as(&format!(
            "SELECT data_time, completed_at, deleted_at
               FROM points {by_completed}
              WHERE plan = $1 AND region = $2 AND resource = $3 AND data_time IS NOT NULL
                AND completed_at < $4 AND (deleted_at IS NULL OR deleted_at > $4)
                AND completed_at >= (
                    SELECT data_time FROM points {by_completed}
                     WHERE plan = $1 AND region = $2 AND resource = $3 AND data_time IS NOT NULL
                       AND completed_at < $4 AND (deleted_at IS NULL OR deleted_at > $4)
                     ORDER BY completed_at DESC LIMIT 1)
              ORDER BY data_time DESC, deleted_at IS NULL DESC, deleted_at DESC
              LIMIT 1"
        ))
        .bind(plan)
        .bind(region)
        .bind(resource)
        .bind(from)
        .fetch_optional(db)
        .await)?;
        let mut out: Vec<Row> = first.into_iter().collect();
        // Then, while the last one found dies inside the window, the
        // newest among the points outliving it (two ranges of the index
        // by deletion time; an OR would scan the resource's whole history).
        while let Some(&(_, _, Some(after))) = out.last() {
            if after >= to {
                break;
            }
            let next: Option<Row> = on_pool!(self, |db| sqlx::query_as(&format!(
                "SELECT data_time, completed_at, deleted_at FROM (
                   SELECT data_time, completed_at, deleted_at
                     FROM points {by_deleted}
                    WHERE plan = $1 AND region = $2 AND resource = $3
                      AND deleted_at IS NULL AND completed_at < $5
                   UNION ALL
                   SELECT data_time, completed_at, deleted_at
                     FROM points {by_deleted}
                    WHERE plan = $1 AND region = $2 AND resource = $3
                      AND deleted_at > $4 AND completed_at < $5) AS outliving
                  WHERE data_time IS NOT NULL
                  ORDER BY data_time DESC, deleted_at IS NULL DESC, deleted_at DESC
                  LIMIT 1"
            ))
            .bind(plan)
            .bind(region)
            .bind(resource)
            .bind(after)
            .bind(from)
            .fetch_optional(db)
            .await)?;
            match next {
                Some(p) => out.push(p),
                None => break,
            }
        }
        Ok(out)
    }

    /// Complete points of a plan carrying a flag, completed in `[from, to)`
    /// (pruned since or not); points found damaged never counted.
    pub async fn flagged_points(
        &self,
        plan: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND flags != '' AND completed_at >= $2 AND completed_at < $3
               AND status IN ('complete', 'deleting', 'deleted') AND damaged_at IS NULL
             ORDER BY completed_at, id",
        )
        .bind(plan)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
        })?)
    }

    /// Records until when the objects a running point wrote are locked
    /// (at least as long as any of them), before it is marked complete or
    /// failed.
    pub async fn set_point_locked_until(&self, id: i64, until: Millis) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE points SET locked_until = $1 WHERE id = $2 AND status = 'running'"
        )
        .bind(until)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets `locked_until` on the running points of a plan in a region that
    /// have none (of a process that died writing them), but for snapshots
    /// (which live outside vaults). A point recorded before `stored`
    /// existed may have written objects too.
    pub async fn bound_lock_of_running_points(
        &self,
        plan: &str,
        region: &str,
        until: Millis,
    ) -> Result<(), CatalogError> {
        let no_snapshot = if self.is_sqlite() {
            "json_type(stored, '$.rds_snapshot') IS NULL"
        } else {
            "(stored::jsonb -> 'rds_snapshot') IS NULL"
        };
        on_pool!(self, |db| sqlx::query(&format!(
            "UPDATE points SET locked_until = $1
             WHERE plan = $2 AND region = $3 AND status = 'running' AND locked_until IS NULL
               AND (stored IS NULL OR {no_snapshot})"
        ))
        .bind(until)
        .bind(plan)
        .bind(region)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records where a running point's data will be before it is written.
    /// With `shown`, the point also shows that location, and prune removes
    /// what a failed or interrupted run left there.
    pub async fn set_point_stored(
        &self,
        id: i64,
        stored: &Location,
        shown: Option<&str>,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE points SET stored = $1, location = COALESCE($2, location)
             WHERE id = $3 AND status = 'running'",
        )
        .bind(stored)
        .bind(shown)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Failed points that may have left data behind (an RDS snapshot, an
    /// `s3` point's objects, a killed put's temporary file): they showed
    /// their location before the work started, and they were not cleaned up
    /// yet.
    pub async fn failed_points_with_leftovers(
        &self,
        plan: &str,
    ) -> Result<Vec<Point>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, Point>(
            "SELECT * FROM points WHERE plan = $1 AND status = 'failed' AND location IS NOT NULL
               AND stored IS NOT NULL AND ',' || flags || ',' NOT LIKE '%,leftovers-removed,%'
             ORDER BY id",
        )
        .bind(plan)
        .fetch_all(db)
        .await)?)
    }

    /// Adds a flag to a point (idempotent).
    pub async fn add_point_flag(&self, id: i64, flag: PointFlag) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "UPDATE points SET flags = CASE WHEN flags = '' THEN $1 ELSE flags || ',' || $1 END
             WHERE id = $2 AND ',' || flags || ',' NOT LIKE '%,' || $1 || ',%'",
        )
        .bind(flag.as_str())
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// What the exposure walk needs of a point.
#[derive(Debug, Clone, Copy)]
pub struct UsablePoint {
    /// Index in the `resources` asked for.
    pub resource: usize,
    /// The instant whose data the point holds.
    pub data_time: Millis,
    /// From when the point was usable.
    pub completed_at: Millis,
    /// Until when it was usable (prune marked it `deleting`); `None` while
    /// it still is.
    pub deleted_at: Option<Millis>,
}

/// The span of one packed read of [`Catalog::for_each_usable_point`].
const PACKED_SLICE: Millis = 30 * 86_400_000;

/// One point of a packed read: `[index,]data_time,completed_at,[deleted_at]`.
fn unpack(tuple: &str, with_index: bool) -> Result<UsablePoint, CatalogError> {
    let bad = || {
        CatalogError::from(sqlx::Error::Decode(
            format!("unexpected packed point `{tuple}`").into(),
        ))
    };
    let mut fields = tuple.split(',');
    let mut number = || -> Result<Option<i64>, CatalogError> {
        match fields.next() {
            Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| bad()),
            None => Err(bad()),
        }
    };
    let resource = if with_index {
        number()?.ok_or_else(bad)? as usize
    } else {
        0
    };
    let point = UsablePoint {
        resource,
        data_time: number()?.ok_or_else(bad)?,
        completed_at: number()?.ok_or_else(bad)?,
        deleted_at: number()?,
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(point)
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    use super::*;

    #[test]
    fn packed_points_read_back_and_anything_else_is_an_error() {
        let p = unpack("2,10,20,30", true).unwrap();
        assert_eq!(
            (p.resource, p.data_time, p.completed_at, p.deleted_at),
            (2, 10, 20, Some(30))
        );
        let p = unpack("-5,20,", false).unwrap();
        assert_eq!(
            (p.resource, p.data_time, p.completed_at, p.deleted_at),
            (0, -5, 20, None)
        );
        for bad in ["", "1,2", "1,2,3,4", ",2,3", "1,x,3", "1,2,3,"] {
            assert!(unpack(bad, false).is_err(), "{bad:?} read as a point");
        }
        assert!(unpack("1,2,3", true).is_err());
    }

    /// A catalog as a build before migration 0007 left it, with `rows`
    /// inserted as `(kind, status, location)` of plan `shop`, resource `r`.
    async fn catalog_before_0007(dir: &std::path::Path, rows: &[(&str, &str, Option<&str>)]) {
        let old = dir.join("migrations");
        std::fs::create_dir(&old).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(all).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().as_ref() < "0007" {
                std::fs::copy(entry.path(), old.join(entry.file_name())).unwrap();
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(dir.join("catalog.db"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for (kind, status, location) in rows {
            sqlx::query(
                "INSERT INTO points (plan, resource, kind, region, status, started_at, location)
                 VALUES ('shop', 'r', $1, 'primary', $2, 0, $3)",
            )
            .bind(kind)
            .bind(status)
            .bind(location)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn points_recorded_before_0007_get_their_location_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let arn = "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-shop-r-0a1b2c-20260101t000000000z";
        catalog_before_0007(
            dir.path(),
            &[
                (
                    "path",
                    "complete",
                    Some("file:///srv/v:1/shop/r/20260101T000000000Z-p1.tar.zst"),
                ),
                (
                    "s3",
                    "failed",
                    Some("s3://vault/lifeboat/shop/r/20260101T000000000Z-p2.objects"),
                ),
                ("rds-instance", "complete", Some(arn)),
                (
                    "rds-cluster",
                    "running",
                    Some("lifeboat-shop-r-0a1b2c-20260101t000000000z"),
                ),
                ("sqlite", "failed", None),
            ],
        )
        .await;
        let cat = Catalog::open(&dir.path().join("catalog.db")).await.unwrap();
        let stored = |id| {
            let cat = cat.clone();
            async move { cat.point(id).await.unwrap().unwrap().stored }
        };
        let key = |k: &str| Some(k.to_string());
        assert_eq!(
            stored(1).await,
            Some(Location::Artifact {
                key: "shop/r/20260101T000000000Z-p1.tar.zst".into()
            })
        );
        assert_eq!(
            stored(2).await,
            Some(Location::Objects {
                key: "shop/r/20260101T000000000Z-p2.objects".into()
            })
        );
        assert_eq!(
            stored(3).await,
            Some(Location::RdsSnapshot {
                id: "lifeboat-shop-r-0a1b2c-20260101t000000000z".into(),
                arn: key(arn)
            })
        );
        assert_eq!(
            stored(4).await,
            Some(Location::RdsSnapshot {
                id: "lifeboat-shop-r-0a1b2c-20260101t000000000z".into(),
                arn: None
            })
        );
        assert_eq!(stored(5).await, None);
        let p = cat.point(3).await.unwrap().unwrap();
        assert_eq!(
            (p.kind, p.status),
            (Kind::RdsInstance, PointStatus::Complete)
        );
    }
}
