//! `lifeboat verify`: checks every point where it is kept, without
//! restoring it; a line per point as it goes, then a summary (or one JSON
//! document with `--json`). Exit 1 when a point is damaged or could not be
//! checked.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::backup::human_bytes;
use super::plan_arg::PlanFilter;
use super::{bad_input, exit, print_json, Cli};
use lifeboat::leftovers::{Leftover, LeftoverKind, Scope, UNOWNED_GRACE};
use lifeboat::time::now_ms;
use lifeboat::verify::{Checked, Depth, Subset, Verdict, VerifyError, VerifyOptions};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat verify                          every point of every plan: there, with its size
  lifeboat verify shop --read-data         every byte of plan shop's points read and hashed
  lifeboat verify --read-data-subset 3/7   a seventh of the points read in full (run 1/7 to 7/7)

Exit codes: 0 every point is whole; 1 a point is damaged or could not be checked; 2 bad input.")]
pub struct VerifyArgs {
    #[command(flatten)]
    plan: PlanFilter,
    /// Only this region (any of the plan's, the primary included).
    #[arg(long)]
    region: Option<String>,
    /// Read every byte of every point again and hash it (default: only
    /// that the data is there with the recorded size).
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Check every point, and read in full the points whose id hashes to
    /// N-1 modulo M: the runs 1/M to M/M read every point once between
    /// them.
    #[arg(long, value_name = "N/M")]
    read_data_subset: Option<String>,
    /// One JSON document: every point checked, and the summary.
    #[arg(long)]
    json: bool,
}

/// The summary line's numbers.
#[derive(Debug, Default, Serialize)]
struct Summary {
    points: usize,
    ok: usize,
    repaired: usize,
    damaged: usize,
    unchecked: usize,
    bytes_read: u64,
    seconds: f64,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    points: &'a [Checked],
    summary: &'a Summary,
    /// What crashed processes left in the vaults: listed, never removed
    /// here (`prune` removes them).
    leftovers: &'a [Leftover],
}

pub async fn run(cli: &Cli, args: &VerifyArgs) -> Result<ExitCode> {
    let depth = match (&args.read_data_subset, args.read_data) {
        (Some(s), _) => Depth::ReadDataSubset(
            Subset::parse(s).map_err(|e| bad_input(format!("--read-data-subset: {e}")))?,
        ),
        (None, true) => Depth::ReadData,
        (None, false) => Depth::Presence,
    };
    let mut plans = cli.plans_or_one(args.plan.name())?;
    if let (None, Some(region)) = (args.plan.name(), &args.region) {
        plans.retain(|p| p.point_regions().contains(&region.as_str()));
        if plans.is_empty() {
            return Err(bad_input(format!(
                "no valid plan in {} keeps points in region `{region}`",
                cli.plans.display()
            )));
        }
    }
    let ctx = cli.context().await?;
    let opts = VerifyOptions {
        region: args.region.clone(),
        depth,
    };
    let start = Instant::now();
    let mut all = Vec::new();
    for plan in &plans {
        let json = args.json;
        let checked = lifeboat::verify::run(&ctx, plan, &opts, |c| {
            if !json {
                print_line(c);
            }
        })
        .await;
        match checked {
            Ok(c) => all.extend(c),
            Err(VerifyError::Invalid(m)) => return Err(bad_input(m)),
            Err(e) => return Err(e.into()),
        }
    }
    let mut leftovers = Vec::new();
    for plan in &plans {
        let scope = Scope {
            region: args.region.as_deref(),
            unowned_grace: Some(UNOWNED_GRACE),
        };
        let found = lifeboat::leftovers::in_vaults(&ctx.catalog, plan, scope, now_ms()).await?;
        super::leftovers::print_problems(&found.problems);
        leftovers.extend(found.leftovers);
    }
    let found = lifeboat::leftovers::in_work_dir(&ctx.tmp_dir(), now_ms()).await;
    super::leftovers::print_problems(&found.problems);
    leftovers.extend(found.leftovers);
    let mut summary = Summary {
        points: all.len(),
        seconds: start.elapsed().as_secs_f64(),
        ..Summary::default()
    };
    for c in &all {
        summary.bytes_read += c.bytes_read;
        match c.verdict {
            Verdict::Ok => summary.ok += 1,
            Verdict::Repaired => summary.repaired += 1,
            Verdict::Damaged => summary.damaged += 1,
            Verdict::Unchecked => summary.unchecked += 1,
        }
    }
    if args.json {
        print_json(&VerifyJson {
            points: &all,
            summary: &summary,
            leftovers: &leftovers,
        })?;
    } else {
        print_summary(&summary);
        for l in &leftovers {
            outln!(
                "{}: {}",
                super::leftovers::describe(l),
                super::leftovers::why(l)
            );
        }
        if leftovers.iter().any(|l| l.kind != LeftoverKind::Unrecorded) {
            outln!("`lifeboat prune` removes what crashed processes left (partial uploads, unowned artifacts)");
        }
    }
    Ok(exit(summary.damaged == 0 && summary.unchecked == 0))
}

/// One line per point: plan, region, resource, point, data time, verdict,
/// then what was checked or found.
fn print_line(c: &Checked) {
    let data_time = c
        .data_time
        .map(lifeboat::time::rfc3339)
        .unwrap_or_else(|| "-".into());
    let size = c.size_bytes.map(human_bytes).unwrap_or_else(|| "-".into());
    outln!(
        "{:<15} {:<14} {:<10} {:<14} point {:<6} data {:<24} {:>10}  {}",
        c.verdict.as_str(),
        c.plan,
        c.region,
        c.resource,
        c.point,
        data_time,
        size,
        c.detail
    );
}

fn print_summary(s: &Summary) {
    if s.points == 0 {
        outln!("no points to verify");
        return;
    }
    let mut parts = vec![format!("{} ok", s.ok)];
    if s.repaired > 0 {
        parts.push(format!("{} repaired (complete again)", s.repaired));
    }
    parts.push(format!("{} damaged", s.damaged));
    parts.push(format!("{} could not be checked", s.unchecked));
    outln!(
        "verified {} point(s): {}; {} read in {}",
        s.points,
        parts.join(", "),
        human_bytes(s.bytes_read as i64),
        lifeboat::time::human_duration_secs(s.seconds)
    );
    if s.damaged > 0 {
        outln!(
            "damaged points are no longer used by drills, status or the report; a later verify makes them complete again if their data comes back"
        );
    }
}
