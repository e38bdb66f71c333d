//! `[regions.*]`: names, vaults (each region its own), and S3 Object Lock.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use super::Validator;
use crate::plan::raw::{RawEncryption, RawObjectLock, RawRegion, S};
use crate::plan::{KeySource, LockMode, ObjectLock, Region, Retention};

/// The regions read so far, by name, with the span of each name.
pub(super) type Regions = BTreeMap<String, (Range<usize>, Region)>;

/// The regions as the plan holds them.
pub(super) fn into_plan(regions: Regions) -> BTreeMap<String, Region> {
    regions.into_iter().map(|(k, (_, r))| (k, r)).collect()
}

type RawRegions = BTreeMap<S<String>, S<RawRegion>>;

impl Validator<'_> {
    /// Every region, then the rule that no two share a vault.
    pub(super) fn regions(&mut self, raw: &RawRegions, base_dir: &Path) -> Regions {
        let mut regions = Regions::new();
        for (key, region) in raw {
            let name = key.get_ref().clone();
            let region = self.region(key, region.get_ref(), base_dir);
            regions.insert(name, (key.span(), region));
        }
        self.check_shared_vaults(raw, base_dir);
        regions
    }

    fn region(&mut self, key: &S<String>, r: &RawRegion, base_dir: &Path) -> Region {
        let name = key.get_ref().clone();
        if !is_region_name(&name) {
            self.error(
                key.span(),
                format!("region name `{name}` must be 1 to 63 characters of a-z, A-Z, 0-9, '-', '_' and '.'"),
            );
        }
        if let Some(vault) = &r.vault {
            if let Err(e) = check_vault_url(vault.get_ref()) {
                self.error(vault.span(), e.to_string());
            }
        }
        // A key that would silently do nothing is worse than none: the
        // operator would believe the vault encrypted.
        if let (Some(kms), Some(vault)) = (&r.kms_key, &r.vault) {
            if vault.get_ref().starts_with("file://") {
                self.error(
                    kms.span(),
                    format!("`kms_key` encrypts objects in S3 (SSE-KMS); region `{name}`'s vault is a file:// folder, which it cannot encrypt: remove `kms_key`, or use an s3:// vault"),
                );
            }
        }
        let retention = self.retention(r.retention.as_ref());
        let object_lock = r.object_lock.as_ref().and_then(|l| self.object_lock(l));
        let encryption = r.encryption.as_ref().and_then(|e| {
            if r.vault.is_none() {
                self.error(
                    e.span(),
                    format!("region `{name}` has no vault: `encryption` encrypts the objects of its vault (RDS snapshots are encrypted with `kms_key`)"),
                );
            }
            self.encryption(e, base_dir)
        });
        Region {
            name,
            vault: r
                .vault
                .as_ref()
                .map(|v| resolve_vault(base_dir, v.get_ref())),
            kms_key: r.kms_key.as_ref().map(|k| k.get_ref().clone()),
            retention,
            object_lock,
            encryption,
        }
    }

    /// `encryption = { key_file = "…" }` or `{ key_env = "…" }`: exactly
    /// one. The key is not read here (it may be on the machine that runs
    /// backups only); opening the vault reads it, and says when it cannot.
    fn encryption(&mut self, raw: &S<RawEncryption>, base_dir: &Path) -> Option<KeySource> {
        let e = raw.get_ref();
        match (&e.key_file, &e.key_env) {
            (Some(file), None) => {
                if file.get_ref().trim().is_empty() {
                    self.error(file.span(), "`key_file` is empty: give the path of the region's key (`lifeboat key generate -o FILE` writes one)");
                    return None;
                }
                Some(KeySource::File(base_dir.join(file.get_ref())))
            }
            (None, Some(env)) => {
                let name = env.get_ref();
                if !is_env_name(name) {
                    self.error(
                        env.span(),
                        format!("`key_env` must name an environment variable (letters, digits and '_', not starting with a digit), got `{name}`"),
                    );
                    return None;
                }
                Some(KeySource::Env(name.clone()))
            }
            (Some(_), Some(_)) => {
                self.error(
                    raw.span(),
                    "`encryption` takes one of `key_file` and `key_env`, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    raw.span(),
                    "`encryption` needs `key_file = \"FILE\"` (an age identity file, as `lifeboat key generate -o FILE` writes it) or `key_env = \"NAME\"` (an environment variable holding the key)",
                );
                None
            }
        }
    }

    /// Two regions sharing a vault would make copies overwrite their
    /// source and pruning in one region delete the other's points.
    fn check_shared_vaults(&mut self, raw: &RawRegions, base_dir: &Path) {
        let mut vault_owner: HashMap<String, String> = HashMap::new();
        for (key, region) in raw {
            let Some(vault) = &region.get_ref().vault else {
                continue;
            };
            let canonical = normalize_vault(&resolve_vault(base_dir, vault.get_ref()));
            if let Some(other) = vault_owner.get(&canonical) {
                self.error(
                    vault.span(),
                    format!("vault `{}` is also the vault of region `{other}`; every region needs its own vault", vault.get_ref()),
                );
            } else {
                vault_owner.insert(canonical, key.get_ref().clone());
            }
        }
    }

    /// `object_lock = { mode, retain }`: both required. The mode is never
    /// assumed: governance can be lifted by privileged users, compliance by
    /// nobody, and which one a plan gets should be a decision.
    fn object_lock(&mut self, raw: &S<RawObjectLock>) -> Option<ObjectLock> {
        let l = raw.get_ref();
        let mode = match &l.mode {
            None => {
                self.error(
                    raw.span(),
                    "`object_lock` needs `mode`: \"governance\" (users allowed s3:BypassGovernanceRetention can still remove a lock) or \"compliance\" (nobody can before it expires, not even the account's root user)",
                );
                None
            }
            Some(m) => {
                let mode = LockMode::parse(m.get_ref());
                if mode.is_none() {
                    self.error(
                        m.span(),
                        format!(
                            "`mode` must be governance or compliance (got `{}`)",
                            m.get_ref()
                        ),
                    );
                }
                mode
            }
        };
        let retain = match &l.retain {
            None => {
                self.error(
                    raw.span(),
                    "`object_lock` needs `retain`: how long each object stays locked once written, e.g. \"30d\"",
                );
                None
            }
            Some(r) => self.positive_duration("retain", r),
        };
        Some(ObjectLock {
            mode: mode?,
            retain: retain?,
        })
    }

    /// An object lock needs an `s3://` vault; and a lock longer than the
    /// region's `max_age` keeps points past it (prune waits for the lock).
    pub(super) fn check_object_locks(
        &mut self,
        raw: &RawRegions,
        regions: &Regions,
        default_retention: &Retention,
    ) {
        for (key, region) in raw {
            let Some(lock_raw) = &region.get_ref().object_lock else {
                continue;
            };
            let name = key.get_ref();
            let Some((_, r)) = regions.get(name) else {
                continue;
            };
            match r.vault.as_deref() {
                None => {
                    self.error(
                        lock_raw.span(),
                        format!("region `{name}` has no vault: `object_lock` locks the objects of an s3:// vault"),
                    );
                    continue;
                }
                Some(vault) if !vault.starts_with("s3://") => {
                    self.error(
                        lock_raw.span(),
                        format!("`object_lock` is S3 Object Lock and needs an s3:// vault; region `{name}` keeps its points in `{vault}`"),
                    );
                    continue;
                }
                Some(_) => {}
            }
            let rules = if r.retention.keeps_everything() {
                default_retention
            } else {
                &r.retention
            };
            if let (Some(lock), Some(max_age)) = (r.object_lock, rules.max_age) {
                if lock.retain > max_age {
                    self.warning(
                        lock_raw.span(),
                        format!(
                            "points in region `{name}` stay locked for {}, longer than max_age {}: prune keeps each point until its lock expires, then deletes it",
                            humantime::format_duration(lock.retain),
                            humantime::format_duration(max_age)
                        ),
                    );
                }
            }
        }
    }
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_region_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Why a vault URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum VaultUrlError {
    #[error("vault `{0}` names no folder")]
    NoFolder(String),
    #[error("vault `{0}` names no bucket")]
    NoBucket(String),
    #[error("vault `{0}` must be a file://PATH or s3://BUCKET/PREFIX URL")]
    Scheme(String),
}

/// `file://PATH` (absolute, or relative to the plan's folder) or `s3://BUCKET[/PREFIX]`.
fn check_vault_url(url: &str) -> Result<(), VaultUrlError> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(VaultUrlError::NoFolder(url.into()));
        }
        Ok(())
    } else if let Some(rest) = url.strip_prefix("s3://") {
        if rest.split('/').next().unwrap_or("").is_empty() {
            return Err(VaultUrlError::NoBucket(url.into()));
        }
        Ok(())
    } else {
        Err(VaultUrlError::Scheme(url.into()))
    }
}

/// Relative `file://` vaults are resolved against the plan's folder (and
/// cleaned of `..`), so every command records the same locations.
fn resolve_vault(base_dir: &Path, url: &str) -> String {
    match url.strip_prefix("file://") {
        Some(path) if !Path::new(path).is_absolute() => {
            normalize_vault(&format!("file://{}", base_dir.join(path).display()))
        }
        _ => url.to_string(),
    }
}

/// A vault URL with its path cleaned lexically, to compare vaults.
fn normalize_vault(url: &str) -> String {
    let Some(path) = url.strip_prefix("file://") else {
        return url.trim_end_matches('/').to_string();
    };
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    format!("file://{}", out.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::file("file:///srv/vault", None)]
    #[case::relative_file("file://vault", None)]
    #[case::s3("s3://bucket", None)]
    #[case::s3_prefix("s3://bucket/a/b", None)]
    #[case::empty_file("file://", Some(VaultUrlError::NoFolder("file://".into())))]
    #[case::empty_bucket("s3:///prefix", Some(VaultUrlError::NoBucket("s3:///prefix".into())))]
    #[case::other_scheme("gs://bucket", Some(VaultUrlError::Scheme("gs://bucket".into())))]
    #[case::bare_path("/srv/vault", Some(VaultUrlError::Scheme("/srv/vault".into())))]
    fn vault_urls(#[case] url: &str, #[case] expected: Option<VaultUrlError>) {
        assert_eq!(check_vault_url(url).err(), expected);
    }

    #[rstest]
    #[case::relative("file://v", "file:///plans/v")]
    #[case::up_and_here("file://./x/../v", "file:///plans/v")]
    #[case::absolute_kept("file:///a/../b", "file:///a/../b")]
    #[case::s3_kept("s3://b/p/", "s3://b/p/")]
    fn relative_vaults_resolve_against_the_plan_folder(#[case] url: &str, #[case] expected: &str) {
        assert_eq!(resolve_vault(Path::new("/plans"), url), expected);
    }

    #[rstest]
    #[case::parent("file:///a/x/../b", "file:///a/b")]
    #[case::s3_trailing_slash("s3://b/p/", "s3://b/p")]
    fn vaults_compare_cleaned(#[case] url: &str, #[case] expected: &str) {
        assert_eq!(normalize_vault(url), expected);
    }
}
