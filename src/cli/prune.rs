//! `prune`: delete the points retention no longer keeps, in every region.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::plan_arg::PlanFilter;
use super::{exit, print_json, Cli};
use lifeboat::catalog::Point;
use lifeboat::leftovers::{self, Leftover, Outcome, Scope};
use lifeboat::prune::Pruned;
use lifeboat::time::{now_ms, rfc3339, serde_ms, Millis};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat prune --dry-run        what every plan's retention would delete, deleting nothing
  lifeboat prune shop             delete what plan shop's retention no longer keeps
  lifeboat prune shop --json      the same, as JSON

Exit codes: 0 everything due was deleted (or kept under object lock); 1 a deletion failed \
(retried by the next prune); 2 bad input.")]
pub struct PruneArgs {
    #[command(flatten)]
    plan: PlanFilter,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Vault artifacts no usable point owns (of failed backups, or left
    /// by a crash) are removed once this old (at most 30d).
    #[arg(long, default_value = "24h", value_parser = super::duration_option)]
    unowned_grace: std::time::Duration,
    /// Print what was deleted (or would be) as JSON, sizes in bytes.
    #[arg(long)]
    json: bool,
}

/// `prune --json`: per plan, each point and leftover and what became of it.
#[derive(Serialize)]
struct PruneJson {
    dry_run: bool,
    plans: Vec<PlanJson>,
    /// SQLite snapshot folders in the work folder, whatever their plan.
    work_dir_leftovers: Vec<LeftoverJson>,
    /// Deletions that failed (retried by the next prune).
    failures: usize,
}

#[derive(Serialize)]
struct PlanJson {
    plan: String,
    points: Vec<PointJson>,
    leftovers: Vec<LeftoverJson>,
}

#[derive(Serialize)]
struct PointJson {
    /// `deleted`, `would_delete`, `kept` (object lock) or `failed`.
    action: &'static str,
    /// Why it goes.
    reason: String,
    /// Why the deletion failed.
    error: Option<String>,
    /// Kept under S3 Object Lock until then.
    #[serde(with = "serde_ms::option")]
    locked_until: Option<Millis>,
    point: Point,
}

#[derive(Serialize)]
struct LeftoverJson {
    /// `removed`, `would_remove`, `kept` or `failed`.
    action: &'static str,
    error: Option<String>,
    #[serde(flatten)]
    leftover: Leftover,
}

fn point_json(p: &Pruned, dry_run: bool) -> PointJson {
    let action = match (&p.result, p.locked_until, dry_run) {
        (_, Some(_), _) => "kept",
        (_, None, true) => "would_delete",
        (Ok(()), None, false) => "deleted",
        (Err(_), None, false) => "failed",
    };
    PointJson {
        action,
        reason: p.reason.clone(),
        error: p.result.as_ref().err().map(|e| e.to_string()),
        locked_until: p.locked_until,
        point: p.point.clone(),
    }
}

fn leftover_json(done: &[(Leftover, Outcome)]) -> Vec<LeftoverJson> {
    done.iter()
        .map(|(l, o)| {
            let (action, error) = match o {
                Outcome::Removed => ("removed", None),
                Outcome::WouldRemove => ("would_remove", None),
                Outcome::Kept => ("kept", None),
                Outcome::Failed(e) => ("failed", Some(e.clone())),
            };
            LeftoverJson {
                action,
                error,
                leftover: l.clone(),
            }
        })
        .collect()
}

pub async fn run(cli: &Cli, args: &PruneArgs) -> Result<ExitCode> {
    let plans = cli.plans_or_one(args.plan.name())?;
    let ctx = cli.context().await?;
    let text = !args.json;
    let mut failures = 0;
    let mut report = PruneJson {
        dry_run: args.dry_run,
        plans: Vec::new(),
        work_dir_leftovers: Vec::new(),
        failures: 0,
    };
    for plan in &plans {
        let pruned = lifeboat::prune::run(&ctx, plan, now_ms(), args.dry_run).await?;
        for p in &pruned {
            if let Err(e) = &p.result {
                eprintln!(
                    "error: point {}: {e}; it will be retried by the next prune",
                    p.point.id
                );
                failures += 1;
            }
            if text {
                print_pruned(&plan.name, p, args.dry_run);
            }
        }
        let scope = Scope {
            region: None,
            unowned_grace: Some(args.unowned_grace),
        };
        let found = leftovers::in_vaults(&ctx.catalog, plan, scope, now_ms()).await?;
        super::leftovers::print_problems(&found.problems);
        if text && pruned.is_empty() && found.leftovers.is_empty() {
            outln!("plan {}: nothing to prune", plan.name);
        }
        let done = leftovers::remove(found.leftovers, now_ms(), args.dry_run).await;
        failures += super::leftovers::print_outcomes(&done, text);
        report.plans.push(PlanJson {
            plan: plan.name.clone(),
            points: pruned.iter().map(|p| point_json(p, args.dry_run)).collect(),
            leftovers: leftover_json(&done),
        });
    }
    // Snapshot folders of backups that are gone, whatever their plan.
    let found = leftovers::in_work_dir(&ctx.tmp_dir(), now_ms()).await;
    super::leftovers::print_problems(&found.problems);
    let done = leftovers::remove(found.leftovers, now_ms(), args.dry_run).await;
    failures += super::leftovers::print_outcomes(&done, text);
    if args.json {
        report.work_dir_leftovers = leftover_json(&done);
        report.failures = failures;
        print_json(&report)?;
    }
    Ok(exit(failures == 0))
}

/// The line of one point pruned (or kept under object lock).
fn print_pruned(plan: &str, p: &Pruned, dry_run: bool) {
    let what = format!(
        "point {} ({} {} in {}, data {})",
        p.point.id,
        plan,
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
        return;
    }
    let verb = match (&p.result, dry_run) {
        (_, true) => "would delete",
        (Ok(()), false) => "deleted",
        (Err(_), false) => "FAILED to delete",
    };
    outln!("{verb} {what}: {}", p.reason);
}
