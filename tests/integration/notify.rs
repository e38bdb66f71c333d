//! Webhook notifications against a real HTTP server started by the test:
//! what a failed drill sends, RPO breaches notified once across a daemon
//! restart (with a webhook that refuses the first attempts), and slow or
//! dead webhooks that must never hold up backups or commands.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::daemon::{assert_jitter, daemon_plan, jobs, succeeded, wait_for, Daemon};

/// One request the webhook server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

/// A webhook server on a free loopback port: it answers 503 to the first
/// `fail_first` requests, then 200, and keeps every request it accepted.
struct Hook {
    base: String,
    accepted: Arc<Mutex<Vec<Request>>>,
    attempts: Arc<AtomicUsize>,
}

impl Hook {
    fn start(fail_first: usize) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (acc, att) = (accepted.clone(), attempts.clone());
        let handler = move |method: axum::http::Method,
                            uri: axum::http::Uri,
                            headers: axum::http::HeaderMap,
                            body: String| {
            let (acc, att) = (acc.clone(), att.clone());
            async move {
                if att.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
                acc.lock().unwrap().push(Request {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                    body,
                });
                axum::http::StatusCode::OK
            }
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(handler);
                axum::serve(listener, app).await.unwrap();
            });
        });
        Hook {
            base,
            accepted,
            attempts,
        }
    }

    fn accepted(&self) -> Vec<Request> {
        self.accepted.lock().unwrap().clone()
    }

    fn bodies(&self, event: &str) -> Vec<Value> {
        self.accepted()
            .into_iter()
            .map(|r| r.body)
            .filter(|b| b["event"] == event)
            .collect()
    }
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server that accepts connections and never answers.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    base
}

const FAILING_CHECK: &str = r#"
[[drill.checks]]
name = "enough-orders"
resource = "db"
sql = "SELECT count(*) >= 1000000 FROM orders"
"#;

#[test]
fn a_failed_drill_is_notified_with_its_fields_and_a_good_backup_is_not() {
    let env = Env::new();
    env.seed(10);
    let hook = Hook::start(0);
    let extra = format!(
        "{FAILING_CHECK}\n[[notify]]\nurl = \"{}/services/T0/B0/s3cr3t\"\n",
        hook.base
    );
    env.write_plan("shop.toml", &env.local_plan(&extra));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    assert!(hook.accepted().is_empty(), "a good backup is not notified");

    let before = now_ms();
    let out = env.run(&["-v", "drill", "run", "shop", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let drill: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The command waited for the delivery: it is there when it exits.
    let got = hook.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/T0/B0/s3cr3t");
    assert_eq!(r.content_type, "application/json");
    let b = &r.body;
    assert_eq!(b["event"], "drill-failed");
    assert_eq!(b["plan"], "shop");
    assert_eq!(b["owner"], "sre@example.com");
    assert_eq!(b["region"], "dr");
    assert_eq!(b["drill_id"], drill["id"]);
    assert_eq!(b["failed_checks"], serde_json::json!(["enough-orders"]));
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("check enough-orders (db) failed: returned 0, which is not true"),
        "{detail}"
    );
    let text = b["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "drill {} of plan shop in region dr FAILED",
            drill["id"]
        )),
        "{text}"
    );
    let t = ms(&b["time"]);
    assert!(t >= before && t <= now_ms(), "{b}");
    assert!(stderr(&out).contains("notification delivered"));
    assert!(
        !stderr(&out).contains("s3cr3t"),
        "the webhook's token leaked: {}",
        stderr(&out)
    );
}

#[test]
fn a_dead_webhook_neither_holds_nor_changes_a_command() {
    let env = Env::new();
    env.seed(10);
    env.write_plan("shop.toml", &env.local_plan(FAILING_CHECK));
    let url = format!("http://127.0.0.1:{}/hook/s3cr3t", dead_port());
    // A malformed URL is refused before anything runs.
    let out = env.run(&["--notify-url", "ftp://hooks/x", "backup", "run", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("must be an http:// or https:// URL"));
    assert!(!env.catalog_exists() || count_runs(&env) == 0);

    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    let started = Instant::now();
    let out = env.run(&["--notify-url", &url, "drill", "run", "shop", "--json"]);
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the drill's verdict, not the webhook's"
    );
    let drill: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(drill["passed"], false);
    // Retries stop at the command's notification budget (5 s).
    assert!(took < Duration::from_secs(12), "took {took:?}");
    let err = stderr(&out);
    assert!(err.contains("webhook unreachable"), "{err}");
    assert!(err.contains("http://127.0.0.1:"), "{err}");
    assert!(!err.contains("s3cr3t"), "the webhook's token leaked: {err}");
}

fn count_runs(env: &Env) -> i64 {
    env.sql("SELECT COUNT(*) FROM backup_runs").parse().unwrap()
}

/// The RPO events of one region, in the order they arrived.
fn rpo_events(hook: &Hook, region: &str) -> Vec<Value> {
    hook.accepted()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| b["region"] == region)
        .collect()
}

#[test]
fn rpo_breaches_are_notified_once_across_a_restart_and_retried_until_delivered() {
    let env = Env::new();
    // No data yet: every backup fails, and the exposure grows from the
    // first attempt until it passes the 6 s objective.
    let hook = Hook::start(2);
    let plan = daemon_plan(&env).replace("rpo = \"1h\"", "rpo = \"6s\"")
        + &format!(
            "\n[[notify]]\nurl = \"{}/hook/s3cr3t\"\nevents = [\"rpo-breach\", \"rpo-recovered\"]\n",
            hook.base
        );
    env.write_plan("shop.toml", &plan);
    let args = ["--breaker-threshold", "1000"];
    let d = Daemon::start(&env, &args);
    let breached = |region: &str| {
        rpo_events(&hook, region)
            .iter()
            .any(|b| b["event"] == "rpo-breach")
    };
    wait_for("breaches in both regions", Duration::from_secs(40), || {
        breached("primary") && breached("dr")
    });
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    let after_first = hook.accepted().len();

    // Restarted, still breached: the stored state says it was notified.
    let d = Daemon::start(&env, &args);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        hook.accepted().len(),
        after_first,
        "re-notified after a restart: {:?}",
        hook.accepted()
    );

    // Data appears: the next backup brings both regions back.
    env.seed(10);
    let recovered = |region: &str| {
        rpo_events(&hook, region)
            .iter()
            .any(|b| b["event"] == "rpo-recovered")
    };
    wait_for(
        "recoveries in both regions",
        Duration::from_secs(40),
        || recovered("primary") && recovered("dr"),
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0);

    for region in ["primary", "dr"] {
        let events = rpo_events(&hook, region);
        // Each transition once: breach, recovered, (breach, recovered, ...).
        for (i, b) in events.iter().enumerate() {
            let expected = if i % 2 == 0 {
                "rpo-breach"
            } else {
                "rpo-recovered"
            };
            assert_eq!(b["event"], expected, "{region}: {events:?}");
            assert_eq!(b["plan"], "shop");
            assert_eq!(b["rpo_objective_seconds"], 6.0);
        }
        let breach = &events[0];
        assert!(
            breach["exposure_seconds"].as_f64().unwrap() > 6.0,
            "{breach}"
        );
        assert!(
            breach["text"]
                .as_str()
                .unwrap()
                .contains(&format!("plan shop region {region}: RPO exposure")),
            "{breach}"
        );
        let rec = &events[1];
        assert_eq!(rec["breach_started_at"], breach["breach_started_at"]);
        let (start, end) = (ms(&rec["breach_started_at"]), ms(&rec["breach_ended_at"]));
        assert!(end > start, "{rec}");
        assert!(
            (rec["breach_seconds"].as_f64().unwrap() - (end - start) as f64 / 1000.0).abs() < 1e-6
        );
    }
    // Only the events the webhook asked for.
    assert!(hook.bodies("backup-failed").is_empty());
    // The first two attempts were refused, retried, and delivered.
    assert_eq!(
        hook.attempts.load(Ordering::SeqCst),
        hook.accepted().len() + 2
    );
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(log.contains("webhook failed; will retry"), "{log}");
    assert!(
        !log.contains("s3cr3t"),
        "the webhook's token leaked into the log"
    );
}

#[test]
fn slow_and_dead_webhooks_never_delay_backups() {
    let env = Env::new();
    env.seed(10);
    // Every drill fails and is notified to a webhook that never answers
    // and to a global one on a dead port.
    let plan = daemon_plan(&env).replace(
        "[[drill.checks]]",
        &format!("{FAILING_CHECK}\n[[drill.checks]]"),
    ) + &format!("\n[[notify]]\nurl = \"{}/slow/s3cr3t\"\n", silent_server());
    env.write_plan("shop.toml", &plan);
    let dead = format!("http://127.0.0.1:{}/dead/s3cr3t", dead_port());
    let d = Daemon::start(&env, &["--notify-url", &dead]);
    let up_since = now_ms() + 1000;
    wait_for("backups and failed drills", Duration::from_secs(40), || {
        succeeded(&env, "backup") >= 4
            && jobs(&env)
                .iter()
                .filter(|j| j.kind == "drill" && j.status == "failed")
                .count()
                >= 3
    });
    let (code, took) = d.stop();
    assert_eq!(code, 0);
    // Jobs drain, then notifications get at most 5 s.
    assert!(took < Duration::from_secs(15), "stop took {took:?}");
    // Every backup started on time, whatever the webhooks did.
    assert_jitter(&env, up_since);
    let log = std::fs::read_to_string(env.path("daemon.log")).unwrap();
    assert!(log.contains("webhook unreachable"), "{log}");
    assert!(
        !log.contains("s3cr3t"),
        "the webhook's token leaked into the log"
    );
}
