//! Readers and writers that compute the SHA-256 and length of what passes
//! through them, so data is hashed in the same pass that moves it.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// The digest of a stream, readable once the stream has been consumed.
#[derive(Clone, Default)]
pub struct SharedDigest(Arc<Mutex<(Sha256, u64)>>);

impl SharedDigest {
    fn update(&self, bytes: &[u8]) {
        // A poisoned lock means a panic elsewhere mid-update; the digest is
        // then meaningless anyway, so keep going with the inner value.
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0.update(bytes);
        g.1 += bytes.len() as u64;
    }

    /// Hex SHA-256 of everything seen so far.
    pub fn hex(&self) -> String {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        hex::encode(g.0.clone().finalize())
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// Whether no byte was seen yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An `AsyncRead` that hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    digest: SharedDigest,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`; the digest fills as the reader is read.
    pub fn new(inner: R) -> (Self, SharedDigest) {
        let digest = SharedDigest::default();
        (
            HashingReader {
                inner,
                digest: digest.clone(),
            },
            digest,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let new = &buf.filled()[before..];
            self.digest.update(new);
        }
        poll
    }
}

/// A blocking `Write` that hashes and counts what is written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`, hashing from its first byte.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
