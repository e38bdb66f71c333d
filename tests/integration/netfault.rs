//! Network faults between Lifeboat and AWS (issue #13): backups (with a
//! copy), drills and prunes run through the proxy of `aws_proxy` while it
//! injects resets, stalls, truncated bodies, 500s, S3 SlowDown and RDS
//! Throttling at a chosen rate. Every run must end complete/passed or be
//! recorded failed with an error naming its cause; no point may be
//! `complete` unless a fault-free `verify --read-data` finds its data; a
//! total outage must stay within the SDK's retry bounds; and after the
//! faults stop the next backup succeeds.
//!
//! The suite runs each fault at 30%, once. For more figures:
//! `LIFEBOAT_NETFAULT_RUNS=5 LIFEBOAT_NETFAULT_RATES=5,30,60 cargo test
//! --test integration netfault -- --nocapture` (each cell prints a line).

use std::time::{Duration, Instant};

use crate::aws_proxy::{Fault, Proxy};
use crate::common::{pseudo_random, Env};
use crate::daemon::{jobs, succeeded, wait_for, Daemon};
use crate::moto::moto;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";

/// Source bucket, RDS instance and vault buckets for one cell, created
/// straight on moto (no faults).
async fn seed(tag: &str) {
    let m = moto();
    lifeboat::aws::rds_client(PRIMARY, Some(&m.aws()))
        .await
        .create_db_instance()
        .db_instance_identifier(format!("{tag}-db"))
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .expect("create instance");
    m.bucket(&format!("{tag}-data"), PRIMARY).await;
    m.bucket(&format!("{tag}-east"), PRIMARY).await;
    m.bucket(&format!("{tag}-west"), DR).await;
    let s3 = lifeboat::vault::s3_client(PRIMARY, Some(&m.aws())).await;
    for i in 0..4 {
        s3.put_object()
            .bucket(format!("{tag}-data"))
            .key(format!("in/{i}.txt"))
            .body(pseudo_random(100 + i * 700, i as u64).into())
            .send()
            .await
            .expect("put object");
    }
}

/// A plan with a bucket, an instance and a folder whose one file is past
/// the 8 MiB part size (so its upload is multipart), copied to the DR
/// region, drilled there, keeping one point.
fn plan(env: &Env, tag: &str, endpoint: &str) {
    let data = env.path("files");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big.bin"), pseudo_random(9 << 20, 7)).unwrap();
    std::fs::write(data.join("small.txt"), b"hello").unwrap();
    let text = format!(
        r#"
name = "{tag}"
owner = "sre@example.com"
rto = "1h"
rpo = "1d"

[backup]
schedule = "0 * * * *"
primary_region = "{PRIMARY}"
copy_to = ["{DR}"]

[retention]
keep_last = 1

[regions.{PRIMARY}]
vault = "s3://{tag}-east/lb"

[regions.{DR}]
vault = "s3://{tag}-west/lb"

[[resources]]
name = "bucket"
kind = "s3"
bucket = "{tag}-data"
prefix = "in/"

[[resources]]
name = "db"
kind = "rds-instance"
instance = "{tag}-db"

[[resources]]
name = "files"
kind = "path"
path = "{data}"

[drill]
region = "{DR}"

[aws]
endpoint_url = "{endpoint}"
poll_interval = "20ms"
read_timeout = "{timeout}"
"#,
        data = data.display(),
        timeout = Proxy::READ_TIMEOUT,
    );
    env.write_plan(&format!("{tag}.toml"), &text);
}

/// Whether an error message says what went wrong on the wire or which
/// AWS answer it was, rather than something vague.
fn names_cause(error: &str) -> bool {
    [
        "SlowDown",
        "Throttling",
        "InternalError",
        "InternalFailure",
        "timed out",
        "timeout",
        "connection",
        "dispatch failure",
        "io error",
        "response error",
        "end of file",
        "incomplete",
        "HTTP 5",
        // A drill of a point the faults kept from being copied.
        "no complete point",
    ]
    .iter()
    .any(|c| error.contains(c))
}

/// What one backup, drill and prune under a fault came to.
#[derive(Debug, Default)]
struct Outcome {
    points_complete: usize,
    points_failed: usize,
    /// The errors of failed points, drills and prunes.
    causes: Vec<String>,
    drill_passed: bool,
    prune_ok: bool,
    requests: usize,
    injected: usize,
    seconds: f64,
}

/// Backup (twice, so prune has an older point), drill and prune while
/// `fault` strikes `percent` % of requests; then, fault-free, every
/// complete point reads back whole and the next backup succeeds.
fn cell(fault: Fault, percent: u32, run: u32) -> Outcome {
    let env = Env::new();
    let tag = format!("nf-{}-{percent}-{run}", format!("{fault:?}").to_lowercase());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(&tag));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, &tag, &proxy.endpoint);
    let started = Instant::now();
    proxy.inject(fault, percent, u64::from(percent) * 1000 + u64::from(run));
    let mut outcome = Outcome::default();

    for _ in 0..2 {
        let (out, code) = env.json(&["backup", "run", &tag, "--json"]);
        let points = out["points"].as_array().unwrap_or_else(|| panic!("{out}"));
        assert!(!points.is_empty(), "{out}");
        for p in points {
            match p["status"].as_str() {
                Some("complete") => outcome.points_complete += 1,
                Some("failed") => {
                    outcome.points_failed += 1;
                    let e = p["error"].as_str().unwrap_or("");
                    assert!(names_cause(e), "{fault:?}: a vague error: {p}");
                    outcome.causes.push(e.to_string());
                }
                _ => panic!("{fault:?}: a point neither complete nor failed: {p}"),
            }
        }
        let all_complete = points.iter().all(|p| p["status"] == "complete");
        assert_eq!(code == 0, all_complete, "{fault:?}: exit {code}: {out}");
    }

    let (drill, code) = env.json(&["drill", "run", &tag, "--json"]);
    match drill["status"].as_str() {
        Some("passed") => {
            assert_eq!(code, 0, "{drill}");
            outcome.drill_passed = true;
        }
        Some("failed") => {
            assert_ne!(code, 0, "{drill}");
            let why = drill.to_string();
            assert!(
                names_cause(&why),
                "{fault:?}: a vague drill failure: {drill}"
            );
            outcome.causes.push(format!("drill: {}", drill["error"]));
        }
        _ => panic!("{fault:?}: a drill neither passed nor failed: {drill}"),
    }

    let prune = env.run(&["prune", &tag]);
    outcome.prune_ok = prune.status.success();
    if !outcome.prune_ok {
        let e = crate::common::stderr(&prune);
        assert!(names_cause(&e), "{fault:?}: a vague prune failure: {e}");
        outcome.causes.push(format!("prune: {e}"));
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    let calls = proxy.calls();
    outcome.requests = calls.len();
    outcome.injected = calls.iter().filter(|c| c.fault.is_some()).count();

    // Fault-free: what is recorded complete is there, byte for byte.
    proxy.heal();
    let (v, _) = env.json(&["verify", "--read-data", "--json"]);
    let verdicts = v["points"].as_array().unwrap_or_else(|| panic!("{v}"));
    for p in verdicts {
        assert_eq!(
            p["verdict"], "ok",
            "{fault:?} {percent}%: a complete point fails verification: {p}"
        );
    }
    // And the next backup succeeds.
    let (out, code) = env.json(&["backup", "run", &tag, "--json"]);
    assert_eq!(code, 0, "{fault:?}: no recovery: {out}");
    eprintln!(
        "netfault {fault:?} {percent}% run {run}: points {} complete / {} failed, drill {}, prune {}, {} requests, {} faults, {:.1}s",
        outcome.points_complete,
        outcome.points_failed,
        if outcome.drill_passed { "passed" } else { "failed" },
        if outcome.prune_ok { "ok" } else { "failed" },
        outcome.requests,
        outcome.injected,
        outcome.seconds,
    );
    for c in &outcome.causes {
        eprintln!("netfault {fault:?} {percent}% run {run}:   failed: {c}");
    }
    outcome
}

fn env_list(name: &str, default: &[u32]) -> Vec<u32> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

#[test]
fn every_run_under_network_faults_completes_or_fails_with_its_cause() {
    let runs = env_list("LIFEBOAT_NETFAULT_RUNS", &[1])[0];
    let rates = env_list("LIFEBOAT_NETFAULT_RATES", &[30]);
    let cells: Vec<(Fault, u32, u32)> = Fault::ALL
        .iter()
        .flat_map(|f| rates.iter().map(move |r| (*f, *r)))
        .flat_map(|(f, r)| (0..runs).map(move |n| (f, r, n)))
        .collect();
    // Cells are independent (own catalog, buckets, instance, proxy) and
    // mostly wait on retry backoffs and stalls: run them side by side.
    let queue = std::sync::Mutex::new(cells.into_iter());
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..Fault::ALL.len() {
            s.spawn(|| loop {
                let next = queue.lock().unwrap().next();
                let Some((f, r, n)) = next else { break };
                let o = cell(f, r, n);
                outcomes.lock().unwrap().push((f, r, o));
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    // The faults really struck (RDS calls are few: at a low rate one
    // cell may see no Throttling, so count each fault over its cells).
    for fault in Fault::ALL {
        let injected: usize = outcomes
            .iter()
            .filter(|(f, _, _)| *f == fault)
            .map(|(_, _, o)| o.injected)
            .sum();
        assert!(
            injected > 0,
            "{fault:?}: no fault was injected: {outcomes:?}"
        );
    }
}

/// During a total outage (every request a 500) a backup gives up within
/// the SDK's bounds: at most 4 attempts per operation, and the retry
/// quota spent; once the outage ends, the next backup succeeds.
#[test]
fn a_total_outage_is_bounded_and_the_next_backup_after_it_succeeds() {
    let env = Env::new();
    let tag = "nf-outage";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &proxy.endpoint);
    proxy.inject(Fault::Status500, 100, 1);
    let started = Instant::now();
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    let took = started.elapsed();
    assert_ne!(code, 0, "{out}");
    let points = out["points"].as_array().unwrap();
    for p in points {
        assert_eq!(p["status"], "failed", "{p}");
        let e = p["error"].as_str().unwrap_or("");
        assert!(
            e.contains("InternalError") || e.contains("InternalFailure"),
            "{p}"
        );
    }
    let calls = proxy.calls();
    let per_second = calls.len() as f64 / took.as_secs_f64().max(0.001);
    eprintln!(
        "netfault outage: {} requests in {:.1}s ({per_second:.1}/s), points {}",
        calls.len(),
        took.as_secs_f64(),
        points.len()
    );
    // Three resources, each stopped at its first failing operation: at
    // most 4 attempts of each.
    assert!(calls.len() <= 3 * 4, "{calls:#?}");
    drop(calls);

    proxy.heal();
    let (out, code) = env.json(&["backup", "run", tag, "--json"]);
    assert_eq!(code, 0, "{out}");
}

/// The daemon under a total outage: backups every 2 s fail until the
/// breaker opens (after 2 failures), then only its probes reach AWS, so
/// the request rate drops; once the outage ends a probe succeeds and
/// backups run again.
#[test]
fn during_an_outage_the_breaker_cuts_the_request_rate_and_backups_resume_after() {
    let env = Env::new();
    let tag = "nf-breaker";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(seed(tag));
    let proxy = Proxy::start(&moto().endpoint, 0, false);
    plan(&env, tag, &proxy.endpoint);
    let file = env.plans().join(format!("{tag}.toml"));
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "schedule = \"0 * * * *\"",
        "schedule = \"*/2 * * * * *\"\njitter = \"1s\"\nstart_window = \"5s\"\ncompletion_window = \"60s\"",
    );
    std::fs::write(&file, text).unwrap();
    proxy.inject(Fault::Status500, 100, 3);
    let started = Instant::now();
    let d = Daemon::start(
        &env,
        &["--breaker-threshold", "2", "--breaker-cooldown", "20s"],
    );
    wait_for("the breaker to open", Duration::from_secs(60), || {
        jobs(&env)
            .iter()
            .any(|j| j.kind == "backup" && j.error.contains("circuit open"))
    });
    let opened = Instant::now();
    std::thread::sleep(Duration::from_secs(12));
    let calls = proxy.calls();
    let before = calls.iter().filter(|c| c.at < opened).count();
    let after = calls.len() - before;
    let rate_before = before as f64 / (opened - started).as_secs_f64();
    let rate_after = after as f64 / opened.elapsed().as_secs_f64();
    eprintln!(
        "netfault breaker: {before} requests in {:.1}s before it opened ({rate_before:.2}/s), {after} in {:.1}s after ({rate_after:.2}/s)",
        (opened - started).as_secs_f64(),
        opened.elapsed().as_secs_f64()
    );
    proxy.heal();
    let recovered = Instant::now();
    let resumed = (0..150).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        succeeded(&env, "backup") > 0
    });
    let (code, _) = d.stop();
    assert!(before > 0, "the outage reached no request");
    assert!(
        rate_after < rate_before / 2.0,
        "the open breaker did not cut the rate: {rate_before:.2}/s, then {rate_after:.2}/s"
    );
    assert!(
        resumed,
        "no backup succeeded within {:.0}s of the outage's end",
        recovered.elapsed().as_secs_f64()
    );
    assert_eq!(code, 0);
}
