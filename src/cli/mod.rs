//! The command line: clap commands calling into the library. Output
//! formatting only; human output on stdout, logs and progress on stderr.
//!
//! Errors: [`BadInput`] (usage, invalid plan, unknown plan or point) exits
//! 2; any other error, or a failed operation, exits 1.

/// `print!` to stdout, without panicking when the reader has gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

/// `println!` to stdout, without panicking when the reader has gone.
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod backup;
mod catalog;
mod daemon;
mod drill;
mod fleet;
#[cfg(test)]
mod fuzz;
mod init;
mod key;
mod leftovers;
mod lists;
mod out;
mod plan;
mod plan_arg;
mod prune;
mod report;
mod restore;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use lifeboat::catalog::{Catalog, Integrity, OpenMode};
use lifeboat::context::Context;
use lifeboat::plan::{LoadedPlans, Plan};
use lifeboat::telemetry::LogFormat;

/// An error in what the user gave us: exit code 2.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    BadInput(message.into()).into()
}

/// The help heading of the options every command takes, so a command's
/// own options stand apart from them in its `--help`.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Disaster-recovery backups with measured restore drills",
    after_help = "\
Examples:
  lifeboat plan validate                  check every plan in ./plans
  lifeboat backup run shop                take the points of plan shop now
  lifeboat drill run shop                 restore them, check them, measure RTO and RPO
  lifeboat status --check                 exit 1 if any plan is out of its objectives
  lifeboat report --format html --out report.html
  lifeboat daemon                         do all of it on the plans' schedules

Every global option can also be set by its environment variable (shown as [env: …]).

Exit codes: 0 success; 1 the operation failed or objectives were breached; 2 bad input."
)]
pub struct Cli {
    /// The catalog: a SQLite file, or a PostgreSQL database as
    /// `postgres://USER@HOST/DB` (password and TLS from the URL, PGPASSWORD,
    /// PGSSLMODE… or ~/.pgpass). Created by `backup run`, `daemon` and
    /// `demo` when missing; every other command needs an existing one.
    #[arg(
        long,
        env = "LIFEBOAT_CATALOG",
        default_value = "lifeboat.db",
        global = true,
        help_heading = GLOBAL
    )]
    pub catalog: PathBuf,
    /// Folder of plan files (every *.toml directly inside).
    #[arg(
        long,
        env = "LIFEBOAT_PLANS",
        default_value = "plans",
        global = true,
        help_heading = GLOBAL
    )]
    pub plans: PathBuf,
    /// Scratch space for drills and temporary copies [default: lifeboat-work beside the catalog file, or in the current folder for a postgres:// catalog].
    #[arg(long, env = "LIFEBOAT_WORK_DIR", global = true, help_heading = GLOBAL)]
    pub work_dir: Option<PathBuf>,
    /// Webhook told about every plan's failed backups and drills and RPO
    /// breaches (Slack-compatible JSON), besides the plans' [[notify]]
    /// webhooks. Only its host is ever logged.
    #[arg(
        long,
        env = "LIFEBOAT_NOTIFY_URL",
        hide_env_values = true,
        global = true,
        help_heading = GLOBAL
    )]
    pub notify_url: Option<String>,
    /// How log lines on stderr are written: pretty for people, json for a
    /// log collector.
    #[arg(
        long,
        value_enum,
        env = "LIFEBOAT_LOG_FORMAT",
        default_value = "pretty",
        global = true,
        help_heading = GLOBAL
    )]
    pub log_format: LogFormat,
    /// More logs on stderr (-v info, -vv debug); RUST_LOG, when set,
    /// chooses instead (e.g. RUST_LOG=lifeboat=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Let the owner's group read what Lifeboat writes (vault files, the
    /// catalog, the work folder): 0640 files and 0750 folders instead of
    /// 0600 and 0700.
    #[arg(
        long,
        env = "LIFEBOAT_GROUP_READABLE",
        global = true,
        help_heading = GLOBAL
    )]
    pub group_readable: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate and inspect plans.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// Take recovery points now.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restore drills.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
    /// Recovery points in the catalog.
    #[command(subcommand)]
    Points(lists::PointsCommand),
    /// Drills in the catalog.
    #[command(subcommand)]
    Drills(lists::DrillsCommand),
    /// Per plan and region: newest point age vs RPO; last drill.
    Status(lists::StatusArgs),
    /// Whether each plan meets its objectives, over a window.
    Report(Box<report::ReportArgs>),
    /// Delete points that retention no longer keeps.
    Prune(prune::PruneArgs),
    /// Check every point where it is kept, without restoring it; mark the
    /// damaged ones.
    Verify(verify::VerifyArgs),
    /// Run every plan on its schedule: backups, copies, drills, pruning.
    #[command(after_help = "\
Examples:
  lifeboat daemon                                   every plan in ./plans, catalog ./lifeboat.db
  lifeboat --plans /etc/lifeboat/plans --catalog /var/lib/lifeboat/lifeboat.db \\
           --log-format json daemon --listen 0.0.0.0:9464

Stop with SIGTERM or Ctrl-C (running jobs get --grace to finish); SIGHUP reloads the plans.")]
    Daemon(daemon::DaemonArgs),
    /// The daemons sharing a PostgreSQL catalog and the plans each owns.
    Fleet(fleet::FleetArgs),
    /// The catalog itself: rebuild it from a vault when it is lost.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Put a plan's points back: into a folder, a file or a database you
    /// name, verified and checked before anything is replaced.
    Restore(Box<restore::RestoreArgs>),
    /// Restores in the catalog.
    #[command(subcommand)]
    Restores(restore::RestoresCommand),
    /// Keys for regions' client-side encryption (`encryption = { key_file }`).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// The embedded default: create the demo's sample data, then run the
    /// daemon on it (--once: one backup, one drill and a report instead).
    Demo(backup::DemoArgs),
    /// Write a commented plan for a kind of resource into the plans
    /// folder, valid as written: a first plan to edit.
    Init(init::InitArgs),
    /// Shell completions, on stdout.
    Completions(init::CompletionsArgs),
    /// The manual page (roff), on stdout: `lifeboat man > lifeboat.1`.
    Man,
}

impl Command {
    /// Commands that run until stopped (their logs default to info).
    pub fn is_long_running(&self) -> bool {
        match self {
            Command::Daemon(_) => true,
            Command::Demo(args) => !args.once,
            _ => false,
        }
    }
}

pub async fn run(mut cli: Cli) -> Result<ExitCode> {
    if matches!(cli.command, Command::Demo(_)) {
        match backup::demo_plans(&cli) {
            Ok(plans) => cli.plans = plans,
            Err(e) => return Err(e),
        }
    }
    let result = match &cli.command {
        Command::Plan(cmd) => plan::run(&cli, cmd).await,
        Command::Backup(cmd) => backup::run(&cli, cmd).await,
        Command::Drill(cmd) => drill::run(&cli, cmd).await,
        Command::Points(cmd) => lists::points(&cli, cmd).await,
        Command::Drills(cmd) => lists::drills(&cli, cmd).await,
        Command::Status(args) => lists::status(&cli, args).await,
        Command::Report(args) => report::run(&cli, args).await,
        Command::Prune(args) => prune::run(&cli, args).await,
        Command::Verify(args) => verify::run(&cli, args).await,
        Command::Daemon(args) => daemon::run(&cli, args).await,
        Command::Demo(args) => backup::demo(&cli, args).await,
        Command::Catalog(cmd) => catalog::run(&cli, cmd).await,
        Command::Fleet(args) => fleet::run(&cli, args).await,
        Command::Restore(args) => restore::run(&cli, args).await,
        Command::Restores(cmd) => restore::list(&cli, cmd).await,
        Command::Key(cmd) => key::run(cmd).await,
        Command::Init(args) => init::init(&cli, args),
        Command::Completions(args) => init::completions(args),
        Command::Man => init::man(),
    };
    // Leases the command dropped are released before the process exits.
    lifeboat::lease::settle().await;
    result
}

/// How a command uses the catalog, which decides how it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogAccess {
    /// Starts a catalog: creates it when the file does not exist.
    Start,
    /// Writes to an existing catalog: a missing file is bad input.
    Write,
    /// Only reads an existing catalog: a missing file is bad input, and
    /// only the small tables are checked for damage (see
    /// [`Integrity::Light`]: the full check would take seconds on a large
    /// catalog, longer than a report may).
    Read,
}

impl Command {
    /// How the command opens the catalog; `None` for commands that never
    /// touch it. Every command is listed, so a new one must choose.
    pub fn catalog_access(&self) -> Option<CatalogAccess> {
        match self {
            Command::Plan(_)
            | Command::Key(_)
            | Command::Init(_)
            | Command::Completions(_)
            | Command::Man => None,
            // `catalog rebuild` starts a catalog when the old one is lost.
            Command::Backup(_) | Command::Daemon(_) | Command::Demo(_) | Command::Catalog(_) => {
                Some(CatalogAccess::Start)
            }
            // A restore from a vault records its points, as `catalog
            // rebuild` does, into a new catalog when the old is lost.
            Command::Restore(args) if args.from_vault.is_some() => Some(CatalogAccess::Start),
            // `verify` marks the points it finds damaged.
            Command::Drill(_) | Command::Prune(_) | Command::Verify(_) | Command::Restore(_) => {
                Some(CatalogAccess::Write)
            }
            Command::Points(_)
            | Command::Drills(_)
            | Command::Status(_)
            | Command::Report(_)
            | Command::Restores(_)
            | Command::Fleet(_) => Some(CatalogAccess::Read),
        }
    }
}

impl Cli {
    /// The catalog, opened as the command needs it (see
    /// [`Command::catalog_access`]), and the work folder. A path that holds
    /// no catalog (missing for a command that does not start one, empty,
    /// not SQLite, another program's) is bad input.
    pub async fn context(&self) -> Result<Context> {
        let (mode, integrity) = match self.command.catalog_access() {
            Some(CatalogAccess::Start) => (OpenMode::Create, Integrity::Full),
            Some(CatalogAccess::Write) => (OpenMode::Existing, Integrity::Full),
            Some(CatalogAccess::Read) => (OpenMode::Existing, Integrity::Light),
            None => anyhow::bail!("this command does not use the catalog"),
        };
        let catalog = Catalog::open_with(&self.catalog, mode, integrity)
            .await
            .map_err(|e| {
                if e.is_bad_path() {
                    bad_input(e.to_string())
                } else {
                    e.into()
                }
            })?;
        Ok(Context {
            catalog,
            work_dir: self.work_dir(),
        })
    }

    /// `--work-dir`, else `lifeboat-work` beside the catalog's file (in the
    /// current folder for a catalog on PostgreSQL, which has no folder).
    pub fn work_dir(&self) -> PathBuf {
        match &self.work_dir {
            Some(w) => w.clone(),
            None if lifeboat::catalog::is_postgres_url(&self.catalog) => {
                PathBuf::from("lifeboat-work")
            }
            None => self
                .catalog
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join("lifeboat-work"),
        }
    }

    /// Loads the plans folder; warnings and errors of other files go to stderr.
    pub fn load_plans(&self) -> Result<LoadedPlans> {
        if !self.plans.is_dir() {
            return Err(bad_input(format!(
                "plans folder {} does not exist (set --plans or LIFEBOAT_PLANS)",
                self.plans.display()
            )));
        }
        lifeboat::plan::load_dir(&self.plans)
            .with_context(|| format!("cannot read plans folder {}", self.plans.display()))
    }

    /// The plan called `name`; unknown or invalid is bad input.
    pub fn plan(&self, name: &str) -> Result<Plan> {
        let loaded = self.load_plans()?;
        if let Some(p) = loaded.get(name) {
            // Warnings are for `plan validate` and `plan show`; here they
            // would repeat on every command.
            return Ok(p.clone());
        }
        let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
        for d in &errors {
            eprintln!("{d}");
        }
        let known: Vec<&str> = loaded.plans.iter().map(|p| p.name.as_str()).collect();
        let mut message = format!(
            "unknown plan `{name}` in {} (known: {})",
            self.plans.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        if !errors.is_empty() {
            message.push_str(&format!("; {} error(s) in plan files above", errors.len()));
        }
        Err(bad_input(message))
    }

    /// For the commands that read history (`points list`, `drills
    /// list`): `name` is a plan of the plans folder, or one the catalog
    /// still has records of (its file was removed); anything else is bad
    /// input, not an empty list.
    pub async fn known_plan(&self, ctx: &Context, name: &str) -> Result<()> {
        let loaded = if self.plans.is_dir() {
            Some(self.load_plans()?)
        } else {
            None
        };
        if loaded.as_ref().is_some_and(|l| l.get(name).is_some())
            || ctx.catalog.plan_has_records(name).await?
        {
            return Ok(());
        }
        let known: Vec<&str> = loaded
            .iter()
            .flat_map(|l| l.plans.iter().map(|p| p.name.as_str()))
            .collect();
        Err(bad_input(format!(
            "unknown plan `{name}`: not in {} (known: {}) and no record of it in {}",
            self.plans.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            },
            lifeboat::catalog::display_location(&self.catalog)
        )))
    }

    /// Every valid plan, or only `name`.
    pub fn plans_or_one(&self, name: Option<&str>) -> Result<Vec<Plan>> {
        match name {
            Some(n) => Ok(vec![self.plan(n)?]),
            None => {
                let loaded = self.load_plans()?;
                for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
                    eprintln!("{d}");
                }
                Ok(loaded.plans)
            }
        }
    }
}

/// The longest duration an option takes: beyond it a timer or a date
/// computed from it would overflow, and no setting needs more.
const MAX_OPTION_DURATION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A duration option (`30s`, `5m`, `2h`): at most 30 days.
pub fn duration_option(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_OPTION_DURATION {
        return Err(format!(
            "{text} is longer than the 30 days an option may be"
        ));
    }
    Ok(d)
}

/// The longest report window: a century, the longest duration a plan may
/// give; any longer and the window's start would overflow.
const MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(100 * 366 * 86_400);

/// A window ending now (`report --since 90d`): longer than a duration
/// option may be, but at most a century.
pub fn window_option(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_WINDOW {
        return Err(format!(
            "{text} is longer than the 100 years a window may be"
        ));
    }
    Ok(d)
}

/// A count option between 1 and `max`.
pub fn count_option(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// How long a command waits for its notifications to go out.
const NOTIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

impl Cli {
    /// `--notify-url` (or `LIFEBOAT_NOTIFY_URL`), checked: commands that
    /// may notify call this before they act, so a typo is reported first.
    pub fn global_notify_url(&self) -> Result<Option<lifeboat::plan::SecretUrl>> {
        self.notify_url
            .as_deref()
            .map(lifeboat::plan::SecretUrl::parse)
            .transpose()
            .map_err(|e| {
                bad_input(format!(
                    "the notification URL (--notify-url or LIFEBOAT_NOTIFY_URL) {e}"
                ))
            })
    }

    /// Sends `n` to the plan's webhooks and `--notify-url`, waiting at most
    /// [`NOTIFY_BUDGET`]: a slow or dead webhook never holds a command
    /// longer, and never changes its outcome (failures are logged).
    pub async fn notify(&self, plan: &Plan, n: &lifeboat::notify::Notification) -> Result<()> {
        let global = self.global_notify_url()?;
        let notifier =
            lifeboat::notify::Notifier::new(global, lifeboat::notify::RetryPolicy::default())?;
        if notifier.has_targets(plan) {
            notifier.notify(plan, n);
            notifier.drain(NOTIFY_BUDGET).await;
        }
        Ok(())
    }
}

/// Prints a JSON value on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn exit(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command, depth first, with its path (`points list`).
    fn commands(c: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), c.clone()));
        for sub in c.get_subcommands() {
            commands(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_and_argument_says_what_it_is_for() {
        let mut all = Vec::new();
        commands(&Cli::command(), "lifeboat".into(), &mut all);
        let mut silent = Vec::new();
        for (path, c) in &all {
            for a in c.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && !a.is_hide_set() && a.get_help().is_none() {
                    silent.push(format!("{path}: {}", a.get_id()));
                }
            }
        }
        assert!(silent.is_empty(), "without help text: {silent:?}");
    }

    #[test]
    fn every_global_option_has_an_environment_variable() {
        let cli = Cli::command();
        let missing: Vec<_> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            // -v counts; RUST_LOG is its environment variable.
            .filter(|a| !matches!(a.get_id().as_str(), "verbose" | "help" | "version"))
            .filter(|a| a.get_env().is_none())
            .map(|a| a.get_id().to_string())
            .collect();
        assert!(missing.is_empty(), "no environment variable: {missing:?}");
    }
}
