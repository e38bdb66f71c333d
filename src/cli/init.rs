//! `init`, `completions` and `man`: getting started, and the shell
//! integration packagers expect.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, ValueEnum};

use super::{bad_input, Cli};

/// The kinds `init` writes a plan for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitKind {
    /// A folder or a file.
    Path,
    /// A SQLite database file.
    Sqlite,
    /// A PostgreSQL database (pg_dump / pg_restore).
    Postgres,
    /// An S3 bucket (or a prefix of one).
    S3,
    /// An RDS instance.
    RdsInstance,
    /// An Aurora cluster.
    RdsCluster,
}

/// `lifeboat init NAME --kind KIND`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat init files --kind path              writes plans/files.toml
  lifeboat init orders --kind postgres --stdout
  lifeboat --plans /etc/lifeboat/plans init uploads --kind s3

The plan validates as written; edit its placeholders (paths, URLs, buckets,
regions) to your resources, then: lifeboat plan validate; lifeboat backup run NAME.")]
pub struct InitArgs {
    /// The new plan's name (its file is NAME.toml in the plans folder).
    #[arg(value_parser = plan_name)]
    pub name: String,
    /// What the plan protects.
    #[arg(long, value_enum)]
    pub kind: InitKind,
    /// Print the plan instead of writing it into the plans folder.
    #[arg(long)]
    pub stdout: bool,
}

/// A plan name as plans allow it: `[a-z0-9_-]`, 1 to 63 characters.
fn plan_name(text: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(text.to_string())
    } else {
        Err("a plan name is 1 to 63 of a-z, 0-9, - and _".into())
    }
}

pub fn init(cli: &Cli, args: &InitArgs) -> Result<ExitCode> {
    let text = template(&args.name, args.kind);
    if args.stdout {
        out!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let file = cli.plans.join(format!("{}.toml", args.name));
    write_new(&file, &text)?;
    outln!("wrote {}: a {} plan", file.display(), kind_name(args.kind));
    outln!("next: edit its placeholders, then");
    outln!("  lifeboat --plans {} plan validate", cli.plans.display());
    outln!(
        "  lifeboat --plans {} backup run {}",
        cli.plans.display(),
        args.name
    );
    outln!(
        "  lifeboat --plans {} drill run {}",
        cli.plans.display(),
        args.name
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` into a new file; an existing one is bad input, never
/// replaced.
fn write_new(file: &Path, text: &str) -> Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(bad_input(format!(
                "{} exists already: init never replaces a plan (choose another name, or --stdout)",
                file.display()
            )))
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", file.display())),
    };
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", file.display()))
}

fn kind_name(kind: InitKind) -> &'static str {
    match kind {
        InitKind::Path => "path",
        InitKind::Sqlite => "sqlite",
        InitKind::Postgres => "postgres",
        InitKind::S3 => "s3",
        InitKind::RdsInstance => "rds-instance",
        InitKind::RdsCluster => "rds-cluster",
    }
}

/// A commented plan of `kind` that validates as written.
pub fn template(name: &str, kind: InitKind) -> String {
    let local = matches!(kind, InitKind::Path | InitKind::Sqlite | InitKind::Postgres);
    let (primary, dr) = if local {
        ("local", "offsite")
    } else {
        ("us-east-1", "us-west-2")
    };
    let regions = if local {
        format!(
            r#"[regions.{primary}]
vault = "file:///var/lib/lifeboat/vaults/{name}"     # file://PATH or s3://BUCKET/PREFIX
[regions.{dr}]
vault = "file:///mnt/offsite/lifeboat/{name}"        # another disk, host or bucket: each region its own
# encryption = {{ key_file = "keys/{name}.key" }}     # client-side encryption: lifeboat key generate -o FILE
"#
        )
    } else {
        format!(
            r#"[regions.{primary}]
vault = "s3://my-dr-vault-use1/lifeboat"             # a bucket of this region, and a prefix
# kms_key = "alias/lifeboat"                         # SSE-KMS for the vault and RDS snapshot copies
[regions.{dr}]
vault = "s3://my-dr-vault-usw2/lifeboat"
# kms_key = "alias/lifeboat"                         # needed to copy encrypted RDS snapshots here
# object_lock = {{ mode = "governance", retain = "30d" }}
"#
        )
    };
    let (resource, checks) = resource(kind);
    let aws = if local {
        ""
    } else {
        r#"
# [aws]                                              # credentials: the standard AWS chain, never this file
# profile = "dr"
"#
    };
    // The comment in line with the others whatever the region's name.
    let copy_to = format!(
        "{:<37}# every point is copied here too",
        format!("copy_to = [\"{dr}\"]")
    );
    format!(
        r#"# Lifeboat plan `{name}` ({kind}), written by `lifeboat init`.
# Replace the placeholders with your own, then `lifeboat plan validate`.
# Reference: docs/plans.md; relative paths are from this file's folder.
name = "{name}"
owner = "you@example.com"            # who answers for this plan
rto = "1h"                           # how long a restore may take (drills measure it)
rpo = "2h"                           # how much data may be lost (newest point age)
# placement = {{ labels = ["host-a"] }}   # in a fleet (docs/fleet.md): only daemons started with these --labels run it

[backup]
schedule = "0 * * * *"               # cron, UTC unless `timezone`: hourly
jitter = "5m"                        # spread runs: each starts within 5m of its slot
primary_region = "{primary}"
{copy_to}
# before = ["./hooks/quiesce.sh"]    # a program run before the backup (no shell)
# after = ["./hooks/resume.sh"]      # and after it, always

[retention]
keep_last = 24
keep_daily = 7
keep_weekly = 4

{regions}
{resource}
[drill]
schedule = "0 3 * * *"               # a restore drill from {dr} every night
jitter = "30m"
region = "{dr}"
isolate_primary = true               # drills never touch {primary}: as in a regional outage
{checks}{aws}"#,
        kind = kind_name(kind),
    )
}

/// The `[[resources]]` table of `kind` and a sample check.
fn resource(kind: InitKind) -> (String, &'static str) {
    match kind {
        InitKind::Path => (
            r#"[[resources]]
name = "files"
kind = "path"
path = "/srv/app/files"              # a folder or a file
exclude = ["**/*.tmp", "cache"]
"#
            .into(),
            r#"
# [[drill.checks]]                   # your own check on what the drill restored
# resource = "files"
# command = ["./checks/files.sh"]    # told LIFEBOAT_RESTORED_PATH; passes on exit 0
"#,
        ),
        InitKind::Sqlite => (
            r#"[[resources]]
name = "db"
kind = "sqlite"
path = "/srv/app/app.db"
"#
            .into(),
            r#"
[[drill.checks]]
resource = "db"
sql = "SELECT count(*) > 0 FROM sqlite_master"   # replace: e.g. SELECT count(*) > 0 FROM orders
"#,
        ),
        InitKind::Postgres => (
            r#"[[resources]]
name = "db"
kind = "postgres"
url = "postgres://lifeboat@db.example.com:5432/app"   # no password here: PGPASSWORD or ~/.pgpass
# drill_url = "postgres://lifeboat@scratch.example.com:5432/postgres"   # restore drills elsewhere
# dump_format = "directory"   # pg_dump --jobs=2: faster, needs room for the dump uncompressed (docs/postgres.md)
"#
            .into(),
            r#"
[[drill.checks]]
resource = "db"
sql = "SELECT count(*) > 0 FROM pg_class"   # replace: e.g. SELECT count(*) > 0 FROM orders
"#,
        ),
        InitKind::S3 => (
            r#"[[resources]]
name = "uploads"
kind = "s3"
bucket = "my-app-uploads"            # in the primary region
prefix = ""                          # or only what is under a prefix
"#
            .into(),
            "",
        ),
        InitKind::RdsInstance => (
            r#"[[resources]]
name = "db"
kind = "rds-instance"
instance = "my-app-db"               # the instance identifier in the primary region
# instance_class = "db.t4g.medium"   # drills' instance class [default: the snapshot's]
"#
            .into(),
            r#"
# [[drill.checks]]                   # credentials from the environment (PGUSER/PGPASSWORD, MYSQL_PWD...)
# resource = "db"
# sql = "SELECT count(*) > 0 FROM orders"
"#,
        ),
        InitKind::RdsCluster => (
            r#"[[resources]]
name = "db"
kind = "rds-cluster"
cluster = "my-app-aurora"            # the Aurora cluster identifier in the primary region
# instance_class = "db.r6g.large"    # the drill cluster's instance [default: db.t4g.medium]
"#
            .into(),
            r#"
# [[drill.checks]]                   # credentials from the environment (PGUSER/PGPASSWORD, MYSQL_PWD...)
# resource = "db"
# sql = "SELECT count(*) > 0 FROM orders"
"#,
        ),
    }
}

/// `lifeboat completions SHELL`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  lifeboat completions bash > /etc/bash_completion.d/lifeboat
  lifeboat completions zsh > \"${fpath[1]}/_lifeboat\"
  lifeboat completions fish > ~/.config/fish/completions/lifeboat.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lifeboat", &mut buf);
    out!("{}", String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}

/// `lifeboat man`: the manual page, in roff.
pub fn man() -> Result<ExitCode> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    out!("{}", String::from_utf8_lossy(&buf));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_a_valid_plan() {
        for kind in InitKind::value_variants() {
            let text = template("new-plan", *kind);
            let parsed =
                lifeboat::plan::parse_plan(Path::new("/etc/lifeboat/plans/new-plan.toml"), &text);
            let (plan, diagnostics) = parsed.unwrap_or_else(|e| panic!("{kind:?}: {e:?}\n{text}"));
            assert_eq!(plan.name, "new-plan");
            assert_eq!(plan.resources[0].spec.kind(), kind_name(*kind));
            // Not even a warning: a first plan should be right as written.
            assert!(diagnostics.is_empty(), "{kind:?}: {diagnostics:?}");
        }
    }

    #[test]
    fn plan_names_follow_the_plan_rules() {
        assert!(plan_name("shop-db_2").is_ok());
        assert!(plan_name("Shop").is_err());
        assert!(plan_name("").is_err());
        assert!(plan_name("../etc").is_err());
    }
}
