//! `report`: verifies each plan's drill evidence chain in its vault, then
//! builds the report from the catalog and renders it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};

use super::plan_arg::PlanFilter;
use super::{bad_input, Cli};
use lifeboat::catalog::Catalog;
use lifeboat::plan::Plan;
use lifeboat::report::PlanInput;
use lifeboat::time::{now_ms, parse_rfc3339};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Markdown, for a ticket or a wiki.
    Md,
    /// One self-contained page with charts.
    Html,
    /// Every figure, for a program.
    Json,
    /// One row per plan and region.
    Csv,
}

/// The window of a report given neither `--since` nor `--from`/`--to`.
const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat report                                   the last 30 days of every plan, as Markdown
  lifeboat report shop --since 90d --format html --out shop.html
  lifeboat report --from 2026-10-01T00:00:00Z --to 2026-11-01T00:00:00Z --format csv
  lifeboat report --fail-on-breach > /dev/null      exit 1 when a plan is not compliant

Exit codes: 0 written; 1 with --fail-on-breach, a plan is not compliant (or the report \
failed); 2 bad input.")]
pub struct ReportArgs {
    /// Window ending now, e.g. 30d (default 30d; at most 100 years).
    #[arg(long, conflicts_with_all = ["from", "to"], value_parser = super::window_option)]
    since: Option<std::time::Duration>,
    /// Window start (RFC 3339).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Window end (RFC 3339).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// The report's format.
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 1 when any plan is not compliant.
    #[arg(long)]
    fail_on_breach: bool,
    #[command(flatten)]
    plan: PlanFilter,
}

pub async fn run(cli: &Cli, args: &ReportArgs) -> Result<ExitCode> {
    let now = now_ms();
    let (from, to) = match (&args.since, &args.from, &args.to) {
        (_, Some(f), Some(t)) => {
            let from = parse_rfc3339(f).map_err(|e| bad_input(e.to_string()))?;
            let to = parse_rfc3339(t).map_err(|e| bad_input(e.to_string()))?;
            if from >= to {
                return Err(bad_input("--from must be before --to"));
            }
            (from, to)
        }
        (since, _, _) => {
            let d = since.unwrap_or(DEFAULT_WINDOW);
            // At most a century (`window_option`): fits in milliseconds.
            (now - d.as_millis() as i64, now)
        }
    };
    let plans = cli.plans_or_one(args.plan.name())?;
    let ctx = cli.context().await?;
    let charts = matches!(args.format, Format::Html);
    let inputs = verified_inputs(&ctx.catalog, &plans).await;
    let report = lifeboat::report::build(&ctx.catalog, &inputs, from, to, now, charts).await?;
    let breached = report.plans.iter().any(|p| !p.compliant);
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Md => lifeboat::report::render_markdown(&report),
        Format::Csv => {
            lifeboat::report::render_csv(&report).context("cannot render the CSV report")?
        }
        Format::Html => lifeboat::report::render_html(&report)?,
    };
    match &args.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write report to {}", path.display()))?,
        None => out!("{text}"),
    }
    Ok(if args.fail_on_breach && breached {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Each plan with its drill evidence chain verified: the report reads only
/// the catalog, so the vault is read here.
pub async fn verified_inputs<'a>(cat: &Catalog, plans: &'a [Plan]) -> Vec<PlanInput<'a>> {
    let mut inputs = Vec::with_capacity(plans.len());
    for plan in plans {
        inputs.push(PlanInput {
            plan,
            evidence: lifeboat::evidence::verify(cat, plan).await,
        });
    }
    inputs
}
