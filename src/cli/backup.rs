//! `backup run` and `demo`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::plan_arg::OnePlan;
use super::{exit, print_json, Cli};
use lifeboat::catalog::{Point, RunStatus};
use lifeboat::time::rfc3339;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// A point of every resource now, then the copies to the other regions.
    #[command(after_help = "\
Examples:
  lifeboat backup run shop            plan shop, from ./plans, into ./lifeboat.db
  lifeboat backup run shop --json     the run and its points as JSON

Exit codes: 0 every point taken and copied; 1 the run failed or was partial; 2 bad input.")]
    Run {
        #[command(flatten)]
        plan: OnePlan,
        /// Print the run and its points as JSON (sizes in bytes).
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &BackupCommand) -> Result<ExitCode> {
    let BackupCommand::Run { plan, json } = cmd;
    let plan = cli.plan(plan.name())?;
    cli.global_notify_url()?;
    let ctx = cli.context().await?;
    let outcome = lifeboat::backup::run(&ctx, &plan, "manual", None).await?;
    if *json {
        print_json(&json!({
            "run_id": outcome.run_id,
            "plan": plan.name,
            "status": outcome.status,
            "error": outcome.error,
            "hooks": outcome.hooks,
            "points": outcome.points,
        }))?;
    } else {
        outln!(
            "backup run {} of plan {}: {}",
            outcome.run_id,
            plan.name,
            outcome.status
        );
        print_hooks(&outcome.hooks, lifeboat::backup::Stage::Before);
        print_points(&outcome.points);
        print_hooks(&outcome.hooks, lifeboat::backup::Stage::After);
    }
    if let Some(n) =
        lifeboat::notify::Notification::from_backup(&plan, &outcome, lifeboat::time::now_ms())
    {
        cli.notify(&plan, &n).await?;
    }
    Ok(exit(outcome.status == RunStatus::Succeeded))
}

/// The hook of `stage`, if it ran: passed or failed, with its output.
fn print_hooks(hooks: &[lifeboat::backup::HookRun], stage: lifeboat::backup::Stage) {
    for h in hooks.iter().filter(|h| h.hook == stage) {
        outln!(
            "  {} {} hook ({:.1}s): {}",
            if h.passed { "pass" } else { "FAIL" },
            h.hook.as_str(),
            h.seconds,
            h.detail
        );
    }
}

pub fn print_points(points: &[Point]) {
    outln!(
        "{:>5}  {:<14} {:<14} {:<8} {:<10} {:<9} {:<24} {:>10}  flags",
        "id",
        "plan",
        "resource",
        "kind",
        "region",
        "status",
        "data_time",
        "size"
    );
    for p in points {
        outln!(
            "{:>5}  {:<14} {:<14} {:<8} {:<10} {:<9} {:<24} {:>10}  {}",
            p.id,
            p.plan,
            p.resource,
            p.kind,
            p.region,
            p.status,
            p.data_time.map(rfc3339).unwrap_or_else(|| "-".into()),
            p.size_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
            p.flag_list().join(",")
        );
        if let Some(until) = p.locked_until.filter(|t| *t > lifeboat::time::now_ms()) {
            outln!("       S3 Object Lock until {}", rfc3339(until));
        }
        if let Some(e) = &p.error {
            outln!("       error: {e}");
        }
        if p.status == lifeboat::catalog::PointStatus::Damaged {
            outln!("       {}", lifeboat::verify::damaged_note(p));
        }
    }
}

/// A byte count from the catalog, for people.
pub fn human_bytes(n: i64) -> String {
    lifeboat::units::size(n.max(0) as u64)
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// One backup, one drill and a report, then exit (instead of the daemon).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    daemon: super::daemon::DaemonArgs,
}

/// The embedded default, end to end.
/// The demo plan, as shipped in `plans/demo.toml`: `demo` writes it into
/// its work folder when the plans folder has no `demo` plan, so it runs
/// from any folder.
const DEMO_PLAN: &str = include_str!("../../plans/demo.toml");

/// The plans folder `demo` uses: the one given when it holds a `demo`
/// plan (a checkout, an unpacked release), else `demo-plans` in the work
/// folder, holding the embedded plan (its data and vaults go beside it,
/// under `demo/`).
pub fn demo_plans(cli: &Cli) -> Result<std::path::PathBuf> {
    if cli.plans.is_dir() {
        let loaded = cli.load_plans()?;
        if loaded.get("demo").is_some() {
            return Ok(cli.plans.clone());
        }
    }
    let dir = cli.work_dir().join("demo-plans");
    let file = dir.join("demo.toml");
    if !file.exists() {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&file, DEMO_PLAN)
            .with_context(|| format!("cannot write {}", file.display()))?;
        outln!(
            "no demo plan in {}: wrote the embedded one to {}",
            cli.plans.display(),
            file.display()
        );
    }
    Ok(dir)
}

pub async fn demo(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    let plan = cli.plan("demo")?;
    for created in lifeboat::demo::seed(&plan)
        .await
        .map_err(anyhow::Error::msg)?
    {
        outln!("created {created}");
    }
    if !args.once {
        return super::daemon::run(cli, &args.daemon).await;
    }
    let ctx = cli.context().await?;
    outln!("\n== backup ==");
    let outcome = lifeboat::backup::run(&ctx, &plan, "manual", None).await?;
    outln!("backup run {}: {}", outcome.run_id, outcome.status);
    print_points(&outcome.points);
    outln!("\n== drill ==");
    let drill = lifeboat::drill::run(
        &ctx,
        &plan,
        &lifeboat::drill::DrillOptions {
            region: None,
            point: None,
            keep: false,
            trigger: "manual".into(),
        },
    )
    .await?;
    let view = ctx.catalog.drill_view(&drill.record).await?;
    super::drill::print_drill(&view, &drill.kept_databases);
    outln!("\n== report ==");
    let now = lifeboat::time::now_ms();
    let plans = [plan];
    let inputs = super::report::verified_inputs(&ctx.catalog, &plans).await;
    let report = lifeboat::report::build(
        &ctx.catalog,
        &inputs,
        now - 30 * 86_400_000,
        now + 1,
        now,
        false,
    )
    .await?;
    out!("{}", lifeboat::report::render_markdown(&report));
    let plans = if cli.plans == std::path::Path::new("plans") {
        String::new()
    } else {
        format!(" --plans {}", cli.plans.display())
    };
    outln!(
        "\nCatalog: {}. Try: lifeboat{plans} status · lifeboat{plans} points list · lifeboat{plans} drill run demo --keep · lifeboat{plans} report --format json",
        ctx.catalog.path().display()
    );
    Ok(exit(
        outcome.status == RunStatus::Succeeded && drill.record.passed(),
    ))
}
