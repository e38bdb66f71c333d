//! Points recorded again from a vault's manifests (`catalog rebuild`).

use super::status::Flags;
use super::{Catalog, CatalogError};
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

impl Catalog {
    /// Whether the catalog records any point of `plan` in `region`.
    pub async fn has_points_in(&self, plan: &str, region: &str) -> Result<bool, CatalogError> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM points WHERE plan = ? AND region = ? LIMIT 1",
        )
        .bind(plan)
        .bind(region)
        .fetch_optional(&self.pool)
        .await?
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
        let mut tx = self.pool.begin().await?;
        let highest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM points")
            .fetch_one(&mut *tx)
            .await?;
        let named = points.iter().map(|p| p.origin).max().unwrap_or(0);
        let mut next = highest.unwrap_or(0).max(named) + 1;
        let mut ids = Vec::with_capacity(points.len());
        for p in points {
            let taken = !p.is_origin
                || sqlx::query_scalar::<_, i64>("SELECT 1 FROM points WHERE id = ?")
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
                 VALUES (?, ?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        tx.commit().await?;
        Ok(ids)
    }
}
