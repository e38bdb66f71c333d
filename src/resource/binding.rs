//! What binds the files in a vault to the point the catalog recorded.
//!
//! A vault's artifact is checked against the manifest beside it, but a
//! manifest can only vouch for itself: another point's valid pair of
//! artifact and manifest, put in this point's place, would restore, pass
//! and report the other point's data time. So before any restore the
//! manifest read from the vault must be the one the catalog recorded (its
//! SHA-256), name the point it belongs to, and agree with the catalog's
//! record of the artifact (hash, size) and data time. The kind's restore
//! then checks the artifact's bytes against that manifest: the chain from
//! the catalog to every restored byte has no gap.

use super::{ArtifactKeys, Kind, Manifest, ResourceError};
use crate::time::Millis;
use crate::vault::Vault;

/// What the catalog recorded of a point when it was taken or copied: what
/// the vault's files must match before they are restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The plan's name.
    pub plan: String,
    /// The resource's name.
    pub resource: String,
    /// The point being restored (for messages).
    pub point: i64,
    /// The point that took the data: `point` itself, or the source of a
    /// copy. The manifest names this one.
    pub origin: i64,
    /// The kind the catalog recorded.
    pub kind: Kind,
    /// The data time the catalog recorded.
    pub data_time: Option<Millis>,
    /// SHA-256 (hex) of the artifact (of the object list for `s3`).
    pub artifact_sha256: Option<String>,
    /// Bytes of the artifact (of the objects for `s3`).
    pub artifact_size: Option<u64>,
    /// SHA-256 (hex) of the manifest as written; `None` for points taken
    /// before the catalog recorded it.
    pub manifest_sha256: Option<String>,
}

impl Binding {
    /// Loads the manifest at `keys` and checks it against this record.
    /// Returns it with a sentence saying what was bound. Any disagreement
    /// is [`ResourceError::Corrupt`]: the vault does not hold this point.
    pub async fn load(
        &self,
        vault: &Vault,
        keys: &ArtifactKeys,
    ) -> Result<(Manifest, String), ResourceError> {
        let (manifest, sha256) = Manifest::load_hashed(vault, &keys.manifest).await?;
        let note = self
            .check(&manifest, &sha256)
            .map_err(|detail| ResourceError::Corrupt {
                location: vault.location(&keys.artifact),
                detail,
            })?;
        Ok((manifest, note))
    }

    /// Compares a manifest (and the hash of its bytes) with the record:
    /// what was bound, or the first disagreement.
    pub fn check(&self, manifest: &Manifest, sha256: &str) -> Result<String, String> {
        let point = self.point;
        if let Some(recorded) = &self.manifest_sha256 {
            if recorded != sha256 {
                return Err(format!(
                    "its manifest is not the one the catalog recorded for point {point} \
                     (sha256 {sha256}, recorded {recorded})"
                ));
            }
        }
        if let Some(id) = &manifest.point {
            if (id.plan.as_str(), id.resource.as_str(), id.id)
                != (self.plan.as_str(), self.resource.as_str(), self.origin)
            {
                return Err(format!(
                    "its manifest belongs to point {} of {}/{}, not to point {} of {}/{}",
                    id.id, id.plan, id.resource, self.origin, self.plan, self.resource
                ));
            }
        } else if self.manifest_sha256.is_some() {
            return Err(format!(
                "its manifest names no point, but point {point} was recorded with one"
            ));
        }
        if manifest.kind != self.kind {
            return Err(format!(
                "its manifest is of kind {}, the catalog recorded {}",
                manifest.kind, self.kind
            ));
        }
        if let Some(t) = self.data_time {
            let recorded = crate::time::rfc3339(t);
            if manifest.data_time != recorded {
                return Err(format!(
                    "its manifest holds data of {}, the catalog recorded {recorded}",
                    manifest.data_time
                ));
            }
        }
        if let Some(sha) = self.artifact_sha256.as_deref().filter(|s| !s.is_empty()) {
            if manifest.artifact.sha256 != sha {
                return Err(format!(
                    "its manifest describes an artifact with sha256 {}, the catalog recorded {sha}",
                    manifest.artifact.sha256
                ));
            }
        }
        if let Some(size) = self.artifact_size {
            if manifest.artifact.size != size {
                return Err(format!(
                    "its manifest describes an artifact of {} bytes, the catalog recorded {size}",
                    manifest.artifact.size
                ));
            }
        }
        Ok(match (&manifest.point, &self.manifest_sha256) {
            (Some(_), Some(_)) => format!(
                "manifest is the one recorded for point {point} (sha256 and identity match the catalog)"
            ),
            _ => format!(
                "manifest agrees with the catalog's record of point {point} (artifact sha256, size, \
                 data time; taken before manifests named their point)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::manifest::{ArtifactInfo, PointIdentity};

    fn manifest(id: i64) -> Manifest {
        Manifest {
            format: Manifest::FORMAT,
            point: Some(PointIdentity {
                plan: "shop".into(),
                resource: "files".into(),
                id,
            }),
            kind: Kind::Path,
            data_time: crate::time::rfc3339(1_000),
            artifact: ArtifactInfo {
                sha256: "aa".into(),
                size: 10,
            },
            file_count: 1,
            content_bytes: 5,
            root: None,
            files: Vec::new(),
            database: None,
            postgres: None,
            bucket: None,
            objects: Vec::new(),
        }
    }

    fn binding() -> Binding {
        Binding {
            plan: "shop".into(),
            resource: "files".into(),
            point: 9,
            origin: 7,
            kind: Kind::Path,
            data_time: Some(1_000),
            artifact_sha256: Some("aa".into()),
            artifact_size: Some(10),
            manifest_sha256: Some("mm".into()),
        }
    }

    #[test]
    fn the_recorded_manifest_of_the_origin_point_binds() {
        let note = binding().check(&manifest(7), "mm").unwrap();
        assert!(note.contains("point 9"), "{note}");
    }

    #[test]
    fn any_disagreement_with_the_catalog_is_refused() {
        let cases: Vec<(Binding, Manifest, &str, &str)> = vec![
            (
                binding(),
                manifest(7),
                "other",
                "not the one the catalog recorded",
            ),
            (binding(), manifest(8), "mm", "belongs to point 8"),
            (
                binding(),
                Manifest {
                    point: None,
                    ..manifest(7)
                },
                "mm",
                "names no point",
            ),
            (
                Binding {
                    data_time: Some(2_000),
                    ..binding()
                },
                manifest(7),
                "mm",
                "holds data of",
            ),
            (
                Binding {
                    artifact_sha256: Some("bb".into()),
                    ..binding()
                },
                manifest(7),
                "mm",
                "artifact with sha256 aa",
            ),
            (
                Binding {
                    artifact_size: Some(11),
                    ..binding()
                },
                manifest(7),
                "mm",
                "artifact of 10 bytes",
            ),
            (
                Binding {
                    kind: Kind::Sqlite,
                    ..binding()
                },
                manifest(7),
                "mm",
                "of kind path",
            ),
        ];
        for (b, m, sha, want) in cases {
            let err = b.check(&m, sha).unwrap_err();
            assert!(err.contains(want), "{err} should say {want}");
        }
    }

    #[test]
    fn a_point_from_before_binding_is_checked_against_what_the_catalog_has() {
        let legacy = Binding {
            manifest_sha256: None,
            ..binding()
        };
        let old = Manifest {
            format: 1,
            point: None,
            ..manifest(7)
        };
        assert!(legacy.check(&old, "anything").unwrap().contains("before"));
        let swapped = Manifest {
            data_time: crate::time::rfc3339(5_000),
            ..old
        };
        assert!(legacy.check(&swapped, "anything").is_err());
    }
}
