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
//!
//! The drills restored from the region come back from their evidence
//! records in the same vault (see [`crate::evidence`]), each with its own
//! id, as far as the chain holds together, and the chain's head is
//! recorded again, so `report` finds the chain intact and new drills
//! continue it. A rebuilt drill shows the point ids its record names (the
//! lost catalog's); it is linked to the points this catalog holds under
//! the same ids in its region.

use std::collections::BTreeMap;

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::catalog::{
    Catalog, CatalogError, DrillStatus, Flags, NewCheck, RebuiltDrill, RebuiltPoint,
};
use crate::evidence::{read_chain, EvidenceError};
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
        "the catalog already records points or drills of plan `{plan}` in region `{region}`; \
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
    /// The evidence records could not be listed or read.
    #[error(transparent)]
    Evidence(#[from] EvidenceError),
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
    /// The ids of the drills recorded again from their evidence records.
    pub drills: Vec<i64>,
    /// Why the evidence chain was not read to its end, if it was not: the
    /// drills after that point are not recorded.
    pub evidence_problem: Option<String>,
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
    if cat.has_points_in(&plan.name, region).await? || cat.has_drills_in(&plan.name, region).await?
    {
        return Err(RebuildError::NotEmpty {
            plan: plan.name.clone(),
            region: region.to_string(),
        });
    }
    let prefix = format!("{}/", plan.name);
    let listed = vault.with_own_sizes(vault.list(&prefix).await?).await?;
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
    let (drills, evidence_problem) = rebuild_drills(cat, plan, region).await?;
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
        drills,
        evidence_problem,
    })
}

/// Records the drills of `plan`'s evidence chain in `region` again, then
/// the chain's head: the drill ids recorded, and why the chain stopped
/// early if it did.
async fn rebuild_drills(
    cat: &Catalog,
    plan: &Plan,
    region: &str,
) -> Result<(Vec<i64>, Option<String>), RebuildError> {
    let (chain, mut problem) = read_chain(plan, region).await?;
    let mut drills = Vec::new();
    for record in &chain {
        match drill_of(plan, region, &record.drill) {
            Ok(d) => drills.push(d),
            Err(e) => {
                problem = Some(format!("{}: {e}", record.key));
                break;
            }
        }
    }
    cat.insert_rebuilt_drills(&drills).await?;
    if let Some(last) = drills.last() {
        let head = &chain[drills.len() - 1].head;
        cat.advance_evidence_head(&plan.name, region, last.id, head, crate::time::now_ms())
            .await?;
    }
    Ok((drills.iter().map(|d| d.id).collect(), problem))
}

/// A drill as its evidence record shows it (the fields a drill row needs;
/// the others are derived from these).
#[derive(Deserialize)]
struct RecordedDrill {
    id: i64,
    region: String,
    trigger: String,
    status: DrillStatus,
    started_at: String,
    finished_at: Option<String>,
    rto_seconds: Option<f64>,
    rpo_seconds: Option<f64>,
    rto_objective_seconds: f64,
    rpo_objective_seconds: f64,
    points: Vec<i64>,
    phases: RecordedPhases,
    checks: Vec<RecordedCheck>,
    kept_path: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RecordedPhases {
    choose_seconds: Option<f64>,
    restore_seconds: Option<f64>,
    checks_seconds: Option<f64>,
    cleanup_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct RecordedCheck {
    name: String,
    resource: String,
    passed: bool,
    detail: String,
    seconds: f64,
}

/// The drill row an evidence record holds, or why it cannot be one.
fn drill_of(plan: &Plan, region: &str, view: &serde_json::Value) -> Result<RebuiltDrill, String> {
    let d = RecordedDrill::deserialize(view).map_err(|e| format!("not a drill record: {e}"))?;
    if d.region != region || d.status == DrillStatus::Running {
        return Err(format!(
            "drill {} is a {} drill of region `{}`",
            d.id,
            d.status.as_str(),
            d.region
        ));
    }
    let time = |t: &str| crate::time::parse_rfc3339(t).map_err(|e| format!("time `{t}`: {e}"));
    let ms = |s: f64| (s * 1000.0).round() as i64;
    Ok(RebuiltDrill {
        id: d.id,
        plan: plan.name.clone(),
        region: d.region,
        trigger: d.trigger,
        status: d.status,
        started_at: time(&d.started_at)?,
        finished_at: d.finished_at.as_deref().map(time).transpose()?,
        rto_ms: d.rto_seconds.map(ms),
        rpo_ms: d.rpo_seconds.map(ms),
        rto_objective_ms: ms(d.rto_objective_seconds),
        rpo_objective_ms: ms(d.rpo_objective_seconds),
        phases_ms: [
            d.phases.choose_seconds.map(ms),
            d.phases.restore_seconds.map(ms),
            d.phases.checks_seconds.map(ms),
            d.phases.cleanup_seconds.map(ms),
        ],
        kept_path: d.kept_path,
        error: d.error,
        points: d.points,
        checks: d
            .checks
            .into_iter()
            .map(|c| NewCheck {
                name: c.name,
                resource: c.resource,
                passed: c.passed,
                detail: c.detail,
                ms: ms(c.seconds),
            })
            .collect(),
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
