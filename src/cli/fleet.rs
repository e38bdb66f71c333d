//! `lifeboat fleet`: the daemons sharing the catalog and the plans each
//! owns (docs/fleet.md).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{print_json, Cli};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat --catalog postgres://lifeboat@db/lifeboat fleet           daemons and plans
  lifeboat --catalog postgres://lifeboat@db/lifeboat fleet --check   exit 1 if a plan runs nowhere")]
pub struct FleetArgs {
    /// Exit 1 when a plan loaded here (or owned before) has no live owner,
    /// or the live daemons load different plans, saying why on stdout: for
    /// cron and monitoring.
    #[arg(long)]
    check: bool,
    /// Print the fleet as JSON (times RFC 3339).
    #[arg(long)]
    json: bool,
}

pub async fn run(cli: &Cli, args: &FleetArgs) -> Result<ExitCode> {
    // The plans folder explains an unowned plan (its placement); the
    // fleet is shown from the catalog alone where this host has none.
    let plans = if cli.plans.is_dir() {
        cli.plans_or_one(None)?
    } else {
        Vec::new()
    };
    let ctx = cli.context().await?;
    if ctx.catalog.is_sqlite() {
        let why = format!(
            "catalog {} is a SQLite file, which one daemon runs alone: a fleet needs a catalog on PostgreSQL (docs/fleet.md)",
            cli.catalog.display()
        );
        if args.check {
            return Err(super::bad_input(why));
        }
        outln!("{why}");
        return Ok(ExitCode::SUCCESS);
    }
    let now = lifeboat::time::now_ms();
    let view = lifeboat::report::fleet::build(&ctx.catalog, &plans, now).await?;
    let unowned = view.unowned();
    let code = if args.check && view.troubled() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if args.json {
        print_json(&view)?;
        return Ok(code);
    }
    if view.daemons.is_empty() {
        outln!(
            "no fleet daemon has registered in catalog {} (daemons start with `lifeboat daemon --fleet`)",
            lifeboat::catalog::display_location(&cli.catalog)
        );
    }
    if !view.daemons.is_empty() || !view.plans.is_empty() {
        out!("{}", lifeboat::report::fleet::render_table(&view, now));
    }
    if view.plans_differ {
        outln!();
        outln!("WARNING: the live daemons load different plans (LOADED: count and digest of names and placements); deploy the same plans folder to every host");
    }
    if args.check {
        outln!();
        if !view.troubled() {
            outln!(
                "OK: every one of {} plan(s) has a live owner",
                view.plans.len()
            );
        } else {
            let differ = if view.plans_differ {
                "; the daemons load different plans"
            } else {
                ""
            };
            outln!(
                "PROBLEM: {unowned} of {} plan(s) run nowhere{differ}",
                view.plans.len()
            );
        }
    }
    Ok(code)
}
