//! `restore` and `restores list`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;

use super::plan_arg::{OnePlan, PlanFilter};
use super::{bad_input, count_option, exit, print_json, Cli};
use lifeboat::catalog::{Catalog, Integrity, NewCheck, OpenMode, RestorePoint, RestoreRecord};
use lifeboat::context::Context;
use lifeboat::plan::Plan;
use lifeboat::rebuild::Rebuilt;
use lifeboat::restore::from_vault;
use lifeboat::restore::targets::TargetArgs;
use lifeboat::restore::{Asked, Prepared, RestoreError, RestoreOptions, RestoreRun};
use lifeboat::time::{human_duration_secs, parse_rfc3339, rfc3339};
use lifeboat::units;

/// `lifeboat restore PLAN`.
#[derive(Debug, Args)]
#[command(after_help = "\
Every resource restored needs its target; with several resources of one kind, name each \
(--to files=/srv/files --to db=/srv/app.db). A restore never writes over data without \
--overwrite, and puts nothing in place unless every point was restored, verified against \
its manifest and checked.

Exit codes: 0 restored and verified; 1 the restore failed (nothing was put in place); 2 bad input.")]
pub struct RestoreArgs {
    #[command(flatten)]
    pub plan: OnePlan,
    /// Restore this point (and, with --resource, the others at its moment).
    #[arg(long, conflicts_with = "at")]
    pub point: Option<i64>,
    /// The newest moment whose data is at or before TIME (RFC 3339, e.g.
    /// 2026-12-01T09:30:00Z, or a duration ago: "90m ago").
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Region to restore from (any that holds points, the primary
    /// included) [default: the plan's drill region].
    #[arg(long)]
    pub region: Option<String>,
    /// Restore only this resource (repeatable) [default: every resource].
    #[arg(long = "resource", value_name = "NAME")]
    pub resources: Vec<String>,
    /// path: the folder to restore into; sqlite: the database file to write.
    #[arg(long, value_name = "[RESOURCE=]PATH")]
    pub to: Vec<String>,
    /// path: restore only what this glob matches (a folder brings all it
    /// holds; repeatable).
    #[arg(long, value_name = "[RESOURCE=]GLOB")]
    pub include: Vec<String>,
    /// postgres: the database to restore into, on the resource's server.
    #[arg(long, value_name = "[RESOURCE=]NAME")]
    pub to_db: Vec<String>,
    /// postgres: the database to restore into, on another server
    /// (postgres://USER@HOST:PORT/NAME; the password comes from PGPASSWORD
    /// or ~/.pgpass).
    #[arg(long, value_name = "[RESOURCE=]URL")]
    pub to_url: Vec<String>,
    /// s3: the bucket to copy the objects into, in the region restored
    /// from.
    #[arg(long, value_name = "[RESOURCE=]BUCKET")]
    pub to_bucket: Vec<String>,
    /// s3: under this prefix of the bucket [default: none].
    #[arg(long, value_name = "[RESOURCE=]PREFIX")]
    pub to_prefix: Vec<String>,
    /// rds-instance: the identifier of the instance to create, in the
    /// region restored from (waited for until available; never deleted).
    #[arg(long, value_name = "[RESOURCE=]ID")]
    pub to_instance: Vec<String>,
    /// rds-cluster: the identifier of the cluster to create (with one
    /// instance, ID-i1).
    #[arg(long, value_name = "[RESOURCE=]ID")]
    pub to_cluster: Vec<String>,
    /// rds: the new instance's class [default: the snapshot's; a cluster's
    /// instance db.t4g.medium].
    #[arg(long)]
    pub instance_class: Option<String>,
    /// rds: the DB subnet group to restore into [default: RDS's].
    #[arg(long)]
    pub subnet_group: Option<String>,
    /// rds: a VPC security group id for the restored instance
    /// (repeatable) [default: RDS's].
    #[arg(long = "security-group", value_name = "ID")]
    pub security_groups: Vec<String>,
    /// Replace what the targets hold: files the point holds are replaced
    /// (others stay), a database file is replaced, an existing database is
    /// renamed aside and kept.
    #[arg(long)]
    pub overwrite: bool,
    /// Skip the plan's checks (the verification against the manifest and
    /// the kinds' own checks still run).
    #[arg(long)]
    pub no_checks: bool,
    /// Show what would be restored where, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Read what to restore from this vault's manifests, for the day the
    /// catalog is lost: a region of the plan, or a vault URL (a moved vault
    /// with --region, the region whose points it holds). The points are
    /// recorded into the catalog (a new one: --catalog NEW.db if the
    /// catalog already has this plan's points there), as `catalog rebuild`
    /// does.
    #[arg(long, value_name = "REGION|URL")]
    pub from_vault: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RestoresCommand {
    /// Restores run, newest first.
    List {
        #[command(flatten)]
        plan: PlanFilter,
        /// At most this many.
        #[arg(long, default_value = "50", value_parser = count_option(100_000))]
        limit: usize,
        /// Print the restores as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--at`: RFC 3339, or `DURATION ago`.
fn parse_at(text: &str) -> Result<i64> {
    if let Some(ago) = text.trim().strip_suffix("ago") {
        let d = humantime::parse_duration(ago.trim())
            .map_err(|e| bad_input(format!("--at `{text}`: {e}")))?;
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(lifeboat::time::now_ms().saturating_sub(ms));
    }
    parse_rfc3339(text).map_err(|e| {
        bad_input(format!(
            "--at `{text}`: {e} (give an RFC 3339 time such as 2026-12-01T09:30:00Z, or e.g. \"2h ago\")"
        ))
    })
}

/// `user@host`: who ran the restore, as recorded.
fn who() -> String {
    format!("{}@{}", lifeboat::host::user(), lifeboat::host::name())
}

pub async fn run(cli: &Cli, args: &RestoreArgs) -> Result<ExitCode> {
    let asked = match (&args.point, &args.at) {
        (Some(id), _) => Asked::Point(*id),
        (None, Some(at)) => Asked::At(parse_at(at)?),
        (None, None) => Asked::Latest,
    };
    let mut plan = cli.plan(args.plan.name())?;
    let mut region = args.region.clone();
    let mut _throwaway = None;
    let ctx = match &args.from_vault {
        Some(from) => {
            let from_region = from_vault::vault_region(&mut plan, from, args.region.as_deref())
                .map_err(restore_error)?;
            region = Some(from_region.clone());
            let ctx = if args.dry_run {
                let (ctx, dir) = throwaway_context(cli, &plan, &from_region).await?;
                _throwaway = Some(dir);
                ctx
            } else {
                cli.context().await?
            };
            let read = from_vault::read_vault(&ctx.catalog, &plan, &from_region, &args.resources)
                .await
                .map_err(restore_error)?;
            if !args.json {
                print_read(&read);
            }
            ctx
        }
        None => cli.context().await?,
    };
    let opts = RestoreOptions {
        region,
        asked,
        resources: args.resources.clone(),
        targets: TargetArgs {
            to: args.to.clone(),
            include: args.include.clone(),
            to_db: args.to_db.clone(),
            to_url: args.to_url.clone(),
            to_bucket: args.to_bucket.clone(),
            to_prefix: args.to_prefix.clone(),
            to_instance: args.to_instance.clone(),
            to_cluster: args.to_cluster.clone(),
            rds: lifeboat::plan::RdsRestore {
                instance_class: args.instance_class.clone(),
                subnet_group: args.subnet_group.clone(),
                security_groups: args.security_groups.clone(),
            },
        },
        overwrite: args.overwrite,
        checks: !args.no_checks,
        by_whom: who(),
    };
    let prepared = lifeboat::restore::prepare(&ctx, &plan, &opts)
        .await
        .map_err(restore_error)?;
    if args.dry_run {
        if args.json {
            print_json(&DryRunJson::of(&prepared))?;
        } else {
            print_dry_run(&plan.name, &prepared);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let done = lifeboat::restore::run(&ctx, &plan, &prepared, &opts).await?;
    if args.json {
        print_json(&RunJson::of(&done))?;
    } else {
        print_run(&done);
    }
    if let Some(n) = lifeboat::notify::Notification::from_restore(&plan, &done) {
        cli.notify(&plan, &n).await?;
    }
    Ok(exit(done.succeeded()))
}

/// A dry run from a vault reads it into a throwaway catalog: nothing is
/// recorded anywhere. It still refuses what the real run would.
async fn throwaway_context(
    cli: &Cli,
    plan: &Plan,
    region: &str,
) -> Result<(Context, tempfile::TempDir)> {
    if cli.catalog.exists() || lifeboat::catalog::is_postgres_url(&cli.catalog) {
        match Catalog::open_with(&cli.catalog, OpenMode::Existing, Integrity::Light).await {
            Ok(kept) => from_vault::refuse_if_recorded(&kept, plan, region)
                .await
                .map_err(restore_error)?,
            // A database with no catalog in it, as a missing file.
            Err(lifeboat::catalog::CatalogError::NoneInDatabase { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let dir = tempfile::tempdir()?;
    let catalog = Catalog::open(&dir.path().join("catalog.db")).await?;
    let ctx = Context {
        catalog,
        work_dir: cli.work_dir(),
    };
    Ok((ctx, dir))
}

fn print_read(read: &Rebuilt) {
    outln!(
        "read {} point(s) of plan {} from the vault {} (region {}){}",
        read.points.len(),
        read.plan,
        read.location,
        read.region,
        if read.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} manifest(s) not usable", read.skipped.len())
        }
    );
    for s in &read.skipped {
        outln!("  not read: {}: {}", s.manifest, s.reason);
    }
}

/// Bad input (exit 2) for what the operator asked, else a failure.
fn restore_error(e: RestoreError) -> anyhow::Error {
    match e {
        RestoreError::Invalid(m) | RestoreError::Target(m) => bad_input(m),
        e => e.into(),
    }
}

fn when(t: Option<i64>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "—".into())
}

fn print_dry_run(plan: &str, p: &Prepared<'_>) {
    outln!(
        "restore of plan {plan} from region {} ({}){}: nothing done (--dry-run)",
        p.region,
        p.asked.describe(),
        p.run
            .map(|r| format!(", all from backup run {r}"))
            .unwrap_or_default()
    );
    for i in &p.items {
        outln!(
            "  {:<14} point {:<6} data {}  {:>10}  → {}",
            i.resource.name,
            i.point.id,
            when(i.point.data_time),
            i.point
                .size_bytes
                .map(|b| units::size(b.max(0) as u64))
                .unwrap_or_else(|| "—".into()),
            i.target.describe()
        );
    }
    match p.expected_ms {
        Some(ms) => outln!(
            "  expected duration: about {} (the RTO of the last passing drill from {})",
            human_duration_secs(ms as f64 / 1000.0),
            p.region
        ),
        None => outln!(
            "  expected duration: unknown (no passing drill from {} yet)",
            p.region
        ),
    }
}

fn print_run(r: &RestoreRun) {
    let rec = &r.record;
    outln!(
        "restore {} of plan {} from region {} ({}): {}",
        rec.id,
        rec.plan,
        rec.region,
        rec.moment,
        if r.succeeded() {
            "RESTORED and verified"
        } else {
            "FAILED: nothing more was put in place"
        }
    );
    if let Some(ms) = rec.duration_ms() {
        outln!("  took {}", human_duration_secs(ms as f64 / 1000.0));
    }
    for i in &r.items {
        outln!(
            "  {} {:<14} point {} (data {}) → {}",
            if i.placed { "ok  " } else { "FAIL" },
            i.resource,
            i.point,
            when(i.data_time),
            i.detail
        );
    }
    outln!(
        "  checks{}:",
        if rec.checks_run {
            ""
        } else {
            " (the plan's skipped: --no-checks)"
        }
    );
    for c in &r.checks {
        super::drill::print_check(c.passed, &c.name, &c.resource, &c.detail);
    }
    if let Some(e) = &rec.error {
        outln!("  error: {e}");
    }
}

/// `restore --dry-run --json`.
#[derive(Serialize)]
struct DryRunJson {
    region: String,
    moment: String,
    backup_run: Option<i64>,
    expected_seconds: Option<f64>,
    resources: Vec<DryRunItem>,
}

#[derive(Serialize)]
struct DryRunItem {
    resource: String,
    kind: String,
    point: i64,
    #[serde(with = "lifeboat::time::serde_ms::option")]
    data_time: Option<i64>,
    size_bytes: Option<i64>,
    target: String,
}

impl DryRunJson {
    fn of(p: &Prepared<'_>) -> DryRunJson {
        DryRunJson {
            region: p.region.clone(),
            moment: p.asked.describe(),
            backup_run: p.run,
            expected_seconds: p.expected_ms.map(|ms| ms as f64 / 1000.0),
            resources: p
                .items
                .iter()
                .map(|i| DryRunItem {
                    resource: i.resource.name.clone(),
                    kind: i.resource.spec.kind().to_string(),
                    point: i.point.id,
                    data_time: i.point.data_time,
                    size_bytes: i.point.size_bytes,
                    target: i.target.describe(),
                })
                .collect(),
        }
    }
}

/// `restore --json`: the record, each resource, each check.
#[derive(Serialize)]
struct RunJson<'a> {
    #[serde(flatten)]
    record: &'a RestoreRecord,
    succeeded: bool,
    duration_seconds: Option<f64>,
    resources: Vec<ItemJson<'a>>,
    checks: Vec<CheckJson<'a>>,
}

#[derive(Serialize)]
struct ItemJson<'a> {
    resource: &'a str,
    point: i64,
    #[serde(with = "lifeboat::time::serde_ms::option")]
    data_time: Option<i64>,
    target: &'a str,
    placed: bool,
    detail: &'a str,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    name: &'a str,
    resource: &'a str,
    passed: bool,
    detail: &'a str,
    seconds: f64,
}

impl<'a> CheckJson<'a> {
    fn of(c: &'a NewCheck) -> CheckJson<'a> {
        CheckJson {
            name: &c.name,
            resource: &c.resource,
            passed: c.passed,
            detail: &c.detail,
            seconds: c.ms as f64 / 1000.0,
        }
    }
}

impl<'a> RunJson<'a> {
    fn of(r: &'a RestoreRun) -> RunJson<'a> {
        RunJson {
            record: &r.record,
            succeeded: r.succeeded(),
            duration_seconds: r.record.duration_ms().map(|ms| ms as f64 / 1000.0),
            resources: r
                .items
                .iter()
                .map(|i| ItemJson {
                    resource: &i.resource,
                    point: i.point,
                    data_time: i.data_time,
                    target: &i.target,
                    placed: i.placed,
                    detail: &i.detail,
                })
                .collect(),
            checks: r.checks.iter().map(CheckJson::of).collect(),
        }
    }
}

/// `restores list --json`: each restore with its resources.
#[derive(Serialize)]
struct ListedJson {
    #[serde(flatten)]
    record: RestoreRecord,
    duration_seconds: Option<f64>,
    resources: Vec<RestorePoint>,
}

pub async fn list(cli: &Cli, cmd: &RestoresCommand) -> Result<ExitCode> {
    let RestoresCommand::List { plan, limit, json } = cmd;
    let ctx = cli.context().await?;
    if let Some(name) = plan.name() {
        cli.known_plan(&ctx, name).await?;
    }
    let restores = ctx
        .catalog
        .restores(plan.name(), i64::try_from(*limit).unwrap_or(i64::MAX))
        .await?;
    let mut listed = Vec::with_capacity(restores.len());
    for r in restores {
        let resources = ctx.catalog.restore_points(r.id).await?;
        listed.push(ListedJson {
            duration_seconds: r.duration_ms().map(|ms| ms as f64 / 1000.0),
            record: r,
            resources,
        });
    }
    if *json {
        print_json(&listed)?;
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        outln!("no restores");
    }
    for l in &listed {
        let r = &l.record;
        outln!(
            "restore {} of {} from {} ({}) by {} at {}: {}{}",
            r.id,
            r.plan,
            r.region,
            r.moment,
            r.by_whom,
            rfc3339(r.started_at),
            match r.status {
                lifeboat::catalog::RestoreStatus::Running => "running".to_string(),
                lifeboat::catalog::RestoreStatus::Succeeded => "succeeded".to_string(),
                lifeboat::catalog::RestoreStatus::Failed => "FAILED".to_string(),
            },
            l.duration_seconds
                .map(|s| format!(" in {}", human_duration_secs(s)))
                .unwrap_or_default()
        );
        for p in &l.resources {
            outln!(
                "  {:<14} point {} (data {}) → {}: {}",
                p.resource,
                p.point_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "—".into()),
                when(p.data_time),
                p.target,
                p.outcome.as_deref().unwrap_or("—")
            );
        }
        if let Some(e) = &r.error {
            outln!("  error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
