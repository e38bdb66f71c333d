//! A plan's region as the resource kinds see it: its name, its vault
//! (opened on first use, so a region that holds only RDS snapshots never
//! opens one), its AWS settings, KMS key and object lock. Orchestrators
//! hand a [`Place`] to every step and never ask which kind needs what.

use tokio::sync::OnceCell;

use super::location::Location;
use super::rds::RdsPlace;
use super::ResourceError;
use crate::plan::Plan;
use crate::time::Millis;
use crate::vault::{Key, Vault, VaultTarget};

/// One region of one plan, for reading points or for writing them.
#[derive(Debug)]
pub struct Place<'p> {
    /// The plan whose region this is: its `[regions.X]` table and `[aws]`.
    pub plan: &'p Plan,
    /// The region's name, a key of the plan's `regions`.
    pub region: &'p str,
    /// Writes are about to happen: the vault is checked first (a region
    /// whose `object_lock` the bucket cannot honour fails its points
    /// before any object is written).
    writes: bool,
    /// The vault, or why there is none, kept so every point of a run
    /// gets the same answer without asking again.
    vault: OnceCell<Result<Vault, String>>,
}

impl<'p> Place<'p> {
    /// A region points are read from (drills, prune, verification).
    pub fn reading(plan: &'p Plan, region: &'p str) -> Self {
        Place {
            plan,
            region,
            writes: false,
            vault: OnceCell::new(),
        }
    }

    /// A region a backup writes points into.
    pub fn writing(plan: &'p Plan, region: &'p str) -> Self {
        Place {
            writes: true,
            ..Place::reading(plan, region)
        }
    }

    /// The region's vault, opened (and, for writing, checked) once.
    pub async fn vault(&self) -> Result<&Vault, ResourceError> {
        let opened = self
            .vault
            .get_or_init(|| async {
                let vault = region_vault(self.plan, self.region)
                    .await
                    .map_err(|e| e.to_string())?;
                if self.writes {
                    vault.check_writable().await.map_err(|e| e.to_string())?;
                }
                Ok(vault)
            })
            .await;
        opened
            .as_ref()
            .map_err(|reason| ResourceError::NoVault(reason.clone()))
    }

    /// The region as RDS calls see it; long waits are bounded by the
    /// plan's completion window.
    pub fn rds(&self) -> RdsPlace<'p> {
        RdsPlace {
            region: self.region,
            aws: self.plan.aws.as_ref(),
            kms_key: self
                .plan
                .regions
                .get(self.region)
                .and_then(|r| r.kms_key.as_deref()),
            budget: self.plan.backup.completion_window,
        }
    }

    /// Until when the objects written now at `location` stay locked, when
    /// the region's vault has an object lock (snapshots have none).
    pub fn lock_until(&self, location: &Location, now: Millis) -> Option<Millis> {
        location.vault_keys()?;
        self.plan.lock_until(self.region, now)
    }

    /// How a location reads to a user: the object's URL in the vault, or
    /// the snapshot's ARN (its identifier until it exists).
    pub async fn url_of(&self, location: &Location) -> String {
        match location {
            Location::Artifact { key } | Location::Objects { key } => match self.vault().await {
                Ok(vault) => vault.location(key),
                Err(_) => key.clone(),
            },
            Location::RdsSnapshot { id, arn } => arn.clone().unwrap_or_else(|| id.clone()),
        }
    }
}

/// Why a region has no vault to use.
#[derive(Debug, thiserror::Error)]
pub enum RegionVaultError {
    /// The plan has no `[regions.X]` table of that name (a point of a
    /// region since removed from the plan).
    #[error("plan has no region {0}")]
    NoRegion(String),
    /// The region sets no `vault`: it holds only RDS snapshots.
    #[error("region {0} has no vault")]
    NoVault(String),
    /// The vault's URL is not one Lifeboat can open.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

/// Opens the vault of a plan's region.
pub async fn region_vault(plan: &Plan, region: &str) -> Result<Vault, RegionVaultError> {
    let r = plan
        .regions
        .get(region)
        .ok_or_else(|| RegionVaultError::NoRegion(region.to_string()))?;
    let url = r
        .vault
        .as_deref()
        .ok_or_else(|| RegionVaultError::NoVault(region.to_string()))?;
    let vault = Vault::open(VaultTarget {
        url,
        region,
        aws: plan.aws.as_ref(),
        kms_key: r.kms_key.as_deref(),
        object_lock: r.object_lock,
    })
    .await?;
    // Every reader and writer of the region (backup, copy, restore,
    // verify, rebuild, evidence) opens its vault here: with `encryption`,
    // all of them go through the region's key.
    Ok(match &r.encryption {
        Some(source) => vault.encrypted(std::sync::Arc::new(Key::load(source, region).await?)),
        None => vault,
    })
}
