//! `drill run`.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use super::{bad_input, exit, print_json, Cli};
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
    let mut value = lifeboat::report::drill_json(&ctx.catalog, &drill.record).await?;
    if !drill.kept_databases.is_empty() {
        value["kept_databases"] = serde_json::json!(drill.kept_databases);
    }
    if *json {
        print_json(&value)?;
    } else {
        print_drill(&value);
    }
    if let Some(n) =
        lifeboat::notify::Notification::from_drill(&ctx.catalog, &plan, &drill.record).await
    {
        cli.notify(&plan, &n).await?;
    }
    Ok(exit(drill.record.passed()))
}

fn secs(v: &Value) -> String {
    v.as_f64()
        .map(human_duration_secs)
        .unwrap_or_else(|| "—".into())
}

/// The human summary of a drill record.
pub fn print_drill(d: &Value) {
    let passed = d["passed"].as_bool() == Some(true);
    println!(
        "drill {} of plan {} in region {}: {}",
        d["id"],
        d["plan"].as_str().unwrap_or(""),
        d["region"].as_str().unwrap_or(""),
        if passed { "PASSED" } else { "FAILED" }
    );
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  RTO {} (objective {}, {})   RPO {} (objective {}, {})",
        secs(&d["rto_seconds"]),
        secs(&d["rto_objective_seconds"]),
        mark(d["met_rto"].as_bool() == Some(true)),
        secs(&d["rpo_seconds"]),
        secs(&d["rpo_objective_seconds"]),
        mark(d["met_rpo"].as_bool() == Some(true)),
    );
    let p = &d["phases"];
    println!(
        "  phases: choose {} · restore {} · checks {} · cleanup {}",
        secs(&p["choose_seconds"]),
        secs(&p["restore_seconds"]),
        secs(&p["checks_seconds"]),
        secs(&p["cleanup_seconds"])
    );
    let points: Vec<String> = d["points"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.to_string())
        .collect();
    println!(
        "  points restored: {}",
        if points.is_empty() {
            "none".into()
        } else {
            points.join(", ")
        }
    );
    println!("  checks:");
    for c in d["checks"].as_array().into_iter().flatten() {
        println!(
            "    {} {:<18} {:<14} {}",
            if c["passed"].as_bool() == Some(true) {
                "pass"
            } else {
                "FAIL"
            },
            c["name"].as_str().unwrap_or(""),
            c["resource"].as_str().unwrap_or(""),
            c["detail"].as_str().unwrap_or("")
        );
    }
    if let Some(k) = d["kept_path"].as_str() {
        println!("  restored data kept in {k}");
    }
    for db in d["kept_databases"].as_array().into_iter().flatten() {
        println!(
            "  restored database kept: {} (drop it when done)",
            db.as_str().unwrap_or("")
        );
    }
}
