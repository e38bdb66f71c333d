//! Points recorded again from a vault's manifests, and drills from their
//! evidence records (`catalog rebuild`).

use super::status::Flags;
use super::{Catalog, CatalogError, DrillStatus, NewCheck};
use crate::resource::{Kind, Location};
use crate::time::Millis;

/// A complete point read back from its manifest in a vault.
#[derive(Debug, Clone)]
pub struct RebuiltPoint {
    /// The plan's name.
    pub plan: String,
    /// The resource's name.
    pub resource: String,
    /// The kind the manifest says.
    pub kind: Kind,
    /// The region whose vault holds it.
    pub region: String,
    /// The point that took the data, as the manifest names it.
    pub origin: i64,
    /// Whether this is the origin point itself (rebuilt from the plan's
    /// primary region): it then keeps the origin's id when that is free.
    pub is_origin: bool,
    /// The manifest's data time.
    pub data_time: Millis,
    /// When the manifest was written (the point's completion).
    pub completed_at: Millis,
    /// Stored bytes (the artifact's, or an `s3` point's objects').
    pub size_bytes: u64,
    /// Uncompressed bytes held.
    pub content_bytes: u64,
    /// Files (or objects) held.
    pub file_count: u64,
    /// The artifact's SHA-256 (or the `s3` object list's).
    pub sha256: String,
    /// The SHA-256 of the manifest's bytes as read.
    pub manifest_sha256: String,
    /// The artifact's URL, for users.
    pub location: String,
    /// Where the data is, as data.
    pub stored: Location,
    /// `rebuilt`, and what the manifest says (e.g. `changed-while-read`).
    pub flags: Flags,
    /// The Object Lock bound of the region, counted from `completed_at`.
    pub locked_until: Option<Millis>,
}

/// On PostgreSQL an identity does not follow ids written explicitly (SQLite
/// always gives MAX(id) + 1): after a rebuild writes its own ids, the
/// identities are moved past them, or the next backup's point would
/// collide with a rebuilt one.
const SYNC_POINT_IDS: &str =
    "SELECT setval(pg_get_serial_sequence('points', 'id'), (SELECT MAX(id) FROM points))";
const SYNC_DRILL_IDS: &str =
    "SELECT setval(pg_get_serial_sequence('drills', 'id'), (SELECT MAX(id) FROM drills))";

impl Catalog {
    /// Whether the catalog records any point of `plan` in `region`.
    pub async fn has_points_in(&self, plan: &str, region: &str) -> Result<bool, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar::<_, i64>(
            "SELECT id FROM points WHERE plan = $1 AND region = $2 LIMIT 1",
        )
        .bind(plan)
        .bind(region)
        .fetch_optional(db)
        .await)?
        .is_some())
    }

    /// Records `points` as complete, in one transaction; returns their
    /// ids in order. An origin point keeps its id when the catalog has no
    /// row with it; every other point gets an id above every id the
    /// manifests name, so a rebuilt copy is never mistaken for the point
    /// its manifest names.
    pub async fn insert_rebuilt_points(
        &self,
        points: &[RebuiltPoint],
    ) -> Result<Vec<i64>, CatalogError> {
        let sqlite = self.is_sqlite();
        let done = on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            let highest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM points")
                .fetch_one(&mut *tx)
                .await?;
            let named = points.iter().map(|p| p.origin).max().unwrap_or(0);
            let mut next = highest.unwrap_or(0).max(named) + 1;
            let mut ids = Vec::with_capacity(points.len());
            for p in points {
                let taken = !p.is_origin
                    || sqlx::query_scalar::<_, i64>("SELECT id FROM points WHERE id = $1")
                        .bind(p.origin)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some();
                let id = if taken {
                    next += 1;
                    next - 1
                } else {
                    p.origin
                };
                sqlx::query(
                "INSERT INTO points (id, plan, resource, kind, region, origin_point_id, status,
                    started_at, data_time, completed_at, size_bytes, content_bytes, file_count,
                    sha256, manifest_sha256, location, stored, flags, locked_until)
                 VALUES ($1, $2, $3, $4, $5, $6, 'complete', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            )
            .bind(id)
            .bind(&p.plan)
            .bind(&p.resource)
            .bind(p.kind)
            .bind(&p.region)
            .bind((id != p.origin).then_some(p.origin))
            .bind(p.data_time)
            .bind(p.data_time)
            .bind(p.completed_at)
            .bind(p.size_bytes as i64)
            .bind(p.content_bytes as i64)
            .bind(p.file_count as i64)
            .bind(&p.sha256)
            .bind(&p.manifest_sha256)
            .bind(&p.location)
            .bind(&p.stored)
            .bind(&p.flags)
            .bind(p.locked_until)
            .execute(&mut *tx)
            .await?;
                ids.push(id);
            }
            if !sqlite {
                sqlx::query(SYNC_POINT_IDS).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ids)
        })?;
        Ok(done)
    }
}

/// A finished drill read back from its evidence record.
#[derive(Debug, Clone)]
pub struct RebuiltDrill {
    /// The drill's id in the lost catalog (kept: the record's key names it).
    pub id: i64,
    /// The plan's name.
    pub plan: String,
    /// The region it restored from (whose vault holds the record).
    pub region: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Passed or failed.
    pub status: DrillStatus,
    /// Its start.
    pub started_at: Millis,
    /// Its end.
    pub finished_at: Option<Millis>,
    /// Measured RTO.
    pub rto_ms: Option<i64>,
    /// Measured RPO.
    pub rpo_ms: Option<i64>,
    /// The RTO objective it was judged against.
    pub rto_objective_ms: i64,
    /// The RPO objective it was judged against.
    pub rpo_objective_ms: i64,
    /// Phase durations: choose, restore, checks, clean-up.
    pub phases_ms: [Option<i64>; 4],
    /// Where the restored data was kept.
    pub kept_path: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The point ids the record names (the lost catalog's).
    pub points: Vec<i64>,
    /// Its checks, in order.
    pub checks: Vec<NewCheck>,
}

impl Catalog {
    /// Whether the catalog records any drill of `plan` in `region`.
    pub async fn has_drills_in(&self, plan: &str, region: &str) -> Result<bool, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar::<_, i64>(
            "SELECT id FROM drills WHERE plan = $1 AND region = $2 LIMIT 1",
        )
        .bind(plan)
        .bind(region)
        .fetch_optional(db)
        .await)?
        .is_some())
    }

    /// Records drills read back from their evidence records, in one
    /// transaction, with their own ids, as written (their records are in
    /// the vault). A drill's point is linked only when this catalog holds
    /// it under the same id in the drill's region, taken there (not a
    /// rebuilt copy, whose id is new); the view keeps the record's ids.
    pub async fn insert_rebuilt_drills(&self, drills: &[RebuiltDrill]) -> Result<(), CatalogError> {
        let sqlite = self.is_sqlite();
        on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            for d in drills {
                let points = serde_json::to_string(&d.points).unwrap_or_else(|_| "[]".into());
                sqlx::query(
                "INSERT INTO drills (id, plan, region, trigger, status, started_at, finished_at,
                    rto_ms, rpo_ms, rto_objective_ms, rpo_objective_ms, choose_ms, restore_ms,
                    checks_ms, cleanup_ms, kept_path, error, evidence_written, recorded_points)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, TRUE, $18)",
            )
            .bind(d.id)
            .bind(&d.plan)
            .bind(&d.region)
            .bind(&d.trigger)
            .bind(d.status)
            .bind(d.started_at)
            .bind(d.finished_at)
            .bind(d.rto_ms)
            .bind(d.rpo_ms)
            .bind(d.rto_objective_ms)
            .bind(d.rpo_objective_ms)
            .bind(d.phases_ms[0])
            .bind(d.phases_ms[1])
            .bind(d.phases_ms[2])
            .bind(d.phases_ms[3])
            .bind(&d.kept_path)
            .bind(&d.error)
            .bind(points)
            .execute(&mut *tx)
            .await?;
                for p in &d.points {
                    sqlx::query(
                        "INSERT INTO drill_points (drill_id, point_id)
                     SELECT $1, id FROM points
                     WHERE id = $2 AND plan = $3 AND region = $4 AND origin_point_id IS NULL",
                    )
                    .bind(d.id)
                    .bind(p)
                    .bind(&d.plan)
                    .bind(&d.region)
                    .execute(&mut *tx)
                    .await?;
                }
                for c in &d.checks {
                    sqlx::query(
                        "INSERT INTO drill_checks (drill_id, name, resource, passed, detail, ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(d.id)
                    .bind(&c.name)
                    .bind(&c.resource)
                    .bind(c.passed)
                    .bind(&c.detail)
                    .bind(c.ms)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if !sqlite {
                sqlx::query(SYNC_DRILL_IDS).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
