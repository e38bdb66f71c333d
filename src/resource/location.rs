//! Where a point's data is, as data: recorded in the catalog when the
//! point is planned (for kinds that leave data when they fail) and when it
//! completes, and read back as it was written, never parsed from a URL.

use serde::{Deserialize, Serialize};

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

/// The artifact extensions, by what the artifact holds.
const EXTENSIONS: [&str; 4] = ["tar.zst", "sqlite.zst", "pgdump", "objects"];

impl ArtifactKeys {
    /// `PLAN/RESOURCE/STAMP-pID.EXT` and its `.manifest.json`. The stamp keeps
    /// keys unique even if a catalog is recreated over an existing vault.
    pub fn new(plan: &str, resource: &str, ext: &str, started_at: Millis, point_id: i64) -> Self {
        let stamp = crate::time::to_datetime(started_at).format("%Y%m%dT%H%M%S%3fZ");
        let base = format!("{plan}/{resource}/{stamp}-p{point_id}");
        ArtifactKeys {
            artifact: format!("{base}.{ext}"),
            manifest: format!("{base}.manifest.json"),
        }
    }

    /// The keys of a point from its artifact's key.
    pub fn from_artifact_key(artifact: &str) -> Self {
        let base = EXTENSIONS
            .iter()
            .find_map(|ext| artifact.strip_suffix(&format!(".{ext}")))
            .unwrap_or(artifact);
        ArtifactKeys {
            artifact: artifact.to_string(),
            manifest: format!("{base}.manifest.json"),
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
    fn a_manifest_sits_beside_its_artifact() {
        for ext in EXTENSIONS {
            let keys = ArtifactKeys::new("p", "r", ext, 0, 7);
            assert_eq!(keys.manifest, "p/r/19700101T000000000Z-p7.manifest.json");
            assert_eq!(ArtifactKeys::from_artifact_key(&keys.artifact), keys);
        }
    }
}
