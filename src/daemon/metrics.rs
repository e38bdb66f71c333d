//! The Prometheus exposition of `/metrics` (text format 0.0.4).
//!
//! Computed from the catalog at scrape time rather than kept as in-process
//! counters: the catalog is the source of truth, survives restarts, and
//! records what `lifeboat` runs from the command line too, so counts never
//! reset when the daemon does and never miss a CLI run. The large tables
//! are read incrementally (`catalog::RunTally`, `catalog::WrittenBytes`):
//! a scrape reads only what changed since the last one. Every family has
//! a fixed label set (no value that changes on its own, like a failure
//! count, is a label), and `docs/metrics.md` describes each one.

use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;

use super::breaker::State as BreakerState;
use super::Shared;
use crate::catalog::{CatalogError, DURATION_BUCKETS};
use crate::plan::Plan;

/// The text being written: each family's `# HELP` and `# TYPE`, then its
/// samples.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", esc(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Label values are plan, region and status names, which validation
/// restricts to safe characters; breaker keys hold URLs, so escape anyway.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Every metric, read from the catalog and the daemon's state now.
pub(super) async fn render(shared: &Shared) -> Result<String, CatalogError> {
    let plans: Vec<_> = shared.plans.read().await.plans().cloned().collect();
    let mut out = Exposition::default();

    out.family(
        "lifeboat_build_info",
        "gauge",
        "Always 1; the labels say which build is running.",
    );
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    out.sample(
        "lifeboat_build_info",
        &[("version", env!("CARGO_PKG_VERSION")), ("profile", profile)],
        1,
    );
    out.family("lifeboat_plans", "gauge", "Plans loaded.");
    out.sample("lifeboat_plans", &[], plans.len());
    out.family(
        "lifeboat_plan_reload_errors_total",
        "counter",
        "Invalid plan files met while (re)loading.",
    );
    out.sample(
        "lifeboat_plan_reload_errors_total",
        &[],
        shared.reload_errors.load(Ordering::Relaxed),
    );

    jobs(&mut out, shared).await?;
    runs(&mut out, shared, &plans).await?;
    written(&mut out, shared).await?;
    objectives(&mut out, shared, &plans).await?;
    damaged(&mut out, shared, &plans).await?;
    breakers(&mut out, shared);
    fleet(&mut out, shared);
    Ok(out.0)
}

/// A fleet daemon's share and its rounds (absent outside a fleet).
fn fleet(out: &mut Exposition, shared: &Shared) {
    let Some(me) = shared.fleet.as_ref() else {
        return;
    };
    let c = &me.counters;
    let daemon = [("daemon", me.id.as_str())];
    out.family(
        "lifeboat_fleet_owned_plans",
        "gauge",
        "Plans this fleet daemon owns (schedules) now.",
    );
    out.sample("lifeboat_fleet_owned_plans", &daemon, me.owned().len());
    out.family(
        "lifeboat_fleet_live_daemons",
        "gauge",
        "Live daemons of the fleet at this daemon's last round, itself included.",
    );
    out.sample(
        "lifeboat_fleet_live_daemons",
        &daemon,
        c.live.load(Ordering::Relaxed),
    );
    out.family(
        "lifeboat_fleet_rounds_total",
        "counter",
        "Heartbeat and lease-renewal rounds, by outcome (ok, failed: the catalog was out of reach).",
    );
    for (outcome, n) in [("ok", &c.rounds), ("failed", &c.failed_rounds)] {
        out.sample(
            "lifeboat_fleet_rounds_total",
            &[("daemon", &me.id), ("outcome", outcome)],
            n.load(Ordering::Relaxed),
        );
    }
    out.family(
        "lifeboat_fleet_plan_moves_total",
        "counter",
        "Plans this daemon took over (gained) or gave up (lost).",
    );
    for (direction, n) in [("gained", &c.gained), ("lost", &c.lost)] {
        out.sample(
            "lifeboat_fleet_plan_moves_total",
            &[("daemon", &me.id), ("direction", direction)],
            n.load(Ordering::Relaxed),
        );
    }
    out.family(
        "lifeboat_fleet_last_round_timestamp_seconds",
        "gauge",
        "When this daemon last renewed its row and its plans' leases (0 before the first round).",
    );
    out.sample(
        "lifeboat_fleet_last_round_timestamp_seconds",
        &daemon,
        seconds(c.last_round_ms.load(Ordering::Relaxed)),
    );
}

/// The scheduler's view: every slot of every track, by how it ended.
async fn jobs(out: &mut Exposition, shared: &Shared) -> Result<(), CatalogError> {
    out.family(
        "lifeboat_jobs_total",
        "counter",
        "Slots of the daemon's schedules by plan, kind and outcome: succeeded, failed, skipped (a drill before the plan's first complete point), missed (not started in its start window), running.",
    );
    for (plan, kind, status, n) in shared.ctx.catalog.job_counts().await? {
        out.sample(
            "lifeboat_jobs_total",
            &[
                ("plan", &plan),
                ("kind", kind.as_str()),
                ("status", status.as_str()),
            ],
            n,
        );
    }
    Ok(())
}

/// What ran, CLI runs included: outcomes, durations, last successes.
async fn runs(out: &mut Exposition, shared: &Shared, plans: &[Plan]) -> Result<(), CatalogError> {
    let cat = &shared.ctx.catalog;
    let mut tallies = shared.runs.lock().await;
    for tally in tallies.iter_mut() {
        tally.refresh(cat).await?;
    }
    let all: Vec<_> = tallies
        .iter()
        .map(|t| (t.source().kind(), t.stats()))
        .collect();
    out.family(
        "lifeboat_runs_total",
        "counter",
        "Finished backups and drills (from the CLI or the daemon) and the daemon's prunes and verifies, by plan, kind and status.",
    );
    for (kind, stats) in &all {
        for (plan, s) in *stats {
            for (status, n) in &s.by_status {
                out.sample(
                    "lifeboat_runs_total",
                    &[("plan", plan), ("kind", kind), ("status", status)],
                    n,
                );
            }
        }
    }
    out.family(
        "lifeboat_run_duration_seconds",
        "histogram",
        "How long finished runs took (the same runs as lifeboat_runs_total), by plan and kind.",
    );
    for (kind, stats) in &all {
        for (plan, s) in *stats {
            let bounds = DURATION_BUCKETS.iter().map(|b| b.to_string());
            let counts = s.buckets.iter().copied();
            for (le, n) in bounds.zip(counts).chain([("+Inf".to_string(), s.count())]) {
                out.sample(
                    "lifeboat_run_duration_seconds_bucket",
                    &[("plan", plan.as_str()), ("kind", kind), ("le", &le)],
                    n,
                );
            }
            let labels = [("plan", plan.as_str()), ("kind", *kind)];
            out.sample(
                "lifeboat_run_duration_seconds_sum",
                &labels,
                s.duration_sum_seconds,
            );
            out.sample("lifeboat_run_duration_seconds_count", &labels, s.count());
        }
    }
    out.family(
        "lifeboat_last_success_timestamp_seconds",
        "gauge",
        "When the newest successful run of each kind finished (copy: when the newest copy still complete in another region completed), by plan; absent before the first.",
    );
    for (kind, stats) in &all {
        for (plan, s) in *stats {
            if let Some(t) = s.last_success {
                out.sample(
                    "lifeboat_last_success_timestamp_seconds",
                    &[("plan", plan), ("kind", kind)],
                    seconds(t),
                );
            }
        }
    }
    for plan in plans {
        let mut newest = None;
        for region in &plan.backup.copy_to {
            for res in &plan.resources {
                if let Some(p) = cat
                    .newest_complete_point(&plan.name, &res.name, region)
                    .await?
                {
                    newest = newest.max(p.completed_at);
                }
            }
        }
        if let Some(t) = newest {
            out.sample(
                "lifeboat_last_success_timestamp_seconds",
                &[("plan", &plan.name), ("kind", "copy")],
                seconds(t),
            );
        }
    }
    Ok(())
}

/// Bytes of complete points, per plan and region.
async fn written(out: &mut Exposition, shared: &Shared) -> Result<(), CatalogError> {
    let mut written = shared.written.lock().await;
    written.refresh(&shared.ctx.catalog).await?;
    out.family(
        "lifeboat_written_bytes_total",
        "counter",
        "Bytes stored by every point that became complete (backups in the primary region, copies in the others), by plan and region; pruning does not lower it.",
    );
    for ((plan, region), bytes) in written.totals() {
        out.sample(
            "lifeboat_written_bytes_total",
            &[("plan", plan), ("region", region)],
            bytes,
        );
    }
    Ok(())
}

/// Objectives, exposure now, and the last drill.
async fn objectives(
    out: &mut Exposition,
    shared: &Shared,
    plans: &[Plan],
) -> Result<(), CatalogError> {
    let cat = &shared.ctx.catalog;
    let now = shared.clock.now_ms();
    let status = crate::report::status::build(cat, plans, now).await?;
    out.family(
        "lifeboat_newest_point_age_seconds",
        "gauge",
        "Age of the newest data every resource has in a region (worst resource); absent while a resource has none.",
    );
    for p in &status {
        for r in &p.regions {
            if let Some(age) = r.age_seconds {
                out.sample(
                    "lifeboat_newest_point_age_seconds",
                    &[("plan", &p.plan), ("region", &r.region)],
                    age,
                );
            }
        }
    }
    out.family(
        "lifeboat_rpo_objective_seconds",
        "gauge",
        "The plan's RPO objective.",
    );
    for p in &status {
        out.sample(
            "lifeboat_rpo_objective_seconds",
            &[("plan", &p.plan)],
            p.rpo_objective_seconds,
        );
    }
    out.family(
        "lifeboat_rto_objective_seconds",
        "gauge",
        "The plan's RTO objective.",
    );
    for p in &status {
        out.sample(
            "lifeboat_rto_objective_seconds",
            &[("plan", &p.plan)],
            p.rto_objective_seconds,
        );
    }
    let mut drills = Vec::new();
    for p in plans {
        if let Some(d) = cat.last_drill(&p.name).await? {
            drills.push(d);
        }
    }
    out.family(
        "lifeboat_objective_breach",
        "gauge",
        "1 when an objective is breached now, by plan, objective and region (rpo: the newest point in the region is older than the RPO objective, or a resource has none; drill: the last drill, run in that region, failed or missed its objectives).",
    );
    for p in &status {
        for r in &p.regions {
            out.sample(
                "lifeboat_objective_breach",
                &[
                    ("plan", &p.plan),
                    ("objective", "rpo"),
                    ("region", &r.region),
                ],
                u8::from(!r.within_rpo),
            );
        }
    }
    for d in &drills {
        out.sample(
            "lifeboat_objective_breach",
            &[
                ("plan", &d.plan),
                ("objective", "drill"),
                ("region", &d.region),
            ],
            u8::from(!d.met_objectives()),
        );
    }
    out.family(
        "lifeboat_last_drill_passed",
        "gauge",
        "1 when the plan's last drill passed its restores and checks; absent before the first drill.",
    );
    for d in &drills {
        out.sample(
            "lifeboat_last_drill_passed",
            &[("plan", &d.plan)],
            u8::from(d.passed()),
        );
    }
    out.family(
        "lifeboat_last_drill_rto_seconds",
        "gauge",
        "RTO measured by the last drill (absent when it failed).",
    );
    for d in &drills {
        if let Some(v) = d.rto_ms {
            out.sample(
                "lifeboat_last_drill_rto_seconds",
                &[("plan", &d.plan)],
                seconds(v),
            );
        }
    }
    out.family(
        "lifeboat_last_drill_rpo_seconds",
        "gauge",
        "RPO measured by the last drill (absent when it could not be measured).",
    );
    for d in &drills {
        if let Some(v) = d.rpo_ms {
            out.sample(
                "lifeboat_last_drill_rpo_seconds",
                &[("plan", &d.plan)],
                seconds(v),
            );
        }
    }
    Ok(())
}

async fn damaged(
    out: &mut Exposition,
    shared: &Shared,
    plans: &[Plan],
) -> Result<(), CatalogError> {
    out.family(
        "lifeboat_damaged_points",
        "gauge",
        "Points found damaged (by verify or a drill) and not pruned yet, per plan and region: not used by drills, status or the report.",
    );
    for plan in plans {
        for region in plan.point_regions() {
            let mut damaged = 0;
            for res in &plan.resources {
                damaged += shared
                    .ctx
                    .catalog
                    .damaged_points(&plan.name, &res.name, region)
                    .await?
                    .len();
            }
            out.sample(
                "lifeboat_damaged_points",
                &[("plan", &plan.name), ("region", region)],
                damaged,
            );
        }
    }
    Ok(())
}

fn breakers(out: &mut Exposition, shared: &Shared) {
    let snapshot = shared.breakers.snapshot();
    out.family(
        "lifeboat_breaker_open",
        "gauge",
        "1 when a vault's circuit breaker is open or half-open (its jobs are recorded missed), by breaker (`vault REGION URL`).",
    );
    for (key, state, _) in &snapshot {
        let open = !matches!(state, BreakerState::Closed);
        out.sample("lifeboat_breaker_open", &[("breaker", key)], u8::from(open));
    }
    out.family(
        "lifeboat_breaker_consecutive_failures",
        "gauge",
        "Consecutive failed backups a breaker has counted (0 after a success).",
    );
    for (key, _, failures) in &snapshot {
        out.sample(
            "lifeboat_breaker_consecutive_failures",
            &[("breaker", key)],
            failures,
        );
    }
}
