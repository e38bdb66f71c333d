//! `/healthz`, `/readyz` and Prometheus `/metrics`.
//!
//! Metrics are computed from the catalog at scrape time rather than kept as
//! in-process counters: the catalog is the source of truth and survives
//! restarts, so counts never reset when the daemon does.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::breaker::State as BreakerState;
use super::Shared;
use crate::catalog::JobStatus;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let catalog_ok = sqlx::query("SELECT 1")
        .execute(shared.ctx.catalog.pool())
        .await
        .is_ok();
    if shared.ready.load(Ordering::SeqCst) && catalog_ok {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready (catalog reachable: {catalog_ok})\n"),
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    match render(&shared).await {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("catalog error: {e}\n"),
        ),
    }
}

/// Label values here are plan, region and status names, which validation
/// restricts to safe characters; breaker keys hold URLs, so escape anyway.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) async fn render(shared: &Shared) -> Result<String, crate::catalog::CatalogError> {
    let cat = &shared.ctx.catalog;
    let plans: Vec<_> = shared.plans.read().await.plans().cloned().collect();
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "# HELP lifeboat_plans Plans loaded.\n# TYPE lifeboat_plans gauge\nlifeboat_plans {}",
        plans.len()
    );
    let _ = writeln!(
        s,
        "# HELP lifeboat_plan_reload_errors_total Invalid plan files met while (re)loading.\n# TYPE lifeboat_plan_reload_errors_total counter\nlifeboat_plan_reload_errors_total {}",
        shared.reload_errors.load(Ordering::Relaxed)
    );

    let _ = writeln!(s, "# HELP lifeboat_jobs_total Scheduled jobs by plan, kind and outcome (missed included).\n# TYPE lifeboat_jobs_total counter");
    let counts = cat.job_counts().await?;
    for (plan, kind, status, n) in &counts {
        let _ = writeln!(
            s,
            "lifeboat_jobs_total{{plan=\"{}\",kind=\"{}\",status=\"{}\"}} {n}",
            esc(plan),
            kind.as_str(),
            status.as_str()
        );
    }
    let _ = writeln!(s, "# HELP lifeboat_missed_slots_total Slots that could not start in their window.\n# TYPE lifeboat_missed_slots_total counter");
    for (plan, kind, _, n) in counts.iter().filter(|c| c.2 == JobStatus::Missed) {
        let _ = writeln!(
            s,
            "lifeboat_missed_slots_total{{plan=\"{}\",kind=\"{}\"}} {n}",
            esc(plan),
            kind.as_str()
        );
    }

    let now = shared.clock.now_ms();
    let status = crate::report::status::build(cat, &plans, now).await?;
    let _ = writeln!(s, "# HELP lifeboat_newest_point_age_seconds Age of the newest data every resource has in a region (worst resource).\n# TYPE lifeboat_newest_point_age_seconds gauge");
    for p in &status {
        for r in &p.regions {
            if let Some(age) = r.age_seconds {
                let _ = writeln!(
                    s,
                    "lifeboat_newest_point_age_seconds{{plan=\"{}\",region=\"{}\"}} {age}",
                    esc(&p.plan),
                    esc(&r.region)
                );
            }
        }
    }
    let _ = writeln!(s, "# HELP lifeboat_rpo_objective_seconds RPO objective.\n# TYPE lifeboat_rpo_objective_seconds gauge");
    for p in &status {
        let _ = writeln!(
            s,
            "lifeboat_rpo_objective_seconds{{plan=\"{}\"}} {}",
            esc(&p.plan),
            p.rpo_objective_seconds
        );
    }
    let _ = writeln!(s, "# HELP lifeboat_objective_breach 1 when an objective is breached now (rpo: newest point too old in a region; drill: last drill failed or missed its objectives).\n# TYPE lifeboat_objective_breach gauge");
    for p in &status {
        for r in &p.regions {
            let _ = writeln!(
                s,
                "lifeboat_objective_breach{{plan=\"{}\",objective=\"rpo\",region=\"{}\"}} {}",
                esc(&p.plan),
                esc(&r.region),
                u8::from(!r.within_rpo)
            );
        }
        if let Some(d) = &p.last_drill {
            let _ = writeln!(
                s,
                "lifeboat_objective_breach{{plan=\"{}\",objective=\"drill\",region=\"\"}} {}",
                esc(&p.plan),
                u8::from(!d.met_objectives)
            );
        }
    }
    let _ = writeln!(s, "# HELP lifeboat_last_drill_passed 1 when the last drill passed.\n# TYPE lifeboat_last_drill_passed gauge");
    let mut rto = String::new();
    let mut rpo = String::new();
    for p in &status {
        if let Some(d) = &p.last_drill {
            let _ = writeln!(
                s,
                "lifeboat_last_drill_passed{{plan=\"{}\"}} {}",
                esc(&p.plan),
                u8::from(d.passed)
            );
            if let Some(v) = d.rto_seconds {
                let _ = writeln!(
                    rto,
                    "lifeboat_last_drill_rto_seconds{{plan=\"{}\"}} {v}",
                    esc(&p.plan)
                );
            }
            if let Some(v) = d.rpo_seconds {
                let _ = writeln!(
                    rpo,
                    "lifeboat_last_drill_rpo_seconds{{plan=\"{}\"}} {v}",
                    esc(&p.plan)
                );
            }
        }
    }
    let _ = write!(s, "# HELP lifeboat_last_drill_rto_seconds RTO measured by the last passing drill.\n# TYPE lifeboat_last_drill_rto_seconds gauge\n{rto}");
    let _ = write!(s, "# HELP lifeboat_last_drill_rpo_seconds RPO measured by the last drill.\n# TYPE lifeboat_last_drill_rpo_seconds gauge\n{rpo}");

    let _ = writeln!(s, "# HELP lifeboat_damaged_points Points found damaged (by verify or a drill) and not pruned yet, per plan and region: not used by drills, status or the report.\n# TYPE lifeboat_damaged_points gauge");
    for plan in &plans {
        for region in plan.point_regions() {
            let mut damaged = 0;
            for res in &plan.resources {
                damaged += cat
                    .damaged_points(&plan.name, &res.name, region)
                    .await?
                    .len();
            }
            let _ = writeln!(
                s,
                "lifeboat_damaged_points{{plan=\"{}\",region=\"{}\"}} {damaged}",
                esc(&plan.name),
                esc(region)
            );
        }
    }

    let _ = writeln!(s, "# HELP lifeboat_breaker_open 1 when a circuit breaker is open or half-open.\n# TYPE lifeboat_breaker_open gauge");
    for (key, state, failures) in shared.breakers.snapshot() {
        let open = !matches!(state, BreakerState::Closed);
        let _ = writeln!(
            s,
            "lifeboat_breaker_open{{breaker=\"{}\",consecutive_failures=\"{failures}\"}} {}",
            esc(&key),
            u8::from(open)
        );
    }
    Ok(s)
}
