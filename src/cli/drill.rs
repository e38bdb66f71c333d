//! `drill run`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::plan_arg::OnePlan;
use super::{bad_input, exit, print_json, Cli};
use lifeboat::catalog::DrillView;
use lifeboat::drill::{DrillError, DrillOptions, PointSelector};
use lifeboat::time::human_duration_secs;

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Restore the plan's points into scratch places, check them, measure RTO and RPO.
    #[command(after_help = "\
Examples:
  lifeboat drill run shop                       the newest points of the drill region
  lifeboat drill run shop --region primary --point oldest
  lifeboat drill run shop --keep                keep what was restored, to look at it

Exit codes: 0 every check passed and the RTO and RPO were within their objectives; 1 the \
drill failed, or it passed but missed an objective (0 with --no-fail-on-objective); 2 bad input.")]
    Run {
        #[command(flatten)]
        plan: OnePlan,
        /// Region to restore from (any that holds points) [default: the
        /// plan's drill region].
        #[arg(long)]
        region: Option<String>,
        /// A point id, or latest (default), oldest, random.
        #[arg(long)]
        point: Option<String>,
        /// Keep the restored data and print where it is.
        #[arg(long)]
        keep: bool,
        /// Exit 0 when every check passed even if the RTO or RPO missed its
        /// objective (the drill is still recorded as missing it).
        #[arg(long)]
        no_fail_on_objective: bool,
        /// Print the drill's record as JSON.
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
        no_fail_on_objective,
        json,
    } = cmd;
    let point = point
        .as_deref()
        .map(PointSelector::parse)
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    let plan = cli.plan(plan.name())?;
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
            met_objectives: view.met_objectives(),
            rto_within_objective: within(view.rto_seconds, view.rto_objective_seconds),
            rpo_within_objective: within(view.rpo_seconds, view.rpo_objective_seconds),
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
    let objectives_count = !*no_fail_on_objective;
    Ok(exit(
        drill.record.passed() && (drill.record.met_objectives() || !objectives_count),
    ))
}

/// Whether a measured value is within its objective; `None` when it was
/// not measured (an RTO is measured only when every check passed).
fn within(measured: Option<f64>, objective: f64) -> Option<bool> {
    measured.map(|m| m <= objective)
}

/// `drill run --json`: the drill's record, how each measure compares with
/// its objective (the record's `met_rto` and `met_rpo` are false for a
/// failed drill, whatever was measured), and the scratch databases kept.
#[derive(Serialize)]
struct DrillRunJson<'a> {
    #[serde(flatten)]
    drill: &'a DrillView,
    /// Passed, with both the RTO and the RPO within their objectives.
    met_objectives: bool,
    /// The measured RTO is within its objective; null when not measured.
    rto_within_objective: Option<bool>,
    /// The measured RPO is within its objective; null when not measured.
    rpo_within_objective: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    kept_databases: &'a [String],
}

fn secs(v: Option<f64>) -> String {
    v.map(human_duration_secs).unwrap_or_else(|| "—".into())
}

/// A measure against its objective, as it truly compares: `RPO 118ms
/// (objective 2m, met)` even on a failed drill (whose verdict is on the
/// drill's own line), `MISSED` only when the measure exceeds it, and `not
/// measured` when there is none (a failed drill has no RTO).
fn objective_line(what: &str, measured: Option<f64>, objective: f64) -> String {
    let verdict = match within(measured, objective) {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    format!(
        "{what} {} (objective {}, {verdict})",
        secs(measured),
        secs(Some(objective))
    )
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
    outln!(
        "  {}   {}",
        objective_line("RTO", d.rto_seconds, d.rto_objective_seconds),
        objective_line("RPO", d.rpo_seconds, d.rpo_objective_seconds),
    );
    if d.passed && !d.met_objectives() {
        outln!("  the checks passed but an objective was MISSED");
    }
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
