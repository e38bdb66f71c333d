//! Leases against a real catalog: taken once, renewed, released, taken
//! over when expired or when their holder is a dead process of this node.

use std::time::{Duration, Instant};

use super::*;

async fn catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let cat = crate::catalog::testing::open(dir.path()).await;
    (dir, cat)
}

const TTL: Duration = Duration::from_secs(60);

/// Writes a lease row as another holder would: `node` and `pid` say who,
/// `expires_in` (ms, negative: expired) until when.
async fn held_by(cat: &Catalog, kind: &str, node: &str, pid: i64, expires_in: Millis) {
    let now = now_ms();
    let taken = cat
        .take_lease(
            &NewLease {
                plan: "shop",
                kind,
                owner: "someone-else",
                pid,
                host: "elsewhere",
                node,
                now: now - 120_000,
                expires_at: now + expires_in,
            },
            None,
        )
        .await
        .unwrap();
    assert!(taken);
}

async fn row(cat: &Catalog, kind: &str) -> Option<LeaseRecord> {
    cat.lease("shop", kind).await.unwrap()
}

#[tokio::test]
async fn a_lease_excludes_until_released_and_names_its_holder() {
    let (_dir, cat) = catalog().await;
    let lease = Lease::acquire_for(&cat, "shop", BACKUP, TTL).await.unwrap();
    let held = row(&cat, BACKUP).await.unwrap();
    let me = process::me();
    assert_eq!(
        (held.pid, &held.host, &held.node),
        (me.pid, &me.host, &me.node)
    );
    assert_eq!(held.expires_at - held.acquired_at, 60_000);
    // Another task of this process is refused, and told who holds it.
    let e = Lease::acquire_for(&cat, "shop", BACKUP, TTL)
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Busy { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "a backup of plan `shop` is already running on host {} (pid {}, since {}, heartbeat ",
            me.host,
            me.pid,
            rfc3339(held.acquired_at)
        )),
        "{text}"
    );
    // Ours: judged by its pid, not by when it expires.
    assert!(!text.contains("expires"), "{text}");
    // Other kinds and plans are other leases.
    let drill = Lease::acquire_for(&cat, "shop", DRILL, TTL).await.unwrap();
    let other = Lease::acquire_for(&cat, "blog", BACKUP, TTL).await.unwrap();
    lease.release().await;
    assert!(row(&cat, BACKUP).await.is_none());
    let again = Lease::acquire_for(&cat, "shop", BACKUP, TTL).await.unwrap();
    let kinds: Vec<(String, String)> = cat
        .leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.plan, l.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("blog".into(), "backup".into()),
            ("shop".into(), "backup".into()),
            ("shop".into(), "drill".into())
        ]
    );
    for l in [drill, other, again] {
        l.release().await;
    }
    assert!(cat.leases().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dropped_lease_is_released_and_free_at_once_in_this_process() {
    let (_dir, cat) = catalog().await;
    let lease = Lease::acquire_for(&cat, "shop", BACKUP, TTL).await.unwrap();
    drop(lease);
    // Its release may not have reached the catalog yet: the row is ours
    // and no live lease has its token, so it is taken over.
    let again = Lease::acquire_for(&cat, "shop", BACKUP, TTL).await.unwrap();
    drop(again);
    settle().await;
    assert!(row(&cat, BACKUP).await.is_none());
}

#[tokio::test]
async fn the_heartbeat_renews_and_a_lost_lease_says_so() {
    let (_dir, cat) = catalog().await;
    let ttl = Duration::from_millis(600);
    let lease = Lease::acquire_for(&cat, "shop", BACKUP, ttl).await.unwrap();
    let first = row(&cat, BACKUP).await.unwrap();
    // Two beats (every 200 ms) later, still ours, heartbeat moved on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let renewed = row(&cat, BACKUP).await.unwrap();
    assert_eq!(renewed.owner, first.owner);
    assert!(
        renewed.heartbeat_at >= first.heartbeat_at + 150,
        "{renewed:?}"
    );
    assert_eq!(renewed.expires_at - renewed.heartbeat_at, 600);
    assert!(!lease.lost().is_cancelled());
    // Someone took it (as after an expiry): the next beat notices.
    cat.execute("UPDATE leases SET owner = 'thief'")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), lease.lost().cancelled())
        .await
        .expect("the lost lease is noticed within a beat");
    // Releasing a lost lease leaves the new holder's row alone.
    lease.release().await;
    assert_eq!(row(&cat, BACKUP).await.unwrap().owner, "thief");
}

#[tokio::test]
async fn another_hosts_lease_is_taken_only_once_expired() {
    let (_dir, cat) = catalog().await;
    held_by(&cat, BACKUP, "other-node", 1, 30_000).await;
    let e = Lease::acquire_for(&cat, "shop", BACKUP, TTL)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(
            "a backup of plan `shop` is already running on host elsewhere (pid 1, since "
        ),
        "{text}"
    );
    assert!(text.contains("heartbeat 2m ago"), "{text}");
    assert!(
        text.ends_with("if that process is gone, its lease expires in 30s")
            || text.ends_with("if that process is gone, its lease expires in 29s"),
        "{text}"
    );
    // Expired a moment ago: taken over, whatever its host.
    cat.release_lease("shop", BACKUP, "someone-else")
        .await
        .unwrap();
    held_by(&cat, BACKUP, "other-node", 1, -1).await;
    let lease = Lease::acquire_for(&cat, "shop", BACKUP, TTL).await.unwrap();
    assert_eq!(row(&cat, BACKUP).await.unwrap().pid, process::me().pid);
    lease.release().await;
}

#[tokio::test]
async fn a_dead_process_of_this_node_loses_its_lease_at_once() {
    let (_dir, cat) = catalog().await;
    let node = process::me().node.clone();
    // Alive (a child still sleeping): busy, though on this node.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    held_by(&cat, DRILL, &node, i64::from(sleeper.id()), 30_000).await;
    let e = Lease::acquire_for(&cat, "shop", DRILL, TTL)
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::Busy { .. }), "{e}");
    // Killed (kill -9) and reaped: its lease is taken over long before it
    // would expire.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let started = Instant::now();
    let lease = Lease::acquire_for(&cat, "shop", DRILL, TTL).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let held = row(&cat, DRILL).await.unwrap();
    assert_eq!(held.pid, process::me().pid);
    assert_ne!(held.owner, "someone-else");
    lease.release().await;
    // The same pid on another node is not judged: busy until it expires.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = i64::from(gone.id());
    gone.wait().unwrap();
    held_by(&cat, DRILL, "other-node", pid, 30_000).await;
    assert!(Lease::acquire_for(&cat, "shop", DRILL, TTL).await.is_err());
}

#[test]
fn the_time_to_live_is_a_duration_of_a_second_or_more() {
    assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_ttl(" 5m ").unwrap(), Duration::from_secs(300));
    for bad in ["500ms", "soon", "", "0s"] {
        let e = parse_ttl(bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("LIFEBOAT_LEASE_TTL `{bad}` is not a duration of at least 1s (e.g. 60s, 5m)")
        );
    }
}
