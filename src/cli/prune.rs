//! `prune`: delete the points retention no longer keeps, in every region.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{exit, Cli};
use lifeboat::backup::region_vault;
use lifeboat::resource::ArtifactKeys;
use lifeboat::retention::{decide, Candidate};
use lifeboat::time::{now_ms, rfc3339};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only this plan [default: every plan].
    plan: Option<String>,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(cli: &Cli, args: &PruneArgs) -> Result<ExitCode> {
    let plans = cli.plans_or_one(args.plan.as_deref())?;
    let ctx = cli.context().await?;
    let now = now_ms();
    let mut failures = 0;
    for plan in &plans {
        for region in plan.point_regions() {
            let rules = plan.retention_for(region);
            let vault = region_vault(plan, region);
            for res in &plan.resources {
                let points = ctx.catalog.complete_points(&plan.name, &res.name, region).await?;
                let candidates: Vec<Candidate> = points
                    .iter()
                    .map(|p| Candidate { id: p.id, data_time: p.data_time.unwrap_or(p.started_at) })
                    .collect();
                for d in decide(&candidates, rules, now).into_iter().filter(|d| !d.keep) {
                    let Some(p) = points.iter().find(|p| p.id == d.id) else { continue };
                    let reason = d.reasons.join(", ");
                    let verb = if args.dry_run { "would delete" } else { "deleting" };
                    println!(
                        "{verb} point {} ({} {} in {}, data {}): {reason}",
                        p.id,
                        plan.name,
                        res.name,
                        region,
                        p.data_time.map(rfc3339).unwrap_or_default()
                    );
                    if args.dry_run {
                        continue;
                    }
                    let deleted = match (&vault, p.location.as_deref()) {
                        (Ok(v), Some(loc)) => {
                            let root = v.location("");
                            match loc.strip_prefix(root.trim_end_matches('/')) {
                                Some(key) => lifeboat::resource::delete_artifacts(
                                    v,
                                    &ArtifactKeys::from_artifact_key(key.trim_start_matches('/')),
                                )
                                .await
                                .map_err(|e| e.to_string()),
                                None => Err(format!("location {loc} is not in the region's vault")),
                            }
                        }
                        (Err(e), _) => Err(e.clone()),
                        (_, None) => Ok(()),
                    };
                    match deleted {
                        Ok(()) => ctx.catalog.mark_point_deleted(p.id, now_ms(), &reason).await?,
                        Err(e) => {
                            eprintln!("error: point {}: {e}; kept in the catalog", p.id);
                            failures += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(exit(failures == 0))
}
