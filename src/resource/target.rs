//! Where `lifeboat restore` puts a point back: a target the operator
//! named, never guessed. The point is first restored and verified in a
//! staging place exactly as a drill restores it into a scratch place (the
//! same [`super::restore`] and checks), and put in the target only once
//! everything passed: a failed or interrupted restore leaves the target as
//! it was (or, for a folder merged into, marked incomplete).

use std::path::{Path, PathBuf};

use globset::GlobSet;

use super::path::commit::{self, INCOMPLETE_MARKER};
use super::postgres::promote;
use super::{remove_scratch, ResourceError, Restored, RestoredInto, Scratch, ScratchFor};

/// A restore's target for one resource.
#[derive(Debug, Clone)]
pub enum Target {
    /// `path`: `--to DIR`, optionally only what `--include` picks.
    Folder {
        /// The folder to restore into.
        dir: PathBuf,
        /// The `--include` globs, compiled; `None`: everything.
        include: Option<GlobSet>,
        /// The globs as given, for the record.
        patterns: Vec<String>,
    },
    /// `sqlite`: `--to FILE`.
    File {
        /// The database file to write.
        path: PathBuf,
    },
    /// `s3`: `--to-bucket B [--to-prefix P]`, in the region restored from.
    Bucket {
        /// `s3://BUCKET/PREFIX`.
        url: String,
        /// The region (its name is the AWS region's).
        region: String,
        /// The plan's AWS settings (endpoint, profile).
        aws: Option<crate::plan::AwsSpec>,
    },
    /// `rds-instance` / `rds-cluster`: `--to-instance ID` / `--to-cluster
    /// ID`, created in the region restored from, waited for, never deleted.
    Instance {
        /// What to create.
        target: super::InstanceTarget,
        /// A cluster (else an instance).
        cluster: bool,
        /// The region.
        region: String,
    },
    /// `postgres`: `--to-db NAME` on the resource's server, or `--to-url`.
    Database {
        /// The server, as a URL on its maintenance database.
        server: String,
        /// The database to restore into.
        name: String,
    },
}

impl Target {
    /// The target as the output and the catalog show it (no password: the
    /// URLs never hold one).
    pub fn describe(&self) -> String {
        match self {
            Target::Folder { dir, patterns, .. } if patterns.is_empty() => {
                dir.display().to_string()
            }
            Target::Folder { dir, patterns, .. } => {
                format!("{} (only {})", dir.display(), patterns.join(", "))
            }
            Target::File { path } => path.display().to_string(),
            Target::Bucket { url, .. } => url.clone(),
            Target::Instance {
                target,
                cluster,
                region,
            } => format!(
                "{} {} in {region}",
                if *cluster { "cluster" } else { "instance" },
                target.id
            ),
            Target::Database { server, name } => {
                format!("database {name} on {}", server_shown(server))
            }
        }
    }

    /// Refuses a target that holds data, unless `overwrite`; checked
    /// before anything is restored.
    pub async fn preflight(
        &self,
        spec: &crate::plan::ResourceSpec,
        place: &super::Place<'_>,
        overwrite: bool,
    ) -> Result<(), ResourceError> {
        match self {
            Target::Instance { target, .. } => {
                if super::rds::exists(spec, &place.rds(), &target.id).await? {
                    return Err(ResourceError::Other(format!(
                        "{} exists: restore to a new identifier (RDS cannot restore over one; rename the old one with modify-db-instance --new-db-instance-identifier if the new one must take its name)",
                        self.describe()
                    )));
                }
                Ok(())
            }
            Target::Folder { dir, .. } => match std::fs::symlink_metadata(dir) {
                Err(_) => Ok(()),
                Ok(m) if !m.is_dir() => Err(ResourceError::Other(format!(
                    "{} exists and is not a folder",
                    dir.display()
                ))),
                Ok(_) if overwrite => Ok(()),
                Ok(_) => {
                    let busy = std::fs::read_dir(dir)
                        .map_err(ResourceError::io("read", dir))?
                        .flatten()
                        .any(|e| !is_ours(&e.file_name().to_string_lossy()));
                    if busy {
                        Err(ResourceError::Other(format!(
                            "{} is not empty: restore into a new folder, or pass --overwrite to replace the files the point holds (others are left as they are)",
                            dir.display()
                        )))
                    } else {
                        Ok(())
                    }
                }
            },
            Target::File { path } => {
                match std::fs::symlink_metadata(path) {
                    Err(_) => {}
                    Ok(m) if m.is_dir() => {
                        return Err(ResourceError::Other(format!(
                            "{} is a folder: --to names the database file to write",
                            path.display()
                        )))
                    }
                    Ok(_) if !overwrite => {
                        return Err(ResourceError::Other(format!(
                            "{} exists: restore to another file, or pass --overwrite to replace it",
                            path.display()
                        )))
                    }
                    Ok(_) => {}
                }
                // A journal beside the file would be applied to the
                // restored database on its first open, corrupting it.
                for suffix in ["-wal", "-journal"] {
                    let side = sibling(path, suffix);
                    if side.exists() {
                        return Err(ResourceError::Other(format!(
                            "{} exists: the database is open, or was not closed cleanly; stop its application (and let SQLite remove it) before restoring over it",
                            side.display()
                        )));
                    }
                }
                Ok(())
            }
            Target::Bucket { url, .. } => {
                if !overwrite && super::s3::holds_objects(&self.open_bucket().await?).await? {
                    return Err(ResourceError::Other(format!(
                        "{url} holds objects: restore under another --to-prefix, or pass --overwrite to replace the keys the point holds (others are left as they are)"
                    )));
                }
                Ok(())
            }
            Target::Database { server, name } => {
                if !overwrite && promote::database_exists(server, name).await? {
                    return Err(ResourceError::Other(format!(
                        "database {name} exists on {}: restore to another name, or pass --overwrite to rename it aside and put the restored one in its place",
                        server_shown(server)
                    )));
                }
                Ok(())
            }
        }
    }

    /// Where restore `restore_id` stages `resource` of `plan` before it is
    /// verified: beside the target, or inside it, so that putting it in
    /// place is a rename on one file system. A database's dump is
    /// downloaded under `work` (the restore's folder in the work dir).
    pub fn staging(&self, plan: &str, restore_id: i64, resource: &str, work: &Path) -> Scratch {
        let dir = match self {
            Target::Folder { dir, include, .. } => {
                if include.is_none() && std::fs::symlink_metadata(dir).is_err() {
                    hidden_sibling(dir, restore_id)
                } else {
                    dir.join(format!(".lifeboat-restore-{restore_id}"))
                }
            }
            Target::File { path } => hidden_sibling(path, restore_id),
            Target::Database { .. } | Target::Bucket { .. } | Target::Instance { .. } => {
                work.join(resource)
            }
        };
        Scratch {
            dir,
            plan: plan.to_string(),
            drill_id: restore_id,
            resource: resource.to_string(),
            purpose: ScratchFor::Restore,
            server: match self {
                Target::Database { server, .. } => Some(server.clone()),
                _ => None,
            },
            instance: match self {
                Target::Instance { target, .. } => Some(target.clone()),
                _ => None,
            },
        }
    }

    /// Puts what was restored (and checked) in `staging` into the target.
    /// Returns what it did.
    pub async fn commit(
        &self,
        place: &super::Place<'_>,
        restored: &Restored,
        staging: &Scratch,
        overwrite: bool,
        what: &str,
        now_stamp: &str,
    ) -> Result<String, ResourceError> {
        match (self, &restored.into) {
            (Target::Folder { dir, include, .. }, RestoredInto::Folder(tree)) => {
                let (tree, dir, include, what) =
                    (tree.clone(), dir.clone(), include.clone(), what.to_string());
                let done = tokio::task::spawn_blocking(move || {
                    commit::commit(&tree, &dir, include.as_ref(), &what)
                        .map_err(ResourceError::io("restore into", &dir))
                })
                .await
                .map_err(|e| ResourceError::Other(format!("restore stopped: {e}")))??;
                let _ = remove_scratch(&staging.dir);
                Ok(format!(
                    "{} entries put in {} ({} replaced)",
                    done.entries,
                    self.describe(),
                    done.replaced
                ))
            }
            (Target::File { path }, RestoredInto::File(file)) => {
                let existed = path.exists();
                std::fs::rename(file, path).map_err(ResourceError::io("rename into", path))?;
                if let Some(parent) = path.parent() {
                    if let Ok(d) = std::fs::File::open(parent) {
                        let _ = d.sync_all();
                    }
                }
                let _ = remove_scratch(&staging.dir);
                Ok(format!(
                    "database file {} {}",
                    path.display(),
                    if existed { "replaced" } else { "written" }
                ))
            }
            (Target::Instance { .. }, RestoredInto::Instance { url }) => Ok(format!(
                "{} available at {}; Lifeboat never deletes what a restore created",
                self.describe(),
                url.as_deref().unwrap_or("(no endpoint reported)")
            )),
            (Target::Bucket { .. }, RestoredInto::Objects { manifest, .. }) => {
                let target = self.open_bucket().await?;
                super::s3::put_in_bucket(place.vault().await?, staging, manifest, &target).await
            }
            (Target::Database { server, name }, RestoredInto::Database { name: staged, .. }) => {
                let said = promote::promote(server, staged, name, overwrite, now_stamp).await?;
                let _ = remove_scratch(&staging.dir);
                Ok(said)
            }
            (target, into) => Err(ResourceError::Mismatch(format!(
                "cannot put {into:?} into {}",
                target.describe()
            ))),
        }
    }
}

impl Target {
    /// The target bucket, opened as a vault of the region.
    async fn open_bucket(&self) -> Result<crate::vault::Vault, ResourceError> {
        let Target::Bucket { url, region, aws } = self else {
            return Err(ResourceError::Other(format!(
                "{} is not a bucket",
                self.describe()
            )));
        };
        Ok(crate::vault::Vault::open(crate::vault::VaultTarget {
            url,
            region,
            aws: aws.as_ref(),
            kms_key: None,
            object_lock: None,
        })
        .await?)
    }
}

/// Whether a folder entry is one a restore leaves while it works.
fn is_ours(name: &str) -> bool {
    name.starts_with(".lifeboat-restore-") || name == INCOMPLETE_MARKER
}

/// `PARENT/.NAME.lifeboat-restore-ID`.
fn hidden_sibling(path: &Path, restore_id: i64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target".into());
    path.with_file_name(format!(".{name}.lifeboat-restore-{restore_id}"))
}

/// `PATH` with `suffix` appended to its file name (`app.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// A server URL for messages: `host:port`, never more.
fn server_shown(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}
