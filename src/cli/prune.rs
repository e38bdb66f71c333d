//! `prune`: delete the points retention no longer keeps, in every region.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{exit, Cli};
use lifeboat::leftovers::{self, Scope};
use lifeboat::time::{now_ms, rfc3339};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only this plan [default: every plan].
    plan: Option<String>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Vault artifacts no usable point owns (of failed backups, or left
    /// by a crash) are removed once this old (at most 30d).
    #[arg(long, default_value = "24h", value_parser = super::duration_option)]
    unowned_grace: std::time::Duration,
}

pub async fn run(cli: &Cli, args: &PruneArgs) -> Result<ExitCode> {
    let plans = cli.plans_or_one(args.plan.as_deref())?;
    let ctx = cli.context().await?;
    let mut failures = 0;
    for plan in &plans {
        let pruned = lifeboat::prune::run(&ctx, plan, now_ms(), args.dry_run).await?;
        for p in &pruned {
            let what = format!(
                "point {} ({} {} in {}, data {})",
                p.point.id,
                plan.name,
                p.point.resource,
                p.point.region,
                p.point.data_time.map(rfc3339).unwrap_or_default(),
            );
            if let Some(until) = p.locked_until {
                outln!(
                    "kept {what}: object lock until {}; to delete then: {}",
                    rfc3339(until),
                    p.reason
                );
                continue;
            }
            let verb = match (&p.result, args.dry_run) {
                (_, true) => "would delete",
                (Ok(()), false) => "deleted",
                (Err(_), false) => "FAILED to delete",
            };
            outln!("{verb} {what}: {}", p.reason);
            if let Err(e) = &p.result {
                eprintln!(
                    "error: point {}: {e}; it will be retried by the next prune",
                    p.point.id
                );
                failures += 1;
            }
        }
        let scope = Scope {
            region: None,
            unowned_grace: Some(args.unowned_grace),
        };
        let found = leftovers::in_vaults(&ctx.catalog, plan, scope, now_ms()).await?;
        super::leftovers::print_problems(&found.problems);
        if pruned.is_empty() && found.leftovers.is_empty() {
            outln!("plan {}: nothing to prune", plan.name);
        }
        let done = leftovers::remove(found.leftovers, now_ms(), args.dry_run).await;
        failures += super::leftovers::print_outcomes(&done);
    }
    // Snapshot folders of backups that are gone, whatever their plan.
    let found = leftovers::in_work_dir(&ctx.tmp_dir(), now_ms()).await;
    super::leftovers::print_problems(&found.problems);
    let done = leftovers::remove(found.leftovers, now_ms(), args.dry_run).await;
    failures += super::leftovers::print_outcomes(&done);
    Ok(exit(failures == 0))
}
