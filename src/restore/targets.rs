//! From the command line's target flags to one [`Target`] per resource.
//! A restore never guesses where to write: every resource restored needs
//! its flag, and a flag given bare (`--to DIR`) belongs to the one
//! resource of a kind that takes it; with several, each is named
//! (`--to files=DIR`).

use globset::{Glob, GlobSetBuilder};

use crate::plan::{Resource, ResourceSpec};
use crate::resource::postgres_promote as promote;
use crate::resource::target::Target;

/// The target flags, as given.
#[derive(Debug, Clone, Default)]
pub struct TargetArgs {
    /// `--to [RESOURCE=]DIR|FILE`: a `path` resource's folder, a `sqlite`
    /// resource's file.
    pub to: Vec<String>,
    /// `--include [RESOURCE=]GLOB`: only these paths of a `path` point.
    pub include: Vec<String>,
    /// `--to-db [RESOURCE=]NAME`: a database on the resource's server.
    pub to_db: Vec<String>,
    /// `--to-url [RESOURCE=]URL`: a database on another server.
    pub to_url: Vec<String>,
    /// `--to-bucket [RESOURCE=]BUCKET`: an `s3` resource's bucket, in the
    /// region restored from.
    pub to_bucket: Vec<String>,
    /// `--to-prefix [RESOURCE=]PREFIX`: under this prefix of the bucket.
    pub to_prefix: Vec<String>,
    /// `--to-instance [RESOURCE=]ID`: an `rds-instance` resource's new
    /// instance.
    pub to_instance: Vec<String>,
    /// `--to-cluster [RESOURCE=]ID`: an `rds-cluster` resource's new
    /// cluster.
    pub to_cluster: Vec<String>,
    /// The new instances' (and clusters') class, subnet group and security
    /// groups; unset, RDS's defaults (an instance gets its snapshot's
    /// class).
    pub rds: crate::plan::RdsRestore,
}

/// The flag's values for `res`: those naming it, else the bare ones when
/// `res` is the only resource in `takers`.
fn values_for<'v>(
    flag: &str,
    values: &'v [String],
    res: &Resource,
    takers: &[&Resource],
) -> Result<Vec<&'v str>, String> {
    let mut named = Vec::new();
    let mut bare = Vec::new();
    for v in values {
        match v.split_once('=') {
            Some((name, rest)) if takers.iter().any(|t| t.name == name) => {
                if name == res.name {
                    named.push(rest);
                }
            }
            _ => bare.push(v.as_str()),
        }
    }
    if !bare.is_empty() {
        if takers.len() > 1 {
            let names: Vec<&str> = takers.iter().map(|t| t.name.as_str()).collect();
            return Err(format!(
                "several resources take {flag} ({}): name each, as {flag} {}=…",
                names.join(", "),
                names[0]
            ));
        }
        named.extend(bare);
    }
    Ok(named)
}

/// One target per resource, in order; an error names the flag missing or
/// misused.
pub fn resolve(
    resources: &[&Resource],
    args: &TargetArgs,
    region: &str,
    aws: Option<&crate::plan::AwsSpec>,
) -> Result<Vec<Target>, String> {
    let of = |pred: fn(&ResourceSpec) -> bool| -> Vec<&Resource> {
        resources
            .iter()
            .copied()
            .filter(|r| pred(&r.spec))
            .collect()
    };
    let files = of(|s| matches!(s, ResourceSpec::Path { .. } | ResourceSpec::Sqlite { .. }));
    let trees = of(|s| matches!(s, ResourceSpec::Path { .. }));
    let dbs = of(|s| matches!(s, ResourceSpec::Postgres { .. }));
    let buckets = of(|s| matches!(s, ResourceSpec::S3 { .. }));
    let instances = of(|s| matches!(s, ResourceSpec::RdsInstance { .. }));
    let clusters = of(|s| matches!(s, ResourceSpec::RdsCluster { .. }));
    for (flag, values, takers) in [
        ("--to", &args.to, &files),
        ("--include", &args.include, &trees),
        ("--to-db", &args.to_db, &dbs),
        ("--to-url", &args.to_url, &dbs),
        ("--to-bucket", &args.to_bucket, &buckets),
        ("--to-prefix", &args.to_prefix, &buckets),
        ("--to-instance", &args.to_instance, &instances),
        ("--to-cluster", &args.to_cluster, &clusters),
    ] {
        if !values.is_empty() && takers.is_empty() {
            return Err(format!(
                "{flag} is for {} resources, and none is being restored",
                match flag {
                    "--to" => "path and sqlite",
                    "--include" => "path",
                    "--to-bucket" | "--to-prefix" => "s3",
                    "--to-instance" => "rds-instance",
                    "--to-cluster" => "rds-cluster",
                    _ => "postgres",
                }
            ));
        }
    }
    let mut out = Vec::new();
    for res in resources {
        let one = |flag: &str,
                   values: &[String],
                   takers: &[&Resource]|
         -> Result<Option<String>, String> {
            let v = values_for(flag, values, res, takers)?;
            match v.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(one.to_string())),
                _ => Err(format!("{flag} is given twice for `{}`", res.name)),
            }
        };
        let target = match &res.spec {
            ResourceSpec::Path { .. } => {
                let dir =
                    one("--to", &args.to, &files)?.ok_or_else(|| needs(res, "--to DIR", &files))?;
                let patterns: Vec<String> = values_for("--include", &args.include, res, &trees)?
                    .into_iter()
                    .map(|p| p.trim_matches('/').to_string())
                    .collect();
                let include = if patterns.is_empty() {
                    None
                } else {
                    let mut set = GlobSetBuilder::new();
                    for p in &patterns {
                        set.add(Glob::new(p).map_err(|e| format!("--include `{p}`: {e}"))?);
                    }
                    Some(set.build().map_err(|e| format!("--include: {e}"))?)
                };
                Target::Folder {
                    dir: absolute(&dir)?,
                    include,
                    patterns,
                }
            }
            ResourceSpec::Sqlite { .. } => {
                let file = one("--to", &args.to, &files)?
                    .ok_or_else(|| needs(res, "--to FILE", &files))?;
                Target::File {
                    path: absolute(&file)?,
                }
            }
            ResourceSpec::Postgres { url, .. } => {
                let db = one("--to-db", &args.to_db, &dbs)?;
                let to_url = one("--to-url", &args.to_url, &dbs)?;
                match (db, to_url) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "`{}`: give --to-db or --to-url, not both",
                            res.name
                        ))
                    }
                    (Some(name), None) => Target::Database {
                        server: promote::maintenance_url(url).map_err(|e| e.to_string())?,
                        name: valid_database_name(&name)?,
                    },
                    (None, Some(to)) => {
                        if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
                            return Err(format!("--to-url must be a postgres:// URL, got `{to}`"));
                        }
                        if has_password(&to) {
                            return Err("--to-url must not hold a password: it comes from PGPASSWORD, PGPASSFILE or ~/.pgpass, as for the plan's URLs".into());
                        }
                        let name = promote::database_of(&to).ok_or_else(|| {
                            "--to-url must name the database to restore into (postgres://HOST/NAME)".to_string()
                        })?;
                        Target::Database {
                            server: promote::maintenance_url(&to).map_err(|e| e.to_string())?,
                            name: valid_database_name(&name)?,
                        }
                    }
                    (None, None) => return Err(needs(res, "--to-db NAME or --to-url URL", &dbs)),
                }
            }
            ResourceSpec::S3 { .. } => {
                let bucket = one("--to-bucket", &args.to_bucket, &buckets)?
                    .ok_or_else(|| needs(res, "--to-bucket BUCKET", &buckets))?;
                if bucket.is_empty() || bucket.contains('/') || bucket.contains("://") {
                    return Err(format!("--to-bucket takes a bucket name, got `{bucket}`"));
                }
                let prefix = one("--to-prefix", &args.to_prefix, &buckets)?.unwrap_or_default();
                let prefix = prefix.trim_matches('/');
                Target::Bucket {
                    url: if prefix.is_empty() {
                        format!("s3://{bucket}")
                    } else {
                        format!("s3://{bucket}/{prefix}")
                    },
                    region: region.to_string(),
                    aws: aws.cloned(),
                }
            }
            ResourceSpec::RdsInstance { .. } | ResourceSpec::RdsCluster { .. } => {
                let cluster = matches!(res.spec, ResourceSpec::RdsCluster { .. });
                let (flag, values, takers) = if cluster {
                    ("--to-cluster", &args.to_cluster, &clusters)
                } else {
                    ("--to-instance", &args.to_instance, &instances)
                };
                let id = one(flag, values, takers)?
                    .ok_or_else(|| needs(res, &format!("{flag} ID"), takers))?;
                Target::Instance {
                    target: crate::resource::InstanceTarget {
                        id: valid_rds_identifier(&id)?,
                        settings: args.rds.clone(),
                    },
                    cluster,
                    region: region.to_string(),
                }
            }
        };
        out.push(target);
    }
    Ok(out)
}

/// The error for a resource without its target flag.
fn needs(res: &Resource, flag: &str, takers: &[&Resource]) -> String {
    let (name, rest) = flag.split_once(' ').unwrap_or((flag, ""));
    if takers.len() > 1 {
        format!(
            "`{}` ({}) needs a target: {name} {}={rest} (a restore never guesses where to write)",
            res.name,
            res.spec.kind(),
            res.name
        )
    } else {
        format!(
            "`{}` ({}) needs a target: {flag} (a restore never guesses where to write)",
            res.name,
            res.spec.kind()
        )
    }
}

/// The path made absolute against the current folder (it is recorded).
fn absolute(p: &str) -> Result<std::path::PathBuf, String> {
    if p.is_empty() {
        return Err("an empty path is not a target".into());
    }
    std::path::absolute(p).map_err(|e| format!("{p}: {e}"))
}

/// A database name PostgreSQL takes as is: 1 to 63 bytes, no NUL.
fn valid_database_name(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(format!("`{name}` is not a database name (1 to 63 bytes)"));
    }
    if name.starts_with(crate::resource::SCRATCH_DATABASE_PREFIX)
        || name.starts_with(crate::resource::RESTORE_DATABASE_PREFIX)
    {
        return Err(format!("`{name}`: names starting lifeboat_drill_ or lifeboat_restore_ are Lifeboat's scratch names"));
    }
    Ok(name.to_string())
}

/// An RDS identifier: 1 to 63 letters, digits or hyphens, starting with
/// a letter, no two hyphens in a row, not ending with one.
fn valid_rds_identifier(id: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-');
    if ok {
        Ok(id.to_string())
    } else {
        Err(format!(
            "`{id}` is not an RDS identifier (1 to 63 letters, digits or hyphens, starting with a letter)"
        ))
    }
}

/// Whether a URL's user info holds a password.
fn has_password(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}
