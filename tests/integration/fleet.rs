//! Three daemon processes on one PostgreSQL catalog (`daemon --fleet`,
//! docs/fleet.md): every plan has one owner, a `kill -9`ed daemon's plans
//! are taken over within about the lease time and keep their schedule, no
//! slot runs twice, and a graceful stop hands the plans back at once. How
//! plans spread over daemons is tested in `src/daemon/fleet.rs`.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::daemon::wait_for;
use crate::pg;

/// Short, for a quick test, but not so short that a daemon slowed down by
/// a busy machine misses its renewals.
const LEASE_S: i64 = 5;

/// The daemons, killed if the test fails half-way.
struct Fleet(Vec<Option<Child>>);

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in self.0.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(env: &Env, n: usize) -> Child {
    let log = std::fs::File::create(env.path(&format!("daemon-{n}.log"))).unwrap();
    env.command(&[
        "daemon",
        "--fleet",
        "--fleet-lease",
        &format!("{LEASE_S}s"),
        "--listen",
        "127.0.0.1:0",
        "--grace",
        "20s",
    ])
    .env("LIFEBOAT_LEASE_TTL", format!("{LEASE_S}s"))
    .stdout(Stdio::null())
    .stderr(Stdio::from(log))
    .spawn()
    .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The owner (daemon id) of each plan whose ownership is live.
fn owners(env: &Env) -> Vec<(String, String)> {
    env.sql(&format!(
        "SELECT plan, owner FROM leases WHERE kind = 'owner' AND expires_at > {} ORDER BY plan",
        now_ms()
    ))
    .lines()
    .filter_map(|l| l.split_once('|'))
    .map(|(p, o)| (p.to_string(), o.to_string()))
    .collect()
}

fn pid_of(env: &Env, daemon: &str) -> u32 {
    env.sql(&format!("SELECT pid FROM daemons WHERE id = '{daemon}'"))
        .parse()
        .unwrap()
}

#[test]
fn a_killed_daemons_plans_move_within_the_lease_time_and_no_slot_runs_twice() {
    let mut env = Env::new();
    if env.pg_catalog.is_none() {
        // A fleet needs a PostgreSQL catalog, whatever this run uses.
        let db = format!("lifeboat_fleet_{:08x}", rand::random::<u32>());
        pg::server().admin_sql(
            "postgres",
            &format!("CREATE DATABASE {db} OWNER {}", pg::USER),
        );
        env.pg_catalog = Some(db);
    }
    env.seed(20);
    let plans = ["alpha", "bravo", "charlie", "delta"];
    for name in plans {
        let text = local_plan(name, &env.path("data"), &env.path("vaults"), "").replace(
            "schedule = \"*/15 * * * *\"",
            "schedule = \"*/3 * * * * *\"\njitter = \"0s\"\nstart_window = \"5s\"",
        );
        env.write_plan(&format!("{name}.toml"), &text);
    }
    let mut fleet = Fleet((0..3).map(|n| Some(start(&env, n))).collect());
    let state = |env: &Env| {
        format!(
            "now {}\ndaemons:\n{}\nleases:\n{}\nlogs:\n{}",
            now_ms(),
            env.sql("SELECT id, pid, heartbeat_at, expires_at FROM daemons"),
            env.sql("SELECT plan, kind, owner, expires_at FROM leases"),
            (0..3)
                .map(
                    |n| std::fs::read_to_string(env.path(&format!("daemon-{n}.log")))
                        .unwrap_or_default()
                )
                .collect::<Vec<_>>()
                .join("\n---\n")
        )
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    while !(env.catalog_exists()
        && env.sql(&format!(
            "SELECT count(*) FROM daemons WHERE expires_at > {}",
            now_ms()
        )) == "3"
        && owners(&env).len() == plans.len())
    {
        assert!(
            Instant::now() < deadline,
            "no fleet of three owning every plan:\n{}",
            state(&env)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(
        "a scheduled backup of every plan",
        Duration::from_secs(60),
        || {
            env.sql(
            "SELECT count(DISTINCT plan) FROM backup_runs WHERE trigger = 'schedule' AND status = 'succeeded'",
        ) == "4"
        },
    );

    // kill -9 the owner of `alpha`.
    let mut victim = String::new();
    wait_for("alpha's owner", Duration::from_secs(30), || {
        match owners(&env).into_iter().find(|(p, _)| p == "alpha") {
            Some((_, o)) => {
                victim = o;
                true
            }
            None => false,
        }
    });
    let pid = pid_of(&env, &victim);
    let slot = fleet
        .0
        .iter()
        .position(|c| c.as_ref().is_some_and(|c| c.id() == pid))
        .expect("the owner is one of ours");
    let mut child = fleet.0[slot].take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let killed_ms = now_ms();
    let moved: Vec<String> = owners(&env)
        .into_iter()
        .filter(|(_, o)| o == &victim)
        .map(|(p, _)| p)
        .collect();

    // Every plan it owned is owned again, by a live daemon, within about
    // twice the lease time (its row and its leases expire, then the next
    // round of the others takes them).
    wait_for(
        "the killed daemon's plans taken over",
        Duration::from_secs(4 * LEASE_S as u64),
        || {
            let now = owners(&env);
            moved
                .iter()
                .all(|p| now.iter().any(|(q, o)| q == p && o != &victim))
        },
    );
    let took = killed.elapsed();
    eprintln!("takeover after kill -9: {took:?} (lease {LEASE_S} s)");
    assert!(
        took < Duration::from_secs(2 * LEASE_S as u64 + 2),
        "took {took:?}"
    );
    // Its plans keep being backed up on schedule.
    wait_for(
        "a scheduled backup of alpha after the takeover",
        Duration::from_secs(30),
        || {
            env.sql(&format!(
                "SELECT count(*) FROM backup_runs WHERE plan = 'alpha' AND trigger = 'schedule'
                   AND status = 'succeeded' AND started_at > {killed_ms}"
            )) != "0"
        },
    );
    // What the killed daemon left running is recorded as interrupted by
    // the new owners, once its jobs' leases expired.
    wait_for(
        "no job of the killed daemon left running",
        Duration::from_secs(30),
        || {
            env.sql(&format!(
                "SELECT count(*) FROM jobs WHERE status = 'running' AND started_at < {killed_ms}"
            )) == "0"
        },
    );

    // No slot ran twice, across all the daemons.
    assert_eq!(
        env.sql(
            "SELECT count(*) FROM (SELECT plan, slot FROM backup_runs WHERE slot IS NOT NULL
               GROUP BY plan, slot HAVING count(*) > 1) AS twice"
        ),
        "0"
    );

    // A graceful stop hands the plans back and leaves the fleet.
    for c in fleet.0.iter_mut() {
        if let Some(mut child) = c.take() {
            let ok = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(0));
        }
    }
    assert_eq!(
        env.sql("SELECT id FROM daemons"),
        victim,
        "only the killed daemon's row is left"
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT count(*) FROM leases WHERE kind = 'owner' AND owner != '{victim}'"
        )),
        "0"
    );
}

#[test]
fn a_fleet_needs_postgresql_and_a_single_daemon_never_starts_beside_one() {
    // On a SQLite file: refused, saying why.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plans")).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--catalog")
        .arg(dir.path().join("lifeboat.db"))
        .arg("--plans")
        .arg(dir.path().join("plans"))
        .args(["daemon", "--fleet", "--listen", "127.0.0.1:0"])
        .env_remove("LIFEBOAT_CATALOG")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--fleet needs a catalog on PostgreSQL"),
        "{}",
        stderr(&out)
    );

    // A fleet daemon runs: a daemon without --fleet is refused, naming it.
    let mut env = Env::new();
    if env.pg_catalog.is_none() {
        let db = format!("lifeboat_fleet_{:08x}", rand::random::<u32>());
        pg::server().admin_sql(
            "postgres",
            &format!("CREATE DATABASE {db} OWNER {}", pg::USER),
        );
        env.pg_catalog = Some(db);
    }
    let mut fleet = Fleet(vec![Some(start(&env, 0))]);
    wait_for(
        "the fleet daemon registered",
        Duration::from_secs(30),
        || env.catalog_exists() && env.sql("SELECT count(*) FROM daemons") == "1",
    );
    let out = env
        .command(&["daemon", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a fleet of 1 daemon(s)"),
        "{}",
        stderr(&out)
    );
    drop(fleet.0.pop());
}
