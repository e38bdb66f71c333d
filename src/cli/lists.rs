//! `points list`, `drills list` and `status`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{print_json, Cli};
use lifeboat::catalog::PointFilter;
use lifeboat::time::{human_duration_secs, rfc3339};

#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// Recovery points, oldest first (complete and damaged ones unless --all).
    List {
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// Include failed, running, deleting and deleted points.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DrillsCommand {
    /// Drills, oldest first.
    List {
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

pub async fn points(cli: &Cli, cmd: &PointsCommand) -> Result<ExitCode> {
    let PointsCommand::List {
        plan,
        region,
        all,
        json,
    } = cmd;
    let ctx = cli.context().await?;
    let points = ctx
        .catalog
        .points(&PointFilter {
            plan: plan.clone(),
            region: region.clone(),
            resource: None,
            all_statuses: *all,
        })
        .await?;
    if *json {
        print_json(&points)?;
    } else if points.is_empty() {
        outln!("no points");
    } else {
        super::backup::print_points(&points);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn drills(cli: &Cli, cmd: &DrillsCommand) -> Result<ExitCode> {
    let DrillsCommand::List { plan, json } = cmd;
    let ctx = cli.context().await?;
    let drills = ctx
        .catalog
        .drills_between(plan.as_deref(), i64::MIN, i64::MAX)
        .await?;
    let mut views = Vec::with_capacity(drills.len());
    for d in &drills {
        views.push(ctx.catalog.drill_view(d).await?);
    }
    if *json {
        print_json(&views)?;
        return Ok(ExitCode::SUCCESS);
    }
    if views.is_empty() {
        outln!("no drills");
    }
    let dur = |v: Option<f64>| v.map(human_duration_secs).unwrap_or_else(|| "—".into());
    for d in &views {
        outln!(
            "{:>4}  {:<14} {:<10} {:<24} {:<7} RTO {:<10} RPO {:<10} {}",
            d.id,
            d.plan,
            d.region,
            rfc3339(d.started_at),
            d.status.as_str(),
            dur(d.rto_seconds),
            dur(d.rpo_seconds),
            d.error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let plans = cli.plans_or_one(None)?;
    let ctx = cli.context().await?;
    let now = lifeboat::time::now_ms();
    let status = lifeboat::report::status::build(&ctx.catalog, &plans, now).await?;
    if args.json {
        print_json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    if status.is_empty() {
        outln!("no valid plan in {}", cli.plans.display());
    }
    // Colour only for a person at a terminal; NO_COLOR (no-color.org) opts out.
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    out!(
        "{}",
        lifeboat::report::status::render_table(&status, now, colour)
    );
    Ok(ExitCode::SUCCESS)
}
