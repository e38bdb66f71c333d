//! The catalog's anchor of each drill evidence chain: per plan and region,
//! the newest record written (its vault key, the SHA-256 of its bytes) and
//! the chain's length; and per drill, whether its record is written
//! (`drills.evidence_written`). With them a chain deleted or cut short in
//! the vault shows, and a record that could not be written is retried.

use super::{Catalog, CatalogError, DrillRecord, DrillStatus};
use crate::time::Millis;

/// The newest record of one plan's chain in one region.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EvidenceHead {
    /// The record's vault key.
    pub key: String,
    /// SHA-256 (hex) of the record's bytes as written.
    pub sha256: String,
    /// How many records the chain holds, this one included.
    pub length: i64,
}

impl Catalog {
    /// The head of `plan`'s chain in `region`, once a record was written.
    pub async fn evidence_head(
        &self,
        plan: &str,
        region: &str,
    ) -> Result<Option<EvidenceHead>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_as::<_, EvidenceHead>(
            "SELECT key, sha256, length FROM evidence_heads WHERE plan = $1 AND region = $2",
        )
        .bind(plan)
        .bind(region)
        .fetch_optional(db)
        .await)?)
    }

    /// Records that drill `drill`'s record is written and is now the head
    /// of `plan`'s chain in `region`: both in one transaction, so the flag
    /// and the head never disagree.
    pub async fn advance_evidence_head(
        &self,
        plan: &str,
        region: &str,
        drill: i64,
        head: &EvidenceHead,
        now: Millis,
    ) -> Result<(), CatalogError> {
        on_pool!(self, |db| {
            let mut tx = db.begin().await?;
            sqlx::query(
                "INSERT INTO evidence_heads (plan, region, key, sha256, length, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plan, region) DO UPDATE SET
                key = excluded.key, sha256 = excluded.sha256, length = excluded.length,
                updated_at = excluded.updated_at",
            )
            .bind(plan)
            .bind(region)
            .bind(&head.key)
            .bind(&head.sha256)
            .bind(head.length)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE drills SET evidence_written = TRUE WHERE id = $1")
                .bind(drill)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// The finished drills of `plan` in `region` whose record is not
    /// written yet, by id.
    pub async fn drills_without_evidence(
        &self,
        plan: &str,
        region: &str,
    ) -> Result<Vec<DrillRecord>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_as::<_, DrillRecord>(
            "SELECT * FROM drills WHERE plan = $1 AND region = $2 AND evidence_written = FALSE AND status != $3
             ORDER BY id",
        )
        .bind(plan)
        .bind(region)
        .bind(DrillStatus::Running)
        .fetch_all(db)
        .await
        })?)
    }

    /// The ids of the drills of `plan` in `region` whose record is written,
    /// ascending.
    pub async fn drills_with_evidence(
        &self,
        plan: &str,
        region: &str,
    ) -> Result<Vec<i64>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "SELECT id FROM drills WHERE plan = $1 AND region = $2 AND evidence_written = TRUE ORDER BY id",
        )
        .bind(plan)
        .bind(region)
        .fetch_all(db)
        .await
        })?)
    }

    /// The regions where `plan` has, or should have, an evidence chain: a
    /// head, or a finished drill.
    pub async fn evidence_regions(&self, plan: &str) -> Result<Vec<String>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "SELECT region FROM evidence_heads WHERE plan = $1
             UNION SELECT region FROM drills WHERE plan = $1 AND status != $2
             ORDER BY 1",
        )
        .bind(plan)
        .bind(DrillStatus::Running)
        .fetch_all(db)
        .await)?)
    }

    /// The regions where `plan` has finished drills whose record is not
    /// written yet.
    pub async fn regions_missing_evidence(&self, plan: &str) -> Result<Vec<String>, CatalogError> {
        Ok(on_pool!(self, |db| {
            sqlx::query_scalar(
            "SELECT DISTINCT region FROM drills WHERE plan = $1 AND evidence_written = FALSE AND status != $2
             ORDER BY 1",
        )
        .bind(plan)
        .bind(DrillStatus::Running)
        .fetch_all(db)
        .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_head_and_the_written_flag_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        let a = cat.start_drill("p", "dr", "test", 1, 1, 1).await.unwrap();
        let b = cat.start_drill("p", "dr", "test", 2, 1, 1).await.unwrap();
        let other = cat.start_drill("p", "west", "test", 3, 1, 1).await.unwrap();
        // A running drill has nothing to record yet.
        assert!(cat
            .drills_without_evidence("p", "dr")
            .await
            .unwrap()
            .is_empty());
        cat.fail_interrupted_drills("p", 10).await.unwrap();
        let pending: Vec<i64> = cat
            .drills_without_evidence("p", "dr")
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(pending, [a, b]);
        assert_eq!(
            cat.regions_missing_evidence("p").await.unwrap(),
            ["dr", "west"]
        );
        let head = EvidenceHead {
            key: "evidence/p/1.json".into(),
            sha256: "ab".into(),
            length: 1,
        };
        cat.advance_evidence_head("p", "dr", a, &head, 11)
            .await
            .unwrap();
        assert_eq!(cat.evidence_head("p", "dr").await.unwrap(), Some(head));
        assert_eq!(cat.evidence_head("p", "west").await.unwrap(), None);
        assert_eq!(cat.drills_with_evidence("p", "dr").await.unwrap(), [a]);
        let next = EvidenceHead {
            key: "evidence/p/2.json".into(),
            sha256: "cd".into(),
            length: 2,
        };
        cat.advance_evidence_head("p", "dr", b, &next, 12)
            .await
            .unwrap();
        assert_eq!(cat.evidence_head("p", "dr").await.unwrap(), Some(next));
        assert!(cat
            .drills_without_evidence("p", "dr")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(cat.regions_missing_evidence("p").await.unwrap(), ["west"]);
        assert_eq!(cat.evidence_regions("p").await.unwrap(), ["dr", "west"]);
        let _ = other;
    }
}
