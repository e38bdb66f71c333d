//! `drill run`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::{bad_input, exit, print_json, Cli};
use lifeboat::catalog::DrillView;
use lifeboat::drill::{DrillError, DrillOptions, PointSelector};
use lifeboat::time::human_duration_secs;

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Restore the plan's points into scratch places, check them, measure RTO and RPO.
    Run {
        plan: String,
        /// Region to restore from [default: the plan's drill region].
        #[arg(long)]
        region: Option<String>,
        /// A point id, or latest (default), oldest, random.
        #[arg(long)]
        point: Option<String>,
        /// Keep the restored data and print where it is.
        #[arg(long)]
        keep: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &DrillCommand) -> Result<ExitCode> {
    let DrillCommand::Run {
        plan,
        region,
        point,
        keep,
        json,
    } = cmd;
    let point = point
        .as_deref()
        .map(PointSelector::parse)
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    let plan = cli.plan(plan)?;
    cli.global_notify_url()?;
    let ctx = cli.context().await?;
    let opts = DrillOptions {
        region: region.clone(),
        point,
        keep: *keep,
        trigger: "manual".into(),
    };
    let drill = match lifeboat::drill::run(&ctx, &plan, &opts).await {
        Ok(d) => d,
        Err(DrillError::Invalid(m)) => return Err(bad_input(m)),
        Err(e) => return Err(e.into()),
    };
    let view = ctx.catalog.drill_view(&drill.record).await?;
    if *json {
        print_json(&DrillRunJson {
            drill: &view,
            kept_databases: &drill.kept_databases,
        })?;
    } else {
        print_drill(&view, &drill.kept_databases);
    }
    if let Some(n) =
        lifeboat::notify::Notification::from_drill(&ctx.catalog, &plan, &drill.record).await
    {
        cli.notify(&plan, &n).await?;
    }
    Ok(exit(drill.record.passed()))
}

/// `drill run --json`: the drill's record, plus the scratch databases kept.
#[derive(Serialize)]
struct DrillRunJson<'a> {
    #[serde(flatten)]
    drill: &'a DrillView,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    kept_databases: &'a [String],
}

fn secs(v: Option<f64>) -> String {
    v.map(human_duration_secs).unwrap_or_else(|| "—".into())
}

/// One check's line, as drills and restores print it.
pub fn print_check(passed: bool, name: &str, resource: &str, detail: &str) {
    outln!(
        "    {} {:<18} {:<14} {}",
        if passed { "pass" } else { "FAIL" },
        name,
        resource,
        detail
    );
}

/// The human summary of a drill, and of the scratch databases it kept.
pub fn print_drill(d: &DrillView, kept_databases: &[String]) {
    outln!(
        "drill {} of plan {} in region {}: {}",
        d.id,
        d.plan,
        d.region,
        if d.passed { "PASSED" } else { "FAILED" }
    );
    // A failed drill meets no objective, whatever it measured: say why,
    // rather than MISSED beside an RPO well within its objective.
    let mark = |ok: bool| match (d.passed, ok) {
        (false, _) => "not met: the drill failed",
        (true, true) => "met",
        (true, false) => "MISSED",
    };
    outln!(
        "  RTO {} (objective {}, {})   RPO {} (objective {}, {})",
        secs(d.rto_seconds),
        secs(Some(d.rto_objective_seconds)),
        mark(d.met_rto),
        secs(d.rpo_seconds),
        secs(Some(d.rpo_objective_seconds)),
        mark(d.met_rpo),
    );
    let p = &d.phases;
    outln!(
        "  phases: choose {} · restore {} · checks {} · cleanup {}",
        secs(p.choose_seconds),
        secs(p.restore_seconds),
        secs(p.checks_seconds),
        secs(p.cleanup_seconds)
    );
    let points: Vec<String> = d.points.iter().map(i64::to_string).collect();
    outln!(
        "  points restored: {}",
        if points.is_empty() {
            "none".into()
        } else {
            points.join(", ")
        }
    );
    outln!("  checks:");
    for c in &d.checks {
        print_check(c.passed, &c.name, &c.resource, &c.detail);
    }
    if let Some(k) = &d.kept_path {
        outln!("  restored data kept in {k}");
    }
    for db in kept_databases {
        outln!("  restored database kept: {db} (drop it when done)");
    }
}
