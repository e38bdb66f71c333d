//! `points list`, `drills list` and `status`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::plan_arg::PlanFilter;
use super::{count_option, print_json, Cli};
use lifeboat::catalog::PointFilter;
use lifeboat::time::{human_duration_secs, rfc3339};

#[derive(Debug, Subcommand)]
pub enum PointsCommand {
    /// Recovery points, oldest first (complete and damaged ones unless --all).
    #[command(after_help = "\
Examples:
  lifeboat points list shop                       every usable point of plan shop
  lifeboat points list shop --region dr --all     with the failed and deleted ones
  lifeboat points list --limit 5 --newest-first   the five newest points of every plan")]
    List {
        #[command(flatten)]
        plan: PlanFilter,
        /// Only points in this region (as the plans name it).
        #[arg(long)]
        region: Option<String>,
        /// Include failed, running, deleting and deleted points.
        #[arg(long)]
        all: bool,
        /// Only the N newest points (listed oldest first unless
        /// --newest-first).
        #[arg(long, value_name = "N", value_parser = count_option(1_000_000))]
        limit: Option<usize>,
        /// List the newest point first.
        #[arg(long)]
        newest_first: bool,
        /// Print the points as JSON (sizes in bytes, times RFC 3339).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DrillsCommand {
    /// Drills, oldest first.
    List {
        #[command(flatten)]
        plan: PlanFilter,
        /// Print the drills as JSON (the drill records of the evidence).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat status                 every plan, as a table
  lifeboat status shop --json     one plan, for a script
  lifeboat status --check         for cron or a Nagios-style check: exit 1 and say why
                                  when any plan is out of its objectives

Exit codes: 0 shown (with --check: every plan within its objectives); 1 with --check, a \
plan's newest points are missing or older than its RPO, or its last drill failed or missed \
an objective; 2 bad input.")]
pub struct StatusArgs {
    #[command(flatten)]
    plan: PlanFilter,
    /// Exit 1 when any plan is out of its objectives (a region without a
    /// point within the RPO, a last drill failed or missed an objective),
    /// saying why on stdout.
    #[arg(long)]
    check: bool,
    /// Print the status as JSON (each plan's `problems` say what is wrong).
    #[arg(long)]
    json: bool,
}

pub async fn points(cli: &Cli, cmd: &PointsCommand) -> Result<ExitCode> {
    let PointsCommand::List {
        plan,
        region,
        all,
        limit,
        newest_first,
        json,
    } = cmd;
    let ctx = cli.context().await?;
    if let Some(name) = plan.name() {
        cli.known_plan(&ctx, name).await?;
    }
    let mut points = ctx
        .catalog
        .points(&PointFilter {
            plan: plan.name().map(str::to_string),
            region: region.clone(),
            resource: None,
            all_statuses: *all,
        })
        .await?;
    if let Some(n) = limit {
        points.drain(..points.len().saturating_sub(*n));
    }
    if *newest_first {
        points.reverse();
    }
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
    if let Some(name) = plan.name() {
        cli.known_plan(&ctx, name).await?;
    }
    let drills = ctx
        .catalog
        .drills_between(plan.name(), i64::MIN, i64::MAX)
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
    let plans = cli.plans_or_one(args.plan.name())?;
    let ctx = cli.context().await?;
    let now = lifeboat::time::now_ms();
    let status = lifeboat::report::status::build(&ctx.catalog, &plans, now).await?;
    let troubled = status.iter().filter(|p| !p.problems.is_empty()).count();
    let code = if args.check && troubled > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if args.json {
        print_json(&status)?;
        return Ok(code);
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
    if args.check {
        outln!();
        if troubled == 0 {
            outln!("OK: {} plan(s) within their objectives", status.len());
        } else {
            outln!(
                "BREACH: {troubled} of {} plan(s) out of their objectives",
                status.len()
            );
        }
        for p in &status {
            for problem in &p.problems {
                outln!("  {}: {problem}", p.plan);
            }
        }
    }
    Ok(code)
}
