//! The daemons of a fleet sharing one catalog: a row each, renewed by its
//! heartbeat. A row past its `expires_at` is a daemon presumed dead; who
//! owns which plan is decided from the live rows (`daemon::fleet`) and
//! held through `leases` rows.

use serde::Serialize;

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// A row of `daemons`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DaemonRecord {
    /// Random, one per daemon start.
    pub id: String,
    /// The daemon's host name, for people.
    pub host: String,
    /// Its process id on that host.
    pub pid: i64,
    /// Its labels, comma-separated (what `[placement] labels` match).
    pub labels: String,
    /// When it started.
    #[serde(with = "crate::time::serde_ms")]
    pub started_at: Millis,
    /// Its last heartbeat.
    #[serde(with = "crate::time::serde_ms")]
    pub heartbeat_at: Millis,
    /// When it is presumed dead unless it beats again.
    #[serde(with = "crate::time::serde_ms")]
    pub expires_at: Millis,
    /// How many plans it has loaded, as of its last heartbeat.
    pub plans_loaded: i64,
    /// A digest of their names and placements: daemons that differ load
    /// different plans.
    pub plans_digest: String,
}

impl DaemonRecord {
    /// Its labels, one by one.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.labels.split(',').filter(|l| !l.is_empty())
    }

    /// Whether it carries every label of `required`.
    pub fn has_labels(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.labels().any(|l| l == r))
    }
}

const COLUMNS: &str =
    "id, host, pid, labels, started_at, heartbeat_at, expires_at, plans_loaded, plans_digest";

impl Catalog {
    /// Records a daemon (or records it again, as at a restart with the
    /// same id).
    pub async fn register_daemon(&self, d: &DaemonRecord) -> Result<(), CatalogError> {
        on_pool!(self, |db| sqlx::query(
            "INSERT INTO daemons (id, host, pid, labels, started_at, heartbeat_at, expires_at,
                                  plans_loaded, plans_digest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
                 labels = excluded.labels, started_at = excluded.started_at,
                 heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
                 plans_loaded = excluded.plans_loaded, plans_digest = excluded.plans_digest"
        )
        .bind(&d.id)
        .bind(&d.host)
        .bind(d.pid)
        .bind(&d.labels)
        .bind(d.started_at)
        .bind(d.heartbeat_at)
        .bind(d.expires_at)
        .bind(d.plans_loaded)
        .bind(&d.plans_digest)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A daemon's heartbeat, with what it has loaded; `false` when its
    /// row is gone (forgotten as dead, or never registered).
    pub async fn renew_daemon(
        &self,
        id: &str,
        now: Millis,
        expires_at: Millis,
        plans: (i64, &str),
    ) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| sqlx::query(
            "UPDATE daemons SET heartbeat_at = $1, expires_at = $2, plans_loaded = $3,
                 plans_digest = $4 WHERE id = $5"
        )
        .bind(now)
        .bind(expires_at)
        .bind(plans.0)
        .bind(plans.1)
        .bind(id)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// The daemons alive at `now` (not expired), by id.
    pub async fn live_daemons(&self, now: Millis) -> Result<Vec<DaemonRecord>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM daemons WHERE expires_at > $1 ORDER BY id");
        Ok(on_pool!(self, |db| sqlx::query_as(&sql)
            .bind(now)
            .fetch_all(db)
            .await)?)
    }

    /// Every daemon row, alive or not, by id.
    pub async fn daemons(&self) -> Result<Vec<DaemonRecord>, CatalogError> {
        let sql = format!("SELECT {COLUMNS} FROM daemons ORDER BY id");
        Ok(on_pool!(self, |db| sqlx::query_as(&sql)
            .fetch_all(db)
            .await)?)
    }

    /// Forgets the daemons dead (expired) before `before`: each start has a
    /// new id, so a killed daemon's row would otherwise stay for good.
    pub async fn forget_dead_daemons(&self, before: Millis) -> Result<u64, CatalogError> {
        Ok(on_pool!(self, |db| sqlx::query(
            "DELETE FROM daemons WHERE expires_at < $1"
        )
        .bind(before)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Removes a daemon's row (at its graceful stop); `false` if it was
    /// not there.
    pub async fn remove_daemon(&self, id: &str) -> Result<bool, CatalogError> {
        let done = on_pool!(self, |db| sqlx::query("DELETE FROM daemons WHERE id = $1")
            .bind(id)
            .execute(db)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(id: &str, labels: &str, beat: Millis) -> DaemonRecord {
        DaemonRecord {
            id: id.to_string(),
            host: format!("host-{id}"),
            pid: 42,
            labels: labels.to_string(),
            started_at: 0,
            heartbeat_at: beat,
            expires_at: beat + 30_000,
            plans_loaded: 0,
            plans_digest: String::new(),
        }
    }

    #[tokio::test]
    async fn daemons_register_beat_expire_and_leave() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::testing::open(dir.path()).await;
        cat.register_daemon(&daemon("a", "host-a,ssd", 1_000))
            .await
            .unwrap();
        cat.register_daemon(&daemon("b", "", 1_000)).await.unwrap();
        let live: Vec<String> = cat
            .live_daemons(20_000)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(live, ["a", "b"]);
        // `b` stops beating: past its expiry it is not alive, though listed.
        assert!(cat
            .renew_daemon("a", 25_000, 55_000, (3, "abc"))
            .await
            .unwrap());
        let live = cat.live_daemons(40_000).await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].heartbeat_at, 25_000);
        assert_eq!(
            (live[0].plans_loaded, live[0].plans_digest.as_str()),
            (3, "abc")
        );
        assert!(live[0].has_labels(&["ssd".to_string()]));
        assert!(!live[0].has_labels(&["ssd".to_string(), "gpu".to_string()]));
        assert_eq!(cat.daemons().await.unwrap().len(), 2);
        // A graceful stop removes the row; a removed daemon's beat says so.
        assert!(cat.remove_daemon("b").await.unwrap());
        assert!(!cat.remove_daemon("b").await.unwrap());
        assert!(!cat
            .renew_daemon("b", 41_000, 71_000, (0, ""))
            .await
            .unwrap());
        assert_eq!(cat.daemons().await.unwrap().len(), 1);
        // A dead daemon's row is forgotten once dead long enough, not before.
        cat.register_daemon(&daemon("c", "", 1_000)).await.unwrap();
        assert_eq!(cat.forget_dead_daemons(31_000).await.unwrap(), 0);
        assert_eq!(cat.forget_dead_daemons(31_001).await.unwrap(), 1);
        assert_eq!(cat.daemons().await.unwrap()[0].id, "a");
    }
}
