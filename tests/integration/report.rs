//! The report against catalogs written row by row with known times, so
//! every number can be worked out by hand; and every output format parsed
//! back (HTML rendered by headless Chromium).

use std::path::Path;

use lifeboat::catalog::{
    Catalog, DrillOutcome, DrillStatus, Flags, JobKind, JobStatus, NewPoint, PointCompletion,
    RunStatus,
};
use lifeboat::resource::{Kind, Location};
use serde_json::Value;

use crate::common::*;

const M: i64 = 60_000;
/// 2026-01-01T00:00:00Z: protection of `shop` starts here.
const T0: i64 = 1_767_225_600_000;

fn rfc(ms: i64) -> String {
    lifeboat::time::rfc3339(ms)
}

fn plan_text(name: &str, vaults: &Path) -> String {
    format!(
        r#"name = "{name}"
owner = "dr <team> & co"
rto = "10m"
rpo = "1h"

[backup]
schedule = "*/15 * * * *"
primary_region = "primary"
copy_to = ["dr"]

[regions.primary]
vault = "file://{v}/primary"

[regions.dr]
vault = "file://{v}/dr"

[[resources]]
name = "db"
kind = "sqlite"
path = "/nonexistent/app.db"

[drill]
schedule = "0 3 * * *"
region = "dr"

[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"
"#,
        v = vaults.display()
    )
}

async fn point(
    cat: &Catalog,
    plan: &str,
    region: &str,
    run: i64,
    source: Option<i64>,
    data: i64,
    done: i64,
) -> i64 {
    complete_point(cat, plan, "db", region, Some(run), source, data, done).await
}

/// A point of `resource` whose data is from `data`, complete at `done`.
#[allow(clippy::too_many_arguments)]
async fn complete_point(
    cat: &Catalog,
    plan: &str,
    resource: &str,
    region: &str,
    run: Option<i64>,
    source: Option<i64>,
    data: i64,
    done: i64,
) -> i64 {
    let id = cat
        .insert_point(NewPoint {
            plan,
            resource,
            kind: Kind::Sqlite,
            region,
            run_id: run,
            source_point_id: source,
            started_at: data,
        })
        .await
        .unwrap();
    cat.complete_point(
        id,
        &PointCompletion {
            data_time: data,
            completed_at: done,
            size_bytes: 1000,
            content_bytes: 4000,
            file_count: 1,
            sha256: "00".into(),
            manifest_sha256: None,
            location: format!("file:///vault/{region}/{id}"),
            stored: Location::Artifact {
                key: format!("shop/{resource}/{id}.sqlite.zst"),
            },
            flags: Flags::default(),
        },
    )
    .await
    .unwrap();
    id
}

async fn drill(cat: &Catalog, start: i64, rto: Option<i64>, rpo: i64, detail: &str) {
    let id = cat
        .start_drill("shop", "dr", "manual", start, 10 * M, 60 * M)
        .await
        .unwrap();
    cat.add_check(
        id,
        &lifeboat::catalog::NewCheck {
            name: "orders-present".into(),
            resource: "db".into(),
            passed: rto.is_some(),
            detail: detail.into(),
            ms: 500,
        },
    )
    .await
    .unwrap();
    cat.finish_drill(
        id,
        &DrillOutcome {
            status: DrillStatus::verdict(rto.is_some()),
            finished_at: start + rto.unwrap_or(M) + M,
            rto_ms: rto,
            rpo_ms: Some(rpo),
            choose_ms: 0,
            restore_ms: 0,
            checks_ms: 0,
            cleanup_ms: 0,
            kept_path: None,
            error: rto.is_none().then(|| "check orders-present failed".into()),
        },
    )
    .await
    .unwrap();
}

/// `shop`: hourly runs from T0, each point usable 5m (primary) / 10m (dr)
/// after its data time; the copy of the 1h run failed, so dr lags; five
/// drills. `empty`: one failed run at T0+90m and no point at all.
async fn seed_catalog(path: &Path) {
    let cat = Catalog::open(path).await.unwrap();
    // Run 1 at T0: both regions.
    let r1 = cat
        .start_run("shop", "schedule", Some(T0), T0)
        .await
        .unwrap();
    let p1 = point(&cat, "shop", "primary", r1, None, T0, T0 + 5 * M).await;
    point(&cat, "shop", "dr", r1, Some(p1), T0, T0 + 10 * M).await;
    cat.finish_run(r1, RunStatus::Succeeded, None, T0 + 10 * M)
        .await
        .unwrap();
    // Run 2 at 1h: the copy to dr fails.
    let t = T0 + 60 * M;
    let r2 = cat.start_run("shop", "schedule", Some(t), t).await.unwrap();
    let p2 = point(&cat, "shop", "primary", r2, None, t, t + 5 * M).await;
    let c2 = cat
        .insert_point(NewPoint {
            plan: "shop",
            resource: "db",
            kind: Kind::Sqlite,
            region: "dr",
            run_id: Some(r2),
            source_point_id: Some(p2),
            started_at: t + 5 * M,
        })
        .await
        .unwrap();
    cat.fail_point(c2, "copy to dr: disk full", Some(t))
        .await
        .unwrap();
    cat.finish_run(
        r2,
        RunStatus::Partial,
        Some("copy to dr: disk full"),
        t + 6 * M,
    )
    .await
    .unwrap();
    // The daemon's job for that slot failed with the run: listed once.
    let job = cat
        .claim_job("shop", JobKind::Backup, t, t, t)
        .await
        .unwrap()
        .unwrap();
    cat.finish_job(
        job,
        JobStatus::Failed,
        Some(r2),
        None,
        Some("partial"),
        t + 6 * M,
    )
    .await
    .unwrap();
    // Run 3 at 2h: both regions again.
    let t = T0 + 120 * M;
    let r3 = cat.start_run("shop", "schedule", Some(t), t).await.unwrap();
    let p3 = point(&cat, "shop", "primary", r3, None, t, t + 5 * M).await;
    point(&cat, "shop", "dr", r3, Some(p3), t, t + 10 * M).await;
    cat.finish_run(r3, RunStatus::Succeeded, None, t + 10 * M)
        .await
        .unwrap();
    // The 2h45m slot could not start.
    cat.record_missed(
        "shop",
        JobKind::Backup,
        T0 + 165 * M,
        T0 + 165 * M,
        "daemon down",
        T0 + 170 * M,
    )
    .await
    .unwrap();
    // Drills from dr: RPO = start − the dr point's data time.
    drill(&cat, T0 + 20 * M, Some(5 * M), 20 * M, "1 row").await;
    drill(&cat, T0 + 40 * M, None, 40 * M, "no <table> orders").await;
    drill(&cat, T0 + 70 * M, Some(8 * M), 70 * M, "1 row").await;
    drill(&cat, T0 + 140 * M, Some(12 * M), 20 * M, "1 row").await;
    drill(&cat, T0 + 160 * M, Some(3 * M), 40 * M, "1 row").await;

    let r = cat
        .start_run("empty", "manual", None, T0 + 90 * M)
        .await
        .unwrap();
    cat.finish_run(r, RunStatus::Failed, Some("source missing"), T0 + 91 * M)
        .await
        .unwrap();
    cat.close().await;
}

fn setup() -> Env {
    let env = Env::new();
    env.write_plan("shop.toml", &plan_text("shop", &env.path("vaults")));
    env.write_plan("empty.toml", &plan_text("empty", &env.path("vaults")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        seed_catalog(&env.catalog_with_password()).await;
        // The drills' evidence, as a drill writes it: a drill without its
        // record is reported as a broken chain.
        let cat = Catalog::open(&env.catalog_with_password()).await.unwrap();
        let text = plan_text("shop", &env.path("vaults"));
        let (shop, _) = lifeboat::plan::parse_plan(&env.plans().join("shop.toml"), &text).unwrap();
        let written = lifeboat::evidence::write_pending(&cat, &shop, "dr")
            .await
            .unwrap();
        assert_eq!(written.len(), 5, "{written:?}");
        cat.close().await;
    });
    env
}

fn report(env: &Env, from: i64, to: i64, extra: &[&str]) -> (Value, i32) {
    let (from, to) = (rfc(from), rfc(to));
    let mut args = vec!["report", "--format", "json", "--from", &from, "--to", &to];
    args.extend_from_slice(extra);
    env.json(&args)
}

fn plan<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plan {name} in {r}"))
}

fn region<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == name)
        .unwrap_or_else(|| panic!("no region {name} in {p}"))
}

fn approx(v: &Value, expected: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!(
        (got - expected).abs() < 1e-9,
        "got {got}, expected {expected}"
    );
}

fn breaches(r: &Value) -> Vec<(String, String, f64)> {
    r["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_string(),
                b["end"].as_str().unwrap().to_string(),
                b["worst_exposure_seconds"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn exposure_drills_and_incidents_match_hand_computed_values() {
    let env = setup();
    let (r, code) = report(&env, T0, T0 + 180 * M, &[]);
    assert_eq!(code, 0, "{r}");
    for key in ["generated_at", "from", "to", "plans"] {
        assert!(r.get(key).is_some(), "report lacks {key}");
    }
    let shop = plan(&r, "shop");
    for key in [
        "name",
        "owner",
        "rto_objective_seconds",
        "rpo_objective_seconds",
        "compliant",
        "regions",
        "verified",
        "drills",
        "backups",
    ] {
        assert!(shop.get(key).is_some(), "plan lacks {key}");
    }
    assert_eq!(shop["compliant"], false);

    // Primary: exposure reaches 65m twice (just before each next point is
    // usable, 5m after its data time); breached 60–65m and 120–125m.
    let primary = region(shop, "primary");
    approx(&primary["worst_exposure_seconds"], 3900.0);
    approx(&primary["within_rpo_ratio"], 170.0 / 180.0);
    assert_eq!(primary["newest_data_time"], rfc(T0 + 120 * M));
    assert_eq!(
        breaches(primary),
        vec![
            (rfc(T0 + 60 * M), rfc(T0 + 65 * M), 3900.0),
            (rfc(T0 + 120 * M), rfc(T0 + 125 * M), 3900.0)
        ]
    );
    // dr lags: the 1h copy failed, so data from T0 serves until 2h10m.
    let dr = region(shop, "dr");
    approx(&dr["worst_exposure_seconds"], 130.0 * 60.0);
    approx(&dr["within_rpo_ratio"], 110.0 / 180.0);
    assert_eq!(
        breaches(dr),
        vec![(rfc(T0 + 60 * M), rfc(T0 + 130 * M), 7800.0)]
    );
    approx(&dr["breaches"][0]["duration_seconds"], 70.0 * 60.0);

    // Drills: RTOs 5, 8, 12, 3 minutes (one failed drill has none).
    let d = &shop["drills"];
    assert_eq!(d["count"], 5);
    assert_eq!(d["passed"], 4);
    approx(&d["pass_rate"], 0.8);
    approx(&d["rto_p50_seconds"], 300.0);
    approx(&d["rto_p95_seconds"], 720.0);
    approx(&d["rto_max_seconds"], 720.0);
    approx(&d["rpo_max_seconds"], 4200.0);
    assert_eq!(d["last_passed_at"], rfc(T0 + 160 * M));
    approx(&d["since_last_pass_seconds"], 1200.0);
    approx(&d["interval_seconds"], 86400.0);
    assert_eq!(d["last"]["passed"], true);
    assert_eq!(d["history"].as_array().unwrap().len(), 5);

    // The partial run once (its failed job is the same event), the missed slot.
    let b = &shop["backups"];
    assert_eq!(
        (
            b["runs"].as_u64(),
            b["failed"].as_u64(),
            b["missed"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    let incidents = b["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(incidents[0]["source"], "run");
    assert_eq!(incidents[0]["status"], "partial");
    assert_eq!(incidents[0]["reason"], "copy to dr: disk full");
    assert_eq!(incidents[1]["source"], "job");
    assert_eq!(incidents[1]["status"], "missed");
    assert_eq!(incidents[1]["reason"], "daemon down");
    assert_eq!(incidents[1]["at"], rfc(T0 + 165 * M));

    // No point yet: exposure counts from the first attempt (T0+90m).
    let empty = plan(&r, "empty");
    for name in ["primary", "dr"] {
        let x = region(empty, name);
        approx(&x["worst_exposure_seconds"], 5400.0);
        approx(&x["within_rpo_ratio"], 60.0 / 90.0);
        assert_eq!(x["newest_data_time"], Value::Null);
        assert_eq!(
            breaches(x),
            vec![(rfc(T0 + 150 * M), rfc(T0 + 180 * M), 5400.0)]
        );
    }
    assert_eq!(empty["compliant"], false);
    let problems = empty["problems"].to_string();
    assert!(problems.contains("no passing drill ever"), "{problems}");
}

#[test]
fn a_window_cuts_a_breach_and_an_old_pass_breaks_the_drill_interval() {
    let env = setup();
    // From 1h30m: dr is already 90m exposed and stays breached until 2h10m.
    let (r, _) = report(&env, T0 + 90 * M, T0 + 180 * M, &[]);
    let dr = region(plan(&r, "shop"), "dr");
    approx(&dr["worst_exposure_seconds"], 7800.0);
    approx(&dr["within_rpo_ratio"], 50.0 / 90.0);
    assert_eq!(
        breaches(dr),
        vec![(rfc(T0 + 90 * M), rfc(T0 + 130 * M), 7800.0)]
    );
    // Only drills started in the window count: 12m and 3m.
    let d = &plan(&r, "shop")["drills"];
    assert_eq!(d["count"], 2);
    approx(&d["rto_p50_seconds"], 180.0);
    approx(&d["rto_p95_seconds"], 720.0);

    // A day and a half later the last pass (2h40m) is older than the
    // daily drill interval: out of compliance, with the reason.
    let (r, _) = report(&env, T0 + 180 * M, T0 + 36 * 60 * M, &["--plan", "shop"]);
    let shop = plan(&r, "shop");
    assert_eq!(shop["compliant"], false);
    approx(
        &shop["drills"]["since_last_pass_seconds"],
        (36.0 * 60.0 - 160.0) * 60.0,
    );
    let problems = shop["problems"].to_string();
    assert!(problems.contains("drill interval"), "{problems}");
}

#[test]
fn fail_on_breach_exits_1_only_when_a_plan_breached() {
    let env = setup();
    let (r, code) = report(
        &env,
        T0,
        T0 + 180 * M,
        &["--plan", "shop", "--fail-on-breach"],
    );
    assert_eq!(code, 1, "{r}");
    // 2h10m..3h: every point in time, both regions within the RPO, last drill met both.
    let (r, code) = report(
        &env,
        T0 + 130 * M,
        T0 + 180 * M,
        &["--plan", "shop", "--fail-on-breach"],
    );
    assert_eq!(plan(&r, "shop")["compliant"], true, "{r}");
    assert_eq!(code, 0, "{r}");
    // Without the flag a breach is reported, not an error.
    let (_, code) = report(&env, T0, T0 + 180 * M, &["--plan", "shop"]);
    assert_eq!(code, 0);
}

/// The days the daemon keeps ahead of any report (`report::keep_days`)
/// are the days a report would walk and keep, and the report reading
/// them says the same as the one that walked them.
#[test]
fn the_days_kept_ahead_are_the_days_a_report_keeps() {
    const DAY: i64 = 24 * 60 * M;
    let env = setup();
    // Five days: the history's day and four days of a growing exposure.
    let (from, to) = (T0 - DAY, T0 + 5 * DAY);
    let (walked, code) = report(&env, from, to, &[]);
    assert_eq!(code, 0, "{walked}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let kept_by_report = rt.block_on(async {
        let cat = Catalog::open(&env.catalog_with_password()).await.unwrap();
        let rows = cat
            .query_i64("SELECT count(*) FROM exposure_days WHERE plan = 'shop'")
            .await
            .unwrap()
            .unwrap();
        cat.execute("DELETE FROM exposure_days WHERE plan = 'shop'")
            .await
            .unwrap();
        let text = plan_text("shop", &env.path("vaults"));
        let (shop, _) = lifeboat::plan::parse_plan(&env.plans().join("shop.toml"), &text).unwrap();
        lifeboat::report::keep_days(&cat, &shop, 366, to)
            .await
            .unwrap();
        let kept = cat
            .query_i64("SELECT count(*) FROM exposure_days WHERE plan = 'shop'")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept, rows, "days kept ahead vs days the report kept");
        cat.close().await;
        rows
    });
    // Two regions, the four whole days from T0 (a midnight) to the last
    // midnight before `to` (the window's last day is walked, not kept).
    assert_eq!(kept_by_report, 2 * 4);
    let (read, code) = report(&env, from, to, &[]);
    assert_eq!(code, 0, "{read}");
    let without_stamp = |mut v: Value| {
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    assert_eq!(without_stamp(read), without_stamp(walked));
}

#[test]
fn csv_has_a_row_per_drill_and_per_breach() {
    let env = setup();
    let out = env.run(&[
        "report",
        "--format",
        "csv",
        "--from",
        &rfc(T0),
        "--to",
        &rfc(T0 + 180 * M),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut rd = csv::Reader::from_reader(out.stdout.as_slice());
    let header = rd.headers().unwrap().clone();
    assert_eq!(&header[0], "record_type");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let drills: Vec<_> = rows.iter().filter(|r| &r[0] == "drill").collect();
    let breaches: Vec<_> = rows.iter().filter(|r| &r[0] == "breach").collect();
    assert_eq!(drills.len(), 5);
    // shop: 2 in primary, 1 in dr; empty: 1 in each region.
    assert_eq!(breaches.len(), 5);
    assert_eq!(rows.len(), 10);
    let first = drills[0];
    assert_eq!(&first[col("start")], rfc(T0 + 20 * M));
    assert_eq!(first[col("rto_seconds")].parse::<f64>().unwrap(), 300.0);
    assert_eq!(first[col("rpo_seconds")].parse::<f64>().unwrap(), 1200.0);
    let failed = drills[1];
    assert_eq!(&failed[col("passed")], "false");
    assert_eq!(&failed[col("rto_seconds")], "");
    let dr = breaches
        .iter()
        .find(|r| &r[1] == "shop" && &r[2] == "dr")
        .unwrap();
    assert_eq!(
        dr[col("worst_exposure_seconds")].parse::<f64>().unwrap(),
        7800.0
    );
    assert_eq!(dr[col("duration_seconds")].parse::<f64>().unwrap(), 4200.0);
    chrono::DateTime::parse_from_rfc3339(&dr[col("end")]).unwrap();
}

/// The x extent of the first region's exposure line (the first wide
/// `<polyline>`) of an HTML report's SVG charts.
fn polyline_x_span(html: &str) -> (f64, f64) {
    let at = html
        .match_indices("<polyline")
        .map(|(i, _)| i)
        .find(|i| {
            html[*i..]
                .split('>')
                .next()
                .unwrap()
                .contains("stroke-width=\"4\"")
        })
        .expect("a region's exposure line in the charts");
    let points = &html[at..];
    let points = &points[points.find("points=\"").expect("polyline points") + 8..];
    let points = &points[..points.find('"').unwrap()];
    let xs: Vec<f64> = points
        .split_whitespace()
        .filter_map(|p| p.split(',').next()?.parse().ok())
        .collect();
    assert!(xs.len() >= 2, "an empty chart: {points}");
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

#[test]
fn html_is_self_contained_escaped_and_renders() {
    let env = setup();
    let html_path = env.path("report.html");
    let out = env.run(&[
        "report",
        "--format",
        "html",
        "--from",
        &rfc(T0),
        "--to",
        &rfc(T0 + 180 * M),
        "--out",
        html_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    // Self-contained: no external reference of any kind.
    for bad in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        // The SVG namespace is an identifier, never fetched.
        let count = html.matches(bad).count()
            - html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
                * (bad == "http://") as usize;
        assert_eq!(count, 0, "the page references `{bad}`");
    }
    // Summary, the exposure chart and two drill charts per plan.
    assert_eq!(html.matches("<svg").count(), 6);
    // A headline a stakeholder reads first.
    assert!(html.contains("id=\"headline\""), "no headline");
    assert!(
        html.contains("of 2 plans compliant"),
        "headline: {}",
        &html[html.find("id=\"headline\"").unwrap()..][..400]
    );
    assert!(html.contains("compliant") && html.contains("breached"));
    // User strings are escaped.
    assert!(html.contains("dr &lt;team&gt; &amp; co"));
    assert!(!html.contains("<team>"));
    assert!(html.contains("no &lt;table&gt; orders"));
    assert!(!html.contains("<table> orders"));

    // Headless Chromium draws it: a real picture, not a blank page.
    let png = env.path("report.png");
    let profile = env.path("chromium-profile");
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,2000",
            &format!("file://{}", html_path.display()),
        ])
        .output()
        .expect("chromium is needed by this test: scripts/test.sh installs it (apt-get install chromium)");
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        stderr(&out)
    );
    // To look at the page: LIFEBOAT_KEEP_REPORT=/some/dir cargo test html_is
    if let Some(keep) = std::env::var_os("LIFEBOAT_KEEP_REPORT") {
        let keep = std::path::PathBuf::from(keep);
        std::fs::copy(&png, keep.join("report.png")).unwrap();
        std::fs::copy(&html_path, keep.join("report.html")).unwrap();
    }
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.len() > 30_000,
        "screenshot only {} bytes",
        bytes.len()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 2000));
    let channels = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> =
        buf[..info.buffer_size()].chunks(channels).collect();
    assert!(
        colours.len() > 50,
        "only {} colours: a blank page?",
        colours.len()
    );
    // A plan younger than the window is charted from its start: the
    // exposure line spans the chart, not its last pixels.
    let wide = env.path("wide.html");
    let out = env.run(&[
        "report",
        "--format",
        "html",
        "--from",
        &rfc(T0 - 30 * 24 * 60 * M),
        "--to",
        &rfc(T0 + 180 * M),
        "--out",
        wide.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wide = std::fs::read_to_string(&wide).unwrap();
    let (lo, hi) = polyline_x_span(&wide);
    assert!(
        hi - lo > 500.0,
        "the exposure line spans x {lo}..{hi} of 900"
    );

    // The breached status badge's red background is on the page.
    assert!(
        colours.iter().any(|c| c[..3] == [0xfd, 0xdc, 0xdc]),
        "no breached badge colour in the screenshot"
    );
}

#[test]
fn status_is_a_plain_table_when_piped() {
    let env = setup();
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains('\x1b'),
        "colour codes in piped output: {text:?}"
    );
    let lines: Vec<&str> = text.lines().collect();
    // Header, then one row per plan and region, and each plan's next runs.
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[0].starts_with("PLAN") && lines[0].contains("LAST DRILL"));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("  next backup "))
            .count(),
        2,
        "{text}"
    );
    assert!(lines.iter().all(|l| l.chars().count() <= 100), "{text}");
    // The seeded points are from January 2026: long past the 1h RPO.
    let shop_rows: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("primary") || l.contains("dr "))
        .collect();
    assert!(shop_rows.iter().all(|l| l.contains("BREACH")), "{text}");
    assert!(text.contains("#5 passed"), "{text}");
    assert!(text.contains("(in "), "next runs shown: {text}");
    let (json, code) = env.json(&["status", "--json"]);
    assert_eq!(code, 0);
    let shop = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == "shop")
        .unwrap();
    let next_backup = ms(&shop["next_backup"]);
    let now = now_ms();
    assert!(next_backup > now && next_backup <= now + 15 * M, "{shop}");
    let next_drill = ms(&shop["next_drill"]);
    assert!(
        next_drill > now && next_drill <= now + 24 * 60 * M,
        "{shop}"
    );
}

#[test]
fn markdown_shows_breaches_percentiles_and_incidents() {
    let env = setup();
    let out = env.run(&[
        "report",
        "--from",
        &rfc(T0),
        "--to",
        &rfc(T0 + 180 * M),
        "--plan",
        "shop",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let md = stdout(&out);
    assert!(md.contains("❌ breached"), "{md}");
    assert!(
        md.contains(&format!(
            "- dr: {} → {} (worst 2h 10m)",
            rfc(T0 + 60 * M),
            rfc(T0 + 130 * M)
        )),
        "{md}"
    );
    assert!(md.contains("4 passed (80.0%)"), "{md}");
    assert!(md.contains("RTO p95 12m"), "{md}");
    assert!(md.contains("backup job"), "{md}");
    assert!(md.contains("missed: daemon down"), "{md}");
    assert!(md.contains("partial: copy to dr: disk full"), "{md}");
}

#[test]
fn drills_chain_their_evidence_and_the_report_verifies_it() {
    let env = Env::new();
    env.seed(50);
    env.write_plan("shop.toml", &env.local_plan(""));
    assert_eq!(env.run(&["backup", "run", "shop"]).status.code(), Some(0));
    for _ in 0..3 {
        let out = env.run(&["drill", "run", "shop"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let dir = env.path("vaults/dr/evidence/shop");
    let records = files_under(&dir);
    assert_eq!(records.len(), 3, "{records:?}");
    // Each record names its predecessor and that record's SHA-256.
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read(&records[0])["prev_sha256"], Value::Null);
    let second_bytes = std::fs::read(dir.join(&records[1])).unwrap();
    let second = read(&records[1]);
    assert_eq!(second["prev_key"], format!("evidence/shop/{}", records[0]));
    assert_eq!(second["drill"]["passed"], true);
    let (r, code) = env.json(&["report", "--format", "json", "--fail-on-breach"]);
    assert_eq!(code, 0, "{r}");
    let chain = &r["plans"][0]["evidence"];
    assert_eq!(
        (chain["records"].as_u64(), chain["intact"].as_bool()),
        (Some(3), Some(true)),
        "{r}"
    );

    // Rewriting history breaks the chain: the edited record is named, with
    // the field that no longer matches the catalog (before the evidence
    // head, the break was found at the next record's link).
    let first = dir.join(&records[0]);
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replace("\"returned 1\"", "\"returned 2\"")).unwrap();
    let (r, code) = env.json(&["report", "--format", "json", "--fail-on-breach"]);
    assert_eq!(code, 1, "{r}");
    let plan = &r["plans"][0];
    assert_eq!(plan["evidence"]["intact"], false);
    assert_eq!(plan["compliant"], false);
    let problems = plan["problems"].to_string();
    assert!(
        problems.contains("evidence chain")
            && problems.contains(&records[0])
            && problems.contains(".detail`"),
        "{problems}"
    );

    // So does removing a record.
    std::fs::write(&first, text).unwrap();
    assert_eq!(
        env.json(&["report", "--format", "json"]).0["plans"][0]["evidence"]["intact"],
        true
    );
    std::fs::remove_file(dir.join(&records[1])).unwrap();
    let (r, _) = env.json(&["report", "--format", "json"]);
    assert_eq!(r["plans"][0]["evidence"]["intact"], false, "{r}");

    // And removing the newest one, though every remaining link holds: the
    // catalog's head names it.
    std::fs::write(dir.join(&records[1]), &second_bytes).unwrap();
    std::fs::remove_file(dir.join(&records[2])).unwrap();
    let (r, _) = env.json(&["report", "--format", "json"]);
    let chain = &r["plans"][0]["evidence"];
    assert_eq!(chain["intact"], false, "{r}");
    let problem = chain["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!(
            "the newest record evidence/shop/{} is missing",
            records[2]
        )),
        "{r}"
    );
}

/// The catalog hands the exposure walk only the points that can matter
/// (those completed in the window, and of those usable at its start only
/// the ones nothing newer outlives). Against a history where older points
/// often outlive newer ones (as keep-daily retention leaves them), the
/// report's walk must give exactly what the whole computation over every
/// point gives, for windows that start before, inside and after it. So
/// must the report's other path, from the days the catalog keeps
/// (`report::daily`): when it first walks and stores them, when it reads
/// them back, and after a point of a stored day changed (a deletion set in
/// the past, a point a rebuild puts back), which drops the days it changed.
#[tokio::test]
async fn the_walk_over_the_catalogs_usable_points_equals_the_whole_computation() {
    use lifeboat::report::daily::{region_exposure, Ask};
    use lifeboat::report::exposure::{compute, finish_region, region_walk, Interval};

    let env = Env::new();
    let cat = Catalog::open(&env.catalog_with_password()).await.unwrap();
    let resources = ["db", "files"];
    let regions = ["primary", "dr"];
    let mut seed: u64 = 0x5eed;
    let mut rand = |n: i64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as i64
    };
    let mut all: Vec<(usize, usize, Interval)> = Vec::new();
    let mut ids = Vec::new();
    for i in 0..400i64 {
        let region = rand(2) as usize;
        let resource = rand(2) as usize;
        let data = T0 + i * 7 * M + rand(5 * M);
        let done = data + M + rand(30 * M);
        let id = complete_point(
            &cat,
            "shop",
            resources[resource],
            regions[region],
            None,
            None,
            data,
            done,
        )
        .await;
        // Most points live a few hours, some for days, a few forever.
        let deleted = match rand(10) {
            0 => None,
            1 | 2 => Some(done + rand(3 * 24 * 60 * M)),
            _ => Some(done + rand(4 * 60 * M)),
        };
        if let Some(at) = deleted {
            cat.mark_point_deleting(id, at).await.unwrap();
            cat.mark_point_deleted(id, at, "test").await.unwrap();
        }
        ids.push(id);
        all.push((
            region,
            resource,
            Interval {
                resource,
                data_time: data,
                valid_from: done,
                valid_to: deleted,
            },
        ));
    }
    // A failed point and a running one are never usable.
    let failed = cat
        .insert_point(NewPoint {
            plan: "shop",
            resource: "db",
            kind: Kind::Sqlite,
            region: "primary",
            run_id: None,
            source_point_id: None,
            started_at: T0 + 100 * M,
        })
        .await
        .unwrap();
    cat.fail_point(failed, "boom", Some(T0 + 100 * M))
        .await
        .unwrap();

    let end = T0 + 400 * 7 * M;
    let windows = [
        (T0 - 60 * M, T0 + 300 * M),
        (T0 + 600 * M, T0 + 900 * M),
        (T0 + 1000 * M, end),
        (T0 + 1234 * M, T0 + 1300 * M),
        (end - 90 * M, end + 5 * 24 * 60 * M),
        (end + 24 * 60 * M, end + 2 * 24 * 60 * M),
        (T0 - 3 * 24 * 60 * M, end + 3 * 24 * 60 * M + 17 * M),
        // Longer than one packed read of the catalog (30 days), cut inside
        // the history.
        (T0 - 29 * 24 * 60 * M - 5 * M, end + 31 * 24 * 60 * M),
    ];
    let wanted = |all: &[(usize, usize, Interval)], r: usize, from, to| {
        let ivs: Vec<Interval> = all
            .iter()
            .filter(|(g, _, _)| *g == r)
            .map(|(_, _, iv)| iv.clone())
            .collect();
        let want = compute(2, &ivs, T0, from, to, 30 * M).unwrap();
        let line = lifeboat::report::exposure::timeline(2, &ivs, T0, from, to);
        (want, line)
    };
    // Long after the history: every day of it is over and can be kept.
    let now = end + 30 * 24 * 60 * M;
    let kept = |region: &'static str, from, to| {
        let cat = &cat;
        async move {
            let ask = Ask {
                plan: "shop",
                region,
                resources: &resources,
                protection_start: T0,
                rpo_ms: 30 * M,
                from,
                to,
                now,
            };
            region_exposure(cat, &ask).await.unwrap().unwrap()
        }
    };
    let mut compared = 0;
    for (from, to) in windows {
        for (r, region) in regions.iter().enumerate() {
            let mut walk = region_walk(2, T0, from, to, 30 * M, true).unwrap();
            cat.for_each_usable_point("shop", region, &resources, from, to, |p| {
                walk.add(&Interval {
                    resource: p.resource,
                    data_time: p.data_time,
                    valid_from: p.completed_at,
                    valid_to: p.deleted_at,
                });
            })
            .await
            .unwrap();
            let (got, chart) = finish_region(walk);
            let (want, line) = wanted(&all, r, from, to);
            assert_eq!(got, want, "region {region}, window {from}..{to}");
            assert_eq!(chart, line, "region {region}, window {from}..{to}");
            // Walked and kept, then read back.
            assert_eq!(
                kept(region, from, to).await,
                want,
                "kept days, walked: {region}, {from}..{to}"
            );
            assert_eq!(
                kept(region, from, to).await,
                want,
                "kept days, read: {region}, {from}..{to}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 16);
    let stored = cat
        .query_i64("SELECT count(*) FROM exposure_days")
        .await
        .unwrap()
        .unwrap();
    assert!(stored >= 8, "{stored} days kept");

    // The past changes: a long-lived point deleted on the first day, and a
    // point put back in the middle of the second (as a rebuild does).
    let (i, _) = all
        .iter()
        .enumerate()
        .find(|(_, (_, _, iv))| iv.valid_to.is_none() && iv.valid_from < T0 + 20 * 60 * M)
        .expect("a point never deleted on the first day");
    let at = all[i].2.valid_from + 3 * 60 * M;
    cat.mark_point_deleting(ids[i], at).await.unwrap();
    all[i].2.valid_to = Some(at);
    let data = T0 + 30 * 60 * M;
    complete_point(&cat, "shop", "db", "dr", None, None, data, data + 7 * M).await;
    all.push((
        1,
        0,
        Interval {
            resource: 0,
            data_time: data,
            valid_from: data + 7 * M,
            valid_to: None,
        },
    ));
    for (from, to) in windows {
        for (r, region) in regions.iter().enumerate() {
            let (want, _) = wanted(&all, r, from, to);
            assert_eq!(
                kept(region, from, to).await,
                want,
                "after the change: {region}, {from}..{to}"
            );
        }
    }
    cat.close().await;
}
