//! `lifeboat verify`: checks every usable point of a plan where it is
//! kept, in every region (the primary too, whatever `isolate_primary`
//! says), without restoring it, and marks the points whose data is gone or
//! wrong `damaged` so drills, `status` and the report stop relying on them.
//!
//! - Default: the data is there with the recorded size (artifact; an `s3`
//!   point's objects; an RDS snapshot, available) and the manifest is the
//!   one the catalog recorded ([`crate::resource::Binding`]).
//! - `--read-data`: every byte is read again and hashed, against the
//!   catalog's SHA-256 (and the manifest's).
//! - `--read-data-subset N/M`: every point gets the default check, and the
//!   points whose id hashes to N−1 modulo M are read in full, so the runs
//!   1/M … M/M read every point exactly once between them (a point is
//!   never split: its hash covers all of its bytes).
//!
//! Outage is not damage: only a definitive answer (an object missing, a
//! wrong size or hash, a manifest that does not parse, a snapshot gone)
//! marks a point damaged. An unreachable vault, refused credentials, a
//! timeout or a server error leave the point as it was, reported as "could
//! not check". Damaged points are checked too: one whose data is whole
//! again (its vault came back, or was repaired) becomes complete again.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogError, Point, PointStatus};
use crate::context::Context;
use crate::plan::{Plan, PointChoice};
use crate::resource::{self, Kind, Place, ResourceError};
use crate::time::{now_ms, rfc3339, Millis};

/// Which points `--read-data-subset N/M` reads in full: those whose id
/// hashes to `N − 1` modulo `M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subset {
    /// Which part, from 1.
    pub n: u64,
    /// Of how many parts.
    pub m: u64,
}

/// A `--read-data-subset` that is not `N/M` with 1 ≤ N ≤ M.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a subset: expected N/M with 1 <= N <= M, e.g. 1/10")]
pub struct BadSubset(String);

impl Subset {
    /// Parses `N/M`.
    pub fn parse(text: &str) -> Result<Subset, BadSubset> {
        let bad = || BadSubset(text.to_string());
        let (n, m) = text.split_once('/').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let m: u64 = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || m == 0 || n > m {
            return Err(bad());
        }
        Ok(Subset { n, m })
    }

    /// Whether point `id` is in this part. The id is hashed so that each
    /// part holds points of every age, resource and region.
    pub fn contains(&self, id: i64) -> bool {
        let digest = Sha256::digest(id.to_le_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first) % self.m == self.n - 1
    }
}

/// How deep to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The data is there with the recorded size.
    Presence,
    /// Every point's bytes are read again and hashed.
    ReadData,
    /// Every point's presence; a part of the points read in full.
    ReadDataSubset(Subset),
}

impl Depth {
    /// Whether point `id` is read in full.
    fn reads(&self, id: i64) -> bool {
        match self {
            Depth::Presence => false,
            Depth::ReadData => true,
            Depth::ReadDataSubset(s) => s.contains(id),
        }
    }
}

/// What `lifeboat verify` does for one plan.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Only this region (any of the plan's, the primary included).
    pub region: Option<String>,
    /// How deep to check.
    pub depth: Depth,
}

/// Why a verification could not run at all (a point that could not be
/// checked is not an error: it is a [`Verdict`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Bad input: nothing was checked.
    #[error("{0}")]
    Invalid(String),
    /// The catalog could not be read or written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The verdict on one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The data is there as recorded.
    Ok,
    /// The point was damaged, and its data is whole again: it is complete
    /// again.
    Repaired,
    /// The data is missing or not what was recorded: the point is (now)
    /// damaged.
    Damaged,
    /// The check could not be made (an unreachable vault, refused
    /// credentials, a timeout, a server error): the point is untouched.
    Unchecked,
}

impl Verdict {
    /// As people read it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Repaired => "repaired",
            Verdict::Damaged => "DAMAGED",
            Verdict::Unchecked => "could not check",
        }
    }

    /// Whether the point is known good.
    pub fn is_good(self) -> bool {
        matches!(self, Verdict::Ok | Verdict::Repaired)
    }
}

/// One point checked: what it is, and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// The point's id.
    pub point: i64,
    /// The plan's name.
    pub plan: String,
    /// The region holding the point.
    pub region: String,
    /// The resource's name.
    pub resource: String,
    /// The point's kind.
    pub kind: Kind,
    /// The instant whose data the point holds.
    #[serde(with = "crate::time::serde_ms::option")]
    pub data_time: Option<Millis>,
    /// Bytes the catalog recorded for it.
    pub size_bytes: Option<i64>,
    /// Whether its bytes were read in full.
    pub read_data: bool,
    /// Bytes read and hashed.
    pub bytes_read: u64,
    /// What was found.
    pub verdict: Verdict,
    /// What was checked, or what is wrong, or why it could not be checked.
    pub detail: String,
    /// For a damaged point, since when (the first time it was found so).
    #[serde(with = "crate::time::serde_ms::option")]
    pub damaged_since: Option<Millis>,
}

/// Verifies the points of `plan` complete or damaged in its regions (or
/// `opts.region`), calling `each` as every point is checked, and returns
/// them all. Damaged points are marked; repaired ones made complete again.
pub async fn run(
    ctx: &Context,
    plan: &Plan,
    opts: &VerifyOptions,
    mut each: impl FnMut(&Checked),
) -> Result<Vec<Checked>, VerifyError> {
    let regions: Vec<&str> = match &opts.region {
        None => plan.point_regions(),
        Some(r) if plan.point_regions().contains(&r.as_str()) => vec![r.as_str()],
        Some(r) => {
            return Err(VerifyError::Invalid(format!(
                "plan `{}` keeps no points in region `{r}` (regions: {})",
                plan.name,
                plan.point_regions().join(", ")
            )))
        }
    };
    let cat = &ctx.catalog;
    let mut out = Vec::new();
    for region in regions {
        let place = Place::reading(plan, region);
        // Asked once per region, and only if a point lives in its vault.
        let mut reachable: Option<Result<(), String>> = None;
        for point in cat.points_to_verify(&plan.name, region).await? {
            let read_data = opts.depth.reads(point.id);
            let started = Instant::now();
            let outcome = match point.kind {
                Kind::RdsInstance | Kind::RdsCluster => check(&place, &point, read_data).await,
                Kind::Path | Kind::Sqlite | Kind::Postgres | Kind::S3 => {
                    if reachable.is_none() {
                        reachable = Some(
                            match place.vault().await {
                                Ok(vault) => resource::reachable(vault).await,
                                Err(e) => Err(e),
                            }
                            .map_err(|e| e.to_string()),
                        );
                    }
                    match &reachable {
                        Some(Err(why)) => Err(ResourceError::NoVault(why.clone())),
                        _ => check(&place, &point, read_data).await,
                    }
                }
            };
            let checked = record(cat, &point, outcome, read_data).await?;
            info!(
                point = point.id,
                %region,
                verdict = checked.verdict.as_str(),
                ms = started.elapsed().as_millis() as u64,
                "point verified"
            );
            each(&checked);
            out.push(checked);
        }
    }
    Ok(out)
}

/// Checks one point's data against its record.
async fn check(
    place: &Place<'_>,
    point: &Point,
    read_data: bool,
) -> Result<resource::Verified, ResourceError> {
    let Some(stored) = &point.stored else {
        return Err(ResourceError::Other(format!(
            "point {} records no location",
            point.id
        )));
    };
    let expect = point.binding();
    resource::verify(point.kind, place, stored, &expect, read_data).await
}

/// What a resource error says about a point's data: `Some(why)` when it is
/// a definitive finding that the data is not what was recorded; `None`
/// when it says nothing of the data (the point could not be checked).
pub fn damage_of(e: &ResourceError) -> Option<String> {
    match e {
        ResourceError::Corrupt { location, detail } => Some(format!("{detail} at {location}")),
        // A manifest that is not the one the catalog recorded (binding)
        // is reported as corrupt too.
        _ => None,
    }
}

/// Records what was found about `point` and says it as a [`Checked`].
async fn record(
    cat: &Catalog,
    point: &Point,
    outcome: Result<resource::Verified, ResourceError>,
    read_data: bool,
) -> Result<Checked, CatalogError> {
    let was_damaged = point.status == PointStatus::Damaged;
    let (verdict, detail, bytes_read, damaged_since) = match outcome {
        Ok(v) if was_damaged => {
            cat.mark_point_repaired(point.id).await?;
            let detail = format!(
                "{}; was damaged since {} ({}): its data is whole again, the point is complete again",
                v.detail,
                point.damaged_at.map(rfc3339).unwrap_or_else(|| "?".into()),
                point.damage.as_deref().unwrap_or("no reason recorded")
            );
            (Verdict::Repaired, detail, v.bytes_read, None)
        }
        Ok(v) => (Verdict::Ok, v.detail, v.bytes_read, None),
        Err(e) => match damage_of(&e) {
            Some(why) => {
                let now = now_ms();
                cat.mark_point_damaged(point.id, &why, now).await?;
                warn!(point = point.id, region = %point.region, damage = %why, "point damaged");
                let since = point.damaged_at.unwrap_or(now);
                (Verdict::Damaged, why, 0, Some(since))
            }
            None => (Verdict::Unchecked, e.to_string(), 0, point.damaged_at),
        },
    };
    Ok(Checked {
        point: point.id,
        plan: point.plan.clone(),
        region: point.region.clone(),
        resource: point.resource.clone(),
        kind: point.kind,
        data_time: point.data_time,
        size_bytes: point.size_bytes,
        read_data,
        bytes_read,
        verdict,
        detail,
        damaged_since,
    })
}

/// How a damaged point reads in a drill's output or a refusal:
/// `point 12 skipped: damaged (artifact missing …) since 2026-…`.
pub fn damaged_note(p: &Point) -> String {
    format!(
        "damaged ({}) since {}",
        p.damage.as_deref().unwrap_or("no reason recorded"),
        p.damaged_at.map(rfc3339).unwrap_or_else(|| "?".into())
    )
}

/// The damaged points a drill's `choice` passed over to pick `chosen`
/// among the complete ones (`damaged` newest first): the newer ones for
/// `latest`, the older ones for `oldest`, all of them for `random` or
/// when nothing could be chosen.
pub fn skipped_by<'a>(
    damaged: &'a [Point],
    chosen: Option<&Point>,
    choice: PointChoice,
) -> Vec<&'a Point> {
    let key = |p: &Point| (p.data_time.unwrap_or(p.started_at), p.id);
    damaged
        .iter()
        .filter(|d| match (chosen, choice) {
            (None, _) | (_, PointChoice::Random) => true,
            (Some(c), PointChoice::Latest) => key(d) > key(c),
            (Some(c), PointChoice::Oldest) => key(d) < key(c),
        })
        .collect()
}

/// Marks `point` damaged when a drill's restore of it found its data
/// corrupt (see [`damage_of`]); returns the reason recorded. A catalog
/// that cannot be written is logged: the drill's own record says what
/// happened.
pub async fn mark_if_damage(cat: &Catalog, point: &Point, e: &ResourceError) -> Option<String> {
    let why = damage_of(e)?;
    match cat.mark_point_damaged(point.id, &why, now_ms()).await {
        Ok(_) => {
            warn!(point = point.id, damage = %why, "the drill found the point damaged");
            Some(why)
        }
        Err(err) => {
            warn!(point = point.id, error = %err, "cannot mark the point damaged");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse_and_cover_every_point_exactly_once() {
        assert_eq!(Subset::parse("1/10"), Ok(Subset { n: 1, m: 10 }));
        assert_eq!(Subset::parse("3/3"), Ok(Subset { n: 3, m: 3 }));
        for bad in ["0/10", "11/10", "1/0", "1", "a/b", "1/10/2", ""] {
            assert!(Subset::parse(bad).is_err(), "{bad}");
        }
        let m = 7;
        let mut sizes = vec![0; m as usize];
        for id in 1..=2000 {
            let parts: Vec<u64> = (1..=m).filter(|&n| Subset { n, m }.contains(id)).collect();
            assert_eq!(parts.len(), 1, "point {id} is in parts {parts:?}");
            sizes[(parts[0] - 1) as usize] += 1;
        }
        // Hashed ids spread evenly enough: no part is empty or holds half.
        assert!(sizes.iter().all(|&s| s > 150 && s < 450), "{sizes:?}");
    }

    /// A damaged point holding data of `data_time`.
    fn point(id: i64, data_time: Millis) -> Point {
        Point {
            id,
            plan: "p".into(),
            resource: "r".into(),
            kind: Kind::Path,
            region: "dr".into(),
            run_id: None,
            source_point_id: None,
            origin_point_id: None,
            status: PointStatus::Damaged,
            started_at: data_time,
            data_time: Some(data_time),
            completed_at: Some(data_time),
            deleted_at: Some(data_time),
            size_bytes: None,
            content_bytes: None,
            file_count: None,
            sha256: None,
            manifest_sha256: None,
            location: None,
            stored: None,
            flags: Default::default(),
            error: None,
            locked_until: None,
            damaged_at: Some(data_time + 1),
            damage: Some("artifact missing".into()),
        }
    }

    #[test]
    fn a_drill_says_which_damaged_points_its_choice_passed_over() {
        let damaged = [point(9, 900), point(5, 500), point(1, 100)];
        let chosen = point(7, 700);
        let ids = |v: Vec<&Point>| v.iter().map(|p| p.id).collect::<Vec<_>>();
        let skipped = |c, choice| ids(skipped_by(&damaged, c, choice));
        assert_eq!(skipped(Some(&chosen), PointChoice::Latest), [9]);
        assert_eq!(skipped(Some(&chosen), PointChoice::Oldest), [5, 1]);
        assert_eq!(skipped(Some(&chosen), PointChoice::Random), [9, 5, 1]);
        assert_eq!(skipped(None, PointChoice::Latest), [9, 5, 1]);
        assert_eq!(
            damaged_note(&damaged[0]),
            format!("damaged (artifact missing) since {}", rfc3339(901))
        );
    }
}
