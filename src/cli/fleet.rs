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
    /// saying why on stdout: for cron and monitoring.
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
    let now = lifeboat::time::now_ms();
    let view = lifeboat::report::fleet::build(&ctx.catalog, &plans, now).await?;
    let unowned = view.unowned();
    let code = if args.check && unowned > 0 {
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
    out!("{}", lifeboat::report::fleet::render_table(&view, now));
    if args.check {
        outln!();
        if unowned == 0 {
            outln!(
                "OK: every one of {} plan(s) has a live owner",
                view.plans.len()
            );
        } else {
            outln!(
                "PROBLEM: {unowned} of {} plan(s) run nowhere",
                view.plans.len()
            );
        }
    }
    Ok(code)
}
