//! The real daemon process on seconds-granularity schedules: start-up, the
//! HTTP endpoints, real backups and drills on their jittered slots, SIGTERM,
//! restarts, kill -9, reloads (file watch and SIGHUP), a second daemon, the
//! heartbeat, a breaker opened by real failing backups. The scheduler's
//! rules themselves (jitter, start windows, missed slots, downtime, first
//! runs, breakers, concurrency limits) are tested at exact instants on a
//! paused clock in `src/daemon/scheduler/tests.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const SCHEDULES: &str = r#"schedule = "*/2 * * * * *"
jitter = "1s"
start_window = "5s"
completion_window = "60s""#;

/// A plan with backups every 2 s and drills every 3 s (both 1 s jitter).
pub(crate) fn daemon_plan(env: &Env) -> String {
    env.local_plan("")
        .replace("schedule = \"*/15 * * * *\"", SCHEDULES)
        .replace(
            "[drill]\n",
            "[drill]\nschedule = \"*/3 * * * * *\"\njitter = \"1s\"\n",
        )
}

pub(crate) struct Daemon {
    pub(crate) child: Child,
    addr: String,
}

impl Daemon {
    pub(crate) fn start(env: &Env, extra: &[&str]) -> Daemon {
        Daemon::start_logging_to(env, extra, &[], "daemon.log")
    }

    /// Started with `extra` arguments and `vars` in its environment, its
    /// stderr appended to `log` in the test's folder.
    pub(crate) fn start_logging_to(
        env: &Env,
        extra: &[&str],
        vars: &[(&str, &str)],
        log: &str,
    ) -> Daemon {
        let log_name = log;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env.path(log_name))
            .unwrap();
        let mut args = vec![
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--watch-interval",
            "200ms",
            "--grace",
            "20s",
        ];
        args.extend_from_slice(extra);
        let mut child = env
            .command(&args)
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.trim().strip_prefix("health:  http://") {
                addr = rest.split('/').next().map(String::from);
                break;
            }
        }
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let addr = addr.unwrap_or_else(|| {
            panic!(
                "the daemon did not start: {}",
                std::fs::read_to_string(env.path(log_name)).unwrap_or_default()
            )
        });
        Daemon { child, addr }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// SIGTERM; returns the exit code and how long the stop took.
    pub(crate) fn stop(mut self) -> (i32, Duration) {
        let t = Instant::now();
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        (status.code().unwrap_or(-1), t.elapsed())
    }

    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (code, body)
    }
}

/// A test that fails half-way must not leave its daemon running (after
/// `stop` or `kill9` the child is already reaped, and killing it again does
/// nothing).
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub(crate) struct JobRow {
    pub(crate) plan: String,
    pub(crate) kind: String,
    pub(crate) slot: i64,
    pub(crate) scheduled_start: i64,
    pub(crate) status: String,
    pub(crate) started_at: Option<i64>,
    pub(crate) error: String,
}

pub(crate) fn jobs(env: &Env) -> Vec<JobRow> {
    let out = env.sql("SELECT plan, kind, slot, scheduled_start, status, COALESCE(CAST(started_at AS TEXT), ''), COALESCE(error, '') FROM jobs ORDER BY id",
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.splitn(7, '|').collect();
            JobRow {
                plan: f[0].into(),
                kind: f[1].into(),
                slot: f[2].parse().unwrap(),
                scheduled_start: f[3].parse().unwrap(),
                status: f[4].into(),
                started_at: f[5].parse().ok(),
                error: f[6].into(),
            }
        })
        .collect()
}

fn count(env: &Env, sql: &str) -> i64 {
    env.sql(sql).parse().unwrap()
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn succeeded(env: &Env, kind: &str) -> usize {
    if !env.catalog_exists() {
        return 0;
    }
    jobs(env)
        .iter()
        .filter(|j| j.kind == kind && j.status == "succeeded")
        .count()
}

/// Every scheduled job started at slot + the plan's stable jitter offset
/// (those due once the daemon was up: earlier ones run as soon as it is).
pub(crate) fn assert_jitter(env: &Env, up_since: i64) {
    for j in jobs(env)
        .iter()
        .filter(|j| j.status == "succeeded" && j.slot % 1000 == 0)
    {
        let slot = chrono::DateTime::from_timestamp_millis(j.slot).unwrap();
        let offset =
            lifeboat::schedule::jitter_offset(&j.plan, &j.kind, slot, Duration::from_secs(1));
        assert_eq!(
            j.scheduled_start,
            j.slot + offset.as_millis() as i64,
            "{j:?}"
        );
        assert!(
            j.scheduled_start - j.slot < 1000,
            "jitter out of bounds: {j:?}"
        );
        if j.scheduled_start > up_since {
            let late = j.started_at.unwrap() - j.scheduled_start;
            // Generous: other tests load the same two cores; BENCHMARKS.md has the real figure.
            assert!(
                (-50..2000).contains(&late),
                "started {late} ms from its jittered start: {j:?}"
            );
        }
    }
}

#[test]
fn runs_on_schedule_with_stable_jitter_restarts_and_stops_on_sigterm() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &daemon_plan(&env));
    let d = Daemon::start(&env, &[]);
    let up_since = now_ms() + 1000;
    assert_eq!(d.get("/healthz").0, 200);
    // The first backup (at once) and a scheduled one, and a drill.
    wait_for("2 backups and a drill", Duration::from_secs(40), || {
        succeeded(&env, "backup") >= 2 && succeeded(&env, "drill") >= 1
    });
    assert_eq!(d.get("/readyz").0, 200);
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("lifeboat_jobs_total{plan=\"shop\",kind=\"backup\",status=\"succeeded\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeboat_newest_point_age_seconds{plan=\"shop\",region=\"dr\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeboat_last_drill_passed{plan=\"shop\"} 1"),
        "{metrics}"
    );
    let (code, took) = d.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert_jitter(&env, up_since);
    let before = jobs(&env).len();

    // A restart keeps the schedule: same offsets, no slot run twice.
    let d = Daemon::start(&env, &[]);
    let up_since = now_ms() + 1000;
    wait_for(
        "more backups after restart",
        Duration::from_secs(30),
        || jobs(&env).len() >= before + 2,
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    assert_jitter(&env, up_since);
    assert_eq!(count(&env, "SELECT COUNT(*) FROM (SELECT plan, slot FROM backup_runs WHERE slot IS NOT NULL GROUP BY plan, slot HAVING COUNT(*) > 1) AS twice"), 0);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM (SELECT run_id FROM points GROUP BY run_id HAVING COUNT(*) > 4) AS big"
        ),
        0
    );
    assert_eq!(
        count(&env, "SELECT COUNT(*) FROM jobs WHERE status = 'running'"),
        0
    );
    // The drills restored copies in dr and cleaned up after themselves.
    assert!(files_under(&env.path("work/drills")).is_empty());
}

/// Incompressible bytes, eight per step: `pseudo_random`'s one byte per
/// step takes seconds for the 256 MiB below in a debug build.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn kill_9_during_a_backup_and_a_drill_leaves_nothing_stuck_or_duplicated() {
    let env = Env::new();
    env.seed(20);
    let big = env.path("data/files/big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..8 {
        std::fs::write(big.join(format!("blob-{i}.bin")), noise(32 << 20, i)).unwrap();
    }
    env.write_plan("shop.toml", &daemon_plan(&env));

    // 1. kill -9 while a backup writes its artifact.
    let d = Daemon::start(&env, &[]);
    let vault = env.path("vaults/primary/shop/files");
    wait_for("a backup writing", Duration::from_secs(30), || {
        std::fs::read_dir(&vault)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            })
            .unwrap_or(false)
    });
    d.kill9();

    // 2. kill -9 while a drill restores. A drill killed in step 1 may have
    // left a folder, which this start removes: wait for a new drill's files.
    let drills = env.path("work/drills");
    let earlier: Vec<std::ffi::OsString> = std::fs::read_dir(&drills)
        .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let d = Daemon::start(&env, &[]);
    wait_for("a drill restoring", Duration::from_secs(60), || {
        std::fs::read_dir(&drills)
            .map(|r| {
                r.filter_map(|e| e.ok()).any(|e| {
                    !earlier.contains(&e.file_name()) && !files_under(&e.path()).is_empty()
                })
            })
            .unwrap_or(false)
    });
    d.kill9();
    assert!(
        !files_under(&drills).is_empty(),
        "the killed drill left data behind (as a crash would)"
    );

    // 3. Restart with small data: everything interrupted is recorded, cleaned, and work goes on.
    std::fs::remove_dir_all(&big).unwrap();
    let d = Daemon::start(&env, &[]);
    let start = jobs(&env).len();
    wait_for("jobs after the crashes", Duration::from_secs(30), || {
        jobs(&env)
            .iter()
            .skip(start)
            .filter(|j| j.status == "succeeded")
            .count()
            >= 3
    });
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    for table in ["jobs", "points", "drills", "backup_runs"] {
        assert_eq!(
            count(
                &env,
                &format!("SELECT COUNT(*) FROM {table} WHERE status = 'running'")
            ),
            0,
            "{table} has running rows"
        );
    }
    let interrupted = jobs(&env)
        .into_iter()
        .filter(|j| j.error.contains("interrupted"))
        .count();
    assert!(
        interrupted >= 2,
        "both killed jobs are recorded as interrupted"
    );
    // The drill killed while restoring; and perhaps one killed in step 1
    // while it found no point yet (a drill slot is due as the daemon starts).
    let interrupted_drills = count(
        &env,
        "SELECT COUNT(*) FROM drills WHERE error LIKE 'interrupted%'",
    );
    assert!(
        (1..=2).contains(&interrupted_drills),
        "{interrupted_drills} drills recorded as interrupted"
    );
    assert!(
        files_under(&drills).is_empty(),
        "leftover drill data: {:?}",
        files_under(&drills)
    );
    assert_eq!(count(&env, "SELECT COUNT(*) FROM (SELECT plan, slot FROM backup_runs WHERE slot IS NOT NULL GROUP BY plan, slot HAVING COUNT(*) > 1) AS twice"), 0);
    assert_eq!(
        count(
            &env,
            "SELECT COUNT(*) FROM (SELECT run_id FROM points GROUP BY run_id HAVING COUNT(*) > 4) AS big"
        ),
        0
    );
}

#[test]
fn a_broken_edit_is_reported_and_the_last_good_plan_keeps_running() {
    let env = Env::new();
    env.seed(20);
    let plan = env.write_plan("shop.toml", &daemon_plan(&env));
    let d = Daemon::start(&env, &[]);
    wait_for("a first backup", Duration::from_secs(30), || {
        succeeded(&env, "backup") >= 1
    });
    // Broken edit, noticed by the file watch.
    std::fs::write(
        &plan,
        daemon_plan(&env).replace("rto = \"10m\"", "rto = \"10 minutes please\""),
    )
    .unwrap();
    let log = env.path("daemon.log");
    let expected = format!("{}:3:7: invalid duration", plan.display());
    wait_for(
        "the reload error in the log",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(&expected)
        },
    );
    // SIGHUP with the broken file: still reported, still running.
    d.signal("-HUP");
    let after = succeeded(&env, "backup");
    wait_for(
        "backups continuing with the last good plan",
        Duration::from_secs(20),
        || succeeded(&env, "backup") > after,
    );
    let (_, metrics) = d.get("/metrics");
    assert!(
        !metrics.contains("lifeboat_plan_reload_errors_total 0"),
        "{metrics}"
    );
    assert!(metrics.contains("lifeboat_plans 1"));
    let (code, _) = d.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_failing_vault_opens_the_breaker_and_slots_are_recorded_missed() {
    // Real failing backups feed the breaker; its rules (thresholds, the
    // slots it stops) are tested on a paused clock in the scheduler's tests.
    let env = Env::new();
    env.seed(20);
    // The primary vault is a file: every backup fails writing to it.
    std::fs::create_dir_all(env.path("vaults")).unwrap();
    std::fs::write(env.path("vaults/primary"), b"not a folder").unwrap();
    env.write_plan("shop.toml", &daemon_plan(&env));
    let d = Daemon::start(
        &env,
        &["--breaker-threshold", "2", "--breaker-cooldown", "1h"],
    );
    wait_for(
        "the breaker to stop a slot",
        Duration::from_secs(40),
        || {
            jobs(&env)
                .iter()
                .any(|j| j.kind == "backup" && j.error.contains("circuit open"))
        },
    );
    let runs = count(&env, "SELECT COUNT(*) FROM backup_runs");
    assert_eq!(
        runs, 2,
        "only the failures that opened the breaker reached the vault"
    );
    let failed: Vec<JobRow> = jobs(&env)
        .into_iter()
        .filter(|j| j.kind == "backup" && j.status == "failed")
        .collect();
    assert_eq!(failed.len(), 2);
    let (_, metrics) = d.get("/metrics");
    assert!(
        metrics.contains("lifeboat_breaker_open{breaker=\"vault primary file://"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lifeboat_jobs_total{plan=\"shop\",kind=\"backup\",status=\"missed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "lifeboat_objective_breach{plan=\"shop\",objective=\"rpo\",region=\"primary\"} 1"
        ),
        "{metrics}"
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    // Missed slots show in the report too.
    let (report, _) = env.json(&["report", "--format", "json"]);
    assert!(
        report["plans"][0]["backups"]["missed"].as_u64().unwrap() >= 1,
        "{report}"
    );
}

#[test]
fn a_second_daemon_on_the_same_catalog_refuses_to_start() {
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &daemon_plan(&env));
    let first = Daemon::start(&env, &[]);
    let out = env.run(&["daemon", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another lifeboat daemon is already running"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        first.get("/healthz").0,
        200,
        "the first daemon is unaffected"
    );
    let (code, _) = first.stop();
    assert_eq!(code, 0);
}

#[test]
fn the_heartbeat_is_pinged_after_successful_jobs_and_its_token_never_logged() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let env = Env::new();
    env.seed(5);
    env.write_plan("shop.toml", &daemon_plan(&env));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pings = Arc::new(AtomicUsize::new(0));
    let counter = pings.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            if String::from_utf8_lossy(&buf[..n]).starts_with("GET /ping/s3cr3t-token") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
        }
    });
    let url = format!("http://127.0.0.1:{port}/ping/s3cr3t-token");
    let d = Daemon::start(&env, &["--heartbeat-url", &url]);
    wait_for("two heartbeat pings", Duration::from_secs(30), || {
        pings.load(Ordering::SeqCst) >= 2
    });
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(
        !log.contains("s3cr3t"),
        "the heartbeat token leaked into the log"
    );
}

/// A webhook on a free loopback port that keeps every JSON body it gets.
fn capture_webhook() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
) {
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let keep = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            let mut reader = BufReader::new(s);
            let mut length = 0;
            let mut line = String::new();
            // Headers up to the blank line; the body is Content-Length bytes.
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                if let Ok(v) = serde_json::from_slice(&body) {
                    keep.lock().unwrap().push(v);
                }
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

#[test]
fn a_scheduled_verify_marks_damage_fails_its_job_notifies_and_exports_the_count() {
    let env = Env::new();
    env.seed(20);
    // Backups only by hand (a yearly slot), no drill schedule: the daemon
    // only verifies, every 2 s.
    let plan = env
        .local_plan("\n[verify]\nschedule = \"*/2 * * * * *\"\njitter = \"1s\"\n")
        .replace(
            "schedule = \"*/15 * * * *\"",
            "schedule = \"0 0 1 1 *\"\nstart_window = \"5s\"",
        );
    env.write_plan("shop.toml", &plan);
    let (backup, code) = env.json(&["backup", "run", "shop", "--json"]);
    assert_eq!(code, 0, "{backup}");
    let points = backup["points"].as_array().unwrap();
    let files_dr = points
        .iter()
        .find(|p| p["resource"] == "files" && p["region"] == "dr")
        .unwrap();
    let id = files_dr["id"].as_i64().unwrap();
    let artifact = files_dr["location"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .to_string();

    let (hook, bodies) = capture_webhook();
    let d = Daemon::start(&env, &["--notify-url", &hook]);
    let verify_jobs = |status: &str| {
        jobs(&env)
            .into_iter()
            .filter(|j| j.kind == "verify" && j.status == status)
            .collect::<Vec<_>>()
    };
    wait_for("a verify job to pass", Duration::from_secs(30), || {
        !verify_jobs("succeeded").is_empty()
    });
    assert!(verify_jobs("failed").is_empty());

    // The point's artifact goes: the next verify finds it.
    std::fs::remove_file(&artifact).unwrap();
    wait_for("a verify job to fail", Duration::from_secs(30), || {
        !verify_jobs("failed").is_empty()
    });
    let failed = &verify_jobs("failed")[0];
    let expected = format!("1 point(s) damaged: files dr point {id} (artifact missing at ");
    assert!(failed.error.starts_with(&expected), "{failed:?}");
    let (list, _) = env.json(&["points", "list", "--json"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("point {id} not in {list}"))
        .clone();
    assert_eq!(row["status"], "damaged", "{row}");
    assert!(
        row["damage"].as_str().unwrap().contains("artifact missing"),
        "{row}"
    );
    let (_, metrics) = d.get("/metrics");
    for line in [
        "lifeboat_damaged_points{plan=\"shop\",region=\"dr\"} 1",
        "lifeboat_damaged_points{plan=\"shop\",region=\"primary\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    assert!(
        metrics.contains("lifeboat_jobs_total{plan=\"shop\",kind=\"verify\",status=\"failed\"}"),
        "{metrics}"
    );
    wait_for("the verify-failed webhook", Duration::from_secs(20), || {
        bodies
            .lock()
            .unwrap()
            .iter()
            .any(|b| b["event"] == "verify-failed")
    });
    let sent = bodies
        .lock()
        .unwrap()
        .iter()
        .find(|b| b["event"] == "verify-failed")
        .cloned()
        .unwrap();
    assert_eq!(sent["plan"], "shop", "{sent}");
    assert_eq!(sent["damaged_points"], serde_json::json!([id]), "{sent}");
    assert!(
        sent["text"]
            .as_str()
            .unwrap()
            .contains("verify of plan shop FAILED"),
        "{sent}"
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    // Only the damaged point is marked: the other three stay complete.
    let (list, _) = env.json(&["points", "list", "--json"]);
    let damaged = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "damaged")
        .count();
    assert_eq!(damaged, 1, "{list}");
}
