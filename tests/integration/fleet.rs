//! Three daemon processes on one PostgreSQL catalog (`daemon --fleet`,
//! docs/fleet.md): every plan has one owner, a `kill -9`ed daemon's plans
//! are taken over within about the lease time and keep their schedule, no
//! slot runs twice, and a graceful stop hands the plans back at once. How
//! plans spread over daemons is tested in `src/daemon/fleet.rs`.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::*;
use crate::daemon::{wait_for, Daemon};
use crate::pg;

/// Short, for a quick test, but not so short that a daemon slowed down by
/// a busy machine misses its renewals.
const LEASE_S: i64 = 5;

/// The daemons (each killed if dropped running: a test that fails
/// half-way leaves none behind).
struct Fleet(Vec<Option<Daemon>>);

impl Fleet {
    /// The daemon whose process is `pid`, taken out of the fleet.
    fn take(&mut self, pid: u32) -> Daemon {
        let slot = self
            .0
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.child.id() == pid))
            .expect("the daemon is one of ours");
        self.0[slot].take().unwrap()
    }

    /// SIGTERM to every daemon left; each must exit 0.
    fn stop_all(&mut self) {
        for d in self.0.iter_mut() {
            if let Some(d) = d.take() {
                let (code, _) = d.stop();
                assert_eq!(code, 0);
            }
        }
    }
}

/// A fleet needs a PostgreSQL catalog, whatever catalog this run uses.
fn on_postgres(env: &mut Env) {
    if env.pg_catalog.is_none() {
        let db = format!("lifeboat_fleet_{:08x}", rand::random::<u32>());
        pg::server().admin_sql(
            "postgres",
            &format!("CREATE DATABASE {db} OWNER {}", pg::USER),
        );
        env.pg_catalog = Some(db);
    }
}

/// Daemon `n` of the fleet, with `labels`; job leases as short as the
/// fleet's so that a killed daemon's jobs are cleaned up quickly.
fn start(env: &Env, n: usize, labels: &str) -> Daemon {
    let lease = format!("{LEASE_S}s");
    let mut args = vec!["--fleet", "--fleet-lease", &lease];
    if !labels.is_empty() {
        args.extend(["--labels", labels]);
    }
    Daemon::start_logging_to(
        env,
        &args,
        &[("LIFEBOAT_LEASE_TTL", &lease)],
        &format!("daemon-{n}.log"),
    )
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

/// The live daemons: id and labels.
fn live(env: &Env) -> Vec<(String, String)> {
    env.sql(&format!(
        "SELECT id, labels FROM daemons WHERE expires_at > {} ORDER BY id",
        now_ms()
    ))
    .lines()
    .map(|l| match l.split_once('|') {
        Some((id, labels)) => (id.to_string(), labels.to_string()),
        None => (l.to_string(), String::new()),
    })
    .collect()
}

fn pid_of(env: &Env, daemon: &str) -> u32 {
    env.sql(&format!("SELECT pid FROM daemons WHERE id = '{daemon}'"))
        .parse()
        .unwrap()
}

/// Who should own `plan` (docs/fleet.md), computed here independently:
/// of the live daemons carrying every label of `required`, the one with
/// the highest first 8 bytes (big-endian) of SHA-256(plan NUL id), ties
/// to the lowest id.
fn rendezvous(plan: &str, required: &[&str], live: &[(String, String)]) -> Option<String> {
    live.iter()
        .filter(|(_, labels)| required.iter().all(|r| labels.split(',').any(|l| l == *r)))
        .map(|(id, _)| {
            let digest = Sha256::new()
                .chain_update(plan.as_bytes())
                .chain_update([0])
                .chain_update(id.as_bytes())
                .finalize();
            let weight = u64::from_be_bytes(digest[..8].try_into().unwrap());
            (weight, std::cmp::Reverse(id.clone()))
        })
        .max()
        .map(|(_, id)| id.0)
}

/// What the daemons' logs say, for a failure message.
fn logs(env: &Env, n: usize) -> String {
    (0..n)
        .map(|i| std::fs::read_to_string(env.path(&format!("daemon-{i}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// `lifeboat fleet --json`, parsed, and its exit code with `--check`.
fn fleet_view(env: &Env) -> (serde_json::Value, Option<i32>) {
    let out = env.command(&["fleet", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let view = serde_json::from_slice(&out.stdout).unwrap();
    let check = env.command(&["fleet", "--check"]).output().unwrap();
    (view, check.status.code())
}

/// Plans with a fast schedule, one file each.
fn write_plans(env: &Env, names: &[&str], placement: &str) {
    for name in names {
        let text = local_plan(name, &env.path("data"), &env.path("vaults"), "").replace(
            "schedule = \"*/15 * * * *\"",
            "schedule = \"*/3 * * * * *\"\njitter = \"0s\"\nstart_window = \"5s\"",
        );
        let text = format!("{placement}{text}");
        env.write_plan(&format!("{name}.toml"), &text);
    }
}

#[test]
fn a_killed_daemons_plans_move_within_the_lease_time_and_no_slot_runs_twice() {
    let mut env = Env::new();
    on_postgres(&mut env);
    env.seed(20);
    let plans = ["alpha", "bravo", "charlie", "delta"];
    write_plans(&env, &plans, "");
    let mut fleet = Fleet((0..3).map(|n| Some(start(&env, n, ""))).collect());

    let deadline = Instant::now() + Duration::from_secs(60);
    while !(live(&env).len() == 3 && owners(&env).len() == plans.len()) {
        assert!(
            Instant::now() < deadline,
            "no fleet of three owning every plan:\n{}",
            logs(&env, 3)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each plan where rendezvous hashing puts it, as `fleet` shows.
    let three = live(&env);
    for (plan, owner) in owners(&env) {
        assert_eq!(Some(owner), rendezvous(&plan, &[], &three), "{plan}");
    }
    let (view, check) = fleet_view(&env);
    assert_eq!(check, Some(0), "{view}");
    assert_eq!(view["daemons"].as_array().unwrap().len(), 3, "{view}");
    let listed: usize = view["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["live"], true, "{d}");
            d["plans"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(listed, plans.len(), "{view}");
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
    let victim = owners(&env)
        .into_iter()
        .find(|(p, _)| p == "alpha")
        .expect("alpha is owned")
        .1;
    fleet.take(pid_of(&env, &victim)).kill9();
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
    let two = live(&env);
    assert_eq!(two.len(), 2);
    for (plan, owner) in owners(&env) {
        assert_eq!(Some(owner), rendezvous(&plan, &[], &two), "{plan}");
    }
    // `fleet` shows the dead daemon as dead, owning nothing.
    let (view, check) = fleet_view(&env);
    assert_eq!(check, Some(0), "{view}");
    let dead = view["daemons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == victim.as_str())
        .expect("the dead daemon is listed");
    assert_eq!(dead["live"], false, "{dead}");
    assert_eq!(dead["plans"].as_array().unwrap().len(), 0, "{dead}");
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

    // None was lost: between a plan's first and last slot, every slot of
    // its 3 s schedule has a job (run, or recorded missed by a new owner).
    for plan in plans {
        let slots: Vec<i64> = env
            .sql(&format!(
                "SELECT slot FROM jobs WHERE plan = '{plan}' AND kind = 'backup' ORDER BY slot"
            ))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert!(slots.len() > 3, "{plan}: {slots:?}");
        for pair in slots.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                3000,
                "{plan}: a slot lost or doubled in {slots:?}"
            );
        }
    }

    // A graceful stop hands the plans back and leaves the fleet.
    fleet.stop_all();
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
    let (view, check) = fleet_view(&env);
    assert_eq!(check, Some(1), "no plan has an owner any more: {view}");
}

#[test]
fn a_joining_daemon_takes_its_share_and_a_pinned_plan_stays_on_its_host() {
    let mut env = Env::new();
    on_postgres(&mut env);
    env.seed(5);
    let plans = [
        "p01", "p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09", "p10",
    ];
    write_plans(&env, &plans, "");
    write_plans(&env, &["pinned"], "placement = { labels = [\"host-a\"] }\n");
    let mut fleet = Fleet(vec![
        Some(start(&env, 0, "host-a,ssd")),
        Some(start(&env, 1, "")),
    ]);
    let everything = plans.len() + 1;

    // Settled: every plan owned where rendezvous hashing puts it.
    let settled = |env: &Env, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let daemons = live(env);
            let now = owners(env);
            let expected: Vec<(String, String)> = plans
                .iter()
                .map(|p| (p.to_string(), rendezvous(p, &[], &daemons)))
                .chain([(
                    "pinned".to_string(),
                    rendezvous("pinned", &["host-a"], &daemons),
                )])
                .filter_map(|(p, o)| o.map(|o| (p, o)))
                .collect();
            let mut expected = expected;
            expected.sort();
            if daemons.len() == n && now.len() == everything && now == expected {
                return (daemons, now);
            }
            assert!(
                Instant::now() < deadline,
                "no settled fleet of {n}: owners {now:?}, expected {expected:?}\n{}",
                logs(env, 3)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let (two, before) = settled(&env, 2);
    // Both loaded the same plans, and say so.
    wait_for("both daemons' digests", Duration::from_secs(30), || {
        let (view, _) = fleet_view(&env);
        view["plans_differ"] == false
            && view["daemons"].as_array().unwrap().iter().all(|d| {
                d["plans_loaded"] == everything && d["plans_digest"].as_str().unwrap().len() == 16
            })
    });
    let host_a = &two.iter().find(|(_, l)| l.contains("host-a")).unwrap().0;
    let pinned_owner = |owners: &[(String, String)]| {
        owners
            .iter()
            .find(|(p, _)| p == "pinned")
            .map(|(_, o)| o.clone())
    };
    assert_eq!(pinned_owner(&before).as_ref(), Some(host_a));

    // A third daemon joins: it takes exactly its share, and only the plans
    // it takes move.
    fleet.0.push(Some(start(&env, 2, "")));
    let (three, after) = settled(&env, 3);
    let joiner = three
        .iter()
        .find(|(id, _)| !two.iter().any(|(old, _)| old == id))
        .unwrap()
        .0
        .clone();
    let taken: Vec<&String> = after
        .iter()
        .filter(|(_, o)| o == &joiner)
        .map(|(p, _)| p)
        .collect();
    for ((plan, was), (_, is)) in before.iter().zip(&after) {
        assert!(
            is == was || is == &joiner,
            "{plan} moved from {was} to {is}, not to the joiner"
        );
    }
    assert_eq!(pinned_owner(&after).as_ref(), Some(host_a));
    eprintln!("the joiner took {} of {} plans", taken.len(), everything);

    // The pinned plan's host dies: no other daemon may take it, and
    // `fleet --check` says so.
    fleet.take(pid_of(&env, host_a)).kill9();
    wait_for(
        "the pinned plan without owner and the others taken over",
        Duration::from_secs(4 * LEASE_S as u64),
        || {
            let now = owners(&env);
            pinned_owner(&now).is_none() && now.len() == plans.len()
        },
    );
    let (view, check) = fleet_view(&env);
    assert_eq!(check, Some(1), "{view}");
    let pinned = view["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == "pinned")
        .unwrap();
    assert_eq!(pinned["owner"], serde_json::Value::Null, "{pinned}");
    assert_eq!(
        pinned["problem"], "no live daemon carries the labels host-a",
        "{pinned}"
    );
    let text = env.command(&["fleet"]).output().unwrap();
    eprintln!("{}", stdout(&text));
    assert!(
        stdout(&text).contains("no live daemon carries the labels host-a"),
        "{}",
        stdout(&text)
    );

    // Its host comes back: the plan returns to it.
    fleet.0.push(Some(start(&env, 3, "host-a")));
    wait_for(
        "the pinned plan back on host-a",
        Duration::from_secs(4 * LEASE_S as u64),
        || pinned_owner(&owners(&env)).is_some(),
    );
    let back = pinned_owner(&owners(&env)).unwrap();
    assert!(live(&env)
        .iter()
        .any(|(id, l)| id == &back && l == "host-a"));
    fleet.stop_all();
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
    // `fleet` on it says why there is no fleet; `--check` is bad input.
    let fleet_on_sqlite = |check: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--catalog")
            .arg(dir.path().join("lifeboat.db"))
            .arg("--plans")
            .arg(dir.path().join("plans"))
            .arg("fleet")
            .env_remove("LIFEBOAT_CATALOG");
        if check {
            cmd.arg("--check");
        }
        cmd.output().unwrap()
    };
    let out = fleet_on_sqlite(false);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("a fleet needs a catalog on PostgreSQL"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fleet_on_sqlite(true).status.code(), Some(2));

    // A fleet daemon runs: a daemon without --fleet is refused, naming it.
    let mut env = Env::new();
    on_postgres(&mut env);
    let mut fleet = Fleet(vec![Some(start(&env, 0, ""))]);
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
    // Labels are checked as the plans' are.
    let out = env
        .command(&[
            "daemon",
            "--fleet",
            "--labels",
            "Host A",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--labels: `Host A` must be"),
        "{}",
        stderr(&out)
    );
    // Metrics say what the daemon owns.
    let d = fleet.0[0].as_ref().unwrap();
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    for family in [
        "lifeboat_fleet_owned_plans{daemon=",
        "lifeboat_fleet_live_daemons{daemon=",
        "lifeboat_fleet_rounds_total{daemon=",
        "lifeboat_fleet_last_round_timestamp_seconds{daemon=",
    ] {
        assert!(metrics.contains(family), "{family} missing:\n{metrics}");
    }
    let ok_rounds: f64 = metrics
        .lines()
        .find(|l| l.starts_with("lifeboat_fleet_rounds_total{") && l.contains("outcome=\"ok\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(ok_rounds >= 1.0, "no round counted:\n{metrics}");
    fleet.stop_all();
}
