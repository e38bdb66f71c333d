//! Aggregates for the daemon's `/metrics`, read from the catalog so that
//! what the CLI ran counts as much as what the daemon ran: outcomes and
//! durations per plan and kind, last successes, and the bytes written.
//!
//! Each table records what it can: backups and drills have their own rows
//! whoever ran them (`backup_runs`, `drills`); prunes and verifies leave a
//! row only when the daemon runs them (`jobs`).

use std::collections::{BTreeMap, BTreeSet};

use super::{Catalog, CatalogError};
use crate::time::Millis;

/// Ids below the newest that had no row when a refresh read them, on
/// PostgreSQL. Its writers commit concurrently, so a row can become
/// visible after a higher id was read (SQLite's one writer commits ids in
/// order); each refresh looks for these again, and counts one that has
/// appeared. An id that never appears (a rolled-back insert, a sequence
/// gap after a crash) is forgotten after [`HOLE_TTL`].
#[derive(Debug, Default)]
struct Holes(BTreeMap<i64, std::time::Instant>);

/// How far below the newest id a row may still be uncommitted: more
/// concurrent inserts than any fleet makes.
const HOLE_WINDOW: i64 = 10_000;

/// How long a missing id is looked for: far longer than the one-statement
/// transaction that inserts a run or a point.
const HOLE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

impl Holes {
    /// Records the ids of `(after, upto]` (its last [`HOLE_WINDOW`]) that
    /// are not in `present`.
    fn record(&mut self, after: i64, upto: i64, present: &[i64]) {
        let present: BTreeSet<i64> = present.iter().copied().collect();
        let now = std::time::Instant::now();
        for id in after.max(upto - HOLE_WINDOW) + 1..=upto {
            if !present.contains(&id) {
                self.0.insert(id, now);
            }
        }
    }

    /// The ids still looked for; the ones looked for too long are dropped.
    fn waiting(&mut self) -> Vec<i64> {
        self.0.retain(|_, since| since.elapsed() < HOLE_TTL);
        self.0.keys().copied().collect()
    }

    fn filled(&mut self, id: i64) {
        self.0.remove(&id);
    }
}

/// On PostgreSQL, records the ids of `($after, $upto]` that had no row in
/// this snapshot as [`Holes`], and moves the ones that have a row now into
/// `$tally.pending` (so they are counted as a running row is, once done).
/// A macro, as `run_stats_between!` is: `$conn` is either engine's.
macro_rules! look_for_late_rows {
    ($conn:expr, $table:expr, $sqlite:expr, $tally:expr, $after:expr, $upto:expr) => {
        async {
            let table: &str = $table;
            let (after, upto): (i64, i64) = ($after, $upto);
            if !$sqlite && upto > after {
                let present: Vec<i64> = sqlx::query_scalar(&format!(
                    "SELECT id FROM {table} WHERE id > $1 AND id <= $2"
                ))
                .bind(after.max(upto - HOLE_WINDOW))
                .bind(upto)
                .fetch_all($conn)
                .await?;
                $tally.holes.record(after, upto, &present);
            }
            for id in $tally.holes.waiting() {
                let found: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE id = $1"))
                        .bind(id)
                        .fetch_optional($conn)
                        .await?;
                if found.is_some() {
                    $tally.holes.filled(id);
                    $tally.pending.insert(id);
                }
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// The upper bounds (seconds) of the run duration histogram's buckets:
/// from a one-second file backup to a six-hour database restore.
pub const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

/// What ran, by the tables that record it: `kind` is the job kind's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSource {
    /// `backup_runs`: every backup, CLI or daemon.
    Backup,
    /// `drills`: every drill, CLI or daemon.
    Drill,
    /// `jobs` of kind prune: the daemon's prunes.
    Prune,
    /// `jobs` of kind verify: the daemon's verifies.
    Verify,
}

impl RunSource {
    /// Every source, in the order metrics list them.
    pub const ALL: [RunSource; 4] = [
        RunSource::Backup,
        RunSource::Drill,
        RunSource::Prune,
        RunSource::Verify,
    ];

    /// The `kind` label.
    pub fn kind(self) -> &'static str {
        match self {
            RunSource::Backup => "backup",
            RunSource::Drill => "drill",
            RunSource::Prune => "prune",
            RunSource::Verify => "verify",
        }
    }

    /// Its table, the rows of it that are this kind's, the statuses a
    /// finished row has (`running` is left out), and the one that means
    /// success.
    fn table(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            RunSource::Backup => (
                "backup_runs",
                "TRUE",
                "status IN ('succeeded', 'partial', 'failed')",
                "succeeded",
            ),
            RunSource::Drill => ("drills", "TRUE", "status IN ('passed', 'failed')", "passed"),
            RunSource::Prune => (
                "jobs",
                "kind = 'prune'",
                "status IN ('succeeded', 'failed') AND started_at IS NOT NULL",
                "succeeded",
            ),
            RunSource::Verify => (
                "jobs",
                "kind = 'verify'",
                "status IN ('succeeded', 'failed') AND started_at IS NOT NULL",
                "succeeded",
            ),
        }
    }
}

/// Finished runs of one plan and kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// How many ended in each status (`succeeded`, `failed`, …).
    pub by_status: BTreeMap<String, u64>,
    /// Cumulative counts per [`DURATION_BUCKETS`] bound (then +Inf is the
    /// total of `by_status`).
    pub buckets: Vec<u64>,
    /// Sum of the durations, in seconds.
    pub duration_sum_seconds: f64,
    /// When the newest successful one finished (ms since the epoch, UTC).
    pub last_success: Option<Millis>,
}

impl RunStats {
    /// How many finished, whatever their status.
    pub fn count(&self) -> u64 {
        self.by_status.values().sum()
    }

    fn merge(&mut self, other: RunStats) {
        for (status, n) in other.by_status {
            *self.by_status.entry(status).or_default() += n;
        }
        self.buckets.resize(DURATION_BUCKETS.len(), 0);
        for (b, n) in self.buckets.iter_mut().zip(other.buckets) {
            *b += n;
        }
        self.duration_sum_seconds += other.duration_sum_seconds;
        self.last_success = self.last_success.max(other.last_success);
    }
}

/// The statement that reads finished runs of `source` with ids in
/// `(after, upto]`, grouped by plan and status: count, total duration
/// (ms), newest finish, then one count per duration bucket.
fn run_stats_sql(source: RunSource) -> String {
    let (table, scope, finished, _) = source.table();
    let buckets: Vec<String> = DURATION_BUCKETS
        .iter()
        .map(|b| format!("COUNT(CASE WHEN d <= {} THEN 1 END)", (*b * 1000.0) as i64))
        .collect();
    format!(
        "SELECT plan, status, COUNT(*), CAST(COALESCE(SUM(d), 0) AS DOUBLE PRECISION), MAX(finished_at), {}
         FROM (SELECT plan, status, finished_at,
                      CASE WHEN finished_at > started_at THEN finished_at - started_at ELSE 0 END AS d
                 FROM {table}
                WHERE id > $1 AND id <= $2 AND {scope} AND {finished} AND finished_at IS NOT NULL) AS runs
         GROUP BY plan, status",
        buckets.join(", ")
    )
}

/// Finished runs of `$source` with ids in `($after, $upto]`, per plan:
/// counts by status, duration histogram, newest success. One grouped pass,
/// on `$conn` (a connection or transaction of either engine).
macro_rules! run_stats_between {
    ($conn:expr, $source:expr, $after:expr, $upto:expr) => {
        async {
            use sqlx::Row;
            let source: RunSource = $source;
            let (_, _, _, success) = source.table();
            let mut out: BTreeMap<String, RunStats> = BTreeMap::new();
            for row in sqlx::query(&run_stats_sql(source))
                .bind($after)
                .bind($upto)
                .fetch_all($conn)
                .await?
            {
                let plan: String = row.try_get(0)?;
                let status: String = row.try_get(1)?;
                let count: i64 = row.try_get(2)?;
                let sum_ms: f64 = row.try_get(3)?;
                let newest: Option<i64> = row.try_get(4)?;
                let mut buckets = Vec::with_capacity(DURATION_BUCKETS.len());
                for i in 0..DURATION_BUCKETS.len() {
                    let n: i64 = row.try_get(5 + i)?;
                    buckets.push(u64::try_from(n).unwrap_or(0));
                }
                let stats = RunStats {
                    by_status: [(status.clone(), u64::try_from(count).unwrap_or(0))].into(),
                    buckets,
                    duration_sum_seconds: sum_ms / 1000.0,
                    last_success: if status == success { newest } else { None },
                };
                out.entry(plan).or_default().merge(stats);
            }
            Ok::<_, CatalogError>(out)
        }
    };
}

impl Catalog {
    /// Finished runs of `source` per plan, read in full (see [`RunTally`]
    /// for the daemon's incremental reading).
    pub async fn run_stats(
        &self,
        source: RunSource,
    ) -> Result<BTreeMap<String, RunStats>, CatalogError> {
        on_pool!(self, |db| run_stats_between!(db, source, 0i64, i64::MAX)
            .await)
    }
}

/// Finished runs of one source, kept up to date incrementally as
/// [`WrittenBytes`] is: each refresh reads the rows added since the last
/// one and those that were still running then. A grouped pass over a year
/// of 15-minute backups of 10 plans (350,000 runs) takes most of a second;
/// a scrape must not pay that every time.
#[derive(Debug)]
pub struct RunTally {
    source: RunSource,
    stats: BTreeMap<String, RunStats>,
    seen_up_to: i64,
    pending: BTreeSet<i64>,
    holes: Holes,
}

impl RunTally {
    /// Nothing read yet.
    pub fn new(source: RunSource) -> RunTally {
        RunTally {
            source,
            stats: BTreeMap::new(),
            seen_up_to: 0,
            pending: BTreeSet::new(),
            holes: Holes::default(),
        }
    }

    /// What it counts.
    pub fn source(&self) -> RunSource {
        self.source
    }

    /// The finished runs per plan, as of the last refresh.
    pub fn stats(&self) -> &BTreeMap<String, RunStats> {
        &self.stats
    }

    /// Reads what finished since the last refresh.
    pub async fn refresh(&mut self, cat: &Catalog) -> Result<(), CatalogError> {
        let (table, scope, _, _) = self.source.table();
        // One snapshot: a row that finishes meanwhile is counted once
        // (PostgreSQL's default gives each statement its own).
        let sqlite = cat.is_sqlite();
        on_pool!(cat, |db| {
            // One snapshot: a row that finishes meanwhile is counted once.
            let mut tx = db.begin().await?;
            if !sqlite {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .execute(&mut *tx)
                    .await?;
            }
            let newest: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(id) FROM {table}"))
                .fetch_one(&mut *tx)
                .await?;
            let newest = newest.unwrap_or(0);
            let after = self.seen_up_to;
            if newest > self.seen_up_to {
                let found =
                    run_stats_between!(&mut *tx, self.source, self.seen_up_to, newest).await?;
                let running: Vec<i64> = sqlx::query_scalar(&format!(
                    "SELECT id FROM {table} WHERE id > $1 AND id <= $2 AND {scope} AND status = 'running'"
                ))
                .bind(self.seen_up_to)
                .bind(newest)
                .fetch_all(&mut *tx)
                .await?;
                for (plan, stats) in found {
                    self.stats.entry(plan).or_default().merge(stats);
                }
                self.pending.extend(running);
                self.seen_up_to = newest;
            }
            look_for_late_rows!(&mut *tx, table, sqlite, self, after, newest).await?;
            let pending: Vec<i64> = self.pending.iter().copied().collect();
            for id in pending {
                let status: Option<String> =
                    sqlx::query_scalar(&format!("SELECT status FROM {table} WHERE id = $1"))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if status.as_deref() == Some("running") {
                    continue;
                }
                for (plan, stats) in run_stats_between!(&mut *tx, self.source, id - 1, id).await? {
                    self.stats.entry(plan).or_default().merge(stats);
                }
                self.pending.remove(&id);
            }
            tx.commit().await?;
            Ok::<(), CatalogError>(())
        })
    }
}

/// A point as [`WrittenBytes`] reads it: plan, region, status,
/// `completed_at`, `size_bytes`.
type PointRow = (String, String, String, Option<Millis>, Option<i64>);

/// Bytes of every point ever completed, per plan and region, kept up to
/// date incrementally: a refresh reads only the points added since the
/// last one and those that were still running then, so a scrape costs the
/// same on a catalog of ten million points as on a new one.
#[derive(Debug, Default)]
pub struct WrittenBytes {
    totals: BTreeMap<(String, String), u64>,
    /// Every point with a lower or equal id has been looked at.
    seen_up_to: i64,
    /// Points looked at while running: counted once they complete.
    pending: BTreeSet<i64>,
    holes: Holes,
}

impl WrittenBytes {
    /// The totals, by (plan, region).
    pub fn totals(&self) -> &BTreeMap<(String, String), u64> {
        &self.totals
    }

    /// Reads what changed since the last refresh: the first one sums the
    /// whole table in one grouped pass, later ones only the new rows.
    pub async fn refresh(&mut self, cat: &Catalog) -> Result<(), CatalogError> {
        // One read transaction: the sums and the running points come from
        // one snapshot, so a point completing meanwhile is counted once.
        let sqlite = cat.is_sqlite();
        on_pool!(cat, |db| {
            let mut tx = db.begin().await?;
            if !sqlite {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .execute(&mut *tx)
                    .await?;
            }
            let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM points")
                .fetch_one(&mut *tx)
                .await?;
            let newest = newest.unwrap_or(0);
            let after = self.seen_up_to;
            if newest > self.seen_up_to {
                let sums: Vec<(String, String, f64)> = sqlx::query_as(
                    "SELECT plan, region, CAST(COALESCE(SUM(size_bytes), 0) AS DOUBLE PRECISION) FROM points
                     WHERE id > $1 AND id <= $2 AND completed_at IS NOT NULL GROUP BY plan, region",
                )
                .bind(self.seen_up_to)
                .bind(newest)
                .fetch_all(&mut *tx)
                .await?;
                let running: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM points WHERE id > $1 AND id <= $2 AND completed_at IS NULL
                       AND status = 'running'",
                )
                .bind(self.seen_up_to)
                .bind(newest)
                .fetch_all(&mut *tx)
                .await?;
                for (plan, region, bytes) in sums {
                    self.add(plan, region, bytes as u64);
                }
                self.pending.extend(running);
                self.seen_up_to = newest;
            }
            look_for_late_rows!(&mut *tx, "points", sqlite, self, after, newest).await?;
            tx.commit().await?;
            Ok::<(), CatalogError>(())
        })?;
        let pending: Vec<i64> = self.pending.iter().copied().collect();
        for id in pending {
            let row: Option<PointRow> = on_pool!(cat, |db| {
                sqlx::query_as(
                "SELECT plan, region, status, completed_at, size_bytes FROM points WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await
            })?;
            match row {
                Some((plan, region, _, Some(_), size)) => {
                    self.add(plan, region, u64::try_from(size.unwrap_or(0)).unwrap_or(0));
                    self.pending.remove(&id);
                }
                Some((_, _, status, None, _)) if status == "running" => {}
                _ => {
                    self.pending.remove(&id);
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, plan: String, region: String, size: u64) {
        *self.totals.entry((plan, region)).or_default() += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn catalog(dir: &tempfile::TempDir) -> Catalog {
        crate::catalog::testing::open(dir.path()).await
    }

    async fn exec(cat: &Catalog, sql: &str) {
        cat.execute(sql).await.unwrap();
    }

    #[tokio::test]
    async fn run_stats_count_every_finished_run_whoever_ran_it() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(&dir).await;
        // Two backups by hand, one by the daemon; one still running.
        exec(
            &cat,
            "INSERT INTO backup_runs (plan, trigger, started_at, finished_at, status) VALUES
               ('shop', 'manual', 0, 2000, 'succeeded'),
               ('shop', 'manual', 10000, 70000, 'failed'),
               ('shop', 'schedule', 100000, 100500, 'succeeded'),
               ('shop', 'schedule', 200000, NULL, 'running')",
        )
        .await;
        let stats = cat.run_stats(RunSource::Backup).await.unwrap();
        let shop = &stats["shop"];
        assert_eq!(shop.count(), 3);
        assert_eq!(shop.by_status["succeeded"], 2);
        assert_eq!(shop.by_status["failed"], 1);
        assert!(!shop.by_status.contains_key("running"));
        // 0.5 s, 2 s, 60 s against 1, 5, 15, 30, 60, ... s.
        assert_eq!(&shop.buckets[..6], &[1, 2, 2, 2, 3, 3]);
        assert_eq!(shop.buckets.len(), DURATION_BUCKETS.len());
        assert_eq!(shop.duration_sum_seconds, 62.5);
        assert_eq!(shop.last_success, Some(100500));

        // Drills: a failed one only, so no success yet.
        exec(
            &cat,
            "INSERT INTO drills (plan, region, trigger, status, started_at, finished_at, rto_objective_ms, rpo_objective_ms)
               VALUES ('shop', 'dr', 'manual', 'failed', 0, 4000, 1, 1)",
        )
        .await;
        let drills = cat.run_stats(RunSource::Drill).await.unwrap();
        assert_eq!(drills["shop"].by_status["failed"], 1);
        assert_eq!(drills["shop"].last_success, None);
        assert!(cat.run_stats(RunSource::Prune).await.unwrap().is_empty());

        // Read incrementally, the same counts; a run that finishes later is
        // counted once it does, and only once.
        let mut tally = RunTally::new(RunSource::Backup);
        tally.refresh(&cat).await.unwrap();
        assert_eq!(tally.stats(), &stats);
        exec(
            &cat,
            "UPDATE backup_runs SET status = 'succeeded', finished_at = 201000 WHERE status = 'running'",
        )
        .await;
        exec(
            &cat,
            "INSERT INTO backup_runs (plan, trigger, started_at, finished_at, status)
               VALUES ('web', 'manual', 0, 1000, 'failed')",
        )
        .await;
        tally.refresh(&cat).await.unwrap();
        tally.refresh(&cat).await.unwrap();
        assert_eq!(
            tally.stats(),
            &cat.run_stats(RunSource::Backup).await.unwrap()
        );
        assert_eq!(tally.stats()["shop"].by_status["succeeded"], 3);
        assert_eq!(tally.stats()["shop"].last_success, Some(201000));
        assert_eq!(tally.stats()["web"].count(), 1);
        assert!(tally.pending.is_empty());
    }

    #[tokio::test]
    async fn a_run_committed_after_a_higher_id_was_read_is_still_counted() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(&dir).await;
        let crate::catalog::Pool::Postgres(pool) = &cat.pool else {
            // SQLite has one writer: ids become visible in order.
            eprintln!("PostgreSQL only (LIFEBOAT_TEST_CATALOG=postgres)");
            return;
        };
        let insert = "INSERT INTO backup_runs (plan, trigger, started_at, finished_at, status)
                      VALUES ('shop', 'manual', 0, 1000, 'succeeded')";
        // A writer takes an id and has not committed when a higher one is
        // committed and read.
        let mut slow = pool.begin().await.unwrap();
        sqlx::query(insert).execute(&mut *slow).await.unwrap();
        exec(&cat, insert).await;
        let mut tally = RunTally::new(RunSource::Backup);
        tally.refresh(&cat).await.unwrap();
        assert_eq!(tally.stats()["shop"].count(), 1);
        slow.commit().await.unwrap();
        tally.refresh(&cat).await.unwrap();
        assert_eq!(tally.stats()["shop"].count(), 2);
        assert_eq!(
            tally.stats(),
            &cat.run_stats(RunSource::Backup).await.unwrap()
        );
        // Counted once.
        tally.refresh(&cat).await.unwrap();
        assert_eq!(tally.stats()["shop"].count(), 2);

        // The same for the bytes of points (inserted running, as backups
        // do: a completed insert would wait on the exposure epoch's lock).
        let point =
            "INSERT INTO points (plan, resource, kind, region, status, started_at, size_bytes)
                     VALUES ('shop', 'files', 'path', 'dr', 'running', 0, 100) RETURNING id";
        let complete = |id: i64| {
            format!("UPDATE points SET status = 'complete', completed_at = 1000 WHERE id = {id}")
        };
        let mut slow = pool.begin().await.unwrap();
        let late: i64 = sqlx::query_scalar(point)
            .fetch_one(&mut *slow)
            .await
            .unwrap();
        let early = cat.query_i64(point).await.unwrap().unwrap();
        assert!(early > late);
        exec(&cat, &complete(early)).await;
        let mut written = WrittenBytes::default();
        written.refresh(&cat).await.unwrap();
        let key = ("shop".to_string(), "dr".to_string());
        assert_eq!(written.totals()[&key], 100);
        slow.commit().await.unwrap();
        written.refresh(&cat).await.unwrap();
        exec(&cat, &complete(late)).await;
        written.refresh(&cat).await.unwrap();
        written.refresh(&cat).await.unwrap();
        assert_eq!(written.totals()[&key], 200);
    }

    #[tokio::test]
    async fn written_bytes_follow_points_as_they_complete_without_rereading_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(&dir).await;
        let point = |region: &str, status: &str, completed: &str, size: i64| {
            format!(
                "INSERT INTO points (plan, resource, kind, region, status, started_at, completed_at, size_bytes)
                 VALUES ('shop', 'files', 'path', '{region}', '{status}', 0, {completed}, {size})"
            )
        };
        exec(&cat, &point("primary", "complete", "1", 100)).await;
        exec(&cat, &point("primary", "deleted", "1", 20)).await;
        exec(&cat, &point("primary", "failed", "NULL", 999)).await;
        exec(&cat, &point("dr", "running", "NULL", 0)).await;
        let mut w = WrittenBytes::default();
        w.refresh(&cat).await.unwrap();
        let total = |w: &WrittenBytes, region: &str| {
            w.totals()
                .get(&("shop".to_string(), region.to_string()))
                .copied()
        };
        assert_eq!(total(&w, "primary"), Some(120));
        assert_eq!(total(&w, "dr"), None);
        // The running copy completes; a new point arrives.
        exec(
            &cat,
            "UPDATE points SET status = 'complete', completed_at = 5, size_bytes = 70 WHERE region = 'dr'",
        )
        .await;
        exec(&cat, &point("primary", "complete", "6", 5)).await;
        w.refresh(&cat).await.unwrap();
        assert_eq!(total(&w, "primary"), Some(125));
        assert_eq!(total(&w, "dr"), Some(70));
        assert!(w.pending.is_empty());
        // Nothing new: nothing counted twice.
        w.refresh(&cat).await.unwrap();
        assert_eq!(total(&w, "primary"), Some(125));
    }
}
