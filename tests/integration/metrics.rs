//! `/metrics` of a real daemon, the shipped alert rules and dashboard
//! (issue #15): counts and durations that include CLI runs, stable label
//! sets, every metric name the rules and the dashboard use exported, the
//! rules checked and unit-tested by `promtool`, a new plan that starts
//! without misses or failed drills, and what the logs say.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use crate::daemon::{daemon_plan, jobs, wait_for, Daemon};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// `promtool ARGS` in `deploy/`; a missing promtool fails the test, saying
/// how to get it (scripts/test.sh installs it).
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): run scripts/test.sh, or apt-get install prometheus")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_check_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", "prometheus-rules.yml"]);
    assert!(checked.contains("SUCCESS: 5 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "prometheus-rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `lifeboat_*` name in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("lifeboat_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The sample names `/metrics` exports: each family's, and a histogram's
/// `_bucket`, `_sum` and `_count`.
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            names.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

/// The value of the sample written exactly as `series`.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn sum_sql(env: &Env, sql: &str) -> f64 {
    env.sql(sql).trim().parse().unwrap()
}

#[test]
fn metrics_count_cli_runs_with_stable_labels_and_export_every_name_rules_and_dashboard_use() {
    let env = Env::new();
    env.seed(20);
    // A check that cannot pass: the CLI's drill fails.
    let failing = "\n[[drill.checks]]\nname = \"a-million-orders\"\nresource = \"db\"\nsql = \"SELECT count(*) >= 1000000 FROM orders\"\n";
    // Backups once a year: the daemon runs none while the test looks.
    let plan = env
        .local_plan(failing)
        .replace("schedule = \"*/15 * * * *\"", "schedule = \"0 0 1 1 *\"");
    env.write_plan("shop.toml", &plan);
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The finished drill's JSON log line carries RTO, RPO and the failing check.
    let out = env.run(&["-v", "--log-format", "json", "drill", "run", "shop"]);
    assert!(!out.status.success());
    let finished: serde_json::Value = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "drill finished")
        .unwrap_or_else(|| panic!("no `drill finished` line:\n{}", stderr(&out)));
    assert_eq!(finished["passed"], false, "{finished}");
    assert_eq!(finished["met_objectives"], false, "{finished}");
    assert_eq!(finished["region"], "dr", "{finished}");
    assert_eq!(finished["rto_objective_seconds"], 600.0, "{finished}");
    assert_eq!(finished["rpo_objective_seconds"], 3600.0, "{finished}");
    assert!(finished["rpo_seconds"].as_f64().is_some(), "{finished}");
    let failed = finished["failed_checks"].as_str().unwrap_or_default();
    assert!(failed.contains("a-million-orders (db)"), "{finished}");

    let d = Daemon::start(&env, &[]);
    let (code, metrics) = d.get("/metrics");
    assert_eq!(code, 200);
    let version = env!("CARGO_PKG_VERSION");
    // The binary is built with the tests' profile.
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    for (series, expected) in [
        // Runs from the CLI count: the daemon ran none of these.
        (
            "lifeboat_runs_total{plan=\"shop\",kind=\"backup\",status=\"succeeded\"}",
            1.0,
        ),
        (
            "lifeboat_runs_total{plan=\"shop\",kind=\"drill\",status=\"failed\"}",
            1.0,
        ),
        (
            "lifeboat_run_duration_seconds_count{plan=\"shop\",kind=\"backup\"}",
            1.0,
        ),
        (
            "lifeboat_run_duration_seconds_bucket{plan=\"shop\",kind=\"drill\",le=\"+Inf\"}",
            1.0,
        ),
        ("lifeboat_rto_objective_seconds{plan=\"shop\"}", 600.0),
        ("lifeboat_rpo_objective_seconds{plan=\"shop\"}", 3600.0),
        (
            "lifeboat_objective_breach{plan=\"shop\",objective=\"drill\",region=\"dr\"}",
            1.0,
        ),
        (
            &format!("lifeboat_build_info{{version=\"{version}\",profile=\"{profile}\"}}"),
            1.0,
        ),
    ] {
        assert_eq!(
            value(&metrics, series),
            Some(expected),
            "{series} in\n{metrics}"
        );
    }
    let finished_at = sum_sql(&env, "SELECT MAX(finished_at) FROM backup_runs") / 1000.0;
    assert_eq!(
        value(
            &metrics,
            "lifeboat_last_success_timestamp_seconds{plan=\"shop\",kind=\"backup\"}"
        ),
        Some(finished_at)
    );
    assert!(
        metrics.contains("lifeboat_last_success_timestamp_seconds{plan=\"shop\",kind=\"copy\"}")
    );
    // The drill failed: no drill success yet.
    assert_eq!(
        value(
            &metrics,
            "lifeboat_last_success_timestamp_seconds{plan=\"shop\",kind=\"drill\"}"
        ),
        None
    );
    let bytes = |region: &str| {
        sum_sql(
            &env,
            &format!("SELECT COALESCE(SUM(size_bytes), 0) FROM points WHERE region = '{region}' AND completed_at IS NOT NULL"),
        )
    };
    for region in ["primary", "dr"] {
        let series = format!("lifeboat_written_bytes_total{{plan=\"shop\",region=\"{region}\"}}");
        let written = value(&metrics, &series);
        assert!(written.is_some_and(|w| w > 3e6), "{series} in\n{metrics}");
        assert_eq!(written, Some(bytes(region)));
    }
    // Stable label sets: no empty region, no failure count as a label, and
    // the duplicate of jobs_total{status="missed"} is gone.
    assert!(!metrics.contains("region=\"\""), "{metrics}");
    assert!(!metrics.contains("consecutive_failures=\""), "{metrics}");
    assert!(
        !metrics.contains("lifeboat_missed_slots_total"),
        "{metrics}"
    );

    // Every name the rules and the dashboard use is exported.
    let names = exported(&metrics);
    for file in ["prometheus-rules.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(deploy().join(file)).unwrap();
        if file.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(&text).expect("the dashboard is JSON");
        }
        let used = names_in(&text);
        assert!(used.len() >= 4, "{file}: {used:?}");
        let unknown: Vec<_> = used.difference(&names).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses {unknown:?}, not in\n{metrics}"
        );
    }

    // A backup run by hand while the daemon runs shows at the next scrape.
    let out = env.run(&["backup", "run", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, metrics) = d.get("/metrics");
    assert_eq!(
        value(
            &metrics,
            "lifeboat_runs_total{plan=\"shop\",kind=\"backup\",status=\"succeeded\"}"
        ),
        Some(2.0)
    );
    for region in ["primary", "dr"] {
        let series = format!("lifeboat_written_bytes_total{{plan=\"shop\",region=\"{region}\"}}");
        assert_eq!(value(&metrics, &series), Some(bytes(region)), "{metrics}");
    }
    let (code, _) = d.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_new_plan_starts_without_missed_slots_or_failed_drills_and_logs_its_plan_once() {
    let env = Env::new();
    env.seed(20);
    env.write_plan("shop.toml", &daemon_plan(&env));
    // Slots every 2 s with a 5 s start window: the daemon used to record the
    // slots of the 5 s before it started as missed.
    let d = Daemon::start(&env, &["-v"]);
    wait_for("a drill that ran", Duration::from_secs(60), || {
        jobs(&env)
            .iter()
            .any(|j| j.kind == "drill" && j.status == "succeeded")
    });
    let (_, metrics) = d.get("/metrics");
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    // The scheduler's misses (a job may still miss on its own, e.g. when
    // the previous 2 s backup still holds the plan's lease on a busy machine).
    let early_misses = sum_sql(
        &env,
        "SELECT COUNT(*) FROM jobs j JOIN plans_first_seen f ON f.plan = j.plan AND f.kind = j.kind
         WHERE j.status = 'missed' AND j.slot < f.first_seen
           AND (j.error LIKE 'not started within the start window%' OR j.error LIKE 'superseded%')",
    );
    assert_eq!(early_misses, 0.0, "{:?}", jobs(&env));
    assert_eq!(
        sum_sql(
            &env,
            "SELECT COUNT(*) FROM plans_first_seen WHERE plan = 'shop'"
        ),
        3.0,
        "backup, drill and prune tracks"
    );
    // Drills due before the first backup reached the drill region were
    // skipped, not failed.
    for j in jobs(&env).iter().filter(|j| j.kind == "drill") {
        assert!(
            !(j.status == "failed" && j.error.contains("no complete point")),
            "a first drill failed instead of waiting: {j:?}"
        );
        if j.status == "skipped" {
            assert!(
                j.error.starts_with("skipped: no complete point yet"),
                "{j:?}"
            );
        }
    }
    assert!(!metrics.contains("status=\"failed\""), "{metrics}");
    // Pretty logs name the plan once per line.
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(log.contains("plan=shop"), "{log}");
    for line in log.lines() {
        assert!(line.matches("plan=").count() <= 1, "{line}");
    }
}
