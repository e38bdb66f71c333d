//! Where a point's data is, as data: recorded in the catalog when the
//! point is planned (for kinds that leave data when they fail) and when it
//! completes, and read back as it was written, never parsed from a URL.

use serde::{Deserialize, Serialize};

use super::Kind;
use crate::time::Millis;

/// Where one point's data lives in its region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// One artifact and its manifest in the region's vault (`path`,
    /// `sqlite`, `postgres`); `key` is the artifact's.
    Artifact {
        /// The artifact's vault key (`PLAN/RESOURCE/STAMP-pID.EXT`); the
        /// manifest's is derived from it.
        key: String,
    },
    /// A prefix holding one object per source object, and a manifest, in
    /// the region's vault (`s3`); `key` is the prefix.
    Objects {
        /// The vault key of the prefix (`PLAN/RESOURCE/STAMP-pID.objects`);
        /// the objects are `KEY/NNNNNNNN`, the manifest sits beside it.
        key: String,
    },
    /// An RDS DB or cluster snapshot of the region: its identifier, and
    /// its ARN once the snapshot exists.
    RdsSnapshot {
        /// The snapshot identifier, deterministic from plan, resource and
        /// slot (or a manual run's start); a copy keeps its source's
        /// identifier in its own region.
        id: String,
        /// The snapshot's ARN in this region; `None` until RDS has created
        /// it (a point recorded before the work started).
        arn: Option<String>,
    },
}

impl Location {
    /// Where a vault point of `kind` is, its artifact keyed `base.EXT`
    /// (`PLAN/RESOURCE/STAMP-pID`); `None` for kinds RDS keeps.
    pub fn in_vault(kind: Kind, base: &str) -> Option<Location> {
        let key = |ext: &str| format!("{base}.{ext}");
        match kind {
            Kind::Path => Some(Location::Artifact {
                key: key("tar.zst"),
            }),
            Kind::Sqlite => Some(Location::Artifact {
                key: key("sqlite.zst"),
            }),
            // pg_dump's custom format is compressed already: stored as is.
            Kind::Postgres => Some(Location::Artifact { key: key("pgdump") }),
            Kind::S3 => Some(Location::Objects {
                key: key("objects"),
            }),
            Kind::RdsInstance | Kind::RdsCluster => None,
        }
    }

    /// The location of the point of `kind` whose manifest is at
    /// `manifest_key`, the way [`Location::in_vault`] placed it.
    pub fn of_manifest(kind: Kind, manifest_key: &str) -> Option<Location> {
        Location::in_vault(kind, manifest_key.strip_suffix(MANIFEST_SUFFIX)?)
    }

    /// The vault keys of a point held in a vault; `None` for a snapshot.
    pub fn vault_keys(&self) -> Option<ArtifactKeys> {
        match self {
            Location::Artifact { key } | Location::Objects { key } => {
                Some(ArtifactKeys::from_artifact_key(key))
            }
            Location::RdsSnapshot { .. } => None,
        }
    }

    /// Where a copy of the point at `self` goes in another region: vault
    /// points keep their keys; a snapshot copy keeps its identifier, and
    /// has no ARN until the copy exists (the source's is not the copy's).
    pub fn for_copy(&self) -> Location {
        match self {
            Location::RdsSnapshot { id, .. } => Location::RdsSnapshot {
                id: id.clone(),
                arn: None,
            },
            Location::Artifact { .. } | Location::Objects { .. } => self.clone(),
        }
    }
}

/// Keys of a point's two objects in a vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactKeys {
    /// The artifact (or, for `s3` points, the prefix of the objects).
    pub artifact: String,
    /// The manifest: the artifact's key with its extension replaced by
    /// `.manifest.json`.
    pub manifest: String,
}

/// The artifact extensions, by what the artifact holds (as
/// [`Location::in_vault`] gives them).
const EXTENSIONS: [&str; 4] = ["tar.zst", "sqlite.zst", "pgdump", "objects"];

/// How a manifest's key ends: the artifact's base and this.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

impl ArtifactKeys {
    /// The base of a new point's keys, `PLAN/RESOURCE/STAMP-pID`, to which
    /// the artifact adds its extension and the manifest
    /// [`MANIFEST_SUFFIX`]. The stamp keeps keys unique even if a catalog
    /// is recreated over an existing vault.
    pub fn base(plan: &str, resource: &str, started_at: Millis, point_id: i64) -> String {
        let stamp = crate::time::to_datetime(started_at).format("%Y%m%dT%H%M%S%3fZ");
        format!("{plan}/{resource}/{stamp}-p{point_id}")
    }

    /// The plan, resource and point id a key made by [`ArtifactKeys::base`]
    /// names (for manifests older than the identity they now carry).
    pub fn parse_base(base: &str) -> Option<(&str, &str, i64)> {
        let (plan, rest) = base.split_once('/')?;
        let (resource, name) = rest.rsplit_once('/')?;
        let id = name.rsplit_once("-p")?.1.parse().ok()?;
        Some((plan, resource, id))
    }

    /// The keys of a point from its artifact's key.
    pub fn from_artifact_key(artifact: &str) -> Self {
        let base = EXTENSIONS
            .iter()
            .find_map(|ext| artifact.strip_suffix(&format!(".{ext}")))
            .unwrap_or(artifact);
        ArtifactKeys {
            artifact: artifact.to_string(),
            manifest: format!("{base}{MANIFEST_SUFFIX}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_stored_as_tagged_json() {
        let artifact = Location::Artifact {
            key: "shop/files/20260101T000000000Z-p1.tar.zst".into(),
        };
        let json = serde_json::to_string(&artifact).unwrap();
        assert_eq!(
            json,
            r#"{"artifact":{"key":"shop/files/20260101T000000000Z-p1.tar.zst"}}"#
        );
        assert_eq!(serde_json::from_str::<Location>(&json).unwrap(), artifact);
        let snap = Location::RdsSnapshot {
            id: "lifeboat-x".into(),
            arn: None,
        };
        let json = serde_json::to_string(&snap).unwrap();
        assert_eq!(json, r#"{"rds_snapshot":{"id":"lifeboat-x","arn":null}}"#);
    }

    #[test]
    fn a_copy_keeps_the_keys_but_not_the_source_snapshot_arn() {
        let snap = Location::RdsSnapshot {
            id: "lifeboat-x".into(),
            arn: Some("arn:aws:rds:us-east-1:1:snapshot:lifeboat-x".into()),
        };
        let planned = Location::RdsSnapshot {
            id: "lifeboat-x".into(),
            arn: None,
        };
        assert_eq!(snap.for_copy(), planned);
        let objects = Location::Objects {
            key: "p/r/x.objects".into(),
        };
        assert_eq!(objects.for_copy(), objects);
    }

    #[test]
    fn a_manifest_sits_beside_its_artifact_and_leads_back_to_it() {
        let base = ArtifactKeys::base("p", "r", 0, 7);
        assert_eq!(base, "p/r/19700101T000000000Z-p7");
        assert_eq!(ArtifactKeys::parse_base(&base), Some(("p", "r", 7)));
        for kind in [Kind::Path, Kind::Sqlite, Kind::Postgres, Kind::S3] {
            let at = Location::in_vault(kind, &base).unwrap();
            let keys = at.vault_keys().unwrap();
            assert_eq!(keys.manifest, "p/r/19700101T000000000Z-p7.manifest.json");
            assert_eq!(Location::of_manifest(kind, &keys.manifest), Some(at));
        }
        assert_eq!(Location::in_vault(Kind::RdsCluster, &base), None);
        assert_eq!(ArtifactKeys::parse_base("p/r/x"), None);
    }
}
