//! The per-day RPO exposure the report keeps (migration 0014): read, and
//! stored only if no point of the plan and region changed since the walk
//! that computed them began (the epoch the triggers bump).

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// One plan's exposure in one region over one closed UTC day.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExposureDay {
    /// The day's UTC midnight (catalog ms).
    pub day: Millis,
    /// What else the numbers depend on (see `report::daily`).
    pub basis: String,
    /// The worst exposure reached that day.
    pub worst_ms: i64,
    /// How long it stayed within the objective.
    pub within_ms: i64,
    /// How much of the day the plan was protected.
    pub total_ms: i64,
    /// The periods over the objective: `start:end:worst`, `;`-separated.
    pub breaches: String,
}

impl Catalog {
    /// The change counter of a plan's points in a region (0 before any).
    pub async fn exposure_epoch(&self, plan: &str, region: &str) -> Result<i64, CatalogError> {
        let epoch: Option<i64> = on_pool!(self, |db| sqlx::query_scalar(
            "SELECT epoch FROM exposure_epochs WHERE plan = $1 AND region = $2"
        )
        .bind(plan)
        .bind(region)
        .fetch_optional(db)
        .await)?;
        Ok(epoch.unwrap_or(0))
    }

    /// The stored days in `[from, to)`, oldest first.
    pub async fn exposure_days(
        &self,
        plan: &str,
        region: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<ExposureDay>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as(
            "SELECT day, basis, worst_ms, within_ms, total_ms, breaches FROM exposure_days
              WHERE plan = $1 AND region = $2 AND day >= $3 AND day < $4 ORDER BY day",
        )
        .bind(plan)
        .bind(region)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await)?)
    }

    /// Stores `days` if the points of the plan in the region are still at
    /// `epoch` (what the walk that computed them started from); returns
    /// whether they were stored.
    pub async fn store_exposure_days(
        &self,
        plan: &str,
        region: &str,
        epoch: i64,
        days: &[ExposureDay],
    ) -> Result<bool, CatalogError> {
        // On SQLite the transaction's snapshot does it: if a point changed
        // since the epoch was read, the write fails as busy. On PostgreSQL
        // the epoch row is locked (made first if need be): the trigger
        // bumps it before it forgets days, so a point written meanwhile
        // waits for these days to be stored and then forgets them.
        let sqlite = self.is_sqlite();
        let read_epoch = if sqlite {
            "SELECT epoch FROM exposure_epochs WHERE plan = $1 AND region = $2"
        } else {
            "SELECT epoch FROM exposure_epochs WHERE plan = $1 AND region = $2 FOR UPDATE"
        };
        Ok(on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            if !sqlite {
                sqlx::query(
                    "INSERT INTO exposure_epochs (plan, region, epoch) VALUES ($1, $2, 0)
                 ON CONFLICT (plan, region) DO NOTHING",
                )
                .bind(plan)
                .bind(region)
                .execute(&mut *tx)
                .await?;
            }
            let now: Option<i64> = sqlx::query_scalar(read_epoch)
                .bind(plan)
                .bind(region)
                .fetch_optional(&mut *tx)
                .await?;
            if now.unwrap_or(0) != epoch {
                return Ok(false);
            }
            for d in days {
                sqlx::query(
                "INSERT INTO exposure_days (plan, region, day, basis, worst_ms, within_ms, total_ms, breaches)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (plan, region, day) DO UPDATE SET basis = excluded.basis,
                   worst_ms = excluded.worst_ms, within_ms = excluded.within_ms,
                   total_ms = excluded.total_ms, breaches = excluded.breaches",
            )
            .bind(plan)
            .bind(region)
            .bind(d.day)
            .bind(&d.basis)
            .bind(d.worst_ms)
            .bind(d.within_ms)
            .bind(d.total_ms)
            .bind(&d.breaches)
            .execute(&mut *tx)
            .await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        })?)
    }
}
