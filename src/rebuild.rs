//! `catalog rebuild`: the catalog's points recorded again from the
//! manifests in a region's vault, for the day the catalog is lost.
//!
//! Every vault point has a manifest beside its data that names its plan,
//! resource and point, its data time and the artifact's hash and size (see
//! [`crate::resource::Manifest`]): the vault alone is enough to know what
//! it holds. A manifest is recorded as a complete point only when the data
//! it describes is there with the size it gives; the point is bound to the
//! manifest's bytes as read, so a later drill or restore checks the vault
//! against what was rebuilt. RDS points live in RDS, not in a vault: they
//! are not rebuilt.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::catalog::{Catalog, CatalogError, Flags, RebuiltPoint};
use crate::plan::Plan;
use crate::resource::{region_vault, ArtifactKeys, Location, Manifest, PointFlag, MANIFEST_SUFFIX};
use crate::time::Millis;
use crate::vault::{ObjectInfo, Vault, VaultError};

/// Manifests read at once: a remote vault answers each in a round trip.
const PARALLEL_READS: usize = 16;

/// Why a plan's points could not be rebuilt (nothing was recorded).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The plan has no such region, or its vault cannot be opened.
    #[error("plan `{plan}`: {reason}")]
    NoVault {
        /// The plan's name.
        plan: String,
        /// Why there is no vault to read.
        reason: String,
    },
    /// The catalog already records points of the plan in that region:
    /// rebuilding would record them twice.
    #[error(
        "the catalog already records points of plan `{plan}` in region `{region}`; \
         rebuild into a new catalog (--catalog NEW.db)"
    )]
    NotEmpty {
        /// The plan's name.
        plan: String,
        /// The region.
        region: String,
    },
    /// The vault could not be listed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// A manifest that was not recorded, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The manifest's URL.
    pub manifest: String,
    /// Why it was not recorded.
    pub reason: String,
}

/// What a rebuild of one plan's region found and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    /// The plan's name.
    pub plan: String,
    /// The region read.
    pub region: String,
    /// The vault's URL of the plan's points.
    pub location: String,
    /// The ids of the points recorded, oldest data first.
    pub points: Vec<i64>,
    /// Points recorded per resource.
    pub resources: BTreeMap<String, usize>,
    /// The newest data time recorded, when any.
    #[serde(with = "crate::time::serde_ms::option")]
    pub newest_data_time: Option<Millis>,
    /// Manifests not recorded.
    pub skipped: Vec<Skipped>,
}

/// Records every point of `plan` whose manifest and data are in the vault
/// of `region`. Refuses a catalog that already records points of the plan
/// there.
pub async fn rebuild(cat: &Catalog, plan: &Plan, region: &str) -> Result<Rebuilt, RebuildError> {
    if !plan.point_regions().contains(&region) {
        return Err(RebuildError::NoVault {
            plan: plan.name.clone(),
            reason: format!(
                "region `{region}` holds none of its points (it has {})",
                plan.point_regions().join(", ")
            ),
        });
    }
    let vault = region_vault(plan, region)
        .await
        .map_err(|e| RebuildError::NoVault {
            plan: plan.name.clone(),
            reason: e.to_string(),
        })?;
    if cat.has_points_in(&plan.name, region).await? {
        return Err(RebuildError::NotEmpty {
            plan: plan.name.clone(),
            region: region.to_string(),
        });
    }
    let prefix = format!("{}/", plan.name);
    let listed = vault.list(&prefix).await?;
    let sizes: BTreeMap<&str, &ObjectInfo> = listed.iter().map(|o| (o.key.as_str(), o)).collect();
    let manifests = listed
        .iter()
        .filter(|o| o.key.ends_with(MANIFEST_SUFFIX))
        .map(|o| o.key.as_str());
    let read: Vec<_> = stream::iter(manifests)
        .map(|key| {
            let vault = &vault;
            async move { (key, Manifest::load_hashed(vault, key).await) }
        })
        .buffered(PARALLEL_READS)
        .collect()
        .await;

    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for (key, loaded) in read {
        match loaded
            .map_err(|e| e.to_string())
            .and_then(|(m, sha)| point_of(plan, region, &vault, &sizes, key, m, sha))
        {
            Ok(p) => found.push(p),
            Err(reason) => skipped.push(Skipped {
                manifest: vault.location(key),
                reason,
            }),
        }
    }
    found.sort_by_key(|p| (p.data_time, p.origin));
    let ids = cat.insert_rebuilt_points(&found).await?;
    let mut resources = BTreeMap::new();
    for p in &found {
        *resources.entry(p.resource.clone()).or_insert(0) += 1;
    }
    Ok(Rebuilt {
        plan: plan.name.clone(),
        region: region.to_string(),
        location: vault.location(&prefix),
        points: ids,
        resources,
        newest_data_time: found.iter().map(|p| p.data_time).max(),
        skipped,
    })
}

/// The point a manifest describes, if it belongs to `plan` and its data is
/// in the listing with the size the manifest gives; else why not.
fn point_of(
    plan: &Plan,
    region: &str,
    vault: &Vault,
    listed: &BTreeMap<&str, &ObjectInfo>,
    key: &str,
    m: Manifest,
    manifest_sha256: String,
) -> Result<RebuiltPoint, String> {
    let base = key.strip_suffix(MANIFEST_SUFFIX).unwrap_or(key);
    let (key_plan, key_resource, key_id) = ArtifactKeys::parse_base(base)
        .ok_or_else(|| "not a manifest key Lifeboat writes".to_string())?;
    // Manifests before format 2 name no point: the key does.
    let (resource, origin) = match &m.point {
        Some(id) if id.plan != plan.name || id.resource != key_resource => {
            return Err(format!(
                "it names point {} of {}/{}, but sits under {key_plan}/{key_resource}",
                id.id, id.plan, id.resource
            ))
        }
        Some(id) => (id.resource.clone(), id.id),
        None => (key_resource.to_string(), key_id),
    };
    let stored = Location::of_manifest(m.kind, key)
        .ok_or_else(|| format!("a manifest of kind {} is not kept in a vault", m.kind))?;
    check_data(&stored, &m, listed)?;
    let data_time = crate::time::parse_rfc3339(&m.data_time)
        .map_err(|e| format!("its data time `{}`: {e}", m.data_time))?;
    let completed_at = listed
        .get(key)
        .and_then(|o| o.modified)
        .unwrap_or(data_time)
        .max(data_time);
    let mut flags = Flags::new([PointFlag::Rebuilt]);
    if m.files.iter().any(|f| f.changed_while_read) {
        flags.insert(PointFlag::ChangedWhileRead);
    }
    let artifact = match &stored {
        Location::Artifact { key } | Location::Objects { key } => key.clone(),
        Location::RdsSnapshot { id, .. } => id.clone(),
    };
    Ok(RebuiltPoint {
        plan: plan.name.clone(),
        resource,
        kind: m.kind,
        region: region.to_string(),
        origin,
        is_origin: region == plan.backup.primary_region,
        data_time,
        completed_at,
        size_bytes: m.artifact.size,
        content_bytes: m.content_bytes,
        file_count: m.file_count,
        sha256: m.artifact.sha256,
        manifest_sha256,
        location: vault.location(&artifact),
        stored,
        flags,
        locked_until: plan.lock_until(region, completed_at),
    })
}

/// The data a manifest describes is listed with the size it gives: one
/// artifact, or (for `s3`) as many objects as it lists, totalling its size.
fn check_data(
    stored: &Location,
    m: &Manifest,
    listed: &BTreeMap<&str, &ObjectInfo>,
) -> Result<(), String> {
    let want = m.artifact.size;
    match stored {
        Location::Artifact { key } => match listed.get(key.as_str()) {
            None => Err(format!("its artifact {key} is missing")),
            Some(o) if o.size != want => Err(format!(
                "its artifact {key} has {} bytes, the manifest says {want}",
                o.size
            )),
            Some(_) => Ok(()),
        },
        Location::Objects { key } => {
            let inside = format!("{key}/");
            let (count, total) = listed
                .range(inside.as_str()..)
                .take_while(|(k, _)| k.starts_with(&inside))
                .fold((0usize, 0u64), |(n, t), (_, o)| (n + 1, t + o.size));
            if count != m.objects.len() || total != want {
                return Err(format!(
                    "{key} holds {count} objects ({total} bytes), the manifest lists {} ({want} bytes)",
                    m.objects.len()
                ));
            }
            Ok(())
        }
        Location::RdsSnapshot { .. } => Err("not a vault point".into()),
    }
}
