//! `catalog rebuild`: record a lost catalog's points again from a vault.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::plan_arg::PlanFilter;
use super::{bad_input, exit, print_json, Cli};
use lifeboat::rebuild::{rebuild, RebuildError, Rebuilt};
use lifeboat::time::rfc3339;

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Record every point whose manifest and data are in a region's vault,
    /// and every drill of its evidence chain, into the catalog (a new one,
    /// when the old is lost). RDS points, which live in RDS, are not
    /// rebuilt.
    Rebuild {
        /// The region whose vault to read, as the plans name it.
        #[arg(long = "from", value_name = "REGION")]
        from: String,
        /// Only this plan [default: every plan with points in REGION].
        #[command(flatten)]
        plan: PlanFilter,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &CatalogCommand) -> Result<ExitCode> {
    let CatalogCommand::Rebuild { from, plan, json } = cmd;
    let plans: Vec<_> = cli
        .plans_or_one(plan.name())?
        .into_iter()
        .filter(|p| plan.name().is_some() || p.point_regions().contains(&from.as_str()))
        .collect();
    if plans.is_empty() {
        return Err(bad_input(format!(
            "no plan in {} keeps points in region `{from}`",
            cli.plans.display()
        )));
    }
    let ctx = cli.context().await?;
    let mut done = Vec::new();
    for p in &plans {
        match rebuild(&ctx.catalog, p, from).await {
            Ok(r) => done.push(r),
            Err(e @ (RebuildError::NoVault { .. } | RebuildError::NotEmpty { .. })) => {
                return Err(bad_input(e.to_string()))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let clean = done
        .iter()
        .all(|r| r.skipped.is_empty() && r.evidence_problem.is_none());
    if *json {
        print_json(&serde_json::json!({ "rebuilt": done }))?;
    } else {
        for r in &done {
            print_human(r);
        }
    }
    Ok(exit(clean))
}

fn print_human(r: &Rebuilt) {
    let per_resource: Vec<String> = r
        .resources
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let newest = r
        .newest_data_time
        .map(|t| format!(", newest data {}", rfc3339(t)))
        .unwrap_or_default();
    outln!(
        "plan {}, region {} ({}): {} point(s) rebuilt{}{newest}",
        r.plan,
        r.region,
        r.location,
        r.points.len(),
        if per_resource.is_empty() {
            String::new()
        } else {
            format!(" ({})", per_resource.join(", "))
        },
    );
    for s in &r.skipped {
        outln!("  not rebuilt: {}: {}", s.manifest, s.reason);
    }
    outln!(
        "  {} drill(s) recorded again from their evidence records",
        r.drills.len()
    );
    if let Some(problem) = &r.evidence_problem {
        outln!("  evidence chain not read to its end: {problem}; later drills not recorded");
    }
}
