//! Exclusion through the catalog's leases: it holds whatever work folder or
//! catalog path spelling a process uses, and against another host's lease
//! until that lease expires. (A `kill -9`'d holder's lease is taken over
//! at once: `crash.rs` reruns right after killing.)

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::daemon::{daemon_plan, Daemon};

/// `lifeboat` on `env`'s plans with the catalog and work folder given.
fn command_with(env: &Env, catalog: &Path, work_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--catalog")
        .arg(catalog)
        .arg("--plans")
        .arg(env.plans())
        .arg("--work-dir")
        .arg(work_dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LIFEBOAT_CATALOG")
        .env_remove("LIFEBOAT_PLANS")
        .env_remove("LIFEBOAT_LEASE_TTL");
    if env.pg_catalog.is_some() {
        c = crate::pg::with_pg_env(c, crate::pg::PASSWORD);
    }
    c
}

/// Runs `c` to its end, failing the test if that takes over a minute (a
/// second daemon that was not refused would run forever).
fn output_within_a_minute(mut c: Command) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("still running after a minute: it was not refused");
        }
    }
}

/// Writes the `kind` lease of plan `shop` as a process of another host
/// would hold it: pid 4242, last heartbeat 3 s ago, expiring in
/// `expires_in` ms (negative: expired).
fn held_elsewhere(env: &Env, kind: &str, host: &str, expires_in: i64) {
    let now = now_ms();
    env.sql(&format!(
            "INSERT INTO leases (plan, kind, owner, pid, host, node, acquired_at, heartbeat_at, expires_at)
             VALUES ('shop', '{kind}', 'theirs', 4242, '{host}', 'node-of-{host}', {}, {}, {})",
            now - 600_000,
            now - 3_000,
            now + expires_in
        ),
    );
}

#[test]
fn two_backups_of_a_plan_with_different_work_folders_never_run_at_once() {
    let env = Env::new();
    env.seed(10);
    // Enough data that the first backup is still writing when the second
    // starts (as in crash.rs).
    let big = env.path("data/files/big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..6 {
        std::fs::write(
            big.join(format!("blob-{i}.bin")),
            pseudo_random(32 << 20, i),
        )
        .unwrap();
    }
    env.write_plan("shop.toml", &env.local_plan(""));
    let log = std::fs::File::create(env.path("first.log")).unwrap();
    let mut first = env
        .command(&["backup", "run", "shop", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let vault = env.path("vaults/primary/shop/files");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let writing = std::fs::read_dir(&vault)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            })
            .unwrap_or(false);
        if writing {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backup never started writing"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first backup finished before the second could start; make the data bigger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Same plan, same catalog, another work folder: refused, naming the
    // first one.
    let second = output_within_a_minute(command_with(
        &env,
        &env.catalog(),
        &env.path("other-work"),
        &["backup", "run", "shop"],
    ));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let said = stderr(&second);
    assert!(
        said.contains("a backup of plan `shop` is already running on host ")
            && said.contains(&format!("(pid {}, since ", first.id()))
            && said.contains("heartbeat "),
        "{said}"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the second backup was refused while the first still ran"
    );

    // The first ends complete: nothing of it was marked interrupted.
    let status = first.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(env.path("first.log")).unwrap_or_default()
    );
    let (all, _) = env.json(&["points", "list", "--all", "--json"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4, "two resources in two regions: {all:?}");
    for p in all {
        assert_eq!(p["status"], "complete", "{p}");
    }
    assert_eq!(env.sql("SELECT count(*) FROM backup_runs"), "1");
    assert_eq!(
        env.sql("SELECT count(*) FROM leases"),
        "0",
        "the first backup released its lease"
    );
}

#[test]
fn a_second_daemon_through_a_symlinked_catalog_refuses_to_start() {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &daemon_plan(&env));
    let first = Daemon::start(&env, &[]);
    let alias = env.path("alias");
    std::fs::create_dir_all(&alias).unwrap();
    std::os::unix::fs::symlink(env.path("lifeboat.db"), alias.join("catalog.db")).unwrap();
    let second = command_with(
        &env,
        &alias.join("catalog.db"),
        &env.path("other-work"),
        &["daemon", "--listen", "127.0.0.1:0"],
    );
    let out = output_within_a_minute(second);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "another lifeboat daemon is already running on catalog {}, on host ",
            alias.join("catalog.db").display()
        )) && said.contains("heartbeat ")
            && said.contains("refusing to start"),
        "{said}"
    );
    let (code, _) = first.stop();
    assert_eq!(code, 0, "the first daemon ran on, and stopped cleanly");
    assert_eq!(
        env.sql("SELECT count(*) FROM leases"),
        "0",
        "the daemon released its lease"
    );
}

#[test]
fn another_hosts_lease_blocks_a_backup_until_it_expires() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));

    held_elsewhere(&env, "backup", "db-2", 45_000);
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("a backup of plan `shop` is already running on host db-2 (pid 4242, since ")
            && said.contains("heartbeat 3s ago")
            && said.contains("if that process is gone, its lease expires in 4"),
        "{said}"
    );
    // Refused before anything was recorded.
    assert_eq!(env.sql("SELECT count(*) FROM backup_runs"), "1");

    // Expired: taken over, whatever its host; released when done.
    env.sql(&format!("UPDATE leases SET expires_at = {}", now_ms() - 1));
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.sql("SELECT count(*) FROM backup_runs"), "2");
    assert_eq!(env.sql("SELECT count(*) FROM leases"), "0");

    // A restore of the plan running elsewhere holds prune off.
    held_elsewhere(&env, "restore", "db-3", 45_000);
    let out = env.run(&["prune", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a restore of plan `shop` is already running on host db-3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_dead_process_s_lease_on_this_machine_is_taken_over_at_once_and_said() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(""));
    // What this machine's processes write as their node (boot id and pid
    // namespace), read from a running daemon's lease.
    let daemon = Daemon::start(&env, &[]);
    let node = env.sql("SELECT node FROM leases WHERE kind = 'daemon'");
    assert!(!node.is_empty());
    let (code, _) = daemon.stop();
    assert_eq!(code, 0);
    // A backup of this machine that was killed: its pid is gone, its lease
    // would still hold for ten minutes.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let now = now_ms();
    env.sql(&format!(
            "INSERT INTO leases (plan, kind, owner, pid, host, node, acquired_at, heartbeat_at, expires_at)
             VALUES ('shop', 'backup', 'killed', {pid}, 'here', '{node}', {now}, {now}, {})",
            now + 600_000
        ),
    );
    let out = env.run(&["backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("took over a stale lease: its process no longer exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.sql("SELECT count(*) FROM leases"), "0");
}
