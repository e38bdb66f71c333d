//! Verifying a point where it is kept, without restoring it: what
//! `lifeboat verify` asks of every kind, and the check shared by the
//! artifact kinds (`path`, `sqlite`, `postgres`: one artifact and its
//! manifest in a vault).
//!
//! A definitive answer that the data is not what the catalog recorded (an
//! object missing, a wrong size or hash, a manifest that does not parse, a
//! snapshot gone) is [`ResourceError::Corrupt`]; anything else that stops
//! a check (an unreachable vault, refused credentials, a timeout, a 5xx)
//! is another error: the point could not be checked, which says nothing
//! about its data.

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ArtifactKeys, Binding, Manifest, ResourceError};
use crate::vault::{Vault, VaultError};

/// Bytes read at a time when hashing: large reads keep a `file://` vault
/// near the disk's speed (one blocking read per buffer), while memory
/// stays bounded whatever the artifact's size.
const READ_BUFFER: usize = 1 << 20;

/// What a verification established about a point whose data is whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What was checked, for people.
    pub detail: String,
    /// Bytes read and hashed (0 without `--read-data`).
    pub bytes_read: u64,
}

/// A definitive finding: the point's data is not what was recorded.
pub(super) fn damaged(location: String, detail: impl Into<String>) -> ResourceError {
    ResourceError::Corrupt {
        location,
        detail: detail.into(),
    }
}

/// Whether a vault is there to be asked at all: an unmounted `file://`
/// folder or a missing bucket would otherwise answer "no such object" for
/// every point, which is an outage, not damage.
pub async fn reachable(vault: &Vault) -> Result<(), ResourceError> {
    let store = vault.store();
    match store.as_ref() {
        Vault::File(v) => match tokio::fs::metadata(v.root()).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(ResourceError::NoVault(format!(
                "vault {} is not a folder",
                vault.location("")
            ))),
            Err(e) => Err(ResourceError::NoVault(format!(
                "vault {} cannot be read ({e}): is it mounted?",
                vault.location("")
            ))),
        },
        // Listing a prefix that holds nothing costs one request and fails
        // on a missing bucket, refused credentials or an unreachable
        // endpoint; a HeadObject could not tell a missing bucket from a
        // missing object.
        Vault::S3(_) | Vault::Encrypted(_) => vault
            .list("lifeboat-verify-probe/")
            .await
            .map(|_| ())
            .map_err(ResourceError::from),
    }
}

/// The size of an object, where a missing one is damage.
pub(super) async fn object_size(
    vault: &Vault,
    key: &str,
    what: &str,
) -> Result<u64, ResourceError> {
    match vault.size(key).await {
        Ok(size) => Ok(size),
        Err(VaultError::NotFound { location }) => Err(damaged(location, format!("{what} missing"))),
        Err(e) => Err(e.into()),
    }
}

/// Reads an object to its end, hashing it: (bytes, SHA-256). A missing
/// object is damage, and so is data that does not decrypt; a read that
/// fails half-way otherwise is not (it says nothing of
/// the bytes not read).
pub(super) async fn hash_object(
    vault: &Vault,
    key: &str,
    what: &str,
) -> Result<(u64, [u8; 32]), ResourceError> {
    let reader = match vault.get(key).await {
        Ok(r) => r,
        Err(VaultError::NotFound { location }) => {
            return Err(damaged(location, format!("{what} missing")))
        }
        Err(e) => return Err(e.into()),
    };
    hash_stream(reader)
        .await
        .map_err(|source| VaultError::reading(vault.location(key), source).into())
}

/// SHA-256 and length of a stream, read in bounded memory.
pub(super) async fn hash_stream(
    mut reader: impl AsyncRead + Unpin,
) -> std::io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

/// Reads and parses a point's manifest: it and its SHA-256 (hex). Missing
/// or unparsable is damage; a read that fails is not.
pub(super) async fn load_manifest(
    vault: &Vault,
    key: &str,
) -> Result<(Manifest, String), ResourceError> {
    match Manifest::load_hashed(vault, key).await {
        Err(ResourceError::Vault(VaultError::NotFound { location })) => {
            Err(damaged(location, "manifest missing"))
        }
        other => other,
    }
}

/// Verifies an artifact point (`path`, `sqlite`, `postgres`) in `vault`.
/// By default: the artifact is there with the size the catalog recorded,
/// and its manifest is the one the catalog recorded (bound as a restore
/// binds it: its hash, the point it names, the artifact it describes).
/// With `read_data`, every byte of the artifact is also read again and
/// hashed, matching the manifest's SHA-256, which the binding tied to the
/// catalog's.
pub async fn artifact(
    vault: &Vault,
    keys: &ArtifactKeys,
    expect: &Binding,
    read_data: bool,
) -> Result<Verified, ResourceError> {
    let location = vault.location(&keys.artifact);
    let size = object_size(vault, &keys.artifact, "artifact").await?;
    if let Some(want) = expect.artifact_size.filter(|want| *want != size) {
        return Err(damaged(
            location,
            format!("artifact is {size} bytes, the catalog recorded {want}"),
        ));
    }
    let manifest = bound_manifest(vault, keys, expect).await?;
    if manifest.artifact.size != size {
        return Err(damaged(
            vault.location(&keys.manifest),
            format!(
                "manifest describes a {}-byte artifact, the vault holds {size} bytes",
                manifest.artifact.size
            ),
        ));
    }
    if !read_data {
        return Ok(Verified {
            detail: format!(
                "artifact present with its recorded {}; manifest is the one recorded",
                crate::units::size(size)
            ),
            bytes_read: 0,
        });
    }
    let (read, digest) = hash_object(vault, &keys.artifact, "artifact").await?;
    let sha = hex::encode(digest);
    if read != size || sha != manifest.artifact.sha256 {
        return Err(damaged(
            location,
            format!(
                "artifact reads as {read} bytes with sha256 {sha}; recorded {size} bytes with sha256 {}",
                manifest.artifact.sha256
            ),
        ));
    }
    Ok(Verified {
        detail: format!(
            "{} read, sha256 matches the recorded manifest's",
            crate::units::size(read)
        ),
        bytes_read: read,
    })
}

/// The point's manifest, bound to the catalog's record (see [`Binding`]):
/// a missing, unparsable or foreign manifest is damage.
pub(super) async fn bound_manifest(
    vault: &Vault,
    keys: &ArtifactKeys,
    expect: &Binding,
) -> Result<Manifest, ResourceError> {
    let (manifest, sha256) = load_manifest(vault, &keys.manifest).await?;
    expect
        .check(&manifest, &sha256)
        .map_err(|detail| damaged(vault.location(&keys.manifest), detail))?;
    Ok(manifest)
}

/// Standard base64 with padding, as S3 spells its checksums.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Kind, Location};
    use crate::vault::FileVault;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        for (raw, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\xfe\xfd", "//79"),
        ] {
            assert_eq!(base64(raw), want, "{raw:?}");
        }
        // S3's ChecksumSHA256 of an empty object.
        assert_eq!(
            base64(&Sha256::digest(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    /// A vault holding one artifact (`bytes`) and a manifest describing it,
    /// and the catalog's record of that point.
    async fn vault_with(dir: &std::path::Path, bytes: &[u8]) -> (Vault, ArtifactKeys, Binding) {
        let vault = Vault::File(FileVault::new(dir.join("v")));
        let base = ArtifactKeys::base("p", "r", 0, 1);
        let keys = Location::in_vault(Kind::Sqlite, &base)
            .and_then(|l| l.vault_keys())
            .unwrap();
        vault.put(&keys.artifact, bytes).await.unwrap();
        let sha = hex::encode(Sha256::digest(bytes));
        let manifest = serde_json::json!({
            "format": 2, "kind": "sqlite", "data_time": "1970-01-01T00:00:00.000Z",
            "point": {"plan": "p", "resource": "r", "id": 1},
            "artifact": {"sha256": sha, "size": bytes.len()},
            "file_count": 1, "content_bytes": 3,
            "database": {"size": 3, "sha256": "x"}
        })
        .to_string();
        vault
            .put(&keys.manifest, manifest.as_bytes())
            .await
            .unwrap();
        let expect = Binding {
            plan: "p".into(),
            resource: "r".into(),
            point: 1,
            origin: 1,
            kind: Kind::Sqlite,
            data_time: Some(0),
            artifact_sha256: Some(sha),
            artifact_size: Some(bytes.len() as u64),
            manifest_sha256: Some(hex::encode(Sha256::digest(manifest.as_bytes()))),
        };
        (vault, keys, expect)
    }

    fn is_damage(r: &Result<Verified, ResourceError>, says: &str) -> bool {
        matches!(r, Err(ResourceError::Corrupt { detail, .. }) if detail.contains(says))
    }

    #[tokio::test]
    async fn a_whole_artifact_verifies_with_and_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keys, expect) = vault_with(dir.path(), b"some artifact bytes").await;
        let quick = artifact(&vault, &keys, &expect, false).await.unwrap();
        assert_eq!(quick.bytes_read, 0);
        let full = artifact(&vault, &keys, &expect, true).await.unwrap();
        assert_eq!(full.bytes_read, 19, "{full:?}");
    }

    #[tokio::test]
    async fn missing_truncated_and_flipped_artifacts_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keys, expect) = vault_with(dir.path(), b"some artifact bytes").await;
        let file = dir.path().join("v").join(&keys.artifact);
        std::fs::write(&file, b"some artifact bytez").unwrap();
        // Same size: only reading the data finds it.
        assert!(artifact(&vault, &keys, &expect, false).await.is_ok());
        let r = artifact(&vault, &keys, &expect, true).await;
        assert!(is_damage(&r, "sha256"), "{r:?}");
        std::fs::write(&file, b"some").unwrap();
        let r = artifact(&vault, &keys, &expect, false).await;
        assert!(is_damage(&r, "artifact is 4 bytes"), "{r:?}");
        std::fs::remove_file(&file).unwrap();
        let r = artifact(&vault, &keys, &expect, false).await;
        assert!(is_damage(&r, "artifact missing"), "{r:?}");
    }

    #[tokio::test]
    async fn a_manifest_that_is_not_the_recorded_one_is_damage_without_reading_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keys, expect) = vault_with(dir.path(), b"abc").await;
        let manifest = dir.path().join("v").join(&keys.manifest);
        let text = std::fs::read_to_string(&manifest).unwrap();
        // Still valid JSON describing the same artifact, but other bytes.
        std::fs::write(&manifest, format!("{text} ")).unwrap();
        let r = artifact(&vault, &keys, &expect, false).await;
        assert!(is_damage(&r, "not the one the catalog recorded"), "{r:?}");
    }

    #[tokio::test]
    async fn a_bad_manifest_is_damage_and_a_missing_vault_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keys, expect) = vault_with(dir.path(), b"abc").await;
        let manifest = dir.path().join("v").join(&keys.manifest);
        std::fs::write(&manifest, b"{not json").unwrap();
        let r = artifact(&vault, &keys, &expect, true).await;
        assert!(is_damage(&r, "manifest is not valid"), "{r:?}");
        std::fs::write(&manifest, b"").unwrap();
        let r = artifact(&vault, &keys, &expect, false).await;
        assert!(is_damage(&r, "manifest is not valid"), "{r:?}");
        std::fs::remove_file(&manifest).unwrap();
        let r = artifact(&vault, &keys, &expect, false).await;
        assert!(is_damage(&r, "manifest missing"), "{r:?}");

        assert!(reachable(&vault).await.is_ok());
        let gone = Vault::File(FileVault::new(dir.path().join("unmounted")));
        let r = reachable(&gone).await;
        assert!(matches!(r, Err(ResourceError::NoVault(_))), "{r:?}");
    }
}
