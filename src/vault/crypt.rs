//! Client-side encryption at rest: a region whose plan sets `encryption`
//! keeps every object of its vault (artifacts, manifests, evidence records)
//! as an [age](https://age-encryption.org/v1) file encrypted to the region's
//! X25519 key, so `age -d -i KEYFILE OBJECT` reads it without Lifeboat.
//!
//! [`EncryptedVault`] wraps a `file://` or `s3://` store and is transparent:
//! `put` takes plaintext and stores ciphertext, streamed (64 KiB chunks,
//! nothing whole in memory); `get` checks the header against the key and
//! streams plaintext, each chunk authenticated before it is handed on;
//! `size` is the plaintext's size, read from the header's length and the
//! stored size. Sizes and hashes the catalog and manifests record are thus
//! those of the plaintext artifact in every region, whatever its key, so a
//! copy into a region with another key (re-encrypted) is checked against
//! its source like any other copy.
//!
//! Errors say what went wrong without key material: a key that cannot be
//! loaded, or is not the one an object was encrypted with, is
//! [`VaultError::Key`] (a setting to fix, not damage); an object whose
//! authentication fails (a flipped byte, a cut-short stream) is
//! [`VaultError::Corrupt`] — at `get` for its header, while reading for
//! its data, as an I/O error that [`VaultError::reading`] classifies.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use age::secrecy::ExposeSecret;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::{FileVault, ObjectInfo, ObjectReader, S3Vault, Vault, VaultError};
use crate::plan::KeySource;

/// Plaintext bytes per STREAM chunk, and the tag each chunk carries.
const CHUNK: u64 = 64 * 1024;
const TAG: u64 = 16;
/// What every age file starts with: tells an object that is not encrypted
/// at all from one whose header is damaged.
const MAGIC: &[u8] = b"age-encryption.org/";
/// Plaintext read at a time while encrypting (one STREAM chunk).
const READ_BUFFER: usize = CHUNK as usize;

/// A region's key: the X25519 identity that decrypts and the recipient
/// (its public half) that encrypts. Its `Debug` shows only the public key.
pub struct Key {
    identity: age::x25519::Identity,
    recipient: age::x25519::Recipient,
    /// Where it was read from, for messages (never the key itself).
    source: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("recipient", &self.recipient.to_string())
            .field("source", &self.source)
            .finish()
    }
}

impl Key {
    /// A new random key, as the text of an identity file in `age-keygen`
    /// format (`# created`, `# public key`, the secret key line), and its
    /// public key.
    pub fn generate(created: &str) -> (String, String) {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        let text = format!(
            "# created: {created}\n# public key: {public}\n{}\n",
            identity.to_string().expose_secret()
        );
        (text, public)
    }

    /// Reads the key from where the plan says; `region` names the region
    /// in messages.
    pub async fn load(source: &KeySource, region: &str) -> Result<Key, VaultError> {
        let text = match source {
            KeySource::File(path) => tokio::fs::read_to_string(path).await.map_err(|e| {
                VaultError::Key(format!(
                    "cannot read the key file {} of region `{region}` (encryption.key_file): {e}",
                    path.display()
                ))
            })?,
            KeySource::Env(name) => std::env::var(name).map_err(|e| {
                let why = match e {
                    std::env::VarError::NotPresent => "is not set",
                    std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
                };
                VaultError::Key(format!(
                    "the environment variable {name} holding the key of region `{region}` (encryption.key_env) {why}"
                ))
            })?,
        };
        Key::parse(&text, source.to_string())
    }

    /// Parses identity-file text: exactly one `AGE-SECRET-KEY-1…` line;
    /// blank lines and `#` comments are skipped. Messages name the line,
    /// never its content.
    pub fn parse(text: &str, source: String) -> Result<Key, VaultError> {
        let mut found = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| {
                VaultError::Key(format!(
                    "{source}: line {} is not an age secret key (AGE-SECRET-KEY-1…); create a key with `lifeboat key generate`",
                    n + 1
                ))
            })?;
            if found.replace(identity).is_some() {
                return Err(VaultError::Key(format!(
                    "{source} holds more than one secret key; a region's key is exactly one"
                )));
            }
        }
        let identity = found.ok_or_else(|| {
            VaultError::Key(format!(
                "{source} holds no age secret key (AGE-SECRET-KEY-1…); create one with `lifeboat key generate`"
            ))
        })?;
        Ok(Key {
            recipient: identity.to_public(),
            identity,
            source,
        })
    }

    /// The public key (`age1…`), which may be shown.
    pub fn public(&self) -> String {
        self.recipient.to_string()
    }
}

/// The backend an encrypted vault stores its ciphertext in.
#[derive(Debug, Clone)]
enum Store {
    File(FileVault),
    S3(S3Vault),
}

/// A vault whose objects are age files encrypted to one key (see the
/// module's documentation).
#[derive(Debug, Clone)]
pub struct EncryptedVault {
    store: Store,
    key: Arc<Key>,
}

impl EncryptedVault {
    /// Encrypts what goes into `vault` with `key`; an encrypted vault gets
    /// the new key instead of a second layer.
    pub(super) fn new(vault: Vault, key: Arc<Key>) -> EncryptedVault {
        let store = match vault {
            Vault::File(v) => Store::File(v),
            Vault::S3(v) => Store::S3(v),
            Vault::Encrypted(e) => e.store,
        };
        EncryptedVault { store, key }
    }

    /// The store beneath, holding ciphertext: what to ask whether the
    /// vault is there at all, or to delete objects by prefix.
    pub fn store(&self) -> Vault {
        match &self.store {
            Store::File(v) => Vault::File(v.clone()),
            Store::S3(v) => Vault::S3(v.clone()),
        }
    }

    /// Whether `other` encrypts with the same key: its ciphertext can be
    /// copied as it is.
    pub fn same_key(&self, other: &EncryptedVault) -> bool {
        self.key.public() == other.key.public()
    }

    pub(super) fn location(&self, key: &str) -> String {
        match &self.store {
            Store::File(v) => v.location(key),
            Store::S3(v) => v.location(key),
        }
    }

    pub(super) async fn check_writable(&self) -> Result<(), VaultError> {
        match &self.store {
            Store::File(_) => Ok(()),
            Store::S3(v) => v.check_object_lock().await,
        }
    }

    pub(super) fn with_versioned_deletes(self) -> EncryptedVault {
        let store = match self.store {
            Store::S3(v) => Store::S3(v.with_versioned_deletes()),
            other => other,
        };
        EncryptedVault { store, ..self }
    }

    /// Encrypts the stream into `key`; returns the plaintext's size.
    pub(super) async fn put(
        &self,
        key: &str,
        reader: impl AsyncRead + Send + Unpin,
    ) -> Result<u64, VaultError> {
        let (encrypting, consumed) =
            EncryptingReader::new(reader, &self.key.recipient).map_err(|e| VaultError::Io {
                op: "encrypt",
                location: self.location(key),
                source: e,
            })?;
        match &self.store {
            Store::File(v) => v.put(key, encrypting).await?,
            Store::S3(v) => v.put(key, encrypting).await?,
        };
        Ok(consumed.load(Ordering::Relaxed))
    }

    async fn raw(&self, key: &str) -> Result<ObjectReader, VaultError> {
        match &self.store {
            Store::File(v) => v.get(key).await,
            Store::S3(v) => v.get(key).await,
        }
    }

    async fn stored_size(&self, key: &str) -> Result<u64, VaultError> {
        match &self.store {
            Store::File(v) => v.size(key).await,
            Store::S3(v) => v.size(key).await,
        }
    }

    /// Opens the object's header with the key: the plaintext stream, and
    /// how many bytes the header (with the payload's nonce) took.
    async fn open(&self, key: &str) -> Result<(ObjectReader, Arc<RawStats>), VaultError> {
        let location = self.location(key);
        let (raw, stats) = Raw::new(self.raw(key).await?);
        let opened = match age::Decryptor::new_async(raw.compat()).await {
            Ok(d) => d.decrypt_async(std::iter::once(&self.key.identity as &dyn age::Identity)),
            Err(e) => Err(e),
        };
        match opened {
            Ok(plain) => Ok((
                Box::pin(Plaintext {
                    inner: plain.compat(),
                    location: location.clone(),
                }),
                stats,
            )),
            Err(e) => Err(self.header_error(location, e, &stats)),
        }
    }

    /// Why an object's header did not open: the store's own error, a key
    /// that is not this object's, an object that is not encrypted at all,
    /// or a damaged header.
    fn header_error(&self, location: String, e: age::DecryptError, stats: &RawStats) -> VaultError {
        if let age::DecryptError::Io(io) = &e {
            if let Some(store) = StoreError::take(io) {
                return VaultError::Io {
                    op: "read",
                    location,
                    source: store,
                };
            }
        }
        if matches!(e, age::DecryptError::NoMatchingKeys) {
            return VaultError::Key(format!(
                "cannot decrypt {location} with the key in {}: it is not the key this region was encrypted with",
                self.key.source
            ));
        }
        let head = stats.head();
        if !head.is_empty() && !head.starts_with(MAGIC) && !MAGIC.starts_with(&head) {
            return VaultError::Key(format!(
                "{location} is not encrypted, but its region has `encryption`: was it written before the region had a key?"
            ));
        }
        VaultError::Corrupt {
            location,
            detail: format!("its encryption header is damaged ({e})"),
        }
    }

    /// The plaintext, streamed; a chunk that fails authentication fails
    /// the read (see [`VaultError::reading`]).
    pub(super) async fn get(&self, key: &str) -> Result<ObjectReader, VaultError> {
        Ok(self.open(key).await?.0)
    }

    /// The plaintext's size: from the stored size and the header's length,
    /// once the header opened with the key (so a wrong key shows here too).
    pub(super) async fn size(&self, key: &str) -> Result<u64, VaultError> {
        let stored = self.stored_size(key).await?;
        let (_, stats) = self.open(key).await?;
        let header = stats.read.load(Ordering::Relaxed);
        plaintext_size(stored, header).ok_or_else(|| VaultError::Corrupt {
            location: self.location(key),
            detail: format!(
                "its {stored} stored bytes are not a whole encrypted object (cut short or extended)"
            ),
        })
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, VaultError> {
        match &self.store {
            Store::File(v) => v.list(prefix).await,
            Store::S3(v) => v.list(prefix).await,
        }
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), VaultError> {
        match &self.store {
            Store::File(v) => v.delete(key).await,
            Store::S3(v) => v.delete(key).await,
        }
    }

    /// Copies the ciphertext as it is, inside S3, into a vault with the
    /// same key: the copy's plaintext size, or `None` when the stores are
    /// not both in S3 (the bytes then go through Lifeboat).
    pub(super) async fn copy_within_s3(
        &self,
        key: &str,
        dst: &EncryptedVault,
        dst_key: &str,
    ) -> Result<Option<u64>, VaultError> {
        let (Store::S3(s), Store::S3(d)) = (&self.store, &dst.store) else {
            return Ok(None);
        };
        s.copy_within_s3(key, d, dst_key).await?;
        Ok(Some(dst.size(dst_key).await?))
    }
}

/// The plaintext size of an age file of `stored` bytes whose header and
/// nonce take `header` bytes: its payload is chunks of 64 KiB plus a
/// 16-byte tag, the last one shorter and empty only when all is empty.
/// `None` when no plaintext gives that many bytes.
fn plaintext_size(stored: u64, header: u64) -> Option<u64> {
    let payload = stored.checked_sub(header)?;
    let full = CHUNK + TAG;
    let chunks = payload.div_ceil(full).max(1);
    let last = payload.checked_sub((chunks - 1) * full)?;
    if last < TAG || (last == TAG && chunks > 1) {
        return None;
    }
    Some(payload - chunks * TAG)
}

/// An I/O error of the store beneath, carried through the decryption
/// layer so it is told apart from a failed authentication.
#[derive(Debug)]
struct StoreError(io::Error);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    fn wrap(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), StoreError(e))
    }

    /// The store's error inside `e`, if `e` carries one (as a new error
    /// of the same kind and message: `io::Error` is not `Clone`).
    fn take(e: &io::Error) -> Option<io::Error> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<StoreError>())
            .map(|s| io::Error::new(s.0.kind(), s.0.to_string()))
    }
}

/// A failed authentication of an object's data, as the I/O error its
/// reader returns: the object is not what was written.
#[derive(Debug)]
pub struct Damaged(String);

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Damaged {}

/// What a read error says of the data: `Some(detail)` when decryption
/// found it altered or cut short.
pub(super) fn damage(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Damaged>())
        .map(|d| d.0.clone())
}

/// Counts what the decryptor reads from the store (the header's length,
/// once it is parsed) and keeps its first bytes; tags the store's errors.
struct Raw {
    inner: ObjectReader,
    stats: Arc<RawStats>,
}

#[derive(Default)]
struct RawStats {
    read: AtomicU64,
    head: Mutex<Vec<u8>>,
}

impl RawStats {
    fn head(&self) -> Vec<u8> {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Raw {
    fn new(inner: ObjectReader) -> (Raw, Arc<RawStats>) {
        let stats = Arc::new(RawStats::default());
        (
            Raw {
                inner,
                stats: stats.clone(),
            },
            stats,
        )
    }
}

impl AsyncRead for Raw {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match self.inner.as_mut().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                self.stats
                    .read
                    .fetch_add(new.len() as u64, Ordering::Relaxed);
                let mut head = self.stats.head.lock().unwrap_or_else(|p| p.into_inner());
                if head.len() < MAGIC.len() {
                    let take = (MAGIC.len() - head.len()).min(new.len());
                    head.extend_from_slice(&new[..take]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(StoreError::wrap(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The decrypted stream: the store's errors as they were, any other
/// error (authentication, truncation) as [`Damaged`].
struct Plaintext<R> {
    inner: R,
    location: String,
}

impl<R: AsyncRead + Unpin> AsyncRead for Plaintext<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(match StoreError::take(&e) {
                Some(store) => store,
                None => io::Error::new(
                    io::ErrorKind::InvalidData,
                    Damaged(format!(
                        "{}: its encrypted data does not authenticate ({e}): altered or cut short",
                        self.location
                    )),
                ),
            })),
            other => other,
        }
    }
}

/// Where the encryptor writes its ciphertext, for the reader to hand on.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An `AsyncRead` of the ciphertext of another: reads plaintext a chunk at
/// a time, encrypts it in memory and hands the ciphertext on. A failing
/// plaintext stream fails the reader (the store then commits nothing);
/// its clean end writes the final chunk.
struct EncryptingReader<R> {
    plain: R,
    writer: Option<age::stream::StreamWriter<Sink>>,
    out: Sink,
    /// Ciphertext in `out` already handed on.
    pos: usize,
    buf: Box<[u8]>,
    consumed: Arc<AtomicU64>,
}

impl<R> EncryptingReader<R> {
    fn new(
        plain: R,
        recipient: &age::x25519::Recipient,
    ) -> io::Result<(EncryptingReader<R>, Arc<AtomicU64>)> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(io::Error::other)?;
        let out = Sink::default();
        let writer = encryptor.wrap_output(out.clone())?;
        let consumed = Arc::new(AtomicU64::new(0));
        Ok((
            EncryptingReader {
                plain,
                writer: Some(writer),
                out,
                pos: 0,
                buf: vec![0; READ_BUFFER].into_boxed_slice(),
                consumed: consumed.clone(),
            },
            consumed,
        ))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for EncryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            {
                let mut out = this.out.0.lock().unwrap_or_else(|p| p.into_inner());
                if this.pos < out.len() {
                    let n = (out.len() - this.pos).min(buf.remaining());
                    buf.put_slice(&out[this.pos..this.pos + n]);
                    this.pos += n;
                    if this.pos == out.len() {
                        out.clear();
                        this.pos = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
            }
            let Some(writer) = this.writer.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut read = ReadBuf::new(&mut this.buf);
            match Pin::new(&mut this.plain).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let n = read.filled().len();
            if n == 0 {
                if let Some(writer) = this.writer.take() {
                    writer.finish()?;
                }
            } else {
                writer.write_all(read.filled())?;
                this.consumed.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Creates `path` holding `text` (a new key) for its owner only (0600),
/// refusing to replace a file: a key overwritten is every point encrypted
/// with it lost.
pub fn write_key_file(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests;
