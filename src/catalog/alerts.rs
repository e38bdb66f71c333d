//! RPO breach alert state: what the daemon last notified, per plan and region.

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// A region's notified state: over the objective or not, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertState {
    /// The exposure was over the RPO objective when last notified.
    pub breached: bool,
    /// Since when it has been in that state.
    pub since: Millis,
}

impl Catalog {
    /// The notified state of each region of a plan that has one.
    pub async fn rpo_alerts(&self, plan: &str) -> Result<Vec<(String, AlertState)>, CatalogError> {
        let rows: Vec<(String, bool, Millis)> = on_pool!(self, |db| sqlx::query_as(
            "SELECT region, breached, since FROM rpo_alerts WHERE plan = $1"
        )
        .bind(plan)
        .fetch_all(db)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(region, breached, since)| (region, AlertState { breached, since }))
            .collect())
    }

    /// Records the state just notified for a plan's region.
    pub async fn set_rpo_alert(
        &self,
        plan: &str,
        region: &str,
        state: AlertState,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            sqlx::query(
            "INSERT INTO rpo_alerts (plan, region, breached, since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (plan, region) DO UPDATE SET breached = excluded.breached, since = excluded.since",
        )
        .bind(plan)
        .bind(region)
        .bind(state.breached)
        .bind(state.since)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
