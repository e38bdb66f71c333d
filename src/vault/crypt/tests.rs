use std::sync::Arc;

use tokio::io::AsyncReadExt;

use super::*;
use crate::vault::FileVault;

fn key() -> Arc<Key> {
    let (text, _) = Key::generate("2026-01-01T00:00:00Z");
    Arc::new(Key::parse(&text, "test key".into()).unwrap())
}

fn vaults(dir: &Path, key: &Arc<Key>) -> (Vault, Vault) {
    let plain = Vault::File(FileVault::new(dir.join("v")));
    (plain.clone(), plain.encrypted(key.clone()))
}

/// Bytes that are not all alike, so a misplaced chunk shows.
fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn read_all(vault: &Vault, key: &str) -> Result<Vec<u8>, VaultError> {
    let mut out = Vec::new();
    vault
        .get(key)
        .await?
        .read_to_end(&mut out)
        .await
        .map_err(|e| VaultError::reading(vault.location(key), e))?;
    Ok(out)
}

#[tokio::test]
async fn objects_round_trip_stored_as_age_files_of_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let k = key();
    let (plain, enc) = vaults(dir.path(), &k);
    let chunk = CHUNK as usize;
    for len in [
        0,
        1,
        1000,
        chunk - 1,
        chunk,
        chunk + 1,
        3 * chunk,
        3 * chunk + 5,
    ] {
        let name = format!("o/{len}");
        let bytes = data(len);
        let put = enc.put(&name, &bytes[..]).await.unwrap();
        assert_eq!(put, len as u64, "put returns the plaintext size");
        assert_eq!(read_all(&enc, &name).await.unwrap(), bytes, "{len}");
        assert_eq!(enc.size(&name).await.unwrap(), len as u64, "{len}");
        let stored = read_all(&plain, &name).await.unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{len}");
        assert!(stored.len() > len, "{len}");
        if len >= 1000 {
            assert!(
                !stored.windows(64).any(|w| w == &bytes[500..564]),
                "{len}: plaintext visible in the stored object"
            );
        }
    }
    // Listing shows stored sizes; with_own_sizes the plaintext's.
    let listed = enc.list("o/").await.unwrap();
    let own = enc.with_own_sizes(listed.clone()).await.unwrap();
    for (l, o) in listed.iter().zip(&own) {
        assert_eq!(o.size, o.key[2..].parse::<u64>().unwrap());
        assert!(l.size > o.size);
    }
}

#[tokio::test]
async fn another_key_is_a_clear_error_naming_where_the_key_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let (_, enc) = vaults(dir.path(), &key());
    enc.put("a", &b"secret"[..]).await.unwrap();
    let (text, _) = Key::generate("2026-01-01T00:00:00Z");
    let other = Arc::new(Key::parse(&text, "/keys/other".into()).unwrap());
    let wrong = Vault::File(FileVault::new(dir.path().join("v"))).encrypted(other);
    for err in [
        wrong.get("a").await.err().unwrap(),
        wrong.size("a").await.err().unwrap(),
    ] {
        let VaultError::Key(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains(
                "with the key in /keys/other: it is not the key this region was encrypted with"
            ),
            "{msg}"
        );
        assert!(!msg.contains("AGE-SECRET-KEY"), "{msg}");
    }
}

#[tokio::test]
async fn a_flipped_byte_anywhere_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, enc) = vaults(dir.path(), &key());
    let bytes = data(3 * CHUNK as usize + 10);
    enc.put("a", &bytes[..]).await.unwrap();
    let stored = read_all(&plain, "a").await.unwrap();
    let header_end = stored.windows(5).position(|w| w == b"\n--- ").unwrap();
    // In the payload (the first chunk, the last), and in the header's MAC.
    for at in [stored.len() / 3, stored.len() - 3, header_end + 8] {
        let mut bad = stored.clone();
        bad[at] ^= 0x01;
        plain.put("a", &bad[..]).await.unwrap();
        match read_all(&enc, "a").await {
            Err(VaultError::Corrupt { location, detail }) => {
                assert!(location.ends_with("/v/a"), "{location}");
                assert!(!detail.is_empty());
            }
            other => panic!("flip at {at}: {other:?}"),
        }
    }
    // Damage becomes the resource layer's Corrupt: what verify marks.
    let e = crate::resource::ResourceError::from(read_all(&enc, "a").await.unwrap_err());
    assert!(
        matches!(e, crate::resource::ResourceError::Corrupt { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_stream_cut_short_is_damage_wherever_it_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, enc) = vaults(dir.path(), &key());
    let bytes = data(2 * CHUNK as usize + 100);
    enc.put("a", &bytes[..]).await.unwrap();
    let stored = read_all(&plain, "a").await.unwrap();
    let whole_chunk = (CHUNK + TAG) as usize;
    // Mid-chunk, at a chunk boundary (only the last chunk gone), and
    // inside the header.
    for keep in [stored.len() - 50, stored.len() - 116, 40] {
        plain.put("a", &stored[..keep]).await.unwrap();
        let read = read_all(&enc, "a").await;
        assert!(
            matches!(read, Err(VaultError::Corrupt { .. })),
            "cut to {keep}: {read:?}"
        );
    }
    // Cut at a boundary, the size alone no longer adds up either.
    let header = stored.len() - 2 * whole_chunk - 116;
    plain
        .put("a", &stored[..header + whole_chunk + 3])
        .await
        .unwrap();
    assert!(matches!(
        enc.size("a").await,
        Err(VaultError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn an_object_not_encrypted_is_named_so_not_called_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, enc) = vaults(dir.path(), &key());
    plain.put("old", &b"{\"format\":2}"[..]).await.unwrap();
    match enc.get("old").await {
        Err(VaultError::Key(msg)) => assert!(msg.contains("is not encrypted"), "{msg}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_failing_source_stores_nothing() {
    struct Failing(usize);
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.0 == 0 {
                return Poll::Ready(Err(io::Error::other("source broke")));
            }
            let n = self.0.min(buf.remaining()).min(1000);
            buf.put_slice(&vec![1u8; n]);
            self.0 -= n;
            Poll::Ready(Ok(()))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (plain, enc) = vaults(dir.path(), &key());
    let err = enc.put("a", Failing(200_000)).await.unwrap_err();
    assert!(err.to_string().contains("source broke"), "{err}");
    assert!(plain.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn copies_between_keys_are_decrypted_and_encrypted_again() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (key(), key());
    let a = Vault::File(FileVault::new(dir.path().join("a"))).encrypted(k1.clone());
    let b = Vault::File(FileVault::new(dir.path().join("b"))).encrypted(k2);
    let c = Vault::File(FileVault::new(dir.path().join("c")));
    let same = Vault::File(FileVault::new(dir.path().join("d"))).encrypted(k1);
    let bytes = data(100_000);
    a.put("x", &bytes[..]).await.unwrap();
    let want = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    for dst in [&b, &c, &same] {
        let out = a.copy_to("x", dst, "x").await.unwrap();
        assert_eq!(out.size, bytes.len() as u64);
        assert_eq!(out.sha256.as_deref(), Some(want.as_str()));
        assert_eq!(read_all(dst, "x").await.unwrap(), bytes);
    }
    // And back from plaintext into an encrypted vault.
    c.copy_to("x", &b, "y").await.unwrap();
    assert_eq!(read_all(&b, "y").await.unwrap(), bytes);
}

#[test]
fn plaintext_sizes_follow_the_chunk_layout() {
    let h = 200;
    let full = CHUNK + TAG;
    assert_eq!(plaintext_size(h + TAG, h), Some(0));
    assert_eq!(plaintext_size(h + TAG + 1, h), Some(1));
    assert_eq!(plaintext_size(h + full, h), Some(CHUNK));
    assert_eq!(plaintext_size(h + full + TAG + 1, h), Some(CHUNK + 1));
    assert_eq!(plaintext_size(h + 2 * full, h), Some(2 * CHUNK));
    // Not a whole age payload: shorter than a tag, or an empty last chunk
    // after full ones, or less than the header.
    assert_eq!(plaintext_size(h + TAG - 1, h), None);
    assert_eq!(plaintext_size(h + full + TAG, h), None);
    assert_eq!(plaintext_size(h + full + 5, h), None);
    assert_eq!(plaintext_size(h - 1, h), None);
}

#[test]
fn key_files_hold_exactly_one_secret_key_and_errors_never_show_it() {
    let (text, public) = Key::generate("2026-01-01T00:00:00Z");
    assert!(text.starts_with("# created: 2026-01-01T00:00:00Z\n# public key: age1"));
    let k = Key::parse(&text, "f".into()).unwrap();
    assert_eq!(k.public(), public);
    assert!(!format!("{k:?}").contains("AGE-SECRET-KEY"));
    let secret = text.lines().nth(2).unwrap();
    // A bare key line (as in an environment variable) is a key file too.
    assert_eq!(Key::parse(secret, "e".into()).unwrap().public(), public);

    let two = format!("{text}{secret}\n");
    let broken = text.replace("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-2");
    for (bad, want) in [
        (two.as_str(), "more than one secret key"),
        (broken.as_str(), "line 3 is not an age secret key"),
        ("# only a comment\n", "holds no age secret key"),
    ] {
        let err = Key::parse(bad, "/k".into()).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
        assert!(!err.contains(&secret[20..]), "{err}");
    }
}

#[tokio::test]
async fn a_missing_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nope.key");
    let err = Key::load(&KeySource::File(file.clone()), "west")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("cannot read the key file {}", file.display()))
            && err.contains("region `west`"),
        "{err}"
    );
    let err = Key::load(&KeySource::Env("LIFEBOAT_TEST_NO_SUCH_KEY".into()), "west")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("LIFEBOAT_TEST_NO_SUCH_KEY") && err.contains("is not set"),
        "{err}"
    );
}

#[test]
fn a_written_key_file_is_private_and_never_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    write_key_file(&path, "one").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(write_key_file(&path, "two").is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
}
