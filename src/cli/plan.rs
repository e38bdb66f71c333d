//! `plan validate` and `plan show`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::{bad_input, print_json, Cli};
use lifeboat::plan::{load_file, Diagnostic, VerifyDepth};
use lifeboat::schedule::{collisions, PlannedRun, Timing, MAX_COLLISIONS};

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check plan files; each problem as FILE:LINE:COL: message. Exit 2 if any is invalid.
    #[command(after_help = "\
Examples:
  lifeboat plan validate                       every *.toml in ./plans (or --plans)
  lifeboat plan validate new.toml              one file, before it goes into the folder
  lifeboat plan validate --json                per file: ok, plan name, errors and warnings

Exit codes: 0 every file valid (warnings allowed); 2 a file is invalid.")]
    Validate {
        /// Plan files [default: every *.toml in the plans folder].
        paths: Vec<PathBuf>,
        /// Print each file's outcome and diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The next backup, drill and verify times of a plan, jitter applied
    /// (--all: every plan's, with collisions flagged).
    #[command(after_help = "\
Examples:
  lifeboat plan show shop                the next 5 backups, drills and verifies of plan shop
  lifeboat plan show --all --next 20     every plan's next runs, collisions flagged")]
    Show {
        /// The plan, by the `name` its file gives.
        #[arg(
            value_name = "PLAN",
            required_unless_present_any = ["all", "plan_option"],
            conflicts_with = "all"
        )]
        name: Option<String>,
        /// The plan, as an option (the same as PLAN).
        #[arg(
            long = "plan",
            id = "plan_option",
            value_name = "PLAN",
            conflicts_with_all = ["name", "all"]
        )]
        plan_option: Option<String>,
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
        /// Print the coming runs as JSON (RFC 3339 times).
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &PlanCommand) -> Result<ExitCode> {
    match cmd {
        PlanCommand::Validate { paths, json } => validate(cli, paths, *json),
        PlanCommand::Show {
            name,
            plan_option,
            next,
            json,
            ..
        } if name.is_some() || plan_option.is_some() => {
            let name = name
                .as_deref()
                .or(plan_option.as_deref())
                .unwrap_or_default();
            show(cli, name, *next, *json)
        }
        PlanCommand::Show {
            next,
            json,
            collision_window,
            ..
        } => show_all(cli, *next, *collision_window, *json),
    }
}

fn validate(cli: &Cli, paths: &[PathBuf], json_out: bool) -> Result<ExitCode> {
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
    let mut outcomes = Vec::with_capacity(files.len());
    for file in &files {
        let mut outcome = FileOutcome {
            file: file.display().to_string(),
            plan: None,
            valid: false,
            diagnostics: Vec::new(),
        };
        match load_file(file) {
            Ok((plan, warnings)) => {
                outcome
                    .diagnostics
                    .extend(warnings.iter().map(DiagnosticJson::from));
                if let Some(other) = names.get(&plan.name) {
                    let message = format!(
                        "plan name `{}` is already used by {}",
                        plan.name,
                        other.display()
                    );
                    outcome.diagnostics.push(DiagnosticJson {
                        file: file.display().to_string(),
                        line: 1,
                        column: 1,
                        severity: "error",
                        text: format!("{}:1:1: {message}", file.display()),
                        message,
                    });
                    invalid += 1;
                } else {
                    names.insert(plan.name.clone(), file.clone());
                    outcome.valid = true;
                    outcome.plan = Some(plan.name);
                }
            }
            Err(e) => {
                invalid += 1;
                outcome
                    .diagnostics
                    .extend(e.diagnostics.iter().map(DiagnosticJson::from));
            }
        }
        if !json_out {
            for d in &outcome.diagnostics {
                eprintln!("{d}");
            }
            if let (true, Some(plan)) = (outcome.valid, &outcome.plan) {
                outln!("ok {} (plan {plan})", file.display());
            }
        }
        outcomes.push(outcome);
    }
    if json_out {
        print_json(&json!({ "files": outcomes, "invalid": invalid }))?;
    }
    Ok(if invalid > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `plan validate --json`: one plan file's outcome.
#[derive(Serialize)]
struct FileOutcome {
    file: String,
    /// The plan's name, when the file is valid.
    plan: Option<String>,
    valid: bool,
    /// Its errors and warnings, in the order found.
    diagnostics: Vec<DiagnosticJson>,
}

/// A diagnostic as `plan validate --json` gives it; shown as the same
/// `FILE:LINE:COL: message` line the text output has.
#[derive(Serialize)]
struct DiagnosticJson {
    file: String,
    line: usize,
    column: usize,
    /// `error` or `warning`.
    severity: &'static str,
    message: String,
    /// The line the text output prints.
    #[serde(skip)]
    text: String,
}

impl From<&Diagnostic> for DiagnosticJson {
    fn from(d: &Diagnostic) -> Self {
        DiagnosticJson {
            file: d.file.display().to_string(),
            line: d.line,
            column: d.column,
            severity: if d.is_error() { "error" } else { "warning" },
            message: d.message.clone(),
            text: d.to_string(),
        }
    }
}

impl std::fmt::Display for DiagnosticJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
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
