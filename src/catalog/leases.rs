//! Leases: one row per (plan, kind) naming who may run it, until when.
//!
//! Every statement here is one atomic step that decides by its own `WHERE`
//! and reports by the rows it affected, so no two processes can both
//! believe they hold a lease, whichever catalog path, work folder or host
//! they use. The SQL is the portable kind (`INSERT ... ON CONFLICT ... DO
//! UPDATE ... WHERE`), for a catalog on PostgreSQL later. Deciding whether
//! a holder is dead is not done here: `crate::lease` does it, and passes
//! the owner it found dead to [`Catalog::take_lease`].

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// A row of `leases`: who holds (plan, kind), and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LeaseRecord {
    /// The plan's name, or `*` for a lease on the whole catalog.
    pub plan: String,
    /// What is held: `backup`, `drill`, `verify`, `restore`, `daemon`.
    pub kind: String,
    /// The random token of this acquisition; only its holder renews or
    /// releases the row.
    #[serde(skip)]
    pub owner: String,
    /// The holder's process id, meaningful only on its `node`.
    pub pid: i64,
    /// The holder's host name, for people.
    pub host: String,
    /// Where `pid` means something (boot id and pid namespace).
    pub node: String,
    /// When this holder took the lease.
    #[serde(with = "crate::time::serde_ms")]
    pub acquired_at: Millis,
    /// The holder's last heartbeat.
    #[serde(with = "crate::time::serde_ms")]
    pub heartbeat_at: Millis,
    /// When the lease ends unless renewed: after it, anyone may take it.
    #[serde(with = "crate::time::serde_ms")]
    pub expires_at: Millis,
}

/// A lease to take: who asks, at what instant, for how long.
#[derive(Debug, Clone, Copy)]
pub struct NewLease<'a> {
    /// The plan's name (or `*`).
    pub plan: &'a str,
    /// What is to be held.
    pub kind: &'a str,
    /// The new holder's random token.
    pub owner: &'a str,
    /// The new holder's process id.
    pub pid: i64,
    /// The new holder's host name.
    pub host: &'a str,
    /// Where the new holder's pid means something.
    pub node: &'a str,
    /// Now, by the new holder's clock.
    pub now: Millis,
    /// `now` plus the lease's time to live.
    pub expires_at: Millis,
}

const COLUMNS: &str = "plan, kind, owner, pid, host, node, acquired_at, heartbeat_at, expires_at";

impl Catalog {
    /// Takes the lease in one statement: inserts it when nobody holds it,
    /// or takes it over when the holder's lease has expired at `now`, or
    /// when the holder is `dead_owner` (a holder found dead, and still the
    /// holder: if it renewed or someone else took over meanwhile, nothing
    /// changes). `true` when the lease is now `new.owner`'s.
    pub async fn take_lease(
        &self,
        new: &NewLease<'_>,
        dead_owner: Option<&str>,
    ) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| {
            sqlx::query(
            "INSERT INTO leases (plan, kind, owner, pid, host, node, acquired_at, heartbeat_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (plan, kind) DO UPDATE SET
                 owner = excluded.owner, pid = excluded.pid, host = excluded.host,
                 node = excluded.node, acquired_at = excluded.acquired_at,
                 heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
             WHERE leases.expires_at <= excluded.acquired_at OR leases.owner = $10",
        )
        .bind(new.plan)
        .bind(new.kind)
        .bind(new.owner)
        .bind(new.pid)
        .bind(new.host)
        .bind(new.node)
        .bind(new.now)
        .bind(new.now)
        .bind(new.expires_at)
        .bind(dead_owner)
        .execute(db)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Who holds (plan, kind), if anyone (expired or not).
    pub async fn lease(&self, plan: &str, kind: &str) -> Result<Option<LeaseRecord>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM leases WHERE plan = $1 AND kind = $2");
        Ok(on_pool!(self, |db| sqlx::query_as(&sql)
            .bind(plan)
            .bind(kind)
            .fetch_optional(db)
            .await)?)
    }

    /// Renews `owner`'s lease: a heartbeat at `now`, valid until
    /// `expires_at`. `false` when the row is no longer `owner`'s: the lease
    /// was lost (expired and taken over, or found dead).
    pub async fn renew_lease(
        &self,
        plan: &str,
        kind: &str,
        owner: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| sqlx::query(
            "UPDATE leases SET heartbeat_at = $1, expires_at = $2
             WHERE plan = $3 AND kind = $4 AND owner = $5",
        )
        .bind(now)
        .bind(expires_at)
        .bind(plan)
        .bind(kind)
        .bind(owner)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Renews every lease of `kind` held by `owner` in one statement (a
    /// fleet daemon's plans: one query per round, not one per plan), and
    /// returns the plans renewed.
    pub async fn renew_leases_of(
        &self,
        kind: &str,
        owner: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<Vec<String>, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query_scalar(
            "UPDATE leases SET heartbeat_at = $1, expires_at = $2
             WHERE kind = $3 AND owner = $4 RETURNING plan",
        )
        .bind(now)
        .bind(expires_at)
        .bind(kind)
        .bind(owner)
        .fetch_all(db)
        .await)?)
    }

    /// Releases `owner`'s lease; `false` when it was no longer `owner`'s.
    pub async fn release_lease(
        &self,
        plan: &str,
        kind: &str,
        owner: &str,
    ) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| sqlx::query(
            "DELETE FROM leases WHERE plan = $1 AND kind = $2 AND owner = $3"
        )
        .bind(plan)
        .bind(kind)
        .bind(owner)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Every lease row, expired or not, by plan and kind: what `status`
    /// and people debugging want to see.
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM leases ORDER BY plan, kind");
        Ok(on_pool!(self, |db| sqlx::query_as(&sql)
            .fetch_all(db)
            .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(owner: &'a str, now: Millis) -> NewLease<'a> {
        NewLease {
            plan: "shop",
            kind: "backup",
            owner,
            pid: 42,
            host: "h1",
            node: "n1",
            now,
            expires_at: now + 60_000,
        }
    }

    async fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        (dir, cat)
    }

    #[tokio::test]
    async fn a_lease_is_taken_once_until_it_expires() {
        let (_dir, cat) = catalog().await;
        assert!(cat.take_lease(&new("a", 1_000), None).await.unwrap());
        // Held and not expired (it expires at 61 000): nobody else gets it.
        assert!(!cat.take_lease(&new("b", 2_000), None).await.unwrap());
        assert!(!cat.take_lease(&new("b", 60_999), None).await.unwrap());
        let row = cat.lease("shop", "backup").await.unwrap().unwrap();
        assert_eq!((row.owner.as_str(), row.expires_at), ("a", 61_000));
        // Another kind or plan is another lease.
        let drill = NewLease {
            kind: "drill",
            ..new("c", 2_000)
        };
        assert!(cat.take_lease(&drill, None).await.unwrap());
        // Expired at 61 000: taken over, every column the new holder's.
        let mut later = new("b", 61_000);
        later.pid = 7;
        later.host = "h2";
        assert!(cat.take_lease(&later, None).await.unwrap());
        let row = cat.lease("shop", "backup").await.unwrap().unwrap();
        assert_eq!(
            row,
            LeaseRecord {
                plan: "shop".into(),
                kind: "backup".into(),
                owner: "b".into(),
                pid: 7,
                host: "h2".into(),
                node: "n1".into(),
                acquired_at: 61_000,
                heartbeat_at: 61_000,
                expires_at: 121_000,
            }
        );
        let kinds: Vec<String> = cat
            .leases()
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.kind)
            .collect();
        assert_eq!(kinds, ["backup", "drill"]);
    }

    #[tokio::test]
    async fn a_dead_holder_is_taken_over_only_while_it_still_holds() {
        let (_dir, cat) = catalog().await;
        assert!(cat.take_lease(&new("a", 1_000), None).await.unwrap());
        // A stale guess (someone else's token) changes nothing.
        assert!(!cat.take_lease(&new("b", 2_000), Some("x")).await.unwrap());
        assert!(cat.take_lease(&new("b", 2_000), Some("a")).await.unwrap());
        // `a` found dead a second time, by someone late: `b` holds it now.
        assert!(!cat.take_lease(&new("c", 3_000), Some("a")).await.unwrap());
        let row = cat.lease("shop", "backup").await.unwrap().unwrap();
        assert_eq!(row.owner, "b");
    }

    #[tokio::test]
    async fn only_the_owner_renews_or_releases() {
        let (_dir, cat) = catalog().await;
        assert!(cat.take_lease(&new("a", 1_000), None).await.unwrap());
        assert!(!cat
            .renew_lease("shop", "backup", "b", 5_000, 65_000)
            .await
            .unwrap());
        assert!(cat
            .renew_lease("shop", "backup", "a", 5_000, 65_000)
            .await
            .unwrap());
        let row = cat.lease("shop", "backup").await.unwrap().unwrap();
        assert_eq!((row.heartbeat_at, row.expires_at), (5_000, 65_000));
        // Renewed: not expired at 61 000 any more.
        assert!(!cat.take_lease(&new("b", 61_000), None).await.unwrap());
        assert!(!cat.release_lease("shop", "backup", "b").await.unwrap());
        assert!(cat.release_lease("shop", "backup", "a").await.unwrap());
        assert!(cat.lease("shop", "backup").await.unwrap().is_none());
        // Released: the next one takes it at once, and the old owner's
        // renewal says it lost it.
        assert!(cat.take_lease(&new("b", 6_000), None).await.unwrap());
        assert!(!cat
            .renew_lease("shop", "backup", "a", 7_000, 67_000)
            .await
            .unwrap());
    }
}
