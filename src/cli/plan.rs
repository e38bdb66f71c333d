//! `plan validate` and `plan show`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use super::{bad_input, print_json, Cli};
use lifeboat::plan::{load_file, VerifyDepth};
use lifeboat::schedule::{collisions, PlannedRun, Timing, MAX_COLLISIONS};

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check plan files; each problem as FILE:LINE:COL: message. Exit 2 if any is invalid.
    Validate {
        /// Plan files [default: every *.toml in the plans folder].
        paths: Vec<PathBuf>,
    },
    /// The next backup, drill and verify times of a plan, jitter applied
    /// (--all: every plan's, with collisions flagged).
    Show {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Every plan, merged in time order, flagging runs of different
        /// plans on the same region that start close together.
        #[arg(long)]
        all: bool,
        /// How many coming runs to show per kind (at most 1000).
        #[arg(long, default_value_t = 5, value_parser = super::count_option(1000))]
        next: usize,
        /// How close two runs on one region must be to count as a collision.
        #[arg(long, default_value = "1m", value_parser = super::duration_option)]
        collision_window: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &PlanCommand) -> Result<ExitCode> {
    match cmd {
        PlanCommand::Validate { paths } => validate(cli, paths),
        PlanCommand::Show {
            name: Some(name),
            next,
            json,
            ..
        } => show(cli, name, *next, *json),
        PlanCommand::Show {
            next,
            json,
            collision_window,
            ..
        } => show_all(cli, *next, *collision_window, *json),
    }
}

fn validate(cli: &Cli, paths: &[PathBuf]) -> Result<ExitCode> {
    let files: Vec<PathBuf> = if paths.is_empty() {
        if !cli.plans.is_dir() {
            return Err(bad_input(format!(
                "plans folder {} does not exist",
                cli.plans.display()
            )));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cli.plans)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        files
    } else {
        paths.to_vec()
    };
    if files.is_empty() {
        return Err(bad_input(format!(
            "no plan file in {}",
            cli.plans.display()
        )));
    }
    let mut invalid = 0;
    let mut names: std::collections::HashMap<String, PathBuf> = Default::default();
    for file in &files {
        match load_file(file) {
            Ok((plan, warnings)) => {
                for w in &warnings {
                    eprintln!("{w}");
                }
                if let Some(other) = names.get(&plan.name) {
                    eprintln!(
                        "{}:1:1: plan name `{}` is already used by {}",
                        file.display(),
                        plan.name,
                        other.display()
                    );
                    invalid += 1;
                    continue;
                }
                names.insert(plan.name.clone(), file.clone());
                outln!("ok {} (plan {})", file.display(), plan.name);
            }
            Err(e) => {
                invalid += 1;
                for d in &e.diagnostics {
                    eprintln!("{d}");
                }
            }
        }
    }
    Ok(if invalid > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn show(cli: &Cli, name: &str, next: usize, json_out: bool) -> Result<ExitCode> {
    let plan = cli.plan(name)?;
    if !json_out {
        if let Ok((_, warnings)) = load_file(&plan.source) {
            for w in warnings {
                eprintln!("{w}");
            }
        }
    }
    let now = Utc::now();
    let upcoming = |t: &Timing, kind: &str| t.upcoming(&plan.name, kind, now, next);
    let backups = upcoming(&plan.backup.timing, "backup");
    let drills = plan
        .drill
        .timing
        .as_ref()
        .map(|t| upcoming(t, "drill"))
        .unwrap_or_default();
    let verifies = plan
        .verify
        .as_ref()
        .map(|v| upcoming(&v.timing, "verify"))
        .unwrap_or_default();
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if json_out {
        print_json(&json!({
            "backup": backups.iter().map(|r| fmt(r.start)).collect::<Vec<_>>(),
            "drill": drills.iter().map(|r| fmt(r.start)).collect::<Vec<_>>(),
            "verify": verifies.iter().map(|r| fmt(r.start)).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "plan {} — owner {}, RTO {}, RPO {}",
        plan.name,
        plan.owner,
        humantime::format_duration(plan.rto),
        humantime::format_duration(plan.rpo)
    );
    let describe = |t: &Timing| {
        format!(
            "\"{}\" in {}, jitter up to {}",
            t.cron.source(),
            t.timezone,
            humantime::format_duration(t.jitter)
        )
    };
    outln!("\nnext backups ({}):", describe(&plan.backup.timing));
    for r in &backups {
        let offset = (r.start - r.slot).num_milliseconds() as f64 / 1000.0;
        outln!("  {}  (slot {} + {offset}s)", fmt(r.start), fmt(r.slot));
    }
    match &plan.drill.timing {
        Some(t) => {
            outln!(
                "\nnext drills in region {} ({}):",
                plan.drill.region,
                describe(t)
            );
            for r in &drills {
                let offset = (r.start - r.slot).num_milliseconds() as f64 / 1000.0;
                outln!("  {}  (slot {} + {offset}s)", fmt(r.start), fmt(r.slot));
            }
        }
        None => outln!(
            "\nno drill schedule: drills run only by hand (lifeboat drill run {})",
            plan.name
        ),
    }
    match &plan.verify {
        Some(v) => {
            let depth = match v.depth {
                VerifyDepth::Presence => "presence and size".to_string(),
                VerifyDepth::ReadData => "every byte read".to_string(),
                VerifyDepth::ReadDataSubset { parts } => {
                    format!("a 1/{parts} part read in full, the next at each run")
                }
            };
            outln!(
                "\nnext verifies, every region, {depth} ({}):",
                describe(&v.timing)
            );
            for r in &verifies {
                let offset = (r.start - r.slot).num_milliseconds() as f64 / 1000.0;
                outln!("  {}  (slot {} + {offset}s)", fmt(r.start), fmt(r.slot));
            }
        }
        None => outln!(
            "\nno verify schedule: points are verified only by hand (lifeboat verify {})",
            plan.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn show_all(
    cli: &Cli,
    next: usize,
    window: std::time::Duration,
    json_out: bool,
) -> Result<ExitCode> {
    let plans = cli.plans_or_one(None)?;
    let now = Utc::now();
    let mut runs: Vec<PlannedRun> = Vec::new();
    for plan in &plans {
        let mut add = |t: &Timing, kind: &'static str, region: &str| {
            for r in t.upcoming(&plan.name, kind, now, next) {
                runs.push(PlannedRun {
                    plan: plan.name.clone(),
                    kind,
                    region: region.to_string(),
                    slot: r.slot,
                    start: r.start,
                });
            }
        };
        add(&plan.backup.timing, "backup", &plan.backup.primary_region);
        if let Some(t) = &plan.drill.timing {
            add(t, "drill", &plan.drill.region);
        }
        // A verify reads every region; the daemon counts it against the
        // primary's concurrency limit, as it does a prune.
        if let Some(v) = &plan.verify {
            add(&v.timing, "verify", &plan.backup.primary_region);
        }
    }
    runs.sort_by(|a, b| a.start.cmp(&b.start).then(a.plan.cmp(&b.plan)));
    let pairs = collisions(&runs, window);
    let mut with: Vec<Vec<usize>> = vec![Vec::new(); runs.len()];
    for (i, j) in &pairs {
        with[*i].push(*j);
        with[*j].push(*i);
    }
    let fmt = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if json_out {
        let items: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "plan": r.plan,
                    "kind": r.kind,
                    "region": r.region,
                    "slot": fmt(r.slot),
                    "start": fmt(r.start),
                    "collides_with": with[i].iter().map(|j| json!({"plan": runs[*j].plan, "kind": runs[*j].kind, "start": fmt(runs[*j].start)})).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({ "runs": items, "collisions": pairs.len() }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (i, r) in runs.iter().enumerate() {
        let mut line = format!(
            "{}  {:<6} {:<20} {:<14}",
            fmt(r.start),
            r.kind,
            r.plan,
            r.region
        );
        if !with[i].is_empty() {
            let others: Vec<String> = with[i]
                .iter()
                .map(|j| format!("{} {}", runs[*j].plan, runs[*j].kind))
                .collect();
            line.push_str(&format!("  COLLIDES with {}", others.join(", ")));
        }
        outln!("{}", line.trim_end());
    }
    if !pairs.is_empty() {
        let at_least = if pairs.len() == MAX_COLLISIONS {
            "at least "
        } else {
            ""
        };
        outln!(
            "\n{at_least}{} collision(s): runs of different plans on one region less than {} apart; spread them with jitter or other minutes",
            pairs.len(),
            humantime::format_duration(window)
        );
    }
    Ok(ExitCode::SUCCESS)
}
